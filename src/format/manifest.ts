/**
 * The object manifest (docs/FORMAT.md §6): the authenticated record of a completed object's part
 * layout, written once at Complete/PutObject. It is what detects a removed, reordered, duplicated
 * or substituted part and a truncated object — things no per-part check can see.
 *
 * Two sections: a key envelope (the wrapped data key; NOT covered by the MAC, because key rotation
 * replaces it and the KMS/keyring authenticates it on its own) and the body, covered by an
 * HMAC-SHA256 under a key derived from the data key. Pure byte-level code, no I/O.
 */
import { createHash, createHmac, hkdfSync, timingSafeEqual } from 'node:crypto';
import { IntegrityError } from './integrity-error';
import {
  DATA_KEY_SIZE,
  FORMAT_VERSION,
  MAX_PART_NUMBER,
  OBJECT_ID_SIZE,
  SALT_SIZE,
  partCiphertextLength,
} from './part-format';

export const MANIFEST_MAGIC = Buffer.from('CFGM', 'ascii');
const MANIFEST_MAC_LABEL = Buffer.from('coffer-gateway/v1 manifest mac', 'ascii');
const MAC_SIZE = 32;
const MD5_SIZE = 16;
const PART_ENTRY_SIZE = 4 + 8 + 8 + SALT_SIZE + MD5_SIZE; // 68
const BODY_FIXED_SIZE = OBJECT_ID_SIZE + 4 + 8 + 8 + 4 + 4; // 44
/** Largest envelope (UTF-8 JSON) a reader accepts; a larger one is rejected before it is parsed. */
export const MAX_ENVELOPE_SIZE = 16 * 1024;
const MAX_ATTRIBUTES_SIZE = 64 * 1024;

/** Largest valid stored manifest: 10000 part entries, 64 KiB of attributes, a 16 KiB envelope, framing. */
export const MAX_MANIFEST_BYTES = 16 + MAX_ENVELOPE_SIZE + BODY_FIXED_SIZE + MAX_ATTRIBUTES_SIZE + PART_ENTRY_SIZE * MAX_PART_NUMBER + MAC_SIZE;

export type ObjectKind = 'single' | 'multipart';

export interface ManifestPart {
  readonly partNumber: number;
  readonly plaintextLength: number;
  /** Where the part's ciphertext (header first) starts in the data object. */
  readonly offset: number;
  /** The part upload's salt: binds the manifest to exactly one upload of this part number. */
  readonly salt: Buffer;
  /** MD5 of the part's plaintext, as the client saw it in the part ETag. */
  readonly md5: Buffer;
}

export interface ObjectAttributes {
  readonly contentType?: string;
  readonly metadata: Readonly<Record<string, string>>;
  /** ISO-8601 time the object was completed. */
  readonly created: string;
}

export interface ObjectManifest {
  readonly objectId: Buffer;
  readonly kind: ObjectKind;
  readonly plaintextSize: number;
  /** Exact length of the upstream data object. */
  readonly ciphertextSize: number;
  readonly attributes: ObjectAttributes;
  readonly parts: readonly ManifestPart[];
}

export interface KeyEnvelope {
  readonly provider: string;
  readonly keyId: string;
  readonly wrappedKey: Buffer;
  /** The KMS encryption context the key was wrapped with; informative — readers rebuild it from the request. */
  readonly context: Readonly<Record<string, string>>;
}

export interface SealedManifest {
  readonly envelope: KeyEnvelope;
  /** The MAC-covered body, still unverified. */
  readonly body: Buffer;
  readonly mac: Buffer;
}

function manifestMacKey(dataKey: Buffer, objectId: Buffer): Buffer {
  if (dataKey.length !== DATA_KEY_SIZE) throw new RangeError('data key must be 32 bytes');
  return Buffer.from(hkdfSync('sha256', dataKey, objectId, MANIFEST_MAC_LABEL, 32));
}

function fileHeader(): Buffer {
  return Buffer.from([...MANIFEST_MAGIC, FORMAT_VERSION, 0, 0, 0]);
}

