/**
 * The request pipeline, top to bottom: parse → route → authenticate → authorize → coffer context
 * (role credentials, keys, store) → operation → response. Everything that can fail without the body
 * is decided before the body is read; `Expect: 100-continue` is answered only after that.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { headersFromRaw, type AuthRequest } from '../auth/auth-request';
import { authorize } from '../auth/authorize';
import type { Principal } from '../auth/principal';
import { GatewayError } from '../errors/gateway-error';
import type { GatewayMetrics } from '../observability/metrics';
import type { Logger } from '../observability/logger';
import type { CofferContext } from '../upload/coffer-context';
import type { MultipartService } from '../upload/multipart-service';
import { parseRequestTarget, queryValue, type RequestTarget } from '../server/request-target';
import { OPERATION_ACTIONS, route, type Operation } from '../server/route';
import { parseCompleteBody, toXml } from '../server/xml';
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
  readonly acceptAbsoluteForm: boolean;
  readonly requestIdleTimeoutMs: number;
  readonly metrics?: GatewayMetrics;
}

export interface RequestContext {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly requestId: string;
  /** True when the client sent `Expect: 100-continue` and waits for our go-ahead. */
  readonly expectContinue: boolean;
  readonly log: Logger;
}

const MAX_COMPLETE_BODY = 4 * 1024 * 1024;

export function createCdcsHandler(deps: HandlerDependencies): (ctx: RequestContext) => Promise<string> {
  return async (ctx) => {
    const target = parseRequestTarget(ctx.req.url ?? '/', deps.acceptAbsoluteForm);
    const operation = route(ctx.req.method ?? 'GET', target);
    const headers = headersFromRaw(ctx.req.rawHeaders);
    const principal = await deps.authenticate({ method: ctx.req.method ?? 'GET', coffer: target.coffer as string, key: target.key, query: target.query, headers });
    authorize(principal, target.coffer as string, OPERATION_ACTIONS[operation.name]);
    const context = await deps.coffers.contextFor(target.coffer as string, principal);
    ctx.log.info({ operation: operation.name, coffer: target.coffer, principal: principal.id }, 'request');
    await execute(deps, ctx, operation, target, context, principal);
    return operation.name;
  };
}

function single(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** Content-Length of a body the gateway must know up front (the ciphertext length derives from it). */
function requiredContentLength(req: IncomingMessage): number {
  if (req.headers['transfer-encoding'] !== undefined) throw new GatewayError('MissingContentLength', 'Send the body with Content-Length, not chunked.');
  const raw = req.headers['content-length'];
  if (raw === undefined) throw new GatewayError('MissingContentLength');
  if (!/^\d{1,15}$/.test(raw)) throw new GatewayError('InvalidArgument', 'Content-Length is not a valid length.');
  return Number(raw);
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

/** Arms the per-read idle timeout (nginx client_body_timeout) and sends 100 Continue if the client waits for it. */
function startBody(deps: HandlerDependencies, ctx: RequestContext): void {
  ctx.req.setTimeout(deps.requestIdleTimeoutMs, () => ctx.req.destroy(new GatewayError('RequestTimeout')));
  if (ctx.expectContinue) ctx.res.writeContinue();
}

async function readSmallBody(deps: HandlerDependencies, ctx: RequestContext, limit: number): Promise<Buffer> {
  startBody(deps, ctx);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of ctx.req) {
    size += (chunk as Buffer).length;
    if (size > limit) throw new GatewayError('MalformedXML', 'The request body is too large.');
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
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
      const length = requiredContentLength(ctx.req);
      const prepared = await service.prepareUploadPart(context, key, operation.uploadId, operation.partNumber, length, contentMd5(ctx.req));
      startBody(deps, ctx);
      deps.metrics?.inFlightParts.inc();
      const timer = deps.metrics?.partSeconds.startTimer({ storage: prepared.storage });
      const aborted = new AbortController();
      const onClose = (): void => {
        if (!ctx.req.complete) aborted.abort(new GatewayError('IncompleteBody'));
      };
      ctx.req.once('close', onClose);
      try {
        const etag = await service.uploadPart(prepared, ctx.req, aborted.signal);
        deps.metrics?.bytesIn.inc({ operation: 'UploadPart' }, length);
        ctx.res.writeHead(200, { etag, 'content-length': 0 }).end();
      } finally {
        ctx.req.off('close', onClose);
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
      const parts = parseCompleteBody(await readSmallBody(deps, ctx, MAX_COMPLETE_BODY));
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
          ctx.res.setHeader('content-range', `bytes */${size}`);
          throw new GatewayError('InvalidRange');
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
