import fc from 'fast-check';
import { PART_HEADER_SIZE, SEGMENT_SIZE, decodePartHeader, encodePartHeader, partCiphertextLength, partPlaintextLength, segmentCount, segmentNonce } from '../../src/format/part-format';
import { IntegrityError } from '../../src/format/integrity-error';

describe('ciphertext length', () => {
  test.each([
    [0, 116],
    [1, 117],
    [SEGMENT_SIZE - 1, 100 + SEGMENT_SIZE - 1 + 16],
    [SEGMENT_SIZE, 65652],
    [SEGMENT_SIZE + 1, 65669],
    [1024 * 1024, 1048932],
    [5 * 1024 ** 3, 5370019940],
  ])('C(%i) = %i and inverts', (p, c) => {
    expect(partCiphertextLength(p)).toBe(c);
    expect(partPlaintextLength(c)).toBe(p);
  });

  test('is strictly increasing and exactly invertible over random sizes up to 5 GiB', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 5 * 1024 ** 3 - 1 }), (p) => {
        expect(partCiphertextLength(p + 1)).toBeGreaterThan(partCiphertextLength(p));
        expect(partPlaintextLength(partCiphertextLength(p))).toBe(p);
      }),
      { numRuns: 2000 },
    );
  });

  test('rejects every length no plaintext maps to', () => {
    // Between C(k·65536) and C(k·65536 + 1) lie 16 impossible lengths (a new segment costs a tag).
    const boundary = partCiphertextLength(2 * SEGMENT_SIZE);
    for (let extra = 1; extra <= 16; extra += 1) {
      expect(() => partPlaintextLength(boundary + extra)).toThrow(IntegrityError);
    }
    expect(partPlaintextLength(boundary + 17)).toBe(2 * SEGMENT_SIZE + 1);
    expect(() => partPlaintextLength(115)).toThrow(IntegrityError);
    expect(() => partPlaintextLength(-1)).toThrow(IntegrityError);
  });

  test('segment counts', () => {
    expect(segmentCount(0)).toBe(1);
    expect(segmentCount(SEGMENT_SIZE)).toBe(1);
    expect(segmentCount(SEGMENT_SIZE + 1)).toBe(2);
  });
});

describe('part header', () => {
  const header = {
    objectId: Buffer.alloc(16, 0xab),
    partNumber: 10000,
    plaintextLength: 5 * 1024 ** 3,
    salt: Buffer.alloc(32, 0x11),
    commitment: Buffer.alloc(32, 0x22),
  };

  test('round-trips and has the documented layout', () => {
    const bytes = encodePartHeader(header);
    expect(bytes.length).toBe(PART_HEADER_SIZE);
    expect(bytes.subarray(0, 8).toString('hex')).toBe('4346475001100000');
    expect(bytes.readUInt32BE(24)).toBe(10000);
    expect(decodePartHeader(bytes)).toEqual(header);
  });

  test.each([
    ['magic', 0, 0x00, 'bad-magic'],
    ['version', 4, 0x02, 'unsupported-version'],
    ['segment size', 5, 0x11, 'malformed'],
    ['reserved', 7, 0x01, 'malformed'],
  ])('rejects a changed %s', (_name, offset, value, reason) => {
    const bytes = encodePartHeader(header);
    bytes[offset] = value;
    expect(() => decodePartHeader(bytes)).toThrow(expect.objectContaining({ reason }));
  });

  test('rejects a truncated header', () => {
    expect(() => decodePartHeader(encodePartHeader(header).subarray(0, 99))).toThrow(expect.objectContaining({ reason: 'truncated' }));
  });
});

test('segment nonces carry the index and the final flag', () => {
  expect(segmentNonce(0, false).toString('hex')).toBe('000000000000000000000000');
  expect(segmentNonce(1, true).toString('hex')).toBe('000000000000000000000101');
  expect(segmentNonce(0x01020304, false).toString('hex')).toBe('000000000000000102030400');
});
