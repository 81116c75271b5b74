/**
 * The request pipeline, top to bottom: parse → route → authenticate → authorize → coffer context
 * (keys, store) → assume role → operation (data key → encrypt → forward) → response. Everything that
 * can fail without the body is decided before the body is read; `Expect: 100-continue` is answered
 * only after that.
 */
import type { IncomingMessage } from 'node:http';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { headersFromRaw, type AuthRequest } from '../auth/auth-request';
import { authorize, isAllowed } from '../auth/authorize';
import type { Principal } from '../auth/principal';
import { GatewayError, isGatewayError } from '../errors/gateway-error';
import { renderError } from '../errors/render-error';
import { IntegrityError } from '../format/integrity-error';
import { MAX_PART_PLAINTEXT } from '../format/part-format';
import type { GatewayHandler, HandlerContext } from '../server/gateway-server';
import { RESPONSE_OVERRIDES } from './query-parameters';
import { queryValues } from './request-target';
import type { RequestTarget } from './request-target';
import type { Operation } from './route';
import { parseCompleteMultipartUpload, readBodyCapped, toXml } from './xml';
import type { GatewayMetrics } from '../observability/metrics';
import { describeError, type Logger } from '../observability/logger';
import type { CofferContext } from '../store/coffer-context';
import type { MultipartService } from '../store/multipart-service';
import { checkUserMetadata, type ObjectHead, type ObjectService } from '../store/object-service';
import { completeResult, initiateResult, listCoffersResult, listObjectsResult, listPartsResult, listUploadsResult } from './cdcs-responses';
import { evaluatePreconditions, rangeApplies, type ConditionalHeaders } from '../http/conditional-request';
import { keepAliveAnswer } from '../http/keep-alive-answer';
import { decideRange } from '../http/range-header';

export interface CofferResolver {
  /** The coffer's context for this principal (role credentials are per session), or NoSuchCoffer. */
  contextFor(coffer: string, principal: Principal): Promise<CofferContext>;
}

export interface CofferDirectory {
  /** Every coffer this gateway serves, for GetService (which then keeps those the principal may use). */
  list(): ReadonlyArray<{ readonly name: string; readonly location: string }>;
}

export interface HandlerDependencies {
  readonly authenticate: (request: AuthRequest) => Promise<Principal>;
  readonly coffers: CofferResolver & CofferDirectory;
  readonly service: MultipartService;
  readonly objects: ObjectService;
  /** Reported as every coffer's CreationDate in GetService (the gateway does not create coffers). */
  readonly startedAt?: Date;
  readonly metrics?: GatewayMetrics;
  readonly log: Logger;
  /** A Complete still assembling after this long is answered 200 and kept alive with whitespace (server.completeKeepAliveMs). */
  readonly completeKeepAliveMs?: number;
}

/** An error already told to the client inside a committed 200 body (a kept-alive Complete): count and log it, send nothing more. */
class DeliveredError extends Error {
  constructor(readonly original: unknown) {
    super('delivered in the answer body');
  }
}

/** Stored data that fails authentication is IntegrityCheckFailed to the client; everything else passes through. */
function asClientError(error: unknown): unknown {
  return error instanceof IntegrityError ? new GatewayError('IntegrityCheckFailed', undefined, { reason: error.reason }) : error;
}

type RequestContext = HandlerContext & { readonly log: Logger };

/**
 * The CDCS operations behind the HTTP front (src/server, src/cdcs), which has already parsed the target, routed
 * the operation and validated the body framing. Counts every request by operation and result code;
 * stored data that fails authentication becomes IntegrityCheckFailed and is logged.
 */
