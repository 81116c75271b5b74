/**
 * Which S3 operation a request is (pure), from the method, the parsed target (the same request
 * identity as CDCS: src/cdcs/request-target.ts) and its query names, and which action authorization
 * checks for it. Decided before authentication and before any body byte.
 *
 * Query names: every name a request carries must be one the routed operation acts on, spelled
 * exactly (re-cased, unknown or inapplicable names are refused, as in the CDCS dialect: an ignored
 * `?acl` would turn a signed GetObjectAcl into a GetObject). S3 sub-resources the gateway does not
 * implement (`acl`, `tagging`, `versioning`, `policy`, …) are 501 NotImplemented, which is what S3
 * tools expect for an unsupported feature. `x-id` (the AWS SDK's operation hint) and the presigned
 * `X-Amz-*` parameters are accepted anywhere; SigV4 signs them all.
 */
import type { Action } from '../auth/principal';
import { PRESIGNED_PARAMETERS } from '../auth/sigv4-signature';
import { RESPONSE_OVERRIDES } from '../cdcs/query-parameters';
import type { QueryPair, RequestTarget } from '../cdcs/request-target';
import { parsePartNumber } from '../cdcs/route';
import { GatewayError } from '../errors/gateway-error';
import { UPLOAD_ID_PATTERN } from '../store/upstream-layout';

export type S3Operation =
  | { readonly name: 'ListBuckets' }
  | { readonly name: 'HeadBucket' }
  | { readonly name: 'CreateBucket' }
  | { readonly name: 'DeleteBucket' }
  | { readonly name: 'GetBucketLocation' }
  | { readonly name: 'ListObjects' }
  | { readonly name: 'ListObjectsV2' }
  | { readonly name: 'ListMultipartUploads' }
  | { readonly name: 'DeleteObjects' }
  | { readonly name: 'PutObject' }
  | { readonly name: 'GetObject' }
  | { readonly name: 'HeadObject' }
  | { readonly name: 'GetObjectTagging' }
  | { readonly name: 'DeleteObject' }
  | { readonly name: 'CreateMultipartUpload' }
  | { readonly name: 'UploadPart'; readonly partNumber: number; readonly uploadId: string }
  | { readonly name: 'ListParts'; readonly uploadId: string }
  | { readonly name: 'CompleteMultipartUpload'; readonly uploadId: string }
  | { readonly name: 'AbortMultipartUpload'; readonly uploadId: string };

export type S3OperationName = S3Operation['name'];

export const S3_OPERATION_ACTIONS: Readonly<Record<S3OperationName, Action>> = {
  ListBuckets: 'list',
  HeadBucket: 'list',
  // As CDCS PUT Coffer / DELETE Coffer: the coffer owner's settings. CreateBucket is service-scoped
  // (the bucket may not exist yet): who may create is decided per coffer class by the entry.
  CreateBucket: 'manage',
  DeleteBucket: 'manage',
  GetBucketLocation: 'list',
  ListObjects: 'list',
  ListObjectsV2: 'list',
  ListMultipartUploads: 'list',
  ListParts: 'list',
  DeleteObjects: 'write',
  PutObject: 'write',
  DeleteObject: 'write',
  CreateMultipartUpload: 'write',
  UploadPart: 'write',
  CompleteMultipartUpload: 'write',
  AbortMultipartUpload: 'write',
  GetObject: 'read',
  HeadObject: 'read',
  GetObjectTagging: 'read',
};

const LISTING = ['prefix', 'delimiter', 'max-keys', 'encoding-type'];

/** The query names each operation acts on (besides `x-id` and the presigned parameters). */
export const S3_OPERATION_PARAMETERS: Readonly<Record<S3OperationName, readonly string[]>> = {
  ListBuckets: [],
  HeadBucket: [],
  CreateBucket: [],
  DeleteBucket: [],
  GetBucketLocation: ['location'],
  ListObjects: [...LISTING, 'marker'],
  ListObjectsV2: [...LISTING, 'list-type', 'continuation-token', 'start-after', 'fetch-owner'],
  ListMultipartUploads: ['uploads', 'prefix', 'delimiter', 'key-marker', 'upload-id-marker', 'max-uploads', 'encoding-type'],
  DeleteObjects: ['delete'],
  PutObject: [],
  GetObject: [...Object.keys(RESPONSE_OVERRIDES)],
  HeadObject: [...Object.keys(RESPONSE_OVERRIDES)],
  GetObjectTagging: ['tagging'],
  DeleteObject: [],
  CreateMultipartUpload: ['uploads'],
  UploadPart: ['partNumber', 'uploadId'],
  ListParts: ['uploadId', 'max-parts', 'part-number-marker', 'encoding-type'],
  CompleteMultipartUpload: ['uploadId'],
  AbortMultipartUpload: ['uploadId'],
};

/** Accepted on every operation: the SDK's operation hint and the presigned-URL fields (all signed). */
const ALWAYS_ACCEPTED = new Set<string>(['x-id', ...PRESIGNED_PARAMETERS]);

