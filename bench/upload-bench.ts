/**
 * `npm run bench`, part 2: the full UploadPart path — COS signature check, plaintext MD5, encryption,
 * forwarding with SigV4 — from a local client through the gateway to a sink upstream, measured in the
 * same run as an express 5 + http-proxy-middleware 4 passthrough to the same sink. Then the gateway's
 * peak RSS for one 5 GiB part and for 32 concurrent 64 MiB parts (fresh processes each), and how many
 * key-provider (KMS) calls an upload costs.
 */
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { formatKeyTime, signCosRequest } from '../src/auth/cos-signature';
import { ask, benchConfig, BENCH_SECRET_ID, BENCH_SECRET_KEY, median, reportTarget, sendRepeated, signed, spawn, timed } from './bench-support';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const PART = Number(process.env['BENCH_PART_BYTES'] ?? GiB);
// The largest part whose ciphertext fits a 5 GiB upstream part (docs/FORMAT.md §8.4): 5 GiB − 1310516 bytes.
const BIG_PART = Number(process.env['BENCH_BIG_PART_BYTES'] ?? 5 * GiB - 1310516);
const ROUNDS = Number(process.env['BENCH_ROUNDS'] ?? 3);
import { BENCH_COFFER as COFFER } from './bench-support';



interface CpuTally {
  client: number;
  server: number;
  sink: number;
}
const newCpuTally = (): CpuTally => ({ client: 0, server: 0, sink: 0 });

/** Runs `run` and adds the CPU time (ms) this process, the server and the sink used meanwhile to `tally`. */
async function withCpu<T>(tally: CpuTally, server: ChildProcess, sink: ChildProcess, run: () => Promise<T>): Promise<T> {
  const cpuOf = async (child: ChildProcess): Promise<number> => (await ask<{ cpuMs: number }>(child, 'cpu')).cpuMs;
  const own = (): number => {
    const usage = process.cpuUsage();
    return (usage.user + usage.system) / 1000;
  };
  const before = [own(), await cpuOf(server), await cpuOf(sink)] as const;
  const result = await run();
  tally.client += own() - before[0];
  tally.server += (await cpuOf(server)) - before[1];
  tally.sink += (await cpuOf(sink)) - before[2];
  return result;
}

let objectCounter = 0;
async function initiate(port: number): Promise<{ key: string; uploadId: string }> {
  const key = `bench/object-${(objectCounter += 1)}-${Date.now()}`;
  const [status, body] = await sendRepeated(port, 'POST', `/${COFFER}/${key}?uploads`, signed('POST', port, `/${COFFER}/${key}`, [['uploads', '']]), 0);
  if (status !== 200) throw new Error(`initiate answered ${status}: ${body}`);
  return { key, uploadId: /<UploadId>([0-9a-f]+)<\/UploadId>/.exec(body)?.[1] as string };
}

async function gatewayPart(port: number, upload: { key: string; uploadId: string }, partNumber: number, size: number): Promise<void> {
  const params: Array<[string, string]> = [['partNumber', String(partNumber)], ['uploadId', upload.uploadId]];
  const [status, body] = await sendRepeated(port, 'PUT', `/${COFFER}/${upload.key}?partNumber=${partNumber}&uploadId=${upload.uploadId}`, signed('PUT', port, `/${COFFER}/${upload.key}`, params), size);
  if (status !== 200) throw new Error(`UploadPart answered ${status}: ${body}`);
}

/** The coffer's virtual-hosted endpoint name, what the SDK CONNECTs to when the gateway is its https proxy. */
const EGRESS_HOST = `${COFFER}.cos.ap-guangzhou.myqcloud.com`;
const RANDOM_MIB = randomBytes(MiB);

/** CONNECT through the gateway to EGRESS_HOST:443 and a TLS client inside, trusting the gateway's CA. */
function openTunnel(port: number, ca: string): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('error', reject);
    socket.write(`CONNECT ${EGRESS_HOST}:443 HTTP/1.1\r\nHost: ${EGRESS_HOST}:443\r\n\r\n`);
    let head = '';
    const onData = (chunk: Buffer): void => {
      head += chunk.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      socket.off('data', onData);
      if (!head.startsWith('HTTP/1.1 200')) return reject(new Error(`CONNECT answered ${head.split('\r\n')[0]}`));
      const tls = tlsConnect({ socket, servername: EGRESS_HOST, ca });
      tls.once('secureConnect', () => resolve(tls));
      tls.once('error', reject);
    };
    socket.on('data', onData);
  });
}