function computeMac(dataKey: Buffer, objectId: Buffer, body: Buffer): Buffer {
  const key = manifestMacKey(dataKey, objectId);
  const length = Buffer.alloc(4);
  length.writeUInt32BE(body.length);
  const mac = createHmac('sha256', key).update(fileHeader()).update(length).update(body).digest();
  key.fill(0);
  return mac;
}

/** The envelope as JSON text (FORMAT §6): wrappedKey in standard base64 with padding. */
export function envelopeJson(envelope: KeyEnvelope): string {
  return JSON.stringify({
    provider: envelope.provider,
    keyId: envelope.keyId,
    wrappedKey: envelope.wrappedKey.toString('base64'),
    context: envelope.context,
  });
}

function encodeEnvelope(envelope: KeyEnvelope): Buffer {
  return Buffer.from(envelopeJson(envelope), 'utf8');
}

function encodeBody(manifest: ObjectManifest): Buffer {
  validateManifest(manifest);
  const attributes = Buffer.from(JSON.stringify(manifest.attributes), 'utf8');
  if (attributes.length > MAX_ATTRIBUTES_SIZE) throw new RangeError('object attributes too large');
  const body = Buffer.alloc(BODY_FIXED_SIZE + attributes.length + PART_ENTRY_SIZE * manifest.parts.length);
  let at = manifest.objectId.copy(body, 0);
  body[at] = manifest.kind === 'single' ? 1 : 2;
  at += 4; // kind + 3 reserved bytes
  body.writeBigUInt64BE(BigInt(manifest.plaintextSize), at);
  body.writeBigUInt64BE(BigInt(manifest.ciphertextSize), at + 8);
  body.writeUInt32BE(manifest.parts.length, at + 16);
  body.writeUInt32BE(attributes.length, at + 20);
  at += 24;
  at += attributes.copy(body, at);
  for (const part of manifest.parts) {
    body.writeUInt32BE(part.partNumber, at);
    body.writeBigUInt64BE(BigInt(part.plaintextLength), at + 4);
    body.writeBigUInt64BE(BigInt(part.offset), at + 12);
    part.salt.copy(body, at + 20);
    part.md5.copy(body, at + 52);
    at += PART_ENTRY_SIZE;
  }
  return body;
}

/** Serialises and authenticates a manifest. */
export function sealManifest(manifest: ObjectManifest, envelope: KeyEnvelope, dataKey: Buffer): Buffer {
  const body = encodeBody(manifest);
  const envelopeBytes = encodeEnvelope(envelope);
  const out = Buffer.alloc(8 + 4 + envelopeBytes.length + 4 + body.length + MAC_SIZE);
  let at = fileHeader().copy(out, 0);
  out.writeUInt32BE(envelopeBytes.length, at);
  at += 4 + envelopeBytes.copy(out, at + 4);
  out.writeUInt32BE(body.length, at);
  at += 4 + body.copy(out, at + 4);
  computeMac(dataKey, manifest.objectId, body).copy(out, at);
  return out;
}

/** Splits a stored manifest into its envelope, body and MAC without any key (the key is in the envelope). */
export function parseSealedManifest(bytes: Buffer): SealedManifest {
  if (bytes.length < 8 + 4 + 4 + BODY_FIXED_SIZE + MAC_SIZE) throw new IntegrityError('truncated', 'manifest is truncated');
  if (!bytes.subarray(0, 4).equals(MANIFEST_MAGIC)) throw new IntegrityError('bad-magic', 'not a coffer-gateway manifest');
  if (bytes[4] !== FORMAT_VERSION) throw new IntegrityError('unsupported-version', `unsupported manifest version ${bytes[4]}`);
  if (bytes[5] !== 0 || bytes[6] !== 0 || bytes[7] !== 0) throw new IntegrityError('malformed', 'manifest reserved bytes set');
  const envelopeLength = bytes.readUInt32BE(8);
  if (envelopeLength > MAX_ENVELOPE_SIZE || 12 + envelopeLength + 4 > bytes.length) throw new IntegrityError('malformed', 'manifest envelope length out of range');
  const envelope = decodeEnvelope(bytes.subarray(12, 12 + envelopeLength));
  const bodyLength = bytes.readUInt32BE(12 + envelopeLength);
  const bodyStart = 16 + envelopeLength;
  if (bodyStart + bodyLength + MAC_SIZE !== bytes.length) throw new IntegrityError('length-mismatch', 'manifest length does not add up');
  return {
    envelope,
    body: bytes.subarray(bodyStart, bodyStart + bodyLength),
    mac: bytes.subarray(bodyStart + bodyLength),
  };
}

