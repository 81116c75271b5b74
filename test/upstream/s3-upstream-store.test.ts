/**
 * S3UpstreamStore against the embedded upstream over real HTTP on loopback: every port method,
 * key round-trips, listings, batches.
 */
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { GatewayError } from '../../src/errors/gateway-error';
import { UpstreamNotFoundError } from '../../src/upstream/upstream-store';
import { bodyOf, MiB, pattern, readAll, startFixture, type Fixture } from './embedded-fixture';
import { md5Hex } from '../support/digests';

let fx: Fixture;
beforeAll(async () => {
  fx = await startFixture({ minPartSize: 1 * MiB });
});
afterAll(async () => fx.close());

test('putObject (buffer and stream), headObject, getObject with metadata', async () => {
  const small = Buffer.from('hello upstream');
  const put = await fx.store.putObject('t1/buffer', { body: small }, { metadata: { kind: 'manifest', 'x-coffer': 'v1' } });
  expect(put.etag).toBe(`"${md5Hex(small)}"`);
  const head = await fx.store.headObject('t1/buffer');
  expect(head).toMatchObject({ key: 't1/buffer', size: small.length, etag: put.etag, metadata: { kind: 'manifest', 'x-coffer': 'v1' } });
  expect(head?.lastModified).toBeInstanceOf(Date);

  const big = pattern(3 * MiB + 17, 1);
  const streamed = await fx.store.putObject('t1/stream', { ...bodyOf(big), contentMd5: createHash('md5').update(big).digest('base64') }, { metadata: { a: 'b' } });
  expect(streamed.etag).toBe(`"${md5Hex(big)}"`);
  const got = await fx.store.getObject('t1/stream');
  expect(got).toMatchObject({ size: big.length, totalSize: big.length, etag: streamed.etag, metadata: { a: 'b' } });
  expect((await readAll(got.body)).equals(big)).toBe(true);

  expect(await fx.store.headObject('t1/missing')).toBeUndefined();
  await expect(fx.store.getObject('t1/missing')).rejects.toEqual(expect.objectContaining({ name: 'UpstreamNotFoundError', kind: 'NoSuchKey' }));
});

test('getObject with a range: exact bytes, size and totalSize; range past the end is clipped', async () => {
  const data = pattern(100_000, 2);
  await fx.store.putObject('t2/ranged', { body: data });
  const mid = await fx.store.getObject('t2/ranged', { start: 1000, endExclusive: 51_000 });
  expect(mid.size).toBe(50_000);
  expect(mid.totalSize).toBe(100_000);
  expect((await readAll(mid.body)).equals(data.subarray(1000, 51_000))).toBe(true);
  const tail = await fx.store.getObject('t2/ranged', { start: 99_990, endExclusive: 200_000 });
  expect(tail.size).toBe(10);
  expect((await readAll(tail.body)).equals(data.subarray(99_990))).toBe(true);
  // A range starting past the end: the upstream answers 416 → a gateway bug, BadGateway.
  await expect(fx.store.getObject('t2/ranged', { start: 100_000, endExclusive: 100_001 })).rejects.toMatchObject({ code: 'BadGateway', reason: 'upstream-InvalidRange' });
});

test('keys with unicode, spaces, %, +, and dot segments round-trip through every method', async () => {
  const keys = ['t3/a b/c d', 't3/ü/日本語/🙂', 't3/100%/%41%2F', 't3/a+b/+ +', 't3/x/../y', 't3/./z', "t3/!'()*&$@=;:,?#[]", 't3//double', 't3/ lead and trail '];
  for (const [i, key] of keys.entries()) {
    const data = Buffer.from(`value ${i} ${key}`);
    await fx.store.putObject(key, i % 2 === 0 ? { body: data } : bodyOf(data));
    expect((await fx.store.headObject(key))?.size).toBe(data.length);
    expect((await readAll((await fx.store.getObject(key)).body)).toString()).toBe(data.toString());
  }
  const listed = await fx.store.listObjects('t3/');
  expect(listed.objects.map((o) => o.key).sort()).toEqual([...keys].sort());
  // The key with '..' is its own object, not 't3/y'.
  expect(await fx.store.headObject('t3/y')).toBeUndefined();
  const { uploadId } = await fx.store.createMultipartUpload(keys[3] as string);
  await fx.store.uploadPart(keys[3] as string, uploadId, 1, bodyOf(Buffer.from('part')));
  expect((await fx.store.listParts(keys[3] as string, uploadId)).map((p) => p.size)).toEqual([4]);
  await fx.store.abortMultipartUpload(keys[3] as string, uploadId);
  await fx.store.deleteObjects(keys);
  expect((await fx.store.listObjects('t3/')).objects).toEqual([]);
});

