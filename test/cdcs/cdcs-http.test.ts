/**
 * The CDCS contract at the HTTP level, against the gateway as `npm start` runs it: each refused
 * request gets the documented code and status, and nothing changes upstream.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatKeyTime, signCosRequest } from '../../src/auth/cos-signature';
import { loadConfig } from '../../src/config';
import { createLogger } from '../../src/observability/logger';
import { startGateway, type RunningGateway } from '../../src/app/serve';

const MiB = 1024 * 1024;
const COFFER = 'demo-1250000000';
let directory: string;
let gateway: RunningGateway;

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  code?: string;
  continued: boolean;
}

function send(method: string, target: string, options: { headers?: Record<string, string>; body?: Buffer; absolute?: boolean; secretKey?: string; expectContinue?: boolean } = {}): Promise<Answer> {
  const [path, query = ''] = target.split('?') as [string, string?];
  const params =
    query === ''
      ? []
      : query.split('&').map((p) => {
          const [n, v = ''] = p.split('=');
          return [decodeURIComponent(n as string), decodeURIComponent(v)] as [string, string];
        });
  // Through a proxy the Host header names the target's authority (the gateway refuses a mismatch).
  const host = options.absolute ? 'cdcs.ap-guangzhou.myqcloud.com' : `127.0.0.1:${gateway.port}`;
  const now = Math.floor(Date.now() / 1000);
  const signed = signCosRequest({
    method,
    pathname: decodeURIComponent(path),
    params,
    headers: [['host', host]],
    secretId: 'AKIDhttp',
    secretKey: options.secretKey ?? 'http-demo-secret-key-0123456789',
    keyTime: formatKeyTime(now - 60, now + 600),
  });
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { host, authorization: signed.authorization, ...options.headers };
    if (options.expectContinue) headers['expect'] = '100-continue';
    if (options.body !== undefined && headers['content-length'] === undefined && headers['transfer-encoding'] === undefined) headers['content-length'] = String(options.body.length);
    const req = request({ host: '127.0.0.1', port: gateway.port, method, path: options.absolute ? `http://cdcs.ap-guangzhou.myqcloud.com${target}` : target, headers });
    let continued = false;
    req.on('continue', () => {
      continued = true;
      req.end(options.body);
    });
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        resolve({ status: res.statusCode as number, headers: res.headers, body, code: /<Code>([^<]+)<\/Code>/.exec(body)?.[1], continued });
      });
    });
    req.on('error', reject);
    if (!options.expectContinue) req.end(options.body);
  });
}

async function initiate(key: string): Promise<string> {
  const answer = await send('POST', `/${COFFER}/${key}?uploads`);
  expect(answer.status).toBe(200);
  return /<UploadId>([0-9a-f]{32})<\/UploadId>/.exec(answer.body)?.[1] as string;
}

/** Visible upstream files; the embedded upstream's tmp/ holds bodies still being received (or being discarded). */
function upstreamFileCount(): number {
  return (readdirSync(join(directory, 'upstream'), { recursive: true }) as string[]).filter((path) => !path.split('/').includes('tmp')).length;
}

beforeAll(async () => {
  directory = mkdtempSync(join(tmpdir(), 'coffer-http-'));
  const config = loadConfig({
    env: {
      PORT: '0',
      COFFER__SERVER__ADMIN_PORT: '0',
      COFFER_DEMO_SECRET_ID: 'AKIDhttp',
      COFFER_DEMO_SECRET_KEY: 'http-demo-secret-key-0123456789',
      COFFER__KEYRING__DIRECTORY: join(directory, 'keyring'),
      COFFER__EMBEDDED_UPSTREAM__DIRECTORY: join(directory, 'upstream'),
    },
  });
  gateway = await startGateway(config, { log: createLogger('silent') });
  // Start-up readiness checks touch the upstream and the key provider; let their first round finish.
  await gateway.dependenciesAttempted;
});

afterAll(async () => {
  await gateway?.stop();
  rmSync(directory, { recursive: true, force: true });
});

