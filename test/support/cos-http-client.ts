/**
 * A minimal COS-signed HTTP client for tests that need control over the socket (half-sent bodies,
 * stalls, resets) — the official SDK hides all of that. Requests are signed by the one test signer
 * (`signed` of cos-signed-request.ts, the gateway's own `signCosRequest`) over `/<Coffer>/<Key>`,
 * exactly what a header-signed SDK request carries.
 */
import { request, type ClientRequest, type IncomingHttpHeaders } from 'node:http';
import { signed } from './cos-signed-request';

export interface CosTarget {
  readonly port: number;
  readonly coffer: string;
  readonly secretId: string;
  readonly secretKey: string;
}

export interface CosResponse {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
  /** The body as UTF-8 text (XML answers). */
  readonly text: string;
  readonly etag?: string;
}

/** The answer, or 'reset' when the connection failed before a complete response arrived. */
export type CosAnswer = CosResponse | 'reset';

/** The quoted MD5 hex a part's (or a single-part upload's) ETag is (test/support/digests.ts). */
export { md5Etag } from './digests';

/** The Authorization header of a request signed over `pathname`, the parameters and Host only. */
function authorizationFor(target: CosTarget, method: string, pathname: string, params: ReadonlyArray<readonly [string, string]>, host: string): string {
  return signed({ method, signedPath: pathname, params, host, path: pathname, mode: 'header', credentials: target }).authorization as string;
}

/** A signed request, nothing attached: the caller handles the response (e.g. to stop reading it). */
export function signedRequest(target: CosTarget, method: string, key: string, params: ReadonlyArray<readonly [string, string]> = [], length = 0, headers: Record<string, string> = {}): ClientRequest {
  const host = `127.0.0.1:${target.port}`;
  const pathname = `/${target.coffer}/${key}`;
  const authorization = authorizationFor(target, method, pathname, params, host);
  const query = params.map(([n, v]) => (v === '' ? n : `${n}=${encodeURIComponent(v)}`)).join('&');
  return request({ host: '127.0.0.1', port: target.port, method, path: `${pathname}${query ? `?${query}` : ''}`, headers: { ...headers, host, authorization, 'content-length': String(length) }, agent: false });
}

/**
 * The head (request line, Host, Authorization, `headers` as given — duplicates and any bytes allowed,
 * unlike node:http) of a COS-signed request, for tests that write raw sockets. The signature covers
 * only Host, as the official SDK's does for most requests.
 */
export function signedRequestHead(target: CosTarget, method: string, key: string, params: ReadonlyArray<readonly [string, string]> = [], headers: ReadonlyArray<readonly [string, string]> = []): string {
  const host = `127.0.0.1:${target.port}`;
  const pathname = `/${target.coffer}/${key}`;
  const authorization = authorizationFor(target, method, pathname, params, host);
  const query = params.map(([n, v]) => (v === '' ? n : `${n}=${encodeURIComponent(v)}`)).join('&');
  const lines = [`${method} ${pathname}${query ? `?${query}` : ''} HTTP/1.1`, `Host: ${host}`, `Authorization: ${authorization}`, ...headers.map(([n, v]) => `${n}: ${v}`)];
  return `${lines.join('\r\n')}\r\n\r\n`;
}

/**
 * Starts a signed request whose body the caller writes (`req.write` / `req.end`) with `Content-Length:
 * length`; `done` settles with the answer or 'reset'.
 */
export function openCos(target: CosTarget, method: string, key: string, params: ReadonlyArray<readonly [string, string]> = [], length = 0, headers: Record<string, string> = {}): { req: ClientRequest; done: Promise<CosAnswer> } {
  const req = signedRequest(target, method, key, params, length, headers);
  const done = new Promise<CosAnswer>((resolve) => {
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const body = Buffer.concat(chunks);
        resolve({ status: res.statusCode as number, headers: res.headers, body, text: body.toString('utf8'), ...(res.headers.etag === undefined ? {} : { etag: res.headers.etag }) });
      });
      res.on('error', () => resolve('reset'));
      res.on('aborted', () => resolve('reset'));
    });
    req.on('error', () => resolve('reset'));
  });
  return { req, done };
}

/** A complete signed request with `body`. */
export function sendCos(target: CosTarget, method: string, key: string, params: ReadonlyArray<readonly [string, string]> = [], body: Buffer = Buffer.alloc(0)): Promise<CosAnswer> {
  const call = openCos(target, method, key, params, body.length);
  call.req.end(body);
  return call.done;
}

/** Like sendCos, but a reset fails the test with a clear message. */
export async function cos(target: CosTarget, method: string, key: string, params: ReadonlyArray<readonly [string, string]> = [], body?: Buffer): Promise<CosResponse> {
  const answer = await sendCos(target, method, key, params, body);
  if (answer === 'reset') throw new Error(`${method} /${target.coffer}/${key}: the connection was reset`);
  return answer;
}

/** InitiateMultipartUpload → the UploadId. */
export async function initiate(target: CosTarget, key: string): Promise<string> {
  const answer = await cos(target, 'POST', key, [['uploads', '']]);
  const uploadId = /<UploadId>([^<]+)<\/UploadId>/.exec(answer.text)?.[1];
  if (answer.status !== 200 || uploadId === undefined) throw new Error(`Initiate failed: ${answer.status} ${answer.text}`);
  return uploadId;
}

/** The ETags a ListParts answer lists, in order, unquoted from XML. */
export function listedEtags(listPartsXml: string): string[] {
  return [...listPartsXml.matchAll(/<ETag>([^<]+)<\/ETag>/g)].map((m) => (m[1] as string).replace(/&quot;/g, '"'));
}

/** CompleteMultipartUpload with the given (partNumber, ETag) list. */
export function completeBody(parts: ReadonlyArray<readonly [number, string]>): Buffer {
  return Buffer.from(`<CompleteMultipartUpload>${parts.map(([n, etag]) => `<Part><PartNumber>${n}</PartNumber><ETag>${etag}</ETag></Part>`).join('')}</CompleteMultipartUpload>`);
}
