import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { cachingKeyProvider } from '../../src/keys/data-key-cache';
import type { KeyProvider } from '../../src/keys/key-provider';
import { createLocalKeyring } from '../../src/keys/local-keyring';
import { ObjectService } from '../../src/store/object-service';
import { parseSealedManifest, sealManifestV1 } from '../../src/format/manifest';
import { buildObject } from '../support/object-builder';
import type { CofferContext } from '../../src/store/coffer-context';
import { MultipartService } from '../../src/store/multipart-service';
import { upstreamLayout } from '../../src/store/upstream-layout';
import { MemoryUploadStore } from '../support/memory-upload-store';

const MiB = 1024 * 1024;
const md5hex = (b: Buffer): string => createHash('md5').update(b).digest('hex');

let directory: string;
beforeAll(() => {
  directory = mkdtempSync(join(tmpdir(), 'coffer-objects-'));
});
afterAll(() => rmSync(directory, { recursive: true, force: true }));

function setup(options: { now?: () => number } = {}) {
  const store = new MemoryUploadStore(5 * MiB);
  const inner = createLocalKeyring({ directory, keyId: 'objects', create: true });
  const calls = { generate: 0, decrypt: 0 };
  const counting: KeyProvider = {
    name: 'local',
    generateDataKey: async (c) => {
      calls.generate += 1;
      return inner.generateDataKey(c);
    },
    decryptDataKey: async (w, c) => {
      calls.decrypt += 1;
      return inner.decryptDataKey(w, c);
    },
  };
  const keys = cachingKeyProvider(counting, { maxAgeMs: 60_000, maxEntries: 100 });
  const context: CofferContext = { coffer: 'demo-1250000000', store, layout: upstreamLayout('pre/'), keys, minPartSize: 5 * MiB, maxPartSize: 5 * 1024 ** 3 };
  return { store, context, calls, counting, objects: new ObjectService(options.now === undefined ? {} : { now: options.now }), multipart: new MultipartService() };
}

async function put(objects: ObjectService, context: CofferContext, key: string, data: Buffer, options: { contentMd5?: Buffer; contentType?: string; metadata?: Record<string, string> } = {}): Promise<string> {
  const prepared = await objects.preparePut(context, key, data.length, options);
  return (await objects.put(prepared, Readable.from([data.subarray(0, data.length >> 1), data.subarray(data.length >> 1)]))).etag;
}

async function read(objects: ObjectService, context: CofferContext, key: string, start?: number, end?: number): Promise<Buffer> {
  const head = await objects.head(context, key);
  const out: Buffer[] = [];
  try {
    for await (const chunk of objects.read(context, key, head, start, end)) out.push(chunk);
  } finally {
    head.dataKey.dispose();
  }
  return Buffer.concat(out);
}

const upstreamKeys = (store: MemoryUploadStore): string[] => [...store.objects.keys()].sort();

