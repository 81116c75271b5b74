/**
 * The one AEAD construction every v2 bookkeeping record uses (docs/FORMAT.md §11): part records,
 * upload records, the manifest body and listing summaries. A record is sealed with AES-256-GCM under
 * a key derived (HKDF-SHA256) from the data key — or the coffer key — with a label naming the record
 * type, and its associated data binds it to where it belongs (coffer, object key, upload id, part
 * number), so a record moved to another place, another record type or another upload fails to open.
 * Pure byte-level code, no I/O.
 */
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import { IntegrityError, type IntegrityFailure } from './integrity-error';

export const SEALED_NONCE_SIZE = 12;
export const SEALED_TAG_SIZE = 16;
export const SEALED_OVERHEAD = SEALED_NONCE_SIZE + SEALED_TAG_SIZE;
const RECORD_KEY_SIZE = 32;

/** HKDF-SHA256(ikm = rootKey, salt, info = label, L = 32): one key per (root key, record type, salt). */
export function deriveRecordKey(rootKey: Buffer, salt: Buffer, label: string): Buffer {
  if (rootKey.length !== 32) throw new RangeError('root key must be 32 bytes');
  return Buffer.from(hkdfSync('sha256', rootKey, salt, Buffer.from(label, 'ascii'), RECORD_KEY_SIZE));
}

/**
 * Associated data that names a record's place: the label, then each field as u16 length ‖ bytes.
 * Length prefixes keep ("ab","c") and ("a","bc") apart.
 */
export function bindingOf(label: string, fields: ReadonlyArray<string | Buffer>): Buffer {
  const pieces: Buffer[] = [Buffer.from(label, 'ascii')];
  for (const field of fields) {
    const bytes = typeof field === 'string' ? Buffer.from(field, 'utf8') : field;
    if (bytes.length > 0xffff) throw new RangeError('binding field too long');
    const length = Buffer.alloc(2);
    length.writeUInt16BE(bytes.length);
    pieces.push(length, bytes);
  }
  return Buffer.concat(pieces);
}

/** nonce (12 random bytes) ‖ AES-256-GCM(key, nonce, plaintext, aad) ‖ tag (16). */
export function sealRecord(key: Buffer, aad: Buffer, plaintext: Buffer, nonce: Buffer = randomBytes(SEALED_NONCE_SIZE)): Buffer {
  if (nonce.length !== SEALED_NONCE_SIZE) throw new RangeError('nonce must be 12 bytes');
  const cipher = createCipheriv('aes-256-gcm', key, nonce);
  cipher.setAAD(aad);
  const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return Buffer.concat([nonce, ciphertext, cipher.getAuthTag()]);
}

/** Opens what sealRecord made; any alteration, other key or other binding → IntegrityError(`reason`). */
export function openRecord(key: Buffer, aad: Buffer, sealed: Buffer, reason: IntegrityFailure, what: string): Buffer {
  if (sealed.length < SEALED_OVERHEAD) throw new IntegrityError(reason, `${what} is truncated`);
  const decipher = createDecipheriv('aes-256-gcm', key, sealed.subarray(0, SEALED_NONCE_SIZE));
  decipher.setAAD(aad);
  decipher.setAuthTag(sealed.subarray(sealed.length - SEALED_TAG_SIZE));
  const plaintext = decipher.update(sealed.subarray(SEALED_NONCE_SIZE, sealed.length - SEALED_TAG_SIZE));
  try {
    decipher.final();
  } catch {
    plaintext.fill(0);
    throw new IntegrityError(reason, `${what} failed authentication: altered, moved, or sealed under another key`);
  }
  return plaintext;
}
