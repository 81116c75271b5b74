/**
 * The admin listener, on its own port so probes and scrapes never compete with (or expose) the data
 * plane: `/healthz` (liveness: the event loop answers), `/readyz` (readiness: started, dependencies
 * checked, and not draining — it turns false the moment SIGTERM arrives), `/metrics` (Prometheus).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';

export interface Readiness {
  /** Undefined when ready, else a short reason shown in the /readyz body. */
  notReadyReason(): string | undefined;
}

export interface AdminServer {
  readonly server: Server;
  listen(host: string, port: number): Promise<number>;
  close(): Promise<void>;
}

export function createAdminServer(options: { registry: Registry; readiness: Readiness }): AdminServer {
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    if (path === '/healthz') {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
    } else if (path === '/readyz') {
      const reason = options.readiness.notReadyReason();
      res.writeHead(reason === undefined ? 200 : 503, { 'content-type': 'text/plain' }).end(reason === undefined ? 'ready\n' : `not ready: ${reason}\n`);
    } else if (path === '/metrics') {
      options.registry.metrics().then(
        (text) => res.writeHead(200, { 'content-type': options.registry.contentType }).end(text),
        () => res.writeHead(500).end(),
      );
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
    }
  });
  server.headersTimeout = 5_000;
  server.requestTimeout = 10_000;
  return {
    server,
    listen: (host, port) =>
      new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => resolve((server.address() as AddressInfo).port));
      }),
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
