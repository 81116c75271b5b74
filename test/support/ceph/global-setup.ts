/**
 * Jest global setup: one Ceph cluster with two RADOS Gateways (5 MiB and 1 MiB minimum part size) for
 * the whole run, shared by every test file through the COFFER_TEST_CEPH environment variable (JSON; see
 * test/support/ceph-rgw.ts). Started only when the run selects a file under test/integration.
 *
 * - Ceph not installed: CI fails the run; locally the Ceph tests are skipped (COFFER_TEST_CEPH_SKIPPED says why).
 * - COFFER_TEST_CEPH already set (a cluster you started with start-rgw.sh): used as is, not stopped.
 * - Another run's cluster is up (fixed ports): waits up to COFFER_TEST_CEPH_WAIT_S (default 300) seconds
 *   for it to go away, then fails (CI) or skips (locally). Clusters whose owner died are stopped.
 */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { CEPH_BUSY, CEPH_CONNECTION_ENV, CEPH_SKIP_ENV, cephAvailable, cephMissingTools, reclaimOrphanedClusters, runningCephDaemons, startCephRgw, type StartedCephRgw } from '../ceph-rgw';

interface JestGlobalConfig {
  readonly rootDir: string;
  readonly testPathPatterns?: { isSet(): boolean; toExecutor(options: { rootDir: string }): { isMatch(path: string): boolean } };
}

/** Shared with global-teardown.ts (jest runs both in its main process). */
export interface CephGlobalState {
  cluster?: StartedCephRgw;
}
export const cephGlobalState = globalThis as typeof globalThis & { __cofferCeph?: CephGlobalState };

const log = (message: string): boolean => process.stderr.write(`[ceph] ${message}\n`);

/** Only runs that select an integration test need the cluster (`npx jest test/auth` should not wait for it). */
function integrationSelected(config: JestGlobalConfig): boolean {
  if (process.env['COFFER_TEST_CEPH_START'] !== undefined) return true;
  const patterns = config.testPathPatterns;
  if (patterns === undefined || !patterns.isSet()) return true;
  const executor = patterns.toExecutor({ rootDir: config.rootDir });
  const directory = join(config.rootDir, 'test', 'integration');
  if (!existsSync(directory)) return false;
  return readdirSync(directory).some((name) => executor.isMatch(join(directory, name)));
}

/** Fails in CI, skips locally. */
function unavailable(reason: string): void {
  if (process.env['CI'] !== undefined) throw new Error(`Ceph RADOS Gateway unavailable (CI must run the Ceph integration tests): ${reason}`);
  process.env[CEPH_SKIP_ENV] = reason;
  log(`${reason} — the Ceph integration tests are skipped`);
}

/** Waits until no other Ceph cluster runs on this machine (stopping orphaned ones); false at the deadline. */
async function waitForOtherCluster(deadline: number): Promise<boolean> {
  let next = 0;
  for (;;) {
    for (const scratch of reclaimOrphanedClusters()) log(`stopped an orphaned cluster (its owner is gone): ${scratch}`);
    const running = runningCephDaemons();
    if (running.length === 0) return true;
    if (Date.now() >= deadline) return false;
    if (Date.now() >= next) {
      const where = [...new Set(running.map((d) => d.scratch ?? '?'))].join(', ');
      log(`another Ceph cluster is running (${where}); waiting up to ${Math.round((deadline - Date.now()) / 1000)} s for it to stop`);
      next = Date.now() + 30_000;
    }
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}

/** Starts the cluster, waiting for another run's cluster to go away first; undefined at the deadline. */
async function startWhenFree(): Promise<StartedCephRgw | undefined> {
  const deadline = Date.now() + Number(process.env['COFFER_TEST_CEPH_WAIT_S'] ?? '300') * 1000;
  for (;;) {
    if (!(await waitForOtherCluster(deadline))) return undefined;
    try {
      return await startCephRgw();
    } catch (error) {
      // Lost a race with another run's start: wait for that cluster like for any other.
      if ((error as { code?: unknown }).code !== CEPH_BUSY || Date.now() >= deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  }
}

export default async function globalSetup(config: JestGlobalConfig): Promise<void> {
  delete process.env[CEPH_SKIP_ENV];
  const state = (cephGlobalState.__cofferCeph ??= {});
  if (process.env[CEPH_CONNECTION_ENV] !== undefined && state.cluster === undefined) {
    log(`using the cluster in ${CEPH_CONNECTION_ENV} (not started nor stopped by this run)`);
    return;
  }
  if (!integrationSelected(config)) return;
  if (!cephAvailable()) return unavailable(`Ceph is not installed (missing ${cephMissingTools().join(', ')}; bash .ci/install-ceph.sh installs it)`);
  const cluster = await startWhenFree();
  if (cluster === undefined) {
    const where = [...new Set(runningCephDaemons().map((d) => d.scratch ?? '?'))].join(', ');
    return unavailable(`another Ceph cluster is still running on this machine (${where}); one cluster per machine (fixed ports)`);
  }
  state.cluster = cluster;
  const { stop: _stop, ...info } = cluster;
  process.env[CEPH_CONNECTION_ENV] = JSON.stringify(info);
  log(`cluster with ${cluster.gateways.length} radosgw up in ${(cluster.startMs / 1000).toFixed(1)} s: ${cluster.gateways.map((g) => `${g.endpoint} (min part ${g.minPartSize})`).join(', ')}`);
}
