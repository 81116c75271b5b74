/**
 * The committed vectors (test/format/vectors/format-v1.json) pin the format: encryption with the
 * fixed key and salts must give exactly these bytes, decryption must give back the plaintext, and
 * the reference decryptor written from docs/FORMAT.md must agree with both.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PartOpener } from '../../src/crypto/part-decryptor';
import { readObjectRange } from '../../src/crypto/object-reader';
import { openListingSummary, sealListingSummary } from '../../src/format/listing-summary';
import { openManifest, sealManifest, sealManifestV1, parseSealedManifest } from '../../src/format/manifest';
import { decodePartRecordName, encodePartRecordName, partRecordKey } from '../../src/store/part-record';
import { decodeUploadRecord, encodeUploadRecord } from '../../src/store/upload-record';
import { patternBytes } from '../../scripts/generate-format-vectors';
import { encryptPart, expectSameBytes } from '../support/crypto-helpers';
import { rangeSource } from '../support/object-builder';
import { referenceDecryptObject, referenceDecryptPart, referenceEtag, referenceOpenListingSummary, referenceOpenManifest, referenceOpenManifestV2, referenceOpenPartRecord, referenceOpenUploadRecord } from './reference-decryptor';

interface PartVector {
  partNumber: number;
  plaintextLength: number;
  seed: number;
  salt: string;
  ciphertext: string;
  plaintextSha256: string;
}
const vectors = JSON.parse(readFileSync(join(__dirname, 'vectors', 'format-v1.json'), 'utf8')) as {
  dataKey: string;
  objectId: string;
  parts: PartVector[];
  manifest: string;
};
const dataKey = Buffer.from(vectors.dataKey, 'hex');
const objectId = Buffer.from(vectors.objectId, 'hex');
/** A v1 manifest is not bound to its place (only its envelope's KMS context is); any place opens it. */
const place = { coffer: 'demo-1250000000', key: 'vectors/object.bin' };

describe.each(vectors.parts.map((p) => [p.partNumber, p.plaintextLength, p] as const))('part %i (%i bytes)', (_n, _len, vector) => {
  const plaintext = patternBytes(vector.plaintextLength, vector.seed);
  const ciphertext = Buffer.from(vector.ciphertext, 'hex');

  test('encrypts to exactly the vector bytes', async () => {
    const produced = await encryptPart({ dataKey, objectId, partNumber: vector.partNumber, plaintextLength: vector.plaintextLength, salt: Buffer.from(vector.salt, 'hex') }, plaintext, [4093]);
    expectSameBytes(produced, ciphertext);
  });

  test('decrypts the vector bytes back, with the gateway and with the reference decryptor', () => {
    const opener = new PartOpener({ dataKey, withHeader: true });
    const out = Buffer.concat(opener.update(ciphertext));
    opener.final();
    expectSameBytes(out, plaintext);
    expectSameBytes(referenceDecryptPart(dataKey, ciphertext).plaintext, plaintext);
  });
});

describe('manifest and whole object', () => {
  const sealed = Buffer.from(vectors.manifest, 'hex');
  const data = Buffer.concat(vectors.parts.map((p) => Buffer.from(p.ciphertext, 'hex')));
  const plaintext = Buffer.concat(vectors.parts.map((p) => patternBytes(p.plaintextLength, p.seed)));

  test('the manifest re-seals to exactly the vector bytes', () => {
    const manifest = openManifest(sealed, dataKey, place);
    expect(sealManifestV1(manifest, parseSealedManifest(sealed).envelope, dataKey).equals(sealed)).toBe(true);
  });

  test('the object decrypts with the gateway reader and the reference decryptor', async () => {
    const manifest = openManifest(sealed, dataKey, place);
    const source = rangeSource(data);
    const out: Buffer[] = [];
    for await (const chunk of readObjectRange({ manifest, dataKey, fetchRange: source.fetchRange })) out.push(chunk);
    expectSameBytes(Buffer.concat(out), plaintext);
    expectSameBytes(referenceDecryptObject(dataKey, referenceOpenManifest(dataKey, sealed), data), plaintext);
  });
});

/**
 * Format 2 (test/format/vectors/format-v2.json): with the committed key material and nonces the gateway
 * produces exactly these bytes; the gateway opens them; and the reference decryptor, written from
 * docs/FORMAT.md, opens every record type and the whole object and agrees field by field.
 */
