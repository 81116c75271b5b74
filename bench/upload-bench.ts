/**
 * `npm run bench`, part 2: the full UploadPart path — COS signature check, plaintext MD5, encryption,
 * forwarding with SigV4 — from a local client through the gateway to a sink upstream, measured in the
 * same run as an express 5 + http-proxy-middleware 4 passthrough to the same sink. Then the gateway's
 * peak RSS for one 5 GiB part and for 32 concurrent 64 MiB parts (fresh processes each), and how many
 * key-provider (KMS) calls an upload costs.
 */
import { spawn as spawnProcess, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { formatKeyTime, signCosRequest } from '../src/auth/cos-signature';
import { PartEncryptor } from '../src/crypto/part-encryptor';
import { ensureInstalled, rcloneEnvironment, rcloneUpload, startNginx, type NginxPassthrough } from './external-peers';
import { ask, benchConfig, childPids, GATEWAY_NODE_FLAGS, procCpuMs, BENCH_SECRET_ID, BENCH_SECRET_KEY, median, reportTarget, sendRepeated, signed, spawn, spawnWith, timed } from './bench-support';

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
  /** The server's main thread alone (the event loop); for nginx, its single-threaded worker. */
  serverMain: number;
  /** A Node server's CPU by kind of thread (threadCpuMs): where the rest of its CPU went. */
  serverThreads: Record<string, number>;
  sink: number;
}
const newCpuTally = (): CpuTally => ({ client: 0, server: 0, serverMain: 0, serverThreads: {}, sink: 0 });

/** CPU ms used so far by a server: all its threads, its main thread alone, and per kind of thread (Node servers). */
type CpuProbe = () => Promise<{ all: number; main: number; threads?: Record<string, number> }>;
const nodeProbe =
  (child: ChildProcess): CpuProbe =>
  async () => {
    const reply = await ask<{ cpuMs: number; mainMs: number; threads: Record<string, number> }>(child, 'cpu');
    return { all: reply.cpuMs, main: reply.mainMs, threads: reply.threads };
  };

/** "main 1.90, crypto workers 2.05, V8 helpers (GC) 0.31" — a Node server's CPU ms per MiB by kind of thread. */
const threadBreakdown = (tally: CpuTally, bytes?: number): string => {
  const t = tally.serverThreads;
  const named = [
    ['main', t['MainThread']],
    ['crypto workers', t['WorkerThread']],
    ['V8 helpers (GC)', t['V8Worker']],
  ] as const;
  const other = Object.entries(t)
    .filter(([name]) => !['MainThread', 'WorkerThread', 'V8Worker'].includes(name))
    .reduce((sum, [, ms]) => sum + ms, 0);
  return [...named, ['other', other] as const].map(([name, ms]) => `${name} ${fixed(perMiB(ms ?? 0, bytes), 0)}`).join(', ');
};

/** CPU ms this (the client) process has used so far, all threads. */
const ownCpuMs = (): number => {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1000;
};

/** Runs `run` and adds the CPU time (ms) this process, the server and the sink used meanwhile to `tally`. */
async function withCpu<T>(tally: CpuTally, server: CpuProbe, sink: ChildProcess, run: () => Promise<T>): Promise<T> {
  const sinkCpu = async (): Promise<number> => (await nodeProbe(sink)()).all;
  const before = { own: ownCpuMs(), server: await server(), sink: await sinkCpu() };
  const result = await run();
  tally.client += ownCpuMs() - before.own;
  const after = await server();
  tally.server += after.all - before.server.all;
  tally.serverMain += after.main - before.server.main;
  for (const [name, ms] of Object.entries(after.threads ?? {})) tally.serverThreads[name] = (tally.serverThreads[name] ?? 0) + ms - (before.server.threads?.[name] ?? 0);
  tally.sink += (await sinkCpu()) - before.sink;
  return result;
}

function* repeatedMiB(size: number): Generator<Buffer> {
  for (let sent = 0; sent < size; sent += MiB) yield size - sent >= MiB ? RANDOM_MIB : RANDOM_MIB.subarray(0, size - sent);
}

/**
 * The per-byte floor of "forward + hash + encrypt", measured in this process on the same bytes the
 * client sends: CPU ms of MD5 alone and of the PartEncryptor alone (into a sink that drops its output).
 */
