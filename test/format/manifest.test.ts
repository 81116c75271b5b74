import { randomBytes } from 'node:crypto';
import { IntegrityError } from '../../src/format/integrity-error';
import { openListingSummary } from '../../src/format/listing-summary';
import { objectEtag, openManifest, parseSealedManifest, peekManifestV1, replaceEnvelope, validateManifest } from '../../src/format/manifest';
import { buildObject } from '../support/object-builder';
import { referenceOpenManifest, referenceOpenManifestV2 } from './reference-decryptor';

describe('object manifest, format v2 (written)', () => {
  test('seals, opens and agrees with the reference decryptor', async () => {
    const built = await buildObject({ partSizes: [70000, 5, 0, 131072], partNumbers: [1, 2, 9, 10000] });
    expect(openManifest(built.sealed, built.dataKey, built.place)).toEqual(built.manifest);
    const reference = referenceOpenManifestV2(built.dataKey, built.place.coffer, built.place.key, built.sealed);
    expect(reference.parts.map((p) => [p.partNumber, p.plaintextLength, p.offset, p.md5.toString('hex')])).toEqual(built.manifest.parts.map((p) => [p.partNumber, p.plaintextLength, p.offset, p.md5.toString('hex')]));
    expect(reference.envelope.wrappedKey).toBe(built.envelope.wrappedKey.toString('base64'));
  });

  test('no MD5, ETag, content type or metadata in the clear', async () => {
    const built = await buildObject({ partSizes: [3, 70000] });
    const text = built.sealed.toString('latin1');
    for (const part of built.manifest.parts) {
      expect(built.sealed.includes(part.md5)).toBe(false);
      expect(text).not.toContain(part.md5.toString('hex'));
    }
    expect(text).not.toContain(objectEtag(built.manifest).slice(1, 33));
    expect(text).not.toContain('application/octet-stream');
    expect(text).not.toContain('owner');
  });

  test('every single-byte change outside the envelope and the listing summary fails to open', async () => {
    const built = await buildObject({ partSizes: [10, 20] });
    const { summary } = parseSealedManifest(built.sealed);
    const envelopeEnd = 12 + built.sealed.readUInt32BE(8);
    const summaryStart = envelopeEnd + 16 + 4;
    for (let at = 0; at < built.sealed.length; at += 1) {
      if (at >= 12 && at < envelopeEnd) continue; // the envelope is authenticated by the KMS / keyring
      if (at >= summaryStart && at < summaryStart + summary.length) continue; // sealed on its own, below
      const copy = Buffer.from(built.sealed);
      copy[at] = (copy[at] as number) ^ 0x01;
      expect(() => openManifest(copy, built.dataKey, built.place)).toThrow(IntegrityError);
    }
  });

  test('the listing summary opens under the coffer key for its place only; any byte changed fails', async () => {
    const built = await buildObject({ partSizes: [10, 20] });
    const { summary, objectId } = parseSealedManifest(built.sealed);
    expect(openListingSummary(built.cofferKey, built.place.coffer, built.place.key, objectId, summary)).toEqual({ size: 30, etag: objectEtag(built.manifest), created: built.manifest.attributes.created });
    for (let at = 0; at < summary.length; at += 1) {
      const copy = Buffer.from(summary);
      copy[at] = (copy[at] as number) ^ 0x80;
      expect(() => openListingSummary(built.cofferKey, built.place.coffer, built.place.key, objectId, copy)).toThrow(expect.objectContaining({ reason: 'listing-summary-rejected' }));
    }
    expect(() => openListingSummary(built.cofferKey, built.place.coffer, 'a/c', objectId, summary)).toThrow(IntegrityError);
    expect(() => openListingSummary(built.cofferKey, 'other-1250000000', built.place.key, objectId, summary)).toThrow(IntegrityError);
    expect(() => openListingSummary(built.cofferKey, built.place.coffer, built.place.key, randomBytes(16), summary)).toThrow(IntegrityError);
    expect(() => openListingSummary(randomBytes(32), built.place.coffer, built.place.key, objectId, summary)).toThrow(IntegrityError);
  });

  test('bound to its place: the same bytes do not open for another key or coffer', async () => {
    const built = await buildObject({ partSizes: [10] });
    expect(() => openManifest(built.sealed, built.dataKey, { ...built.place, key: 'a/c' })).toThrow(expect.objectContaining({ reason: 'manifest-authentication-failed' }));
    expect(() => openManifest(built.sealed, built.dataKey, { ...built.place, coffer: 'other-1250000000' })).toThrow(IntegrityError);
  });

  test('a different data key fails', async () => {
    const built = await buildObject({ partSizes: [10] });
    expect(() => openManifest(built.sealed, randomBytes(32), built.place)).toThrow(expect.objectContaining({ reason: 'manifest-authentication-failed' }));
  });

  test('rewrap replaces only the envelope; everything else stays byte-identical and valid', async () => {
    const built = await buildObject({ partSizes: [10, 20] });
    const rewrapped = replaceEnvelope(built.sealed, { ...built.envelope, keyId: 'rotated', wrappedKey: randomBytes(184) });
    expect(parseSealedManifest(rewrapped).envelope.keyId).toBe('rotated');
    const tail = (bytes: Buffer): Buffer => bytes.subarray(12 + bytes.readUInt32BE(8));
    expect(tail(rewrapped).equals(tail(built.sealed))).toBe(true);
    expect(openManifest(rewrapped, built.dataKey, built.place)).toEqual(built.manifest);
  });

  test('truncated or extended manifests are rejected', async () => {
    const built = await buildObject({ partSizes: [10] });
    expect(() => openManifest(built.sealed.subarray(0, built.sealed.length - 1), built.dataKey, built.place)).toThrow(IntegrityError);
    expect(() => openManifest(Buffer.concat([built.sealed, Buffer.from([0])]), built.dataKey, built.place)).toThrow(IntegrityError);
    const version3 = Buffer.from(built.sealed);
    version3[4] = 3;
    expect(() => openManifest(version3, built.dataKey, built.place)).toThrow(expect.objectContaining({ reason: 'unsupported-version' }));
  });
});

