/**
 * A loopback proxy in front of an S3 endpoint (the embedded upstream) that plays what the embedded
 * upstream cannot: a bucket policy that refuses writes (403 AccessDenied on PUT, POST and DELETE), and
 * an upstream that accepts other credentials than its own — e.g. session credentials issued by the STS
 * test server — by re-signing every request with the upstream's keys. Bodies are buffered (test-sized).
 */
import { request as httpRequest, createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Hash } from '@smithy/hash-node';
import { SignatureV4 } from '@smithy/signature-v4';

export interface S3TestProxyOptions {
  /** Origin of the real endpoint, e.g. `http://127.0.0.1:1234`. */
  readonly target: string;
  readonly region: string;
  /** Refuse every write with 403 AccessDenied, as a read-only bucket policy would. */
  readonly denyWrites?: boolean;
  /** Re-sign every request with these keys, whatever the client signed with. */
  readonly resignWith?: { accessKeyId: string; secretAccessKey: string };
}

export interface S3TestProxy {
  readonly endpoint: string;
  /** Methods of the requests seen, in order. */
  readonly requests: Array<{ method: string; path: string }>;
  close(): Promise<void>;
}

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'proxy-connection']);

export async function startS3TestProxy(options: S3TestProxyOptions): Promise<S3TestProxy> {
  const target = new URL(options.target);
  const signer =
    options.resignWith === undefined
      ? undefined
      : new SignatureV4({ service: 's3', region: options.region, credentials: options.resignWith, sha256: Hash.bind(null, 'sha256'), uriEscapePath: false, applyChecksum: false });
  const requests: Array<{ method: string; path: string }> = [];

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks);
    const method = req.method ?? 'GET';
    const url = new URL(req.url ?? '/', 'http://proxy');
    requests.push({ method, path: url.pathname });
    if (options.denyWrites === true && (method === 'PUT' || method === 'POST' || method === 'DELETE')) {
      const xml = '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>';
      res.writeHead(403, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(xml) });
      res.end(xml);
      return;
    }
    let headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(req.headers)) {
      if (value === undefined || HOP_BY_HOP.has(name)) continue;
      headers[name] = Array.isArray(value) ? value.join(',') : value;
    }
    if (signer !== undefined) {
      delete headers['authorization'];
      delete headers['x-amz-security-token'];
      delete headers['x-amz-date'];
      const query: Record<string, string> = {};
      for (const [name, value] of url.searchParams) query[name] = value;
      const signed = await signer.sign({ method, protocol: 'http:', hostname: url.hostname, path: url.pathname, query, headers });
      headers = signed.headers as Record<string, string>;
    }
    const upstream = httpRequest({ host: target.hostname, port: target.port, method, path: req.url, headers: { ...headers, 'content-length': String(body.length) } }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    upstream.on('error', () => res.destroy());
    upstream.end(body);
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch(() => res.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