async function floorCpu(size: number): Promise<{ md5: number; encryptor: number }> {
  let started = ownCpuMs();
  const md5 = createHash('md5');
  for (const piece of repeatedMiB(size)) md5.update(piece);
  md5.digest();
  const md5Ms = ownCpuMs() - started;
  started = ownCpuMs();
  const encryptor = new PartEncryptor({ dataKey: randomBytes(32), objectId: randomBytes(16), partNumber: 1, plaintextLength: size });
  await pipeline(Readable.from(repeatedMiB(size)), encryptor, new Writable({ write: (_chunk, _encoding, callback) => callback() }));
  return { md5: md5Ms, encryptor: ownCpuMs() - started };
}

let objectCounter = 0;
async function initiate(port: number): Promise<{ key: string; uploadId: string }> {
  const key = `bench/object-${(objectCounter += 1)}-${Date.now()}`;
  const [status, body] = await sendRepeated(port, 'POST', `/${COFFER}/${key}?uploads`, signed('POST', port, `/${COFFER}/${key}`, [['uploads', '']]), 0);
  if (status !== 200) throw new Error(`initiate answered ${status}: ${body}`);
  return { key, uploadId: /<UploadId>([0-9a-f]+)<\/UploadId>/.exec(body)?.[1] as string };
}

async function gatewayPart(port: number, upload: { key: string; uploadId: string }, partNumber: number, size: number): Promise<void> {
  const params: Array<[string, string]> = [
    ['partNumber', String(partNumber)],
    ['uploadId', upload.uploadId],
  ];
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
  const params: Array<[string, string]> = [
    ['partNumber', String(partNumber)],
    ['uploadId', upload.uploadId],
  ];
  const now = Math.floor(Date.now() / 1000);
  const { authorization } = signCosRequest({ method: 'PUT', pathname: `/${upload.key}`, params, headers: [['host', EGRESS_HOST]], secretId: BENCH_SECRET_ID, secretKey: BENCH_SECRET_KEY, keyTime: formatKeyTime(now - 60, now + 3600) });
  const [status, body] = await sendRepeated(port, 'PUT', `/${upload.key}?partNumber=${partNumber}&uploadId=${upload.uploadId}`, { host: EGRESS_HOST, authorization }, size, { connection: tls });
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
    direct.push(await withCpu(cpu.direct, nodeProbe(gateway.child), sink.child, () => timed(() => gatewayPart(gateway.port, a, 1, PART), PART)));
    const b = await initiate(gateway.port);
    intercepted.push(await withCpu(cpu.intercepted, nodeProbe(gateway.child), sink.child, () => timed(() => interceptedPart(gateway.port, ca, b, 1, PART), PART)));
  }
  process.stdout.write(`\nHTTPS proxy (CONNECT interception): ${PART / MiB} MiB parts, ${ROUNDS} interleaved rounds on one gateway\n\n`);
  process.stdout.write(`${'UploadPart direct (plain HTTP)'.padEnd(48)} ${median(direct).toFixed(0).padStart(6)} MB/s  (runs: ${direct.map((v) => v.toFixed(0)).join(', ')})\n`);
  process.stdout.write(`${'UploadPart through CONNECT + TLS (leaf cert)'.padEnd(48)} ${median(intercepted).toFixed(0).padStart(6)} MB/s  (runs: ${intercepted.map((v) => v.toFixed(0)).join(', ')})\n`);
  process.stdout.write(`ratio intercepted vs direct: ${(median(intercepted) / median(direct)).toFixed(2)}×\n`);
  const perMiB = (ms: number): string => (ms / ((ROUNDS * PART) / MiB)).toFixed(2).padStart(5);
  for (const [name, tally] of [
    ['direct', cpu.direct],
    ['intercepted', cpu.intercepted],
  ] as const) {
    process.stdout.write(`  CPU ms per MiB ${name.padEnd(11)}: client ${perMiB(tally.client)}, gateway ${perMiB(tally.server)}, sink ${perMiB(tally.sink)}\n`);
    process.stdout.write(`    gateway by thread: ${threadBreakdown(tally)}\n`);
  }
  gateway.child.kill();
}

