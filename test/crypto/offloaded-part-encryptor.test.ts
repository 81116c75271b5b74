import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { patternBytes } from '../../scripts/generate-format-vectors';
import { CRYPTO_BLOCK_SIZE, OffloadedPartEncryptor, setCryptoWorkerCount, type OffloadedPartEncryptorOptions } from '../../src/crypto/offloaded-part-encryptor';
import { PartLengthError } from '../../src/crypto/part-encryptor';
import { chunked, encryptPart, expectSameBytes, identity } from '../support/crypto-helpers';

/** Runs `plaintext` (in chunks of `sizes`) through an OffloadedPartEncryptor; the ciphertext and the MD5. */
async function offloaded(options: OffloadedPartEncryptorOptions, plaintext: Buffer, sizes?: readonly number[]): Promise<{ ciphertext: Buffer; digest: Buffer; encryptor: OffloadedPartEncryptor }> {
  const encryptor = new OffloadedPartEncryptor(options);
  const out: Buffer[] = [];
  await pipeline(Readable.from(chunked(plaintext, sizes)), encryptor, async (source: AsyncIterable<Buffer>) => {
    for await (const chunk of source) out.push(chunk);
  });
  return { ciphertext: Buffer.concat(out), digest: encryptor.digest as Buffer, encryptor };
}

const md5 = (data: Buffer): Buffer => createHash('md5').update(data).digest();

describe('the same bytes as PartEncryptor, the same MD5 as node:crypto', () => {
  const vectors = JSON.parse(readFileSync(join(__dirname, '..', 'format', 'vectors', 'format-v1.json'), 'utf8')) as {
    dataKey: string;
    objectId: string;
    parts: Array<{ partNumber: number; plaintextLength: number; seed: number; salt: string; ciphertext: string }>;
  };

  test.each(vectors.parts.map((p) => [p.partNumber, p.plaintextLength, p] as const))('format vector part %i (%i bytes), byte-exact', async (_n, _length, vector) => {
    const plaintext = patternBytes(vector.plaintextLength, vector.seed);
    const options = { dataKey: Buffer.from(vectors.dataKey, 'hex'), objectId: Buffer.from(vectors.objectId, 'hex'), partNumber: vector.partNumber, plaintextLength: vector.plaintextLength, salt: Buffer.from(vector.salt, 'hex') };
    const { ciphertext, digest } = await offloaded(options, plaintext, [4093]);
    expectSameBytes(ciphertext, Buffer.from(vector.ciphertext, 'hex'));
    expect(digest.equals(md5(plaintext))).toBe(true);
  });

  test.each([
    ['empty', 0, [1]],
    ['one byte', 1, [1]],
    ['one segment exactly', 65_536, [65_536]],
    ['one block exactly', CRYPTO_BLOCK_SIZE, [CRYPTO_BLOCK_SIZE]],
    ['blocks ± 1 in odd chunks', 3 * CRYPTO_BLOCK_SIZE + 1, [65_537, 3, 1000]],
    ['chunks larger than every block together', 5 * CRYPTO_BLOCK_SIZE - 1, [3 * CRYPTO_BLOCK_SIZE + 7]],
  ])('%s', async (_label, size, sizes) => {
    const options = identity({ plaintextLength: size });
    const plaintext = randomBytes(size);
    const { ciphertext, digest, encryptor } = await offloaded(options, plaintext, sizes);
    expectSameBytes(ciphertext, await encryptPart(options, plaintext, sizes));
    expect(ciphertext.length).toBe(encryptor.ciphertextLength);
    expect(digest.equals(md5(plaintext))).toBe(true);
  });

  test('with one worker and with several, concurrent streams never mix their bytes', async () => {
    for (const workers of [1, 3]) {
      setCryptoWorkerCount(workers);
      const inputs = Array.from({ length: 8 }, (_, i) => randomBytes(CRYPTO_BLOCK_SIZE + i * 12_345));
      const results = await Promise.all(
        inputs.map((plaintext, i) => {
          const options = identity({ plaintextLength: plaintext.length, partNumber: i + 1 });
          return offloaded(options, plaintext, [10_000 + i * 999]).then(async (result) => ({ ...result, expected: await encryptPart(options, plaintext) }));
        }),
      );
      results.forEach((result, i) => {
        expectSameBytes(result.ciphertext, result.expected);
        expect(result.digest.equals(md5(inputs[i] as Buffer))).toBe(true);
      });
    }
  });
});

