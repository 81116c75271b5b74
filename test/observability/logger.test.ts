/**
 * The logger's redaction, exercised directly: every secret-bearing path in REDACTED_PATHS is logged with
 * a known value at `trace`, and the value must not come out. The gateway's own calls log only chosen
 * fields (test/observability/log-hygiene.test.ts checks real traffic); this is the second line that
 * catches a caller who logs a whole headers object or credentials by mistake.
 */
import { createLogger } from '../../src/observability/logger';
import { collectLogLines } from '../support/log-lines';

test('secret-bearing fields are redacted at every level, nested or not; the rest of the line stays', () => {
  const { lines, sink } = collectLogLines();
  const log = createLogger('trace', sink);
  const secrets = {
    authorization: 'q-sign-algorithm=sha1&q-ak=AKIDx&q-signature=0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c',
    token: 'eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl',
    securityToken: 'FwoGZXIvYXdzEXAMPLESESSIONTOKEN',
    cdcsToken: 'cdcs-session-token-example-0123',
    secretKey: 'cos-secret-key-example-0123456789',
    secretAccessKey: 'aws-secret-access-key-example-0123456789',
    sessionToken: 'aws-session-token-example-0123456789',
    dataKey: 'a1'.repeat(32),
    plaintext: Buffer.alloc(32, 7).toString('base64'),
    query: 'q-sign-algorithm=sha1&q-signature=deadbeefdeadbeefdeadbeefdeadbeefdeadbeef',
  };
  log.trace({ authorization: secrets.authorization, query: secrets.query, marker: 'top-level' }, 'one');
  log.debug({ headers: { authorization: secrets.authorization, 'x-cos-security-token': secrets.securityToken, 'x-cdcs-security-token': secrets.cdcsToken, host: 'h' } }, 'two');
  log.info({ req: { headers: { authorization: secrets.authorization } } }, 'three');
  log.warn({ secretKey: secrets.secretKey, secretAccessKey: secrets.secretAccessKey, sessionToken: secrets.sessionToken, token: secrets.token }, 'four');
  log.error({ credentials: { secretKey: secrets.secretKey, secretAccessKey: secrets.secretAccessKey, sessionToken: secrets.sessionToken } }, 'five');
  log.fatal({ dataKey: secrets.dataKey, plaintext: secrets.plaintext }, 'six');
  expect(lines).toHaveLength(6);
  const text = lines.join('\n');
  for (const [name, value] of Object.entries(secrets)) expect({ name, leaked: text.includes(value) }).toEqual({ name, leaked: false });
  expect(text.match(/\[redacted\]/g)?.length).toBe(15);
  expect(text).toContain('"marker":"top-level"');
  expect(text).toContain('"host":"h"');
});
