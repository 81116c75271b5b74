/**
 * Per-part key derivation (docs/FORMAT.md §4): HKDF-SHA256 over the object's data key with the
 * part upload's fresh salt, bound to the part's identity through `info`. Output: a one-time
 * AES-256-GCM key and a 32-byte key commitment (the AWS Encryption SDK v2 idea: the header commits
 * to exactly one key, so a ciphertext cannot be made to decrypt under two keys).
 */
import { hkdfSync, timingSafeEqual } from 'node:crypto';
import { IntegrityError } from './integrity-error';
import { DATA_KEY_SIZE, SALT_SIZE, encodeBoundHeader, type PartHeader, type PartIdentity } from './part-format';

const PART_KEY_LABEL = Buffer.from('coffer-gateway/v1 part key', 'ascii');

export interface PartKeys {
  readonly encryptionKey: Buffer;
  readonly commitment: Buffer;
}

export function derivePartKeys(dataKey: Buffer, identity: PartIdentity, salt: Buffer): PartKeys {
  if (dataKey.length !== DATA_KEY_SIZE) throw new RangeError('data key must be 32 bytes');
  if (salt.length !== SALT_SIZE) throw new RangeError('salt must be 32 bytes');
  const info = Buffer.concat([PART_KEY_LABEL, encodeBoundHeader(identity)]);
  const okm = Buffer.from(hkdfSync('sha256', dataKey, salt, info, 64));
  return { encryptionKey: okm.subarray(0, 32), commitment: okm.subarray(32, 64) };
}

/**
 * Checks a stored header against what the reader expects (from the authenticated manifest, or the
 * caller) and against the key commitment, in constant time; returns the part's encryption key.
 */
export function verifyPartHeader(dataKey: Buffer, header: PartHeader, expected?: Partial<PartHeader>): PartKeys {
  if (expected !== undefined) {
    const mismatch =
      (expected.objectId !== undefined && !expected.objectId.equals(header.objectId)) ||
      (expected.partNumber !== undefined && expected.partNumber !== header.partNumber) ||
      (expected.plaintextLength !== undefined && expected.plaintextLength !== header.plaintextLength) ||
      (expected.salt !== undefined && !expected.salt.equals(header.salt));
    if (mismatch) throw new IntegrityError('header-mismatch', 'part header does not match the expected object, part number, length or upload');
  }
  const keys = derivePartKeys(dataKey, header, header.salt);
  if (!timingSafeEqual(keys.commitment, header.commitment)) {
    keys.encryptionKey.fill(0);
    throw new IntegrityError('commitment-mismatch', 'key commitment does not match: wrong data key or altered header');
  }
  return keys;
}