describe('failures never complete the part', () => {
  test('a body longer than declared fails as soon as the excess arrives', async () => {
    await expect(offloaded(identity({ plaintextLength: 1000 }), randomBytes(1001), [600])).rejects.toBeInstanceOf(PartLengthError);
  });

  test('a body shorter than declared fails at the end, before the final segment leaves', async () => {
    const options = identity({ plaintextLength: 3 * CRYPTO_BLOCK_SIZE });
    const encryptor = new OffloadedPartEncryptor(options);
    const out: Buffer[] = [];
    encryptor.on('data', (chunk: Buffer) => out.push(chunk));
    await expect(pipeline(Readable.from(chunked(randomBytes(3 * CRYPTO_BLOCK_SIZE - 1), [50_000])), encryptor)).rejects.toBeInstanceOf(PartLengthError);
    expect(Buffer.concat(out).length).toBeLessThan(encryptor.ciphertextLength);
  });

  test('a digest the caller rejects fails the stream before the final segment and its tag leave', async () => {
    const plaintext = randomBytes(CRYPTO_BLOCK_SIZE + 5);
    const seen: Buffer[] = [];
    const encryptor = new OffloadedPartEncryptor({
      ...identity({ plaintextLength: plaintext.length }),
      verifyDigest: (digest) => {
        seen.push(digest);
        return new Error('BadDigest');
      },
    });
    const out: Buffer[] = [];
    encryptor.on('data', (chunk: Buffer) => out.push(chunk));
    await expect(pipeline(Readable.from(chunked(plaintext, [70_000])), encryptor)).rejects.toThrow('BadDigest');
    expect(seen.map((d) => d.toString('hex'))).toEqual([md5(plaintext).toString('hex')]);
    expect(Buffer.concat(out).length).toBeLessThan(encryptor.ciphertextLength);
  });

  test('a stream destroyed midway leaves the others on its worker intact', async () => {
    setCryptoWorkerCount(1);
    const doomed = new OffloadedPartEncryptor(identity({ plaintextLength: 4 * CRYPTO_BLOCK_SIZE }));
    doomed.on('error', () => undefined);
    doomed.resume();
    doomed.write(randomBytes(CRYPTO_BLOCK_SIZE + 1));
    doomed.destroy(new Error('client gone'));
    const plaintext = randomBytes(2 * CRYPTO_BLOCK_SIZE);
    const options = identity({ plaintextLength: plaintext.length });
    const { ciphertext, digest } = await offloaded(options, plaintext, [33_333]);
    expectSameBytes(ciphertext, await encryptPart(options, plaintext));
    expect(digest.equals(md5(plaintext))).toBe(true);
  });
});

/** A copy of `bytes` that owns its whole ArrayBuffer, as every body chunk from Node's HTTP parser does. */
function owning(bytes: Buffer): Buffer {
  const own = Buffer.from(new ArrayBuffer(bytes.length));
  bytes.copy(own);
  return own;
}

