/**
 * The source of a server-side copy (CopyObject, UploadPartCopy): `x-amz-copy-source`, the
 * `x-amz-copy-source-if-*` conditions and UploadPartCopy's `x-amz-copy-source-range`. Everything
 * here is decided before a byte is written to the target: the source coffer's grant and policy, the
 * source object's manifest (verified, its data key unwrapped), the conditions against its validators
 * and the range against its size.
 *
 * The source is then read through the normal read path (each segment verified and decrypted) and
 * re-encrypted under the target's data key: data keys are bound to their coffer, key and object or
 * upload (the KMS encryption context names them), so no cheaper path is safe.
 */
import { authorize } from '../auth/authorize';
import type { Principal } from '../auth/principal';
import { percentDecode, validateObjectKey } from '../cdcs/request-target';
import { COFFER_NAME } from '../config/schema';
import { GatewayError } from '../errors/gateway-error';
import { evaluatePreconditions, type ConditionalHeaders } from '../http/conditional-request';
import type { CofferResolver, PolicyAuthority } from '../operations/run-operation';
import type { GatewayRequest, NamedOperation } from '../server/gateway-exchange';
import { headerValue, type RequestHeaders } from '../server/request-headers';
import type { CofferContext } from '../store/coffer-context';
import type { ObjectHead, ObjectService } from '../store/object-service';

export interface CopySourceDependencies {
  readonly objects: ObjectService;
  readonly contexts: CofferResolver;
  readonly policyAuthority?: PolicyAuthority;
}

/** An opened copy source: its head holds the source's data key until the caller disposes it. */
export interface CopySource {
  readonly context: CofferContext;
  readonly key: string;
  readonly head: ObjectHead;
}

/** `x-amz-copy-source: [/]<bucket>/<key>` (URL-encoded, no versionId): the source coffer and key, validated like a request target's. */
export function parseCopySource(raw: string): { coffer: string; key: string } {
  const path = raw.startsWith('/') ? raw.slice(1) : raw;
  if (path.includes('?')) throw new GatewayError('NotImplemented', 'Copying a version (versionId) is not implemented by this gateway.', { reason: 'copy-version' });
  const slash = path.indexOf('/');
  if (slash <= 0 || slash === path.length - 1) throw new GatewayError('InvalidArgument', 'x-amz-copy-source must be <bucket>/<key>.', { reason: 'copy-source' });
  const coffer = percentDecode(path.slice(0, slash), 'copy source bucket');
  const key = percentDecode(path.slice(slash + 1), 'copy source key');
  if (!COFFER_NAME.test(coffer)) throw new GatewayError('NoSuchBucket', 'The copy source bucket does not exist.', { reason: 'copy-source' });
  validateObjectKey(key);
  return { coffer, key };
}

/** The `x-amz-copy-source-if-*` headers as the RFC 9110 conditions they are (evaluated by the shared code). */
export function copySourceConditions(headers: RequestHeaders): ConditionalHeaders {
  return {
    ifMatch: headerValue(headers, 'x-amz-copy-source-if-match'),
    ifNoneMatch: headerValue(headers, 'x-amz-copy-source-if-none-match'),
    ifModifiedSince: headerValue(headers, 'x-amz-copy-source-if-modified-since'),
    ifUnmodifiedSince: headerValue(headers, 'x-amz-copy-source-if-unmodified-since'),
  };
}

/**
 * S3's copy conditions: evaluated in RFC 9110's order (a present if-match makes if-unmodified-since
 * irrelevant, a present if-none-match makes if-modified-since irrelevant — the two combinations S3
 * documents), and every outcome but "proceed" is 412 PreconditionFailed: a copy has no 304.
 */
export function checkCopySourceConditions(headers: RequestHeaders, head: Pick<ObjectHead, 'etag' | 'lastModified'>): void {
  if (evaluatePreconditions(copySourceConditions(headers), { etag: head.etag, lastModified: head.lastModified }) !== 'proceed') {
    throw new GatewayError('PreconditionFailed', 'At least one of the pre-conditions you specified did not hold (x-amz-copy-source-if-*).', { reason: 'copy-condition' });
  }
}

/**
 * UploadPartCopy's `x-amz-copy-source-range: bytes=first-last` (both offsets required, zero-based,
 * inclusive, inside the source), or the whole source when absent. `end` is exclusive.
 */
export function copySourceRange(value: string | undefined, size: number): { start: number; end: number } {
  if (value === undefined) return { start: 0, end: size };
  const match = /^bytes=(0|[1-9][0-9]{0,15})-(0|[1-9][0-9]{0,15})$/.exec(value.trim());
  const first = match === null ? NaN : Number(match[1]);
  const last = match === null ? NaN : Number(match[2]);
  if (!Number.isSafeInteger(first) || !Number.isSafeInteger(last) || first > last) {
    throw new GatewayError('InvalidArgument', 'The x-amz-copy-source-range value must be of the form bytes=first-last where first and last are the zero-based offsets of the first and last bytes to copy.', { reason: 'copy-range' });
  }
  if (last >= size) throw new GatewayError('InvalidArgument', `Range specified is not valid for source object of size: ${size}`, { reason: 'copy-range' });
  return { start: first, end: last + 1 };
}

/**
 * Opens the source for `principal`: `read` granted on its coffer, no deny in that coffer's policy for
 * a GetObject of the key (exactly what a GET would need), the manifest verified, the conditions held.
 */
export async function openCopySource(deps: CopySourceDependencies, request: GatewayRequest<NamedOperation>, principal: Principal, raw: string): Promise<CopySource> {
  const from = parseCopySource(raw);
  authorize(principal, from.coffer, 'read');
  const context = await deps.contexts.contextFor(from.coffer, principal);
  await context.assumeRole?.();
  if (deps.policyAuthority !== undefined) {
    // A deny in the source coffer's policy stops the copy as it stops a GET (grants alone allow reading the source).
    const decision = await deps.policyAuthority.decide(context, {
      principals: deps.policyAuthority.principalsOf(principal),
      action: 'GetObject',
      key: from.key,
      ...(request.remoteAddress === undefined ? {} : { sourceIp: request.remoteAddress }),
    });
    if (decision === 'deny') throw new GatewayError('AccessDenied', "The source coffer's policy denies reading this object.", { reason: 'policy-deny' });
  }
  const head = await deps.objects.head(context, from.key);
  try {
    checkCopySourceConditions(request.headers, head);
  } catch (error) {
    head.dataKey.dispose();
    throw error;
  }
  return { context, key: from.key, head };
}
