/**
 * Jest global teardown of the system tier (jest.config.js): stops the Ceph cluster, then scans every log line the run's
 * gateways wrote for every secret the tests used, and fails the run on a leak (kind and place only).
 */
import { rmSync } from 'node:fs';
import cephGlobalTeardown from './ceph/global-teardown';
import { LOG_CAPTURE_ENV, captureDirectory, scanCapturedLogs } from './log-capture/log-capture';

export default async function runTeardown(): Promise<void> {
  await cephGlobalTeardown();
  scanRunLogs();
}

/**
 * Scans the run's captured logs once (the first tier's teardown does it, for every tier: they share
 * one capture directory), and fails the run on a leak.
 */
export function scanRunLogs(): void {
  const directory = captureDirectory();
  if (directory === undefined) return;
  delete process.env[LOG_CAPTURE_ENV];
  const { lines, secrets, leaks } = scanCapturedLogs(directory);
  if (leaks.length > 0) {
    const shown = leaks.slice(0, 20).map((leak) => `  ${leak.kind} in ${directory}/${leak.file}:${leak.line}`);
    throw new Error(`A secret appeared in the logs of this run (${leaks.length} time(s)); the logs are kept for inspection:\n${shown.join('\n')}`);
  }
  process.stderr.write(`[logs] ${lines} log lines captured at trace level, ${secrets} secret values checked: none found\n`);
  rmSync(directory, { recursive: true, force: true });
}
