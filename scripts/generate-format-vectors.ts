/**
 * Regenerates test/format/vectors/format-v1.json: fixed data key, object id, salts and plaintexts →
 * exact ciphertext and manifest bytes. Run only when the format version changes:
 *   npm run build && node dist/scripts/generate-format-vectors.js
 * The tests check both directions against the committed file, and the reference decryptor
 * (written from docs/FORMAT.md) checks them too.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { PartEncryptor } from '../src/crypto/part-encryptor';
import { sealManifestV1, type ManifestPart } from '../src/format/manifest';

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
  const manifest = sealManifestV1(
    {
      objectId,
      kind: 'multipart',
      plaintextSize: manifestParts.reduce((sum, p) => sum + p.plaintextLength, 0),
      ciphertextSize: offset,
      attributes: { contentType: 'text/plain', metadata: { purpose: 'vector' }, created: '2026-11-24T00:00:00.000Z' },
      parts: manifestParts,
    },
    { provider: 'local', keyId: 'vector-key', wrappedKey: fixedBytes(73, 0x10), context: { coffer: 'demo-1250000000', key: 'vectors/object.bin' } },
    dataKey,
  );
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

if (require.main === module) main();