function decodeEnvelope(bytes: Buffer): KeyEnvelope {
  let value: unknown;
  try {
    value = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw new IntegrityError('malformed', 'manifest envelope is not JSON');
  }
  return decodeEnvelopeJson(value);
}

/** Checks the shape of a parsed envelope (manifest or upload record). */
export function decodeEnvelopeJson(value: unknown): KeyEnvelope {
  const record = (value ?? {}) as Record<string, unknown>;
  const context = record['context'];
  if (
    typeof record['provider'] !== 'string' ||
    typeof record['keyId'] !== 'string' ||
    typeof record['wrappedKey'] !== 'string' ||
    typeof context !== 'object' ||
    context === null ||
    Object.values(context).some((v) => typeof v !== 'string')
  ) {
    throw new IntegrityError('malformed', 'envelope fields missing');
  }
  return {
    provider: record['provider'],
    keyId: record['keyId'],
    wrappedKey: Buffer.from(record['wrappedKey'], 'base64'),
    context: context as Record<string, string>,
  };
}

/** Verifies the MAC with the unwrapped data key and decodes the body. */
export function openManifest(bytes: Buffer, dataKey: Buffer): ObjectManifest {
  const sealed = parseSealedManifest(bytes);
  if (sealed.body.length < BODY_FIXED_SIZE) throw new IntegrityError('malformed', 'manifest body is truncated');
  const objectId = Buffer.from(sealed.body.subarray(0, OBJECT_ID_SIZE));
  const expected = computeMac(dataKey, objectId, sealed.body);
  if (!timingSafeEqual(expected, sealed.mac)) {
    throw new IntegrityError('manifest-authentication-failed', 'manifest failed authentication: altered, or a different data key');
  }
  return decodeBody(sealed.body, objectId);
}

/**
 * Decodes a stored manifest WITHOUT verifying its MAC (no data key, so no KMS call). Only for
 * listings, which report sizes and ETags as recorded: anyone who can write the bucket can also
 * delete or rename objects, so a listing cannot be authenticated anyway. Every read opens the
 * manifest with {@link openManifest}, so no byte served to a client depends on this.
 */
export function peekManifest(bytes: Buffer): ObjectManifest {
  const sealed = parseSealedManifest(bytes);
  if (sealed.body.length < BODY_FIXED_SIZE) throw new IntegrityError('malformed', 'manifest body is truncated');
  return decodeBody(sealed.body, Buffer.from(sealed.body.subarray(0, OBJECT_ID_SIZE)));
}

function decodeBody(body: Buffer, objectId: Buffer): ObjectManifest {
  const kindByte = body[16];
  if ((kindByte !== 1 && kindByte !== 2) || body[17] !== 0 || body[18] !== 0 || body[19] !== 0) {
    throw new IntegrityError('malformed', 'manifest object kind invalid');
  }
  const plaintextSize = Number(body.readBigUInt64BE(20));
  const ciphertextSize = Number(body.readBigUInt64BE(28));
  const partCount = body.readUInt32BE(36);
  const attributesLength = body.readUInt32BE(40);
  if (BODY_FIXED_SIZE + attributesLength + PART_ENTRY_SIZE * partCount !== body.length) {
    throw new IntegrityError('length-mismatch', 'manifest body length does not add up');
  }
  let attributes: ObjectAttributes;
  try {
    attributes = JSON.parse(body.subarray(44, 44 + attributesLength).toString('utf8')) as ObjectAttributes;
  } catch {
    throw new IntegrityError('malformed', 'manifest attributes are not JSON');
  }
  const parts: ManifestPart[] = [];
  let at = 44 + attributesLength;
  for (let i = 0; i < partCount; i += 1) {
    parts.push({
      partNumber: body.readUInt32BE(at),
      plaintextLength: Number(body.readBigUInt64BE(at + 4)),
      offset: Number(body.readBigUInt64BE(at + 12)),
      salt: Buffer.from(body.subarray(at + 20, at + 52)),
      md5: Buffer.from(body.subarray(at + 52, at + 68)),
    });
    at += PART_ENTRY_SIZE;
  }
  const manifest: ObjectManifest = { objectId, kind: kindByte === 1 ? 'single' : 'multipart', plaintextSize, ciphertextSize, attributes, parts };
  try {
    validateManifest(manifest);
  } catch (error) {
    throw new IntegrityError('malformed', `manifest layout invalid: ${(error as Error).message}`);
  }
  return manifest;
}

