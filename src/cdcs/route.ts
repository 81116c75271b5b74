/**
 * Which CDCS operation a request is (pure), per the operations table of cdcs-api.md, and which action
 * authorization must check for it. Argument errors that need no state are decided here, before
 * authentication and before any body byte is read.
 *
 * The parameters that select an operation (`uploads`, `uploadId`, `partNumber`) must appear at most
 * once: with two values, the signature check, the router and the handler could each pick a different
 * one.
 */
import type { Action } from '../auth/principal';
import { GatewayError } from '../errors/gateway-error';
import { UPLOAD_ID_PATTERN } from '../store/upstream-layout';
import { queryValues, type RequestTarget } from './request-target';

export type Operation =
  | { readonly name: 'GetService' }
  | { readonly name: 'GetCoffer' }
  | { readonly name: 'ListMultipartUploads' }
  | { readonly name: 'InitiateMultipartUpload' }
  | { readonly name: 'UploadPart'; readonly partNumber: number; readonly uploadId: string }
  | { readonly name: 'ListParts'; readonly uploadId: string }
  | { readonly name: 'CompleteMultipartUpload'; readonly uploadId: string }
  | { readonly name: 'AbortMultipartUpload'; readonly uploadId: string }
  | { readonly name: 'PutObject' }
  | { readonly name: 'GetObject' }
  | { readonly name: 'HeadObject' }
  | { readonly name: 'PutCofferLifecycle' }
  | { readonly name: 'GetCofferLifecycle' }
  | { readonly name: 'PutCofferPolicy' }
  | { readonly name: 'GetCofferPolicy' }
  | { readonly name: 'DeleteCofferPolicy' }
  | { readonly name: 'PutCoffer' }
  | { readonly name: 'DeleteCoffer' };

export type OperationName = Operation['name'];

export const MAX_PART_NUMBER = 10_000;

/**
 * The action each operation needs (configuration: read = GET/HEAD, write = PUT and multipart,
 * list = ListParts, ListMultipartUploads and listings). Note that the SDK's resumable upload lists
 * uploads and parts first, so an uploader needs `list` as well as `write` to resume.
 */
export const OPERATION_ACTIONS: Readonly<Record<OperationName, Action>> = {
  GetService: 'list',
  GetCoffer: 'list',
  ListMultipartUploads: 'list',
  ListParts: 'list',
  InitiateMultipartUpload: 'write',
  UploadPart: 'write',
  CompleteMultipartUpload: 'write',
  AbortMultipartUpload: 'write',
  PutObject: 'write',
  GetObject: 'read',
  HeadObject: 'read',
  // Expiry is the one way data leaves a write-once coffer: its configuration is `manage`, not `write`.
  PutCofferLifecycle: 'manage',
  GetCofferLifecycle: 'manage',
  // Who may use a coffer is its owner's business: the configured `manage` grant, or a policy allowing the action.
  PutCofferPolicy: 'manage',
  GetCofferPolicy: 'manage',
  DeleteCofferPolicy: 'manage',
  // Creating and deleting coffers are the coffer owner's settings too. PutCoffer is service-scoped (the
  // coffer does not exist yet): it checks `manage` on the new name itself, or the class's creators.
  PutCoffer: 'manage',
  DeleteCoffer: 'manage',
};

export function actionOf(operation: Operation): Action {
  return OPERATION_ACTIONS[operation.name];
}

/** The one value of a parameter: undefined when absent, InvalidArgument when repeated. */
function single(target: RequestTarget, name: string): string | null | undefined {
  const values = queryValues(target, name);
  if (values.length > 1) throw new GatewayError('InvalidArgument', `The query parameter "${name}" appears more than once.`);
  return values[0];
}

/** Canonical decimal 1..10000: no sign, no leading zero, no fraction or exponent, no whitespace. */
export function parsePartNumber(raw: string | null | undefined): number {
  if (raw === undefined) throw new GatewayError('InvalidArgument', 'partNumber is required with uploadId.');
  if (raw === null || !/^[1-9][0-9]{0,4}$/.test(raw) || Number(raw) > MAX_PART_NUMBER) {
    throw new GatewayError('InvalidArgument', `partNumber must be an integer from 1 to ${MAX_PART_NUMBER} without sign or leading zeros.`);
  }
  return Number(raw);
}

function uploadIdOf(target: RequestTarget): string {
  const uploadId = single(target, 'uploadId');
  if (uploadId === undefined) throw new GatewayError('InvalidArgument', 'uploadId is required with partNumber.');
  // The gateway mints upload ids (32 lowercase hex); anything else cannot name an upload it knows.
  if (uploadId === null || !UPLOAD_ID_PATTERN.test(uploadId)) throw new GatewayError('NoSuchUpload');
  return uploadId;
}

const notAllowed = (what: string): GatewayError => new GatewayError('MethodNotAllowed', `${what} is not supported.`);

export function route(method: string, target: RequestTarget): Operation {
  const has = (name: string): boolean => single(target, name) !== undefined;

  if (target.coffer === undefined) {
    if (method === 'GET') return { name: 'GetService' };
    throw notAllowed(`${method} on the service`);
  }

  if (target.key === undefined) {
    if (has('lifecycle')) {
      if (method === 'PUT') return { name: 'PutCofferLifecycle' };
      if (method === 'GET') return { name: 'GetCofferLifecycle' };
      throw notAllowed(`${method} on a coffer's lifecycle configuration`);
    }
    if (has('policy')) {
      if (method === 'PUT') return { name: 'PutCofferPolicy' };
      if (method === 'GET') return { name: 'GetCofferPolicy' };
      if (method === 'DELETE') return { name: 'DeleteCofferPolicy' };
      throw notAllowed(`${method} on a coffer's policy`);
    }
    if (method === 'GET') return has('uploads') ? { name: 'ListMultipartUploads' } : { name: 'GetCoffer' };
    if (method === 'PUT') return { name: 'PutCoffer' };
    if (method === 'DELETE') return { name: 'DeleteCoffer' };
    throw notAllowed(`${method} on a coffer`);
  }

  const hasUploadId = has('uploadId');
  switch (method) {
    case 'POST': {
      const hasUploads = has('uploads');
      if (hasUploads && hasUploadId) throw new GatewayError('InvalidArgument', 'A request cannot carry both "uploads" and "uploadId".');
      if (hasUploads) return { name: 'InitiateMultipartUpload' };
      if (hasUploadId) return { name: 'CompleteMultipartUpload', uploadId: uploadIdOf(target) };
      throw notAllowed('POST on an object without "uploads" or "uploadId"');
    }
    case 'PUT': {
      if (!hasUploadId && !has('partNumber')) return { name: 'PutObject' };
      // partNumber first: its errors are argument errors whatever the upload id says.
      const partNumber = parsePartNumber(single(target, 'partNumber'));
      return { name: 'UploadPart', partNumber, uploadId: uploadIdOf(target) };
    }
    case 'GET':
      return hasUploadId ? { name: 'ListParts', uploadId: uploadIdOf(target) } : { name: 'GetObject' };
    case 'HEAD':
      return { name: 'HeadObject' };
    case 'DELETE':
      if (hasUploadId) return { name: 'AbortMultipartUpload', uploadId: uploadIdOf(target) };
      throw new GatewayError('MethodNotAllowed', 'CDCS has no DeleteObject: coffers are write-once and objects expire through lifecycle rules.');
    default:
      throw notAllowed(`${method} on an object`);
  }
}
