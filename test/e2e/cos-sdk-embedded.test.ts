/**
 * The official COS SDK (cos-nodejs-sdk-v5 3.0.0) against the gateway as `npm start` runs it: the
 * embedded upstream, the local keyring and the demo coffer. Real HTTP, real SDK, real signatures.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../src/config';
import { startGateway, type RunningGateway } from '../../src/app/serve';
import { createLogger } from '../../src/observability/logger';
import { sha256 } from '../support/digests';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const COS = require('cos-nodejs-sdk-v5');

const MiB = 1024 * 1024;
const Bucket = 'demo-1250000000';
const Region = 'ap-guangzhou';

let directory: string;
let gateway: RunningGateway;
/** Every plaintext the tests send (whole objects and single parts): the scan below looks for their MD5s upstream. */
const sent: Buffer[] = [];
let cos: any;

function counted(operation: string): Promise<number> {
  return gateway.metrics.requests.get().then((m) => m.values.filter((v) => v.labels.operation === operation).reduce((s, v) => s + v.value, 0));
}

function storedFiles(root: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(root, { recursive: true }) as string[]) {
    const path = join(root, entry);
    if (statSync(path).isFile()) out.push(path);
  }
  return out;
}

beforeAll(async () => {
  directory = mkdtempSync(join(tmpdir(), 'coffer-e2e-'));
  const config = loadConfig({
    env: {
      PORT: '0',
      COFFER__SERVER__ADMIN_PORT: '0',
      COFFER_DEMO_SECRET_ID: 'AKIDe2eDemo',
      COFFER_DEMO_SECRET_KEY: 'e2e-demo-secret-key-0123456789',
      COFFER__KEYRING__DIRECTORY: join(directory, 'keyring'),
      COFFER__EMBEDDED_UPSTREAM__DIRECTORY: join(directory, 'upstream'),
    },
  });
  gateway = await startGateway(config, { log: createLogger('silent') });
  cos = new COS({ SecretId: 'AKIDe2eDemo', SecretKey: 'e2e-demo-secret-key-0123456789', Protocol: 'http:', Domain: `127.0.0.1:${gateway.port}/{Bucket}` });
});

afterAll(async () => {
  await gateway?.stop();
  rmSync(directory, { recursive: true, force: true });
});