test('multipart: create with metadata, parts, re-upload replaces, listParts over pages, complete, abort', async () => {
  const key = 't4/object';
  const { uploadId } = await fx.store.createMultipartUpload(key, { metadata: { coffer: 'c1' } });
  expect(uploadId).toMatch(/^[0-9a-f]{32}$/);
  const p1 = pattern(1 * MiB, 3);
  const p2old = pattern(1 * MiB, 4);
  const p2 = pattern(1 * MiB + 5, 5);
  const p3 = pattern(123, 6);
  const e1 = await fx.store.uploadPart(key, uploadId, 1, bodyOf(p1));
  const e2old = await fx.store.uploadPart(key, uploadId, 2, bodyOf(p2old));
  const e2 = await fx.store.uploadPart(key, uploadId, 2, bodyOf(p2));
  const e3 = await fx.store.uploadPart(key, uploadId, 3, bodyOf(p3));
  expect(e2.etag).not.toBe(e2old.etag);
  expect(e1.etag).toBe(`"${md5Hex(p1)}"`);
  const parts = await fx.store.listParts(key, uploadId);
  expect(parts.map((p) => [p.partNumber, p.size, p.etag])).toEqual([
    [1, p1.length, e1.etag],
    [2, p2.length, e2.etag],
    [3, p3.length, e3.etag],
  ]);
  const done = await fx.store.completeMultipartUpload(key, uploadId, [
    { partNumber: 1, etag: e1.etag },
    { partNumber: 2, etag: e2.etag },
    { partNumber: 3, etag: e3.etag },
  ]);
  const expectedEtag = `"${createHash('md5')
    .update(Buffer.concat([p1, p2, p3].map((p) => createHash('md5').update(p).digest())))
    .digest('hex')}-3"`;
  expect(done.etag).toBe(expectedEtag);
  const got = await fx.store.getObject(key);
  expect(got.metadata).toEqual({ coffer: 'c1' });
  expect((await readAll(got.body)).equals(Buffer.concat([p1, p2, p3]))).toBe(true);
  await expect(fx.store.listParts(key, uploadId)).rejects.toMatchObject({ kind: 'NoSuchUpload' });

  const second = await fx.store.createMultipartUpload('t4/aborted');
  await fx.store.uploadPart('t4/aborted', second.uploadId, 1, bodyOf(Buffer.from('x')));
  await fx.store.abortMultipartUpload('t4/aborted', second.uploadId);
  await expect(fx.store.abortMultipartUpload('t4/aborted', second.uploadId)).rejects.toBeInstanceOf(UpstreamNotFoundError);
  await expect(fx.store.uploadPart('t4/aborted', second.uploadId, 1, bodyOf(Buffer.from('x')))).rejects.toMatchObject({ kind: 'NoSuchUpload' });
});

test('listParts reads every page (more than 1000 parts)', async () => {
  const key = 't5/many-parts';
  const { uploadId } = await fx.store.createMultipartUpload(key);
  const numbers = Array.from({ length: 1203 }, (_, i) => i + 1);
  for (let i = 0; i < numbers.length; i += 50) {
    await Promise.all(numbers.slice(i, i + 50).map((n) => fx.store.uploadPart(key, uploadId, n, bodyOf(Buffer.from(String(n))))));
  }
  const parts = await fx.store.listParts(key, uploadId);
  expect(parts.map((p) => p.partNumber)).toEqual(numbers);
  expect(parts[1202]?.size).toBe(4);
  await fx.store.abortMultipartUpload(key, uploadId);
});

