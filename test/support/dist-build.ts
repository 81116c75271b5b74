/**
 * dist/ (the built CLI) for the tests that run it as a child process. The system tier's global setup
 * builds it once per run (test/support/run-setup.ts); a CLI test file run on its own builds it here.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const ROOT = join(__dirname, '..', '..');
const CLI = join(ROOT, 'dist', 'src', 'cli.js');

/**
 * `npm run build` once per jest run: jest runs test files in parallel workers, so the build is
 * serialised with a lock directory and skipped when dist/ is newer than every source file.
 */
export function ensureCliBuilt(): void {
  mkdirSync(join(ROOT, 'dist'), { recursive: true });
  const lock = join(ROOT, 'dist', '.cli-build-lock');
  const stamp = join(ROOT, 'dist', '.cli-build-stamp');
  const sleeper = new Int32Array(new SharedArrayBuffer(4));
  for (let waited = 0; ; waited += 200) {
    try {
      mkdirSync(lock);
      break;
    } catch {
      if (waited > 180_000) throw new Error('timed out waiting for another test file to build dist/');
      Atomics.wait(sleeper, 0, 0, 200);
    }
  }
  try {
    const newest = (dir: string): number => Math.max(0, ...readdirSync(dir, { withFileTypes: true }).map((e) => (e.isDirectory() ? newest(join(dir, e.name)) : statSync(join(dir, e.name)).mtimeMs)));
    if (!existsSync(stamp) || !existsSync(CLI) || statSync(stamp).mtimeMs < newest(join(ROOT, 'src'))) {
      execFileSync('npm', ['run', 'build'], { cwd: ROOT, stdio: 'pipe' });
      writeFileSync(stamp, '');
    }
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}
