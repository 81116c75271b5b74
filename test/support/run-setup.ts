/**
 * Jest global setup of the system tier (jest.config.js): the shared Ceph cluster, the run-wide log
 * capture, and dist/ built once for the tests that run the CLI as a child process.
 */
import cephGlobalSetup from './ceph/global-setup';
import { ensureCliBuilt } from './dist-build';
import { startLogCapture } from './log-capture/log-capture';

export default async function runSetup(config: unknown): Promise<void> {
  startLogCapture();
  // Once, before any worker starts: each CLI test file's ensureCliBuilt() then finds dist/ current.
  ensureCliBuilt();
  await (cephGlobalSetup as (config: unknown) => Promise<void>)(config);
}
