/**
 * The COS-style XML result documents of cdcs-api.md, as plain objects for the XML builder. Element
 * names follow COS (`Bucket`), which is what the official SDK parses; `Coffer` repeats the name for
 * CDCS-native clients.
 */
import { encodeQueryComponent } from '../upstream/s3-encoding';
import type { PartSummary } from '../store/multipart-service';
import type { OperationResult } from '../operations/operation-results';
import { toXml } from './xml';

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

export function completeResult(input: {
  location: string;
  coffer: string;
  key: string;
  etag: string;
  /** The object's checksum, when its upload declared an algorithm (S3 clients only; CDCS has none, and renders none). */
  checksum?: { readonly algorithm: string; readonly value: string; readonly type?: string };
}): Record<string, unknown> {
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

export function listObjectsResult(input: {
  coffer: string;
  prefix: string;
  delimiter?: string;
  marker: string;
  maxKeys: number;
  /** `url`: keys, prefixes and markers percent-encoded (XML 1.0 cannot carry every key). */
  encodingType?: 'url';
  objects: ReadonlyArray<{ key: string; size: number; etag: string; lastModified: Date }>;
  commonPrefixes: readonly string[];
  isTruncated: boolean;
  nextMarker?: string;
  owner: string;
}): Record<string, unknown> {
  const encode = input.encodingType === 'url' ? encodeQueryComponent : (value: string) => value;
  return {
    ListBucketResult: {
      Name: input.coffer,
      Prefix: encode(input.prefix),
      Marker: encode(input.marker),
      MaxKeys: input.maxKeys,
      ...(input.delimiter === undefined ? {} : { Delimiter: encode(input.delimiter) }),
      IsTruncated: input.isTruncated ? 'true' : 'false',
      ...(input.nextMarker === undefined ? {} : { NextMarker: encode(input.nextMarker) }),
      ...(input.encodingType === undefined ? {} : { EncodingType: input.encodingType }),
      Contents: input.objects.map((object) => ({
        Key: encode(object.key),
        LastModified: object.lastModified.toISOString(),
        ETag: object.etag,
        Size: object.size,
        Owner: { ID: input.owner, DisplayName: input.owner },
        StorageClass: 'STANDARD',
      })),
      CommonPrefixes: input.commonPrefixes.map((prefix) => ({ Prefix: encode(prefix) })),
    },
  };
}

export function listCoffersResult(input: { owner: string; coffers: ReadonlyArray<{ name: string; location: string; created: Date }> }): Record<string, unknown> {
  return {
    ListAllMyBucketsResult: {
      Owner: { ID: input.owner, DisplayName: input.owner },
      Buckets: { Bucket: input.coffers.map((c) => ({ Name: c.name, Location: c.location, CreationDate: c.created.toISOString() })) },
    },
  };
}

/** A result document (src/operations/operation-results.ts) as CDCS XML, declaration included. */
export function renderCdcsResult(result: OperationResult): string {
  switch (result.kind) {
    case 'InitiateMultipartUpload':
      return toXml(initiateResult(result.coffer, result.key, result.uploadId));
    case 'ListParts':
      return toXml(listPartsResult(result));
    case 'CompleteMultipartUpload':
      return toXml(completeResult(result));
    case 'ListMultipartUploads':
      return toXml(listUploadsResult(result));
    case 'ListObjects':
      return toXml(listObjectsResult(result));
    case 'ListCoffers':
      return toXml(listCoffersResult(result));
    case 'S3':
      // Only S3-dialect entries answer these; a CDCS entry never does.
      throw new Error(`The S3 document ${result.root} has no CDCS rendering.`);
  }
}
