/**
 * A real, strict S3 upstream for integration tests: a throwaway one-host Ceph cluster (one ceph-mon,
 * one memstore ceph-osd, no ceph-mgr) with RADOS Gateways on 127.0.0.1, started by the shell scripts in
 * test/support/ceph from Debian's packages (`.ci/install-ceph.sh`).
 *
 * One cluster serves a whole jest run: the global setup (test/support/ceph/global-setup.ts) calls
 * `startCephRgw()` and passes the connection info to the test workers in the COFFER_TEST_CEPH
 * environment variable (JSON); test files call `cephRgw()` / `describeWithCeph()`. The cluster's ports
 * are fixed (mon 3300, osd 6800-6807), so only one can run per machine at a time.
 *
 * Without the Ceph binaries: in CI (`CI` set) the run fails; locally the Ceph tests are skipped, and
 * their describe titles say why.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';

const MiB = 1024 * 1024;
const scripts = join(__dirname, 'ceph');

/** Environment variable carrying the connection info (JSON) from the global setup to test workers. */
export const CEPH_CONNECTION_ENV = 'COFFER_TEST_CEPH';
/** Environment variable carrying why the global setup left Ceph out (local runs only). */
export const CEPH_SKIP_ENV = 'COFFER_TEST_CEPH_SKIPPED';
/** `code` of startCephRgw's error when another cluster (or start) holds the machine's fixed ports. */
export const CEPH_BUSY = 'CEPH_BUSY';
/** The programs the scripts run. */
export const CEPH_TOOLS = ['ceph-mon', 'ceph-osd', 'radosgw', 'radosgw-admin', 'ceph', 'ceph-authtool', 'monmaptool'] as const;
/** The gateways a jest run gets: S3's 5 MiB minimum part size and 1 MiB (as COS allows). */
export const DEFAULT_GATEWAYS: readonly CephGatewaySpec[] = [
  { port: 7480, minPartSize: 5 * MiB },
  { port: 7481, minPartSize: 1 * MiB },
];

export interface CephGatewaySpec {
  readonly port: number;
  /** `rgw multipart min part size`, bytes. */
  readonly minPartSize: number;
}

export interface CephGateway extends CephGatewaySpec {
  readonly endpoint: string;
  readonly pid: number;
}

/** What start-rgw.sh / add-rgw.sh print. */
export interface CephRgwConnection {
  /** The first gateway (5 MiB minimum part size with the default gateways). */
  readonly endpoint: string;
  readonly gateways: readonly CephGateway[];
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly region: string;
  /** The cluster's scratch directory (config, logs under log/, pid files under run/). */
  readonly scratch: string;
  readonly pids: { readonly mon: number; readonly osd: number; readonly rgw: Readonly<Record<string, number>> };
}

/** Connection info as test files see it (the global setup always starts both default gateways). */
export interface CephRgw extends CephRgwConnection {
  /** The gateway with a 1 MiB minimum part size. */
  readonly endpoint1MiB: string;
  /** How long the global setup took to start the cluster, ms (undefined for a cluster started outside jest). */
  readonly startMs?: number;
}

export interface StartedCephRgw extends CephRgwConnection {
  /** The gateway with a 1 MiB minimum part size, when one was asked for. */
  readonly endpoint1MiB?: string;
  /** Wall time of start-rgw.sh, ms. */
  readonly startMs: number;
  /** Stops every daemon (by PID, waiting for them) and removes the scratch directory unless it was given
   * or `keepScratch` was set. Resolves to the time it took, ms. Safe to call twice. */
  stop(): Promise<number>;
}

export interface StartCephRgwOptions {
  /** Directory for everything the cluster writes; default: a new one under the OS temp directory. */
  readonly scratch?: string;
  /** Default: DEFAULT_GATEWAYS (ports 7480 and 7481, 5 MiB and 1 MiB). */
  readonly gateways?: readonly CephGatewaySpec[];
  /** Keep the scratch directory (logs) after stop(). Default: COFFER_TEST_CEPH_KEEP is set. */
  readonly keepScratch?: boolean;
  /** Default 120 s. */
  readonly timeoutMs?: number;
  /** Passed to start-rgw.sh as COFFER_CEPH_MEMSTORE_BYTES (default there: 6 GiB). */
  readonly memstoreBytes?: number;
}

/** The Ceph programs that are not on the PATH. */
export function cephMissingTools(): string[] {
  const paths = (process.env['PATH'] ?? '').split(':').filter((p) => p !== '');
  return CEPH_TOOLS.filter((tool) => !paths.some((p) => existsSync(join(p, tool))));
}

