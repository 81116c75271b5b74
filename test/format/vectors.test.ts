/**
 * The committed vectors (test/format/vectors/format-v1.json) pin the format: encryption with the
 * fixed key and salts must give exactly these bytes, decryption must give back the plaintext, and
 * the reference decryptor written from docs/FORMAT.md must agree with both.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PartOpener } from '../../src/crypto/part-decryptor';
import { readObjectRange } from '../../src/crypto/object-reader';
import { openManifest, sealManifestV1, parseSealedManifest } from '../../src/format/manifest';
import { patternBytes } from '../../scripts/generate-format-vectors';
import { encryptPart, expectSameBytes } from '../support/crypto-helpers';
import { rangeSource } from '../support/object-builder';
import { referenceDecryptObject, referenceDecryptPart, referenceOpenManifest } from './reference-decryptor';

interface PartVector { partNumber: number; plaintextLength: number; seed: number; salt: string; ciphertext: string; plaintextSha256: string }
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
