import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { encryptAndStore } from '../../src/store/encrypt-and-store';
import type { StreamedBody } from '../../src/store/ports';
import { markChunksMovable } from '../../src/util/movable-chunks';
import { encryptPart, expectSameBytes } from '../support/crypto-helpers';

/** Buffers that each own their whole ArrayBuffer, as a request body's chunks do. */
const owningChunks = (count: number, size: number): Buffer[] =>
  Array.from({ length: count }, () => {
    const chunk = Buffer.from(new ArrayBuffer(size));
    randomBytes(size).copy(chunk);
    return chunk;
  });

/** encryptAndStore into a store that keeps the ciphertext; the chunks' lengths afterwards. */
async function store(chunks: Buffer[], mark: boolean): Promise<{ ciphertext: Buffer; lengthsAfter: number[] }> {
  const plaintext = Buffer.concat(chunks);
  const body = Readable.from(chunks);
  const kept: Buffer[] = [];
  const storeUpload = async (upload: StreamedBody): Promise<{ etag: string }> => {
    for await (const chunk of upload.body as AsyncIterable<Buffer>) {
      kept.push(Buffer.from(chunk));
      upload.release?.(chunk);
    }
    return { etag: '"e"' };
  };
  const identity = { dataKey: Buffer.alloc(32, 7), objectId: Buffer.alloc(16, 3), partNumber: 2, plaintextLength: plaintext.length, salt: Buffer.alloc(32, 9) };
  const { md5 } = await encryptAndStore({ ...identity, body: mark ? markChunksMovable(body) : body, store: storeUpload });
  expect(md5.length).toBe(16);
  const ciphertext = Buffer.concat(kept);
  expectSameBytes(ciphertext, await encryptPart(identity, plaintext));
  return { ciphertext, lengthsAfter: chunks.map((chunk) => chunk.length) };
}

test('a body marked movable (a request body) has its chunks moved to the crypto worker; an unmarked one is copied and left intact; the same ciphertext', async () => {
  const marked = owningChunks(12, 65_536);
  const unmarked = owningChunks(12, 65_536);
  marked.forEach((chunk, i) => chunk.copy(unmarked[i] as Buffer));
  const moved = await store(marked, true);
  const copied = await store(unmarked, false);
  expect(moved.lengthsAfter).toEqual(marked.map(() => 0));
  expect(copied.lengthsAfter).toEqual(unmarked.map(() => 65_536));
  expect(moved.ciphertext.equals(copied.ciphertext)).toBe(true);
});
