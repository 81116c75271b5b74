/**
 * `npm run bench`: the four parts in turn (encryption core, upload path, read path, small S3/CDCS PutObjects), each in its own
 * process. A part that misses a target exits non-zero; the next part still runs, so every figure is
 * printed, and this exits non-zero at the end if any part did.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

let failed = false;
for (const part of ['run-bench.js', 'upload-bench.js', 'get-bench.js', 's3-put-bench.js']) {
  const result = spawnSync(process.execPath, [join(__dirname, part)], { stdio: 'inherit' });
  if (result.status !== 0) failed = true;
}
process.exitCode = failed ? 1 : 0;