test('sliceUploadFile of a multi-megabyte file in 1 MB parts; getObject whole and across part boundaries; no plaintext upstream', async () => {
  const data = randomBytes(7 * MiB + 12345);
  sent.push(data, ...Array.from({ length: 8 }, (_, i) => data.subarray(i * MiB, (i + 1) * MiB)));
  const file = join(directory, 'upload.bin');
  writeFileSync(file, data);
  const uploaded = await cos.sliceUploadFile({ Bucket, Region, Key: 'backups/db.bin', FilePath: file, ChunkSize: MiB });
  expect(uploaded.ETag).toMatch(/-8"$/);
  const whole = await cos.getObject({ Bucket, Region, Key: 'backups/db.bin' });
  expect(sha256(whole.Body)).toBe(sha256(data));
  for (const [start, end] of [
    [MiB - 5, MiB + 5],
    [0, 0],
    [3 * MiB - 1, 5 * MiB],
    [data.length - 10, data.length - 1],
  ] as const) {
    const ranged = await cos.getObject({ Bucket, Region, Key: 'backups/db.bin', Range: `bytes=${start}-${end}` });
    expect(ranged.statusCode).toBe(206);
    expect(ranged.headers['content-range']).toBe(`bytes ${start}-${end}/${data.length}`);
    expect(sha256(ranged.Body)).toBe(sha256(data.subarray(start, end + 1)));
  }
  const head = await cos.headObject({ Bucket, Region, Key: 'backups/db.bin' });
  expect(Number(head.headers['content-length'])).toBe(data.length);
  // The upstream holds ciphertext only: no 64-byte window of the plaintext appears in any stored file.
  const windows = [0, MiB, 4 * MiB + 77, data.length - 64].map((at) => data.subarray(at, at + 64));
  for (const path of storedFiles(join(directory, 'upstream'))) {
    const stored = readFileSync(path);
    for (const window of windows) expect(stored.includes(window)).toBe(false);
  }
});

test('an interrupted upload resumes: only the missing parts are sent again', async () => {
  const data = randomBytes(6 * MiB + 100);
  sent.push(data, ...Array.from({ length: 7 }, (_, i) => data.subarray(i * MiB, (i + 1) * MiB)));
  const file = join(directory, 'resume.bin');
  writeFileSync(file, data);
  const Key = 'resume/me.bin';
  // Upload three of the seven parts by hand, as an interrupted sliceUploadFile would have.
  const init = await cos.multipartInit({ Bucket, Region, Key });
  for (const partNumber of [1, 2, 4]) {
    const body = data.subarray((partNumber - 1) * MiB, partNumber * MiB);
    await cos.multipartUpload({ Bucket, Region, Key, UploadId: init.UploadId, PartNumber: partNumber, Body: body });
  }
  const before = await counted('UploadPart');
  await cos.sliceUploadFile({ Bucket, Region, Key, FilePath: file, ChunkSize: MiB });
  expect((await counted('UploadPart')) - before).toBe(4);
  const back = await cos.getObject({ Bucket, Region, Key });
  expect(sha256(back.Body)).toBe(sha256(data));
});

test('errors of the contract reach the SDK with their codes', async () => {
  const error = async (promise: Promise<unknown>): Promise<{ code?: string; statusCode?: number }> =>
    promise.then(
      () => ({ code: 'none' }),
      (e: any) => ({ code: e.code, statusCode: e.statusCode }),
    );
  expect(await error(cos.multipartInit({ Bucket, Region, Key: 'backups/db.bin' }))).toMatchObject({ code: 'ObjectAlreadyExists', statusCode: 409 });
  expect(await error(cos.multipartUpload({ Bucket, Region, Key: 'nope', UploadId: 'f'.repeat(32), PartNumber: 1, Body: Buffer.alloc(10) }))).toMatchObject({ code: 'NoSuchUpload', statusCode: 404 });
  expect(await error(cos.getObject({ Bucket, Region, Key: 'missing' }))).toMatchObject({ statusCode: 404 });
  const bad = new COS({ SecretId: 'AKIDe2eDemo', SecretKey: 'wrong-secret-key-0123456789', Protocol: 'http:', Domain: `127.0.0.1:${gateway.port}/{Bucket}` });
  expect(await error(bad.headObject({ Bucket, Region, Key: 'backups/db.bin' }))).toMatchObject({ statusCode: 403 });
  const init = await cos.multipartInit({ Bucket, Region, Key: 'order' });
  const part = randomBytes(MiB);
  sent.push(part);
  const p1 = await cos.multipartUpload({ Bucket, Region, Key: 'order', UploadId: init.UploadId, PartNumber: 1, Body: part });
  expect(p1.ETag).toBe(`"${createHash('md5').update(part).digest('hex')}"`);
  expect(await error(cos.multipartComplete({ Bucket, Region, Key: 'order', UploadId: init.UploadId, Parts: [{ PartNumber: 2, ETag: p1.ETag }] }))).toMatchObject({ code: 'InvalidPart' });
  const listed = await cos.multipartListPart({ Bucket, Region, Key: 'order', UploadId: init.UploadId });
  expect(listed.Part.map((p: any) => [p.PartNumber, p.ETag, p.Size])).toEqual([['1', p1.ETag, String(MiB)]]);
  await cos.multipartAbort({ Bucket, Region, Key: 'order', UploadId: init.UploadId });
  expect(await error(cos.multipartListPart({ Bucket, Region, Key: 'order', UploadId: init.UploadId }))).toMatchObject({ code: 'NoSuchUpload' });
});

test('no plaintext MD5 of any object or part, in hex or base64, appears in any upstream name or body (format v2)', async () => {
  // Small single PUTs (whose ETag is the MD5 of the whole plaintext) and an upload left open, so its
  // upload record and part records are in the bucket too.
  for (const body of [Buffer.from('x'), randomBytes(5000), Buffer.alloc(0)]) {
    sent.push(body);
    await cos.putObject({ Bucket, Region, Key: `small/${sent.length}`, Body: body, ContentType: 'text/html', Headers: { 'x-cos-meta-owner': 'scan-owner' } });
  }
  const init = await cos.multipartInit({ Bucket, Region, Key: 'open/upload.bin', ContentType: 'text/html' });
  for (const partNumber of [1, 2, 3]) {
    const body = randomBytes(partNumber === 3 ? 777 : MiB);
    sent.push(body);
    await cos.multipartUpload({ Bucket, Region, Key: 'open/upload.bin', UploadId: init.UploadId, PartNumber: partNumber, Body: body });
  }
  await cos.getBucket({ Bucket, Region }); // a listing reads every manifest's summary
  // The empty body's MD5 (d41d8cd9…) is also every empty upstream object's own ETag (part records are
  // empty objects), and an empty object's size is visible anyway: it reveals nothing, so it is not sought.
  const digests = sent.filter((body) => body.length > 0).map((body) => createHash('md5').update(body).digest());
  const needles = digests.flatMap((d) => [d.toString('hex'), d.toString('hex').toUpperCase(), d.toString('base64'), d.toString('base64url'), d.toString('base64').replace(/=+$/, '')]).map((text) => Buffer.from(text, 'latin1'));
  const files = storedFiles(join(directory, 'upstream'));
  expect(files.length).toBeGreaterThan(10);
  for (const path of files) {
    const stored = Buffer.concat([Buffer.from(path, 'utf8'), readFileSync(path)]);
    for (const [index, needle] of needles.entries()) {
      if (stored.includes(needle)) throw new Error(`${path} holds the MD5 of sent body ${Math.floor(index / 5)} in the clear`);
    }
    for (const digest of digests) expect(stored.includes(digest)).toBe(false);
    // Content type and user metadata are sealed too.
    expect(stored.includes(Buffer.from('text/html'))).toBe(false);
    expect(stored.includes(Buffer.from('scan-owner'))).toBe(false);
  }
  await cos.multipartAbort({ Bucket, Region, Key: 'open/upload.bin', UploadId: init.UploadId });
});
