/**
 * Regenerates test/format/vectors/format-v1.json and format-v2.json: fixed data key, coffer key,
 * object id, salts, nonces and plaintexts → exact ciphertext, manifest and record bytes. Run only when
 * the format version changes:
 *   npm run build && node dist/scripts/generate-format-vectors.js
 * The tests check both directions against the committed file, and the reference decryptor
 * (written from docs/FORMAT.md) checks them too.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { PartEncryptor } from '../src/crypto/part-encryptor';
import { sealListingSummary } from '../src/format/listing-summary';
import { objectEtag, sealManifest, sealManifestV1, type ManifestPart, type ObjectManifest } from '../src/format/manifest';
import { encodePartRecordName, partRecordKey } from '../src/store/part-record';
import { encodeUploadRecord } from '../src/store/upload-record';

export function patternBytes(length: number, seed: number): Buffer {
  const out = Buffer.alloc(length);
  for (let i = 0; i < length; i += 1) out[i] = (i + seed) % 251;
  return out;
}

export function fixedBytes(length: number, start: number): Buffer {
  return Buffer.from(Array.from({ length }, (_, i) => (start + i) & 0xff));
}

function encrypt(options: ConstructorParameters<typeof PartEncryptor>[0], plaintext: Buffer): Buffer {
  const encryptor = new PartEncryptor(options);
  const out: Buffer[] = [];
  encryptor.on('data', (chunk: Buffer) => out.push(chunk));
  encryptor.end(plaintext);
  return Buffer.concat(out);
}

function main(): void {
  const dataKey = fixedBytes(32, 0x00);
  const objectId = fixedBytes(16, 0xa0);
  const partSpecs = [
    { partNumber: 1, plaintextLength: 0, seed: 0, saltStart: 0x40 },
    { partNumber: 2, plaintextLength: 1, seed: 1, saltStart: 0x41 },
    { partNumber: 3, plaintextLength: 65536, seed: 2, saltStart: 0x42 },
    { partNumber: 10000, plaintextLength: 65537, seed: 3, saltStart: 0x43 },
  ];
  const parts = partSpecs.map((spec) => {
    const salt = fixedBytes(32, spec.saltStart);
    const plaintext = patternBytes(spec.plaintextLength, spec.seed);
    const ciphertext = encrypt({ dataKey, objectId, partNumber: spec.partNumber, plaintextLength: spec.plaintextLength, salt }, plaintext);
    return { ...spec, salt: salt.toString('hex'), ciphertext: ciphertext.toString('hex'), plaintextSha256: createHash('sha256').update(plaintext).digest('hex') };
  });
  let offset = 0;
  const manifestParts: ManifestPart[] = parts.map((part) => {
    const entry = {
      partNumber: part.partNumber,
      plaintextLength: part.plaintextLength,
      offset,
      salt: Buffer.from(part.salt, 'hex'),
      md5: createHash('md5').update(patternBytes(part.plaintextLength, part.seed)).digest(),
    };
    offset += part.ciphertext.length / 2;
    return entry;
  });
  const object: ObjectManifest = {
    objectId,
    kind: 'multipart',
    plaintextSize: manifestParts.reduce((sum, p) => sum + p.plaintextLength, 0),
    ciphertextSize: offset,
    attributes: { contentType: 'text/plain', metadata: { purpose: 'vector' }, created: '2026-11-24T00:00:00.000Z' },
    parts: manifestParts,
  };
  const coffer = 'demo-1250000000';
  const key = 'vectors/object.bin';
  const envelope = { provider: 'local', keyId: 'vector-key', wrappedKey: fixedBytes(73, 0x10), context: { coffer, key } };
  const manifest = sealManifestV1(object, envelope, dataKey);
  writeV2({ dataKey, objectId, coffer, key, object, envelope, parts });
  const vectors = {
    description: 'coffer-gateway at-rest format v1 test vectors (docs/FORMAT.md). Plaintext byte i of a part = (i + seed) mod 251.',
    dataKey: dataKey.toString('hex'),
    objectId: objectId.toString('hex'),
    parts,
    manifest: manifest.toString('hex'),
    dataObjectNote: 'the data object is the part ciphertexts concatenated in order',
  };
  const target = join(__dirname, '..', '..', 'test', 'format', 'vectors', 'format-v1.json');
  writeFileSync(target, `${JSON.stringify(vectors, null, 1)}\n`);
  process.stdout.write(`wrote ${target}\n`);
}

/** Format 2: the same object, its v2 manifest and listing summary, its upload record and two part records. */
function writeV2(input: { dataKey: Buffer; objectId: Buffer; coffer: string; key: string; object: ObjectManifest; envelope: Parameters<typeof sealManifestV1>[1]; parts: unknown[] }): void {
  const { dataKey, objectId, coffer, key, object, envelope } = input;
  const cofferKey = fixedBytes(32, 0xc0);
  const uploadId = objectId.toString('hex');
  const summaryPlain = { size: object.plaintextSize, etag: objectEtag(object), created: object.attributes.created };
  const summary = sealListingSummary(cofferKey, coffer, key, objectId, summaryPlain, fixedBytes(12, 0xd0));
  const manifest = sealManifest(object, envelope, dataKey, { coffer, key }, summary, fixedBytes(12, 0xe0));
  const uploadRecord = encodeUploadRecord(
    { uploadId, coffer, key, upstreamUploadId: 'upstream-upload-1', envelope, contentType: 'text/plain', metadata: { purpose: 'vector' }, initiated: '2026-11-23T23:59:00.000Z' },
    dataKey,
    fixedBytes(12, 0xf0),
  );
  const scope = { coffer, key, uploadId, recordKey: partRecordKey(dataKey, uploadId) };
  const records = [
    { partNumber: 2, salt: fixedBytes(32, 0x41), storage: 'direct' as const, plaintextLength: 1, md5: object.parts[1]?.md5 as Buffer, upstreamEtag: '0123456789abcdef0123456789abcdef', completedAt: 1764000000123 },
    { partNumber: 3, salt: fixedBytes(32, 0x42), storage: 'staged' as const, plaintextLength: 65536, md5: object.parts[2]?.md5 as Buffer, completedAt: 1764000000456 },
  ].map((record, i) => ({
    partNumber: record.partNumber,
    salt: record.salt.toString('hex'),
    kind: record.storage === 'direct' ? 'd' : 's',
    plaintextLength: record.plaintextLength,
    md5: record.md5.toString('hex'),
    upstreamEtag: record.upstreamEtag ?? '',
    completedAt: record.completedAt,
    name: encodePartRecordName(record, scope, fixedBytes(12, 0xa8 + i)),
  }));
  const vectors = {
    description: 'coffer-gateway at-rest format v2 test vectors (docs/FORMAT.md). Parts as in format-v1.json (the part format is unchanged); nonces fixed here, random in production.',
    dataKey: dataKey.toString('hex'),
    cofferKey: cofferKey.toString('hex'),
    coffer,
    key,
    objectId: objectId.toString('hex'),
    manifest: manifest.toString('hex'),
    listingSummary: summaryPlain,
    uploadRecord: uploadRecord.toString('utf8'),
    uploadRecordSecret: { upstreamUploadId: 'upstream-upload-1', contentType: 'text/plain', metadata: { purpose: 'vector' }, initiated: '2026-11-23T23:59:00.000Z' },
    partRecords: records,
    dataObjectNote: 'the data object is the part ciphertexts of format-v1.json concatenated in order',
  };
  const target = join(__dirname, '..', '..', 'test', 'format', 'vectors', 'format-v2.json');
  writeFileSync(target, `${JSON.stringify(vectors, null, 1)}\n`);
  process.stdout.write(`wrote ${target}\n`);
}

if (require.main === module) main();