describe('takeChunks: chunks that own their memory move to the worker', () => {
  test('the same bytes and MD5, every chunk that owns its memory and fits a block moved (detached), the others copied and left intact', async () => {
    const plaintext = randomBytes(9 * CRYPTO_BLOCK_SIZE + 4321);
    const options = identity({ plaintextLength: plaintext.length });
    // Socket-like chunks around 64 KiB that do not divide a block, slices of a larger buffer (copied),
    // and chunks larger than a block (copied, split across batches), in a fixed mix.
    const sizes = [65_536, 65_446, 1, 30_000, 65_536, 65_536, 2 * CRYPTO_BLOCK_SIZE + 5, 4093, 65_536, CRYPTO_BLOCK_SIZE];
    const chunks = chunked(plaintext, sizes).map((chunk, i) => (i % 5 === 3 ? chunk : owning(chunk)));
    const movable = chunks.map((chunk) => chunk.buffer.byteLength === chunk.length && chunk.length <= CRYPTO_BLOCK_SIZE);
    const encryptor = new OffloadedPartEncryptor({ ...options, takeChunks: true });
    const out: Buffer[] = [];
    await pipeline(Readable.from(chunks), encryptor, async (source: AsyncIterable<Buffer>) => {
      for await (const chunk of source) out.push(Buffer.from(chunk));
    });
    expectSameBytes(Buffer.concat(out), await encryptPart(options, plaintext));
    expect((encryptor.digest as Buffer).equals(md5(plaintext))).toBe(true);
    expect(movable.filter(Boolean).length).toBeGreaterThan(5);
    expect(movable.includes(false)).toBe(true);
    chunks.forEach((chunk, i) => expect([i, chunk.length === 0]).toEqual([i, movable[i]]));
  });

  test.each([[4093], [65_536]])('format vectors, byte-exact, in moved chunks of %i bytes', async (size) => {
    const vectors = JSON.parse(readFileSync(join(__dirname, '..', 'format', 'vectors', 'format-v1.json'), 'utf8')) as {
      dataKey: string;
      objectId: string;
      parts: Array<{ partNumber: number; plaintextLength: number; seed: number; salt: string; ciphertext: string }>;
    };
    for (const vector of vectors.parts) {
      const plaintext = patternBytes(vector.plaintextLength, vector.seed);
      const options = {
        dataKey: Buffer.from(vectors.dataKey, 'hex'),
        objectId: Buffer.from(vectors.objectId, 'hex'),
        partNumber: vector.partNumber,
        plaintextLength: vector.plaintextLength,
        salt: Buffer.from(vector.salt, 'hex'),
        takeChunks: true,
      };
      const encryptor = new OffloadedPartEncryptor(options);
      const out: Buffer[] = [];
      await pipeline(Readable.from(chunked(plaintext, [size]).map(owning)), encryptor, async (source: AsyncIterable<Buffer>) => {
        for await (const chunk of source) out.push(Buffer.from(chunk));
      });
      expectSameBytes(Buffer.concat(out), Buffer.from(vector.ciphertext, 'hex'));
      expect((encryptor.digest as Buffer).equals(md5(plaintext))).toBe(true);
    }
  });

  test('without takeChunks nothing is moved: a writer may reuse its chunks', async () => {
    const piece = owning(randomBytes(65_536));
    const plaintext = Buffer.concat([piece, piece, piece]);
    const options = identity({ plaintextLength: plaintext.length });
    const { ciphertext } = await offloaded(options, plaintext);
    const encryptor = new OffloadedPartEncryptor(options);
    const out: Buffer[] = [];
    await pipeline(Readable.from([piece, piece, piece]), encryptor, async (source: AsyncIterable<Buffer>) => {
      for await (const chunk of source) out.push(Buffer.from(chunk));
    });
    expect(piece.length).toBe(65_536);
    expectSameBytes(Buffer.concat(out), ciphertext);
  });

  test('with takeChunks, a writer that reuses a chunk gets a failed part (too short), never wrong bytes', async () => {
    // Written over three batches' worth: within one batch a repeat is copied (a buffer is moved once), so the bytes
    // stay right; once the batch has gone to the worker the reused chunk is empty and the part comes up short.
    const piece = owning(randomBytes(65_536));
    const count = (3 * CRYPTO_BLOCK_SIZE) / piece.length;
    const encryptor = new OffloadedPartEncryptor({ ...identity({ plaintextLength: count * piece.length }), takeChunks: true });
    const out: Buffer[] = [];
    const failure = pipeline(Readable.from(Array.from({ length: count }, () => piece)), encryptor, async (source: AsyncIterable<Buffer>) => {
      for await (const chunk of source) out.push(Buffer.from(chunk));
    });
    await expect(failure).rejects.toBeInstanceOf(PartLengthError);
    expect(Buffer.concat(out).length).toBeLessThan(encryptor.ciphertextLength);
  });
});

