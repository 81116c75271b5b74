/**
 * Which CDCS operation a request is (pure), and which action it needs for authorization.
 * Argument errors are decided here, before authentication, with the codes of cdcs-api.md.
 */
import type { Action } from '../auth/principal';
import { GatewayError } from '../errors/gateway-error';
import { UPLOAD_ID_PATTERN } from '../upload/upstream-layout';
import { queryValue, type RequestTarget } from './request-target';

export type Operation =
  | { readonly name: 'GetCoffer' }
  | { readonly name: 'ListMultipartUploads' }
  | { readonly name: 'InitiateMultipartUpload' }
  | { readonly name: 'UploadPart'; readonly partNumber: number; readonly uploadId: string }
  | { readonly name: 'ListParts'; readonly uploadId: string }
  | { readonly name: 'CompleteMultipartUpload'; readonly uploadId: string }
  | { readonly name: 'AbortMultipartUpload'; readonly uploadId: string }
  | { readonly name: 'PutObject' }
  | { readonly name: 'GetObject' }
  | { readonly name: 'HeadObject' };

export const OPERATION_ACTIONS: Readonly<Record<Operation['name'], Action>> = {
  GetCoffer: 'list',
  ListMultipartUploads: 'list',
  InitiateMultipartUpload: 'write',
  UploadPart: 'write',
  ListParts: 'write',
  CompleteMultipartUpload: 'write',
  AbortMultipartUpload: 'write',
  PutObject: 'write',
  GetObject: 'read',
  HeadObject: 'read',
};

function uploadIdOf(target: RequestTarget): string {
  const uploadId = queryValue(target, 'uploadId');
  // The gateway mints upload ids (32 hex); anything else cannot name an upload it knows.
  if (typeof uploadId !== 'string' || !UPLOAD_ID_PATTERN.test(uploadId)) throw new GatewayError('NoSuchUpload');
  return uploadId;
}

function partNumberOf(target: RequestTarget): number {
  const raw = queryValue(target, 'partNumber');
  if (typeof raw !== 'string' || !/^[1-9]\d{0,4}$/.test(raw) || Number(raw) > 10000) {
    throw new GatewayError('InvalidArgument', 'partNumber must be an integer from 1 to 10000.');
  }
  return Number(raw);
}

export function route(method: string, target: RequestTarget): Operation {
  if (target.coffer === undefined) throw new GatewayError('MethodNotAllowed', 'Listing coffers is not supported by this gateway yet.');
  const has = (name: string): boolean => queryValue(target, name) !== undefined;
  if (target.key === undefined) {
    if (method === 'GET' && has('uploads')) return { name: 'ListMultipartUploads' };
    if (method === 'GET') return { name: 'GetCoffer' };
    throw new GatewayError('MethodNotAllowed');
  }
  switch (method) {
    case 'POST':
      if (has('uploads')) return { name: 'InitiateMultipartUpload' };
      if (has('uploadId')) return { name: 'CompleteMultipartUpload', uploadId: uploadIdOf(target) };
      break;
    case 'PUT':
      if (has('uploadId') || has('partNumber')) {
        const partNumber = partNumberOf(target);
        return { name: 'UploadPart', partNumber, uploadId: uploadIdOf(target) };
      }
      return { name: 'PutObject' };
    case 'GET':
      if (has('uploadId')) return { name: 'ListParts', uploadId: uploadIdOf(target) };
      return { name: 'GetObject' };
    case 'HEAD':
      return { name: 'HeadObject' };
    case 'DELETE':
      if (has('uploadId')) return { name: 'AbortMultipartUpload', uploadId: uploadIdOf(target) };
      throw new GatewayError('MethodNotAllowed', 'Coffers are write-once: objects expire through lifecycle rules, they cannot be deleted.');
    default:
      break;
  }
  throw new GatewayError('MethodNotAllowed');
}
