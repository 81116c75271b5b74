import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { readObjectRange } from '../../src/crypto/object-reader';
import { IntegrityError } from '../../src/format/integrity-error';
import { openManifest, sealManifest, type ObjectManifest } from '../../src/format/manifest';
import { SEGMENT_CIPHERTEXT_SIZE, SEGMENT_SIZE } from '../../src/format/part-format';
import { referenceDecryptObject, referenceOpenManifestV2 } from '../format/reference-decryptor';
import { expectSameBytes } from '../support/crypto-helpers';
import { buildObject, rangeSource, type BuiltObject } from '../support/object-builder';

const S = SEGMENT_SIZE;

async function read(built: Pick<BuiltObject, 'dataKey'>, manifest: ObjectManifest, data: Buffer, start?: number, end?: number): Promise<{ out: Buffer; error: unknown; stats: ReturnType<typeof rangeSource>['stats'] }> {
  const source = rangeSource(data, 7777);
  const out: Buffer[] = [];
  try {
    for await (const chunk of readObjectRange({ manifest, dataKey: built.dataKey, start, end, fetchRange: source.fetchRange })) out.push(chunk);
    return { out: Buffer.concat(out), error: undefined, stats: source.stats };
  } catch (error) {
    return { out: Buffer.concat(out), error, stats: source.stats };
  }
}

describe('reading objects', () => {
  test('whole object in part order: one upstream request, byte-exact, and the reference decryptor agrees', async () => {
    const built = await buildObject({ partSizes: [3 * S + 5, 2 * S, 17, S + 1] });
    const result = await read(built, built.manifest, built.data);
    expect(result.error).toBeUndefined();
    expectSameBytes(result.out, built.plaintext);
    expect(result.stats.requests).toBe(1);
    expect(result.stats.bytes).toBe(built.data.length);
    expectSameBytes(referenceDecryptObject(built.dataKey, referenceOpenManifestV2(built.dataKey, built.place.coffer, built.place.key, built.sealed), built.data), built.plaintext);
  });

  test('parts stored out of order with filler between them', async () => {
    const built = await buildObject({ partSizes: [S + 3, 40, 2 * S], storageOrder: [2, 0, 1], filler: 333 });
    const result = await read(built, built.manifest, built.data);
    expectSameBytes(result.out, built.plaintext);
    expect(result.stats.requests).toBe(3);
  });

  test('property: any range returns exactly those bytes and reads at most one partial segment on each side', async () => {
    const built = await buildObject({ partSizes: [3 * S + 100, 5, S, 2 * S + 7, 0, 1] });
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: built.plaintext.length - 1 }), fc.integer({ min: 0, max: built.plaintext.length - 1 }), async (a, b) => {
        const [start, end] = a <= b ? [a, b] : [b, a];
        const result = await read(built, built.manifest, built.data, start, end);
        expect(result.error).toBeUndefined();
        expect(result.out.equals(built.plaintext.subarray(start, end + 1))).toBe(true);
        const requested = end - start + 1;
        // Overhead bound: two whole segments around the range, plus per-part header and tag bytes.
        expect(result.stats.bytes).toBeLessThanOrEqual(requested + 2 * SEGMENT_CIPHERTEXT_SIZE + 6 * (100 + 16) + 16 * Math.ceil(requested / S));
        expect(result.stats.requests).toBe(1);
      }),
      { numRuns: 150 },
    );
  });

  test('a 1-byte range in the middle of a big part reads one segment', async () => {
    const built = await buildObject({ partSizes: [10 * S] });
    const result = await read(built, built.manifest, built.data, 5 * S + 10, 5 * S + 10);
    expect(result.out).toEqual(built.plaintext.subarray(5 * S + 10, 5 * S + 11));
    expect(result.stats.bytes).toBe(SEGMENT_CIPHERTEXT_SIZE);
  });
});

describe('object-level tampering: every case fails and never yields a wrong byte', () => {
  let built: BuiltObject;
  const sizes = [2 * S + 10, S, 3000];
  beforeAll(async () => {
    built = await buildObject({ partSizes: sizes });
  });

  async function expectFails(manifest: ObjectManifest, data: Buffer, start?: number, end?: number): Promise<void> {
    const result = await read(built, manifest, data, start, end);
    expect(result.error).toBeInstanceOf(IntegrityError);
    const from = start ?? 0;
    expect(result.out.equals(built.plaintext.subarray(from, from + result.out.length))).toBe(true);
  }

  test('two parts swapped in the data object', async () => {
    const [a, b, c] = built.partCiphertexts as [Buffer, Buffer, Buffer];
    await expectFails(built.manifest, Buffer.concat([b, a, c]));
  });

  test('a part dropped (data shorter) and a part duplicated', async () => {
    const [a, , c] = built.partCiphertexts as [Buffer, Buffer, Buffer];
    await expectFails(built.manifest, Buffer.concat([a, c]));
    await expectFails(built.manifest, Buffer.concat([a, a, c]));
  });

  test('the object truncated at a part boundary and inside a part', async () => {
    const [a, b] = built.partCiphertexts as [Buffer, Buffer];
    await expectFails(built.manifest, built.data.subarray(0, a.length + b.length));
    await expectFails(built.manifest, built.data.subarray(0, a.length + 500));
    await expectFails(built.manifest, built.data.subarray(0, built.data.length - 1), S, built.plaintext.length - 1);
  });

  test('a part spliced from another object (other data key) or another upload of the same part', async () => {
    const other = await buildObject({ partSizes: sizes });
    const [a, , c] = built.partCiphertexts as [Buffer, Buffer, Buffer];
    await expectFails(built.manifest, Buffer.concat([a, other.partCiphertexts[1] as Buffer, c]));
    const sameKey = await buildObject({ partSizes: sizes, dataKey: built.dataKey, objectId: built.manifest.objectId });
    await expectFails(built.manifest, Buffer.concat([a, sameKey.partCiphertexts[1] as Buffer, c]));
    // And on a range that starts mid-part (no header read): segment authentication catches it.
    await expectFails(built.manifest, Buffer.concat([a, sameKey.partCiphertexts[1] as Buffer, c]), 2 * S + 20, 2 * S + 30);
  });

  test('a manifest replaced by one of another object does not authenticate under this data key', async () => {
    const other = await buildObject({ partSizes: sizes });
    expect(() => openManifest(other.sealed, built.dataKey, built.place)).toThrow(expect.objectContaining({ reason: 'manifest-authentication-failed' }));
    // A forged manifest sealed under another key with this object's layout is equally useless.
    expect(() => openManifest(sealManifest(built.manifest, built.envelope, randomBytes(32), built.place, Buffer.alloc(0)), built.dataKey, built.place)).toThrow(IntegrityError);
  });

  test('a bit flipped in each region of the data object, for whole and ranged reads', async () => {
    const regions = [0, 50, 90, 120, 100 + SEGMENT_CIPHERTEXT_SIZE - 1, 100 + SEGMENT_CIPHERTEXT_SIZE + 5, built.data.length - 1, (built.partCiphertexts[0] as Buffer).length + 10];
    for (const at of regions) {
      const copy = Buffer.from(built.data);
      copy[at] = (copy[at] as number) ^ 0x80;
      await expectFails(built.manifest, copy);
    }
  });
});
