import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { PartEncryptor, type PartEncryptorOptions } from '../../src/crypto/part-encryptor';
import { PartOpener, type ExpectedPart } from '../../src/crypto/part-decryptor';

/** Splits `data` into chunks of the given sizes (cycled), as a network would. */
export function chunked(data: Buffer, sizes: readonly number[] = [data.length || 1]): Buffer[] {
  const chunks: Buffer[] = [];
  let at = 0;
  let i = 0;
  while (at < data.length) {
    const size = Math.max(1, sizes[i % sizes.length] as number);
    chunks.push(data.subarray(at, at + size));
    at += size;
    i += 1;
  }
  return chunks;
}

export async function encryptPart(options: PartEncryptorOptions, plaintext: Buffer, chunkSizes?: readonly number[]): Promise<Buffer> {
  const encryptor = new PartEncryptor(options);
  const out: Buffer[] = [];
  await pipeline(Readable.from(chunked(plaintext, chunkSizes)), encryptor, async (source: AsyncIterable<Buffer>) => {
    for await (const chunk of source) out.push(chunk);
  });
  const ciphertext = Buffer.concat(out);
  expect(ciphertext.length).toBe(encryptor.ciphertextLength);
  return ciphertext;
}

/** Decrypts a whole part synchronously; returns the plaintext or throws the IntegrityError. */
export function decryptWholePart(dataKey: Buffer, ciphertext: Buffer, expected?: ExpectedPart, chunkSize = ciphertext.length): Buffer {
  const opener = new PartOpener({ dataKey, expected, withHeader: true });
  const out: Buffer[] = [];
  for (const chunk of chunked(ciphertext, [chunkSize])) out.push(...opener.update(chunk));
  opener.final();
  return Buffer.concat(out);
}

export function identity(overrides: Partial<PartEncryptorOptions> = {}): PartEncryptorOptions & { salt: Buffer } {
  return {
    dataKey: randomBytes(32),
    objectId: randomBytes(16),
    partNumber: 1,
    plaintextLength: 0,
    salt: randomBytes(32),
    ...overrides,
  } as PartEncryptorOptions & { salt: Buffer };
}

/** Byte equality without Jest's element-wise diff (which is unusably slow on large buffers). */
export function expectSameBytes(actual: Buffer, expected: Buffer): void {
  const digest = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
  expect({ length: actual.length, sha256: digest(actual) }).toEqual({ length: expected.length, sha256: digest(expected) });
}
