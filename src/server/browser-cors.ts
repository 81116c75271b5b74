/**
 * CORS for browser clients (cos-js-sdk-v5 on a web page), through the `cors` middleware, per coffer:
 * each coffer lists the origins whose pages may call it (`coffers.<name>.cors.allowedOrigins`,
 * `demo.cors.allowedOrigins`).
 *
 * - A preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`) is answered before
 *   anything else runs: no authentication (a browser sends none with it), no coffer state, no upstream
 *   call. It depends on the configuration alone, so it reveals nothing but that configuration: an
 *   origin not allowed for the named coffer and a coffer the gateway does not serve get the same
 *   403 AccessDenied.
 * - Every other request from an allowed origin gets `Access-Control-Allow-Origin` (the origin itself,
 *   never `*`) and `Access-Control-Expose-Headers` (the response headers the SDK reads: `ETag`,
 *   `x-cos-request-id`, …), errors included, so the SDK sees the error code instead of a network
 *   error. The request is authenticated exactly as any other: CORS only lets the page read the answer.
 * - Never `Access-Control-Allow-Credentials`: requests are signed (Authorization header or query), so
 *   a browser's cookies or TLS client certificates are never what authorizes them.
 * - `Origin` is matched exactly (src/http/origin-pattern.ts); an `Origin` sent twice matches nothing.
 *   Responses say `Vary: Origin` so a shared cache keeps one answer per origin.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { GatewayError } from '../errors/gateway-error';
import { originAllowed, type OriginPattern } from '../http/origin-pattern';
import type { RequestHeaders } from './request-headers';

/**
 * The `cors` package, as far as this module uses it. Typed here rather than through @types/cors:
 * the image compiles src/ with TypeScript and Node's types only (docker/toolchain).
 */
interface CorsOptions {
  origin: boolean;
  methods: readonly string[];
  exposedHeaders: readonly string[];
  maxAge: number;
  credentials: false;
  preflightContinue: false;
  optionsSuccessStatus: number;
}
type CorsMiddleware = (req: IncomingMessage, res: ServerResponse, next: (error?: unknown) => void) => void;
// eslint-disable-next-line @typescript-eslint/no-require-imports -- typed above, not through @types/cors (see CorsOptions)
const cors = require('cors') as (options: CorsOptions) => CorsMiddleware;

/** The methods CDCS operations use (HEAD is implied by GET for browsers, listed for clarity). */
const ALLOWED_METHODS = ['GET', 'HEAD', 'PUT', 'POST', 'DELETE'] as const;

/**
 * Response headers a page may read besides the CORS-safelisted ones (Content-Length, Content-Type,
 * Last-Modified, Cache-Control, Expires, …): what the gateway sends and the SDK reads. `Date` lets
 * the SDK correct its clock after RequestTimeTooSkewed. User metadata (`x-cos-meta-*`) cannot be
 * listed by prefix, so it stays unreadable to pages.
 */
export const EXPOSED_HEADERS = ['ETag', 'Content-Range', 'Accept-Ranges', 'Content-Disposition', 'Content-Encoding', 'Date', 'Retry-After', 'x-cos-request-id', 'x-cdcs-request-id', 'x-cdcs-trace-id'] as const;

/**
 * How long a browser may reuse a preflight answer. Chromium caps it at 2 hours; 10 minutes keeps a
 * changed configuration from being ignored for long.
 */
export const PREFLIGHT_MAX_AGE_SECONDS = 600;

/** Response headers the CORS layer sets, which an error answer keeps (so the page can read the error). */
export function isCorsResponseHeader(name: string): boolean {
  return name.startsWith('access-control-') || name === 'vary';
}

/** Whether the request is a CORS preflight (Fetch standard: OPTIONS with Origin and Access-Control-Request-Method). */
export function isPreflight(method: string | undefined, headers: RequestHeaders): boolean {
  return method === 'OPTIONS' && headers.has('origin') && headers.has('access-control-request-method');
}

export interface BrowserCors {
  /**
   * Answers a preflight for `coffer` (undefined: the service endpoint, which allows no origin):
   * 204 with the CORS headers when the origin is allowed, else throws AccessDenied (the same answer
   * for an unknown coffer). Only for requests `isPreflight` accepts.
   */
  answerPreflight(req: IncomingMessage, res: ServerResponse, headers: RequestHeaders, coffer: string | undefined): void;
  /** Sets the CORS headers of an actual request's answer when its origin is allowed for `coffer`; else nothing. */
  decorate(req: IncomingMessage, res: ServerResponse, headers: RequestHeaders, coffer: string | undefined): void;
}

/** `allowedOrigins`: coffer name → the origins whose pages may call it (configuration, parsed). */
export function createBrowserCors(allowedOrigins: ReadonlyMap<string, readonly OriginPattern[]>): BrowserCors {
  const allowed = (headers: RequestHeaders, coffer: string | undefined): boolean => {
    const origins = headers.get('origin');
    if (coffer === undefined || origins?.length !== 1) return false;
    return originAllowed(origins[0] as string, allowedOrigins.get(coffer) ?? []);
  };
  // The origin decision is made above (per coffer, exactly); the middleware writes the headers for an
  // allowed one (reflecting it) and answers preflights.
  const middleware = cors({
    origin: true,
    methods: ALLOWED_METHODS,
    exposedHeaders: EXPOSED_HEADERS,
    maxAge: PREFLIGHT_MAX_AGE_SECONDS,
    credentials: false,
    preflightContinue: false,
    optionsSuccessStatus: 204,
  });
  /** Runs the middleware; with static options it completes synchronously (answers, or calls next). */
  const run = (req: IncomingMessage, res: ServerResponse): void => {
    let continued = false;
    middleware(req, res, () => {
      continued = true;
    });
    if (!continued && !res.writableEnded) throw new GatewayError('InternalError', 'The CORS middleware neither answered nor continued.');
  };
  return {
    answerPreflight: (req, res, headers, coffer) => {
      if (!allowed(headers, coffer)) {
        throw new GatewayError('AccessDenied', 'CORS preflight refused: the origin is not allowed for this coffer (cors.allowedOrigins).', { reason: 'cors-origin' });
      }
      run(req, res);
      // The middleware answers a preflight itself (204, Content-Length 0) when the origin is allowed.
      if (!res.writableEnded) throw new GatewayError('InternalError', 'The CORS middleware did not answer the preflight.');
    },
    decorate: (req, res, headers, coffer) => {
      // The middleware takes every OPTIONS for a preflight and would answer it 204; one that is not a
      // preflight goes on to its 405 (no CDCS operation is an OPTIONS).
      if (req.method === 'OPTIONS') return;
      if (allowed(headers, coffer)) run(req, res);
    },
  };
}
