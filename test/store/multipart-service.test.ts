import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { crc32 as zlibCrc32 } from 'node:zlib';
import { GatewayError } from '../../src/errors/gateway-error';
import { cachingKeyProvider } from '../../src/keys/data-key-cache';
import type { KeyProvider } from '../../src/keys/key-provider';
import { createLocalKeyring } from '../../src/keys/local-keyring';
import type { CofferContext } from '../../src/store/coffer-context';
import { ObjectService } from '../../src/store/object-service';
import { CDCS_MIN_PART_SIZE, MultipartService } from '../../src/store/multipart-service';
import { upstreamLayout } from '../../src/store/upstream-layout';
import { MemoryUploadStore } from '../support/memory-upload-store';
import { md5Etag, sha256 } from '../support/digests';

const MiB = 1024 * 1024;

let directory: string;
beforeAll(() => {
  directory = mkdtempSync(join(tmpdir(), 'coffer-upload-'));
});
afterAll(() => rmSync(directory, { recursive: true, force: true }));

function setup(minPartSize = 5 * MiB) {
  const store = new MemoryUploadStore(minPartSize);
  const inner = createLocalKeyring({ directory, keyId: 'test', create: true });
  const calls = { generate: 0, decrypt: 0 };
  const counting: KeyProvider = {
    name: 'local',
    generateDataKey: async (c) => {
      calls.generate += 1;
      return inner.generateDataKey(c);
    },
    decryptDataKey: async (w, c, k) => {
      calls.decrypt += 1;
      return inner.decryptDataKey(w, c, k);
    },
  };
  const keys = cachingKeyProvider(counting, { maxAgeMs: 60_000, maxEntries: 100 });
  const context: CofferContext = { coffer: 'demo-1250000000', store, layout: upstreamLayout('coffers/demo/'), keys, minPartSize, maxPartSize: 5 * 1024 ** 3 };
  return { store, context, calls, service: new MultipartService() };
}

async function putPart(service: MultipartService, context: CofferContext, key: string, uploadId: string, partNumber: number, data: Buffer, contentMd5?: Buffer): Promise<string> {
  const prepared = await service.prepareUploadPart(context, key, uploadId, partNumber, data.length, contentMd5);
  return service.uploadPart(prepared, Readable.from([data.subarray(0, Math.floor(data.length / 2)), data.subarray(Math.floor(data.length / 2))]));
}

async function readBack(context: CofferContext, key: string, start?: number, end?: number): Promise<Buffer> {
  const objects = new ObjectService();
  const head = await objects.head(context, key);
  const out: Buffer[] = [];
  for await (const chunk of objects.read(context, key, head, start, end)) out.push(chunk);
  return Buffer.concat(out);
}

function expectCode(promise: Promise<unknown>, code: string): Promise<void> {
  return expect(promise).rejects.toMatchObject({ code });
}

