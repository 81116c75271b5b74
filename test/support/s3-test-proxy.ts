/**
 * A loopback proxy in front of an S3 endpoint (the embedded upstream or Ceph RGW) that plays what the
 * real upstream cannot: a bucket policy that refuses writes (403 AccessDenied on PUT, POST and DELETE),
 * and an upstream that accepts other credentials than its own — e.g. session credentials issued by the
 * STS test server — by re-signing every request with the upstream's keys. Bodies are buffered (test-sized).
 *
 * With `verify`, it is strict about those other credentials first, the way S3 is: every request's SigV4
 * is checked with the independent verifier of sts-test-server.ts against the STS test server's
 * credential store (session token, expiry, scope, payload hash), and a request that fails gets the
 * error S3 would give and is not forwarded. The access key that signed each request is recorded, so a
 * test can prove which credentials the upstream calls were made with.
 */
import { request as httpRequest, createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Hash } from '@smithy/hash-node';
import { SignatureV4 } from '@smithy/signature-v4';
import { TestCredentialStore, verifySigV4, type SigV4Failure } from './sts-test-server';

export interface S3TestProxyVerification {
  /** The world's credentials: long-term users and what the STS test server issued. */
  readonly store: TestCredentialStore;
  /** The region requests must be scoped to (service `s3`). */
  readonly region: string;
  /** Clock for credential expiry, read when a request arrives (before its body); default Date.now. */
  readonly now?: () => number;
  /**
   * A bucket policy: only these principals (user ARNs, or role ARNs for assumed-role sessions) may act;
   * others get 403 AccessDenied. Default: any identity the store authenticates.
   */
  readonly principals?: readonly string[];
}

export interface S3TestProxyOptions {
  /** Origin of the real endpoint, e.g. `http://127.0.0.1:1234`. */
  readonly target: string;
  readonly region: string;
  /** Refuse every write with 403 AccessDenied, as a read-only bucket policy would. */
  readonly denyWrites?: boolean;
  /** Re-sign every request with these keys, whatever the client signed with. */
  readonly resignWith?: { accessKeyId: string; secretAccessKey: string };
  /** Verify the incoming SigV4 against a credential store before anything else (see the file comment). */
  readonly verify?: S3TestProxyVerification;
}

export interface S3TestProxyRequest {
  readonly method: string;
  /** The path as received (still percent-encoded). */
  readonly path: string;
  /** The raw query string, without '?' ('' when none). */
  readonly query: string;
  /** The access key id of the incoming Authorization header, when it had one (verified or not). */
  readonly accessKeyId?: string;
  /** The request's `If-None-Match` header, when it had one (`*` makes a PUT create-only). */
  readonly ifNoneMatch?: string;
  /** The S3 error code the proxy answered with itself (verification or denyWrites); absent when forwarded. */
  readonly rejected?: string;
  /** The upstream's status code, once it answered (forwarded requests only). */
  status?: number;
}

export interface S3TestProxy {
  readonly endpoint: string;
  /** Every request seen, in order of arrival of its complete body. */
  readonly requests: S3TestProxyRequest[];
  /**
   * Every request whose headers arrived, in order, body or not: a write the gateway destroyed mid-body
   * never completes, so it shows here and not in `requests`. What "zero upstream writes" counts.
   */
  readonly arrivals: ReadonlyArray<{ readonly method: string; readonly path: string; readonly query: string }>;
  /** The requests passed on to the target. */
  forwarded(): S3TestProxyRequest[];
  /** The requests the proxy answered itself with an error. */
  rejected(): S3TestProxyRequest[];
  close(): Promise<void>;
}

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'proxy-connection']);

/** What S3 answers for each verification failure (status and code, from the S3 error-code list). */
const S3_AUTH_ERRORS: Readonly<Record<SigV4Failure, { status: number; code: string }>> = {
  missing: { status: 403, code: 'AccessDenied' }, // anonymous request to a private bucket
  incomplete: { status: 400, code: 'AuthorizationHeaderMalformed' },
  'unknown-key': { status: 403, code: 'InvalidAccessKeyId' },
  'bad-token': { status: 400, code: 'InvalidToken' },
  'expired-token': { status: 400, code: 'ExpiredToken' },
  scope: { status: 400, code: 'AuthorizationHeaderMalformed' },
  skew: { status: 403, code: 'RequestTimeTooSkewed' },
  payload: { status: 400, code: 'XAmzContentSHA256Mismatch' },
  signature: { status: 403, code: 'SignatureDoesNotMatch' },
};

