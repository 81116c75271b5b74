import { XMLBuilder } from 'fast-xml-parser';
import type { RequestHeaders } from '../server/request-headers';
import { GatewayError } from './gateway-error';

const builder = new XMLBuilder({ format: false, suppressEmptyNode: false });

export interface RenderedError {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: string;
}

export interface ErrorContext {
  /** The request path (Resource element); never includes the query string, which may carry a presigned signature. */
  readonly resource: string;
  readonly requestId: string;
  readonly traceId: string;
  /** The request as received, when there was one (not for a malformed HTTP message): which dialect it speaks, for errors before its target parsed. */
  readonly received?: { readonly rawTarget: string; readonly headers: RequestHeaders };
}

/**
 * The one place an error becomes an HTTP answer: the COS-style XML body of cdcs-api.md plus
 * `x-cdcs-request-id` and `x-cos-request-id` (the official SDK reads only the latter), plus the
 * headers the error carries (they cannot replace the rendered ones).
 * Anything that is not a GatewayError is rendered as InternalError without its message, so
 * internals never leak to clients.
 */
export function renderError(error: unknown, context: ErrorContext, now: Date = new Date()): RenderedError {
  return renderXmlError(error, context.resource, { RequestId: context.requestId, TraceId: context.traceId }, { 'x-cdcs-request-id': context.requestId, 'x-cos-request-id': context.requestId, 'x-cdcs-trace-id': context.traceId }, now);
}

/**
 * What every dialect's XML error shares: anything that is not a GatewayError is InternalError without
 * its message (internals never leak); `<Error>` with Code, Message (with the reason), Resource and the
 * dialect's id elements; the error's own headers under the rendered ones; the dialect's id headers.
 */
export function renderXmlError(error: unknown, resource: string, idElements: Readonly<Record<string, string>>, idHeaders: Readonly<Record<string, string>>, now: Date): RenderedError {
  const known = error instanceof GatewayError ? error : new GatewayError('InternalError');
  const message = known.reason === undefined ? known.message : `${known.message} (reason: ${known.reason})`;
  const body = `<?xml version="1.0" encoding="UTF-8"?>${builder.build({ Error: { Code: known.code, Message: message, Resource: resource, ...idElements } }) as string}`;
  return {
    status: known.status,
    headers: { ...known.headers, 'content-type': 'application/xml', 'content-length': String(Buffer.byteLength(body)), ...idHeaders, date: now.toUTCString() },
    body,
  };
}
