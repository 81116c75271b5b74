/**
 * The listing summary of a v2 manifest (docs/FORMAT.md §6.2): what GetCoffer reports per object —
 * plaintext size, ETag, completion time — sealed under the coffer key and bound to coffer, object key
 * and object id, so a listing is authenticated without unwrapping one data key per object (one KMS
 * call per object). The ETag is an MD5 (of the plaintext, or of the part MD5s): stored only sealed.
 * Pure byte-level code, no I/O.
 */
import { IntegrityError } from './integrity-error';
import { bindingOf, deriveRecordKey, openRecord, sealRecord } from './sealed-record';

export const LISTING_SUMMARY_LABEL = 'coffer-gateway/v2 listing summary';

export interface ListingSummary {
  readonly size: number;
  /** The object's ETag as clients see it, quotes included. */
  readonly etag: string;
  /** ISO-8601 completion time (the manifest's `created`). */
  readonly created: string;
}

/** HKDF(coffer key, salt = objectId, info = "coffer-gateway/v2 listing summary"): one key per object. */
function summaryKey(cofferKey: Buffer, objectId: Buffer): Buffer {
  return deriveRecordKey(cofferKey, objectId, LISTING_SUMMARY_LABEL);
}

function binding(coffer: string, key: string, objectId: Buffer): Buffer {
  return bindingOf(LISTING_SUMMARY_LABEL, [coffer, key, objectId]);
}

export function sealListingSummary(cofferKey: Buffer, coffer: string, key: string, objectId: Buffer, summary: ListingSummary, nonce?: Buffer): Buffer {
  const derived = summaryKey(cofferKey, objectId);
  const sealed = sealRecord(derived, binding(coffer, key, objectId), Buffer.from(JSON.stringify({ size: summary.size, etag: summary.etag, created: summary.created }), 'utf8'), nonce);
  derived.fill(0);
  return sealed;
}

export function openListingSummary(cofferKey: Buffer, coffer: string, key: string, objectId: Buffer, sealed: Buffer): ListingSummary {
  const derived = summaryKey(cofferKey, objectId);
  let plaintext: Buffer;
  try {
    plaintext = openRecord(derived, binding(coffer, key, objectId), sealed, 'listing-summary-rejected', 'the listing summary');
  } finally {
    derived.fill(0);
  }
  const value = JSON.parse(plaintext.toString('utf8')) as Record<string, unknown>;
  if (typeof value['size'] !== 'number' || !Number.isSafeInteger(value['size']) || typeof value['etag'] !== 'string' || typeof value['created'] !== 'string') {
    throw new IntegrityError('listing-summary-rejected', 'the listing summary is malformed');
  }
  return { size: value['size'], etag: value['etag'], created: value['created'] };
}
