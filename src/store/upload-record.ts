/**
 * The upload record (docs/FORMAT.md §8.1): what an in-progress upload was initiated with, so that any
 * replica can serve its UploadPart, ListParts and Complete. Immutable once written.
 *
 * Format v2: `{"v":2,"envelope":{…},"sealed":"<base64>"}`. The envelope (the wrapped data key) is
 * readable, because the key is needed to open the rest; everything else — the upstream upload id,
 * content type, user metadata, initiation time — is sealed (sealed-record.ts) under a key derived
 * from the data key the envelope wraps and bound to coffer, object key and upload id. Rewriting the
 * content type or metadata, swapping in another envelope (another data key) or copying another
 * upload's record into place all fail to open.
 */
import { IntegrityError } from '../format/integrity-error';
import { MAX_ENVELOPE_SIZE, decodeEnvelopeJson, envelopeJson, type KeyEnvelope } from '../format/manifest';
import { bindingOf, deriveRecordKey, openRecord, sealRecord } from '../format/sealed-record';
import { CHECKSUM_ALGORITHMS, type ChecksumAlgorithm, type ChecksumType } from '../http/object-checksum';

export const UPLOAD_RECORD_LABEL = 'coffer-gateway/v2 upload record';

export interface UploadRecord {
  readonly uploadId: string;
  readonly coffer: string;
  readonly key: string;
  readonly upstreamUploadId: string;
  readonly envelope: KeyEnvelope;
  readonly contentType?: string;
  readonly metadata: Readonly<Record<string, string>>;
  readonly initiated: string;
  /** The object checksum the upload was created with (`x-amz-checksum-algorithm` / `-type`): every part then has one, and Complete computes the object's. */
  readonly checksum?: { readonly algorithm: ChecksumAlgorithm; readonly type: ChecksumType };
}

function keyAndBinding(dataKey: Buffer, coffer: string, key: string, uploadId: string): { recordKey: Buffer; aad: Buffer } {
  const objectId = Buffer.from(uploadId, 'hex');
  return { recordKey: deriveRecordKey(dataKey, objectId, UPLOAD_RECORD_LABEL), aad: bindingOf(UPLOAD_RECORD_LABEL, [coffer, key, objectId]) };
}

export function encodeUploadRecord(record: UploadRecord, dataKey: Buffer, nonce?: Buffer): Buffer {
  const { recordKey, aad } = keyAndBinding(dataKey, record.coffer, record.key, record.uploadId);
  const secret = Buffer.from(
    JSON.stringify({
      upstreamUploadId: record.upstreamUploadId,
      ...(record.contentType === undefined ? {} : { contentType: record.contentType }),
      metadata: record.metadata,
      initiated: record.initiated,
      ...(record.checksum === undefined ? {} : { checksum: record.checksum }),
    }),
    'utf8',
  );
  const sealed = sealRecord(recordKey, aad, secret, nonce);
  recordKey.fill(0);
  return Buffer.from(`{"v":2,"envelope":${envelopeJson(record.envelope)},"sealed":"${sealed.toString('base64')}"}`, 'utf8');
}

/** The envelope of a stored record, read without a key (the key it wraps is what opens the rest). */
export function uploadRecordEnvelope(bytes: Buffer): KeyEnvelope {
  return parse(bytes).envelope;
}

function parse(bytes: Buffer): { envelope: KeyEnvelope; sealed: Buffer } {
  let value: Record<string, unknown>;
  try {
    value = JSON.parse(bytes.toString('utf8')) as Record<string, unknown>;
  } catch {
    throw new IntegrityError('upload-record-rejected', 'the upload record is not JSON');
  }
  if (value === null || typeof value !== 'object' || value['v'] !== 2 || typeof value['sealed'] !== 'string' || typeof value['envelope'] !== 'object') {
    throw new IntegrityError('upload-record-rejected', 'the upload record is not a format v2 record');
  }
  const envelopeText = JSON.stringify(value['envelope']);
  if (Buffer.byteLength(envelopeText) > MAX_ENVELOPE_SIZE) throw new IntegrityError('upload-record-rejected', 'the upload record envelope is too large');
  return { envelope: decodeEnvelopeJson(value['envelope']), sealed: Buffer.from(value['sealed'], 'base64') };
}

/** Verifies and decodes a stored record with the data key its envelope wraps (unwrapped for this coffer and key). */
export function decodeUploadRecord(bytes: Buffer, place: { coffer: string; key: string; uploadId: string }, dataKey: Buffer): UploadRecord {
  const { envelope, sealed } = parse(bytes);
  const { recordKey, aad } = keyAndBinding(dataKey, place.coffer, place.key, place.uploadId);
  let plaintext: Buffer;
  try {
    plaintext = openRecord(recordKey, aad, sealed, 'upload-record-rejected', 'the upload record');
  } finally {
    recordKey.fill(0);
  }
  const secret = JSON.parse(plaintext.toString('utf8')) as Record<string, unknown>;
  const metadata = secret['metadata'];
  if (typeof secret['upstreamUploadId'] !== 'string' || typeof secret['initiated'] !== 'string' || typeof metadata !== 'object' || metadata === null) {
    throw new IntegrityError('upload-record-rejected', 'the upload record is malformed');
  }
  const checksum = secret['checksum'] as { algorithm?: unknown; type?: unknown } | undefined;
  if (checksum !== undefined && (!CHECKSUM_ALGORITHMS.includes(checksum.algorithm as ChecksumAlgorithm) || (checksum.type !== 'COMPOSITE' && checksum.type !== 'FULL_OBJECT'))) {
    throw new IntegrityError('upload-record-rejected', 'the upload record names an unknown checksum');
  }
  return {
    uploadId: place.uploadId,
    coffer: place.coffer,
    key: place.key,
    upstreamUploadId: secret['upstreamUploadId'],
    envelope,
    ...(typeof secret['contentType'] === 'string' ? { contentType: secret['contentType'] } : {}),
    metadata: metadata as Record<string, string>,
    initiated: secret['initiated'],
    ...(checksum === undefined ? {} : { checksum: { algorithm: checksum.algorithm as ChecksumAlgorithm, type: checksum.type as ChecksumType } }),
  };
}