/** True when every program the scripts need is installed. */
export function cephAvailable(): boolean {
  return cephMissingTools().length === 0;
}

export interface RunningCephDaemon {
  readonly pid: number;
  readonly name: string;
  /** The scratch directory of its cluster (the directory of its `-c` config), if known. */
  readonly scratch: string | undefined;
}

/** The Ceph daemons running on this machine, whoever started them. */
export function runningCephDaemons(): RunningCephDaemon[] {
  const found = spawnSync('bash', ['-c', `source ${JSON.stringify(join(scripts, 'lib.sh'))}; ceph_running_daemons`], { encoding: 'utf8' });
  return (found.stdout ?? '')
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => {
      const [pid, name, conf] = line.split(' ');
      return { pid: Number(pid), name: name ?? '?', scratch: conf === undefined || conf === '?' ? undefined : dirname(conf) };
    });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Stops clusters of these scripts whose owner (the jest process, or the shell that ran start-rgw.sh)
 * has died — left behind by a run that was killed. Returns their scratch directories.
 */
export function reclaimOrphanedClusters(): string[] {
  const reclaimed: string[] = [];
  for (const scratch of new Set(runningCephDaemons().map((d) => d.scratch))) {
    if (scratch === undefined || !existsSync(join(scratch, 'coffer-ceph-cluster'))) continue;
    let owner = 0;
    try {
      owner = Number(readFileSync(join(scratch, 'run', 'owner.pid'), 'utf8').trim());
    } catch {
      // no owner recorded: treat as orphaned
    }
    if (Number.isInteger(owner) && owner > 0 && alive(owner)) continue;
    spawnSync('bash', [join(scripts, 'stop-rgw.sh'), scratch], { stdio: ['ignore', 'ignore', 'inherit'], timeout: 60_000 });
    if (dirname(scratch) === tmpdir() && basename(scratch).startsWith('coffer-ceph-')) rmSync(scratch, { recursive: true, force: true });
    reclaimed.push(scratch);
  }
  return reclaimed;
}

interface ScriptResult {
  readonly stdout: string;
  readonly stderr: string;
  readonly code: number | null;
}

/** Runs a script with stderr copied to ours as it comes (progress), stdout collected. */
function runScript(script: string, args: readonly string[], env: NodeJS.ProcessEnv, timeoutMs: number): Promise<ScriptResult> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', [join(scripts, script), ...args], { stdio: ['ignore', 'pipe', 'pipe'], env });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
      process.stderr.write(chunk);
    });
    const timer = setTimeout(() => {
      stderr += `\n${script} timed out after ${timeoutMs} ms\n`;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ stdout, stderr, code });
    });
  });
}

function parseConnection(stdout: string): CephRgwConnection {
  const line = stdout.trim().split('\n').pop() ?? '';
  return JSON.parse(line) as CephRgwConnection;
}

function gatewayArgs(gateways: readonly CephGatewaySpec[]): string[] {
  return gateways.flatMap((g) => [String(g.port), String(g.minPartSize)]);
}

/** The 1 MiB gateway's endpoint, if one runs. */
export function endpointWithMinPartSize(connection: CephRgwConnection, minPartSize: number): string | undefined {
  return connection.gateways.find((g) => g.minPartSize === minPartSize)?.endpoint;
}

/**
 * Starts a cluster with the given gateways and creates the test user. Rejects (with the script's
 * output, which ends with the daemons' log tails) when anything fails; then nothing is left running.
 * Another cluster on this machine makes it reject at once with `code` CEPH_BUSY (ports are fixed).
 */