const xmlEscape = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

function sendError(res: ServerResponse, status: number, code: string, message: string): void {
  const xml = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${xmlEscape(message)}</Message></Error>`;
  res.writeHead(status, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(xml) });
  res.end(xml);
}

/** Why S3 would refuse this request before looking at the body, or undefined. */
function verifyRequest(req: IncomingMessage, body: Buffer, verify: S3TestProxyVerification, arrived: number): { status: number; code: string; message: string } | undefined {
  const declared = req.headers['x-amz-content-sha256'];
  // S3 requires the header on every header-signed SigV4 request; streaming (aws-chunked) bodies are
  // not modelled here (Ceph answers them with 411 anyway, and the gateway never sends them).
  if (req.headers.authorization !== undefined && declared === undefined) {
    return { status: 400, code: 'InvalidRequest', message: 'Missing required header for this request: x-amz-content-sha256' };
  }
  if (typeof declared === 'string' && declared.startsWith('STREAMING-')) {
    return { status: 400, code: 'InvalidRequest', message: `This test proxy does not model ${declared}.` };
  }
  const result = verifySigV4(req, body, { store: verify.store, region: verify.region, service: 's3', now: () => arrived, allowUnsignedPayload: true });
  if (!result.ok) return { ...S3_AUTH_ERRORS[result.failure], message: result.message };
  if (verify.principals !== undefined && !verify.principals.includes(TestCredentialStore.principalOf(result.identity))) {
    return { status: 403, code: 'AccessDenied', message: 'Access Denied' };
  }
  return undefined;
}

export async function startS3TestProxy(options: S3TestProxyOptions): Promise<S3TestProxy> {
  const target = new URL(options.target);
  const signer = options.resignWith === undefined ? undefined : new SignatureV4({ service: 's3', region: options.region, credentials: options.resignWith, sha256: Hash.bind(null, 'sha256'), uriEscapePath: false, applyChecksum: false });
  const requests: S3TestProxyRequest[] = [];
  const arrivals: Array<{ method: string; path: string; query: string }> = [];
  const now = options.verify?.now ?? Date.now;

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    // Credentials are judged when the request arrives, as S3 does, not when its last byte did.
    const arrived = now();
    const startLine = req.url ?? '/';
    const queryAt = startLine.indexOf('?');
    arrivals.push({ method: req.method ?? 'GET', path: queryAt < 0 ? startLine : startLine.slice(0, queryAt), query: queryAt < 0 ? '' : startLine.slice(queryAt + 1) });
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks);
    const method = req.method ?? 'GET';
    const rawUrl = req.url ?? '/';
    const url = new URL(rawUrl, 'http://proxy');
    const q = rawUrl.indexOf('?');
    const accessKeyId = /Credential=([^/,\s]+)\//.exec(req.headers.authorization ?? '')?.[1];
    const record: { -readonly [K in keyof S3TestProxyRequest]: S3TestProxyRequest[K] } = {
      method,
      path: url.pathname,
      query: q < 0 ? '' : rawUrl.slice(q + 1),
      ...(accessKeyId === undefined ? {} : { accessKeyId }),
      ...(req.headers['if-none-match'] === undefined ? {} : { ifNoneMatch: req.headers['if-none-match'] }),
    };
    requests.push(record);
    if (options.verify !== undefined) {
      const refused = verifyRequest(req, body, options.verify, arrived);
      if (refused !== undefined) {
        record.rejected = refused.code;
        sendError(res, refused.status, refused.code, refused.message);
        return;
      }
    }
    if (options.denyWrites === true && (method === 'PUT' || method === 'POST' || method === 'DELETE')) {
      record.rejected = 'AccessDenied';
      sendError(res, 403, 'AccessDenied', 'Access Denied');
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
      // The path exactly as received (already encoded by the client), so the upstream canonicalises what was signed.
      const signed = await signer.sign({ method, protocol: 'http:', hostname: url.hostname, path: q < 0 ? rawUrl : rawUrl.slice(0, q), query, headers });
      headers = signed.headers as Record<string, string>;
    }
    const upstream = httpRequest({ host: target.hostname, port: target.port, method, path: req.url, headers: { ...headers, 'content-length': String(body.length) } }, (answer) => {
      record.status = answer.statusCode ?? 502;
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
    arrivals,
    forwarded: () => requests.filter((r) => r.rejected === undefined),
    rejected: () => requests.filter((r) => r.rejected !== undefined),
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
