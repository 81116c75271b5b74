/**
 * The object manifest (docs/FORMAT.md §6): the authenticated record of a completed object's part
 * layout, written once at Complete/PutObject. It is what detects a removed, reordered, duplicated
 * or substituted part and a truncated object — things no per-part check can see.
 *
 * Version 2 (written): a key envelope (the wrapped data key; outside the AEAD, because key rotation
 * replaces it and the KMS/keyring authenticates it on its own), the object id, a listing summary
 * sealed under the coffer key (listing-summary.ts), and the body — part table with MD5s, attributes —
 * encrypted and authenticated with AES-256-GCM under a key derived from the data key and bound to
 * coffer, object key and object id. Nothing in it is readable without a key but the envelope, the
 * object id and lengths.
 *
 * Version 1 (still read): the same envelope and body, the body in the clear under an HMAC-SHA256.
 * Pure byte-level code, no I/O.
 */
import { createHash, createHmac, hkdfSync, timingSafeEqual } from 'node:crypto';
import { IntegrityError } from './integrity-error';
import { SEALED_OVERHEAD, bindingOf, deriveRecordKey, openRecord, sealRecord } from './sealed-record';
import { DATA_KEY_SIZE, MAX_PART_NUMBER, OBJECT_ID_SIZE, SALT_SIZE, partCiphertextLength } from './part-format';

export const MANIFEST_MAGIC = Buffer.from('CFGM', 'ascii');
const MANIFEST_MAC_LABEL = Buffer.from('coffer-gateway/v1 manifest mac', 'ascii');
export const MANIFEST_V1 = 1;
export const MANIFEST_V2 = 2;
export const MANIFEST_BODY_LABEL = 'coffer-gateway/v2 manifest';
/** Largest sealed listing summary a v2 manifest may carry. */
export const MAX_SUMMARY_SIZE = 1024;
const MAC_SIZE = 32;
const MD5_SIZE = 16;
const PART_ENTRY_SIZE = 4 + 8 + 8 + SALT_SIZE + MD5_SIZE; // 68
const BODY_FIXED_SIZE = OBJECT_ID_SIZE + 4 + 8 + 8 + 4 + 4; // 44
/** Largest envelope (UTF-8 JSON) a reader accepts; a larger one is rejected before it is parsed. */
export const MAX_ENVELOPE_SIZE = 16 * 1024;
const MAX_ATTRIBUTES_SIZE = 64 * 1024;

/** Largest valid stored manifest: 10000 part entries, 64 KiB of attributes, a 16 KiB envelope, framing. */
export const MAX_MANIFEST_BYTES = 36 + MAX_ENVELOPE_SIZE + MAX_SUMMARY_SIZE + SEALED_OVERHEAD + BODY_FIXED_SIZE + MAX_ATTRIBUTES_SIZE + PART_ENTRY_SIZE * MAX_PART_NUMBER;

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
  /**
   * The S3 additional checksum of the object, base64 as S3 answers it. A single PUT: the one the
   * client sent and the gateway verified over the plaintext (`x-amz-checksum-<algorithm>`, header or
   * aws-chunked trailer). A multipart object whose upload declared an algorithm: computed at Complete
   * from the verified part checksums — `type` COMPOSITE (the checksum of the concatenated part
   * checksums, value suffixed `-<parts>`) or FULL_OBJECT (the CRC of the whole plaintext, combined).
   * `type` absent means FULL_OBJECT. Absent for objects written without one.
   */
  readonly checksum?: { readonly algorithm: 'CRC32' | 'CRC32C' | 'CRC64NVME' | 'SHA1' | 'SHA256'; readonly value: string; readonly type?: 'COMPOSITE' | 'FULL_OBJECT' };
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

/** Where a manifest belongs: the coffer (full name, with APPID) and the object key. */
export interface ManifestPlace {
  readonly coffer: string;
  readonly key: string;
}

/** A stored manifest split without any key: what a reader needs to find the key that opens it. */
export interface SealedManifest {
  readonly version: 1 | 2;
  readonly envelope: KeyEnvelope;
  readonly objectId: Buffer;
  /** v2: the listing summary sealed under the coffer key (empty in v1). */
  readonly summary: Buffer;
  /** v1: the clear body; v2: nonce ‖ ciphertext ‖ tag of the body. */
  readonly body: Buffer;
  /** v1 only: the HMAC. */
  readonly mac: Buffer;
}