export function createCdcsHandler(deps: HandlerDependencies): GatewayHandler {
  return async (httpContext) => {
    const operation = httpContext.operation.name;
    const ctx: RequestContext = Object.assign(Object.create(httpContext) as HandlerContext, { log: deps.log.child({ requestId: httpContext.requestId }) });
    const stopTimer = deps.metrics?.requestSeconds.startTimer({ operation });
    try {
      const { target } = ctx;
      // The authenticator verifies exactly the identity the router parsed and this handler acts on.
      const principal = await deps.authenticate({ method: ctx.req.method ?? 'GET', coffer: target.coffer, key: target.key, addressing: target.addressing, query: target.query, headers: headersFromRaw(ctx.req.rawHeaders) });
      if (target.coffer === undefined) {
        // GetService: no coffer to authorize against; the answer lists only the coffers the principal may use.
        ctx.log.info({ operation, principal: principal.id }, 'request');
        listCoffers(deps, ctx, principal);
        deps.metrics?.requests.inc({ operation, code: 'OK' });
        return;
      }
      authorize(principal, target.coffer, ctx.action);
      const context = await deps.coffers.contextFor(target.coffer as string, principal);
      await context.assumeRole?.();
      ctx.log.info({ operation, coffer: target.coffer, principal: principal.id }, 'request');
      await execute(deps, ctx, ctx.operation, target, context, principal);
      deps.metrics?.requests.inc({ operation, code: 'OK' });
    } catch (thrown) {
      const delivered = thrown instanceof DeliveredError;
      const error = delivered ? (thrown as DeliveredError).original : thrown;
      if (error instanceof IntegrityError) {
        deps.metrics?.integrityFailures.inc({ reason: error.reason });
        deps.metrics?.requests.inc({ operation, code: 'IntegrityCheckFailed' });
        ctx.log.error({ operation, reason: error.reason }, 'stored data failed authentication');
      } else {
        const code = isGatewayError(error) ? error.code : 'InternalError';
        deps.metrics?.requests.inc({ operation, code });
        if (code === 'BadGateway' || code === 'ServiceUnavailable' || code === 'GatewayTimeout') deps.metrics?.upstreamErrors.inc({ code });
        if (!isGatewayError(error) || error.fault === 'server') ctx.log.error({ operation, code, reason: isGatewayError(error) ? error.reason : undefined, ...(delivered && !isGatewayError(error) ? { err: describeError(error) } : {}) }, 'request failed');
      }
      if (delivered) return; // already told to the client in the body of the committed 200
      throw asClientError(error);
    } finally {
      stopTimer?.();
    }
  };
}

function single(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

function contentLengthOf(ctx: RequestContext): number {
  // The HTTP front has already refused a PUT without a valid Content-Length (411/400).
  if (ctx.framing.kind !== 'length') throw new GatewayError('MissingContentLength');
  return ctx.framing.length;
}

function contentMd5(req: IncomingMessage): Buffer | undefined {
  const raw = single(req, 'content-md5');
  if (raw === undefined) return undefined;
  const digest = Buffer.from(raw, 'base64');
  if (digest.length !== 16 || digest.toString('base64') !== raw.trim()) throw new GatewayError('InvalidDigest');
  return digest;
}

function userMetadata(req: IncomingMessage): Record<string, string> {
  const metadata: Record<string, string> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (name.startsWith('x-cos-meta-') && typeof value === 'string') metadata[name.slice('x-cos-meta-'.length)] = value;
  }
  return metadata;
}

/** The single value of a query parameter (the router already refused duplicates of the ones it reads). */
function queryValue(target: RequestTarget, name: string): string | null | undefined {
  return queryValues(target, name)[0];
}

function sendXml(ctx: RequestContext, status: number, document: Record<string, unknown>): void {
  const body = toXml(document);
  ctx.res.writeHead(status, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(body) }).end(body);
}

function numberParam(target: RequestTarget, name: string, fallback: number): number {
  const raw = queryValue(target, name);
  if (raw === undefined || raw === null || raw === '') return fallback;
  if (!/^\d{1,9}$/.test(raw)) throw new GatewayError('InvalidArgument', `${name} must be a non-negative integer.`);
  return Number(raw);
}

