/**
 * A loopback forwarder between a gateway and its real upstream (Ceph RGW, the embedded upstream) that
 * records what the gateway asks and can play faults. Requests go on unchanged — method, target, every
 * header (the SigV4 signature covers the Host it was sent to) — and answers come back unchanged.
 *
 * `intercept` sees every request first: it answers it itself (a stall, a 503, a reset) or forwards it
 * its own way with `forward` (a throttled or cut-off body) and returns true; returning false (or no
 * `intercept`) forwards it as it is. A proxy library is not used here: the faults need the body stream
 * between the two sockets, which a proxy hides.
 */
import { createServer, request, type ClientRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Readable } from 'node:stream';

/** One request the gateway made, as the forwarder saw it. */
export interface ForwardedRequest {
  readonly method: string;
  /** The target as sent (path and query). */
  readonly url: string;
  /** The decoded path, without the query. */
  readonly path: string;
  /** Response body bytes the upstream sent back through the forwarder. */
  responseBytes: number;
}

export interface Interception {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly record: ForwardedRequest;
  /**
   * Sends the request upstream with `body` as its body (default: the request itself; `null`: the
   * caller writes to and ends the returned request) and relays the answer.
   */
  forward(body?: Readable | null): ClientRequest;
}

export interface UpstreamForwarderOptions {
  /** Origin of the real upstream, e.g. `http://127.0.0.1:7480`. */
  readonly target: string;
  /** Fault injection (see the module comment); true when it took the request over. */
  readonly intercept?: (exchange: Interception) => boolean;
}

export interface UpstreamForwarder {
  /** `http://127.0.0.1:<port>`: configure it as the coffer's upstream endpoint. */
  readonly endpoint: string;
  readonly port: number;
  /** Every request so far, in arrival order. */
  readonly requests: ForwardedRequest[];
  close(): Promise<void>;
}

export async function startUpstreamForwarder(options: UpstreamForwarderOptions): Promise<UpstreamForwarder> {
  const upstream = new URL(options.target);
  const requests: ForwardedRequest[] = [];
  const forwardOf =
    (req: IncomingMessage, res: ServerResponse, record: ForwardedRequest) =>
    (body: Readable | null = req): ClientRequest => {
      const out = request({ host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers }, (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.on('data', (chunk: Buffer) => (record.responseBytes += chunk.length));
        answer.pipe(res);
      });
      // Either side failing ends the other: the gateway must see a failure, never a silent hang.
      out.on('error', () => res.destroy());
      req.on('error', () => out.destroy());
      if (body !== null) body.pipe(out);
      return out;
    };
  const server: Server = createServer((req, res) => {
    const url = req.url ?? '';
    const record: ForwardedRequest = { method: req.method ?? '', url, path: decodeURIComponent(url.split('?')[0] as string), responseBytes: 0 };
    requests.push(record);
    const forward = forwardOf(req, res, record);
    if (options.intercept?.({ req, res, record, forward }) === true) return;
    forward();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    port,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