function manifestMacKey(dataKey: Buffer, objectId: Buffer): Buffer {
  if (dataKey.length !== DATA_KEY_SIZE) throw new RangeError('data key must be 32 bytes');
  return Buffer.from(hkdfSync('sha256', dataKey, objectId, MANIFEST_MAC_LABEL, 32));
}

function fileHeader(version: 1 | 2): Buffer {
  return Buffer.from([...MANIFEST_MAGIC, version, 0, 0, 0]);
}

function computeMac(dataKey: Buffer, objectId: Buffer, body: Buffer): Buffer {
  const key = manifestMacKey(dataKey, objectId);
  const length = Buffer.alloc(4);
  length.writeUInt32BE(body.length);
  const mac = createHmac('sha256', key).update(fileHeader(MANIFEST_V1)).update(length).update(body).digest();
  key.fill(0);
  return mac;
}

/** The v2 body's associated data: the file header and the manifest's place. */
function bodyBinding(place: ManifestPlace, objectId: Buffer): Buffer {
  return Buffer.concat([fileHeader(MANIFEST_V2), bindingOf(MANIFEST_BODY_LABEL, [place.coffer, place.key, objectId])]);
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
  const bytes = Buffer.from(envelopeJson(envelope), 'utf8');
  if (bytes.length > MAX_ENVELOPE_SIZE) throw new RangeError('envelope too large');
  return bytes;
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

function u32(value: number): Buffer {
  const out = Buffer.alloc(4);
  out.writeUInt32BE(value);
  return out;
}

/**
 * Serialises a format v2 manifest: the body encrypted and authenticated under
 * HKDF(DK, salt = objectId, info = "coffer-gateway/v2 manifest"), bound to `place`; `summary` is the
 * listing summary already sealed under the coffer key.
 */
export function sealManifest(manifest: ObjectManifest, envelope: KeyEnvelope, dataKey: Buffer, place: ManifestPlace, summary: Buffer, nonce?: Buffer): Buffer {
  if (summary.length > MAX_SUMMARY_SIZE) throw new RangeError('listing summary too large');
  const body = encodeBody(manifest);
  const key = deriveRecordKey(dataKey, manifest.objectId, MANIFEST_BODY_LABEL);
  const sealedBody = sealRecord(key, bodyBinding(place, manifest.objectId), body, nonce);
  key.fill(0);
  body.fill(0);
  const envelopeBytes = encodeEnvelope(envelope);
  return Buffer.concat([fileHeader(MANIFEST_V2), u32(envelopeBytes.length), envelopeBytes, manifest.objectId, u32(summary.length), summary, u32(sealedBody.length), sealedBody]);
}

/** Serialises and authenticates a format v1 manifest (clear body, HMAC). Only for v1 test vectors: the gateway writes v2. */
export function sealManifestV1(manifest: ObjectManifest, envelope: KeyEnvelope, dataKey: Buffer): Buffer {
  const body = encodeBody(manifest);
  const envelopeBytes = encodeEnvelope(envelope);
  return Buffer.concat([fileHeader(MANIFEST_V1), u32(envelopeBytes.length), envelopeBytes, u32(body.length), body, computeMac(dataKey, manifest.objectId, body)]);
}

/** Splits a stored manifest (v1 or v2) without any key; checks only its framing. */
export function parseSealedManifest(bytes: Buffer): SealedManifest {
  if (bytes.length < 16) throw new IntegrityError('truncated', 'manifest is truncated');
  if (!bytes.subarray(0, 4).equals(MANIFEST_MAGIC)) throw new IntegrityError('bad-magic', 'not a coffer-gateway manifest');
  const version = bytes[4];
  if (version !== MANIFEST_V1 && version !== MANIFEST_V2) throw new IntegrityError('unsupported-version', `unsupported manifest version ${version}`);
  if (bytes[5] !== 0 || bytes[6] !== 0 || bytes[7] !== 0) throw new IntegrityError('malformed', 'manifest reserved bytes set');
  const envelopeLength = bytes.readUInt32BE(8);
  if (envelopeLength > MAX_ENVELOPE_SIZE || 12 + envelopeLength + 4 > bytes.length) throw new IntegrityError('malformed', 'manifest envelope length out of range');
  const envelope = decodeEnvelope(bytes.subarray(12, 12 + envelopeLength));
  let at = 12 + envelopeLength;
  if (version === MANIFEST_V1) {
    const bodyLength = bytes.readUInt32BE(at);
    const bodyStart = at + 4;
    if (bodyLength < BODY_FIXED_SIZE || bodyStart + bodyLength + MAC_SIZE !== bytes.length) throw new IntegrityError('length-mismatch', 'manifest length does not add up');
    const body = bytes.subarray(bodyStart, bodyStart + bodyLength);
    return { version, envelope, objectId: Buffer.from(body.subarray(0, OBJECT_ID_SIZE)), summary: Buffer.alloc(0), body, mac: bytes.subarray(bodyStart + bodyLength) };
  }
  const need = (length: number): void => {
    if (at + length > bytes.length) throw new IntegrityError('length-mismatch', 'manifest length does not add up');
  };
  need(OBJECT_ID_SIZE + 4);
  const objectId = Buffer.from(bytes.subarray(at, at + OBJECT_ID_SIZE));
  at += OBJECT_ID_SIZE;
  const summaryLength = bytes.readUInt32BE(at);
  at += 4;
  if (summaryLength > MAX_SUMMARY_SIZE) throw new IntegrityError('malformed', 'manifest listing summary too large');
  need(summaryLength + 4);
  const summary = bytes.subarray(at, at + summaryLength);
  at += summaryLength;
  const bodyLength = bytes.readUInt32BE(at);
  at += 4;
  if (bodyLength < SEALED_OVERHEAD + BODY_FIXED_SIZE || at + bodyLength !== bytes.length) throw new IntegrityError('length-mismatch', 'manifest length does not add up');
  return { version, envelope, objectId, summary, body: bytes.subarray(at), mac: Buffer.alloc(0) };
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

/**
 * Authenticates a stored manifest (v1: MAC; v2: AEAD bound to `place`) with the unwrapped data key and
 * decodes its body. Any failure is an IntegrityError; nothing of an unauthenticated body is returned.
 */
export function openManifest(bytes: Buffer, dataKey: Buffer, place: ManifestPlace): ObjectManifest {
  const sealed = parseSealedManifest(bytes);
  if (sealed.version === MANIFEST_V1) {
    const expected = computeMac(dataKey, sealed.objectId, sealed.body);
    if (!timingSafeEqual(expected, sealed.mac)) {
      throw new IntegrityError('manifest-authentication-failed', 'manifest failed authentication: altered, or a different data key');
    }
    return decodeBody(sealed.body, sealed.objectId);
  }
  const key = deriveRecordKey(dataKey, sealed.objectId, MANIFEST_BODY_LABEL);
  let body: Buffer;
  try {
    body = openRecord(key, bodyBinding(place, sealed.objectId), sealed.body, 'manifest-authentication-failed', 'the manifest');
  } finally {
    key.fill(0);
  }
  if (!body.subarray(0, OBJECT_ID_SIZE).equals(sealed.objectId)) throw new IntegrityError('malformed', 'manifest body names another object id');
  return decodeBody(body, sealed.objectId);
}

/**
 * Decodes a format v1 manifest WITHOUT verifying its MAC (no data key, so no KMS call): listings of
 * objects written before v2, whose size, ETag and time are therefore as the bucket says (FORMAT §12).
 * v2 listings use the authenticated listing summary instead. No byte served to a client depends on this.
 */
export function peekManifestV1(bytes: Buffer): ObjectManifest {
  const sealed = parseSealedManifest(bytes);
  if (sealed.version !== MANIFEST_V1) throw new IntegrityError('unsupported-version', 'not a v1 manifest');
  return decodeBody(sealed.body, sealed.objectId);
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

/** Replaces the key envelope (key rotation) without touching anything else. */
export function replaceEnvelope(bytes: Buffer, envelope: KeyEnvelope): Buffer {
  parseSealedManifest(bytes);
  const oldLength = bytes.readUInt32BE(8);
  const envelopeBytes = encodeEnvelope(envelope);
  return Buffer.concat([bytes.subarray(0, 8), u32(envelopeBytes.length), envelopeBytes, bytes.subarray(12 + oldLength)]);
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