/** CPU ms per MiB over all rounds of `PART` bytes. */
const perMiB = (ms: number, bytes = ROUNDS * PART): number => ms / (bytes / MiB);
const fixed = (value: number, width = 5): string => value.toFixed(2).padStart(width);
const rateLine = (name: string, runs: number[]): string => `${name.padEnd(52)} ${median(runs).toFixed(0).padStart(6)} MB/s  (runs: ${runs.map((v) => v.toFixed(0)).join(', ')})\n`;

/**
 * The UploadPart path against the two passthroughs, interleaved, with the per-byte floor (MD5 alone,
 * encryptor alone) measured in the same rounds. The targets are CPU per byte, which holds on any
 * machine; throughput ratios are printed but, with client, server and sink sharing two cores, they
 * are set by the total CPU per byte (the "ceiling" line).
 */
async function uploadPathCase(config: string, sink: { child: ChildProcess; port: number }, passthrough: { child: ChildProcess; port: number }, nginx: NginxPassthrough | undefined, children: ChildProcess[]): Promise<void> {
  process.stdout.write(`\nupload path: ${PART / MiB} MiB parts, ${ROUNDS} interleaved rounds, client → server → sink on loopback (2 cores shared by all three)\n\n`);
  const gateway = await spawn('gateway', config);
  children.push(gateway.child);
  const runs = { express: [] as number[], nginx: [] as number[], gateway: [] as number[] };
  const cpu = { express: newCpuTally(), nginx: newCpuTally(), gateway: newCpuTally() };
  const floor = { md5: 0, encryptor: 0 };
  const nginxProbe: CpuProbe = async () => {
    const all = nginx?.cpuMs() ?? 0;
    return { all, main: all };
  };
  const plainPut = (port: number) => async (): Promise<void> => {
    const [status] = await sendRepeated(port, 'PUT', `/bench/passthrough?partNumber=1&uploadId=x`, {}, PART);
    if (status !== 200) throw new Error(`passthrough answered ${status}`);
  };
  for (let round = 0; round < ROUNDS; round += 1) {
    runs.express.push(await withCpu(cpu.express, nodeProbe(passthrough.child), sink.child, () => timed(plainPut(passthrough.port), PART)));
    if (nginx !== undefined) runs.nginx.push(await withCpu(cpu.nginx, nginxProbe, sink.child, () => timed(plainPut(nginx.port), PART)));
    const upload = await initiate(gateway.port);
    runs.gateway.push(await withCpu(cpu.gateway, nodeProbe(gateway.child), sink.child, () => timed(() => gatewayPart(gateway.port, upload, 1, PART), PART)));
    const alone = await floorCpu(PART);
    floor.md5 += alone.md5;
    floor.encryptor += alone.encryptor;
  }
  process.stdout.write(rateLine('express + http-proxy-middleware passthrough', runs.express));
  if (nginx !== undefined) process.stdout.write(rateLine('nginx passthrough (proxy_request_buffering off)', runs.nginx));
  process.stdout.write(rateLine('coffer-gateway UploadPart (auth, MD5, encrypt, SigV4)', runs.gateway));
  process.stdout.write(
    `throughput vs express: ${(median(runs.gateway) / median(runs.express)).toFixed(2)}×${nginx === undefined ? '' : `, vs nginx: ${(median(runs.gateway) / median(runs.nginx)).toFixed(2)}×`} (not a target: on two shared cores the CPU per byte below sets it)\n`,
  );
  // Where the cores went: CPU milliseconds per MiB moved, per process, summed over the rounds.
  const contenders = [['express', cpu.express], ...(nginx === undefined ? [] : [['nginx', cpu.nginx] as const]), ['gateway', cpu.gateway]] as const;
  for (const [name, tally] of contenders) {
    const total = tally.client + tally.server + tally.sink;
    process.stdout.write(
      `  CPU ms per MiB with ${name.padEnd(8)}: client ${fixed(perMiB(tally.client))}, server ${fixed(perMiB(tally.server))} (main thread ${fixed(perMiB(tally.serverMain))}), sink ${fixed(perMiB(tally.sink))}, all ${fixed(perMiB(total))}\n`,
    );
  }
  process.stdout.write(`  gateway CPU ms per MiB by thread: ${threadBreakdown(cpu.gateway)}\n`);
  const capacity = (tally: CpuTally): number => ((2 * 1000) / perMiB(tally.client + tally.server + tally.sink)) * (MiB / 1e6);
  process.stdout.write(
    `  two cores at that cost move at most ${capacity(cpu.express).toFixed(0)} MB/s through express, ${capacity(cpu.gateway).toFixed(0)} MB/s through the gateway (ceiling ratio ${(capacity(cpu.gateway) / capacity(cpu.express)).toFixed(2)}×)\n`,
  );
  const floorMs = perMiB(cpu.express.server) + perMiB(floor.md5) + perMiB(floor.encryptor);
  process.stdout.write(
    `  floor of forward + hash + encrypt: express server ${fixed(perMiB(cpu.express.server), 0)} + MD5 alone ${fixed(perMiB(floor.md5), 0)} + encryptor alone ${fixed(perMiB(floor.encryptor), 0)} = ${fixed(floorMs, 0)} ms/MiB\n`,
  );
  const overFloor = perMiB(cpu.gateway.server) / floorMs;
  reportTarget(`gateway CPU per MiB vs that floor: ${fixed(perMiB(cpu.gateway.server), 0)} / ${fixed(floorMs, 0)} = ${overFloor.toFixed(2)}×  (target ≤ 1.10×)`, overFloor <= 1.1);
  const mainRatio = cpu.gateway.serverMain / cpu.express.serverMain;
  reportTarget(`gateway main-thread CPU per MiB vs express's: ${fixed(perMiB(cpu.gateway.serverMain), 0)} / ${fixed(perMiB(cpu.express.serverMain), 0)} = ${mainRatio.toFixed(2)}×  (target ≤ 1.2×)`, mainRatio <= 1.2);
  const calls = (await ask<{ metrics: string }>(gateway.child, 'metrics')).metrics
    .split('\n')
    .filter((line) => line.startsWith('coffer_gateway_key_provider_calls_total{'))
    .reduce((sum, line) => sum + Number(line.split(' ').pop()), 0);
  reportTarget(`key-provider (KMS) calls: ${calls} for ${ROUNDS} uploads = ${(calls / ROUNDS).toFixed(2)} per upload (target ≤ 1)`, calls / ROUNDS <= 1);
  gateway.child.kill();
}