describe('UploadPart arguments', () => {
  test.each(['0', '10001', 'abc', '1.0', '+1', '01', ''])('partNumber=%p → 400 InvalidArgument', async (partNumber) => {
    const uploadId = 'a'.repeat(32);
    const answer = await send('PUT', `/${COFFER}/k?partNumber=${partNumber}&uploadId=${uploadId}`, { body: Buffer.alloc(1) });
    expect([answer.status, answer.code]).toEqual([400, 'InvalidArgument']);
    expect(answer.headers['x-cos-request-id']).toEqual(answer.headers['x-cdcs-request-id']);
  });

  test('unknown upload → 404 NoSuchUpload; chunked body → 411; > 5 GiB → EntityTooLarge before any body byte', async () => {
    const unknown = await send('PUT', `/${COFFER}/k?partNumber=1&uploadId=${'b'.repeat(32)}`, { body: Buffer.alloc(5) });
    expect([unknown.status, unknown.code]).toEqual([404, 'NoSuchUpload']);
    const uploadId = await initiate('args');
    const chunked = await send('PUT', `/${COFFER}/args?partNumber=1&uploadId=${uploadId}`, { headers: { 'transfer-encoding': 'chunked' }, body: Buffer.alloc(5) });
    expect([chunked.status, chunked.code]).toEqual([411, 'MissingContentLength']);
    const huge = await send('PUT', `/${COFFER}/args?partNumber=1&uploadId=${uploadId}`, { headers: { 'content-length': String(5 * 1024 ** 3 + 1) }, expectContinue: true });
    expect([huge.status, huge.code, huge.continued]).toEqual([400, 'EntityTooLarge', false]);
  });

  test('Content-MD5 mismatch → 400 BadDigest and nothing stored; the right digest → 200 with the plaintext MD5 as ETag', async () => {
    const uploadId = await initiate('digest');
    const body = randomBytes(MiB);
    const before = upstreamFileCount();
    const wrong = await send('PUT', `/${COFFER}/digest?partNumber=1&uploadId=${uploadId}`, { headers: { 'content-md5': createHash('md5').update('other').digest('base64') }, body });
    expect([wrong.status, wrong.code]).toEqual([400, 'BadDigest']);
    expect(upstreamFileCount()).toBe(before);
    const listed = await send('GET', `/${COFFER}/digest?uploadId=${uploadId}`);
    expect(listed.body).not.toContain('<Part>');
    const right = await send('PUT', `/${COFFER}/digest?partNumber=1&uploadId=${uploadId}`, { headers: { 'content-md5': createHash('md5').update(body).digest('base64') }, body, expectContinue: true });
    expect(right.status).toBe(200);
    expect(right.continued).toBe(true);
    expect(right.headers.etag).toBe(`"${createHash('md5').update(body).digest('hex')}"`);
  });
});