describe('PutObject', () => {
  test('round trip: ETag is the plaintext MD5, attributes kept, one KMS generate, no plaintext upstream', async () => {
    const { store, context, calls, objects } = setup();
    const data = randomBytes(3 * 65536 + 17);
    const etag = await put(objects, context, 'backups/a.tar', data, { contentType: 'application/x-tar', metadata: { owner: 'ops' } });
    expect(etag).toBe(`"${md5hex(data)}"`);
    expect(calls.generate).toBe(2); // the object's data key, and the coffer key (the coffer's first write only)
    const head = await objects.head(context, 'backups/a.tar');
    expect(head.manifest).toMatchObject({ kind: 'single', plaintextSize: data.length, attributes: { contentType: 'application/x-tar', metadata: { owner: 'ops' } } });
    expect(head.etag).toBe(etag);
    head.dataKey.dispose();
    expect(await read(objects, context, 'backups/a.tar')).toEqual(data);
    expect(await read(objects, context, 'backups/a.tar', 65530, 65540)).toEqual(data.subarray(65530, 65541));
    expect(upstreamKeys(store).every((k) => k.startsWith('pre/m/') || k.startsWith('pre/d/') || k === 'pre/k/coffer-key')).toBe(true);
    for (const entry of store.objects.values()) expect(entry.data.includes(data.subarray(1000, 1032))).toBe(false);
  });

  test('an empty object', async () => {
    const { context, objects } = setup();
    expect(await put(objects, context, 'empty', Buffer.alloc(0))).toBe(`"${md5hex(Buffer.alloc(0))}"`);
    expect(await read(objects, context, 'empty')).toEqual(Buffer.alloc(0));
  });

  test('write-once: an existing object or an open upload of the key → ObjectAlreadyExists before any body', async () => {
    const { context, objects, multipart } = setup();
    await put(objects, context, 'k', randomBytes(10));
    await expect(objects.preparePut(context, 'k', 10)).rejects.toMatchObject({ code: 'ObjectAlreadyExists' });
    await multipart.initiate(context, 'open');
    await expect(objects.preparePut(context, 'open', 10)).rejects.toMatchObject({ code: 'ObjectAlreadyExists' });
  });

  test('two PUTs of one key that both passed the check: exactly one wins, the loser gets 409 and leaves no data object', async () => {
    const { store, context, objects } = setup();
    const [a, b] = [randomBytes(1000), randomBytes(1000)];
    const first = await objects.preparePut(context, 'race', a.length);
    const second = await objects.preparePut(context, 'race', b.length);
    const results = await Promise.allSettled([objects.put(first, Readable.from([a])), objects.put(second, Readable.from([b]))]);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    expect(results.find((r) => r.status === 'rejected')).toMatchObject({ reason: { code: 'ObjectAlreadyExists' } });
    const winner = results[0]?.status === 'fulfilled' ? a : b;
    expect(await read(new ObjectService(), context, 'race')).toEqual(winner);
    expect(upstreamKeys(store).filter((k) => k.startsWith('pre/d/'))).toHaveLength(1);
  });

  async function openUploadWithOnePart(fixture: ReturnType<typeof setup>, key: string) {
    const { context, multipart } = fixture;
    const { uploadId } = await multipart.initiate(context, key);
    const part = randomBytes(MiB);
    const etag = await multipart.uploadPart(await multipart.prepareUploadPart(context, key, uploadId, 1, part.length), Readable.from([part]));
    return { uploadId, etag };
  }

  /** A genuine manifest of `key` (another upload's), as a stored entry: PUT in a twin bucket that shares the keyring. */
  async function genuineManifestOf(key: string, data = Buffer.from('hello')) {
    const twin = setup();
    await put(twin.objects, twin.context, key, data);
    return twin.store.objects.get(`pre/m/${key}`) as never;
  }

  test.each([
    ['a manifest of another key moved here', 'moved'],
    ['a manifest naming this upload id but sealed by nobody (planted)', 'planted'],
  ])('a Complete that finds %s answers IntegrityCheckFailed, never 200 or 409, and keeps the upload so a retry can complete once the bucket is repaired', async (_what, how) => {
    const fixture = setup();
    const { store, context, objects, multipart } = fixture;
    const { uploadId, etag } = await openUploadWithOnePart(fixture, 'mixed');
    let planted: Buffer;
    if (how === 'moved') {
      await put(objects, context, 'elsewhere', Buffer.from('hello'));
      planted = (store.objects.get('pre/m/elsewhere') as { data: Buffer }).data;
    } else {
      // The v1 layout an attacker can write without keys: this upload's (visible) id, a made-up body and MAC.
      const genuine = (await genuineManifestOf('mixed')) as { data: Buffer };
      const sealed = parseSealedManifest(genuine.data);
      planted = Buffer.concat([genuine.data.subarray(0, 12 + genuine.data.readUInt32BE(8)), Buffer.from(uploadId, 'hex'), genuine.data.subarray(12 + genuine.data.readUInt32BE(8) + 16)]);
      expect(parseSealedManifest(planted).objectId.toString('hex')).toBe(uploadId);
      expect(sealed.objectId.toString('hex')).not.toBe(uploadId);
    }
    const plant = () => store.objects.set('pre/m/mixed', { data: planted, etag: '"p"', lastModified: new Date() });
    // Found before the upstream Complete: refused, the upload kept.
    plant();
    await expect(multipart.complete(context, 'mixed', uploadId, [{ partNumber: 1, etag }])).rejects.toMatchObject({ name: 'IntegrityError', reason: 'manifest-conflict' });
    expect(store.objects.has(`pre/u/mixed/${uploadId}`)).toBe(true);
    // The operator removes the planted manifest; the client's retry completes and the object reads back.
    store.objects.delete('pre/m/mixed');
    await new MultipartService().complete(context, 'mixed', uploadId, [{ partNumber: 1, etag }]);
    expect((await read(new ObjectService(), context, 'mixed')).length).toBe(MiB);
  });

  test('a manifest planted between the upstream Complete and the create (the 412 itself) is refused the same way; the data object and upload record stay', async () => {
    const fixture = setup();
    const { store, context, multipart } = fixture;
    const { uploadId, etag } = await openUploadWithOnePart(fixture, 'mixed');
    const genuine = (await genuineManifestOf('mixed')) as { data: Buffer };
    const envelopeEnd = 12 + genuine.data.readUInt32BE(8);
    const planted = Buffer.concat([genuine.data.subarray(0, envelopeEnd), Buffer.from(uploadId, 'hex'), genuine.data.subarray(envelopeEnd + 16)]);
    store.beforeRequest = (operation) => {
      if (operation === 'completeMultipartUpload') store.objects.set('pre/m/mixed', { data: planted, etag: '"p"', lastModified: new Date() });
    };
    await expect(multipart.complete(context, 'mixed', uploadId, [{ partNumber: 1, etag }])).rejects.toMatchObject({ name: 'IntegrityError', reason: 'manifest-conflict' });
    store.beforeRequest = undefined;
    expect(store.objects.has(`pre/u/mixed/${uploadId}`)).toBe(true);
    expect(store.objects.has(`pre/d/mixed/${uploadId}`)).toBe(true);
  });

  test('a Complete that finds its key created meanwhile answers 409 and aborts the upload', async () => {
    const fixture = setup();
    const { store, context, multipart } = fixture;
    const { uploadId, etag } = await openUploadWithOnePart(fixture, 'mixed');
    // Another replica's PUT of the key, which passed its check before this upload existed (made in a
    // twin bucket with the same keyring, then its manifest copied: a genuine manifest of this key).
    store.objects.set('pre/m/mixed', await genuineManifestOf('mixed'));
    await expect(multipart.complete(context, 'mixed', uploadId, [{ partNumber: 1, etag }])).rejects.toMatchObject({ code: 'ObjectAlreadyExists' });
    expect(upstreamKeys(store).filter((k) => k.includes(uploadId))).toEqual([]);
    expect(store.uploads.size).toBe(0);
  });

  test('a Complete that loses the create race at the last step answers 409 and removes its data object and records', async () => {
    const fixture = setup();
    const { store, context, multipart } = fixture;
    const { uploadId, etag } = await openUploadWithOnePart(fixture, 'mixed');
    const theirs = await genuineManifestOf('mixed');
    // The other manifest lands between this Complete's check and its create.
    store.beforeRequest = (operation) => {
      if (operation === 'completeMultipartUpload') store.objects.set('pre/m/mixed', theirs);
    };
    await expect(multipart.complete(context, 'mixed', uploadId, [{ partNumber: 1, etag }])).rejects.toMatchObject({ code: 'ObjectAlreadyExists' });
    store.beforeRequest = undefined;
    expect(upstreamKeys(store).filter((k) => k.includes(uploadId))).toEqual([]);
  });

  test('a retried Complete whose manifest already landed succeeds (the stored manifest names this upload)', async () => {
    const fixture = setup();
    const { store, context, multipart } = fixture;
    const { uploadId, etag } = await openUploadWithOnePart(fixture, 'retry');
    let failOnce = true;
    store.beforeRequest = (operation, key) => {
      // The manifest create lands, but its answer is lost: the SDK retries and gets 412.
      if (operation === 'deleteObjects' && failOnce) {
        failOnce = false;
        throw new Error('connection reset after the manifest was written');
      }
      void key;
    };
    await expect(multipart.complete(context, 'retry', uploadId, [{ partNumber: 1, etag }])).rejects.toThrow('connection reset');
    store.beforeRequest = undefined;
    expect(store.objects.has('pre/m/retry')).toBe(true);
    // The upload record survived (cleanup failed), so the client's retry reaches the create again.
    await expect(multipart.complete(context, 'retry', uploadId, [{ partNumber: 1, etag }])).resolves.toMatchObject({ etag: expect.stringMatching(/-1"$/) });
  });

  test('Content-MD5 mismatch, a short body or a body error store nothing at all', async () => {
    const { store, context, objects } = setup();
    const data = randomBytes(200_000);
    const wrong = createHash('md5').update('other').digest();
    await expect(put(objects, context, 'bad', data, { contentMd5: wrong })).rejects.toMatchObject({ code: 'BadDigest' });
    const short = await objects.preparePut(context, 'short', data.length);
    await expect(objects.put(short, Readable.from([data.subarray(0, 1000)]))).rejects.toBeDefined();
    expect(upstreamKeys(store)).toEqual([]);
    // The key is still free.
    await put(objects, context, 'bad', data, { contentMd5: createHash('md5').update(data).digest() });
  });

  test('limits: body too large for one upstream PUT, metadata over 2 KB', async () => {
    const { context, objects } = setup();
    await expect(objects.preparePut({ ...context, maxPartSize: 10 * MiB }, 'big', 10 * MiB)).rejects.toMatchObject({ code: 'EntityTooLarge' });
    await expect(objects.preparePut(context, 'meta', 1, { metadata: { a: 'x'.repeat(2048) } })).rejects.toMatchObject({ code: 'MetadataTooLarge' });
  });
});

describe('reading', () => {
  test('once the manifest is cached, each range costs exactly one upstream GET and no KMS call', async () => {
    const { store, context, calls, objects } = setup();
    const data = randomBytes(10 * 65536);
    await put(objects, context, 'r', data);
    await read(objects, context, 'r', 0, 0);
    const gets = store.stats.byOperation.get('getObject') ?? 0;
    const decrypts = calls.decrypt;
    for (const [from, to] of [
      [5, 70000],
      [65536 * 9, 65536 * 10 - 1],
      [100, 100],
    ] as const) {
      expect(await read(objects, context, 'r', from, to)).toEqual(data.subarray(from, to + 1));
    }
    expect((store.stats.byOperation.get('getObject') ?? 0) - gets).toBe(3);
    expect(calls.decrypt).toBe(decrypts);
  });

  test('a missing manifest is NoSuchKey; a data object gone under a live manifest is an integrity failure', async () => {
    const { store, context, objects } = setup();
    await expect(objects.head(context, 'nothing')).rejects.toMatchObject({ code: 'NoSuchKey' });
    await put(objects, context, 'd', randomBytes(100));
    const dataKey = upstreamKeys(store).find((k) => k.startsWith('pre/d/')) as string;
    store.objects.delete(dataKey);
    await expect(read(objects, context, 'd')).rejects.toMatchObject({ name: 'IntegrityError', reason: 'data-object-missing' });
  });

  test('an expired object (manifest and data gone) is NoSuchKey even while another replica still caches it', async () => {
    const { store, context, objects } = setup();
    await put(objects, context, 'e', randomBytes(100));
    await read(objects, context, 'e');
    for (const key of upstreamKeys(store)) store.objects.delete(key);
    await expect(read(objects, context, 'e')).rejects.toMatchObject({ code: 'NoSuchKey' });
  });

  test('the cache is trusted only for its TTL', async () => {
    let now = Date.parse('2026-11-24T10:00:00Z');
    const { store, context, objects } = setup({ now: () => now });
    await put(objects, context, 't', randomBytes(100));
    await objects.head(context, 't');
    for (const key of upstreamKeys(store)) store.objects.delete(key);
    await expect(objects.head(context, 't')).resolves.toBeDefined();
    now += 61_000;
    await expect(objects.head(context, 't')).rejects.toMatchObject({ code: 'NoSuchKey' });
  });
});

describe('GetCoffer listing', () => {
  async function populate() {
    const fixture = setup();
    const { context, objects, multipart } = fixture;
    const sizes = new Map<string, number>();
    // Keys that look like the gateway's own layout areas must be listed like any other.
    for (const [key, size] of [
      ['a.txt', 3],
      ['d/x', 1],
      ['m/y', 2],
      ['photos/2025/1.jpg', 70000],
      ['photos/2025/2.jpg', 5],
      ['photos/2026/1.jpg', 0],
      ['p/z', 4],
      ['u/q', 6],
      ['zeta', 7],
    ] as const) {
      await put(objects, context, key, randomBytes(size));
      sizes.set(key, size);
    }
    // An open upload and a completed multipart object.
    await multipart.initiate(context, 'photos/open.jpg');
    const { uploadId } = await multipart.initiate(context, 'multi.bin');
    const parts = [randomBytes(MiB), randomBytes(12345)];
    const etags: string[] = [];
    for (const [index, part] of parts.entries()) etags.push(await multipart.uploadPart(await multipart.prepareUploadPart(context, 'multi.bin', uploadId, index + 1, part.length), Readable.from([part])));
    await multipart.complete(
      context,
      'multi.bin',
      uploadId,
      etags.map((etag, index) => ({ partNumber: index + 1, etag })),
    );
    sizes.set('multi.bin', MiB + 12345);
    return {
      ...fixture,
      sizes,
      multipartEtag: `"${createHash('md5')
        .update(Buffer.concat(parts.map((p) => createHash('md5').update(p).digest())))
        .digest('hex')}-2"`,
    };
  }

  test('every object with its exact plaintext size and ETag, no bookkeeping, no open upload', async () => {
    const { context, objects, sizes, multipartEtag } = await populate();
    const page = await objects.list(context);
    expect(page.objects.map((o) => o.key)).toEqual([...sizes.keys()].sort());
    for (const object of page.objects) expect(object.size).toBe(sizes.get(object.key));
    expect(page.objects.find((o) => o.key === 'multi.bin')?.etag).toBe(multipartEtag);
    expect(page.isTruncated).toBe(false);
    expect(page.commonPrefixes).toEqual([]);
  });

  test('prefix and delimiter roll keys up into common prefixes', async () => {
    const { context, objects } = await populate();
    const top = await objects.list(context, { delimiter: '/' });
    expect(top.objects.map((o) => o.key)).toEqual(['a.txt', 'multi.bin', 'zeta']);
    expect(top.commonPrefixes).toEqual(['d/', 'm/', 'p/', 'photos/', 'u/']);
    const photos = await objects.list(context, { prefix: 'photos/', delimiter: '/' });
    expect(photos.objects).toEqual([]);
    expect(photos.commonPrefixes).toEqual(['photos/2025/', 'photos/2026/']);
    const year = await objects.list(context, { prefix: 'photos/2025/' });
    expect(year.objects.map((o) => [o.key, o.size])).toEqual([
      ['photos/2025/1.jpg', 70000],
      ['photos/2025/2.jpg', 5],
    ]);
  });

  test('paging with max-keys and NextMarker visits every entry once, with and without a delimiter', async () => {
    const { context, objects } = await populate();
    for (const delimiter of [undefined, '/']) {
      const whole = await objects.list(context, { ...(delimiter === undefined ? {} : { delimiter }) });
      const all = [...whole.objects.map((o) => o.key), ...whole.commonPrefixes].sort();
      for (const maxKeys of [1, 2, 3]) {
        const seen: string[] = [];
        let marker: string | undefined;
        for (let i = 0; i < 50; i += 1) {
          const page = await objects.list(context, { maxKeys, ...(marker === undefined ? {} : { marker }), ...(delimiter === undefined ? {} : { delimiter }) });
          expect(page.objects.length + page.commonPrefixes.length).toBeLessThanOrEqual(maxKeys);
          seen.push(...page.objects.map((o) => o.key), ...page.commonPrefixes);
          if (!page.isTruncated) break;
          marker = page.nextMarker;
          expect(marker).toBeDefined();
        }
        expect(seen.sort()).toEqual(all);
      }
    }
  });

  test('a listed manifest is fetched once, then served from the summary cache', async () => {
    const { store, context, objects } = await populate();
    const fresh = new ObjectService();
    await fresh.list(context);
    const gets = store.stats.byOperation.get('getObject') ?? 0;
    await fresh.list(context);
    expect(store.stats.byOperation.get('getObject') ?? 0).toBe(gets);
    void objects;
  });

  test('a listing is authenticated at one unwrap per coffer, not one per object (no data-key cache)', async () => {
    const { context, counting, calls, sizes, multipartEtag } = await populate();
    // A fresh replica without a data-key cache: every unwrap would reach the KMS.
    const uncached: CofferContext = { ...context, keys: counting };
    const before = calls.decrypt;
    const page = await new ObjectService().list(uncached);
    expect(page.objects).toHaveLength(sizes.size);
    expect(calls.decrypt - before).toBe(1); // the coffer key
    expect(page.objects.every((o) => o.damaged !== true && o.size === sizes.get(o.key))).toBe(true);
    expect(page.objects.find((o) => o.key === 'multi.bin')?.etag).toBe(multipartEtag);
  });

  test('listed values are authenticated: a summary swapped between objects, altered, or a manifest moved from another key lists as damaged', async () => {
    const { store, context, objects } = setup();
    for (const key of ['one', 'two', 'three', 'four']) await put(objects, context, key, randomBytes(10));
    await put(objects, context, 'big', randomBytes(100000));
    const bytesOf = (key: string): Buffer => (store.objects.get(`pre/m/${key}`) as { data: Buffer }).data;
    const setBytes = (key: string, data: Buffer): void => {
      store.objects.set(`pre/m/${key}`, { data, etag: `"${randomBytes(4).toString('hex')}"`, lastModified: new Date() });
    };
    const summaryRange = (m: Buffer): [number, number] => {
      const start = 12 + m.readUInt32BE(8) + 16 + 4;
      return [start, start + m.readUInt32BE(start - 4)];
    };
    // 'one' gets the big object's summary (claims 100000 bytes): bound to the other key and object id.
    const one = bytesOf('one');
    const big = bytesOf('big');
    const [os, oe] = summaryRange(one);
    const [bs, be] = summaryRange(big);
    const forged = Buffer.concat([one.subarray(0, os - 4), big.subarray(bs - 4, be), one.subarray(oe)]);
    setBytes('one', forged);
    // 'two': one byte of its summary flipped.
    const two = Buffer.from(bytesOf('two'));
    two[summaryRange(two)[0] + 20] = (two[summaryRange(two)[0] + 20] as number) ^ 1;
    setBytes('two', two);
    // 'three': the manifest of 'four' copied over it.
    setBytes('three', bytesOf('four'));
    const page = await new ObjectService().list(context);
    expect(page.objects.map((o) => [o.key, o.damaged === true, o.size])).toEqual([
      ['big', false, 100000],
      ['four', false, 10],
      ['one', true, 0],
      ['three', true, 0],
      ['two', true, 0],
    ]);
    // The reason reaches the log and the integrity-failure metric.
    expect(page.objects.filter((o) => o.damaged === true).map((o) => o.damagedReason)).toEqual(['listing-summary-rejected', 'listing-summary-rejected', 'listing-summary-rejected']);
  });

  test('objects written in format v1 are still read and listed (their listing values unauthenticated, as v1 stored them)', async () => {
    const { store, context, objects } = setup();
    await put(objects, context, 'v2-object', randomBytes(3));
    const dataKey = await context.keys.generateDataKey({ coffer: context.coffer, key: 'legacy' });
    const built = await buildObject({ partSizes: [70000, 5], dataKey: dataKey.plaintext });
    const uploadId = built.manifest.objectId.toString('hex');
    store.objects.set(`pre/d/legacy/${uploadId}`, { data: built.data, etag: '"d"', lastModified: new Date() });
    const v1 = sealManifestV1(built.manifest, { provider: 'local', keyId: dataKey.keyId, wrappedKey: dataKey.wrapped, context: { coffer: context.coffer, key: 'legacy' } }, dataKey.plaintext);
    store.objects.set('pre/m/legacy', { data: v1, etag: '"m"', lastModified: new Date() });
    expect(await read(new ObjectService(), context, 'legacy')).toEqual(built.plaintext);
    expect(await read(new ObjectService(), context, 'legacy', 69990, 70002)).toEqual(built.plaintext.subarray(69990, 70003));
    const page = await new ObjectService().list(context);
    expect(page.objects.map((o) => [o.key, o.size, o.damaged === true])).toEqual([
      ['legacy', 70005, false],
      ['v2-object', 3, false],
    ]);
    // A v1 manifest altered is refused on read.
    const altered = Buffer.from(v1);
    altered[altered.length - 40] = (altered[altered.length - 40] as number) ^ 1;
    store.objects.set('pre/m/legacy', { data: altered, etag: '"m2"', lastModified: new Date() });
    await expect(read(new ObjectService(), context, 'legacy')).rejects.toMatchObject({ name: 'IntegrityError' });
  });

  test("the coffer key record: another coffer's record or an altered one is refused — v2 objects list as damaged, writes fail, nothing is created", async () => {
    const { store, context, objects } = setup();
    await put(objects, context, 'first', randomBytes(10));
    const recordKey = context.layout.cofferKey();
    const genuine = (store.objects.get(recordKey) as { data: Buffer }).data;
    // Another coffer's genuine record (wrapped for {coffer: other}).
    const other = setup();
    const otherContext: CofferContext = { ...other.context, coffer: 'other-1250000000' };
    await put(other.objects, otherContext, 'x', randomBytes(3));
    const foreign = (other.store.objects.get(recordKey) as { data: Buffer }).data;
    const value = JSON.parse(genuine.toString('utf8')) as { envelope: { wrappedKey: string } };
    const wrapped = Buffer.from(value.envelope.wrappedKey, 'base64');
    wrapped[wrapped.length - 1] = (wrapped[wrapped.length - 1] as number) ^ 1;
    const altered = Buffer.from(JSON.stringify({ ...value, envelope: { ...value.envelope, wrappedKey: wrapped.toString('base64') } }));
    for (const replacement of [foreign, altered]) {
      store.objects.set(recordKey, { data: replacement, etag: '"k"', lastModified: new Date() });
      // A fresh context: nothing cached, as on another replica.
      const fresh: CofferContext = { ...context };
      const page = await new ObjectService().list(fresh);
      expect(page.objects.map((o) => [o.key, o.damaged === true])).toEqual([['first', true]]);
      await expect(put(new ObjectService(), fresh, `second-${replacement.length}`, randomBytes(4))).rejects.toMatchObject({ name: 'IntegrityError', reason: 'coffer-key-rejected' });
      expect(store.objects.has(`pre/m/second-${replacement.length}`)).toBe(false);
      // Reads do not need the coffer key: the object itself is intact.
      expect((await read(new ObjectService(), fresh, 'first')).length).toBe(10);
    }
  });

  test('a damaged manifest is listed (never hidden) and flagged', async () => {
    const { store, context, objects } = setup();
    await put(objects, context, 'ok', randomBytes(5));
    store.objects.set('pre/m/broken', { data: Buffer.from('not a manifest'), etag: '"x"', lastModified: new Date() });
    const page = await objects.list(context);
    expect(page.objects.map((o) => [o.key, o.damaged === true])).toEqual([
      ['broken', true],
      ['ok', false],
    ]);
  });
});