test('bounded memory: with a reader that does not read, the encryptor stops accepting plaintext after its blocks and high-water marks', async () => {
  const size = 64 * CRYPTO_BLOCK_SIZE;
  const encryptor = new OffloadedPartEncryptor(identity({ plaintextLength: size }));
  let accepted = 0;
  const piece = randomBytes(65_536);
  // Writes as fast as the encryptor takes them (each write's callback = the bytes are in a block).
  const writing = (async (): Promise<void> => {
    while (accepted < size) {
      await new Promise<void>((resolve, reject) => encryptor.write(piece, (error) => (error ? reject(error) : resolve())));
      accepted += piece.length;
    }
  })();
  await new Promise((resolve) => setTimeout(resolve, 500));
  const stalledAt = accepted;
  // Two blocks with the worker or held, one being filled, the readable and writable high-water marks, one piece of slack.
  expect(stalledAt).toBeLessThanOrEqual(3 * CRYPTO_BLOCK_SIZE + encryptor.readableHighWaterMark + encryptor.writableHighWaterMark + 2 * piece.length);
  expect(stalledAt).toBeLessThan(size);
  // Reading resumes the flow to the end.
  const drained = pipeline(encryptor, new Writable({ write: (_chunk, _encoding, callback) => callback() }));
  await writing;
  encryptor.end();
  await drained;
  expect(accepted).toBe(size);
});

describe('ciphertext in reused shared blocks', () => {
  test('a reader that releases each chunk gets the same bytes while the encryptor reuses a few output blocks', async () => {
    const plaintext = randomBytes(40 * CRYPTO_BLOCK_SIZE + 123);
    const options = identity({ plaintextLength: plaintext.length });
    const encryptor = new OffloadedPartEncryptor(options);
    const copies: Buffer[] = [];
    const blocks = new Set<ArrayBufferLike>();
    await pipeline(
      Readable.from(chunked(plaintext, [65_536, 1000])),
      encryptor,
      new Writable({
        write: (chunk: Buffer, _encoding, callback) => {
          // As the socket does: done with the bytes (here: copied), then hand the chunk back.
          copies.push(Buffer.from(chunk));
          blocks.add(chunk.buffer);
          encryptor.release(chunk);
          callback();
        },
      }),
    );
    expectSameBytes(Buffer.concat(copies), await encryptPart(options, plaintext));
    // The header and the final tag are their own small buffers; the 41 blocks of ciphertext came in
    // a handful of shared output blocks, not one fresh buffer each.
    expect(blocks.size).toBeLessThanOrEqual(6);
  });

  test('blocks released late all come back: a stream holding many at once leaves them to the next, which allocates none', async () => {
    // Each stream keeps every ciphertext chunk until its end (a slow upstream socket), then releases
    // them all: its 16 output blocks are out at once. A pool that let blocks go under such load (they
    // are freed only by a full GC nothing prompts) would make the next stream allocate again.
    const stream = async (): Promise<Set<ArrayBufferLike>> => {
      const plaintext = randomBytes(16 * CRYPTO_BLOCK_SIZE);
      const encryptor = new OffloadedPartEncryptor(identity({ plaintextLength: plaintext.length }));
      const chunks: Buffer[] = [];
      await pipeline(
        Readable.from(chunked(plaintext, [40_000])),
        encryptor,
        new Writable({
          write: (chunk: Buffer, _encoding, callback) => {
            chunks.push(chunk);
            callback();
          },
        }),
      );
      for (const chunk of chunks) encryptor.release(chunk);
      return new Set(chunks.filter((chunk) => chunk.buffer.byteLength >= CRYPTO_BLOCK_SIZE).map((chunk) => chunk.buffer));
    };
    const first = await stream();
    expect(first.size).toBe(16);
    for (let round = 0; round < 2; round += 1) {
      const later = await stream();
      expect([...later].filter((block) => !first.has(block))).toEqual([]);
    }
  });

  test('a chunk never released is never overwritten, and releasing a foreign chunk or twice is harmless', async () => {
    const plaintext = randomBytes(6 * CRYPTO_BLOCK_SIZE);
    const options = identity({ plaintextLength: plaintext.length });
    const encryptor = new OffloadedPartEncryptor(options);
    const kept: Buffer[] = [];
    let index = 0;
    await pipeline(
      Readable.from(chunked(plaintext, [50_000])),
      encryptor,
      new Writable({
        write: (chunk: Buffer, _encoding, callback) => {
          // Every other chunk is kept without being released (and copied only at the end); the rest are
          // copied, released twice, and a foreign buffer is released too.
          if (index++ % 2 === 0) kept.push(chunk);
          else {
            kept.push(Buffer.from(chunk));
            encryptor.release(chunk);
            encryptor.release(chunk);
            encryptor.release(randomBytes(16));
          }
          callback();
        },
      }),
    );
    expectSameBytes(Buffer.concat(kept), await encryptPart(options, plaintext));
  });
});
