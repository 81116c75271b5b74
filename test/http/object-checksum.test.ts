/**
 * Multipart object checksums: the FULL_OBJECT CRC combination against the CRC of the whole bytes
 * (computed by the same libraries the gateway verifies uploads with, and by Node's zlib for CRC32),
 * COMPOSITE checksums as S3 defines them, and the algorithm/type rules.
 */
import { createHash, randomBytes } from 'node:crypto';
import { crc32 as zlibCrc32 } from 'node:zlib';
import { ChecksumTap, CHECKSUM_ALGORITHMS, combineCrcs, compositeChecksum, defaultChecksumType, isAllowedChecksumType, runningChecksum, type ChecksumAlgorithm } from '../../src/http/object-checksum';

async function checksumOf(algorithm: ChecksumAlgorithm, bytes: Buffer): Promise<string> {
  const running = runningChecksum(algorithm);
  running.update(bytes);
  return running.digest();
}

describe('combineCrcs (FULL_OBJECT)', () => {
  const data = randomBytes(1_000_003);
  // Empty, one-byte, odd and power-of-two parts.
  const cuts = [0, 0, 1, 4096, 4097, 500_000, 1_000_003];

  test.each(['CRC32', 'CRC32C', 'CRC64NVME'] as const)('%s: the combined part CRCs equal the CRC of the whole object', async (algorithm) => {
    const parts = [];
    for (let i = 0; i + 1 < cuts.length; i += 1) {
      const part = data.subarray(cuts[i], cuts[i + 1]);
      parts.push({ checksum: await checksumOf(algorithm, part), length: part.length });
    }
    expect(combineCrcs(algorithm, parts)).toBe(await checksumOf(algorithm, data));
    expect(combineCrcs(algorithm, parts.slice(0, 1))).toBe(parts[0]?.checksum);
  });

  test.each(['CRC32', 'CRC32C', 'CRC64NVME'] as const)('%s: many equal parts (the length operator composed once) combine to the CRC of the whole', async (algorithm) => {
    const whole = randomBytes(70 * 1001 + 17);
    const parts = [];
    for (let at = 0; at < whole.length; at += 1001) {
      const part = whole.subarray(at, at + 1001);
      parts.push({ checksum: await checksumOf(algorithm, part), length: part.length });
    }
    expect(parts).toHaveLength(71);
    expect(combineCrcs(algorithm, parts)).toBe(await checksumOf(algorithm, whole));
  });

  test('CRC32 agrees with an independent implementation (zlib)', () => {
    const a = data.subarray(0, 300_000);
    const b = data.subarray(300_000);
    const base64 = (value: number): string => {
      const out = Buffer.alloc(4);
      out.writeUInt32BE(value >>> 0);
      return out.toString('base64');
    };
    expect(
      combineCrcs('CRC32', [
        { checksum: base64(zlibCrc32(a)), length: a.length },
        { checksum: base64(zlibCrc32(b)), length: b.length },
      ]),
    ).toBe(base64(zlibCrc32(data)));
  });

  test('SHA-1 and SHA-256 cannot be combined', () => {
    expect(() => combineCrcs('SHA256', [{ checksum: 'AAAA', length: 1 }])).toThrow(RangeError);
  });
});

describe('compositeChecksum (COMPOSITE)', () => {
  test('the checksum of the concatenated binary part checksums, with -<parts>', async () => {
    const parts = [randomBytes(1000), randomBytes(2000), randomBytes(5)];
    const partSums = parts.map((part) => createHash('sha256').update(part).digest());
    const expected = `${createHash('sha256').update(Buffer.concat(partSums)).digest('base64')}-3`;
    expect(
      await compositeChecksum(
        'SHA256',
        partSums.map((sum) => sum.toString('base64')),
      ),
    ).toBe(expected);
  });
});

describe('checksum types per algorithm (as S3 allows them)', () => {
  test('CRC64NVME only FULL_OBJECT, SHA only COMPOSITE, CRC32/CRC32C either; the default is FULL_OBJECT for CRC64NVME only', () => {
    const table = Object.fromEntries(CHECKSUM_ALGORITHMS.map((algorithm) => [algorithm, [isAllowedChecksumType(algorithm, 'COMPOSITE'), isAllowedChecksumType(algorithm, 'FULL_OBJECT'), defaultChecksumType(algorithm)]]));
    expect(table).toEqual({
      CRC32: [true, true, 'COMPOSITE'],
      CRC32C: [true, true, 'COMPOSITE'],
      CRC64NVME: [false, true, 'FULL_OBJECT'],
      SHA1: [true, false, 'COMPOSITE'],
      SHA256: [true, false, 'COMPOSITE'],
    });
  });
});

test('ChecksumTap passes bytes through unchanged and digests them', async () => {
  const tap = new ChecksumTap('CRC32C');
  const body = randomBytes(70_000);
  const out: Buffer[] = [];
  tap.on('data', (chunk: Buffer) => out.push(chunk));
  const ended = new Promise((resolve) => tap.on('end', resolve));
  tap.end(body);
  await ended;
  expect(Buffer.concat(out).equals(body)).toBe(true);
  expect(await tap.digest()).toBe(await checksumOf('CRC32C', body));
});