/**
 * A real peer: the same bytes uploaded by rclone's crypt remote (client-side encryption, NaCl
 * secretbox in 64 KiB chunks, S3 multipart) and by the official COS SDK through the gateway, both
 * to the sink, interleaved. rclone's CPU is the whole client side; the gateway's side is the SDK
 * client plus the gateway.
 */
async function peerCase(config: string, sink: { child: ChildProcess; port: number }, children: ChildProcess[]): Promise<void> {
  process.stdout.write(`\nreal peer: ${PART / MiB} MiB objects, ${ROUNDS} interleaved rounds, to the same sink\n\n`);
  if (!ensureInstalled('rclone', 'rclone')) {
    reportTarget('rclone crypt comparison: rclone is not installed', false);
    return;
  }
  // The SDK with a Domain of the form host/{Bucket} signs the key-only path (what the SDK's users configure).
  const sdkConfig = join(dirname(config), 'sdk-config.json');
  const base = JSON.parse(readFileSync(config, 'utf8'));
  writeFileSync(sdkConfig, JSON.stringify({ ...base, auth: { ...base.auth, cos: { acceptKeyOnlyPath: true } } }));
  const gateway = await spawn('gateway', sdkConfig);
  children.push(gateway.child);
  // Loaded lazily: a devDependency, used only as the gateway's client here.
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- untyped, and loaded only when this bench runs
  const COS = require('cos-nodejs-sdk-v5');
  const cos = new COS({ SecretId: BENCH_SECRET_ID, SecretKey: BENCH_SECRET_KEY, Protocol: 'http:', Domain: `127.0.0.1:${gateway.port}/{Bucket}` });
  const environment = rcloneEnvironment(sink.port);
  const runs = { rclone: [] as number[], gateway: [] as number[] };
  const cpu = { rclone: 0, rcloneSink: 0, gateway: newCpuTally() };
  for (let round = 0; round < ROUNDS; round += 1) {
    const sinkBefore = (await nodeProbe(sink.child)()).all;
    runs.rclone.push(
      await timed(async () => {
        cpu.rclone += await rcloneUpload(environment, `peer-${round}-${Date.now()}.bin`, Readable.from(repeatedMiB(PART)));
      }, PART),
    );
    cpu.rcloneSink += (await nodeProbe(sink.child)()).all - sinkBefore;
    runs.gateway.push(
      await withCpu(cpu.gateway, nodeProbe(gateway.child), sink.child, () =>
        timed(
          () =>
            new Promise<void>((resolve, reject) => {
              cos.putObject({ Bucket: COFFER, Region: 'ap-guangzhou', Key: `bench/peer-${round}-${Date.now()}.bin`, Body: Readable.from(repeatedMiB(PART)), ContentLength: PART }, (error: Error | null) =>
                error === null ? resolve() : reject(error),
              );
            }),
          PART,
        ),
      ),
    );
  }
  process.stdout.write(rateLine('rclone 1.60 crypt remote → S3 (rcat, defaults)', runs.rclone));
  process.stdout.write(rateLine('COS SDK putObject → coffer-gateway → S3', runs.gateway));
  process.stdout.write(
    `  CPU ms per MiB, rclone: ${fixed(perMiB(cpu.rclone))} (sink ${fixed(perMiB(cpu.rcloneSink))}); SDK client ${fixed(perMiB(cpu.gateway.client))} + gateway ${fixed(perMiB(cpu.gateway.server))} = ${fixed(perMiB(cpu.gateway.client + cpu.gateway.server))} (sink ${fixed(perMiB(cpu.gateway.sink))})\n`,
  );
  const speed = median(runs.gateway) / median(runs.rclone);
  reportTarget(`throughput, gateway path vs rclone crypt: ${speed.toFixed(2)}×  (target > 1×)`, speed > 1);
  const cost = (cpu.gateway.client + cpu.gateway.server) / cpu.rclone;
  reportTarget(`CPU per byte, SDK client + gateway vs rclone crypt: ${cost.toFixed(2)}×  (target < 1×)`, cost < 1);
  gateway.child.kill();
}