describe('multipart upload over an upstream with a 5 MiB minimum', () => {
  test('1 MiB parts out of order: staged, assembled, byte-exact, one KMS call, no plaintext upstream', async () => {
    const { store, context, calls, service } = setup();
    const key = 'backups/2026/db.tar';
    const parts = [...Array.from({ length: 7 }, () => randomBytes(MiB)), randomBytes(123457)];
    const { uploadId } = await service.initiate(context, key, { contentType: 'application/x-tar', metadata: { origin: 'test' } });
    const etags = new Map<number, string>();
    for (const index of [3, 0, 7, 1, 6, 2, 5, 4]) etags.set(index + 1, await putPart(service, context, key, uploadId, index + 1, parts[index] as Buffer));
    expect(etags.get(1)).toBe(md5Etag(parts[0] as Buffer));
    const listed = await service.listParts(context, key, uploadId);
    expect(listed.parts.map((p) => [p.partNumber, p.etag, p.size])).toEqual(parts.map((p, i) => [i + 1, md5Etag(p), p.length]));

    const result = await service.complete(
      context,
      key,
      uploadId,
      parts.map((_, i) => ({ partNumber: i + 1, etag: etags.get(i + 1) as string })),
    );
    expect(result.etag).toMatch(/^"[0-9a-f]{32}-8"$/);
    const whole = Buffer.concat(parts);
    expect(sha256(await readBack(context, key))).toBe(sha256(whole));
    const from = MiB - 10;
    const to = 3 * MiB + 5;
    expect(sha256(await readBack(context, key, from, to))).toBe(sha256(whole.subarray(from, to + 1)));
    expect(calls.generate).toBe(2); // the upload's data key, and the coffer key (the coffer's first write only)
    expect(calls.decrypt).toBe(0); // every later use hit the cache
    // Bookkeeping is gone; only the manifest and the data object remain, and no stored object contains a plaintext run.
    const remaining = [...store.objects.keys()].sort();
    expect(remaining).toEqual([`coffers/demo/d/${key}/${uploadId}`, 'coffers/demo/k/coffer-key', `coffers/demo/m/${key}`]);
    for (const { data } of store.objects.values()) expect(data.includes((parts[2] as Buffer).subarray(1000, 1064))).toBe(false);
    // Staging: the seven 1 MiB parts were written twice, the small last part once.
    const stagedBytes = store.stats.objectBytes;
    expect(stagedBytes).toBeGreaterThan(7 * MiB);
  });

  test('Complete copies staged runs a few at a time; a failed copy fails Complete only once no copy is running, and a retry completes', async () => {
    const { store, context, service } = setup();
    const key = 'many-runs.bin';
    const parts = [...Array.from({ length: 30 }, () => randomBytes(MiB)), randomBytes(999)];
    const { uploadId } = await service.initiate(context, key);
    const list: Array<{ partNumber: number; etag: string }> = [];
    for (const [index, part] of parts.entries()) list.push({ partNumber: index + 1, etag: await putPart(service, context, key, uploadId, index + 1, part) });

    const original = store.uploadPart.bind(store);
    let running = 0;
    let peak = 0;
    let copies = 0;
    let failOnCopy: number | undefined = 3;
    let copiesAtFailure = 0;
    store.uploadPart = async (...args: Parameters<typeof original>) => {
      copies += 1;
      running += 1;
      peak = Math.max(peak, running);
      try {
        if (copies === failOnCopy) {
          for await (const _ of args[3].body) void _; // consume, then fail like a broken upstream connection
          copiesAtFailure = copies;
          throw Object.assign(new Error('upstream reset'), { code: 'ECONNRESET' });
        }
        return await original(...args);
      } finally {
        running -= 1;
      }
    };
    await expect(service.complete(context, key, uploadId, list)).rejects.toThrow();
    expect(running).toBe(0); // nothing still writing when the client hears of the failure
    expect(peak).toBe(4);
    expect(copies).toBe(copiesAtFailure); // no copy started after the failure
    failOnCopy = undefined;
    peak = 0;
    await service.complete(context, key, uploadId, list);
    expect(peak).toBe(4);
    expect(sha256(await readBack(context, key))).toBe(sha256(Buffer.concat(parts)));
  });

  test('a re-uploaded part replaces the earlier one; Content-MD5 mismatch leaves the earlier one intact', async () => {
    const { context, service } = setup();
    const key = 'k';
    const { uploadId } = await service.initiate(context, key);
    const first = randomBytes(6 * MiB);
    const second = randomBytes(6 * MiB);
    await putPart(service, context, key, uploadId, 1, first);
    await expectCode(putPart(service, context, key, uploadId, 1, second, createHash('md5').update(first).digest()), 'BadDigest');
    expect((await service.listParts(context, key, uploadId)).parts[0]?.etag).toBe(md5Etag(first));
    await putPart(service, context, key, uploadId, 1, second, createHash('md5').update(second).digest());
    expect((await service.listParts(context, key, uploadId)).parts[0]?.etag).toBe(md5Etag(second));
    await service.complete(context, key, uploadId, [{ partNumber: 1, etag: md5Etag(second) }]);
    expect(sha256(await readBack(context, key))).toBe(sha256(second));
  });

  test('a body that breaks off leaves nothing new upstream', async () => {
    const { store, context, service } = setup();
    const { uploadId } = await service.initiate(context, 'k');
    const good = randomBytes(6 * MiB);
    await putPart(service, context, 'k', uploadId, 2, good);
    const prepared = await service.prepareUploadPart(context, 'k', uploadId, 2, 6 * MiB);
    const broken = new Readable({ read() {} });
    broken.push(randomBytes(3 * MiB));
    setImmediate(() => broken.destroy(new GatewayError('IncompleteBody')));
    await expectCode(service.uploadPart(prepared, broken), 'IncompleteBody');
    expect((await service.listParts(context, 'k', uploadId)).parts.map((p) => p.etag)).toEqual([md5Etag(good)]);
    expect([...store.uploads.values()][0]?.parts.size).toBe(1);
  });

  test('errors of the contract', async () => {
    const { context, service } = setup();
    const { uploadId } = await service.initiate(context, 'k');
    await expectCode(service.initiate(context, 'k'), 'ObjectAlreadyExists');
    await expectCode(service.prepareUploadPart(context, 'k', 'f'.repeat(32), 1, 10), 'NoSuchUpload');
    await expectCode(service.prepareUploadPart(context, 'other', uploadId, 1, 10), 'NoSuchUpload');
    await expectCode(service.prepareUploadPart(context, 'k', uploadId, 1, 5 * 1024 ** 3 + 1), 'EntityTooLarge');
    await expectCode(service.prepareUploadPart(context, 'k', uploadId, 1, 5 * 1024 ** 3), 'EntityTooLarge'); // ciphertext > 5 GiB upstream limit
    const small = randomBytes(1000);
    const big = randomBytes(CDCS_MIN_PART_SIZE);
    await putPart(service, context, 'k', uploadId, 1, small);
    await putPart(service, context, 'k', uploadId, 2, big);
    await expectCode(service.complete(context, 'k', uploadId, []), 'MalformedXML');
    await expectCode(
      service.complete(context, 'k', uploadId, [
        { partNumber: 2, etag: md5Etag(big) },
        { partNumber: 1, etag: md5Etag(small) },
      ]),
      'InvalidPartOrder',
    );
    await expectCode(service.complete(context, 'k', uploadId, [{ partNumber: 1, etag: md5Etag(big) }]), 'InvalidPart');
    await expectCode(service.complete(context, 'k', uploadId, [{ partNumber: 3, etag: md5Etag(big) }]), 'InvalidPart');
    await expectCode(
      service.complete(context, 'k', uploadId, [
        { partNumber: 1, etag: md5Etag(small) },
        { partNumber: 2, etag: md5Etag(big) },
      ]),
      'EntityTooSmall',
    );
    await service.complete(context, 'k', uploadId, [{ partNumber: 2, etag: md5Etag(big) }]);
    await expectCode(service.initiate(context, 'k'), 'ObjectAlreadyExists');
    await expectCode(service.listParts(context, 'k', uploadId), 'NoSuchUpload');
    await expectCode(service.abort(context, 'k', uploadId), 'NoSuchUpload');
    await expectCode(new ObjectService().head(context, 'missing'), 'NoSuchKey');
  });

  test('abort removes every bookkeeping object', async () => {
    const { store, context, service } = setup();
    const { uploadId } = await service.initiate(context, 'a/b');
    await putPart(service, context, 'a/b', uploadId, 1, randomBytes(MiB));
    await putPart(service, context, 'a/b', uploadId, 2, randomBytes(6 * MiB));
    await service.abort(context, 'a/b', uploadId);
    expect(store.objects.size).toBe(0);
    expect(store.uploads.size).toBe(0);
  });

  test('list uploads with markers, in key order even where upstream order differs (`a/<ff…>` sorts after `a/b/…`)', async () => {
    const { context } = setup();
    // Upload ids starting with f make the upstream order of `u/a/<id>` and `u/a/b/<id>` the opposite of key order.
    const service = new MultipartService({ now: Date.now, randomBytes: (size) => Buffer.alloc(size, 0xff) });
    const ids: string[] = [];
    for (const key of ['a', 'a/b', 'b', 'c']) ids.push((await service.initiate(context, key)).uploadId);
    const all = await service.listUploads(context);
    expect(all.uploads.map((u) => u.key)).toEqual(['a', 'a/b', 'b', 'c']);
    const page = await service.listUploads(context, { maxUploads: 2 });
    expect(page).toMatchObject({ isTruncated: true, nextKeyMarker: 'a/b' });
    const next = await service.listUploads(context, { keyMarker: 'a/b', uploadIdMarker: page.nextUploadIdMarker });
    expect(next.uploads.map((u) => u.key)).toEqual(['b', 'c']);
    expect((await service.listUploads(context, { prefix: 'a' })).uploads.map((u) => u.key)).toEqual(['a', 'a/b']);
  });
});