async function execute(deps: HandlerDependencies, ctx: RequestContext, operation: Operation, target: RequestTarget, context: CofferContext, principal: Principal): Promise<void> {
  const coffer = target.coffer as string;
  const key = target.key as string;
  const { service } = deps;
  switch (operation.name) {
    case 'InitiateMultipartUpload': {
      const contentType = single(ctx.req, 'content-type');
      const metadata = userMetadata(ctx.req);
      checkUserMetadata(contentType, metadata);
      const record = await service.initiate(context, key, { contentType, metadata });
      sendXml(ctx, 200, initiateResult(coffer, key, record.uploadId));
      return;
    }
    case 'UploadPart': {
      const length = contentLengthOf(ctx);
      const prepared = await service.prepareUploadPart(context, key, operation.uploadId, operation.partNumber, length, contentMd5(ctx.req));
      ctx.res.once('close', () => prepared.slot.release()); // the cap's slot, also when the upload never starts
      // Everything that can refuse the part has run: only now the client may send the body (100 Continue).
      const body = ctx.bodyGuard({ maxBytes: MAX_PART_PLAINTEXT });
      deps.metrics?.inFlightParts.inc();
      const timer = deps.metrics?.partSeconds.startTimer({ storage: prepared.storage });
      try {
        const etag = await service.uploadPart(prepared, body);
        deps.metrics?.bytesIn.inc({ operation: 'UploadPart' }, length);
        ctx.res.writeHead(200, { etag, 'content-length': 0 }).end();
      } finally {
        deps.metrics?.inFlightParts.dec();
        timer?.();
      }
      return;
    }
    case 'ListParts': {
      const maxParts = Math.min(numberParam(target, 'max-parts', 1000), 1000);
      const marker = numberParam(target, 'part-number-marker', 0);
      const listed = await service.listParts(context, key, operation.uploadId, { maxParts, partNumberMarker: marker });
      sendXml(ctx, 200, listPartsResult({ coffer, key, uploadId: operation.uploadId, parts: listed.parts, maxParts, partNumberMarker: marker, isTruncated: listed.isTruncated, nextPartNumberMarker: listed.nextPartNumberMarker, initiator: principal.id }));
      return;
    }
    case 'CompleteMultipartUpload': {
      await service.loadRecord(context, key, operation.uploadId); // NoSuchUpload before reading the body
      const parts = parseCompleteMultipartUpload(await readBodyCapped(ctx.bodyGuard()));
      const keepAlive = keepAliveAnswer(ctx.res, deps.completeKeepAliveMs ?? 10_000, () => deps.metrics?.completeKeepAlives.inc());
      let result: Awaited<ReturnType<MultipartService['complete']>>;
      try {
        result = await service.complete(context, key, operation.uploadId, parts, { onAssembly: () => keepAlive.begin() });
      } catch (error) {
        keepAlive.cancel();
        if (!keepAlive.committed) throw error;
        // The 200 is out: the error goes into the body, rendered by the one renderer (the SDK reads it as an error).
        const client = asClientError(error);
        const rendered = renderError(client, { resource: ctx.target.pathname, requestId: ctx.requestId, traceId: ctx.traceId });
        keepAlive.end(rendered.body, rendered.status);
        throw new DeliveredError(error);
      }
      deps.metrics?.completeCopiedBytes.inc(result.copiedBytes);
      ctx.log.info({ copiedBytes: result.copiedBytes, fillerBytes: result.fillerBytes, parts: parts.length, keptAlive: keepAlive.committed }, 'upload completed');
      keepAlive.end(toXml(completeResult({ location: `${coffer}/${key}`, coffer, key, etag: result.etag })), 200);
      return;
    }
    case 'AbortMultipartUpload':
      await service.abort(context, key, operation.uploadId);
      ctx.res.writeHead(204).end();
      return;
    case 'ListMultipartUploads': {
      const maxUploads = Math.min(numberParam(target, 'max-uploads', 1000), 1000);
      const prefix = queryValue(target, 'prefix') ?? '';
      const keyMarker = queryValue(target, 'key-marker') ?? '';
      const uploadIdMarker = queryValue(target, 'upload-id-marker') ?? '';
      const listed = await service.listUploads(context, { prefix, keyMarker: keyMarker || undefined, uploadIdMarker: uploadIdMarker || undefined, maxUploads });
      sendXml(ctx, 200, listUploadsResult({ coffer, prefix, keyMarker, uploadIdMarker, maxUploads, ...listed }));
      return;
    }
    case 'PutObject': {
      const length = contentLengthOf(ctx);
      const prepared = await deps.objects.preparePut(context, key, length, { contentMd5: contentMd5(ctx.req), contentType: single(ctx.req, 'content-type'), metadata: userMetadata(ctx.req) });
      ctx.res.once('close', () => prepared.slot.release()); // the cap's slot, also when the put never starts
      // Write-once, size and the data key are settled: only now the client may send the body (100 Continue).
      const body = ctx.bodyGuard({ maxBytes: MAX_PART_PLAINTEXT });
      const { etag } = await deps.objects.put(prepared, body);
      deps.metrics?.bytesIn.inc({ operation: 'PutObject' }, length);
      ctx.res.writeHead(200, { etag, 'content-length': 0 }).end();
      return;
    }
    case 'GetCoffer': {
      const maxKeys = Math.min(numberParam(target, 'max-keys', 1000), 1000);
      const prefix = queryValue(target, 'prefix') ?? '';
      const delimiter = queryValue(target, 'delimiter') || undefined;
      const marker = queryValue(target, 'marker') ?? '';
      const encodingType = queryValue(target, 'encoding-type');
      if (encodingType !== undefined && encodingType !== null && encodingType !== '' && encodingType !== 'url') throw new GatewayError('InvalidArgument', 'encoding-type must be "url".');
      const page = await deps.objects.list(context, { prefix, delimiter, marker, maxKeys });
      for (const damaged of page.objects.filter((o) => o.damaged === true)) {
        const reason = damaged.damagedReason ?? 'malformed';
        deps.metrics?.integrityFailures.inc({ reason });
        ctx.log.error({ operation, key: damaged.key, reason }, 'listed manifest failed its integrity check');
      }
      sendXml(ctx, 200, listObjectsResult({ coffer, prefix, delimiter, marker, maxKeys, encodingType: encodingType === 'url' ? 'url' : undefined, ...page, owner: principal.id }));
      return;
    }
    case 'HeadObject':
    case 'GetObject': {
      const head = await deps.objects.head(context, key);
      try {
        await sendObject(deps, ctx, operation.name, context, key, head);
      } finally {
        head.dataKey.fill(0);
      }
      return;
    }
    case 'GetService':
      throw new GatewayError('InternalError', 'GetService reached the coffer stage.');
  }
}

