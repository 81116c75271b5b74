/**
 * The at-rest format of one encrypted part (docs/FORMAT.md §3–§5): a fixed 100-byte header followed
 * by AES-256-GCM segments of 64 KiB plaintext. Pure byte-level code, no I/O.
 */
import { IntegrityError } from './integrity-error';

export const FORMAT_VERSION = 1;
export const PART_MAGIC = Buffer.from('CFGP', 'ascii');
export const SEGMENT_SIZE_LOG2 = 16;
export const SEGMENT_SIZE = 1 << SEGMENT_SIZE_LOG2; // 65536 plaintext bytes per segment
export const TAG_SIZE = 16;
export const SEGMENT_CIPHERTEXT_SIZE = SEGMENT_SIZE + TAG_SIZE; // 65552
export const OBJECT_ID_SIZE = 16;
export const SALT_SIZE = 32;
export const COMMITMENT_SIZE = 32;
export const DATA_KEY_SIZE = 32;
export const NONCE_SIZE = 12;
/** Bytes 0..35 of the header: everything that identifies the part, fed to HKDF as `info`. */
export const PART_HEADER_BOUND_SIZE = 36;
export const PART_HEADER_SIZE = PART_HEADER_BOUND_SIZE + SALT_SIZE + COMMITMENT_SIZE; // 100
export const MIN_PART_NUMBER = 1;
export const MAX_PART_NUMBER = 10000;
/** Largest plaintext part accepted (5 GiB), per the CDCS contract. */
export const MAX_PART_PLAINTEXT = 5 * 1024 ** 3;

export interface PartIdentity {
  /** 16 random bytes minted once per object (multipart upload or single PUT). */
  readonly objectId: Buffer;
  readonly partNumber: number;
  readonly plaintextLength: number;
}

export interface PartHeader extends PartIdentity {
  /** 32 random bytes drawn for every part *upload*, so a re-upload never reuses key and nonce. */
  readonly salt: Buffer;
  /** HKDF-derived key commitment, checked in constant time before any segment is decrypted. */
  readonly commitment: Buffer;
}

export function assertPartIdentity(identity: PartIdentity): void {
  if (identity.objectId.length !== OBJECT_ID_SIZE) throw new RangeError('objectId must be 16 bytes');
  if (!Number.isInteger(identity.partNumber) || identity.partNumber < 0 || identity.partNumber > 0xffffffff) {
    throw new RangeError('partNumber must be an unsigned 32-bit integer');
  }
  if (!Number.isSafeInteger(identity.plaintextLength) || identity.plaintextLength < 0) {
    throw new RangeError('plaintextLength must be a non-negative safe integer');
  }
}

/** Number of segments of a part: an empty part still has one (empty, final) segment so it is authenticated. */
export function segmentCount(plaintextLength: number): number {
  return Math.max(1, Math.ceil(plaintextLength / SEGMENT_SIZE));
}

/** C(P) = 100 + P + 16·max(1, ⌈P / 65536⌉) — strictly increasing, so exactly invertible. */
export function partCiphertextLength(plaintextLength: number): number {
  return PART_HEADER_SIZE + plaintextLength + TAG_SIZE * segmentCount(plaintextLength);
}

/** Inverse of partCiphertextLength; throws on a length no plaintext length maps to. */
export function partPlaintextLength(ciphertextLength: number): number {
  const body = ciphertextLength - PART_HEADER_SIZE;
  if (!Number.isSafeInteger(ciphertextLength) || body < TAG_SIZE) {
    throw new IntegrityError('length-mismatch', `no part has ciphertext length ${ciphertextLength}`);
  }
  const segments = Math.max(1, Math.ceil(body / SEGMENT_CIPHERTEXT_SIZE));
  const plaintext = body - TAG_SIZE * segments;
  if (plaintext < 0 || partCiphertextLength(plaintext) !== ciphertextLength) {
    throw new IntegrityError('length-mismatch', `no part has ciphertext length ${ciphertextLength}`);
  }
  return plaintext;
}

/** Plaintext bytes in segment `index` of a part of `plaintextLength` bytes. */
export function segmentPlaintextLength(plaintextLength: number, index: number): number {
  const count = segmentCount(plaintextLength);
  if (index < 0 || index >= count) throw new RangeError(`segment ${index} outside 0..${count - 1}`);
  return index < count - 1 ? SEGMENT_SIZE : plaintextLength - SEGMENT_SIZE * (count - 1);
}

/** Offset of segment `index` from the start of the part's ciphertext (header included). */
export function segmentCiphertextOffset(index: number): number {
  return PART_HEADER_SIZE + index * SEGMENT_CIPHERTEXT_SIZE;
}

/** Nonce of segment `index`: 7 zero bytes ‖ u32be index ‖ final flag (0x01 on the last segment, else 0x00). */
export function segmentNonce(index: number, final: boolean): Buffer {
  if (!Number.isInteger(index) || index < 0 || index > 0xffffffff) throw new RangeError('segment index out of range');
  const nonce = Buffer.alloc(NONCE_SIZE);
  nonce.writeUInt32BE(index, 7);
  nonce[11] = final ? 1 : 0;
  return nonce;
}

/** The 36 header bytes that bind the part's identity (magic, version, segment size, object, number, length). */
export function encodeBoundHeader(identity: PartIdentity): Buffer {
  assertPartIdentity(identity);
  const bound = Buffer.alloc(PART_HEADER_BOUND_SIZE);
  PART_MAGIC.copy(bound, 0);
  bound[4] = FORMAT_VERSION;
  bound[5] = SEGMENT_SIZE_LOG2;
  // bytes 6..7 reserved, zero
  identity.objectId.copy(bound, 8);
  bound.writeUInt32BE(identity.partNumber, 24);
  bound.writeBigUInt64BE(BigInt(identity.plaintextLength), 28);
  return bound;
}

export function encodePartHeader(header: PartHeader): Buffer {
  if (header.salt.length !== SALT_SIZE) throw new RangeError('salt must be 32 bytes');
  if (header.commitment.length !== COMMITMENT_SIZE) throw new RangeError('commitment must be 32 bytes');
  return Buffer.concat([encodeBoundHeader(header), header.salt, header.commitment], PART_HEADER_SIZE);
}

export function decodePartHeader(bytes: Buffer): PartHeader {
  if (bytes.length < PART_HEADER_SIZE) throw new IntegrityError('truncated', 'part header is truncated');
  if (!bytes.subarray(0, 4).equals(PART_MAGIC)) throw new IntegrityError('bad-magic', 'not a coffer-gateway part');
  if (bytes[4] !== FORMAT_VERSION) throw new IntegrityError('unsupported-version', `unsupported part version ${bytes[4]}`);
  if (bytes[5] !== SEGMENT_SIZE_LOG2 || bytes[6] !== 0 || bytes[7] !== 0) {
    throw new IntegrityError('malformed', 'unsupported segment size or reserved bits set');
  }
  const plaintextLength = bytes.readBigUInt64BE(28);
  if (plaintextLength > BigInt(Number.MAX_SAFE_INTEGER)) throw new IntegrityError('malformed', 'part length out of range');
  return {
    objectId: Buffer.from(bytes.subarray(8, 24)),
    partNumber: bytes.readUInt32BE(24),
    plaintextLength: Number(plaintextLength),
    salt: Buffer.from(bytes.subarray(36, 68)),
    commitment: Buffer.from(bytes.subarray(68, 100)),
  };
}
