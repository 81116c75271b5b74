/**
 * `serve --workers N`: N gateway processes behind the same ports (node:cluster; the primary accepts
 * connections and hands them to the workers in turn, it never touches a body byte).
 *
 * Why, next to the crypto workers (src/crypto/offloaded-part-encryptor.ts): those take MD5 and GCM off
 * the request thread, but one process still has one thread for socket I/O and HTTP parsing
 * (~1.7 ms of CPU per MiB measured on the upload path) — about 600 MB/s per process on any host.
 * Worker processes multiply that thread; on a host with many cores, `--workers auto` uses them.
 *
 * What is per worker: connection caps, rate budgets, caches (data keys, credentials) and /metrics
 * (each scrape is answered by one worker). The local keyring and the egress CA are created race-free
 * (first writer wins, every process reads the same files). The demo's embedded upstream and its
 * generated keys are per process, so the demo runs as one process only.
 */
import cluster, { type Worker } from 'node:cluster';
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { UsageError } from './args';
import type { CliIo } from './cli-io';

/**
 * The CPUs this process may use: the cpuset (`os.availableParallelism()`, sched_getaffinity) capped
 * by a cgroup v2 CPU quota (`cpu.max`, e.g. a Kubernetes CPU limit), which availableParallelism does
 * not see in Node 20/22 — `--cpus=2` on a 64-core node must mean 2 workers, not 64.
 */
export function usableCpus(cpuMaxFile = '/sys/fs/cgroup/cpu.max'): number {
  let cpus = availableParallelism();
  let text: string;
  try {
    text = readFileSync(cpuMaxFile, 'utf8');
  } catch {
    return cpus; // no cgroup v2 CPU controller: the cpuset is the limit
  }
  const [quota, period] = text.trim().split(/\s+/);
  if (quota !== undefined && quota !== 'max' && Number(period) > 0) cpus = Math.min(cpus, Math.max(1, Math.ceil(Number(quota) / Number(period))));
  return cpus;
}

/** `--workers` as given: `auto` (the usable CPUs) or a positive integer; absent means one process. */
export function parseWorkerCount(value: string | undefined, cpus: () => number = usableCpus): number {
  if (value === undefined) return 1;
  if (value === 'auto') return cpus();
  if (!/^[1-9][0-9]{0,3}$/.test(value)) throw new UsageError(`serve: --workers must be "auto" or a positive integer, not "${value}"`);
  return Number(value);
}

/** True in the primary of a `--workers N` (N > 1) run: it forks and supervises, and serves nothing itself. */
export function isClusterPrimary(workers: number): boolean {
  return workers > 1 && cluster.isPrimary;
}

/**
 * The primary: forks `workers` processes running the same command line, replaces one that dies while
 * serving, and on SIGTERM/SIGINT passes the signal on (each worker drains, like a single gateway)
 * and exits once all have exited.
 */
export function superviseWorkers(workers: number, io: CliIo): 'running' {
  let stopping = false;
  const fork = (): Worker => cluster.fork();
  cluster.on('exit', (worker, code, signal) => {
    if (stopping) {
      if (Object.keys(cluster.workers ?? {}).length === 0) process.exit(0);
      return;
    }
    io.stderr.write(`worker ${worker.process.pid} exited (${signal ?? code}); starting another\n`);
    fork();
  });
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) return;
    stopping = true;
    io.stderr.write(`${signal}: stopping ${workers} workers\n`);
    const running = Object.values(cluster.workers ?? {});
    if (running.length === 0) process.exit(0);
    for (const worker of running) worker?.process.kill(signal);
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  for (let i = 0; i < workers; i += 1) fork();
  return 'running';
}
