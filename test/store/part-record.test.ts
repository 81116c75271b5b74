import { randomBytes } from 'node:crypto';
import { IntegrityError } from '../../src/format/integrity-error';
import { currentParts, decodePartRecordName, encodePartRecordName, partRecordKey, type PartRecord, type PartRecordScope } from '../../src/store/part-record';
import { upstreamLayout } from '../../src/store/upstream-layout';

const record = (overrides: Partial<PartRecord> = {}): PartRecord => ({
  partNumber: 7,
  salt: randomBytes(32),
  storage: 'direct',
  plaintextLength: 1048576,
  md5: randomBytes(16),
  upstreamEtag: '"0123456789abcdef0123456789abcdef"',
  completedAt: 1_764_000_000_000,
  ...overrides,
});

const uploadId = 'ab'.repeat(16);
const scope: PartRecordScope = { coffer: 'demo-1250000000', key: 'a/b', uploadId, recordKey: partRecordKey(randomBytes(32), uploadId) };

describe('part record names', () => {
  test('round-trip for direct and staged parts, with odd upstream ETags', () => {
    for (const r of [record(), record({ storage: 'staged', upstreamEtag: undefined }), record({ upstreamEtag: 'W/"weird-etag-/+="' })]) {
      const decoded = decodePartRecordName(encodePartRecordName(r, scope), scope);
      expect(decoded?.salt.equals(r.salt)).toBe(true);
      expect(decoded?.md5.equals(r.md5)).toBe(true);
      expect(decoded).toMatchObject({ partNumber: 7, storage: r.storage, plaintextLength: r.plaintextLength, completedAt: r.completedAt });
      if (r.storage === 'direct') expect(decoded?.upstreamEtag).toBe(r.upstreamEtag?.replace(/^W\//, '').replace(/^"|"$/g, ''));
    }
  });

  test('names fit comfortably in an S3 key under a long prefix', () => {
    const name = encodePartRecordName(record({ upstreamEtag: `"${'f'.repeat(32)}-10000"` }), scope);
    expect(upstreamLayout('a'.repeat(200) + '/').partRecordPrefix('0'.repeat(32)).length + name.length).toBeLessThan(1024);
  });

  test('the longest upstream ETag a record holds (255 bytes) round-trips; a longer one is refused when sealing', () => {
    const long = record({ upstreamEtag: 'e'.repeat(255) });
    const name = encodePartRecordName(long, scope);
    expect(decodePartRecordName(name, scope).upstreamEtag).toBe('e'.repeat(255));
    expect(upstreamLayout('a'.repeat(200) + '/').partRecordPrefix('0'.repeat(32)).length + name.length).toBeLessThan(1024);
    expect(() => encodePartRecordName(record({ upstreamEtag: 'e'.repeat(256) }), scope)).toThrow(RangeError);
  });

  test('a part checksum (any algorithm) is sealed in the record and round-trips; a record without one has none; the longest name still fits', () => {
    const checksums = { CRC32: 4, CRC32C: 4, CRC64NVME: 8, SHA1: 20, SHA256: 32 } as const;
    for (const [algorithm, bytes] of Object.entries(checksums)) {
      const checksum = { algorithm: algorithm as keyof typeof checksums, value: randomBytes(bytes).toString('base64') };
      for (const r of [record({ checksum }), record({ storage: 'staged', upstreamEtag: undefined, checksum })]) {
        const name = encodePartRecordName(r, scope);
        expect(name).not.toContain(Buffer.from(checksum.value, 'base64').toString('base64url'));
        const decoded = decodePartRecordName(name, scope);
        expect(decoded.checksum).toEqual(checksum);
        expect(decoded.upstreamEtag).toBe(r.storage === 'direct' ? '0123456789abcdef0123456789abcdef' : undefined);
      }
    }
    expect(decodePartRecordName(encodePartRecordName(record(), scope), scope).checksum).toBeUndefined();
    const longest = encodePartRecordName(record({ upstreamEtag: 'e'.repeat(255), checksum: { algorithm: 'SHA256', value: randomBytes(32).toString('base64') } }), scope);
    expect(decodePartRecordName(longest, scope).checksum?.algorithm).toBe('SHA256');
    expect(upstreamLayout('a'.repeat(200) + '/').partRecordPrefix('0'.repeat(32)).length + longest.length).toBeLessThan(1024);
    expect(() => encodePartRecordName(record({ checksum: { algorithm: 'CRC32', value: randomBytes(8).toString('base64') } }), scope)).toThrow(RangeError);
  });

  test('a name carries no digest: neither the MD5 nor the upstream ETag appears, in any encoding', () => {
    const r = record();
    const name = encodePartRecordName(r, scope);
    for (const text of [r.md5.toString('hex'), r.md5.toString('base64'), r.md5.toString('base64url'), '0123456789abcdef0123456789abcdef']) expect(name).not.toContain(text);
  });

  const genuine = encodePartRecordName(record(), scope);
  const [number, sealed] = genuine.split('/') as [string, string];
  const flipped = `${sealed.slice(0, 20)}${sealed[20] === 'A' ? 'B' : 'A'}${sealed.slice(21)}`;
  test.each([
    ['empty', ''],
    ['junk', 'junk'],
    ['a format v1 name (salt, kind, length, MD5, ETag, time in the clear)', `00007/${'A'.repeat(43)}.s.1048576.${'0'.repeat(32)}.-.1764000000000`],
    ['one character of the sealed record changed', `${number}/${flipped}`],
    ['moved to another part number', `00008/${sealed}`],
    ['part number out of range', `10001/${sealed}`],
    ['truncated', `${number}/${sealed.slice(0, -4)}`],
  ])('refuses %s with an IntegrityError', (_what, name) => {
    expect(() => decodePartRecordName(name, scope)).toThrow(IntegrityError);
  });

  test.each([
    ['another coffer', { coffer: 'other-1250000000' }],
    ['another object key', { key: 'a/c' }],
    ['another upload (same data key)', { uploadId: 'cd'.repeat(16) }],
    ['another data key', { recordKey: partRecordKey(randomBytes(32), uploadId) }],
  ])('a record does not open for %s', (_what, change) => {
    expect(() => decodePartRecordName(genuine, { ...scope, ...change })).toThrow(expect.objectContaining({ reason: 'part-record-rejected' }));
  });
});

describe('choosing the current upload of each part', () => {
  test('the newest record whose bytes are in place wins; overwritten or orphaned records are skipped', () => {
    const old = record({ completedAt: 1, upstreamEtag: 'aaa' });
    const newer = record({ completedAt: 2, upstreamEtag: 'bbb' });
    expect(currentParts([old, newer], new Map([[7, '"bbb"']])).get(7)).toBe(newer);
    // The newer upload's record exists but a concurrent upload's bytes won the part: the record matching the bytes wins.
    expect(currentParts([old, newer], new Map([[7, '"aaa"']])).get(7)).toBe(old);
    // Bytes of an upload whose record was never written: no record matches, the part is absent.
    expect(currentParts([old, newer], new Map([[7, '"ccc"']])).has(7)).toBe(false);
  });

  test('a staged re-upload after a direct upload wins, and vice versa', () => {
    const directFirst = record({ completedAt: 1, upstreamEtag: 'aaa' });
    const stagedLater = record({ completedAt: 2, storage: 'staged', upstreamEtag: undefined });
    expect(currentParts([directFirst, stagedLater], new Map([[7, 'aaa']])).get(7)).toBe(stagedLater);
    const directLater = record({ completedAt: 3, upstreamEtag: 'bbb' });
    expect(currentParts([directFirst, stagedLater, directLater], new Map([[7, 'bbb']])).get(7)).toBe(directLater);
  });
});