describe('object manifest, format v1 (still read)', () => {
  test('opens, agrees with the reference parser, and peeks without a key (listings of v1 objects)', async () => {
    const built = await buildObject({ partSizes: [70000, 5, 0, 131072], partNumbers: [1, 2, 9, 10000] });
    expect(openManifest(built.sealedV1, built.dataKey, built.place)).toEqual(built.manifest);
    expect(peekManifestV1(built.sealedV1)).toEqual(built.manifest);
    const reference = referenceOpenManifest(built.dataKey, built.sealedV1);
    expect(reference.parts.map((p) => [p.partNumber, p.plaintextLength, p.offset])).toEqual(built.manifest.parts.map((p) => [p.partNumber, p.plaintextLength, p.offset]));
    expect(() => peekManifestV1(built.sealed)).toThrow(IntegrityError);
  });

  test('every single-byte change of header, body or MAC is detected', async () => {
    const built = await buildObject({ partSizes: [10, 20] });
    const envelopeEnd = 12 + built.sealedV1.readUInt32BE(8);
    for (let at = 0; at < built.sealedV1.length; at += 1) {
      if (at >= 12 && at < envelopeEnd) continue;
      const copy = Buffer.from(built.sealedV1);
      copy[at] = (copy[at] as number) ^ 0x01;
      expect(() => openManifest(copy, built.dataKey, built.place)).toThrow(IntegrityError);
    }
  });

  test('rewrap of a v1 manifest keeps it v1 and valid', async () => {
    const built = await buildObject({ partSizes: [10, 20] });
    const rewrapped = replaceEnvelope(built.sealedV1, { ...built.envelope, keyId: 'rotated' });
    expect(parseSealedManifest(rewrapped)).toMatchObject({ version: 1 });
    expect(openManifest(rewrapped, built.dataKey, built.place)).toEqual(built.manifest);
  });
});

describe('manifest rules shared by both versions', () => {
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