/** Idle RSS of a fresh gateway, then its peak RSS for one 5 GiB part; then 32 concurrent 64 MiB parts on another. */
async function memoryCase(config: string, children: ChildProcess[]): Promise<void> {
  process.stdout.write('\nmemory: fresh gateway processes\n\n');
  let gateway = await spawn('gateway', config);
  children.push(gateway.child);
  const idleRss = (await ask<{ idleRssMb: number }>(gateway.child, 'idle-rss')).idleRssMb;
  reportTarget(`idle gateway RSS ${idleRss.toFixed(0)} MB (target ≤ 90 MB)`, idleRss <= 90);
  const big = await initiate(gateway.port);
  const bigRate = await timed(() => gatewayPart(gateway.port, big, 1, BIG_PART), BIG_PART);
  const bigRss = (await ask<{ rssMb: number }>(gateway.child, 'rss')).rssMb;
  reportTarget(`one ${(BIG_PART / GiB).toFixed(2)} GiB part: ${bigRate.toFixed(0)} MB/s, gateway peak RSS ${bigRss.toFixed(0)} MB (target ≤ 140 MB)`, bigRss <= 140);
  gateway.child.kill();

  gateway = await spawn('gateway', config);
  children.push(gateway.child);
  const many = await initiate(gateway.port);
  const concurrentRate = await timed(
    async () => {
      await Promise.all(Array.from({ length: 32 }, (_, i) => gatewayPart(gateway.port, many, i + 1, 64 * MiB)));
    },
    32 * 64 * MiB,
  );
  const manyRss = (await ask<{ rssMb: number }>(gateway.child, 'rss')).rssMb;
  reportTarget(`32 concurrent 64 MiB parts: ${concurrentRate.toFixed(0)} MB/s aggregate, gateway peak RSS ${manyRss.toFixed(0)} MB (target ≤ 260 MB)`, manyRss <= 260);
  gateway.child.kill();
}