function conditionalHeaders(req: IncomingMessage): ConditionalHeaders {
  const pick = (name: string): string | undefined => single(req, name);
  return {
    ifMatch: pick('if-match'),
    ifNoneMatch: pick('if-none-match'),
    ifModifiedSince: pick('if-modified-since'),
    ifUnmodifiedSince: pick('if-unmodified-since'),
    ifRange: pick('if-range'),
  };
}

/**
 * HEAD/GET of an object: preconditions, then the range, then the body. The first verified chunk is
 * read before the status line is written, so a missing data object or a first segment that fails
 * authentication is a proper XML error rather than a 200 cut short.
 */
async function sendObject(deps: HandlerDependencies, ctx: RequestContext, operation: 'HeadObject' | 'GetObject', context: CofferContext, key: string, head: ObjectHead): Promise<void> {
  const size = head.manifest.plaintextSize;
  const validators = { etag: head.etag, lastModified: head.lastModified };
  const headers: Record<string, string | number> = {
    etag: head.etag,
    'last-modified': head.lastModified.toUTCString(),
    'content-type': head.manifest.attributes.contentType ?? 'application/octet-stream',
    'accept-ranges': 'bytes',
  };
  for (const [name, value] of Object.entries(head.manifest.attributes.metadata)) headers[`x-cos-meta-${name}`] = value;
  Object.assign(headers, responseOverrides(ctx.target));
  const conditions = conditionalHeaders(ctx.req);
  const outcome = evaluatePreconditions(conditions, validators);
  if (outcome === 'failed') throw new GatewayError('PreconditionFailed');
  if (outcome === 'not-modified') {
    ctx.res.writeHead(304, { etag: head.etag, 'last-modified': headers['last-modified'] as string }).end();
    return;
  }
  if (operation === 'HeadObject') {
    ctx.res.writeHead(200, { ...headers, 'content-length': size }).end();
    return;
  }
  const range = rangeApplies(conditions, validators) ? decideRange(single(ctx.req, 'range'), size) : ({ kind: 'whole' } as const);
  // A 416 carries `Content-Range: bytes */<size>` (RFC 9110 §15.5.17).
  if (range.kind === 'unsatisfiable') throw new GatewayError('InvalidRange', undefined, { headers: { 'content-range': `bytes */${size}` } });
  const [start, end] = range.kind === 'partial' ? [range.start, range.end] : [0, size - 1];
  const status = range.kind === 'partial' ? 206 : 200;
  const partialHeaders = status === 206 ? { 'content-range': `bytes ${start}-${end}/${size}` } : {};
  if (size === 0) {
    ctx.res.writeHead(status, { ...headers, 'content-length': 0 }).end();
    return;
  }
  const chunks = deps.objects.read(context, key, head, start, end);
  const first = await chunks.next();
  ctx.res.writeHead(status, { ...headers, 'content-length': end - start + 1, ...partialHeaders });
  try {
    await pipeline(Readable.from(resume(first, chunks)), ctx.res);
  } catch (error) {
    // The client went away (or was reset for not reading): the upstream read has been released by the
    // pipeline; this is the client's doing, not a gateway failure. Integrity and upstream errors pass.
    if ((error as NodeJS.ErrnoException).code === 'ERR_STREAM_PREMATURE_CLOSE') throw new GatewayError('ClientClosedRequest', undefined, { cause: error });
    throw error;
  }
  deps.metrics?.bytesOut.inc({ operation: 'GetObject' }, end - start + 1);
}

