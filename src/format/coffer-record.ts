/**
 * Sealed coffer records (docs/FORMAT.md §8.7): small per-coffer settings the gateway keeps in the
 * coffer's upstream bucket so every replica sees them — the lifecycle configuration today — sealed
 * under the coffer key (§8.6) so a writer of the bucket who cannot use the coffer's KMS key cannot
 * forge or alter one. Each kind has its own label (key derivation and associated data), and the
 * associated data names the coffer, so a record moved to another coffer or another kind fails.
 *
 * stored = salt (16) ‖ nonce (12) ‖ AES-256-GCM(record key, nonce, UTF-8 JSON, aad) ‖ tag (16)
 * record key = HKDF-SHA256(ikm = coffer key, salt, info = "coffer-gateway/v2 coffer <kind>", L = 32)
 * aad = binding("coffer-gateway/v2 coffer <kind>", coffer)
 * Pure byte-level code, no I/O.
 */
import { randomBytes } from 'node:crypto';
import { IntegrityError } from './integrity-error';
import { bindingOf, deriveRecordKey, openRecord, sealRecord } from './sealed-record';

/** `registration`: a created coffer's record in its class's registry (sealed under the class key, bound to the coffer name). */
export type CofferRecordKind = 'lifecycle' | 'policy' | 'registration';

const SALT_SIZE = 16;
/** Records are a few hundred bytes; anything far larger is not one. */
export const MAX_COFFER_RECORD_BYTES = 64 * 1024;

const labelOf = (kind: CofferRecordKind): string => `coffer-gateway/v2 coffer ${kind}`;

export function sealCofferRecord(cofferKey: Buffer, kind: CofferRecordKind, coffer: string, value: Readonly<Record<string, unknown>>, salt: Buffer = randomBytes(SALT_SIZE)): Buffer {
  const label = labelOf(kind);
  const key = deriveRecordKey(cofferKey, salt, label);
  try {
    return Buffer.concat([salt, sealRecord(key, bindingOf(label, [coffer]), Buffer.from(JSON.stringify(value), 'utf8'))]);
  } finally {
    key.fill(0);
  }
}

/** Opens what sealCofferRecord made for this coffer and kind; anything else → IntegrityError('coffer-record-rejected'). */
export function openCofferRecord(cofferKey: Buffer, kind: CofferRecordKind, coffer: string, stored: Buffer): Record<string, unknown> {
  if (stored.length < SALT_SIZE || stored.length > MAX_COFFER_RECORD_BYTES) throw new IntegrityError('coffer-record-rejected', `the coffer ${kind} record has an impossible length`);
  const label = labelOf(kind);
  const key = deriveRecordKey(cofferKey, stored.subarray(0, SALT_SIZE), label);
  let plaintext: Buffer;
  try {
    plaintext = openRecord(key, bindingOf(label, [coffer]), stored.subarray(SALT_SIZE), 'coffer-record-rejected', `the coffer ${kind} record`);
  } finally {
    key.fill(0);
  }
  let value: unknown;
  try {
    value = JSON.parse(plaintext.toString('utf8'));
  } catch {
    value = undefined;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new IntegrityError('coffer-record-rejected', `the coffer ${kind} record is malformed`);
  return value as Record<string, unknown>;
}
