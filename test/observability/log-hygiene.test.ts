/**
 * No secret in any log line: representative traffic (uploads, reads, presigned requests, refused
 * signatures, bad tokens) through a gateway logging at `trace`, then every line is searched for the
 * secret values the test knows: the SecretKey, every Authorization header and signature it sent, the
 * presigned query string, and a bearer token.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatKeyTime, signCosRequest } from '../../src/auth/cos-signature';
import { loadConfig } from '../../src/config';
import { createLogger } from '../../src/observability/logger';
import { startGateway, type RunningGateway } from '../../src/app/serve';
import { collectLogLines } from '../support/log-lines';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const COS = require('cos-nodejs-sdk-v5');

const SECRET_ID = 'AKIDloghygiene';
const SECRET_KEY = 'log-hygiene-secret-key-0123456789';
const Bucket = 'demo-1250000000';
const Region = 'ap-guangzhou';

test('representative traffic leaves no secret in the logs', async () => {
  const directory = mkdtempSync(join(tmpdir(), 'coffer-logs-'));
  const { lines, sink } = collectLogLines();
  const config = loadConfig({
    env: {
      PORT: '0',
      COFFER__SERVER__ADMIN_PORT: '0',
      COFFER_DEMO_SECRET_ID: SECRET_ID,
      COFFER_DEMO_SECRET_KEY: SECRET_KEY,
      COFFER__KEYRING__DIRECTORY: join(directory, 'keyring'),
      COFFER__EMBEDDED_UPSTREAM__DIRECTORY: join(directory, 'upstream'),
    },
  });
  let gateway: RunningGateway | undefined;
  const secrets: string[] = [SECRET_KEY];
  try {
    gateway = await startGateway(config, { log: createLogger('trace', sink) });
    // Start-up readiness checks touch the upstream and the key provider; let their first round finish.
    await gateway.dependenciesAttempted;
    const port = gateway.port;
    const cos = new COS({ SecretId: SECRET_ID, SecretKey: SECRET_KEY, Protocol: 'http:', Domain: `127.0.0.1:${port}/{Bucket}` });
    cos.on('before-send', (opt: any) => {
      const auth = opt.headers?.Authorization ?? opt.headers?.authorization;
      if (typeof auth === 'string') secrets.push(auth, /q-signature=([0-9a-f]+)/.exec(auth)?.[1] as string);
    });
    // Uploads, listing, reads, an error.
    await cos.putObject({ Bucket, Region, Key: 'logs/small.bin', Body: randomBytes(10) }).catch(() => undefined);
    const init = await cos.multipartInit({ Bucket, Region, Key: 'logs/object.bin' });
    const part = await cos.multipartUpload({ Bucket, Region, Key: 'logs/object.bin', UploadId: init.UploadId, PartNumber: 1, Body: randomBytes(2000) });
    await cos.multipartListPart({ Bucket, Region, Key: 'logs/object.bin', UploadId: init.UploadId });
    await cos.multipartComplete({ Bucket, Region, Key: 'logs/object.bin', UploadId: init.UploadId, Parts: [{ PartNumber: 1, ETag: part.ETag }] });
    await cos.getObject({ Bucket, Region, Key: 'logs/object.bin', Range: 'bytes=0-99' });
    await cos.getObject({ Bucket, Region, Key: 'logs/missing.bin' }).catch(() => undefined);
    // A presigned URL (signature in the query string), and a tampered one.
    const url: string = cos.getObjectUrl({ Bucket, Region, Key: 'logs/object.bin', Sign: true }, () => undefined);
    secrets.push(url.split('?')[1] as string, /q-signature=([0-9a-f]+)/.exec(url)?.[1] as string);
    const get = (path: string, headers: Record<string, string> = {}) =>
      new Promise<number>((resolve, reject) => {
        request({ host: '127.0.0.1', port, path, headers }, (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode as number));
        })
          .on('error', reject)
          .end();
      });
    expect(await get(url.replace(/^http:\/\/[^/]+/, ''))).toBe(200);
    expect(await get(url.replace(/^http:\/\/[^/]+/, '').replace(/q-signature=([0-9a-f])/, (_match, first: string) => `q-signature=${first === '0' ? '1' : '0'}`))).toBe(403);
    // A wrong secret, and a bearer token the gateway does not accept.
    const now = Math.floor(Date.now() / 1000);
    const wrong = signCosRequest({
      method: 'GET',
      pathname: `/${Bucket}/logs/object.bin`,
      params: [],
      headers: [['host', `127.0.0.1:${port}`]],
      secretId: SECRET_ID,
      secretKey: 'a-wrong-secret-key-0123456789',
      keyTime: formatKeyTime(now - 10, now + 600),
    });
    secrets.push(wrong.authorization, wrong.signature);
    expect(await get(`/${Bucket}/logs/object.bin`, { host: `127.0.0.1:${port}`, authorization: wrong.authorization })).toBe(403);
    const token = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6YTpiIn0.c2lnbmF0dXJlLW9mLWEtdG9rZW4';
    secrets.push(token);
    expect(await get(`/${Bucket}/logs/object.bin`, { authorization: `Bearer ${token}` })).toBeGreaterThanOrEqual(400);
  } finally {
    await gateway?.stop();
    rmSync(directory, { recursive: true, force: true });
  }
  expect(lines.length).toBeGreaterThan(10); // the run did log
  const leaks = secrets.filter((s) => s !== undefined && s.length >= 8).filter((secret) => lines.some((line) => line.includes(secret)));
  expect(leaks).toEqual([]);
});
