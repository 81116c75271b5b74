/**
 * The request pipeline, top to bottom: parse → route → authenticate → authorize → coffer context
 * (role credentials, keys, store) → operation → response. Everything that can fail without the body
 * is decided before the body is read; `Expect: 100-continue` is answered only after that.
 */
import type { IncomingMessage } from 'node:http';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { headersFromRaw, type AuthRequest } from '../auth/auth-request';
import { authorize } from '../auth/authorize';
import type { Principal } from '../auth/principal';
import { GatewayError, isGatewayError } from '../errors/gateway-error';
import { renderError } from '../errors/render-error';
import { IntegrityError } from '../format/integrity-error';
import { MAX_PART_PLAINTEXT } from '../format/part-format';
import type { GatewayHandler, HandlerContext } from '../http/gateway-server';
import { queryValues } from '../http/request-target';
import type { RequestTarget } from '../http/request-target';
import type { Operation } from '../http/route';
import { parseCompleteMultipartUpload, readBodyCapped, toXml } from '../http/xml';
import type { GatewayMetrics } from '../observability/metrics';
import type { Logger } from '../observability/logger';
import type { CofferContext } from '../upload/coffer-context';
import type { MultipartService } from '../upload/multipart-service';
import { completeResult, initiateResult, listPartsResult, listUploadsResult } from './cdcs-responses';
import { decideRange } from './range-header';

export interface CofferResolver {
  /** The coffer's context for this principal (role credentials are per session), or NoSuchCoffer. */
  contextFor(coffer: string, principal: Principal): Promise<CofferContext>;
}

export interface HandlerDependencies {
  readonly authenticate: (request: AuthRequest) => Promise<Principal>;
  readonly coffers: CofferResolver;
  readonly service: MultipartService;
  readonly metrics?: GatewayMetrics;
  readonly log: Logger;
}

type RequestContext = HandlerContext & { readonly log: Logger };

/**
 * The CDCS operations behind the HTTP front (src/http), which has already parsed the target, routed
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
      const principal = await deps.authenticate({ method: ctx.req.method ?? 'GET', coffer: target.coffer as string, key: target.key, query: target.query, headers: headersFromRaw(ctx.req.rawHeaders) });
      authorize(principal, target.coffer as string, ctx.action);
      const context = await deps.coffers.contextFor(target.coffer as string, principal);
      ctx.log.info({ operation, coffer: target.coffer, principal: principal.id }, 'request');
      await execute(deps, ctx, ctx.operation, target, context, principal);
      deps.metrics?.requests.inc({ operation, code: 'OK' });
    } catch (error) {
      if (error instanceof IntegrityError) {
        deps.metrics?.integrityFailures.inc({ reason: error.reason });
        deps.metrics?.requests.inc({ operation, code: 'IntegrityCheckFailed' });
        ctx.log.error({ operation, reason: error.reason }, 'stored data failed authentication');
        throw new GatewayError('IntegrityCheckFailed', undefined, { reason: error.reason });
      }
      const code = isGatewayError(error) ? error.code : 'InternalError';
      deps.metrics?.requests.inc({ operation, code });
      if (code === 'BadGateway' || code === 'ServiceUnavailable' || code === 'GatewayTimeout') deps.metrics?.upstreamErrors.inc({ code });
      if (!isGatewayError(error) || error.fault === 'server') ctx.log.error({ operation, code, reason: isGatewayError(error) ? error.reason : undefined }, 'request failed');
      throw error;
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
      const record = await service.initiate(context, key, { contentType: single(ctx.req, 'content-type'), metadata: userMetadata(ctx.req) });
      sendXml(ctx, 200, initiateResult(coffer, key, record.uploadId));
      return;
    }
    case 'UploadPart': {
      const length = contentLengthOf(ctx);
      const prepared = await service.prepareUploadPart(context, key, operation.uploadId, operation.partNumber, length, contentMd5(ctx.req));
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
      const result = await service.complete(context, key, operation.uploadId, parts);
      deps.metrics?.completeCopiedBytes.inc(result.copiedBytes);
      ctx.log.info({ copiedBytes: result.copiedBytes, fillerBytes: result.fillerBytes, parts: parts.length }, 'upload completed');
      sendXml(ctx, 200, completeResult({ location: `${coffer}/${key}`, coffer, key, etag: result.etag }));
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
    case 'HeadObject':
    case 'GetObject': {
      const head = await service.head(context, key);
      try {
        const size = head.manifest.plaintextSize;
        const headers: Record<string, string | number> = {
          etag: head.etag,
          'last-modified': new Date(head.manifest.attributes.created).toUTCString(),
          'content-type': head.manifest.attributes.contentType ?? 'application/octet-stream',
          'accept-ranges': 'bytes',
        };
        for (const [name, value] of Object.entries(head.manifest.attributes.metadata)) headers[`x-cos-meta-${name}`] = value;
        if (operation.name === 'HeadObject') {
          ctx.res.writeHead(200, { ...headers, 'content-length': size }).end();
          return;
        }
        const range = decideRange(single(ctx.req, 'range'), size);
        if (range.kind === 'unsatisfiable') {
          // Rendered here rather than thrown: a 416 must carry `Content-Range: bytes */<size>`.
          const rendered = renderError(new GatewayError('InvalidRange'), { resource: target.pathname, requestId: ctx.requestId, traceId: ctx.traceId });
          ctx.res.writeHead(rendered.status, { ...rendered.headers, 'content-range': `bytes */${size}` }).end(rendered.body);
          return;
        }
        const [start, end] = range.kind === 'partial' ? [range.start, range.end] : [0, size - 1];
        const status = range.kind === 'partial' ? 206 : 200;
        ctx.res.writeHead(status, { ...headers, 'content-length': size === 0 ? 0 : end - start + 1, ...(status === 206 ? { 'content-range': `bytes ${start}-${end}/${size}` } : {}) });
        if (size === 0) {
          ctx.res.end();
          return;
        }
        await pipeline(Readable.from(service.read(context, head, start, end)), ctx.res);
        deps.metrics?.bytesOut.inc({ operation: 'GetObject' }, end - start + 1);
      } finally {
        head.dataKey.fill(0);
      }
      return;
    }
    case 'GetCoffer':
    case 'PutObject':
      throw new GatewayError('MethodNotAllowed', `${operation.name} is not available in this version of the gateway.`);
  }
}