describe('an upstream with a 1 MiB minimum', () => {
  test('1 MiB parts and a small last part: nothing staged, nothing copied', async () => {
    const { store, context, service } = setup(MiB);
    const parts = [randomBytes(MiB), randomBytes(MiB), randomBytes(1000)];
    const { uploadId } = await service.initiate(context, 'k');
    const etags = await Promise.all(parts.map((p, i) => putPart(service, context, 'k', uploadId, i + 1, p)));
    const read: string[] = [];
    store.beforeRequest = (operation, upstreamKey) => {
      if (operation === 'getObject') read.push(upstreamKey);
    };
    await service.complete(
      context,
      'k',
      uploadId,
      etags.map((etag, i) => ({ partNumber: i + 1, etag })),
    );
    store.beforeRequest = undefined;
    expect(read).toEqual([context.layout.cofferKey()]); // no staged part was read back; only the coffer key record (first write)
    expect(store.stats.partBytes).toBe(parts.reduce((sum, p) => sum + 100 + p.length + 16 * Math.max(1, Math.ceil(p.length / 65536)), 0));
    expect(sha256(await readBack(context, 'k'))).toBe(sha256(Buffer.concat(parts)));
  });
});

/**
 * Format v2 against an attacker who can write the upstream bucket and holds no key (issue 11). Each
 * attack edits the in-memory upstream directly, as such an attacker would edit the bucket.
 */
