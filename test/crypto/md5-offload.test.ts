import { createHash, randomBytes } from 'node:crypto';
import { MD5_BLOCK_SIZE, OffloadedMd5 } from '../../src/crypto/md5-offload';

async function offloaded(data: Buffer, chunkSize: number): Promise<string> {
  const md5 = new OffloadedMd5();
  for (let offset = 0; offset < data.length; offset += chunkSize) {
    const waiting = md5.update(data.subarray(offset, offset + chunkSize));
    if (waiting !== undefined) await waiting;
  }
  return (await md5.digest()).toString('hex');
}

const expected = (data: Buffer): string => createHash('md5').update(data).digest('hex');

test.each([
  ['empty', 0, 1],
  ['one byte', 1, 1],
  ['one block exactly', MD5_BLOCK_SIZE, MD5_BLOCK_SIZE],
  ['block ± 1 in odd chunks', 3 * MD5_BLOCK_SIZE + 1, 65_537],
  ['chunks larger than every block together', 5 * MD5_BLOCK_SIZE - 1, 3 * MD5_BLOCK_SIZE + 7],
])('%s: the same digest as node:crypto', async (_label, size, chunk) => {
  const data = randomBytes(size);
  expect(await offloaded(data, chunk)).toBe(expected(data));
});

test('concurrent streams share the worker without mixing their bytes', async () => {
  const inputs = Array.from({ length: 8 }, (_, i) => randomBytes(MD5_BLOCK_SIZE + i * 12_345));
  const digests = await Promise.all(inputs.map((data, i) => offloaded(data, 10_000 + i * 999)));
  expect(digests).toEqual(inputs.map(expected));
});

test('an aborted stream leaves the others intact; digest twice is refused', async () => {
  const aborted = new OffloadedMd5();
  aborted.update(randomBytes(MD5_BLOCK_SIZE + 1));
  aborted.abort();
  const data = randomBytes(2 * MD5_BLOCK_SIZE);
  const md5 = new OffloadedMd5();
  await md5.update(data);
  expect((await md5.digest()).toString('hex')).toBe(expected(data));
  await expect(md5.digest()).rejects.toThrow('already');
});
