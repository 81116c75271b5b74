/** Jest global teardown of the component tier: the run-wide log scan (see run-teardown.ts). */
import { scanRunLogs } from './run-teardown';

export default function componentTeardown(): void {
  scanRunLogs();
}