describe('part records against an attacker with write access to the upstream', () => {
  const key = 'victim.bin';
  async function twoUploadsOfPart2(minPartSize = 5 * MiB) {
    const fixture = setup(minPartSize);
    const { store, context, service } = fixture;
    const { uploadId } = await service.initiate(context, key);
    const part1 = randomBytes(MiB);
    const first = randomBytes(MiB);
    const second = randomBytes(MiB);
    const etag1 = await putPart(service, context, key, uploadId, 1, part1);
    await putPart(service, context, key, uploadId, 2, first);
    const recordPrefix = context.layout.partRecordPrefix(uploadId, 2);
    const stagedPrefix = `coffers/demo/s/${uploadId}/00002/`;
    const snapshot = new Map([...store.objects].filter(([k]) => k.startsWith(recordPrefix) || k.startsWith(stagedPrefix)));
    const etag2 = await putPart(service, context, key, uploadId, 2, second);
    const records = (): string[] => [...store.objects.keys()].filter((k) => k.startsWith(recordPrefix));
    return { ...fixture, uploadId, part1, first, second, etag1, etag2, snapshot, records, recordPrefix, stagedPrefix };
  }

  test("the reproduced attack: a planted record naming the first upload's salt with the second's MD5 is refused; Complete never yields the first bytes", async () => {
    const f = await twoUploadsOfPart2();
    const firstStaged = [...f.snapshot.keys()].find((k) => k.startsWith(f.stagedPrefix)) as string;
    const firstSalt = firstStaged.slice(f.stagedPrefix.length);
    // Put the first upload's bytes back and plant a record (the v1 name layout) that names them with the second's MD5 and a later time.
    f.store.objects.set(firstStaged, f.snapshot.get(firstStaged) as never);
    f.store.objects.set(`${f.recordPrefix}${firstSalt}.s.${MiB}.${f.etag2.slice(1, -1)}.-.${Date.now() + 60_000}`, { data: Buffer.alloc(0), etag: '""', lastModified: new Date() });
    await expect(
      f.service.complete(f.context, key, f.uploadId, [
        { partNumber: 1, etag: f.etag1 },
        { partNumber: 2, etag: f.etag2 },
      ]),
    ).rejects.toMatchObject({ name: 'IntegrityError', reason: 'part-record-rejected' });
    await expect(f.service.listParts(f.context, key, f.uploadId)).rejects.toMatchObject({ reason: 'part-record-rejected' });
    await expectCode(new ObjectService().head(f.context, key), 'NoSuchKey');
  });

  test('a genuine record altered by one character, or moved to another part number, is refused', async () => {
    const f = await twoUploadsOfPart2();
    const [name] = f.records() as [string];
    const entry = f.store.objects.get(name) as never;
    f.store.objects.delete(name);
    const sealed = name.slice(f.recordPrefix.length);
    f.store.objects.set(`${f.recordPrefix}${sealed.slice(0, 10)}${sealed[10] === 'A' ? 'B' : 'A'}${sealed.slice(11)}`, entry);
    await expect(
      f.service.complete(f.context, key, f.uploadId, [
        { partNumber: 1, etag: f.etag1 },
        { partNumber: 2, etag: f.etag2 },
      ]),
    ).rejects.toMatchObject({ reason: 'part-record-rejected' });
    f.store.objects.delete([...f.store.objects.keys()].find((k) => k.startsWith(f.recordPrefix)) as string);
    f.store.objects.set(`${f.context.layout.partRecordPrefix(f.uploadId, 3)}${sealed}`, entry);
    await expect(f.service.listParts(f.context, key, f.uploadId)).rejects.toMatchObject({ reason: 'part-record-rejected' });
  });

  test("replaying the first upload's genuine record (and its bytes) and deleting the second's: the client's ETag no longer matches → InvalidPart, nothing served", async () => {
    const f = await twoUploadsOfPart2();
    for (const name of f.records()) f.store.objects.delete(name);
    for (const [name, entry] of f.snapshot) f.store.objects.set(name, entry);
    await expectCode(
      f.service.complete(f.context, key, f.uploadId, [
        { partNumber: 1, etag: f.etag1 },
        { partNumber: 2, etag: f.etag2 },
      ]),
      'InvalidPart',
    );
    await expectCode(new ObjectService().head(f.context, key), 'NoSuchKey');
  });

  test("the second upload's staged bytes swapped for the first's: Complete checks each staged header against its record and refuses", async () => {
    const f = await twoUploadsOfPart2();
    const firstStaged = [...f.snapshot.keys()].find((k) => k.startsWith(f.stagedPrefix)) as string;
    const secondStaged = [...f.store.objects.keys()].find((k) => k.startsWith(f.stagedPrefix)) as string;
    f.store.objects.set(secondStaged, f.snapshot.get(firstStaged) as never);
    await expect(
      f.service.complete(f.context, key, f.uploadId, [
        { partNumber: 1, etag: f.etag1 },
        { partNumber: 2, etag: f.etag2 },
      ]),
    ).rejects.toMatchObject({ name: 'IntegrityError', reason: 'header-mismatch' });
    await expectCode(new ObjectService().head(f.context, key), 'NoSuchKey');
  });

  test('a record copied from another upload of the same key is refused', async () => {
    const f = await twoUploadsOfPart2();
    await f.service.abort(f.context, key, f.uploadId);
    const { uploadId: other } = await f.service.initiate(f.context, key);
    const etag = await putPart(f.service, f.context, key, other, 1, f.part1);
    const [name] = [...f.store.objects.keys()].filter((k) => k.startsWith(f.context.layout.partRecordPrefix(other))) as [string];
    f.store.objects.set(name.replace(`/p/${other}/00001/`, `/p/${other}/00002/`), f.store.objects.get(name) as never);
    await expect(f.service.complete(f.context, key, other, [{ partNumber: 1, etag }])).rejects.toMatchObject({ reason: 'part-record-rejected' });
  });
});

