import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { FileSystemStore } from '../../src/embedded/file-system-store';
import { createLocalKeyring } from '../../src/keys/local-keyring';
import { MultipartService } from '../../src/upload/multipart-service';
import { upstreamLayout } from '../../src/upload/upstream-layout';

const MiB = 1024 * 1024;
let directory: string;
beforeEach(() => {
  directory = mkdtempSync(join(tmpdir(), 'coffer-fs-store-'));
});
afterEach(() => rmSync(directory, { recursive: true, force: true }));

test('atomic writes: a short or failing body leaves the previous object and part intact and no temp file', async () => {
  const store = await new FileSystemStore(join(directory, 'up')).init();
  await store.putObject('a b/ü+%', { body: Buffer.from('first') });
  await expect(store.putObject('a b/ü+%', { body: Readable.from([Buffer.from('sec')]), contentLength: 6 })).rejects.toMatchObject({ code: 'IncompleteBody' });
  await expect(store.putObject('a b/ü+%', { body: Readable.from([Buffer.from('second!')]), contentLength: 6 })).rejects.toMatchObject({ code: 'IncompleteBody' });
  const failing = new Readable({ read() {} });
  failing.push(Buffer.from('par'));
  setImmediate(() => failing.destroy(new Error('client went away')));
  await expect(store.putObject('a b/ü+%', { body: failing, contentLength: 6 })).rejects.toThrow('client went away');
  const got = await store.getObject('a b/ü+%');
  expect(Buffer.concat(await got.body.toArray())).toEqual(Buffer.from('first'));
  expect(readdirSync(join(directory, 'up', 'tmp'))).toEqual([]);
  const { uploadId } = await store.createMultipartUpload('k');
  const { etag } = await store.uploadPart('k', uploadId, 1, { body: Readable.from([Buffer.alloc(10)]), contentLength: 10 });
  await expect(store.uploadPart('k', uploadId, 1, { body: Readable.from([Buffer.alloc(5)]), contentLength: 10 })).rejects.toMatchObject({ code: 'IncompleteBody' });
  expect((await store.listParts('k', uploadId))[0]?.etag).toBe(etag);
  await expect(store.uploadPart('k', 'f'.repeat(32), 1, { body: Readable.from([]), contentLength: 0 })).rejects.toMatchObject({ kind: 'NoSuchUpload' });
});

test('S3 rules at Complete and listing with prefix, delimiter and paging', async () => {
  const store = await new FileSystemStore(join(directory, 'up'), 5).init();
  const { uploadId } = await store.createMultipartUpload('obj');
  const a = await store.uploadPart('obj', uploadId, 1, { body: Readable.from([Buffer.alloc(3)]), contentLength: 3 });
  const b = await store.uploadPart('obj', uploadId, 2, { body: Readable.from([Buffer.alloc(7)]), contentLength: 7 });
  await expect(store.completeMultipartUpload('obj', uploadId, [{ partNumber: 1, etag: a.etag }, { partNumber: 2, etag: b.etag }])).rejects.toMatchObject({ code: 'EntityTooSmall' });
  await expect(store.completeMultipartUpload('obj', uploadId, [{ partNumber: 2, etag: a.etag }])).rejects.toMatchObject({ code: 'InvalidPart' });
  await expect(store.completeMultipartUpload('obj', uploadId, [{ partNumber: 2, etag: b.etag }, { partNumber: 1, etag: a.etag }])).rejects.toMatchObject({ code: 'InvalidPartOrder' });
  const done = await store.completeMultipartUpload('obj', uploadId, [{ partNumber: 2, etag: b.etag }]);
  expect(done.etag).toMatch(/-1"$/);
  for (const key of ['p/a', 'p/b/c', 'p/b/d', 'p/e', 'q']) await store.putObject(key, { body: Buffer.from(key) });
  const listing = await store.listObjects('p/', { delimiter: '/' });
  expect(listing.objects.map((o) => o.key)).toEqual(['p/a', 'p/e']);
  expect(listing.commonPrefixes).toEqual(['p/b/']);
  const first = await store.listObjects('p/', { maxKeys: 2 });
  expect(first).toMatchObject({ isTruncated: true });
  const second = await store.listObjects('p/', { continuationToken: first.nextContinuationToken });
  expect([...first.objects, ...second.objects].map((o) => o.key)).toEqual(['p/a', 'p/b/c', 'p/b/d', 'p/e']);
  const range = await store.getObject('p/b/c', { start: 2, endExclusive: 4 });
  expect(Buffer.concat(await range.body.toArray()).toString()).toBe('b/');
  expect(range.totalSize).toBe(5);
});

test('the multipart service end to end on the file-system store', async () => {
  const store = await new FileSystemStore(join(directory, 'up')).init();
  const keys = createLocalKeyring({ directory: join(directory, 'keyring'), keyId: 'demo', create: true });
  const context = { coffer: 'demo-1250000000', store, layout: upstreamLayout(), keys, minPartSize: 5 * MiB, maxPartSize: 5 * 1024 ** 3 };
  const service = new MultipartService();
  const parts = [randomBytes(MiB), randomBytes(MiB), randomBytes(6 * MiB), randomBytes(77)];
  const { uploadId } = await service.initiate(context, 'dir/file.bin');
  const etags: string[] = [];
  for (const [i, part] of parts.entries()) {
    const prepared = await service.prepareUploadPart(context, 'dir/file.bin', uploadId, i + 1, part.length);
    etags.push(await service.uploadPart(prepared, Readable.from([part])));
  }
  await service.complete(context, 'dir/file.bin', uploadId, etags.map((etag, i) => ({ partNumber: i + 1, etag })));
  const head = await service.head(context, 'dir/file.bin');
  const out: Buffer[] = [];
  for await (const chunk of service.read(context, head)) out.push(chunk);
  const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
  expect(sha(Buffer.concat(out))).toBe(sha(Buffer.concat(parts)));
  expect((await store.listObjects('')).objects.map((o) => o.key).sort()).toEqual([`d/dir/file.bin/${uploadId}`, 'm/dir/file.bin']);
});
