/** Jest global teardown: stops the cluster global-setup.ts started (if it started one). */
import { CEPH_CONNECTION_ENV, CEPH_SKIP_ENV } from '../ceph-rgw';
import { cephGlobalState } from './global-setup';

export default async function globalTeardown(): Promise<void> {
  const state = cephGlobalState.__cofferCeph;
  const cluster = state?.cluster;
  delete process.env[CEPH_SKIP_ENV];
  if (state === undefined || cluster === undefined) return;
  delete state.cluster;
  delete process.env[CEPH_CONNECTION_ENV];
  const ms = await cluster.stop();
  process.stderr.write(`[ceph] cluster stopped in ${(ms / 1000).toFixed(1)} s\n`);
}