describe('CompleteMultipartUpload', () => {
  let uploadId: string;
  const etags: string[] = [];
  beforeAll(async () => {
    uploadId = await initiate('complete');
    for (const [i, size] of [1000, MiB].entries()) {
      const body = randomBytes(size);
      etags.push((await send('PUT', `/${COFFER}/complete?partNumber=${i + 1}&uploadId=${uploadId}`, { body })).headers.etag as string);
    }
  });
  const xml = (parts: Array<[number, string]>): Buffer =>
    Buffer.from(`<CompleteMultipartUpload>${parts.map(([n, e]) => `<Part><PartNumber>${n}</PartNumber><ETag>${e.replace(/"/g, '&quot;')}</ETag></Part>`).join('')}</CompleteMultipartUpload>`);

  test.each([
    ['MalformedXML', Buffer.from('<CompleteMultipartUpload><Part>')],
    ['MalformedXML', Buffer.from('<Other/>')],
  ])('%s', async (code, body) => {
    expect((await send('POST', `/${COFFER}/complete?uploadId=${uploadId}`, { body })).code).toBe(code);
  });

  test('order, unknown parts, small non-last parts; then success', async () => {
    expect(
      (
        await send('POST', `/${COFFER}/complete?uploadId=${uploadId}`, {
          body: xml([
            [2, etags[1] as string],
            [1, etags[0] as string],
          ]),
        })
      ).code,
    ).toBe('InvalidPartOrder');
    expect((await send('POST', `/${COFFER}/complete?uploadId=${uploadId}`, { body: xml([[3, etags[1] as string]]) })).code).toBe('InvalidPart');
    expect((await send('POST', `/${COFFER}/complete?uploadId=${uploadId}`, { body: xml([[1, etags[1] as string]]) })).code).toBe('InvalidPart');
    expect(
      (
        await send('POST', `/${COFFER}/complete?uploadId=${uploadId}`, {
          body: xml([
            [1, etags[0] as string],
            [2, etags[1] as string],
          ]),
        })
      ).code,
    ).toBe('EntityTooSmall');
    const done = await send('POST', `/${COFFER}/complete?uploadId=${uploadId}`, { body: xml([[2, etags[1] as string]]) });
    expect(done.status).toBe(200);
    expect(done.body).toContain('<CompleteMultipartUploadResult>');
    expect((await send('POST', `/${COFFER}/complete?uploads`)).code).toBe('ObjectAlreadyExists');
  });
});

describe('routing, proxies and authorization', () => {
  test('absolute-form targets (the gateway as an HTTP proxy) work like path-style ones', async () => {
    const answer = await send('POST', `/${COFFER}/via-proxy?uploads`, { absolute: true });
    expect(answer.status).toBe(200);
  });

  test('DELETE of an object → 405; another coffer → 403; a wrong secret → 403 SignatureDoesNotMatch; a range past the end → 416', async () => {
    expect((await send('DELETE', `/${COFFER}/x`)).status).toBe(405);
    expect((await send('POST', `/other-1250000000/x?uploads`)).code).toBe('AccessDenied');
    expect((await send('POST', `/${COFFER}/x?uploads`, { secretKey: 'a-wrong-secret-key-01234567' })).code).toBe('SignatureDoesNotMatch');
    const uploadId = await initiate('small');
    const body = Buffer.from('hello');
    const etag = (await send('PUT', `/${COFFER}/small?partNumber=1&uploadId=${uploadId}`, { body })).headers.etag as string;
    await send('POST', `/${COFFER}/small?uploadId=${uploadId}`, { body: Buffer.from(`<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>${etag}</ETag></Part></CompleteMultipartUpload>`) });
    const past = await send('GET', `/${COFFER}/small`, { headers: { range: 'bytes=5-' } });
    expect([past.status, past.code, past.headers['content-range']]).toEqual([416, 'InvalidRange', 'bytes */5']);
    const part = await send('GET', `/${COFFER}/small`, { headers: { range: 'bytes=1-3' } });
    expect([part.status, part.body]).toEqual([206, 'ell']);
  });
});

describe('PutObject, HeadObject, conditional GETs, GetCoffer, GetService', () => {
  test('GetObject/HeadObject response-* parameters override the answer headers (every accepted parameter is acted on)', async () => {
    expect((await send('PUT', `/${COFFER}/override.txt`, { headers: { 'content-type': 'text/plain' }, body: Buffer.from('x') })).status).toBe(200);
    const get = await send('GET', `/${COFFER}/override.txt?response-content-type=application/json&response-content-disposition=attachment%3B%20filename%3D%22a.txt%22&response-cache-control=no-store`);
    expect([get.status, get.headers['content-type'], get.headers['content-disposition'], get.headers['cache-control'], get.body]).toEqual([200, 'application/json', 'attachment; filename="a.txt"', 'no-store', 'x']);
    const head = await send('HEAD', `/${COFFER}/override.txt?response-expires=0&response-content-language=de&response-content-encoding=identity`);
    expect([head.status, head.headers['expires'], head.headers['content-language'], head.headers['content-encoding'], head.headers['content-type']]).toEqual([200, '0', 'de', 'identity', 'text/plain']);
    const bad = await send('GET', `/${COFFER}/override.txt?response-content-type=%C3%A9`);
    expect([bad.status, bad.code]).toEqual([400, 'InvalidArgument']);
  });

  test('PutObject: 200 with the plaintext MD5; type and x-cos-meta-* come back; write-once → 409 before the body', async () => {
    const body = randomBytes(100_000);
    const put = await send('PUT', `/${COFFER}/put/one.bin`, { headers: { 'content-type': 'application/x-test', 'x-cos-meta-origin': 'nightly', 'content-md5': createHash('md5').update(body).digest('base64') }, body, expectContinue: true });
    expect([put.status, put.continued, put.headers.etag]).toEqual([200, true, `"${createHash('md5').update(body).digest('hex')}"`]);
    const head = await send('HEAD', `/${COFFER}/put/one.bin`);
    expect(head.status).toBe(200);
    expect(head.headers).toMatchObject({ 'content-length': String(body.length), 'content-type': 'application/x-test', 'x-cos-meta-origin': 'nightly', etag: put.headers.etag });
    const before = upstreamFileCount();
    const again = await send('PUT', `/${COFFER}/put/one.bin`, { body, expectContinue: true });
    expect([again.status, again.code, again.continued]).toEqual([409, 'ObjectAlreadyExists', false]);
    expect(upstreamFileCount()).toBe(before);
  });

  test('a GET the client abandons half-way counts as ClientClosedRequest, not as a gateway failure', async () => {
    const body = randomBytes(16 * MiB);
    expect((await send('PUT', `/${COFFER}/abandoned.bin`, { body })).status).toBe(200);
    const count = async (code: string): Promise<number> => (await gateway.metrics.requests.get()).values.find((v) => v.labels.operation === 'GetObject' && v.labels.code === code)?.value ?? 0;
    const [closedBefore, internalBefore] = [await count('ClientClosedRequest'), await count('InternalError')];
    const host = `127.0.0.1:${gateway.port}`;
    const now = Math.floor(Date.now() / 1000);
    const signed = signCosRequest({
      method: 'GET',
      pathname: `/${COFFER}/abandoned.bin`,
      params: [],
      headers: [['host', host]],
      secretId: 'AKIDhttp',
      secretKey: 'http-demo-secret-key-0123456789',
      keyTime: formatKeyTime(now - 60, now + 600),
    });
    await new Promise<void>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port: gateway.port, path: `/${COFFER}/abandoned.bin`, headers: { host, authorization: signed.authorization } });
      req.on('response', (res) => {
        expect(res.statusCode).toBe(200);
        res.once('data', () => {
          req.destroy(); // the client goes away after its first chunk
          resolve();
        });
      });
      req.on('error', (error: NodeJS.ErrnoException) => (error.code === 'ECONNRESET' ? undefined : reject(error)));
      req.end();
    });
    for (let i = 0; i < 400 && (await count('ClientClosedRequest')) === closedBefore; i += 1) await new Promise((r) => setTimeout(r, 5));
    expect(await count('ClientClosedRequest')).toBe(closedBefore + 1);
    expect(await count('InternalError')).toBe(internalBefore);
  });

  test('PutObject refusals store nothing: BadDigest, no Content-Length, too large, metadata over 2 KB', async () => {
    const before = upstreamFileCount();
    const body = randomBytes(300_000);
    const bad = await send('PUT', `/${COFFER}/put/bad`, { headers: { 'content-md5': createHash('md5').update('x').digest('base64') }, body });
    expect([bad.status, bad.code]).toEqual([400, 'BadDigest']);
    const chunked = await send('PUT', `/${COFFER}/put/chunked`, { headers: { 'transfer-encoding': 'chunked' }, body });
    expect([chunked.status, chunked.code]).toEqual([411, 'MissingContentLength']);
    const huge = await send('PUT', `/${COFFER}/put/huge`, { headers: { 'content-length': String(5 * 1024 ** 3) }, expectContinue: true });
    expect([huge.status, huge.code, huge.continued]).toEqual([400, 'EntityTooLarge', false]);
    const meta = await send('PUT', `/${COFFER}/put/meta`, { headers: { 'x-cos-meta-big': 'x'.repeat(2100) }, body: Buffer.from('x'), expectContinue: true });
    expect([meta.status, meta.code]).toEqual([400, 'MetadataTooLarge']);
    expect(upstreamFileCount()).toBe(before);
    // The key stays free after a refused PUT.
    expect((await send('PUT', `/${COFFER}/put/bad`, { body })).status).toBe(200);
  });

  test('conditional GET and HEAD: 304, 412, If-Range', async () => {
    const body = Buffer.from('0123456789');
    const { headers } = await send('PUT', `/${COFFER}/cond`, { body });
    const etag = headers.etag as string;
    const head = await send('HEAD', `/${COFFER}/cond`);
    const lastModified = head.headers['last-modified'] as string;
    expect((await send('GET', `/${COFFER}/cond`, { headers: { 'if-none-match': etag } })).status).toBe(304);
    expect((await send('HEAD', `/${COFFER}/cond`, { headers: { 'if-modified-since': lastModified } })).status).toBe(304);
    const failed = await send('GET', `/${COFFER}/cond`, { headers: { 'if-match': '"0000"' } });
    expect([failed.status, failed.code]).toEqual([412, 'PreconditionFailed']);
    expect((await send('GET', `/${COFFER}/cond`, { headers: { 'if-match': etag } })).body).toBe('0123456789');
    expect((await send('GET', `/${COFFER}/cond`, { headers: { 'if-unmodified-since': new Date(Date.parse(lastModified) - 1000).toUTCString() } })).status).toBe(412);
    const ranged = await send('GET', `/${COFFER}/cond`, { headers: { range: 'bytes=2-4', 'if-range': etag } });
    expect([ranged.status, ranged.body]).toEqual([206, '234']);
    const stale = await send('GET', `/${COFFER}/cond`, { headers: { range: 'bytes=2-4', 'if-range': '"stale"' } });
    expect([stale.status, stale.body]).toEqual([200, '0123456789']);
  });

  test('GetCoffer lists exact plaintext sizes, never bookkeeping, with url encoding on request', async () => {
    for (const key of ['list/a b.txt', 'list/sub/x', 'list/d/looks-like-data']) await send('PUT', `/${COFFER}/${encodeURIComponent(key)}`, { body: Buffer.alloc(1234) });
    await initiate('list/open-upload');
    const listed = await send('GET', `/${COFFER}?prefix=list%2F&delimiter=%2F`);
    expect(listed.status).toBe(200);
    expect([...listed.body.matchAll(/<Key>([^<]*)<\/Key>/g)].map((m) => m[1])).toEqual(['list/a b.txt']);
    expect([...listed.body.matchAll(/<Prefix>([^<]*)<\/Prefix>/g)].map((m) => m[1])).toEqual(['list/', 'list/d/', 'list/sub/']);
    expect(listed.body).toContain('<Size>1234</Size>');
    const all = await send('GET', `/${COFFER}?prefix=list%2F&encoding-type=url`);
    expect([...all.body.matchAll(/<Key>([^<]*)<\/Key>/g)].map((m) => m[1])).toEqual(['list%2Fa%20b.txt', 'list%2Fd%2Flooks-like-data', 'list%2Fsub%2Fx']);
    expect(all.body).toContain('<EncodingType>url</EncodingType>');
    const paged = await send('GET', `/${COFFER}?prefix=list%2F&max-keys=1`);
    expect(paged.body).toContain('<IsTruncated>true</IsTruncated>');
    expect(paged.body).toContain('<NextMarker>list/a b.txt</NextMarker>');
    expect((await send('GET', `/${COFFER}?encoding-type=base64`)).code).toBe('InvalidArgument');
  });

  test('GetService lists the coffers the credentials may use (the demo key reaches the demo and scratch coffers)', async () => {
    const answer = await send('GET', '/');
    expect(answer.status).toBe(200);
    expect([...answer.body.matchAll(/<Name>([^<]*)<\/Name>/g)].map((m) => m[1])).toEqual([COFFER, 'scratch-1250000000']);
  });
});

describe('coffer lifecycle against an upstream without a lifecycle engine (the embedded upstream)', () => {
  test('PutCofferLifecycle → 501 NotImplemented saying why, and nothing is written upstream; a missing Content-MD5 is refused before the body', async () => {
    const body = Buffer.from(JSON.stringify({ Rule: [{ Expiration: { Days: 1 } }] }));
    const before = upstreamFileCount();
    const noDigest = await send('PUT', `/${COFFER}?lifecycle`, { body, expectContinue: true });
    expect([noDigest.status, noDigest.code, noDigest.continued]).toEqual([400, 'InvalidRequest', false]);
    const answer = await send('PUT', `/${COFFER}?lifecycle`, { body, headers: { 'content-md5': createHash('md5').update(body).digest('base64') } });
    expect([answer.status, answer.code]).toEqual([501, 'NotImplemented']);
    expect(answer.body).toMatch(/does not support bucket lifecycle rules/);
    expect(upstreamFileCount()).toBe(before);
    const got = await send('GET', `/${COFFER}?lifecycle`);
    expect([got.status, got.code]).toEqual([404, 'NoSuchLifecycleConfiguration']);
  });
});