test('listObjects: prefix, delimiter, start-after, max-keys and continuation tokens over many pages', async () => {
  const keys: string[] = [];
  for (let d = 0; d < 3; d++) for (let i = 0; i < 5; i++) keys.push(`t6/dir${d}/f${i}`);
  for (let i = 0; i < 7; i++) keys.push(`t6/top${i}`);
  keys.push('t6/🙂', 't6/\uffff'); // UTF-8 order puts the astral character last
  await Promise.all(keys.map((k) => fx.store.putObject(k, { body: Buffer.from(k) })));

  const flat: string[] = [];
  let token: string | undefined;
  let pages = 0;
  do {
    const page = await fx.store.listObjects('t6/', { maxKeys: 4, continuationToken: token });
    pages++;
    flat.push(...page.objects.map((o) => o.key));
    expect(page.objects.length).toBeLessThanOrEqual(4);
    token = page.nextContinuationToken;
    expect(page.isTruncated).toBe(token !== undefined);
  } while (token !== undefined);
  expect(pages).toBe(Math.ceil(keys.length / 4));
  expect(flat.slice(-2)).toEqual(['t6/\uffff', 't6/🙂']);
  expect(new Set(flat)).toEqual(new Set(keys));

  const entries: string[] = [];
  token = undefined;
  do {
    const page = await fx.store.listObjects('t6/', { delimiter: '/', maxKeys: 2, continuationToken: token });
    entries.push(...page.commonPrefixes.map((p) => `P:${p}`), ...page.objects.map((o) => o.key));
    token = page.nextContinuationToken;
  } while (token !== undefined);
  expect(entries.filter((e) => e.startsWith('P:')).sort()).toEqual(['P:t6/dir0/', 'P:t6/dir1/', 'P:t6/dir2/']);
  expect(entries.filter((e) => !e.startsWith('P:'))).toHaveLength(9);

  const after = await fx.store.listObjects('t6/dir1/', { startAfter: 't6/dir1/f2' });
  expect(after.objects.map((o) => o.key)).toEqual(['t6/dir1/f3', 't6/dir1/f4']);
  expect(after.isTruncated).toBe(false);
  expect(after.nextContinuationToken).toBeUndefined();
  const one = await fx.store.listObjects('t6/dir0/', { maxKeys: 1 });
  expect(one.objects[0]).toMatchObject({ key: 't6/dir0/f0', size: 't6/dir0/f0'.length, etag: `"${md5Hex(Buffer.from('t6/dir0/f0'))}"` });
  expect(one.objects[0]?.lastModified).toBeInstanceOf(Date);
});

test('deleteObjects: more than 1000 keys in batches, missing keys are fine, idempotent', async () => {
  const keys = Array.from({ length: 2345 }, (_, i) => `t7/k${String(i).padStart(5, '0')}`);
  for (let i = 0; i < keys.length; i += 200) await Promise.all(keys.slice(i, i + 200).map((k) => fx.store.putObject(k, { body: Buffer.from('x') })));
  const page = await fx.store.listObjects('t7/', { maxKeys: 1000 });
  expect(page.isTruncated).toBe(true);
  await fx.store.deleteObjects([...keys, 't7/never-existed']);
  expect((await fx.store.listObjects('t7/')).objects).toEqual([]);
  await fx.store.deleteObjects(keys);
  await fx.store.deleteObjects([]);
});

test('the store validates its own inputs before any traffic', async () => {
  await expect(fx.store.putObject('', { body: Buffer.alloc(1) })).rejects.toMatchObject({ code: 'InternalError', reason: 'invalid-upstream-key' });
  await expect(fx.store.headObject('x'.repeat(1025))).rejects.toBeInstanceOf(GatewayError);
  const body = Readable.from([Buffer.from('abc')]);
  await expect(fx.store.uploadPart('k', 'u', 0, { body, contentLength: 3 })).rejects.toMatchObject({ reason: 'invalid-part-number' });
  expect(body.destroyed).toBe(true);
});
