/**
 * `npm run bench`, part 4: PutObjects through both dialects of one gateway (the same coffer, store and
 * keys): CDCS (COS signature) and S3 (SigV4). First small ones — interleaved rounds of sequential 4 KiB
 * PUTs to fresh keys, the S3 signature over the body's SHA-256, which the gateway verifies as the body
 * streams — in requests per second: what differs is only the dialect's front (routing, the signature
 * scheme, the body check). Then one large object each way (UNSIGNED-PAYLOAD for S3, what aws-cli sends
 * over https), in MB/s and the gateway's CPU per MiB, whole process and request thread: the S3 body
 * goes through its decoder, and its chunks must still be moved to the crypto worker, not copied.
 */
import type { ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Hash } from '@smithy/hash-node';
import { SignatureV4 } from '@smithy/signature-v4';
import { BENCH_COFFER as COFFER, BENCH_SECRET_ID, BENCH_SECRET_KEY, benchConfig, median, procCpuMs, sendRepeated, signed, spawn } from './bench-support';

const OBJECT_BYTES = Number(process.env['BENCH_S3_OBJECT_BYTES'] ?? 4096);
const REQUESTS = Number(process.env['BENCH_S3_REQUESTS'] ?? 300);
const ROUNDS = Number(process.env['BENCH_ROUNDS'] ?? 3);
const LARGE_BYTES = Number(process.env['BENCH_S3_LARGE_BYTES'] ?? 512 * 1024 * 1024);
const MiB = 1024 * 1024;

const sigv4 = new SignatureV4({ service: 's3', region: 'us-east-1', credentials: { accessKeyId: BENCH_SECRET_ID, secretAccessKey: BENCH_SECRET_KEY }, sha256: Hash.bind(null, 'sha256'), uriEscapePath: false });

function put(port: number, path: string, headers: Record<string, string>, body: Buffer): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method: 'PUT', path, headers: { ...headers, 'content-length': String(body.length) } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function rate(send: (index: number) => Promise<number>): Promise<number> {
  const started = process.hrtime.bigint();
  for (let i = 0; i < REQUESTS; i += 1) {
    const status = await send(i);
    if (status !== 200) throw new Error(`PutObject answered ${status}`);
  }
  return REQUESTS / (Number(process.hrtime.bigint() - started) / 1e9);
}

async function main(): Promise<void> {
  const scratch = mkdtempSync(join(tmpdir(), 'coffer-s3-put-bench-'));
  const sink = await spawn('sink', '0', scratch);
  const config = join(scratch, 'config.json');
  writeFileSync(config, benchConfig(sink.port, join(scratch, 'keyring')));
  const gateway = await spawn('gateway', config);
  const children: ChildProcess[] = [sink.child, gateway.child];
  const body = randomBytes(OBJECT_BYTES);
  const sha256 = createHash('sha256').update(body).digest('hex');
  const host = `127.0.0.1:${gateway.port}`;
  try {
    const cdcs: number[] = [];
    const s3: number[] = [];
    for (let round = 0; round < ROUNDS; round += 1) {
      cdcs.push(
        await rate((i) => {
          const path = `/${COFFER}/small/cdcs-${round}-${i}`;
          return put(gateway.port, path, signed('PUT', gateway.port, path, []), body);
        }),
      );
      s3.push(
        await rate(async (i) => {
          const path = `/${COFFER}/small/s3-${round}-${i}`;
          const request_ = await sigv4.sign({ method: 'PUT', protocol: 'http:', hostname: '127.0.0.1', path, query: {}, headers: { host, 'x-amz-content-sha256': sha256 } });
          return put(gateway.port, path, request_.headers as Record<string, string>, body);
        }),
      );
    }
    process.stdout.write(`\nsmall PutObject: ${OBJECT_BYTES} B objects, ${REQUESTS} sequential requests per round, ${ROUNDS} interleaved rounds\n\n`);
    process.stdout.write(`${'CDCS PutObject (COS signature)'.padEnd(52)} ${median(cdcs).toFixed(0).padStart(6)} req/s  (runs: ${cdcs.map((v) => v.toFixed(0)).join(', ')})\n`);
    process.stdout.write(`${'S3 PutObject (SigV4, body SHA-256 verified)'.padEnd(52)} ${median(s3).toFixed(0).padStart(6)} req/s  (runs: ${s3.map((v) => v.toFixed(0)).join(', ')})\n`);
    process.stdout.write(`S3 / CDCS: ${(median(s3) / median(cdcs)).toFixed(2)}×\n`);

    // One large object each way, interleaved: MB/s and the gateway's CPU per MiB (all threads / the request thread).
    const pid = gateway.child.pid as number;
    const large = async (send: (path: string) => Promise<number>, path: string): Promise<{ mbps: number; cpu: number; main: number }> => {
      const [cpu0, main0, t0] = [procCpuMs(`/proc/${pid}/stat`), procCpuMs(`/proc/${pid}/task/${pid}/stat`), process.hrtime.bigint()];
      const status = await send(path);
      if (status !== 200) throw new Error(`large PutObject answered ${status}`);
      const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
      const mib = LARGE_BYTES / MiB;
      return { mbps: LARGE_BYTES / 1e6 / seconds, cpu: (procCpuMs(`/proc/${pid}/stat`) - cpu0) / mib, main: (procCpuMs(`/proc/${pid}/task/${pid}/stat`) - main0) / mib };
    };
    const largeCdcs: Array<{ mbps: number; cpu: number; main: number }> = [];
    const largeS3: Array<{ mbps: number; cpu: number; main: number }> = [];
    for (let round = 0; round < ROUNDS; round += 1) {
      largeCdcs.push(await large(async (path) => (await sendRepeated(gateway.port, 'PUT', path, signed('PUT', gateway.port, path, []), LARGE_BYTES))[0], `/${COFFER}/large/cdcs-${round}`));
      largeS3.push(
        await large(async (path) => {
          const signedRequest = await sigv4.sign({ method: 'PUT', protocol: 'http:', hostname: '127.0.0.1', path, query: {}, headers: { host, 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD' } });
          return (await sendRepeated(gateway.port, 'PUT', path, signedRequest.headers as Record<string, string>, LARGE_BYTES))[0];
        }, `/${COFFER}/large/s3-${round}`),
      );
    }
    const line = (name: string, runs: Array<{ mbps: number; cpu: number; main: number }>): string =>
      `${name.padEnd(52)} ${median(runs.map((r) => r.mbps))
        .toFixed(0)
        .padStart(6)} MB/s  gateway CPU ${median(runs.map((r) => r.cpu)).toFixed(2)} ms/MiB (request thread ${median(runs.map((r) => r.main)).toFixed(2)})  (runs: ${runs.map((r) => r.mbps.toFixed(0)).join(', ')})\n`;
    process.stdout.write(`\nlarge PutObject: ${(LARGE_BYTES / MiB).toFixed(0)} MiB objects, ${ROUNDS} interleaved rounds\n\n`);
    process.stdout.write(line('CDCS PutObject (COS signature)', largeCdcs));
    process.stdout.write(line('S3 PutObject (SigV4, UNSIGNED-PAYLOAD)', largeS3));
    process.stdout.write(`S3 / CDCS request-thread CPU per MiB: ${(median(largeS3.map((r) => r.main)) / median(largeCdcs.map((r) => r.main))).toFixed(2)}× (no target: the same data path behind a different front)\n`);
  } finally {
    for (const child of children) child.kill();
    rmSync(scratch, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`S3 PutObject bench failed: ${(error as Error).stack ?? String(error)}\n`);
  process.exit(1);
});
