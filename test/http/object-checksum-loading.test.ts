/**
 * The S3 additional checksums (src/http/object-checksum.ts): the check values of each algorithm, and
 * the CRC packages loaded at the first checksum that needs them — not by a gateway that never sees one
 * (probed where Node loads them: a jest.mock factory that records the load and hands back the real module).
 */
const mockLoaded = new Set<string>();
jest.mock('@node-rs/crc32', () => (mockLoaded.add('@node-rs/crc32'), jest.requireActual('@node-rs/crc32')));
jest.mock('@aws-sdk/crc64-nvme', () => (mockLoaded.add('@aws-sdk/crc64-nvme'), jest.requireActual('@aws-sdk/crc64-nvme')));

import { runningChecksum, type ChecksumAlgorithm } from '../../src/http/object-checksum';

/** Each algorithm's digest of "123456789" (the catalogued check values), base64 as S3 sends it. */
const CHECK_VALUES: ReadonlyArray<[ChecksumAlgorithm, string]> = [
  ['CRC32', Buffer.from('cbf43926', 'hex').toString('base64')],
  ['CRC32C', Buffer.from('e3069283', 'hex').toString('base64')],
  ['CRC64NVME', Buffer.from('ae8b14860a799888', 'hex').toString('base64')],
  ['SHA1', Buffer.from('f7c3bc1d808e04732adf679965ccc34ca7ae3441', 'hex').toString('base64')],
  ['SHA256', Buffer.from('15e2b0d3c33891ebb0f1ef609ec419420c20e320ce94c65fbc8c3312448eb225', 'hex').toString('base64')],
];

test('loading the module loads neither CRC package; each is loaded by the first checksum that needs it', async () => {
  expect([...mockLoaded]).toEqual([]);
  runningChecksum('SHA256');
  expect([...mockLoaded]).toEqual([]);
  runningChecksum('CRC32C');
  expect([...mockLoaded]).toEqual(['@node-rs/crc32']);
  runningChecksum('CRC64NVME');
  expect([...mockLoaded]).toEqual(['@node-rs/crc32', '@aws-sdk/crc64-nvme']);
});

test.each(CHECK_VALUES)('%s of "123456789", fed in pieces', async (algorithm, expected) => {
  const checksum = runningChecksum(algorithm);
  for (const piece of ['1234', '5', '6789']) checksum.update(Buffer.from(piece, 'latin1'));
  expect(await checksum.digest()).toBe(expected);
});