describe('format v2 vectors', () => {
  const v2 = JSON.parse(readFileSync(join(__dirname, 'vectors', 'format-v2.json'), 'utf8')) as {
    dataKey: string;
    cofferKey: string;
    coffer: string;
    key: string;
    objectId: string;
    manifest: string;
    listingSummary: { size: number; etag: string; created: string };
    uploadRecord: string;
    uploadRecordSecret: { upstreamUploadId: string; contentType: string; metadata: Record<string, string>; initiated: string };
    partRecords: Array<{ partNumber: number; salt: string; kind: 'd' | 's'; plaintextLength: number; md5: string; upstreamEtag: string; completedAt: number; name: string }>;
  };
  const dk = Buffer.from(v2.dataKey, 'hex');
  const ck = Buffer.from(v2.cofferKey, 'hex');
  const place = { coffer: v2.coffer, key: v2.key };
  const uploadId = v2.objectId;
  const sealed = Buffer.from(v2.manifest, 'hex');
  const data = Buffer.concat(vectors.parts.map((p) => Buffer.from(p.ciphertext, 'hex')));
  const plaintext = Buffer.concat(vectors.parts.map((p) => patternBytes(p.plaintextLength, p.seed)));
  const fixed = (length: number, start: number): Buffer => Buffer.from(Array.from({ length }, (_, i) => (start + i) & 0xff));

  test('the manifest and its listing summary re-seal to exactly the vector bytes', () => {
    const manifest = openManifest(sealed, dk, place);
    const parsed = parseSealedManifest(sealed);
    expect(parsed.version).toBe(2);
    const summary = sealListingSummary(ck, v2.coffer, v2.key, manifest.objectId, v2.listingSummary, fixed(12, 0xd0));
    expect(summary.equals(parsed.summary)).toBe(true);
    expect(sealManifest(manifest, parsed.envelope, dk, place, summary, fixed(12, 0xe0)).equals(sealed)).toBe(true);
  });

  test('the object decrypts with the gateway reader and the reference decryptor; the listing summary agrees', async () => {
    const manifest = openManifest(sealed, dk, place);
    const source = rangeSource(data);
    const out: Buffer[] = [];
    for await (const chunk of readObjectRange({ manifest, dataKey: dk, fetchRange: source.fetchRange })) out.push(chunk);
    expectSameBytes(Buffer.concat(out), plaintext);
    const reference = referenceOpenManifestV2(dk, v2.coffer, v2.key, sealed);
    expectSameBytes(referenceDecryptObject(dk, reference, data), plaintext);
    expect(reference.attributes).toEqual(manifest.attributes);
    const listed = referenceOpenListingSummary(ck, v2.coffer, v2.key, reference.objectId, reference.summary);
    expect(listed).toEqual(v2.listingSummary);
    expect(listed.etag).toBe(referenceEtag(reference));
    expect(openListingSummary(ck, v2.coffer, v2.key, reference.objectId, reference.summary)).toEqual(v2.listingSummary);
  });

  test('the upload record: re-sealed exactly, opened by the gateway and by the reference decryptor', () => {
    const bytes = Buffer.from(v2.uploadRecord, 'utf8');
    const record = decodeUploadRecord(bytes, { coffer: v2.coffer, key: v2.key, uploadId }, dk);
    expect(record).toMatchObject(v2.uploadRecordSecret);
    expect(encodeUploadRecord(record, dk, fixed(12, 0xf0)).equals(bytes)).toBe(true);
    expect(referenceOpenUploadRecord(dk, v2.coffer, v2.key, uploadId, bytes)).toMatchObject(v2.uploadRecordSecret);
  });

  test('the part records: re-sealed exactly, opened by the gateway and by the reference decryptor', () => {
    const scope = { coffer: v2.coffer, key: v2.key, uploadId, recordKey: partRecordKey(dk, uploadId) };
    v2.partRecords.forEach((vector, i) => {
      const decoded = decodePartRecordName(vector.name, scope);
      expect({ ...decoded, salt: decoded.salt.toString('hex'), md5: decoded.md5.toString('hex') }).toEqual({
        partNumber: vector.partNumber,
        salt: vector.salt,
        storage: vector.kind === 'd' ? 'direct' : 'staged',
        plaintextLength: vector.plaintextLength,
        md5: vector.md5,
        upstreamEtag: vector.kind === 'd' ? vector.upstreamEtag : undefined,
        completedAt: vector.completedAt,
      });
      expect(encodePartRecordName(decoded, scope, fixed(12, 0xa8 + i))).toBe(vector.name);
      const reference = referenceOpenPartRecord(dk, v2.coffer, v2.key, uploadId, vector.name);
      expect({ ...reference, salt: reference.salt.toString('hex'), md5: reference.md5.toString('hex') }).toEqual({
        partNumber: vector.partNumber,
        salt: vector.salt,
        kind: vector.kind,
        plaintextLength: vector.plaintextLength,
        md5: vector.md5,
        upstreamEtag: vector.upstreamEtag,
        completedAt: vector.completedAt,
      });
    });
  });

  test('the reference decryptor refuses what the gateway refuses: a byte flipped in each record, or another place', () => {
    const flip = (b: Buffer, at: number): Buffer => {
      const copy = Buffer.from(b);
      copy[at] = (copy[at] as number) ^ 1;
      return copy;
    };
    expect(() => referenceOpenManifestV2(dk, v2.coffer, v2.key, flip(sealed, sealed.length - 1))).toThrow();
    expect(() => referenceOpenManifestV2(dk, v2.coffer, 'vectors/other.bin', sealed)).toThrow();
    const record = JSON.parse(v2.uploadRecord) as { sealed: string };
    const tampered = Buffer.from(JSON.stringify({ ...record, sealed: flip(Buffer.from(record.sealed, 'base64'), 30).toString('base64') }));
    expect(() => referenceOpenUploadRecord(dk, v2.coffer, v2.key, uploadId, tampered)).toThrow();
    const name = (v2.partRecords[0] as { name: string }).name;
    expect(() => referenceOpenPartRecord(dk, v2.coffer, v2.key, uploadId, `00009/${name.split('/')[1]}`)).toThrow();
  });
});
