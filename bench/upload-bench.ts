/**
 * `npm run bench`, part 2: the full UploadPart path — COS signature check, plaintext MD5, encryption,
 * forwarding with SigV4 — from a local client through the gateway to a sink upstream, measured in the
 * same run as an express 5 + http-proxy-middleware 4 passthrough to the same sink. Then the gateway's
 * peak RSS for one 5 GiB part and for 32 concurrent 64 MiB parts (fresh processes each), and how many
 * key-provider (KMS) calls an upload costs.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ask, benchConfig, median, reportTarget, sendRepeated, signed, spawn, timed } from './bench-support';

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

async function main(): Promise<void> {
  const scratch = mkdtempSync(join(tmpdir(), 'coffer-bench-'));
  const sink = await spawn('sink', '0');
  const passthrough = await spawn('passthrough', String(sink.port));
  const config = join(scratch, 'config.json');
  writeFileSync(config, benchConfig(sink.port, join(scratch, 'keyring')));
  const children: ChildProcess[] = [sink.child, passthrough.child];
  try {
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
