/** Jest global setup of the whole run: the shared Ceph cluster, and the run-wide log capture. */
import cephGlobalSetup from './ceph/global-setup';
import { startLogCapture } from './log-capture/log-capture';

export default async function runSetup(config: unknown): Promise<void> {
  startLogCapture();
  await (cephGlobalSetup as (config: unknown) => Promise<void>)(config);
}
