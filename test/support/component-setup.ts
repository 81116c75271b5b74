/** Jest global setup of the component tier: the run-wide log capture (no Ceph; see jest.config.js). */
import { startLogCapture } from './log-capture/log-capture';

export default function componentSetup(): void {
  startLogCapture();
}
