/**
 * What the benchmarks share: one child process per server (so each one's peak RSS is its own),
 * COS-signed requests, timing and medians.
 */
import { execFileSync, fork, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { request } from 'node:http';
import type { Duplex } from 'node:stream';
import { join } from 'node:path';
import { formatKeyTime, signCosRequest } from '../src/auth/cos-signature';

export const BENCH_COFFER = 'bench-1250000000';
export const BENCH_SECRET_ID = 'AKIDbench';
export const BENCH_SECRET_KEY = 'bench-secret-key-0123456789abcdef';

/**
 * The Node flags `npm start` and the image run the gateway with (package.json `start`, Dockerfile
 * ENTRYPOINT; test/deploy/image.test.ts keeps the three equal): the benchmark measures what users run.
 * Why this flag: README "Memory and the young generation".
 */
export const GATEWAY_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=4'];

/** Node flags per server kind: the gateway's are the production ones; BENCH_<KIND>_FLAGS overrides (experiments). */
function nodeFlags(kind: string): string[] {
  const override = process.env[`BENCH_${kind.toUpperCase()}_FLAGS`];
  if (override !== undefined) return override.split(' ').filter((flag) => flag !== '');
  return kind === 'gateway' ? [...GATEWAY_NODE_FLAGS] : [];
}

/** Starts `bench-process.js <kind> <args…>` and resolves once it listens. */
export function spawn(kind: string, ...args: string[]): Promise<{ child: ChildProcess; port: number }> {
  return spawnWith({}, kind, ...args);
}

/** `spawn` with extra environment variables for the child. */
export function spawnWith(environment: NodeJS.ProcessEnv, kind: string, ...args: string[]): Promise<{ child: ChildProcess; port: number }> {
  const child = fork(join(__dirname, 'bench-process.js'), [kind, ...args], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'], execArgv: nodeFlags(kind), env: { ...process.env, ...environment } });
  return new Promise((resolve, reject) => {
    child.once('message', (message: { port: number }) => resolve({ child, port: message.port }));
    child.once('exit', (code) => reject(new Error(`${kind} exited with ${code}`)));
  });
}

/** Clock ticks per second of /proc's utime/stime (almost always 100). */
const CLOCK_TICKS = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());

/**
 * CPU time (ms, user + system) of a process or thread from /proc: `/proc/<pid>/stat` is the whole
 * process (all its threads), `/proc/<pid>/task/<pid>/stat` its main thread alone. With `children`,
 * the CPU of children already waited for is added (cutime/cstime), e.g. a finished `rclone` under `sh`.
 */
export function procCpuMs(statPath: string, children = false): number {
  // The command name (field 2) may hold spaces; the fields after its closing parenthesis start at field 3.
  const text = readFileSync(statPath, 'utf8');
  const fields = text
    .slice(text.lastIndexOf(')') + 2)
    .split(' ')
    .map(Number);
  const ticks = (fields[11] as number) + (fields[12] as number) + (children ? (fields[13] as number) + (fields[14] as number) : 0);
  return (ticks * 1000) / CLOCK_TICKS;
}

/**
 * CPU ms per kind of thread of a process, from /proc/<pid>/task/<tid>/stat, by thread name (Node 24
 * names them): "MainThread" (the event loop), "WorkerThread" (worker_threads: the crypto workers),
 * "V8Worker" (V8's platform threads: parallel scavenges, concurrent marking, compilation), "libuv-worker".
 */
export function threadCpuMs(pid: number | 'self'): Record<string, number> {
  const totals: Record<string, number> = {};
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const text = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const name = text.slice(text.indexOf('(') + 1, text.lastIndexOf(')'));
      totals[name] = (totals[name] ?? 0) + procCpuMs(`/proc/${pid}/task/${tid}/stat`);
    } catch {
      // the thread exited meanwhile
    }
  }
  return totals;
}

