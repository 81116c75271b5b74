/**
 * The upload record (docs/FORMAT.md §8.1): what an in-progress upload was initiated with, so that any
 * replica can serve its UploadPart, ListParts and Complete. Immutable once written.
 */
import type { KeyEnvelope } from '../format/manifest';

export interface UploadRecord {
  readonly uploadId: string;
  readonly coffer: string;
  readonly key: string;
  readonly upstreamUploadId: string;
  readonly envelope: KeyEnvelope;
  readonly contentType?: string;
  readonly metadata: Readonly<Record<string, string>>;
  readonly initiated: string;
}

export function encodeUploadRecord(record: UploadRecord): Buffer {
  return Buffer.from(
    JSON.stringify({
      v: 1,
      uploadId: record.uploadId,
      coffer: record.coffer,
      key: record.key,
      upstreamUploadId: record.upstreamUploadId,
      envelope: { ...record.envelope, wrappedKey: record.envelope.wrappedKey.toString('base64') },
      contentType: record.contentType,
      metadata: record.metadata,
      initiated: record.initiated,
    }),
    'utf8',
  );
}

export function decodeUploadRecord(bytes: Buffer): UploadRecord {
  const value = JSON.parse(bytes.toString('utf8')) as Record<string, unknown> & { envelope: Record<string, unknown> };
  if (value['v'] !== 1 || typeof value['uploadId'] !== 'string' || typeof value['upstreamUploadId'] !== 'string' || typeof value.envelope?.['wrappedKey'] !== 'string') {
    throw new Error('not an upload record');
  }
  return {
    uploadId: value['uploadId'],
    coffer: String(value['coffer']),
    key: String(value['key']),
    upstreamUploadId: value['upstreamUploadId'],
    envelope: {
      provider: String(value.envelope['provider']),
      keyId: String(value.envelope['keyId']),
      wrappedKey: Buffer.from(value.envelope['wrappedKey'] as string, 'base64'),
      context: value.envelope['context'] as Record<string, string>,
    },
    contentType: typeof value['contentType'] === 'string' ? value['contentType'] : undefined,
    metadata: (value['metadata'] ?? {}) as Record<string, string>,
    initiated: String(value['initiated']),
  };
}
