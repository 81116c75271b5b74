/**
 * Run-wide log capture and secret scan (reliability checklist item 15: no secret value in any log line
 * of the whole test run).
 *
 * - The run's global setup creates a directory and names it in COFFER_TEST_LOG_DIR.
 * - In every test file (capture-setup.ts, a jest setupFilesAfterEnv module) each logger the gateway
 *   creates — whatever level the test asked for, `silent` included — also writes every line at `trace`
 *   to `<dir>/logs-<pid>.ndjson`; and every secret the tests make or use is appended to
 *   `<dir>/secrets-<pid>.ndjson` as it appears: configured SecretKeys and upstream keys, COS signatures
 *   and Authorization values, STS-issued secret keys and session tokens, plaintext data keys (hex and
 *   base64), JWTs.
 * - The run's global teardown scans every captured line for every recorded secret and fails the run,
 *   naming the secret's kind and the log file, never the value.
 * Gateways in child processes (the command-line tests) write their own stdout/stderr, which those tests read.
 */
import { appendFileSync, mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const LOG_CAPTURE_ENV = 'COFFER_TEST_LOG_DIR';

/** Shorter values are not scanned for: they would match by chance (and no real secret is this short). */
export const MIN_SECRET_LENGTH = 12;

export interface RecordedSecret {
  readonly kind: string;
  readonly value: string;
}

export interface Leak {
  readonly kind: string;
  readonly file: string;
  readonly line: number;
}

/**
 * Creates the run's capture directory and publishes it to the test workers through the environment;
 * returns the one already started when another tier's global setup did (one directory per run).
 */
export function startLogCapture(): string {
  const started = captureDirectory();
  if (started !== undefined) return started;
  const directory = mkdtempSync(join(tmpdir(), 'coffer-test-logs-'));
  process.env[LOG_CAPTURE_ENV] = directory;
  return directory;
}

export function captureDirectory(): string | undefined {
  const directory = process.env[LOG_CAPTURE_ENV];
  return directory === undefined || directory === '' ? undefined : directory;
}

export function logFileOf(directory: string): string {
  return join(directory, `logs-${process.pid}.ndjson`);
}

/** The forms a secret can take in a log line: as given; binary ones as hex, base64 and base64url. */
function formsOf(value: string | Uint8Array): string[] {
  if (typeof value === 'string') return [value];
  const buffer = Buffer.from(value);
  return [buffer.toString('hex'), buffer.toString('base64'), buffer.toString('base64url')];
}

/** Records a secret the tests made or used (no-op outside a capturing run). */
export function recordSecret(kind: string, value: string | Uint8Array | undefined): void {
  const directory = captureDirectory();
  if (directory === undefined || value === undefined) return;
  // A key already zeroed (all bytes equal) or a repeated character is no secret, and would match by chance.
  if (typeof value === 'string' ? /^(.)\1*$/.test(value) : Buffer.from(value).every((byte) => byte === value[0])) return;
  const lines = formsOf(value)
    .filter((form) => form.length >= MIN_SECRET_LENGTH)
    .map((form) => JSON.stringify({ kind, value: form }));
  if (lines.length > 0) appendFileSync(join(directory, `secrets-${process.pid}.ndjson`), `${lines.join('\n')}\n`);
}

/** Every line of every captured log, scanned for every recorded secret. */
export function scanCapturedLogs(directory: string): { lines: number; secrets: number; leaks: Leak[] } {
  const names = readdirSync(directory);
  const secrets = new Map<string, string>();
  for (const name of names.filter((n) => n.startsWith('secrets-'))) {
    for (const line of readFileSync(join(directory, name), 'utf8').split('\n')) {
      if (line === '') continue;
      const { kind, value } = JSON.parse(line) as RecordedSecret;
      secrets.set(value, kind);
    }
  }
  const leaks: Leak[] = [];
  let lines = 0;
  for (const name of names.filter((n) => n.startsWith('logs-'))) {
    const text = readFileSync(join(directory, name), 'utf8').split('\n');
    text.forEach((line, index) => {
      if (line === '') return;
      lines += 1;
      // JSON escapes '/' nowhere and '+' nowhere, but a secret could sit inside an escaped string: check both.
      const unescaped = line.includes('\\') ? line.replace(/\\(["\\/])/g, '$1') : line;
      for (const [value, kind] of secrets) {
        if (line.includes(value) || unescaped.includes(value)) leaks.push({ kind, file: name, line: index + 1 });
      }
    });
  }
  return { lines, secrets: secrets.size, leaks };
}