/** The process ids whose parent is `pid` (nginx's workers under its master). */
export function childPids(pid: number): number[] {
  return readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .filter((name) => {
      try {
        const text = readFileSync(`/proc/${name}/stat`, 'utf8');
        return Number(text.slice(text.lastIndexOf(')') + 2).split(' ')[1]) === pid;
      } catch {
        return false; // exited meanwhile
      }
    })
    .map(Number);
}

export function ask<T>(child: ChildProcess, message: string): Promise<T> {
  return new Promise((resolve) => {
    const listener = (reply: T & object): void => {
      if ((message === 'rss' && 'rssMb' in reply) || (message === 'metrics' && 'metrics' in reply) || (message === 'cpu' && 'cpuMs' in reply) || (message === 'idle-rss' && 'idleRssMb' in reply)) {
        child.off('message', listener);
        resolve(reply);
      }
    };
    child.on('message', listener);
    child.send(message);
  });
}

export function signed(method: string, port: number, path: string, params: Array<[string, string]>): Record<string, string> {
  const now = Math.floor(Date.now() / 1000);
  const host = `127.0.0.1:${port}`;
  const { authorization } = signCosRequest({ method, pathname: path, params, headers: [['host', host]], secretId: BENCH_SECRET_ID, secretKey: BENCH_SECRET_KEY, keyTime: formatKeyTime(now - 60, now + 3600) });
  return { host, authorization };
}

/**
 * Prints one target line ("… met" / "… NOT met") and, when the target is missed, makes the process exit
 * non-zero at the end (`npm run bench` then fails), after every measurement has still been printed.
 */
export function reportTarget(line: string, met: boolean): void {
  process.stdout.write(`${line} ${met ? 'met' : 'NOT met'}\n`);
  if (!met) process.exitCode = 1;
}

/** MB/s (10^6 bytes per second) of `run` moving `bytes`. */
export async function timed(run: () => Promise<void>, bytes: number): Promise<number> {
  const started = process.hrtime.bigint();
  await run();
  return bytes / 1e6 / (Number(process.hrtime.bigint() - started) / 1e9);
}

export const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] as number;

/** The gateway configuration the benchmarks use: one coffer on the sink, static keys, local keyring. */
export function benchConfig(sinkPort: number, keyringDirectory: string): string {
  return JSON.stringify({
    server: { port: 0, adminPort: 0 },
    auth: { accessKeys: [{ secretId: BENCH_SECRET_ID, secretKey: BENCH_SECRET_KEY, grants: [{ coffer: BENCH_COFFER, actions: ['*'] }] }] },
    keyring: { directory: keyringDirectory },
    coffers: {
      [BENCH_COFFER]: { upstream: { endpoint: `http://127.0.0.1:${sinkPort}`, bucket: 'bench', credentials: { accessKeyId: 'bench', secretAccessKey: 'bench-secret' } }, role: { type: 'static' }, kms: { type: 'local', keyId: 'bench' } },
    },
  });
}

const MiB_CHUNK = randomBytes(1024 * 1024);

/**
 * Sends `size` body bytes (the same random MiB repeated, with backpressure) and resolves to
 * [status, response body]. The client side of every benchmark, so both contenders get the same one;
 * `connection` sends it over an existing stream (a TLS tunnel) instead of a new TCP connection.
 */
export function sendRepeated(port: number, method: string, path: string, headers: Record<string, string>, size: number, options: { connection?: Duplex } = {}): Promise<[number, string]> {
  return new Promise((resolve, reject) => {
    const { connection } = options;
    const req = request({ host: '127.0.0.1', port, method, path, headers: { ...headers, 'content-length': String(size) }, agent: false, ...(connection === undefined ? {} : { createConnection: () => connection }) });
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve([res.statusCode as number, Buffer.concat(chunks).toString('utf8')]));
    });
    req.on('error', reject);
    let sent = 0;
    const pump = (): void => {
      while (sent < size) {
        const piece = size - sent >= MiB_CHUNK.length ? MiB_CHUNK : MiB_CHUNK.subarray(0, size - sent);
        sent += piece.length;
        if (!req.write(piece)) {
          req.once('drain', pump);
          return;
        }
      }
      req.end();
    };
    pump();
  });
}
