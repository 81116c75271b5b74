/**
 * The data-plane HTTP listener: Node's strict parser (no insecureHTTPParser), deliberate timeouts
 * (no whole-request limit by default — it kills slow 5 GiB parts — but a headers timeout and a
 * per-read body idle timeout), a connection cap, request ids on every response, and the one place
 * where a thrown error becomes an HTTP answer (renderError). After headers were sent, an error can
 * only reset the connection, which is what a client must see when a stream fails mid-way.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import type { GatewayConfig } from '../config';
import { GatewayError, isGatewayError } from '../errors/gateway-error';
import { renderError } from '../errors/render-error';
import { IntegrityError } from '../format/integrity-error';
import type { Logger } from '../observability/logger';
import type { GatewayMetrics } from '../observability/metrics';
import type { RequestContext } from '../gateway/cdcs-handler';

export interface GatewayServerOptions {
  readonly server: GatewayConfig['server'];
  readonly handle: (ctx: RequestContext) => Promise<string>;
  readonly log: Logger;
  readonly metrics?: GatewayMetrics;
}

export interface GatewayServer {
  readonly server: Server;
  listen(): Promise<number>;
  /** Stops accepting, lets in-flight requests finish for up to `graceMs`, then destroys what is left. */
  close(graceMs: number): Promise<void>;
  inFlight(): number;
}

/** The decoded path without the query (which may carry a presigned signature): safe for logs and error bodies. */
function resourceOf(req: IncomingMessage): string {
  const url = req.url ?? '/';
  const path = url.split('?')[0] as string;
  try {
    return decodeURIComponent(path.replace(/^https?:\/\/[^/]*/i, '') || '/');
  } catch {
    return '/';
  }
}

export function createGatewayServer(options: GatewayServerOptions): GatewayServer {
  const config = options.server;
  let active = 0;
  const sockets = new Set<Socket>();

  const onRequest = (req: IncomingMessage, res: ServerResponse, expectContinue: boolean): void => {
    const requestId = randomBytes(12).toString('hex');
    const log = options.log.child({ requestId });
    const started = process.hrtime.bigint();
    active += 1;
    res.setHeader('x-cdcs-request-id', requestId);
    res.setHeader('x-cos-request-id', requestId);
    res.setHeader('date', new Date().toUTCString());
    let operation = 'Unknown';
    options
      .handle({ req, res, requestId, expectContinue, log })
      .then((name) => {
        operation = name;
        options.metrics?.requests.inc({ operation, code: 'OK' });
      })
      .catch((error: unknown) => {
        const code = isGatewayError(error) ? error.code : error instanceof IntegrityError ? 'IntegrityCheckFailed' : 'InternalError';
        options.metrics?.requests.inc({ operation, code });
        if (error instanceof IntegrityError) {
          options.metrics?.integrityFailures.inc({ reason: error.reason });
          log.error({ reason: error.reason, resource: resourceOf(req) }, 'stored data failed authentication');
        } else if (!isGatewayError(error) || error.fault === 'server') {
          log.error({ code, reason: isGatewayError(error) ? error.reason : undefined, err: isGatewayError(error) ? undefined : { name: (error as Error)?.name, message: (error as Error)?.message } }, 'request failed');
        } else {
          log.info({ code, reason: error.reason }, 'request refused');
        }
        if (res.headersSent) {
          // The status line is gone; a reset is the only honest signal left.
          res.destroy();
          req.destroy();
          return;
        }
        const mapped = error instanceof IntegrityError ? new GatewayError('IntegrityCheckFailed') : error;
        const rendered = renderError(mapped, { resource: resourceOf(req), requestId, traceId: requestId });
        const closeAfter = !req.complete; // the body was not read: do not let the client keep sending it
        res.writeHead(rendered.status, { ...rendered.headers, ...(closeAfter ? { connection: 'close' } : {}) });
        res.end(req.method === 'HEAD' ? undefined : rendered.body);
        if (closeAfter) res.once('finish', () => req.socket.destroySoon());
      })
      .finally(() => {
        active -= 1;
        options.metrics?.requestSeconds.observe({ operation }, Number(process.hrtime.bigint() - started) / 1e9);
      });
  };

  const server = config.tls ? createTlsServer({ cert: config.tls.certPem, key: config.tls.keyPem, maxHeaderSize: config.maxHeaderBytes }) : createServer({ maxHeaderSize: config.maxHeaderBytes });
  server.requestTimeout = config.requestTimeoutMs;
  server.headersTimeout = config.headersTimeoutMs;
  server.keepAliveTimeout = config.keepAliveTimeoutMs;
  server.maxConnections = config.maxConnections;
  server.maxHeadersCount = 200;
  server.on('request', (req, res) => onRequest(req, res, false));
  server.on('checkContinue', (req, res) => onRequest(req, res, true));
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  server.on('clientError', (error: NodeJS.ErrnoException, socket: Socket) => {
    if (!socket.writable) return socket.destroy();
    const status = error.code === 'HPE_HEADER_OVERFLOW' ? '431 Request Header Fields Too Large' : error.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? '408 Request Timeout' : '400 Bad Request';
    socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
  });

  return {
    server,
    inFlight: () => active,
    listen: () =>
      new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen({ port: config.port, host: config.host }, () => resolve((server.address() as AddressInfo).port));
      }),
    close: async (graceMs) => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      const deadline = Date.now() + graceMs;
      while (active > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      // Whatever is still running is reset, never ended: a half-sent part must not look complete upstream.
      for (const socket of sockets) socket.destroy();
      await closed;
    },
  };
}
