/**
 * The dispatcher and the executable: one `coffer-gateway` binary (package.json `bin`, what `npx
 * coffer-gateway` runs), `--help` on every command, exit codes 0 / 1 / 2, and `serve` unchanged.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI, ROOT, ensureCliBuilt, runInProcess, runProcess } from './cli-fixture';

beforeAll(() => ensureCliBuilt(), 180_000);

test('package.json: bin coffer-gateway → dist/src/cli.js (with a shebang), npm start runs serve', () => {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
  expect(pkg.bin).toEqual({ 'coffer-gateway': 'dist/src/cli.js' });
  // Node flags may come first (test/deploy/image.test.ts pins which: the ones the image uses).
  expect(pkg.scripts.start).toMatch(/^node (?:--[\w-]+(?:=\S+)? )*dist\/src\/cli\.js serve$/);
  expect(readFileSync(CLI, 'utf8').startsWith('#!/usr/bin/env node\n')).toBe(true);
});

test('no command, --help, -h and help: the command list on stdout, exit 0', async () => {
  for (const args of [[], ['--help'], ['-h'], ['help']]) {
    const result = await runInProcess(args);
    expect(result.code).toBe(0);
    const text = result.stdout.toString();
    for (const command of ['serve', 'decrypt', 'rewrap', 'doctor', 'gc']) expect(text).toMatch(new RegExp(`^  ${command} +\\S`, 'm'));
  }
  expect((await runInProcess(['help', 'rewrap'])).stdout.toString()).toMatch(/^Usage: coffer-gateway rewrap/);
});

test('every command answers --help (child processes), exit 0', async () => {
  for (const command of ['serve', 'decrypt', 'rewrap', 'doctor', 'gc']) {
    const result = await runProcess([command, '--help']);
    expect({ command, code: result.code }).toEqual({ command, code: 0 });
    expect(result.stdout.toString()).toMatch(/^Usage:/);
    expect(result.stdout.toString()).toContain('-h, --help');
    expect(result.stderr).toBe('');
  }
});

test('unknown commands and options exit 2 with the help on stderr', async () => {
  const unknown = await runProcess(['frobnicate']);
  expect(unknown.code).toBe(2);
  expect(unknown.stderr).toContain('Unknown command "frobnicate".');
  expect(unknown.stderr).toContain('Usage: coffer-gateway <command>');
  const option = await runInProcess(['doctor', '--frobnicate']);
  expect(option.code).toBe(2);
  expect(option.stderr).toContain("coffer-gateway doctor: Unknown option '--frobnicate'");
  expect(option.stderr).toContain('Run `coffer-gateway doctor --help`');
});

test('serve with an invalid configuration prints every problem and exits 1, as before', async () => {
  const file = join(tmpdir(), `coffer-cli-serve-${process.pid}.json`);
  writeFileSync(file, JSON.stringify({ server: { port: 'eighty' }, coffers: {} }));
  const result = await runProcess(['serve', '-c', file]);
  expect(result.code).toBe(1);
  expect(result.stderr).toMatch(/^Invalid configuration \(file ".*"\), \d+ problems:/);
  expect(result.stderr).toContain('server.port');
});