describe('superseded staged uploads of a part are removed (issue 10 item 5)', () => {
  test('a staged part uploaded three times keeps one staged copy and one record; the last upload is the part', async () => {
    const { store, context, service } = setup();
    const { uploadId } = await service.initiate(context, 'k');
    const versions = [randomBytes(MiB), randomBytes(MiB), randomBytes(MiB)];
    for (const version of versions) await putPart(service, context, 'k', uploadId, 1, version);
    const under = (prefix: string): string[] => [...store.objects.keys()].filter((name) => name.startsWith(prefix));
    expect(under(`coffers/demo/s/${uploadId}/`)).toHaveLength(1);
    expect(under(context.layout.partRecordPrefix(uploadId))).toHaveLength(1);
    const last = randomBytes(100);
    await putPart(service, context, 'k', uploadId, 2, last);
    await service.complete(context, 'k', uploadId, [
      { partNumber: 1, etag: md5Etag(versions[2] as Buffer) },
      { partNumber: 2, etag: md5Etag(last) },
    ]);
    expect(sha256(await readBack(context, 'k'))).toBe(sha256(Buffer.concat([versions[2] as Buffer, last])));
  });

  test('a direct upload after a staged one does not list (fast path); the next staged upload removes both older ones; the direct one is not the part any more', async () => {
    const { store, context, service } = setup();
    const { uploadId } = await service.initiate(context, 'k');
    const staged = (): string[] => [...store.objects.keys()].filter((name) => name.startsWith(`coffers/demo/s/${uploadId}/`));
    await putPart(service, context, 'k', uploadId, 1, randomBytes(MiB));
    const big = randomBytes(6 * MiB);
    const lists = store.stats.byOperation.get('listObjects') ?? 0;
    await putPart(service, context, 'k', uploadId, 1, big);
    expect(store.stats.byOperation.get('listObjects') ?? 0).toBe(lists);
    expect(staged()).toHaveLength(1); // superseded, kept until the next staged upload or Complete
    expect((await service.listParts(context, 'k', uploadId)).parts.map((p) => p.etag)).toEqual([md5Etag(big)]);
    const last = randomBytes(MiB);
    await putPart(service, context, 'k', uploadId, 1, last);
    expect(staged()).toHaveLength(1);
    await service.complete(context, 'k', uploadId, [{ partNumber: 1, etag: md5Etag(last) }]);
    expect(sha256(await readBack(context, 'k'))).toBe(sha256(last));
  });

  test('concurrent uploads of one part resolve to one upload whose record and bytes agree (FORMAT §8.2), with one staged copy left', async () => {
    for (let round = 0; round < 6; round += 1) {
      const { store, context, service } = setup();
      const { uploadId } = await service.initiate(context, 'k');
      const versions = Array.from({ length: 4 }, () => randomBytes(MiB));
      // Even rounds: staged uploads only; odd rounds: one direct upload among them.
      const mixed = round % 2 === 0 ? versions : [...versions, randomBytes(6 * MiB)];
      await Promise.all(mixed.map((version) => putPart(service, context, 'k', uploadId, 1, version)));
      const listed = (await service.listParts(context, 'k', uploadId)).parts;
      expect(listed).toHaveLength(1);
      const winner = mixed.find((version) => md5Etag(version) === listed[0]?.etag) as Buffer;
      expect(winner).toBeDefined();
      // Every upload prunes the staged uploads older than the newest record it sees, so at most the newest staged copy is left.
      expect([...store.objects.keys()].filter((name) => name.startsWith(`coffers/demo/s/${uploadId}/`)).length).toBeLessThanOrEqual(1);
      await service.complete(context, 'k', uploadId, [{ partNumber: 1, etag: listed[0]?.etag as string }]);
      expect(sha256(await readBack(context, 'k'))).toBe(sha256(winner));
    }
  });
});