export async function startCephRgw(options: StartCephRgwOptions = {}): Promise<StartedCephRgw> {
  const missing = cephMissingTools();
  if (missing.length > 0) throw new Error(`Ceph is not installed (missing ${missing.join(', ')}): run .ci/install-ceph.sh`);
  const ownScratch = options.scratch === undefined;
  const scratch = options.scratch ?? mkdtempSync(join(tmpdir(), 'coffer-ceph-'));
  const keep = options.keepScratch ?? process.env['COFFER_TEST_CEPH_KEEP'] !== undefined;
  const env: NodeJS.ProcessEnv = { ...process.env, COFFER_CEPH_OWNER_PID: String(process.pid) };
  if (options.memstoreBytes !== undefined) env['COFFER_CEPH_MEMSTORE_BYTES'] = String(options.memstoreBytes);
  const started = Date.now();
  const result = await runScript('start-rgw.sh', [scratch, ...gatewayArgs(options.gateways ?? DEFAULT_GATEWAYS)], env, options.timeoutMs ?? 120_000);
  const startMs = Date.now() - started;
  if (result.code !== 0) {
    spawnSync('bash', [join(scripts, 'stop-rgw.sh'), scratch], { stdio: 'ignore', timeout: 60_000 });
    if (ownScratch && !keep) rmSync(scratch, { recursive: true, force: true });
    const error = new Error(`start-rgw.sh failed (exit ${result.code}):\n${result.stderr.trim()}`);
    if (result.code === 4) Object.assign(error, { code: CEPH_BUSY });
    throw error;
  }
  const connection = parseConnection(result.stdout);

  let stopped = false;
  const stopSync = (): void => {
    if (stopped) return;
    stopped = true;
    spawnSync('bash', [join(scripts, 'stop-rgw.sh'), scratch], { stdio: ['ignore', 'ignore', 'inherit'], timeout: 60_000 });
    if (ownScratch && !keep) rmSync(scratch, { recursive: true, force: true });
  };
  // A jest run that ends without its global teardown (a crash, process.exit) still stops the daemons.
  process.once('exit', stopSync);
  const endpoint1MiB = endpointWithMinPartSize(connection, MiB);
  return {
    ...connection,
    ...(endpoint1MiB === undefined ? {} : { endpoint1MiB }),
    startMs,
    async stop(): Promise<number> {
      if (stopped) return 0;
      stopped = true;
      process.removeListener('exit', stopSync);
      const begun = Date.now();
      const done = await runScript('stop-rgw.sh', [scratch], process.env, 60_000);
      if (done.code !== 0) throw new Error(`stop-rgw.sh failed (exit ${done.code}):\n${done.stderr.trim()}`);
      if (ownScratch && !keep) rmSync(scratch, { recursive: true, force: true });
      return Date.now() - begun;
    },
  };
}

/** Adds a gateway to a running cluster, or restarts the one on that port with another minimum part size. */
export async function addCephGateway(scratch: string, gateway: CephGatewaySpec): Promise<CephRgwConnection> {
  const result = await runScript('add-rgw.sh', [scratch, ...gatewayArgs([gateway])], process.env, 60_000);
  if (result.code !== 0) throw new Error(`add-rgw.sh failed (exit ${result.code}):\n${result.stderr.trim()}`);
  return parseConnection(result.stdout);
}

/** Stops one gateway of a running cluster (the rest keeps running). */
export async function stopCephGateway(scratch: string, port: number): Promise<void> {
  const result = await runScript('stop-rgw.sh', [scratch, String(port)], process.env, 60_000);
  if (result.code !== 0) throw new Error(`stop-rgw.sh failed (exit ${result.code}):\n${result.stderr.trim()}`);
}

/** The connection info the global setup published, or undefined when it started no cluster. */
export function cephRgw(): CephRgw | undefined {
  const info = process.env[CEPH_CONNECTION_ENV];
  if (info === undefined || info === '') return undefined;
  const connection = JSON.parse(info) as CephRgwConnection & { endpoint1MiB?: string; startMs?: number };
  return { ...connection, endpoint1MiB: connection.endpoint1MiB ?? endpointWithMinPartSize(connection, MiB) ?? '' };
}

/** Why there is no cluster for this run, or undefined when there is one. */
export function cephSkipReason(): string | undefined {
  if (cephRgw() !== undefined) return undefined;
  return (
    process.env[CEPH_SKIP_ENV] ??
    (cephAvailable() ? 'no Ceph connection info: the jest global setup test/support/ceph/global-setup.ts did not run' : `Ceph is not installed (missing ${cephMissingTools().join(', ')}; bash .ci/install-ceph.sh installs it)`)
  );
}

/**
 * `describe` when the run has a Ceph cluster. Otherwise: in CI a describe whose one test fails with the
 * reason; locally `describe.skip`, with the reason in the title.
 */
export function describeWithCeph(name: string, fn: () => void): void {
  const reason = cephSkipReason();
  if (reason === undefined) {
    describe(name, fn);
  } else if (process.env['CI'] !== undefined) {
    describe(name, () => {
      test('needs a Ceph RADOS Gateway', () => {
        throw new Error(`Ceph RADOS Gateway unavailable in CI: ${reason}`);
      });
    });
  } else {
    describe.skip(`${name} [skipped: ${reason}]`, fn);
  }
}