/**
 * One process using its cores: CONCURRENT parts at once on a gateway whose crypto pool has 1, then 2
 * workers (interleaved rounds): aggregate throughput and where the CPU went (main thread vs the rest).
 */
async function cryptoWorkersCase(config: string, sink: { child: ChildProcess; port: number }, children: ChildProcess[]): Promise<void> {
  const concurrent = 4;
  const size = Math.max(MiB, Math.floor(PART / concurrent / MiB) * MiB);
  process.stdout.write(`\none process, its cores: ${concurrent} concurrent ${size / MiB} MiB parts, crypto pool of 1 and of 2 workers, ${ROUNDS} interleaved rounds\n\n`);
  const gateways = [await spawnWith({ BENCH_CRYPTO_WORKERS: '1' }, 'gateway', config), await spawnWith({ BENCH_CRYPTO_WORKERS: '2' }, 'gateway', config)];
  children.push(...gateways.map((gateway) => gateway.child));
  const runs: number[][] = [[], []];
  const cpu = [newCpuTally(), newCpuTally()];
  for (let round = 0; round < ROUNDS; round += 1) {
    for (const [index, gateway] of gateways.entries()) {
      const upload = await initiate(gateway.port);
      runs[index]?.push(
        await withCpu(cpu[index] as CpuTally, nodeProbe(gateway.child), sink.child, () =>
          timed(async () => {
            await Promise.all(Array.from({ length: concurrent }, (_, i) => gatewayPart(gateway.port, upload, i + 1, size)));
          }, concurrent * size),
        ),
      );
    }
  }
  for (const [index, label] of ['1 crypto worker', '2 crypto workers'].entries()) {
    const tally = cpu[index] as CpuTally;
    const bytes = ROUNDS * concurrent * size;
    process.stdout.write(rateLine(`coffer-gateway, ${label}, aggregate`, runs[index] as number[]));
    process.stdout.write(`  CPU ms per MiB: gateway ${fixed(perMiB(tally.server, bytes))} (main thread ${fixed(perMiB(tally.serverMain, bytes))}), client ${fixed(perMiB(tally.client, bytes))}, sink ${fixed(perMiB(tally.sink, bytes))}\n`);
    process.stdout.write(`    gateway by thread: ${threadBreakdown(tally, bytes)}\n`);
  }
  process.stdout.write(`2 workers vs 1: ${(median(runs[1] as number[]) / median(runs[0] as number[])).toFixed(2)}× aggregate (client, gateway and sink share the same 2 cores here)\n`);
  for (const gateway of gateways) gateway.child.kill();
}

/** `coffer-gateway serve --workers N` as users run it (the npm start flags); its port from the start log line. */
async function startCluster(config: string, workers: number): Promise<{ child: ChildProcess; port: number; cpu: CpuProbe }> {
  const child = spawnProcess(process.execPath, [...GATEWAY_NODE_FLAGS, join(__dirname, '..', 'src', 'cli.js'), 'serve', '--workers', String(workers), '-c', config], { stdio: ['ignore', 'pipe', 'ignore'] });
  const port = await new Promise<number>((resolve, reject) => {
    let seen = 0;
    let log = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      log += chunk.toString('utf8');
      const lines = log.split('\n');
      log = lines.pop() ?? '';
      for (const line of lines) {
        const port = /"port":(\d+).*"msg":"coffer-gateway listening"/.exec(line)?.[1];
        if (port !== undefined && (seen += 1) === workers) resolve(Number(port));
      }
    });
    child.once('exit', (code) => reject(new Error(`serve --workers ${workers} exited with ${code}`)));
  });
  child.stdout?.resume();
  const primary = child.pid as number;
  // The primary and its workers; "main thread" = the main threads of the processes that serve
  // (the workers; with --workers 1 there is no primary, the one process serves).
  const cpu: CpuProbe = async () => {
    const workersOf = childPids(primary);
    const serving = workersOf.length > 0 ? workersOf : [primary];
    return {
      all: [primary, ...workersOf].reduce((sum, pid) => sum + procCpuMs(`/proc/${pid}/stat`), 0),
      main: serving.reduce((sum, pid) => sum + procCpuMs(`/proc/${pid}/task/${pid}/stat`), 0),
    };
  };
  return { child, port, cpu };
}