/** S3 sub-resources and features that exist but that this gateway does not implement: 501. */
const NOT_IMPLEMENTED = new Set([
  'acl',
  'tagging',
  'versioning',
  'versions',
  'versionId',
  'policy',
  'policyStatus',
  'lifecycle',
  'cors',
  'website',
  'logging',
  'notification',
  'replication',
  'encryption',
  'object-lock',
  'retention',
  'legal-hold',
  'accelerate',
  'requestPayment',
  'analytics',
  'inventory',
  'metrics',
  'intelligent-tiering',
  'ownershipControls',
  'publicAccessBlock',
  'restore',
  'select',
  'select-type',
  'torrent',
  'attributes',
  'uploadPartCopy',
  'partNumber',
]);

const notImplemented = (what: string): GatewayError => new GatewayError('NotImplemented', `${what} is not implemented by this gateway.`, { reason: 'not-implemented' });

function single(query: ReadonlyArray<QueryPair>, name: string): string | null | undefined {
  const values = query.filter(([n]) => n === name);
  if (values.length > 1) throw new GatewayError('InvalidArgument', `The query parameter "${name}" appears more than once.`);
  return values[0]?.[1];
}

function uploadIdOf(query: ReadonlyArray<QueryPair>): string {
  const uploadId = single(query, 'uploadId');
  // The gateway mints upload ids (32 lowercase hex); anything else cannot name an upload it knows.
  if (uploadId === undefined || uploadId === null || !UPLOAD_ID_PATTERN.test(uploadId)) throw new GatewayError('NoSuchUpload');
  return uploadId;
}

/** Routes, then checks that every query name is one the operation acts on. */
export function routeS3(method: string, target: RequestTarget): S3Operation {
  const { query } = target;
  const has = (name: string): boolean => single(query, name) !== undefined;
  const operation = chooseOperation(method, target, has);
  const allowed = new Set(S3_OPERATION_PARAMETERS[operation.name]);
  for (const [name] of query) {
    if (allowed.has(name) || ALWAYS_ACCEPTED.has(name)) continue;
    if (NOT_IMPLEMENTED.has(name)) throw notImplemented(`The sub-resource "${name}"`);
    throw new GatewayError('InvalidArgument', `The query parameter "${name}" is not accepted by ${operation.name}.`, { reason: 'unexpected-parameter' });
  }
  return operation;
}

function chooseOperation(method: string, target: RequestTarget, has: (name: string) => boolean): S3Operation {
  const { query } = target;
  const subResource = query.find(([name]) => NOT_IMPLEMENTED.has(name))?.[0];
  // GET ?tagging on an object is answered (this gateway stores no tags: aws-cli's s3→s3 multipart copy reads them); setting tags is not.
  const taggingRead = subResource === 'tagging' && method === 'GET' && target.key !== undefined && !has('uploadId');
  if (subResource !== undefined && !(subResource === 'partNumber' && has('uploadId')) && !taggingRead) throw notImplemented(`The sub-resource "${subResource}"`);

  if (target.coffer === undefined) {
    if (method === 'GET') return { name: 'ListBuckets' };
    throw notImplemented(`${method} on the service`);
  }
  if (target.key === undefined) {
    switch (method) {
      case 'HEAD':
        return { name: 'HeadBucket' };
      case 'GET':
        if (has('location')) return { name: 'GetBucketLocation' };
        if (has('uploads')) return { name: 'ListMultipartUploads' };
        if (has('list-type')) {
          if (single(query, 'list-type') !== '2') throw new GatewayError('InvalidArgument', 'list-type must be 2.');
          return { name: 'ListObjectsV2' };
        }
        return { name: 'ListObjects' };
      case 'POST':
        if (has('delete')) return { name: 'DeleteObjects' };
        throw notImplemented('POST on a bucket without "delete"');
      case 'PUT':
        // Creates a coffer of a coffer class; tools "make sure" their bucket exists (rclone, aws s3 mb) and get BucketAlreadyOwnedByYou.
        return { name: 'CreateBucket' };
      case 'DELETE':
        return { name: 'DeleteBucket' };
      default:
        throw new GatewayError('MethodNotAllowed', `${method} on a bucket is not supported.`);
    }
  }
  const hasUploadId = has('uploadId');
  switch (method) {
    case 'PUT':
      if (!hasUploadId && !has('partNumber')) return { name: 'PutObject' };
      return { name: 'UploadPart', partNumber: parsePartNumber(single(query, 'partNumber')), uploadId: uploadIdOf(query) };
    case 'GET':
      if (hasUploadId) return { name: 'ListParts', uploadId: uploadIdOf(query) };
      return has('tagging') ? { name: 'GetObjectTagging' } : { name: 'GetObject' };
    case 'HEAD':
      return { name: 'HeadObject' };
    case 'POST':
      if (has('uploads') && hasUploadId) throw new GatewayError('InvalidArgument', 'A request cannot carry both "uploads" and "uploadId".');
      if (has('uploads')) return { name: 'CreateMultipartUpload' };
      if (hasUploadId) return { name: 'CompleteMultipartUpload', uploadId: uploadIdOf(query) };
      throw notImplemented('POST on an object without "uploads" or "uploadId"');
    case 'DELETE':
      return hasUploadId ? { name: 'AbortMultipartUpload', uploadId: uploadIdOf(query) } : { name: 'DeleteObject' };
    default:
      throw new GatewayError('MethodNotAllowed', `${method} on an object is not supported.`);
  }
}
