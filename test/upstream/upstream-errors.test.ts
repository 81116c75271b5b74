/**
 * Error mapping of S3UpstreamStore, against a tiny scripted HTTP server (503 SlowDown, 500, 403, 404,
 * stalls, resets, refused connections) and against the embedded upstream with wrong credentials.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { GatewayError } from '../../src/errors/gateway-error';
import { S3UpstreamStore, type S3UpstreamStoreConfig } from '../../src/upstream/s3-upstream-store';
import { UpstreamNotFoundError } from '../../src/upstream/upstream-store';
import { ACCESS_KEY, bodyOf, MiB, pattern, startFixture } from './embedded-fixture';

interface Seen {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  bytes: number;
  complete: boolean;
}

let server: Server;
let endpoint: string;
let seen: Seen[] = [];
let script: (req: IncomingMessage, res: ServerResponse, seen: Seen) => void;
const stores: S3UpstreamStore[] = [];
const SECRET = 'scripted-secret-never-in-messages';

beforeAll(async () => {
  server = createServer((req, res) => {
    const entry: Seen = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, bytes: 0, complete: false };
    seen.push(entry);
    req.on('data', (chunk: Buffer) => (entry.bytes += chunk.length));
    req.on('end', () => (entry.complete = true));
    req.on('error', () => undefined);
    script(req, res, entry);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  for (const store of stores) store.destroy();
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});
beforeEach(() => {
  seen = [];
});

function scriptedStore(overrides: Partial<S3UpstreamStoreConfig> = {}): S3UpstreamStore {
  const store = new S3UpstreamStore({
    endpoint,
    region: 'us-east-1',
    bucket: 'bkt',
    forcePathStyle: true,
    credentials: async () => ({ accessKeyId: 'AKIDSCRIPTED', secretAccessKey: SECRET }),
    maxAttempts: 1,
    ...overrides,
  });
  stores.push(store);
  return store;
}

function xmlError(status: number, code: string): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const body = `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>details ${endpoint}</Message></Error>`;
    const finish = (): void => {
      res.writeHead(status, { 'content-type': 'application/xml', 'content-length': String(Buffer.byteLength(body)) });
      res.end(req.method === 'HEAD' ? undefined : body);
    };
    if (req.complete) finish();
    else req.on('end', finish);
  };
}

function expectSafe(error: unknown): void {
  const message = (error as Error).message;
  expect(message).not.toContain(SECRET);
  expect(message).not.toContain(endpoint);
  expect(message).not.toContain('AKIDSCRIPTED');
}

test.each([
  [503, 'SlowDown', 'ServiceUnavailable', 503],
  [503, 'ServiceUnavailable', 'ServiceUnavailable', 503],
  [500, 'InternalError', 'BadGateway', 502],
  [502, 'BadGateway', 'BadGateway', 502],
  [403, 'AccessDenied', 'BadGateway', 502],
  [400, 'InvalidArgument', 'BadGateway', 502],
])('upstream %i %s → %s (control plane and data plane)', async (status, code, gatewayCode, gatewayStatus) => {
  script = xmlError(status, code);
  const store = scriptedStore();
  for (const call of [() => store.listObjects('p/'), () => store.createMultipartUpload('k'), () => store.uploadPart('k', 'u', 1, bodyOf(Buffer.from('ciphertext'))), () => store.putObject('k', bodyOf(pattern(2 * MiB, 1)))]) {
    const error = await call().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(GatewayError);
    expect(error).toMatchObject({ code: gatewayCode, status: gatewayStatus, reason: `upstream-${code}` });
    expectSafe(error);
  }
});

test('not-found codes become UpstreamNotFoundError of the right kind; HEAD 404 is undefined', async () => {
  const store = scriptedStore();
  script = xmlError(404, 'NoSuchUpload');
  await expect(store.uploadPart('k', 'u', 1, bodyOf(Buffer.from('x')))).rejects.toEqual(new UpstreamNotFoundError('NoSuchUpload'));
  await expect(store.listParts('k', 'u')).rejects.toMatchObject({ kind: 'NoSuchUpload' });
  script = xmlError(404, 'NoSuchKey');
  await expect(store.getObject('k')).rejects.toMatchObject({ kind: 'NoSuchKey' });
  expect(await store.headObject('k')).toBeUndefined();
  script = xmlError(404, 'NoSuchBucket');
  await expect(store.listObjects('')).rejects.toMatchObject({ kind: 'NoSuchBucket' });
});

test('idempotent calls are retried by the SDK; CreateMultipartUpload and Complete are not', async () => {
  const store = scriptedStore({ maxAttempts: 3 });
  let calls = 0;
  script = (req, res) => {
    calls++;
    if (calls < 3) return xmlError(500, 'InternalError')(req, res);
    const body = '<?xml version="1.0"?><ListBucketResult><Name>bkt</Name><IsTruncated>false</IsTruncated><KeyCount>0</KeyCount></ListBucketResult>';
    res.writeHead(200, { 'content-type': 'application/xml', 'content-length': String(body.length) });
    res.end(body);
  };
  expect((await store.listObjects('p/')).objects).toEqual([]);
  expect(calls).toBe(3);
  seen = [];
  script = xmlError(500, 'InternalError');
  await expect(store.createMultipartUpload('k')).rejects.toMatchObject({ code: 'BadGateway' });
  await expect(store.completeMultipartUpload('k', 'u', [{ partNumber: 1, etag: '"x"' }])).rejects.toMatchObject({ code: 'BadGateway' });
  await expect(store.uploadPart('k', 'u', 1, bodyOf(Buffer.from('x')))).rejects.toMatchObject({ code: 'BadGateway' });
  expect(seen.map((s) => s.method)).toEqual(['POST', 'POST', 'PUT']);
});

test('data-plane request: explicit Content-Length, never chunked, UNSIGNED-PAYLOAD, S3-encoded path built from config', async () => {
  script = (req, res) =>
    req.on('end', () => {
      res.writeHead(200, { etag: '"abc"', 'content-length': '0' });
      res.end();
    });
  const store = scriptedStore();
  const data = pattern(3 * MiB + 3, 2);
  const { etag } = await store.uploadPart('a b/ü+%/../x', 'up/id=1', 7, { ...bodyOf(data), contentMd5: 'AAAAAAAAAAAAAAAAAAAAAA==' });
  expect(etag).toBe('"abc"');
  const [request] = seen;
  expect(request?.url).toBe('/bkt/a%20b/%C3%BC%2B%25/../x?partNumber=7&uploadId=up%2Fid%3D1');
  expect(request?.headers['content-length']).toBe(String(data.length));
  expect(request?.headers['transfer-encoding']).toBeUndefined();
  expect(request?.headers['x-amz-content-sha256']).toBe('UNSIGNED-PAYLOAD');
  expect(request?.headers['content-md5']).toBe('AAAAAAAAAAAAAAAAAAAAAA==');
  expect(request?.headers.authorization).toMatch(/^AWS4-HMAC-SHA256 Credential=AKIDSCRIPTED\/\d{8}\/us-east-1\/s3\/aws4_request, SignedHeaders=[^,]*content-md5[^,]*host[^,]*, Signature=[0-9a-f]{64}$/);
  expect(request?.bytes).toBe(data.length);
});

test('credentials are asked for on every request (role rotation is honoured)', async () => {
  script = (req, res) =>
    req.on('end', () => {
      res.writeHead(200, { etag: '"abc"', 'content-length': '0' });
      res.end();
    });
  let accessKeyId = 'AKIDFIRST';
  const store = scriptedStore({ credentials: async () => ({ accessKeyId, secretAccessKey: SECRET, sessionToken: `token-${accessKeyId}` }) });
  await store.putObject('k', { body: Buffer.from('x') });
  accessKeyId = 'AKIDSECOND';
  await store.putObject('k', { body: Buffer.from('x') });
  await store.uploadPart('k', 'u', 1, bodyOf(Buffer.from('x')));
  expect(seen.map((s) => /Credential=(\w+)\//.exec(String(s.headers.authorization))?.[1])).toEqual(['AKIDFIRST', 'AKIDSECOND', 'AKIDSECOND']);
  expect(seen[2]?.headers['x-amz-security-token']).toBe('token-AKIDSECOND');
});

test('an upstream that stalls → GatewayTimeout (data plane idle timeout, control plane request timeout)', async () => {
  script = () => undefined; // never answers
  const store = scriptedStore({ idleTimeoutMs: 300, requestTimeoutMs: 300 });
  const started = Date.now();
  await expect(store.uploadPart('k', 'u', 1, bodyOf(Buffer.from('x')))).rejects.toMatchObject({ code: 'GatewayTimeout', status: 504 });
  await expect(store.headObject('k')).rejects.toMatchObject({ code: 'GatewayTimeout' });
  expect(Date.now() - started).toBeLessThan(5000);
});

test('an upstream that resets the connection half-way → BadGateway, body released', async () => {
  script = (req, res) => {
    req.on('data', () => {
      if ((seen[seen.length - 1]?.bytes ?? 0) >= 4 * MiB) res.socket?.destroy();
    });
  };
  const store = scriptedStore();
  const body = Readable.from([pattern(4 * MiB, 3), pattern(4 * MiB, 4)]);
  await expect(store.uploadPart('k', 'u', 1, { body, contentLength: 8 * MiB })).rejects.toMatchObject({ code: 'BadGateway', reason: expect.stringMatching(/^upstream-(ECONNRESET|EPIPE)$/) });
  expect(body.destroyed).toBe(true);
});

test('connection refused → BadGateway upstream-ECONNREFUSED', async () => {
  const closed = createServer();
  await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
  const port = (closed.address() as AddressInfo).port;
  await new Promise<void>((resolve) => closed.close(() => resolve()));
  const store = scriptedStore({ endpoint: `http://127.0.0.1:${port}` });
  await expect(store.uploadPart('k', 'u', 1, bodyOf(Buffer.from('x')))).rejects.toMatchObject({ code: 'BadGateway', reason: 'upstream-ECONNREFUSED' });
  await expect(store.listObjects('')).rejects.toMatchObject({ code: 'BadGateway', reason: 'upstream-ECONNREFUSED' });
});

test('the endpoint must be a bare origin from configuration', () => {
  expect(() => scriptedStore({ endpoint: 'http://127.0.0.1:1/prefix' })).toThrow();
  expect(() => scriptedStore({ endpoint: 'http://user:pw@127.0.0.1:1' })).toThrow();
  expect(() => scriptedStore({ endpoint: 'file:///etc' })).toThrow();
  expect(() => scriptedStore({ bucket: 'Not_DNS', forcePathStyle: false })).toThrow();
});

describe('SigV4 against the embedded upstream', () => {
  test('a wrong secret or access key is rejected (403 → BadGateway upstream-<Code>), nothing stored', async () => {
    const fx = await startFixture();
    try {
      const wrongSecret = fx.storeWith({ credentials: async () => ({ accessKeyId: ACCESS_KEY, secretAccessKey: 'wrong' }) });
      await expect(wrongSecret.createMultipartUpload('k')).rejects.toMatchObject({ code: 'BadGateway', reason: 'upstream-SignatureDoesNotMatch' });
      await expect(wrongSecret.putObject('k', bodyOf(Buffer.from('data')))).rejects.toMatchObject({ reason: 'upstream-SignatureDoesNotMatch' });
      await expect(wrongSecret.putObject('k', { body: Buffer.from('data') })).rejects.toMatchObject({ reason: 'upstream-SignatureDoesNotMatch' });
      await expect(wrongSecret.listObjects('')).rejects.toMatchObject({ reason: 'upstream-SignatureDoesNotMatch' });
      const wrongKey = fx.storeWith({ credentials: async () => ({ accessKeyId: 'AKIDUNKNOWN', secretAccessKey: 'x' }) });
      await expect(wrongKey.headObject('k')).rejects.toMatchObject({ code: 'BadGateway', reason: expect.stringMatching(/^upstream-/) });
      await expect(wrongKey.getObject('k')).rejects.toMatchObject({ reason: 'upstream-InvalidAccessKeyId' });
      const wrongRegion = fx.storeWith({ region: 'eu-west-1' });
      await expect(wrongRegion.listObjects('')).rejects.toMatchObject({ reason: 'upstream-AuthorizationHeaderMalformed' });
      expect((await fx.store.listObjects('')).objects).toEqual([]);
    } finally {
      await fx.close();
    }
  });
});
