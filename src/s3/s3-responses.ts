/**
 * The S3 dialect's answers: result documents in S3's XML (namespace
 * `http://s3.amazonaws.com/doc/2006-03-01/`, element names as the AWS SDKs, aws-cli, rclone, s3cmd
 * and restic parse them) and errors in S3's `<Error>` shape (Code, Message, Resource, RequestId,
 * HostId) with `x-amz-request-id` and `x-amz-id-2` — the one renderer of every S3 request's errors
 * (src/app/dialect-switch.ts picks it).
 *
 * Error codes: the catalogue is shared with CDCS; the codes that exist only in CDCS's vocabulary are
 * answered with S3's equivalent (NoSuchCoffer → NoSuchBucket, AuthFailed → AccessDenied 403,
 * ObjectAlreadyExists → AccessDenied 403 naming the write-once coffer, MalformedAuthorization →
 * AuthorizationHeaderMalformed, InvalidCofferName → InvalidBucketName, CofferAlreadyExists →
 * BucketAlreadyExists, CofferNotEmpty → BucketNotEmpty), so S3 tools recognise them.
 */
import { XMLBuilder } from 'fast-xml-parser';
import { GatewayError } from '../errors/gateway-error';
import { renderXmlError, type ErrorContext, type RenderedError } from '../errors/render-error';
import type { OperationResult } from '../operations/operation-results';
import { encodeQueryComponent } from '../upstream/s3-encoding';

export const S3_XMLNS = 'http://s3.amazonaws.com/doc/2006-03-01/';

const builder = new XMLBuilder({ format: false, suppressEmptyNode: false, processEntities: true, ignoreAttributes: false, attributeNamePrefix: '@_' });

/** One root element with S3's namespace, declaration included. */
export function s3Xml(root: string, body: Readonly<Record<string, unknown>>): string {
  return `<?xml version="1.0" encoding="UTF-8"?>${builder.build({ [root]: { '@_xmlns': S3_XMLNS, ...body } }) as string}`;
}

const owner = (id: string) => ({ ID: id, DisplayName: id });
const bool = (value: boolean): string => (value ? 'true' : 'false');

/** A result document as S3 XML. */
export function renderS3Result(result: OperationResult): string {
  switch (result.kind) {
    case 'S3':
      return s3Xml(result.root, result.body);
    case 'InitiateMultipartUpload':
      return s3Xml('InitiateMultipartUploadResult', { Bucket: result.coffer, Key: result.key, UploadId: result.uploadId });
    case 'CompleteMultipartUpload':
      return s3Xml('CompleteMultipartUploadResult', {
        Location: result.location,
        Bucket: result.coffer,
        Key: result.key,
        ETag: result.etag,
        ...(result.checksum === undefined ? {} : { [`Checksum${result.checksum.algorithm}`]: result.checksum.value, ChecksumType: result.checksum.type ?? 'FULL_OBJECT' }),
      });
    case 'ListParts':
      return s3Xml('ListPartsResult', {
        Bucket: result.coffer,
        Key: result.key,
        UploadId: result.uploadId,
        Initiator: owner(result.initiator),
        Owner: owner(result.initiator),
        StorageClass: 'STANDARD',
        PartNumberMarker: result.partNumberMarker,
        NextPartNumberMarker: result.nextPartNumberMarker ?? result.partNumberMarker,
        MaxParts: result.maxParts,
        IsTruncated: bool(result.isTruncated),
        Part: result.parts.map((part) => ({ PartNumber: part.partNumber, LastModified: part.lastModified.toISOString(), ETag: part.etag, Size: part.size })),
      });
    case 'ListMultipartUploads':
      return s3Xml('ListMultipartUploadsResult', {
        Bucket: result.coffer,
        KeyMarker: result.keyMarker,
        UploadIdMarker: result.uploadIdMarker,
        NextKeyMarker: result.nextKeyMarker ?? '',
        NextUploadIdMarker: result.nextUploadIdMarker ?? '',
        Prefix: result.prefix,
        MaxUploads: result.maxUploads,
        IsTruncated: bool(result.isTruncated),
        Upload: result.uploads.map((upload) => ({ Key: upload.key, UploadId: upload.uploadId, Initiator: owner('gateway'), Owner: owner('gateway'), StorageClass: 'STANDARD', Initiated: upload.initiated.toISOString() })),
      });
    case 'ListCoffers':
      return s3Xml('ListAllMyBucketsResult', {
        Owner: owner(result.owner),
        Buckets: { Bucket: result.coffers.map((coffer) => ({ Name: coffer.name, CreationDate: coffer.created.toISOString() })) },
      });
    case 'ListObjects': {
      const encode = result.encodingType === 'url' ? encodeQueryComponent : (value: string) => value;
      return s3Xml('ListBucketResult', {
        Name: result.coffer,
        Prefix: encode(result.prefix),
        Marker: encode(result.marker),
        ...(result.nextMarker === undefined ? {} : { NextMarker: encode(result.nextMarker) }),
        MaxKeys: result.maxKeys,
        ...(result.delimiter === undefined ? {} : { Delimiter: encode(result.delimiter) }),
        IsTruncated: bool(result.isTruncated),
        ...(result.encodingType === undefined ? {} : { EncodingType: result.encodingType }),
        Contents: result.objects.map((object) => ({ Key: encode(object.key), LastModified: object.lastModified.toISOString(), ETag: object.etag, Size: object.size, Owner: owner(result.owner), StorageClass: 'STANDARD' })),
        CommonPrefixes: result.commonPrefixes.map((prefix) => ({ Prefix: encode(prefix) })),
      });
    }
  }
}

