import { randomBytes } from 'node:crypto';
import { IntegrityError } from '../../src/format/integrity-error';
import { objectEtag, openManifest, parseSealedManifest, replaceEnvelope, sealManifest, validateManifest } from '../../src/format/manifest';
import { buildObject } from '../support/object-builder';
import { referenceOpenManifest } from './reference-decryptor';

describe('object manifest', () => {
  test('seals, opens and agrees with the reference parser', async () => {
    const built = await buildObject({ partSizes: [70000, 5, 0, 131072], partNumbers: [1, 2, 9, 10000] });
    const opened = openManifest(built.sealed, built.dataKey);
    expect(opened).toEqual(built.manifest);
    const reference = referenceOpenManifest(built.dataKey, built.sealed);
    expect(reference.parts.map((p) => [p.partNumber, p.plaintextLength, p.offset])).toEqual(built.manifest.parts.map((p) => [p.partNumber, p.plaintextLength, p.offset]));
    expect(reference.envelope.wrappedKey).toBe(built.envelope.wrappedKey.toString('base64'));
  });

  test('every single-byte change of header, body or MAC is detected', async () => {
    const built = await buildObject({ partSizes: [10, 20] });
    const { body } = parseSealedManifest(built.sealed);
    const bodyStart = built.sealed.length - 32 - body.length;
    for (let at = 0; at < built.sealed.length; at += 1) {
      if (at >= 12 && at < bodyStart - 4) continue; // the envelope is checked separately below
      const copy = Buffer.from(built.sealed);
      copy[at] = (copy[at] as number) ^ 0x01;
      expect(() => openManifest(copy, built.dataKey)).toThrow(IntegrityError);
    }
  });

  test('a different data key fails the MAC', async () => {
    const built = await buildObject({ partSizes: [10] });
    expect(() => openManifest(built.sealed, randomBytes(32))).toThrow(expect.objectContaining({ reason: 'manifest-authentication-failed' }));
  });

  test('rewrap replaces only the envelope; the body and MAC stay valid', async () => {
    const built = await buildObject({ partSizes: [10, 20] });
    const rewrapped = replaceEnvelope(built.sealed, { ...built.envelope, keyId: 'rotated', wrappedKey: randomBytes(184) });
    expect(parseSealedManifest(rewrapped).envelope.keyId).toBe('rotated');
    expect(parseSealedManifest(rewrapped).body.equals(parseSealedManifest(built.sealed).body)).toBe(true);
    expect(openManifest(rewrapped, built.dataKey)).toEqual(built.manifest);
  });

  test('truncated or extended manifests are rejected', async () => {
    const built = await buildObject({ partSizes: [10] });
    expect(() => openManifest(built.sealed.subarray(0, built.sealed.length - 1), built.dataKey)).toThrow(IntegrityError);
    expect(() => openManifest(Buffer.concat([built.sealed, Buffer.from([0])]), built.dataKey)).toThrow(IntegrityError);
  });

  test('structural rules', async () => {
    const { manifest } = await buildObject({ partSizes: [100, 100] });
    const parts = manifest.parts;
    const broken = [
      { ...manifest, parts: [parts[1], parts[0]] },
      { ...manifest, parts: [parts[0], { ...parts[1], partNumber: parts[0]?.partNumber }] },
      { ...manifest, plaintextSize: 199 },
      { ...manifest, ciphertextSize: manifest.ciphertextSize - 1 },
      { ...manifest, parts: [parts[0], { ...parts[1], offset: 1 }] },
      { ...manifest, parts: [] },
      { ...manifest, kind: 'single' as const },
    ];
    for (const candidate of broken) expect(() => validateManifest(candidate as typeof manifest)).toThrow(RangeError);
  });

  test('ETags follow COS: MD5 for a single PUT, md5-of-md5s-N for multipart', async () => {
    const single = await buildObject({ partSizes: [3] });
    expect(objectEtag(single.manifest)).toBe(`"${single.manifest.parts[0]?.md5.toString('hex')}"`);
    const multi = await buildObject({ partSizes: [3, 4] });
    expect(objectEtag(multi.manifest)).toMatch(/^"[0-9a-f]{32}-2"$/);
  });
});