/** Replaces the key envelope (key rotation) without touching the authenticated body. */
export function replaceEnvelope(bytes: Buffer, envelope: KeyEnvelope): Buffer {
  const sealed = parseSealedManifest(bytes);
  const envelopeBytes = encodeEnvelope(envelope);
  const lengths = Buffer.alloc(4);
  lengths.writeUInt32BE(envelopeBytes.length);
  const bodyLength = Buffer.alloc(4);
  bodyLength.writeUInt32BE(sealed.body.length);
  return Buffer.concat([fileHeader(), lengths, envelopeBytes, bodyLength, sealed.body, sealed.mac]);
}

/**
 * Structural rules every manifest obeys: 1..10000 parts in ascending part-number order, sizes that
 * add up, and part extents that lie inside the data object without overlapping.
 */
export function validateManifest(manifest: ObjectManifest): void {
  const { parts } = manifest;
  if (manifest.objectId.length !== OBJECT_ID_SIZE) throw new RangeError('objectId must be 16 bytes');
  if (parts.length < 1 || parts.length > MAX_PART_NUMBER) throw new RangeError('an object has 1..10000 parts');
  if (manifest.kind === 'single' && parts.length !== 1) throw new RangeError('a single-PUT object has exactly one part');
  let total = 0;
  let previousNumber = 0;
  const extents: Array<[number, number]> = [];
  for (const part of parts) {
    if (!Number.isInteger(part.partNumber) || part.partNumber <= previousNumber || part.partNumber > MAX_PART_NUMBER) {
      throw new RangeError('part numbers must ascend within 1..10000');
    }
    previousNumber = part.partNumber;
    if (!Number.isSafeInteger(part.plaintextLength) || part.plaintextLength < 0) throw new RangeError('bad part length');
    if (part.salt.length !== SALT_SIZE || part.md5.length !== MD5_SIZE) throw new RangeError('bad part salt or md5');
    const end = part.offset + partCiphertextLength(part.plaintextLength);
    if (!Number.isSafeInteger(part.offset) || part.offset < 0 || end > manifest.ciphertextSize) {
      throw new RangeError('part extent lies outside the data object');
    }
    extents.push([part.offset, end]);
    total += part.plaintextLength;
  }
  if (total !== manifest.plaintextSize) throw new RangeError('part lengths do not add up to the object size');
  extents.sort((a, b) => a[0] - b[0]);
  for (let i = 1; i < extents.length; i += 1) {
    if ((extents[i] as [number, number])[0] < (extents[i - 1] as [number, number])[1]) throw new RangeError('part extents overlap');
  }
}

/** The object's ETag as COS computes it: MD5 of the plaintext for a single PUT, md5(concat(part md5s))-N for multipart. */
export function objectEtag(manifest: Pick<ObjectManifest, 'kind' | 'parts'>): string {
  if (manifest.kind === 'single') return `"${(manifest.parts[0] as ManifestPart).md5.toString('hex')}"`;
  const digest = createHash('md5');
  for (const part of manifest.parts) digest.update(part.md5);
  return `"${digest.digest('hex')}-${manifest.parts.length}"`;
}
