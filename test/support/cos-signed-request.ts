/**
 * COS-signed requests taken apart: what was signed (method, path, parameters, host) and what is sent
 * (target path, parameters, Host header) are given separately, so a test can replay a signature
 * against a different request — the way an attacker holding one signed request would — either from the
 * Authorization header or as a presigned URL.
 */
import { request } from 'node:http';
import { formatKeyTime, signCosRequest, type SignedPair } from '../../src/auth/cos-signature';

export interface CosCredentials {
  readonly secretId: string;
  readonly secretKey: string;
}

export interface SignedSpec {
  readonly method: string;
  /** The decoded path the signature covers (`/<coffer>/<key>` full, `/<key>` key-only, `/` GetService). */
  readonly signedPath: string;
  /** Parameters, signed and sent (decoded; `''` for a bare name such as `uploads`). */
  readonly params: ReadonlyArray<readonly [string, string]>;
  /** The signed `host` header, also sent as Host. */
  readonly host: string;
  /** The target path to send, percent-encoded (`/<coffer>/<key>` path-style, `/<key>` virtual-hosted). */
  readonly path: string;
  readonly mode: 'header' | 'presigned';
  readonly credentials: CosCredentials;
}

/** A request ready to send: the signature of one request, possibly attached to another. */
export interface SendableRequest {
  readonly method: string;
  readonly host: string;
  readonly path: string;
  readonly params: ReadonlyArray<readonly [string, string]>;
  /** `Authorization` value (header mode). */
  readonly authorization?: string;
  /** The q-* fields appended to the query (presigned mode). */
  readonly presignedFields?: readonly SignedPair[];
}

export interface SentAnswer {
  readonly status: number;
  readonly code?: string;
  readonly body: Buffer;
  readonly text: string;
  readonly headers?: Readonly<Record<string, string | string[] | undefined>>;
}

/** Signs `spec` and returns it as a request (which the caller may alter before sending). */
export function signed(spec: SignedSpec): SendableRequest {
  const now = Math.floor(Date.now() / 1000);
  const signature = signCosRequest({
    method: spec.method,
    pathname: spec.signedPath,
    params: spec.params,
    headers: [['host', spec.host]],
    secretId: spec.credentials.secretId,
    secretKey: spec.credentials.secretKey,
    keyTime: formatKeyTime(now - 60, now + 600),
  });
  const base = { method: spec.method, host: spec.host, path: spec.path, params: spec.params };
  return spec.mode === 'header' ? { ...base, authorization: signature.authorization } : { ...base, presignedFields: signature.queryFields };
}

const encodeParam = ([name, value]: readonly [string, string]): string => (value === '' ? encodeURIComponent(name) : `${encodeURIComponent(name)}=${encodeURIComponent(value)}`);

/** The request target (path and query) of `sendable`. */
export function targetOf(sendable: SendableRequest): string {
  // Signature fields always carry `=` (an empty q-url-param-list too); other empty values go bare (`?uploads`).
  const pairs = [...sendable.params.map(encodeParam), ...(sendable.presignedFields ?? []).map(([n, v]) => `${n}=${encodeURIComponent(v)}`)];
  return pairs.length === 0 ? sendable.path : `${sendable.path}?${pairs.join('&')}`;
}

/** Sends `sendable` to 127.0.0.1:`port` with `body` (Content-Length always set); resolves with the answer. */
export function send(port: number, sendable: SendableRequest, body: Buffer = Buffer.alloc(0), absoluteForm = false, extraHeaders: Readonly<Record<string, string>> = {}): Promise<SentAnswer> {
  const target = targetOf(sendable);
  return new Promise((resolve, reject) => {
    // Unsigned extra headers (Content-MD5, Content-Type): the helper signs `host` only.
    const headers: Record<string, string> = { ...extraHeaders, host: sendable.host, 'content-length': String(body.length) };
    if (sendable.authorization !== undefined) headers['authorization'] = sendable.authorization;
    const req = request({ host: '127.0.0.1', port, method: sendable.method, path: absoluteForm ? `http://${sendable.host}${target}` : target, headers, agent: false });
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => {
        const all = Buffer.concat(chunks);
        const text = all.toString('utf8');
        const code = /<Code>([^<]+)<\/Code>/.exec(text)?.[1];
        resolve({ status: res.statusCode as number, body: all, text, headers: res.headers, ...(code === undefined ? {} : { code }) });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}
