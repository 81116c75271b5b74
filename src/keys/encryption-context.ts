/**
 * Canonical byte encoding of an encryption context. The local keyring authenticates it as GCM AAD and the
 * data-key cache uses it as part of its lookup key, so it must be injective: two different contexts never
 * encode to the same bytes. Length prefixes make it unambiguous; sorting makes it order-independent.
 *
 * Format (documented in the key-blob spec, must not change): for each (k, v) sorted by the UTF-8 bytes of
 * k, `u16be byteLength(k) ‖ k ‖ u16be byteLength(v) ‖ v`. The empty context encodes to zero bytes.
 */
import { GatewayError } from '../errors/gateway-error';
import type { EncryptionContext } from './key-provider';

const MAX_FIELD_BYTES = 0xffff;

function utf8(value: string, what: string): Buffer {
  const bytes = Buffer.from(value, 'utf8');
  // Lone surrogates encode as U+FFFD, which would make two distinct strings collide; reject them so the
  // encoding stays injective (and so KMS and the local keyring see the same thing).
  if (bytes.toString('utf8') !== value) {
    throw new GatewayError('KMSFailed', `The encryption context ${what} is not well-formed Unicode.`, { reason: 'invalid-context' });
  }
  if (bytes.length > MAX_FIELD_BYTES) {
    throw new GatewayError('KMSFailed', `An encryption context ${what} is longer than 65535 bytes.`, { reason: 'invalid-context' });
  }
  return bytes;
}

export function canonicalContext(context: EncryptionContext): Buffer {
  const entries: Array<[Buffer, Buffer]> = [];
  for (const [key, value] of Object.entries(context)) {
    if (typeof value !== 'string') {
      throw new GatewayError('KMSFailed', 'Encryption context values must be strings.', { reason: 'invalid-context' });
    }
    entries.push([utf8(key, 'key'), utf8(value, 'value')]);
  }
  // Buffer.compare orders by unsigned bytes, i.e. UTF-8 byte order (which differs from JS string order
  // for characters outside the BMP).
  entries.sort((a, b) => Buffer.compare(a[0], b[0]));
  const parts: Buffer[] = [];
  for (const [key, value] of entries) {
    const keyLength = Buffer.alloc(2);
    keyLength.writeUInt16BE(key.length);
    const valueLength = Buffer.alloc(2);
    valueLength.writeUInt16BE(value.length);
    parts.push(keyLength, key, valueLength, value);
  }
  return Buffer.concat(parts);
}
