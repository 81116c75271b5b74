/**
 * The data plane (uploadPart / streamed putObject): streams without buffering, and every failure on the
 * body side destroys the upstream request so the previous version of the part/object stays intact.
 */
import { createHash } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { bodyOf, BUCKET, MiB, pattern, readAll, startFixture, type Fixture } from './embedded-fixture';
import { md5Etag } from '../support/digests';

let fx: Fixture;
beforeAll(async () => {
  fx = await startFixture({ minPartSize: 5 * MiB });
});
afterAll(async () => fx.close());

/** Resolves when the embedded upstream has discarded a body for `key`. */
function bodyDiscarded(key: string): Promise<string> {
  return new Promise((resolve) => {
    const listener = (event: { key: string; code: string }): void => {
      if (event.key !== key) return;
      fx.upstream.off('body-failed', listener);
      resolve(event.code);
    };
    fx.upstream.on('body-failed', listener);
  });
}

function tempFiles(): string[] {
  return readdirSync(join(fx.directory, BUCKET, 'tmp'));
}

/** A body of `total` bytes in 64 KiB chunks from a generator; `failAt` bytes in, it throws (or stalls). */
function generated(total: number, seed: number, options: { failAt?: number; onPull?: (pulled: number) => void } = {}): Readable {
  const chunk = pattern(64 * 1024, seed);
  async function* produce(): AsyncGenerator<Buffer> {
    let pulled = 0;
    while (pulled < total) {
      if (options.failAt !== undefined && pulled >= options.failAt) throw new Error('plaintext side failed');
      const size = Math.min(chunk.length, total - pulled);
      pulled += size;
      options.onPull?.(pulled);
      yield size === chunk.length ? chunk : chunk.subarray(0, size);
    }
  }
  return Readable.from(produce(), { objectMode: false });
}

async function partWithOldVersion(key: string): Promise<{ uploadId: string; old: Buffer; oldEtag: string }> {
  const { uploadId } = await fx.store.createMultipartUpload(key);
  const old = pattern(6 * MiB, 11);
  const { etag } = await fx.store.uploadPart(key, uploadId, 1, bodyOf(old));
  expect(etag).toBe(md5Etag(old));
  return { uploadId, old, oldEtag: etag };
}

async function expectOldPartIntact(key: string, uploadId: string, old: Buffer, oldEtag: string): Promise<void> {
  const parts = await fx.store.listParts(key, uploadId);
  expect(parts.map((p) => [p.partNumber, p.size, p.etag])).toEqual([[1, old.length, oldEtag]]);
  await fx.store.completeMultipartUpload(key, uploadId, [{ partNumber: 1, etag: oldEtag }]);
  const got = await readAll((await fx.store.getObject(key)).body);
  expect(got.equals(old)).toBe(true);
}

test('a 64 MiB part streams from a generator without being buffered', async () => {
  const key = 's1/streamed-64';
  const { uploadId } = await fx.store.createMultipartUpload(key);
  const total = 64 * MiB;
  let pulled = 0;
  let maxLag = 0; // bytes produced by the generator but not yet received upstream
  let pulledWhenUpstreamHadHalf: number | undefined;
  const onReceiving = (event: { key: string; bytes: number }): void => {
    if (event.key !== key) return;
    maxLag = Math.max(maxLag, pulled - event.bytes);
    if (pulledWhenUpstreamHadHalf === undefined && event.bytes >= total / 2) pulledWhenUpstreamHadHalf = pulled;
  };
  fx.upstream.on('receiving', onReceiving);
  const expected = createHash('md5');
  const chunk = pattern(64 * 1024, 21);
  for (let i = 0; i < total / chunk.length; i++) expected.update(chunk);
  const { etag } = await fx.store.uploadPart(key, uploadId, 1, { body: generated(total, 21, { onPull: (n) => (pulled = n) }), contentLength: total });
  fx.upstream.off('receiving', onReceiving);
  expect(etag).toBe(`"${expected.digest('hex')}"`);
  // The generator was still being pulled while the upstream received: when half had arrived upstream
  // the generator had not finished, and what was produced but not yet received stayed bounded by the
  // socket buffers and stream high-water marks (loopback autotuning: up to ~10 MiB), never the body.
  expect(pulledWhenUpstreamHadHalf).toBeDefined();
  expect(pulledWhenUpstreamHadHalf as number).toBeLessThan(total);
  expect(maxLag).toBeLessThan(24 * MiB);
  expect((await fx.store.listParts(key, uploadId))[0]?.size).toBe(total);
  await fx.store.abortMultipartUpload(key, uploadId);
});

test('each body chunk is released once the upstream connection has taken it, the last only after the body ended', async () => {
  const key = 's1/released-chunks';
  const { uploadId } = await fx.store.createMultipartUpload(key);
  const chunks = Array.from({ length: 12 }, (_, i) => pattern(512 * 1024 + i, 40 + i));
  const total = chunks.reduce((sum, chunk) => sum + chunk.length, 0);
  const released: Buffer[] = [];
  let ended = false;
  let releasedBeforeEnd: boolean | undefined;
  const body = Readable.from(chunks, { objectMode: false });
  body.on('end', () => (ended = true));
  const { etag } = await fx.store.uploadPart(key, uploadId, 1, {
    body,
    contentLength: total,
    release: (chunk) => {
      if (chunk === chunks[chunks.length - 1]) releasedBeforeEnd = !ended;
      released.push(chunk);
    },
  });
  expect(etag).toBe(md5Etag(Buffer.concat(chunks)));
  // Every chunk exactly once, as the same object (the producer recognises its memory), in order.
  expect(released.length).toBe(chunks.length);
  released.forEach((chunk, i) => expect(chunk).toBe(chunks[i]));
  // The chunk whose last byte was held back is released only after that byte went out, at the end.
  expect(releasedBeforeEnd).toBe(false);
  await fx.store.abortMultipartUpload(key, uploadId);
});