/**
 * One host, more processes: `serve --workers 1` and `--workers 2` (node:cluster), CONCURRENT parts at
 * once, interleaved: aggregate throughput and CPU per MiB (primary + workers).
 */
async function clusterCase(config: string, sink: { child: ChildProcess; port: number }, children: ChildProcess[]): Promise<void> {
  const concurrent = 4;
  const size = Math.max(MiB, Math.floor(PART / concurrent / MiB) * MiB);
  // Fixed ports are not needed: node:cluster shares one random port among the workers of a primary.
  const clusterConfig = join(dirname(config), 'cluster-config.json');
  writeFileSync(clusterConfig, readFileSync(config, 'utf8'));
  process.stdout.write(`\nserve --workers 1 and 2 (node:cluster): ${concurrent} concurrent ${size / MiB} MiB parts, ${ROUNDS} interleaved rounds\n\n`);
  const clusters = [await startCluster(clusterConfig, 1), await startCluster(clusterConfig, 2)];
  children.push(...clusters.map((c) => c.child));
  const runs: number[][] = [[], []];
  const cpu = [newCpuTally(), newCpuTally()];
  for (let round = 0; round < ROUNDS; round += 1) {
    for (const [index, gateway] of clusters.entries()) {
      const upload = await initiate(gateway.port);
      runs[index]?.push(
        await withCpu(cpu[index] as CpuTally, gateway.cpu, sink.child, () =>
          timed(async () => {
            await Promise.all(Array.from({ length: concurrent }, (_, i) => gatewayPart(gateway.port, upload, i + 1, size)));
          }, concurrent * size),
        ),
      );
    }
  }
  for (const [index, label] of ['serve --workers 1', 'serve --workers 2'].entries()) {
    const tally = cpu[index] as CpuTally;
    const bytes = ROUNDS * concurrent * size;
    process.stdout.write(rateLine(`coffer-gateway ${label}, aggregate`, runs[index] as number[]));
    process.stdout.write(`  CPU ms per MiB: gateway ${fixed(perMiB(tally.server, bytes))} (main threads ${fixed(perMiB(tally.serverMain, bytes))}), client ${fixed(perMiB(tally.client, bytes))}, sink ${fixed(perMiB(tally.sink, bytes))}\n`);
  }
  process.stdout.write(`--workers 2 vs 1: ${(median(runs[1] as number[]) / median(runs[0] as number[])).toFixed(2)}× aggregate\n`);
  for (const gateway of clusters) gateway.child.kill();
}

/** BENCH_ONLY=<case>[,<case>…] runs some cases alone (e.g. a quick check at a small BENCH_PART_BYTES). */
const CASES = (process.env['BENCH_ONLY'] ?? 'upload,workers,cluster,egress,peer,memory').split(',');

async function main(): Promise<void> {
  const scratch = mkdtempSync(join(tmpdir(), 'coffer-bench-'));
  const sink = await spawn('sink', '0');
  const passthrough = await spawn('passthrough', String(sink.port));
  const config = join(scratch, 'config.json');
  writeFileSync(config, benchConfig(sink.port, join(scratch, 'keyring')));
  const children: ChildProcess[] = [sink.child, passthrough.child];
  try {
    if (CASES.includes('upload')) {
      const nginx = ensureInstalled('nginx', 'nginx-light') ? await startNginx(join(scratch, 'nginx'), sink.port) : undefined;
      if (nginx !== undefined) children.push(nginx.child);
      await uploadPathCase(config, sink, passthrough, nginx, children);
      nginx?.child.kill();
    }
    if (CASES.includes('workers')) await cryptoWorkersCase(config, sink, children);
    if (CASES.includes('cluster')) await clusterCase(config, sink, children);
    if (CASES.includes('egress')) await egressCase(scratch, sink, children);
    if (CASES.includes('peer')) await peerCase(config, sink, children);
    if (CASES.includes('memory')) await memoryCase(config, children);
  } finally {
    for (const child of children) child.kill();
    rmSync(scratch, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`upload bench failed: ${(error as Error).stack ?? String(error)}\n`);
  process.exit(1);
});
