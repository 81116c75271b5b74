/**
 * `npm run bench`, part 3: the read path. A 1 GiB object is stored through the gateway (PutObject) in
 * a sink that keeps it on disk; then, interleaved in the same run, whole-object GETs through the
 * gateway (COS signature, manifest, data key, ranged upstream GET, decryption with verification) and
 * through an express + http-proxy-middleware passthrough GETting a plain object of the same size from
 * the same sink; then random 1 MiB range reads per second both ways.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BENCH_COFFER as COFFER, benchConfig, median, reportTarget, sendRepeated, signed, spawn, timed } from './bench-support';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const SIZE = Number(process.env['BENCH_GET_BYTES'] ?? GiB);
const ROUNDS = Number(process.env['BENCH_ROUNDS'] ?? 3);
const RANGE_READS = Number(process.env['BENCH_RANGE_READS'] ?? 200);

async function put(port: number, path: string, headers: Record<string, string>, size: number): Promise<number> {
  return (await sendRepeated(port, 'PUT', path, headers, size))[0];
}

/** GETs and discards the body; resolves to the number of body bytes after checking the status. */
function get(port: number, path: string, headers: Record<string, string>, expectStatus: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method: 'GET', path, headers });
    req.on('response', (res) => {
      let bytes = 0;
      res.on('data', (c: Buffer) => (bytes += c.length));
      res.on('end', () => (res.statusCode === expectStatus ? resolve(bytes) : reject(new Error(`GET ${path} answered ${res.statusCode}`))));
    });
    req.on('error', reject);
    req.end();
  });
}

async function main(): Promise<void> {
  const scratch = mkdtempSync(join(tmpdir(), 'coffer-get-bench-'));
  const sink = await spawn('sink', '0', scratch);
  const passthrough = await spawn('passthrough', String(sink.port));
  const config = join(scratch, 'config.json');
  writeFileSync(config, benchConfig(sink.port, join(scratch, 'keyring')));
  const gateway = await spawn('gateway', config);
  const children: ChildProcess[] = [sink.child, passthrough.child, gateway.child];
  try {
    const key = `bench/read-${Date.now()}`;
    const gatewayPath = `/${COFFER}/${key}`;
    const auth = (): Record<string, string> => signed('GET', gateway.port, gatewayPath, []);
    if ((await put(gateway.port, gatewayPath, signed('PUT', gateway.port, gatewayPath, []), SIZE)) !== 200) throw new Error('PutObject through the gateway failed');
    if ((await put(passthrough.port, '/bench/plain', {}, SIZE)) !== 200) throw new Error('PUT through the passthrough failed');

    process.stdout.write(`\nread path: ${(SIZE / GiB).toFixed(2)} GiB object, ${ROUNDS} interleaved rounds, sink → server → client on loopback\n\n`);
    const through: number[] = [];
    const viaGateway: number[] = [];
    for (let round = 0; round < ROUNDS; round += 1) {
      through.push(await timed(async () => void (await get(passthrough.port, '/bench/plain', {}, 200)), SIZE));
      viaGateway.push(await timed(async () => void (await get(gateway.port, gatewayPath, auth(), 200)), SIZE));
    }
    const ratio = median(viaGateway) / median(through);
    process.stdout.write(`${'express + http-proxy-middleware passthrough GET'.padEnd(52)} ${median(through).toFixed(0).padStart(6)} MB/s  (runs: ${through.map((v) => v.toFixed(0)).join(', ')})\n`);
    process.stdout.write(`${'coffer-gateway GetObject (verify + decrypt)'.padEnd(52)} ${median(viaGateway).toFixed(0).padStart(6)} MB/s  (runs: ${viaGateway.map((v) => v.toFixed(0)).join(', ')})\n`);
    reportTarget(`ratio vs passthrough: ${ratio.toFixed(2)}×  (target ≥ 0.8×)`, ratio >= 0.8);

    // Random 1 MiB ranges, the same offsets both ways, alternating in blocks so both see the same machine.
    const offsets = Array.from({ length: RANGE_READS }, () => Math.floor(Math.random() * (SIZE - MiB)));
    const rate = async (port: number, path: string, headers: () => Record<string, string>): Promise<number> => {
      const started = process.hrtime.bigint();
      for (const offset of offsets) await get(port, path, { ...headers(), range: `bytes=${offset}-${offset + MiB - 1}` }, 206);
      return offsets.length / (Number(process.hrtime.bigint() - started) / 1e9);
    };
    const throughRates: number[] = [];
    const gatewayRates: number[] = [];
    for (let round = 0; round < ROUNDS; round += 1) {
      throughRates.push(await rate(passthrough.port, '/bench/plain', () => ({})));
      gatewayRates.push(await rate(gateway.port, gatewayPath, auth));
    }
    process.stdout.write(`random 1 MiB range reads: passthrough ${median(throughRates).toFixed(0)}/s, gateway ${median(gatewayRates).toFixed(0)}/s → ${(median(gatewayRates) / median(throughRates)).toFixed(2)}×\n`);
  } finally {
    for (const child of children) child.kill();
    rmSync(scratch, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`get bench failed: ${(error as Error).stack ?? String(error)}\n`);
  process.exit(1);
});
