/**
 * A real JWKS endpoint on 127.0.0.1 (ephemeral port) for the remote-JWKS tests: serves whatever key
 * set the test sets, can be switched to "down" (503 or connection reset), and records each request.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export type JwksServerMode = 'up' | 'http-503' | 'reset' | 'garbage' | 'stall';

export interface JwksTestServer {
  readonly url: string;
  /** Number of requests received so far. */
  readonly requests: number;
  /** Authorization header of each request, in order. */
  readonly authorizations: readonly (string | undefined)[];
  setJwks(jwks: unknown): void;
  setMode(mode: JwksServerMode): void;
  close(): Promise<void>;
}

export async function startJwksTestServer(initialJwks: unknown, path = '/openid/v1/jwks'): Promise<JwksTestServer> {
  let jwks = initialJwks;
  let mode: JwksServerMode = 'up';
  let requests = 0;
  const authorizations: (string | undefined)[] = [];

  const server = http.createServer((req, res) => {
    requests += 1;
    authorizations.push(req.headers.authorization);
    if (mode === 'stall') return; // never answers; close() tears the connection down
    if (mode === 'reset') {
      req.socket.destroy();
      return;
    }
    if (mode === 'http-503' || req.url !== path) {
      res.writeHead(mode === 'http-503' ? 503 : 404).end();
      return;
    }
    const body = mode === 'garbage' ? '<html>not json' : JSON.stringify(jwks);
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }).end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}${path}`,
    get requests() {
      return requests;
    },
    authorizations,
    setJwks(next) {
      jwks = next;
    },
    setMode(next) {
      mode = next;
    },
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((error) => (error ? reject(error) : resolve()));
      }),
  };
}
