import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { PartEncryptor, PartLengthError } from '../../src/crypto/part-encryptor';
import { PartDecryptor, PartOpener } from '../../src/crypto/part-decryptor';
import { SEGMENT_SIZE, partCiphertextLength } from '../../src/format/part-format';
import { referenceDecryptPart } from '../format/reference-decryptor';
import { chunked, decryptWholePart, encryptPart, expectSameBytes, identity } from '../support/crypto-helpers';

const S = SEGMENT_SIZE;
const interestingSizes = [0, 1, 2, 15, 16, 17, S - 1, S, S + 1, 2 * S - 1, 2 * S, 2 * S + 1, 3 * S + 12345];

describe('part encryption round trip', () => {
  test.each(interestingSizes)('P = %i with odd chunking, checked by the reference decryptor too', async (size) => {
    const options = identity({ plaintextLength: size, partNumber: 7 });
    const plaintext = randomBytes(size);
    const ciphertext = await encryptPart(options, plaintext, [1, 7, 4096, S + 3, 100000]);
    expect(ciphertext.length).toBe(partCiphertextLength(size));
    expectSameBytes(decryptWholePart(options.dataKey, ciphertext, { ...options, salt: options.salt }, 9999), plaintext);
    expectSameBytes(referenceDecryptPart(options.dataKey, ciphertext).plaintext, plaintext);
  });

  test('property: random sizes and random chunkings round-trip through the streaming decryptor', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(fc.integer({ min: 0, max: 4 * S + 10 }), fc.constantFrom(...interestingSizes)),
        fc.array(fc.integer({ min: 1, max: 3 * S }), { minLength: 1, maxLength: 5 }),
        fc.array(fc.integer({ min: 1, max: 3 * S }), { minLength: 1, maxLength: 5 }),
        async (size, encryptChunks, decryptChunks) => {
          const options = identity({ plaintextLength: size });
          const plaintext = randomBytes(size);
          const ciphertext = await encryptPart(options, plaintext, encryptChunks);
          const out: Buffer[] = [];
          await pipeline(Readable.from(chunked(ciphertext, decryptChunks)), new PartDecryptor({ dataKey: options.dataKey, withHeader: true }), async (source: AsyncIterable<Buffer>) => {
            for await (const chunk of source) out.push(chunk);
          });
          expectSameBytes(Buffer.concat(out), plaintext);
        },
      ),
      { numRuns: 60 },
    );
  });

  test('two uploads of the same bytes to the same part number produce unrelated ciphertexts (fresh salt)', async () => {
    const base = identity({ plaintextLength: 1000 });
    const plaintext = randomBytes(1000);
    const first = await encryptPart({ ...base, salt: undefined }, plaintext);
    const second = await encryptPart({ ...base, salt: undefined }, plaintext);
    expect(first.subarray(36, 68).equals(second.subarray(36, 68))).toBe(false);
    expect(first.subarray(100).equals(second.subarray(100))).toBe(false);
  });

  test('a body longer than declared fails as soon as the excess arrives', async () => {
    const options = identity({ plaintextLength: 10 });
    await expect(encryptPart(options, randomBytes(11), [5, 6])).rejects.toBeInstanceOf(PartLengthError);
  });

  test('a body shorter than declared fails at the end and never completes the final segment', async () => {
    const options = identity({ plaintextLength: 2 * S });
    const encryptor = new PartEncryptor(options);
    const out: Buffer[] = [];
    await expect(
      pipeline(Readable.from([randomBytes(S + 5)]), encryptor, async (source: AsyncIterable<Buffer>) => {
        for await (const chunk of source) out.push(chunk);
      }),
    ).rejects.toBeInstanceOf(PartLengthError);
    // What was emitted cannot pass as a complete part: it lacks the final segment.
    expect(() => decryptWholePart(options.dataKey, Buffer.concat(out))).toThrow();
  });

  test('no buffering: each 1 MiB input chunk leaves as one piece of at most that chunk plus its tags, and the readable side never holds more than its high-water mark plus one chunk', async () => {
    const size = 64 * 1024 * 1024;
    const options = identity({ plaintextLength: size });
    const encryptor = new PartEncryptor(options);
    const chunk = randomBytes(1024 * 1024);
    let largestPiece = 0;
    let largestBacklog = 0;
    let total = 0;
    const done = new Promise<void>((resolve, reject) => {
      encryptor.on('data', (piece: Buffer) => {
        largestPiece = Math.max(largestPiece, piece.length);
        largestBacklog = Math.max(largestBacklog, encryptor.readableLength);
        total += piece.length;
      });
      encryptor.on('end', resolve);
      encryptor.on('error', reject);
    });
    await pipeline(
      (async function* () {
        for (let i = 0; i < 64; i += 1) yield chunk;
      })(),
      async function* (source: AsyncIterable<Buffer>) {
        for await (const piece of source) yield piece;
      },
      encryptor,
    ).catch(() => undefined);
    await done;
    expect(total).toBe(partCiphertextLength(size));
    expect(largestPiece).toBeLessThanOrEqual(chunk.length + 100 + 17 * 16);
    expect(largestBacklog).toBeLessThanOrEqual(encryptor.readableHighWaterMark + chunk.length + S);
  });

  test('segment-mode decryption of a middle run without the header', async () => {
    const size = 5 * S + 77;
    const options = identity({ plaintextLength: size, partNumber: 3 });
    const plaintext = randomBytes(size);
    const ciphertext = await encryptPart(options, plaintext);
    const opener = new PartOpener({ dataKey: options.dataKey, expected: { ...options, salt: options.salt }, withHeader: false, firstSegment: 2, lastSegment: 5 });
    const start = 100 + 2 * (S + 16);
    const out = Buffer.concat(opener.update(ciphertext.subarray(start)));
    opener.final();
    expectSameBytes(out, plaintext.subarray(2 * S));
  });
});