/** UploadPart as the SDK sends it through the gateway as https proxy: a new tunnel, TLS, a virtual-hosted request. */
async function interceptedPart(port: number, ca: string, upload: { key: string; uploadId: string }, partNumber: number, size: number): Promise<void> {
  const tls = await openTunnel(port, ca);
  const params: Array<[string, string]> = [['partNumber', String(partNumber)], ['uploadId', upload.uploadId]];
  const now = Math.floor(Date.now() / 1000);
  const { authorization } = signCosRequest({ method: 'PUT', pathname: `/${upload.key}`, params, headers: [['host', EGRESS_HOST]], secretId: BENCH_SECRET_ID, secretKey: BENCH_SECRET_KEY, keyTime: formatKeyTime(now - 60, now + 3600) });
  const [status, body] = await new Promise<[number, string]>((resolve, reject) => {
    const req = request({ createConnection: () => tls, method: 'PUT', path: `/${upload.key}?partNumber=${partNumber}&uploadId=${upload.uploadId}`, headers: { host: EGRESS_HOST, authorization, 'content-length': String(size) } });
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve([res.statusCode as number, Buffer.concat(chunks).toString('utf8')]));
    });
    req.on('error', reject);
    let sent = 0;
    const pump = (): void => {
      while (sent < size) {
        const piece = size - sent >= MiB ? RANDOM_MIB : RANDOM_MIB.subarray(0, size - sent);
        sent += piece.length;
        if (!req.write(piece)) return void req.once('drain', pump);
      }
      req.end();
    };
    pump();
  });
  tls.destroy();
  if (status !== 200) throw new Error(`intercepted UploadPart answered ${status}: ${body}`);
}

/**
 * The same UploadPart, direct (plain HTTP) and through CONNECT interception (TLS terminated by the
 * gateway with its leaf certificate), interleaved on one gateway: the ratio is the cost of the TLS hop.
 */
async function egressCase(scratch: string, sink: { child: ChildProcess; port: number }, children: ChildProcess[]): Promise<void> {
  const config = join(scratch, 'egress-config.json');
  writeFileSync(config, JSON.stringify({ ...JSON.parse(benchConfig(sink.port, join(scratch, 'keyring'))), egress: { enabled: true, localCaDirectory: join(scratch, 'egress-ca') } }));
  const gateway = await spawn('gateway', config);
  children.push(gateway.child);
  const ca = readFileSync(join(scratch, 'egress-ca', 'ca.pem'), 'utf8');
  const direct: number[] = [];
  const intercepted: number[] = [];
  const cpu = { direct: newCpuTally(), intercepted: newCpuTally() };
  for (let round = 0; round < ROUNDS; round += 1) {
    const a = await initiate(gateway.port);
    direct.push(await withCpu(cpu.direct, gateway.child, sink.child, () => timed(() => gatewayPart(gateway.port, a, 1, PART), PART)));
    const b = await initiate(gateway.port);
    intercepted.push(await withCpu(cpu.intercepted, gateway.child, sink.child, () => timed(() => interceptedPart(gateway.port, ca, b, 1, PART), PART)));
  }
  process.stdout.write(`\nHTTPS proxy (CONNECT interception): ${PART / MiB} MiB parts, ${ROUNDS} interleaved rounds on one gateway\n\n`);
  process.stdout.write(`${'UploadPart direct (plain HTTP)'.padEnd(48)} ${median(direct).toFixed(0).padStart(6)} MB/s  (runs: ${direct.map((v) => v.toFixed(0)).join(', ')})\n`);
  process.stdout.write(`${'UploadPart through CONNECT + TLS (leaf cert)'.padEnd(48)} ${median(intercepted).toFixed(0).padStart(6)} MB/s  (runs: ${intercepted.map((v) => v.toFixed(0)).join(', ')})\n`);
  process.stdout.write(`ratio intercepted vs direct: ${(median(intercepted) / median(direct)).toFixed(2)}×\n`);
  const perMiB = (ms: number): string => (ms / ((ROUNDS * PART) / MiB)).toFixed(2).padStart(5);
  for (const [name, tally] of [['direct', cpu.direct], ['intercepted', cpu.intercepted]] as const) {
    process.stdout.write(`  CPU ms per MiB ${name.padEnd(11)}: client ${perMiB(tally.client)}, gateway ${perMiB(tally.server)}, sink ${perMiB(tally.sink)}\n`);
  }
  gateway.child.kill();
}

