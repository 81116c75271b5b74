import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';

export default async function globalTeardown(): Promise<void> {
  const info = process.env['COFFER_TEST_CEPH'];
  if (info === undefined) return;
  const { scratch } = JSON.parse(info) as { scratch: string };
  execFileSync('bash', [join(__dirname, 'stop-rgw.sh'), scratch], { stdio: 'ignore', timeout: 60_000 });
  rmSync(scratch, { recursive: true, force: true });
}
