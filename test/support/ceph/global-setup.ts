/**
 * Jest global setup: starts one Ceph cluster with two RADOS Gateways (5 MiB and 1 MiB minimum part
 * size) for the whole run, when the Ceph binaries are installed (`.ci/install-ceph.sh`). Test files
 * read the connection info from COFFER_TEST_CEPH. In CI a missing Ceph is an error, not a skip.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

interface JestGlobalConfig {
  readonly rootDir: string;
  readonly testPathPatterns?: { isSet(): boolean; toExecutor(options: { rootDir: string }): { isMatch(path: string): boolean } };
}

/** Only runs that select an integration test need the cluster (`npx jest test/auth` should not wait for it). */
function integrationSelected(config: JestGlobalConfig): boolean {
  const patterns = config.testPathPatterns;
  if (patterns === undefined || !patterns.isSet()) return true;
  const executor = patterns.toExecutor({ rootDir: config.rootDir });
  const directory = join(config.rootDir, 'test', 'integration');
  return readdirSync(directory).some((name) => executor.isMatch(join(directory, name)));
}

export default async function globalSetup(config: JestGlobalConfig): Promise<void> {
  if (!integrationSelected(config)) return;
  const available = spawnSync('sh', ['-c', 'command -v radosgw && command -v ceph-mon && command -v ceph-osd'], { stdio: 'ignore' }).status === 0;
  if (!available) {
    if (process.env['CI'] !== undefined) throw new Error('Ceph RADOS Gateway is not installed: run .ci/install-ceph.sh (CI must run the Ceph integration tests)');
    process.stderr.write('\n[ceph] radosgw not installed: the Ceph integration tests are skipped (bash .ci/install-ceph.sh installs it)\n');
    return;
  }
  const scratch = mkdtempSync(join(tmpdir(), 'coffer-ceph-'));
  const started = Date.now();
  const output = execFileSync('bash', [join(__dirname, 'start-rgw.sh'), scratch, '7480', '7481'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], timeout: 120_000 });
  process.env['COFFER_TEST_CEPH'] = JSON.stringify({ ...JSON.parse(output.trim().split('\n').pop() as string), scratch });
  process.stderr.write(`\n[ceph] cluster with two radosgw up in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
}