/** The S3 name of a catalogue error, where CDCS's differs. */
export function toS3Error(error: unknown): unknown {
  if (!(error instanceof GatewayError)) return error;
  const carry = { ...(error.reason === undefined ? {} : { reason: error.reason }), cause: error, headers: error.headers };
  switch (error.code) {
    case 'NoSuchCoffer':
      return new GatewayError('NoSuchBucket', 'The specified bucket does not exist.', carry);
    case 'AuthFailed':
      return new GatewayError('AccessDenied', error.message, carry);
    case 'MalformedAuthorization':
      return new GatewayError('AuthorizationHeaderMalformed', error.message, carry);
    case 'InvalidCofferName':
      // The coffer classes are this gateway's bucket naming rules: a name none admits is not valid here, whoever asks.
      return new GatewayError('InvalidBucketName', error.message, carry);
    case 'CofferAlreadyExists':
      return new GatewayError('BucketAlreadyExists', undefined, carry);
    case 'CofferNotEmpty':
      return new GatewayError('BucketNotEmpty', error.message, carry);
    case 'ObjectAlreadyExists':
      return new GatewayError('AccessDenied', 'This bucket is write-once: an existing object cannot be overwritten (or it is being uploaded). Use a bucket that allows overwrite.', { ...carry, reason: 'write-once' });
    default:
      return error;
  }
}

/**
 * An error as S3 answers it: `<Error>` with Code (S3's name, toS3Error), Message, Resource (the path,
 * never the query: it may carry a presigned signature), RequestId and HostId; the same ids in
 * `x-amz-request-id` and `x-amz-id-2`, which S3 tools print, and the gateway's own
 * `x-cdcs-request-id` (its logs and audit line use it). Anything that is not a GatewayError is
 * InternalError without its message, so internals never leak.
 */
export function renderS3Error(error: unknown, context: ErrorContext, now: Date = new Date()): RenderedError {
  return renderXmlError(toS3Error(error), context.resource, { RequestId: context.requestId, HostId: context.traceId }, { 'x-amz-request-id': context.requestId, 'x-amz-id-2': context.traceId, 'x-cdcs-request-id': context.requestId }, now);
}
