/**
 * The data-plane HTTP listener.
 *
 * - Node's strict parser (never `insecureHTTPParser`); malformed HTTP (`clientError`) gets a rendered
 *   400/431 and the connection is closed; it never reaches `handle`.
 * - Deliberate timeouts from configuration: `headersTimeout` (Slowloris), `requestTimeout` (0 = off:
 *   a whole-request limit kills slow 5 GiB parts; the per-read body idle timeout guards stalls),
 *   `keepAliveTimeout`; a connection cap and a header size cap (→ 431).
 * - Shedding at the connection cap (`maxConnections`): a client arriving at the cap must not be reset
 *   while slow clients hold the slots. The newcomer takes the slot of the connection that has waited
 *   longest without a request in progress (an idle keep-alive connection, or one still dribbling its
 *   headers: nothing is lost by closing either). Requests in progress are never shed for a newcomer;
 *   slow ones are cut by their own timeouts (headers, minimum body rate, body idle, response idle).
 *   When every slot carries a request the newcomer is still accepted, its request answered
 *   503 SlowDown with `Retry-After` and `Connection: close`; up to OVER_CAP_ANSWER_SLOTS such
 *   connections at once, each given OVER_CAP_REQUEST_MS to send its request. Only past that does Node
 *   drop connections outright.
 * - Every response carries `x-cdcs-request-id` and `x-cos-request-id` (the SDK reads only the latter)
 *   with the same random id, and `Date`.
 * - The request is built once (gateway-exchange.ts): headers read once, the target parsed and routed
 *   by the dialect's router, the body framing checked — all BEFORE `handle` runs; those errors take
 *   the same error path as the handler's. With `Expect: 100-continue` nothing is sent until the
 *   handler accepts the body (`request.acceptBody()`), so a refusal costs the client no body bytes.
 * - `fail` is the one error path and the only caller of the renderer: an error becomes an XML
 *   answer; once a kept-alive 200 is out it ends that XML body; once any other status line is out it
 *   can only reset the connection (a client must never take a truncated answer for a complete one).
 * - Every request is reported exactly once (`onAnswered`: metrics and the audit line,
 *   src/observability/request-observer.ts) when both its handler and its response are done —
 *   refusals before the handler and malformed HTTP included.
 * - A client that stops reading its answer (output pending, nothing flushed for
 *   `responseIdleTimeoutMs`) has its connection reset, which also ends the upstream read feeding it
 *   (response-idle-guard.ts).
 */
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { STATUS_CODES, createServer, type IncomingMessage, type Server, type ServerOptions, type ServerResponse } from 'node:http';
import { createServer as createTlsServer, type Server as HttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { Server as TlsServer } from 'node:tls';
import type { Duplex } from 'node:stream';
import type { GatewayConfig } from '../config/schema';
import { refuseConnect, type ConnectHandler, type ServeTunnel } from '../egress/connect-interceptor';
import { GatewayError, isGatewayError } from '../errors/gateway-error';
import { renderError } from '../errors/render-error';
import { describeError } from '../observability/logger';
import type { Logger } from '../observability/logger';
import pino from 'pino';
import { bodyFramingOf } from './body-guard';
import { createGatewayRequest, GatewayResponse, type GatewayRequest, type NamedOperation } from './gateway-exchange';
import { readHeaders, type RequestHeaders } from './request-headers';
import { createRequestObserver } from '../observability/request-observer';
import { isCorsResponseHeader, isPreflight, type BrowserCors } from './browser-cors';
import { WriteStallTracker, sweepIntervalMs } from './response-idle-guard';
import { queryParameterRules, type QueryParameterRules } from '../cdcs/query-parameters';
import { resourceOf, type RequestTarget } from '../cdcs/request-target';
import { createCdcsRouter } from '../cdcs/cdcs-router';

/** More header lines than any S3/COS client sends; above it → 431 (Node would silently drop lines past its own cap). */
export const MAX_HEADER_COUNT = 200;
/** How long a connection answered with a parse error may keep draining before it is destroyed. */
const ERROR_LINGER_MS = 1000;
/** Connections accepted beyond maxConnections only to be answered 503 SlowDown (see the module comment). */
export const OVER_CAP_ANSWER_SLOTS = 256;
/** Time an over-cap connection has to send its request (a real client sends it at once) before it is closed. */
const OVER_CAP_REQUEST_MS = 2_000;
/** Seconds an over-cap client is told to wait (`Retry-After`). */
const OVER_CAP_RETRY_AFTER_SECONDS = 1;

/** The answer of a connection accepted over the cap (see the module comment). */
const overCapError = (): GatewayError => new GatewayError('SlowDown', 'The gateway is at its connection limit; retry shortly.', { reason: 'connection-limit', headers: { 'retry-after': String(OVER_CAP_RETRY_AFTER_SECONDS) } });

/** Per admitted connection: requests in progress, and since when it has had none (monotonic ms). */
interface ConnectionState {
  requests: number;
  waitingSince: number;
}

/** The TCP socket under a request's socket: the TLS socket wraps it (`_parent`, set by node:tls). */
function tcpSocketOf(socket: Duplex): Socket {
  return ((socket as { _parent?: Socket })._parent ?? socket) as Socket;
}

/**
 * Which operation a request is, in a dialect's terms (CDCS: src/cdcs/cdcs-router.ts). Both steps may
 * throw a GatewayError; the listener answers it like any other error. `parseTarget` runs first so the
 * CONNECT-tunnel host check sees the parsed authority before the query is judged.
 */
export interface RequestRouter<Operation extends NamedOperation = NamedOperation> {
  parseTarget(rawTarget: string, headers: RequestHeaders): RequestTarget;
  route(method: string, target: RequestTarget): Operation;
}

/**
 * Answers one request; resolves once the answer is written (or handed to a stream that ends it).
 * Throwing hands the error to the listener's one error path (`fail`), which renders it, ends a
 * kept-alive body with it, or resets the connection — whatever the response has committed to.
 */
export type GatewayHandler<Operation extends NamedOperation = NamedOperation> = (request: GatewayRequest<Operation>, response: GatewayResponse) => Promise<void>;

/** One answered request, reported exactly once (refusals before the handler and malformed HTTP included). */
export interface AnsweredRequest {
  readonly requestId: string;
  readonly traceId: string;
  readonly method: string;
  /** Undefined when the request was refused before it could be routed. */
  readonly operation: string | undefined;
  /** Coffer and key as the target named them (undefined when absent or unparsable). */
  readonly coffer: string | undefined;
  readonly key: string | undefined;
  readonly principal: string | undefined;
  /** The status line sent; 0 when the connection was reset before one went out. */
  readonly status: number;
  /** `OK`, or the error code (also when the error ended a committed answer or reset it). */
  readonly code: string;
  readonly reason: string | undefined;
  /** The error's class and message, for server faults only (never a client-controlled secret: messages are ours). */
  readonly error: { readonly name: string; readonly message: string } | undefined;
  readonly fault: 'client' | 'server' | undefined;
  readonly bytesIn: number;
  readonly bytesOut: number;
  readonly durationSeconds: number;
}

export interface GatewayServerOptions<Operation extends NamedOperation = NamedOperation> {
  readonly server: GatewayConfig['server'];
  readonly handle: GatewayHandler<Operation>;
  /** Default: the CDCS router (with `queryParameters`). */
  readonly router?: RequestRouter<Operation>;
  /** How an error becomes an answer (the dialect's error XML). Default: the CDCS renderer (src/errors/render-error.ts). */
  readonly renderError?: typeof renderError;
  /** Called once per answered request: the one place metrics and the audit line come from (src/observability/request-observer.ts). */
  readonly onAnswered?: (answered: AnsweredRequest) => void;
  readonly logger?: Logger;
  /** Called when a connection is reset because its client stopped reading (the gateway counts these). */
  readonly onResponseIdleTimeout?: () => void;
  /** Which query parameters are credentials (default: the COS fields and security tokens). */
  readonly queryParameters?: QueryParameterRules;
  /** Answers CONNECT (src/egress/connect-interceptor.ts). Absent: every CONNECT is refused with 403. */
  readonly onConnect?: ConnectHandler;
  /** Called when the connection cap sheds a waiting connection or answers a newcomer 503 SlowDown. */
  readonly onConnectionShed?: (how: 'waiting-closed' | 'newcomer-refused') => void;
  /** CORS for browser clients (src/server/browser-cors.ts). Absent: no CORS headers; a preflight is 405 like any OPTIONS. */
  readonly cors?: BrowserCors;
}

/**
 * The gateway's request handling, independent of who owns the listener: `handler` answers requests
 * (Express-compatible, so it mounts in an app beside other routes); `attach` installs what only the
 * listener can do (the module comment's list). A plain `http.createServer(app)` without `attach`
 * would send `100 Continue` before anything could refuse, and has none of the listener guards.
 */
export interface GatewayFrontEnd {
  /**
   * Answers every request it is given, as the client sent it (the raw request target, so the
   * signature covers it: mount it at the root, after your own routes). Never calls `next`.
   */
  readonly handler: (req: IncomingMessage, res: ServerResponse, next?: (error?: unknown) => void) => void;
  /**
   * Installs the listener hooks on `server` before it listens: `checkContinue` / `checkExpectation`
   * (nothing is sent before the handler accepts), `clientError`, `connect` (egress interception or
   * 403), the timeouts and parser limits, the connection cap, the response-idle sweep, and the drain
   * of `close`. Throws if the server already listens (Node fixes its timeout checks at listen time).
   */
  attach(server: Server): void;
  /** Stops accepting on every attached server, lets in-flight requests finish for up to `graceMs`, then resets every remaining connection. */
  close(graceMs: number): Promise<void>;
  /** Requests whose handler or response has not finished. */
  inFlight(): number;
}

export interface GatewayServer {
  readonly server: Server;
  listen(): Promise<{ port: number }>;
  /** Stops accepting, lets in-flight requests finish for up to `graceMs`, then destroys every remaining socket. */
  close(graceMs: number): Promise<void>;
  /** Requests whose handler or response has not finished. */
  inFlight(): number;
  /** Serves `pair` to new TLS handshakes (established connections keep theirs). Throws without TLS. */
  setSecureContext(pair: { readonly cert: string; readonly key: string }): void;
}

const newId = (): string => randomBytes(16).toString('hex');

/** For a front end built without a logger (tests of the listener alone). */
const silentLog = pino({ level: 'silent' });

const TRACEPARENT = /^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$/;

/** A caller's W3C trace id when exactly one valid `traceparent` came, so logs join up; else a fresh one. */
function traceIdOf(headers: RequestHeaders): string {
  const values = headers.get('traceparent');
  const match = values?.length === 1 ? TRACEPARENT.exec((values[0] as string).trim()) : null;
  const traceId = match?.[1];
  return traceId !== undefined && !/^0+$/.test(traceId) ? traceId : newId();
}

/** Checks Node leaves to us (requireHostHeader is off so these answers carry request ids too). */
function checkHeaders(req: IncomingMessage, headers: RequestHeaders): void {
  // llhttp still parses `GET / HTTP/2.0` and HTTP/0.9 (`GET /`) lines as requests.
  if (req.httpVersionMajor !== 1 || (req.httpVersionMinor !== 0 && req.httpVersionMinor !== 1)) {
    throw new GatewayError('InvalidRequest', 'Only HTTP/1.0 and HTTP/1.1 are supported.');
  }
  if (req.rawHeaders.length / 2 > MAX_HEADER_COUNT) {
    throw new GatewayError('RequestHeaderFieldsTooLarge', `More than ${MAX_HEADER_COUNT} header lines.`);
  }
  const hosts = headers.get('host')?.length ?? 0;
  if (hosts > 1) throw new GatewayError('InvalidRequest', 'Host appears more than once.');
  if (hosts === 0 && req.httpVersionMajor === 1 && req.httpVersionMinor >= 1) throw new GatewayError('InvalidRequest', 'HTTP/1.1 requests need a Host header.');
}

/**
 * Inside a CONNECT tunnel the request must name the host the tunnel was opened to (its certificate's
 * name): one tunnel, one coffer endpoint, so a tunnel to one coffer cannot carry requests for another.
 */
function checkTunnelHost(tunnelHost: string | undefined, authority: string | undefined): void {
  if (tunnelHost === undefined) return;
  if (authority !== tunnelHost && authority !== `${tunnelHost}:443`) {
    throw new GatewayError('AccessDenied', 'Inside a CONNECT tunnel every request must name the host the tunnel was opened to.');
  }
}

function clientErrorOf(error: NodeJS.ErrnoException): GatewayError {
  switch (error.code) {
    case 'HPE_HEADER_OVERFLOW':
      return new GatewayError('RequestHeaderFieldsTooLarge');
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      // headersTimeout (or requestTimeout) ran out before the request was complete.
      return new GatewayError('RequestTimeout', 'The request was not received in time.');
    default:
      return new GatewayError('InvalidRequest', `The request is not valid HTTP/1.1 (${error.code ?? 'parse error'}).`);
  }
}

/**
 * Ends a connection whose client stopped reading. A reset, not a FIN: a FIN would queue behind the
 * unsent bytes, and the kernel would keep the orphaned socket probing the client's zero window.
 * TLS sockets cannot be reset through their TLS handle; they are destroyed.
 */
function resetConnection(socket: Socket): void {
  // Our side already ended with nothing left to send: the answer is complete and its FIN is on the
  // way, so there is nothing to signal. A reset while that shutdown is in flight also makes libuv
  // refuse (EINVAL) and has left the process spinning; a plain destroy is right here.
  if (socket.writableEnded && socket.writableLength === 0) {
    socket.destroy();
    return;
  }
  if (typeof socket.resetAndDestroy === 'function') {
    try {
      socket.resetAndDestroy();
      return;
    } catch {
      // not a TCP handle (TLS): fall through
    }
  }
  socket.destroy();
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

/** The options Node takes only at construction (`attach` sets the same on a server built without them). */
export function listenerOptions(config: GatewayConfig['server']): ServerOptions {
  return {
    maxHeaderSize: config.maxHeaderBytes,
    insecureHTTPParser: false,
    // Checked in checkHeaders instead, so that the 400 carries request ids like every other answer.
    requireHostHeader: false,
    requestTimeout: config.requestTimeoutMs,
    headersTimeout: config.headersTimeoutMs,
    keepAliveTimeout: config.keepAliveTimeoutMs,
    // headersTimeout/requestTimeout are only enforced at this interval (default 30 s).
    connectionsCheckingInterval: Math.max(250, Math.min(5_000, Math.floor(config.headersTimeoutMs / 4))),
  };
}

/** An http (or, with `server.tls`, https) server built with `listenerOptions`, answering with `listener`. */
export function createListener(config: GatewayConfig['server'], listener: (req: IncomingMessage, res: ServerResponse) => void): Server {
  const serverOptions = listenerOptions(config);
  const server: Server = config.tls ? (createTlsServer({ ...serverOptions, cert: config.tls.certPem, key: config.tls.keyPem }) as unknown as Server) : createServer(serverOptions);
  server.on('request', listener);
  return server;
}

/** The front end on its own listener (`createListener` + `attach`): what the HTTP tests run. */
export function createGatewayServer<Operation extends NamedOperation = NamedOperation>(options: GatewayServerOptions<Operation>): GatewayServer {
  const frontEnd = createGatewayFrontEnd(options);
  const listener = createGatewayListener(options.server, frontEnd.handler);
  frontEnd.attach(listener.server);
  return { ...listener, inFlight: () => frontEnd.inFlight(), close: (graceMs) => frontEnd.close(graceMs) };
}

/** A listener for `config` answering with `listener` (an app that mounts the front end, or its handler); attach the front end before `listen`. */
export function createGatewayListener(config: GatewayConfig['server'], listener: (req: IncomingMessage, res: ServerResponse) => void): Omit<GatewayServer, 'close' | 'inFlight'> {
  const server = createListener(config, listener);
  return {
    server,
    setSecureContext: (pair) => {
      if (!config.tls) throw new Error('The data-plane listener does not serve TLS.');
      (server as unknown as HttpsServer).setSecureContext({ cert: pair.cert, key: pair.key });
    },
    listen: () =>
      new Promise((resolve, reject) => {
        const onError = (error: Error): void => reject(error);
        server.once('error', onError);
        server.listen({ port: config.port, host: config.host }, () => {
          server.off('error', onError);
          resolve({ port: (server.address() as AddressInfo).port });
        });
      }),
  };
}

export function createGatewayFrontEnd<Operation extends NamedOperation = NamedOperation>(options: GatewayServerOptions<Operation>): GatewayFrontEnd {
  const config = options.server;
  const log = options.logger;
  const router: RequestRouter<Operation> = options.router ?? (createCdcsRouter(config, options.queryParameters ?? queryParameterRules()) as unknown as RequestRouter<Operation>);
  /** Every answered request goes here once: the caller's observer (metrics and the audit line), or the audit line alone. */
  /** The one error renderer; `fail` (and the malformed-HTTP answer, which has no request) are its only callers. */
  const render = options.renderError ?? renderError;
  const answered = options.onAnswered ?? (log === undefined ? () => undefined : createRequestObserver({ log }));
  const sockets = new Set<Socket>();
  /** Connections within the cap (TCP sockets), with their request state; over-cap ones are not in it. */
  const admitted = new Map<Socket, ConnectionState>();
  /** Over-cap connections → the timer that closes them if their request does not come. */
  const overCap = new Map<Socket, NodeJS.Timeout>();
  /** The response currently being produced on a socket: a parse error then must not write a raw answer into it. */
  const activeResponse = new WeakMap<Duplex, ServerResponse>();
  const answeredSockets = new WeakSet<Duplex>();
  /** Every response not yet closed (also for TLS, where `sockets` holds the TCP sockets, not the TLS ones). */
  const liveResponses = new Map<ServerResponse, Duplex>();
  const requestIds = new WeakMap<ServerResponse, string>();
  const stalls = new WriteStallTracker(config.responseIdleTimeoutMs);
  let sweeper: NodeJS.Timeout | undefined;
  let inFlight = 0;
  let drainWaiters: Array<() => void> = [];
  let closing: Promise<void> | undefined;
  /** Decrypted CONNECT tunnels → the host they were opened to; every request inside must name it. */
  const tunnelHosts = new WeakMap<Duplex, string>();

  /** Servers `attach` was given; `close` stops and drains them. */
  const servers = new Set<Server>();
  /** How each request arrived: through `checkContinue` (the client waits for 100) or `checkExpectation` (an Expect we do not support). */
  const expectations = new WeakMap<IncomingMessage, 'continue' | 'unsupported'>();

  const release = (): void => {
    inFlight -= 1;
    if (inFlight === 0) {
      const waiters = drainWaiters;
      drainWaiters = [];
      for (const wake of waiters) wake();
    }
  };

  /** Closes the admitted connection that has waited longest with no request in progress; false if every one is busy. */
  const shedLongestWaiting = (): boolean => {
    let victim: Socket | undefined;
    let since = Infinity;
    for (const [socket, state] of admitted) {
      if (state.requests === 0 && state.waitingSince < since) {
        victim = socket;
        since = state.waitingSince;
      }
    }
    if (victim === undefined) return false;
    admitted.delete(victim);
    log?.debug({ waitedMs: Math.round(performance.now() - since) }, 'connection cap: closed the longest-waiting connection for a newcomer');
    options.onConnectionShed?.('waiting-closed');
    victim.destroy();
    return true;
  };

  const onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    const startedAt = performance.now();
    // Without `attach` Node has already answered an Expect itself (100, or 417): nothing is awaited then.
    const expect = expectations.get(req) ?? 'none';
    const connection = tcpSocketOf(req.socket);
    const overCapTimer = overCap.get(connection);
    if (overCapTimer !== undefined) clearTimeout(overCapTimer); // answered now; closed after the answer
    const connectionState = admitted.get(connection);
    if (connectionState !== undefined) connectionState.requests += 1;
    inFlight += 1;
    activeResponse.set(req.socket, res);
    liveResponses.set(res, req.socket);
    const requestId = newId();
    requestIds.set(res, requestId);
    const method = req.method ?? '';
    const headers = readHeaders(req.rawHeaders);
    const traceId = traceIdOf(headers);
    const requestLog = log?.child({ requestId }) ?? silentLog;
    // As the client sent it: a router that mounted this handler below a path rewrote req.url.
    const rawTarget = (req as { originalUrl?: string }).originalUrl ?? req.url ?? '';
    let resource = resourceOf(rawTarget);
    let target: RequestTarget | undefined;
    /** Known once routed: a refusal after routing (framing: 411) is still counted under its operation. */
    let operation: Operation | undefined;
    let request: GatewayRequest<Operation> | undefined;
    const response = new GatewayResponse(res, method);
    res.setHeader('x-cdcs-request-id', requestId);
    res.setHeader('x-cos-request-id', requestId);
    res.setHeader('date', new Date().toUTCString());
    // Late errors (client gone) must not crash the process; the guard reports body failures itself.
    req.on('error', (error) => requestLog.debug({ err: error.message }, 'request stream error'));
    res.on('error', (error) => requestLog.debug({ err: error.message }, 'response stream error'));

    const responseClosed = new Promise<void>((resolve) => res.once('close', resolve));
    let handlerDone: Promise<void> = Promise.resolve();
    let handlerStarted = false;
    /** The error this request ended with (answered, told in a committed body, or reset); undefined = OK. */
    let outcome: { readonly error: unknown } | undefined;
    void responseClosed.then(() => {
      if (connectionState !== undefined && --connectionState.requests === 0) connectionState.waitingSince = performance.now();
      liveResponses.delete(res);
      if (activeResponse.get(req.socket) === res) activeResponse.delete(req.socket);
    });

    /** The one error path: whatever failed, before or inside the handler, ends here. */
    const fail = (error: unknown): void => {
      outcome ??= { error };
      const inBody = response.errorFitsInBody;
      if (!inBody && (res.headersSent || res.destroyed || res.writableEnded || req.socket.destroyed)) {
        // The status line is gone: only a reset tells the client the answer is incomplete.
        res.destroy();
        return;
      }
      const rendered = render(error, { resource, requestId, traceId, received: { rawTarget, headers } });
      if (inBody) {
        // A kept-alive 200 is out: the error is told as the rest of its XML body (the SDK reads it as an error).
        response.endBodyWithError(rendered.body);
        return;
      }
      // e.g. an ETag set before the failure; the CORS headers stay, so a page can read the error.
      for (const name of res.getHeaderNames()) if (!isCorsResponseHeader(name)) res.removeHeader(name);
      // An unread body (refused 100-continue, or a failure mid-body) leaves the connection unusable;
      // a request refused before the handler may be malformed framing-wise (a GET with a body hiding a
      // second request), so its connection is not reused either.
      const closeAfter = !handlerStarted || !req.complete || closing !== undefined;
      res.writeHead(rendered.status, { ...rendered.headers, ...(closeAfter ? { connection: 'close' } : {}) });
      res.end(method === 'HEAD' ? undefined : rendered.body);
    };

    try {
      if (overCap.has(connection)) throw overCapError();
      if (closing !== undefined) throw new GatewayError('ServiceUnavailable', 'The gateway is shutting down; retry.');
      if (expect === 'unsupported') throw new GatewayError('ExpectationFailed');
      checkHeaders(req, headers);
      // The request identity, parsed once: authentication verifies it, routing and the handler act on it.
      target = router.parseTarget(rawTarget, headers);
      resource = target.pathname;
      checkTunnelHost(tunnelHosts.get(req.socket), target.authority);
      if (options.cors !== undefined && isPreflight(method, headers)) {
        // Answered from the configuration alone (browser-cors.ts): no operation, no upstream; reported
        // once like every answer (onAnswered), without an operation.
        const preflightFraming = bodyFramingOf('OPTIONS', headers);
        if (preflightFraming.kind === 'chunked' || (preflightFraming.kind === 'length' && preflightFraming.length > 0)) throw new GatewayError('InvalidRequest', 'A CORS preflight must not carry a body.');
        options.cors.answerPreflight(req, res, headers, target.coffer);
      } else {
        options.cors?.decorate(req, res, headers, target.coffer);
        operation = router.route(method, target);
        const framing = bodyFramingOf(method, headers);
        request = createGatewayRequest<Operation>(
          req,
          { id: requestId, traceId, method, headers, target, operation, framing, expectContinue: expect === 'continue', log: requestLog, ...(req.socket.remoteAddress === undefined ? {} : { remoteAddress: req.socket.remoteAddress }) },
          { idleTimeoutMs: config.requestIdleTimeoutMs, minRate: { bytesPerSecond: config.minBodyRateBytesPerSecond, graceMs: config.minBodyRateGraceMs } },
          () => {
            // Only the body's reader decides to accept; a client that asked for nothing gets nothing.
            if (expect === 'continue' && !res.headersSent) res.writeContinue();
          },
        );
      }
    } catch (error) {
      fail(error);
    }

    if (request !== undefined) {
      const accepted = request;
      handlerDone = Promise.resolve()
        .then(() => {
          // The parser may already have failed on bytes that followed the headers in the same
          // packet (a broken chunk): that connection is gone, so no handler work is started for it.
          if (req.socket.destroyed) throw new GatewayError('IncompleteBody', 'The connection closed before the request was handled.');
          handlerStarted = true;
          return options.handle(accepted, response);
        })
        .then(() => {
          if (res.writableEnded) return;
          fail(new GatewayError('InternalError', 'The handler returned without answering.'));
        }, fail)
        .catch((error: unknown) => {
          requestLog.error({ err: describeError(error) }, 'error while answering');
          res.destroy();
        });
    }

    void Promise.all([handlerDone, responseClosed]).then(() => {
      const error = outcome?.error;
      const known = error === undefined ? undefined : isGatewayError(error) ? error : undefined;
      answered({
        requestId,
        traceId,
        method,
        operation: operation?.name,
        coffer: target?.coffer,
        key: target?.key,
        principal: request?.principal,
        status: res.headersSent ? res.statusCode : 0,
        code: error === undefined ? 'OK' : (known?.code ?? 'InternalError'),
        reason: known?.reason,
        error: error !== undefined && known === undefined ? describeError(error) : undefined,
        fault: error === undefined ? undefined : (known?.fault ?? 'server'),
        bytesIn: request?.bodyBytesRead ?? 0,
        bytesOut: response.bodyBytesWritten,
        durationSeconds: (performance.now() - startedAt) / 1000,
      });
      release();
    });
  };

  const attach = (server: Server): void => {
    if (server.listening) throw new Error('attach(server) must run before server.listen(): Node fixes its timeout checks when it starts listening.');
    if (servers.has(server)) return;
    servers.add(server);
    // What http.createServer only takes as options; Node reads these per connection.
    Object.assign(server, listenerOptions(config));
    // Node drops (resets) connections past its own cap; ours is enforced in the 'connection' listener
    // below, which answers instead. Node's cap stays as the hard bound on sockets.
    server.maxConnections = config.maxConnections + OVER_CAP_ANSWER_SLOTS;
    // 0 = no count limit: Node would otherwise DROP header lines past 2000 without an error, hiding
    // duplicates from the signature check. The byte cap (maxHeaderSize) still bounds them; the count is
    // refused explicitly in checkHeaders.
    server.maxHeadersCount = 0;
    // No socket inactivity timeout: bodies have the per-read idle guard, idle keep-alive connections keepAliveTimeout.
    server.timeout = 0;
    // With these listeners Node sends neither 100 Continue nor 417 itself: the request goes to the
    // server's request listener (the app, then this handler), which decides.
    server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => {
      expectations.set(req, 'continue');
      server.emit('request', req, res);
    });
    server.on('checkExpectation', (req: IncomingMessage, res: ServerResponse) => {
      expectations.set(req, 'unsupported');
      server.emit('request', req, res);
    });
    server.on('connection', (socket: Socket) => {
      sockets.add(socket);
      // A CONNECT tunnel's decrypted socket rides on a connection that already holds its slot: its
      // requests are counted on that TCP connection (tcpSocketOf), so it takes no second slot.
      if (tunnelHosts.has(socket)) {
        socket.once('close', () => sockets.delete(socket));
        return;
      }
      socket.once('close', () => {
        sockets.delete(socket);
        admitted.delete(socket);
        clearTimeout(overCap.get(socket));
        overCap.delete(socket);
      });
      if (admitted.size >= config.maxConnections && !shedLongestWaiting()) {
        // Every slot carries a request: accept anyway, to answer 503 SlowDown rather than reset (onRequest).
        options.onConnectionShed?.('newcomer-refused');
        const timer = setTimeout(() => socket.destroy(), OVER_CAP_REQUEST_MS);
        timer.unref();
        overCap.set(socket, timer);
        return;
      }
      admitted.set(socket, { requests: 0, waitingSince: performance.now() });
    });
    // CONNECT never opens a tunnel (that would make this an open proxy): either the egress interceptor
    // terminates TLS for a coffer endpoint and hands the decrypted connection back to this same server,
    // or the CONNECT is answered 403. There is deliberately no 'upgrade' listener: a request carrying
    // `Upgrade` is then served as an ordinary request (never 101).
    const serveTunnel: ServeTunnel = (tlsSocket, host) => {
      tunnelHosts.set(tlsSocket, host);
      // An https server parses what its 'secureConnection' delivers, a plain one its 'connection'.
      server.emit(server instanceof TlsServer ? 'secureConnection' : 'connection', tlsSocket);
    };
    server.on('connect', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      const connection = tcpSocketOf(socket);
      if (overCap.has(connection)) {
        // Over the connection cap: the same answer as any other request there (a tunnel would hold the slot).
        clearTimeout(overCap.get(connection));
        refuseConnect(socket, overCapError());
        return;
      }
      if (options.onConnect !== undefined) options.onConnect(req, socket, head, serveTunnel);
      else refuseConnect(socket, new GatewayError('AccessDenied', 'This listener does not serve CONNECT; it opens no tunnels.'));
    });

    server.on('clientError', (error: NodeJS.ErrnoException, socket: Duplex) => {
      if (answeredSockets.has(socket)) return; // the parser reports each later chunk again; the linger timer ends it
      const active = activeResponse.get(socket);
      if (error.code === 'ECONNRESET' || !socket.writable || active !== undefined) {
        // Mid-response (pipelined garbage, a broken chunked body) a raw answer would corrupt the stream.
        socket.destroy();
        return;
      }
      answeredSockets.add(socket);
      const requestId = newId();
      const gatewayError = clientErrorOf(error);
      const rendered = render(gatewayError, { resource: '/', requestId, traceId: requestId });
      answered({
        requestId,
        traceId: requestId,
        method: '',
        operation: undefined,
        coffer: undefined,
        key: undefined,
        principal: undefined,
        status: rendered.status,
        code: gatewayError.code,
        reason: error.code ?? 'parse-error',
        error: undefined,
        fault: gatewayError.fault,
        bytesIn: 0,
        bytesOut: Buffer.byteLength(rendered.body),
        durationSeconds: 0,
      });
      const head = [`HTTP/1.1 ${rendered.status} ${STATUS_CODES[rendered.status] ?? ''}`];
      for (const [name, value] of Object.entries(rendered.headers)) head.push(`${name}: ${value}`);
      head.push('connection: close', '', '');
      socket.end(head.join('\r\n') + rendered.body);
      // Give the answer time to reach the client before the reset an unread request would cause.
      const linger = setTimeout(() => socket.destroy(), ERROR_LINGER_MS);
      linger.unref();
      socket.once('close', () => clearTimeout(linger));
    });
    clearInterval(sweeper);
    sweeper = setInterval(sweep, sweepIntervalMs(config.responseIdleTimeoutMs));
    sweeper.unref();
    server.once('close', () => {
      servers.delete(server);
      if (servers.size === 0) clearInterval(sweeper);
    });
  };

  /** Resets every connection whose pending output made no progress for responseIdleTimeoutMs. */
  const sweep = (): void => {
    const checked = new Set<Duplex>();
    for (const [res, duplex] of liveResponses) {
      if (checked.has(duplex)) continue; // pipelined responses share their socket
      checked.add(duplex);
      const socket = duplex as Socket;
      if (socket.destroyed || !stalls.stalled(socket)) continue;
      stalls.forget(socket);
      log?.warn({ requestId: requestIds.get(res), pendingBytes: socket.writableLength, idleMs: config.responseIdleTimeoutMs }, 'the client stopped reading the response; connection reset');
      options.onResponseIdleTimeout?.();
      resetConnection(socket);
    }
  };
  return {
    handler: (req, res) => onRequest(req, res),
    attach,
    inFlight: () => inFlight,
    close: (graceMs) => {
      closing ??= (async () => {
        const closed = [...servers].map((server) => new Promise<void>((resolve) => server.close(() => resolve())));
        for (const server of servers) server.closeIdleConnections();
        // Answers not yet started close their connection instead of keeping it alive.
        // Only the newest request of a connection: closing after an earlier one would silently drop a
        // pipelined request that is already being handled.
        for (const [res, socket] of liveResponses) {
          if (!res.headersSent && activeResponse.get(socket) === res) res.setHeader('connection', 'close');
        }
        if (inFlight > 0) {
          const drained = new Promise<void>((resolve) => drainWaiters.push(resolve));
          await Promise.race([drained, delay(graceMs)]);
        }
        // Reset, never end: a half-received part must look failed to both sides. A plain destroy() is a
        // FIN when the gateway has read everything the client sent (a stalled upload), which a client
        // could take for an orderly end; the RST cannot be mistaken.
        for (const socket of sockets) resetConnection(socket);
        clearInterval(sweeper);
        await Promise.all(closed);
      })();
      return closing;
    },
  };
}
