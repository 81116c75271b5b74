import { randomBytes } from 'node:crypto';
import { currentParts, decodePartRecordName, encodePartRecordName, type PartRecord } from '../../src/upload/part-record';
import { upstreamLayout } from '../../src/upload/upstream-layout';

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

describe('part record names', () => {
  test('round-trip for direct and staged parts, with odd upstream ETags', () => {
    for (const r of [record(), record({ storage: 'staged', upstreamEtag: undefined }), record({ upstreamEtag: 'W/"weird-etag-/+="' })]) {
      const decoded = decodePartRecordName(encodePartRecordName(r));
      expect(decoded?.salt.equals(r.salt)).toBe(true);
      expect(decoded?.md5.equals(r.md5)).toBe(true);
      expect(decoded).toMatchObject({ partNumber: 7, storage: r.storage, plaintextLength: r.plaintextLength, completedAt: r.completedAt });
      if (r.storage === 'direct') expect(decoded?.upstreamEtag).toBe(r.upstreamEtag?.replace(/^W\//, '').replace(/^"|"$/g, ''));
    }
  });

  test('names fit comfortably in an S3 key under a long prefix', () => {
    const name = encodePartRecordName(record({ upstreamEtag: `"${'f'.repeat(32)}-10000"` }));
    expect(upstreamLayout('a'.repeat(200) + '/').partRecordPrefix('0'.repeat(32)).length + name.length).toBeLessThan(1024);
  });

  test.each(['', 'junk', '00007/short.d.1.00.x.1', '10001/' + 'A'.repeat(43) + '.d.1.' + '0'.repeat(32) + '.eA.1', '00007/' + 'A'.repeat(43) + '.s.1.' + '0'.repeat(32) + '.eA.1'])('rejects %p', (name) => {
    expect(decodePartRecordName(name)).toBeUndefined();
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