test('a body that errors at 50 % destroys the upstream request; the previous part version stays', async () => {
  const key = 's2/errors-half-way';
  const { uploadId, old, oldEtag } = await partWithOldVersion(key);
  const discarded = bodyDiscarded(key);
  const total = 8 * MiB;
  await expect(fx.store.uploadPart(key, uploadId, 1, { body: generated(total, 12, { failAt: total / 2 }), contentLength: total })).rejects.toMatchObject({
    code: 'IncompleteBody',
    reason: 'body-error',
  });
  expect(await discarded).toBe('ConnectionAborted');
  expect(tempFiles()).toEqual([]);
  await expectOldPartIntact(key, uploadId, old, oldEtag);
});

test('aborting through the signal destroys the upstream request; the previous part version stays', async () => {
  const key = 's3/aborted';
  const { uploadId, old, oldEtag } = await partWithOldVersion(key);
  const discarded = bodyDiscarded(key);
  const controller = new AbortController();
  const total = 8 * MiB;
  let aborted = false;
  const body = generated(total, 13, {
    onPull: (n) => {
      if (n >= 3 * MiB && !aborted) {
        aborted = true;
        controller.abort();
      }
    },
  });
  await expect(fx.store.uploadPart(key, uploadId, 1, { body, contentLength: total, signal: controller.signal })).rejects.toMatchObject({ code: 'IncompleteBody', reason: 'aborted' });
  expect(body.destroyed).toBe(true);
  await discarded;
  await expectOldPartIntact(key, uploadId, old, oldEtag);
});

test('a signal aborted before the call sends nothing', async () => {
  const controller = new AbortController();
  controller.abort();
  const body = Readable.from([Buffer.from('abc')]);
  await expect(fx.store.putObject('s4/never', { body, contentLength: 3, signal: controller.signal })).rejects.toMatchObject({ reason: 'aborted' });
  expect(await fx.store.headObject('s4/never')).toBeUndefined();
});

test.each([
  ['shorter', 6 * MiB - 1, 'body-too-short'],
  ['longer', 6 * MiB + 1, 'body-too-long'],
])('a body %s than contentLength is refused and the upstream request destroyed', async (_label, actual, reason) => {
  const key = `s5/length-${reason}`;
  const { uploadId, old, oldEtag } = await partWithOldVersion(key);
  const discarded = bodyDiscarded(key);
  await expect(fx.store.uploadPart(key, uploadId, 1, { body: generated(actual, 14), contentLength: 6 * MiB })).rejects.toMatchObject({ code: 'IncompleteBody', reason });
  await discarded;
  expect(tempFiles()).toEqual([]);
  await expectOldPartIntact(key, uploadId, old, oldEtag);
});

test('a body that fails in its final flush, after every byte, is not stored (last byte held back)', async () => {
  const key = 's6/fails-in-flush';
  const { uploadId, old, oldEtag } = await partWithOldVersion(key);
  const discarded = bodyDiscarded(key);
  const verifier = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      callback(null, chunk);
    },
    flush(callback) {
      setTimeout(() => callback(new Error('plaintext digest mismatch')), 50);
    },
  });
  Readable.from([pattern(6 * MiB, 19)]).pipe(verifier);
  await expect(fx.store.uploadPart(key, uploadId, 1, { body: verifier, contentLength: 6 * MiB })).rejects.toMatchObject({ code: 'IncompleteBody', reason: 'body-error' });
  await discarded;
  await expectOldPartIntact(key, uploadId, old, oldEtag);
});

test('a body destroyed without an error counts as truncated', async () => {
  const key = 's6/destroyed';
  const { uploadId, old, oldEtag } = await partWithOldVersion(key);
  const body = new Readable({ read() {} });
  body.push(pattern(2 * MiB, 15));
  setTimeout(() => body.destroy(), 50);
  await expect(fx.store.uploadPart(key, uploadId, 1, { body, contentLength: 6 * MiB })).rejects.toMatchObject({ code: 'IncompleteBody', reason: 'body-destroyed' });
  await expectOldPartIntact(key, uploadId, old, oldEtag);
});

test('streamed putObject: a failing body leaves the previous object; a wrong Content-MD5 stores nothing', async () => {
  const key = 's7/object';
  const first = pattern(2 * MiB, 16);
  await fx.store.putObject(key, bodyOf(first), { metadata: { v: '1' } });
  const discarded = bodyDiscarded(key);
  await expect(fx.store.putObject(key, { body: generated(4 * MiB, 17, { failAt: 2 * MiB }), contentLength: 4 * MiB }, { metadata: { v: '2' } })).rejects.toMatchObject({ code: 'IncompleteBody' });
  await discarded;
  const second = pattern(1 * MiB, 18);
  await expect(fx.store.putObject(key, { ...bodyOf(second), contentMd5: createHash('md5').update(first).digest('base64') })).rejects.toMatchObject({
    code: 'BadGateway',
    reason: 'upstream-BadDigest',
  });
  const got = await fx.store.getObject(key);
  expect(got.metadata).toEqual({ v: '1' });
  expect((await readAll(got.body)).equals(first)).toBe(true);
  expect(tempFiles()).toEqual([]);
});

test('a zero-length streamed put and part work', async () => {
  const { etag } = await fx.store.putObject('s8/empty', { body: Readable.from([]), contentLength: 0 });
  expect(etag).toBe(md5Etag(Buffer.alloc(0)));
  expect((await fx.store.headObject('s8/empty'))?.size).toBe(0);
  expect((await readAll((await fx.store.getObject('s8/empty')).body)).length).toBe(0);
});