/**
 * The `response-*` parameters of GetObject/HeadObject (S3, COS): they replace the stored header in
 * this answer. Every parameter the router accepts is acted on (http/query-parameters.ts). A value must
 * be printable ASCII: it becomes a header verbatim.
 */
function responseOverrides(target: RequestTarget): Record<string, string> {
  const overrides: Record<string, string> = {};
  for (const [parameter, header] of Object.entries(RESPONSE_OVERRIDES)) {
    const value = queryValue(target, parameter);
    if (value === undefined || value === null) continue;
    if (!/^[\t\x20-\x7e]*$/.test(value)) throw new GatewayError('InvalidArgument', `${parameter} must be printable ASCII.`);
    overrides[header] = value;
  }
  return overrides;
}

async function* resume(first: IteratorResult<Buffer>, rest: AsyncGenerator<Buffer>): AsyncGenerator<Buffer> {
  if (first.done === true) return;
  yield first.value;
  yield* rest;
}

/** GetService: the coffers this gateway serves that the principal may use for anything. */
function listCoffers(deps: HandlerDependencies, ctx: RequestContext, principal: Principal): void {
  const created = deps.startedAt ?? new Date(0);
  const coffers = deps.coffers
    .list()
    .filter((coffer) => (['read', 'write', 'list'] as const).some((action) => isAllowed(principal.grants, coffer.name, action)))
    .map((coffer) => ({ ...coffer, created }));
  sendXml(ctx, 200, listCoffersResult({ owner: principal.id, coffers }));
}
