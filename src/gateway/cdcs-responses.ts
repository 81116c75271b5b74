/**
 * The COS-style XML result documents of cdcs-api.md, as plain objects for the XML builder. Element
 * names follow COS (`Bucket`), which is what the official SDK parses; `Coffer` repeats the name for
 * CDCS-native clients.
 */
import type { PartSummary } from '../upload/multipart-service';

export function initiateResult(coffer: string, key: string, uploadId: string): Record<string, unknown> {
  return { InitiateMultipartUploadResult: { Bucket: coffer, Coffer: coffer, Key: key, UploadId: uploadId } };
}

export function listPartsResult(input: {
  coffer: string;
  key: string;
  uploadId: string;
  parts: readonly PartSummary[];
  maxParts: number;
  partNumberMarker: number;
  isTruncated: boolean;
  nextPartNumberMarker?: number;
  initiator: string;
}): Record<string, unknown> {
  return {
    ListPartsResult: {
      Bucket: input.coffer,
      Coffer: input.coffer,
      Key: input.key,
      UploadId: input.uploadId,
      Initiator: { ID: input.initiator, DisplayName: input.initiator },
      Owner: { ID: input.initiator, DisplayName: input.initiator },
      StorageClass: 'STANDARD',
      PartNumberMarker: input.partNumberMarker,
      NextPartNumberMarker: input.nextPartNumberMarker ?? input.partNumberMarker,
      MaxParts: input.maxParts,
      IsTruncated: input.isTruncated ? 'true' : 'false',
      Part: input.parts.map((part) => ({
        PartNumber: part.partNumber,
        LastModified: part.lastModified.toISOString(),
        ETag: part.etag,
        Size: part.size,
      })),
    },
  };
}

export function completeResult(input: { location: string; coffer: string; key: string; etag: string }): Record<string, unknown> {
  return { CompleteMultipartUploadResult: { Location: input.location, Bucket: input.coffer, Coffer: input.coffer, Key: input.key, ETag: input.etag } };
}

export function listUploadsResult(input: {
  coffer: string;
  prefix: string;
  keyMarker: string;
  uploadIdMarker: string;
  maxUploads: number;
  uploads: ReadonlyArray<{ key: string; uploadId: string; initiated: Date }>;
  isTruncated: boolean;
  nextKeyMarker?: string;
  nextUploadIdMarker?: string;
}): Record<string, unknown> {
  return {
    ListMultipartUploadsResult: {
      Bucket: input.coffer,
      Coffer: input.coffer,
      Prefix: input.prefix,
      KeyMarker: input.keyMarker,
      UploadIdMarker: input.uploadIdMarker,
      NextKeyMarker: input.nextKeyMarker ?? '',
      NextUploadIdMarker: input.nextUploadIdMarker ?? '',
      MaxUploads: input.maxUploads,
      IsTruncated: input.isTruncated ? 'true' : 'false',
      Upload: input.uploads.map((upload) => ({
        Key: upload.key,
        UploadId: upload.uploadId,
        StorageClass: 'STANDARD',
        Initiated: upload.initiated.toISOString(),
      })),
    },
  };
}