async function main(): Promise<void> {
  const scratch = mkdtempSync(join(tmpdir(), 'coffer-bench-'));
  const sink = await spawn('sink', '0');
  const passthrough = await spawn('passthrough', String(sink.port));
  const config = join(scratch, 'config.json');
  writeFileSync(config, benchConfig(sink.port, join(scratch, 'keyring')));
  const children: ChildProcess[] = [sink.child, passthrough.child];
  try {
    // BENCH_ONLY=egress: only the HTTPS-proxy case (e.g. a quick check at a small BENCH_PART_BYTES).
    if (process.env['BENCH_ONLY'] === 'egress') {
      await egressCase(scratch, sink, children);
      return;
    }
    process.stdout.write(`\nupload path: ${PART / MiB} MiB parts, ${ROUNDS} interleaved rounds, client → server → sink on loopback (2 cores shared by all three)\n\n`);
    let gateway = await spawn('gateway', config);
    children.push(gateway.child);
    const through: number[] = [];
    const viaGateway: number[] = [];
    const cpu = { passthrough: newCpuTally(), gateway: newCpuTally() };
    for (let round = 0; round < ROUNDS; round += 1) {
      through.push(await withCpu(cpu.passthrough, passthrough.child, sink.child, () => timed(async () => {
        const [status] = await sendRepeated(passthrough.port, 'PUT', `/bench/passthrough?partNumber=1&uploadId=x`, {}, PART);
        if (status !== 200) throw new Error(`passthrough answered ${status}`);
      }, PART)));
      const upload = await initiate(gateway.port);
      const server = gateway.child;
      viaGateway.push(await withCpu(cpu.gateway, server, sink.child, () => timed(() => gatewayPart(gateway.port, upload, 1, PART), PART)));
    }
    const ratio = median(viaGateway) / median(through);
    process.stdout.write(`${'express + http-proxy-middleware passthrough'.padEnd(48)} ${median(through).toFixed(0).padStart(6)} MB/s  (runs: ${through.map((v) => v.toFixed(0)).join(', ')})\n`);
    process.stdout.write(`${'coffer-gateway UploadPart (auth, MD5, encrypt, SigV4)'.padEnd(48)} ${median(viaGateway).toFixed(0).padStart(6)} MB/s  (runs: ${viaGateway.map((v) => v.toFixed(0)).join(', ')})\n`);
    reportTarget(`ratio vs passthrough: ${ratio.toFixed(2)}×  (target ≥ 0.8×)`, ratio >= 0.8);
    // Where the two cores went: CPU milliseconds per MiB moved, per process, summed over the rounds.
    const perMiB = (ms: number): string => (ms / ((ROUNDS * PART) / MiB)).toFixed(2).padStart(5);
    for (const [name, tally] of [['passthrough', cpu.passthrough], ['gateway', cpu.gateway]] as const) {
      const total = tally.client + tally.server + tally.sink;
      process.stdout.write(`  CPU ms per MiB with the ${name.padEnd(11)}: client ${perMiB(tally.client)}, server ${perMiB(tally.server)}, sink ${perMiB(tally.sink)}, all ${perMiB(total)}\n`);
    }
    const capacity = (tally: CpuTally): number => (2 * 1000) / ((tally.client + tally.server + tally.sink) / ((ROUNDS * PART) / MiB)) * (MiB / 1e6);
    process.stdout.write(`  two cores at that cost move at most ${capacity(cpu.passthrough).toFixed(0)} MB/s through the passthrough, ${capacity(cpu.gateway).toFixed(0)} MB/s through the gateway (ceiling ratio ${(capacity(cpu.gateway) / capacity(cpu.passthrough)).toFixed(2)}×)\n`);
    const calls = (await ask<{ metrics: string }>(gateway.child, 'metrics')).metrics
      .split('\n')
      .filter((line) => line.startsWith('coffer_gateway_key_provider_calls_total{'))
      .reduce((sum, line) => sum + Number(line.split(' ').pop()), 0);
    reportTarget(`key-provider (KMS) calls: ${calls} for ${ROUNDS} uploads = ${(calls / ROUNDS).toFixed(2)} per upload (target ≤ 1)`, calls / ROUNDS <= 1);
    gateway.child.kill();
    // BENCH_ONLY=ratio: only the interleaved ratio above (a before/after check on a shared machine).
    if (process.env['BENCH_ONLY'] === 'ratio') return;

    await egressCase(scratch, sink, children);

    gateway = await spawn('gateway', config);
    children.push(gateway.child);
    const big = await initiate(gateway.port);
    const bigRate = await timed(() => gatewayPart(gateway.port, big, 1, BIG_PART), BIG_PART);
    const bigRss = (await ask<{ rssMb: number }>(gateway.child, 'rss')).rssMb;
    reportTarget(`one ${(BIG_PART / GiB).toFixed(2)} GiB part: ${bigRate.toFixed(0)} MB/s, gateway peak RSS ${bigRss.toFixed(0)} MB (target ≤ 150 MB)`, bigRss <= 150);
    gateway.child.kill();

    gateway = await spawn('gateway', config);
    children.push(gateway.child);
    const many = await initiate(gateway.port);
    const concurrentRate = await timed(async () => {
      await Promise.all(Array.from({ length: 32 }, (_, i) => gatewayPart(gateway.port, many, i + 1, 64 * MiB)));
    }, 32 * 64 * MiB);
    const manyRss = (await ask<{ rssMb: number }>(gateway.child, 'rss')).rssMb;
    reportTarget(`32 concurrent 64 MiB parts: ${concurrentRate.toFixed(0)} MB/s aggregate, gateway peak RSS ${manyRss.toFixed(0)} MB (target ≤ 300 MB)`, manyRss <= 300);
  } finally {
    for (const child of children) child.kill();
    rmSync(scratch, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`upload bench failed: ${(error as Error).stack ?? String(error)}\n`);
  process.exit(1);
});