describe('upload records against an attacker with write access to the upstream', () => {
  async function openUpload() {
    const fixture = setup(MiB);
    const { store, context, service } = fixture;
    const key = 'page.bin';
    const { uploadId } = await service.initiate(context, key, { contentType: 'application/octet-stream', metadata: { origin: 'client' } });
    const data = randomBytes(1000);
    const etag = await putPart(service, context, key, uploadId, 1, data);
    const recordKey = context.layout.uploadRecord(key, uploadId);
    const stored = (): Record<string, unknown> => JSON.parse((store.objects.get(recordKey)?.data as Buffer).toString('utf8')) as Record<string, unknown>;
    const write = (value: unknown): void => {
      store.objects.set(recordKey, { data: Buffer.from(JSON.stringify(value)), etag: '"x"', lastModified: new Date() });
    };
    // Another replica: nothing cached, so it reads the record from the upstream.
    const completeElsewhere = () => new MultipartService().complete(context, key, uploadId, [{ partNumber: 1, etag }]);
    return { ...fixture, key, uploadId, etag, data, recordKey, stored, write, completeElsewhere };
  }

  test('the record holds no content type, metadata or upstream upload id in the clear', async () => {
    const u = await openUpload();
    const text = JSON.stringify(u.stored());
    expect(text).not.toContain('octet-stream');
    expect(text).not.toContain('origin');
    expect(text).not.toContain('client');
  });

  test('injecting content-type text/html and x-cos-meta-* (the v1 record layout) is refused; no object appears', async () => {
    const u = await openUpload();
    const { envelope } = u.stored() as { envelope: unknown };
    u.write({ v: 1, uploadId: u.uploadId, coffer: u.context.coffer, key: u.key, upstreamUploadId: 'up-1', envelope, contentType: 'text/html', metadata: { x: '<script>' }, initiated: new Date().toISOString() });
    await expect(u.completeElsewhere()).rejects.toMatchObject({ name: 'IntegrityError', reason: 'upload-record-rejected' });
    await expectCode(new ObjectService().head(u.context, u.key), 'NoSuchKey');
  });

  test('one character of the sealed part changed is refused', async () => {
    const u = await openUpload();
    const value = u.stored() as { sealed: string };
    const sealed = Buffer.from(value.sealed, 'base64');
    sealed[20] = (sealed[20] as number) ^ 1;
    u.write({ ...value, sealed: sealed.toString('base64') });
    await expect(new MultipartService().listParts(u.context, u.key, u.uploadId)).rejects.toMatchObject({ reason: 'upload-record-rejected' });
  });

  test("the envelope swapped for another valid wrapped key of the same coffer and key (an earlier upload's) is refused", async () => {
    const u = await openUpload();
    const current = u.stored();
    await u.service.abort(u.context, u.key, u.uploadId);
    const { uploadId: second } = await u.service.initiate(u.context, u.key, { contentType: 'text/plain' });
    const secondKey = u.context.layout.uploadRecord(u.key, second);
    const secondValue = JSON.parse((u.store.objects.get(secondKey)?.data as Buffer).toString('utf8')) as Record<string, unknown>;
    // The first upload's envelope (a wrapped key that unwraps for this coffer and key) under the second's record.
    u.store.objects.set(secondKey, { data: Buffer.from(JSON.stringify({ ...secondValue, envelope: current['envelope'] })), etag: '"x"', lastModified: new Date() });
    await expect(new MultipartService().prepareUploadPart(u.context, u.key, second, 1, 10)).rejects.toMatchObject({ reason: 'upload-record-rejected' });
    // And the first upload's whole record copied under the second's name: bound to its upload id.
    u.store.objects.set(secondKey, { data: Buffer.from(JSON.stringify(current)), etag: '"x"', lastModified: new Date() });
    await expect(new MultipartService().prepareUploadPart(u.context, u.key, second, 1, 10)).rejects.toMatchObject({ reason: 'upload-record-rejected' });
  });

  test('an untampered record opens on another replica: content type and metadata reach the object', async () => {
    const u = await openUpload();
    await u.completeElsewhere();
    const head = await new ObjectService().head(u.context, u.key);
    head.dataKey.dispose();
    expect(head.manifest.attributes).toMatchObject({ contentType: 'application/octet-stream', metadata: { origin: 'client' } });
  });
});

