/**
 * The run-wide secret scan (test/support/log-capture): a secret recorded as bytes is found in a log line
 * in any of its encodings; lines without a recorded secret are clean; short or zeroed values are not
 * recorded (they would match by chance).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LOG_CAPTURE_ENV, recordSecret, scanCapturedLogs } from '../support/log-capture/log-capture';

test('finds a recorded secret in hex, base64 or as given; ignores clean lines, short and zeroed values', () => {
  const directory = mkdtempSync(join(tmpdir(), 'coffer-scan-'));
  const runDirectory = process.env[LOG_CAPTURE_ENV];
  process.env[LOG_CAPTURE_ENV] = directory;
  try {
    const dataKey = Buffer.from('00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff', 'hex');
    recordSecret('plaintext data key', dataKey);
    recordSecret('COS SecretKey', 'a-secret-key-0123456789');
    recordSecret('short', 'abc');
    recordSecret('zeroed', Buffer.alloc(32));
    writeFileSync(
      join(directory, 'logs-1.ndjson'),
      [
        JSON.stringify({ msg: 'clean', requestId: 'abc' }),
        JSON.stringify({ msg: 'hex', key: dataKey.toString('hex') }),
        JSON.stringify({ msg: 'base64', key: dataKey.toString('base64') }),
        JSON.stringify({ msg: 'nested', err: { message: 'signed with a-secret-key-0123456789' } }),
        JSON.stringify({ msg: 'zeros', key: Buffer.alloc(32).toString('base64') }),
      ].join('\n'),
    );
    const { lines, secrets, leaks } = scanCapturedLogs(directory);
    expect(lines).toBe(5);
    expect(secrets).toBe(4); // the key as hex, base64 and base64url (it has a '/'), and the SecretKey
    expect(leaks.map((l) => [l.kind, l.line])).toEqual([
      ['plaintext data key', 2],
      ['plaintext data key', 3],
      ['COS SecretKey', 4],
    ]);
  } finally {
    if (runDirectory === undefined) delete process.env[LOG_CAPTURE_ENV];
    else process.env[LOG_CAPTURE_ENV] = runDirectory;
    rmSync(directory, { recursive: true, force: true });
  }
});