describe('S3 checksums of multipart objects (FORMAT §8.1, §8.2, §6.4)', () => {
  const crc32Base64 = (data: Buffer): string => {
    const out = Buffer.alloc(4);
    out.writeUInt32BE(zlibCrc32(data) >>> 0);
    return out.toString('base64');
  };

  test('an upload without a declared checksum (every CDCS upload) stores none: parts, listing and manifest carry none', async () => {
    const { context, service } = setup();
    const part = randomBytes(1000);
    const { uploadId, checksum } = await service.initiate(context, 'plain');
    expect(checksum).toBeUndefined();
    const prepared = await service.prepareUploadPart(context, 'plain', uploadId, 1, part.length);
    expect(prepared.computeChecksum).toBeUndefined();
    const stored = await service.storePart(prepared, Readable.from([part]));
    expect(stored.checksum).toBeUndefined();
    expect((await service.listParts(context, 'plain', uploadId)).parts[0]?.checksum).toBeUndefined();
    const result = await service.complete(context, 'plain', uploadId, [{ partNumber: 1, etag: stored.etag }]);
    expect(result.manifest.attributes.checksum).toBeUndefined();
  });

  test('a declared CRC32 (FULL_OBJECT) is computed for parts sent without one, stored with the part, and combined into the object checksum at Complete', async () => {
    const { context, service } = setup();
    const parts = [randomBytes(MiB + 5), randomBytes(777)];
    const { uploadId } = await service.initiate(context, 'full', { checksum: { algorithm: 'CRC32', type: 'FULL_OBJECT' } });
    const etags: string[] = [];
    for (const [index, part] of parts.entries()) {
      const prepared = await service.prepareUploadPart(context, 'full', uploadId, index + 1, part.length);
      expect(prepared.computeChecksum).toBe('CRC32');
      const stored = await service.storePart(prepared, Readable.from([part]));
      expect(stored.checksum).toEqual({ algorithm: 'CRC32', value: crc32Base64(part) });
      etags.push(stored.etag);
    }
    expect((await service.listParts(context, 'full', uploadId)).parts.map((p) => p.checksum?.value)).toEqual(parts.map(crc32Base64));
    // Another algorithm for a part is refused before its body.
    await expectCode(service.prepareUploadPart(context, 'full', uploadId, 3, 10, undefined, 'SHA256'), 'InvalidRequest');
    const requested = parts.map((part, i) => ({ partNumber: i + 1, etag: etags[i] as string, checksum: { algorithm: 'CRC32' as const, value: crc32Base64(part) } }));
    await expectCode(service.complete(context, 'full', uploadId, [requested[0] as (typeof requested)[0], { ...(requested[1] as (typeof requested)[0]), checksum: undefined }]), 'InvalidRequest');
    await expectCode(service.complete(context, 'full', uploadId, [requested[0] as (typeof requested)[0], { ...(requested[1] as (typeof requested)[0]), checksum: { algorithm: 'CRC32', value: 'AAAAAA==' } }]), 'InvalidPart');
    await expectCode(service.complete(context, 'full', uploadId, requested, { objectChecksum: { algorithm: 'CRC32', value: 'AAAAAA==' } }), 'BadDigest');
    const result = await service.complete(context, 'full', uploadId, requested, { objectChecksum: { algorithm: 'CRC32', value: crc32Base64(Buffer.concat(parts)) } });
    expect(result.manifest.attributes.checksum).toEqual({ algorithm: 'CRC32', value: crc32Base64(Buffer.concat(parts)), type: 'FULL_OBJECT' });
  });
});
