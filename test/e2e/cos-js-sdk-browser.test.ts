/**
 * The official browser SDK (cos-js-sdk-v5) on a web page in headless Chromium, served from another
 * origin than the gateway's (page http://localhost:<page port>, gateway http://127.0.0.1:<gateway
 * port> or http://<coffer>.coffer.localhost:<gateway port>): the browser enforces CORS itself, so each
 * call passes only if the preflight, the allowed origin and the exposed headers are right. The gateway
 * is `npm start`'s embedded default (demo coffer, default CORS origins: loopback pages on any port) —
 * the out-of-the-box browser recipe of docs/reference/browser.md — plus the virtual-host suffix of its
 * second recipe.
 *
 * The same page served under a name that is not loopback (mapped to 127.0.0.1 inside the browser
 * only) is refused by the browser: the gateway's CORS answer is what decides.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { startGateway, type RunningGateway } from '../../src/app/serve';
import { loadConfig } from '../../src/config';
import { createLogger } from '../../src/observability/logger';
import { cos, type CosTarget } from '../support/cos-http-client';
import { md5Etag, sha256 } from '../support/digests';
import { describeWithChromium, launchChromium } from '../support/headless-chromium';

const Bucket = 'demo-1250000000';
const Region = 'ap-guangzhou';
const SECRET_ID = 'AKIDbrowserSdk01';
const SECRET_KEY = 'browser-sdk-secret-key-0123456789';
/** A page origin that is not loopback by name (resolved to 127.0.0.1 by the browser only). */
const FOREIGN_HOST = 'shop.coffer.test';
const MiB = 1024 * 1024;

const SDK_FILE = join(dirname(require.resolve('cos-js-sdk-v5/package.json')), 'dist', 'cos-js-sdk-v5.min.js');

/**
 * The page: the SDK from its own file, and one function the test calls with a list of steps. Errors
 * come back as plain objects (the SDK's error objects do not cross page.evaluate).
 */
const PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><title>coffer-gateway browser test</title>
<script src="/cos-js-sdk-v5.min.js"></script>
<script>
function client(domain, secretId, secretKey) {
  return new COS({ SecretId: secretId, SecretKey: secretKey, Protocol: 'http:', Domain: domain });
}
function call(cos, method, params) {
  return new Promise(function (resolve) {
    cos[method](params, function (err, data) {
      if (err) resolve({ error: { code: err.code || (err.error && err.error.Code), statusCode: err.statusCode, requestId: err.RequestId || (err.headers && err.headers['x-cos-request-id']), message: String(err.message || (err.error && err.error.Message) || err.error || '') } });
      else resolve({ data: data });
    });
  });
}
/** Deterministic bytes, so the test can compute the same digest outside the browser. */
function pattern(size) {
  var bytes = new Uint8Array(size);
  for (var i = 0; i < size; i++) bytes[i] = (i * 31 + 7) % 251;
  return bytes;
}
async function sha256Hex(buffer) {
  var digest = new Uint8Array(await crypto.subtle.digest('SHA-256', buffer));
  return Array.from(digest, function (b) { return b.toString(16).padStart(2, '0'); }).join('');
}
</script></head><body>coffer-gateway browser test</body></html>`;

/** Deterministic bytes, as the page's pattern(). */
function pattern(size: number): Buffer {
  const bytes = Buffer.alloc(size);
  for (let i = 0; i < size; i++) bytes[i] = (i * 31 + 7) % 251;
  return bytes;
}

interface SdkError {
  readonly code?: string;
  readonly statusCode?: number;
  readonly requestId?: string;
  readonly message: string;
}
interface SdkAnswer {
  readonly data?: Record<string, any>;
  readonly error?: SdkError;
}

describeWithChromium('cos-js-sdk-v5 in headless Chromium, from a page on another origin', () => {
  let directory: string;
  let gateway: RunningGateway;
  let gatewayPort: number;
  let pagePort: number;
  let browser: Browser;
  const servers: Server[] = [];

  async function listening(server: Server): Promise<number> {
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return (server.address() as AddressInfo).port;
  }

  beforeAll(async () => {
    directory = mkdtempSync(join(tmpdir(), 'coffer-browser-'));
    // `npm start` with no configuration file (the embedded default), as the recipe runs it.
    const config = loadConfig({
      env: {
        PORT: '0',
        COFFER__SERVER__ADMIN_PORT: '0',
        COFFER_DEMO_SECRET_ID: SECRET_ID,
        COFFER_DEMO_SECRET_KEY: SECRET_KEY,
        COFFER__KEYRING__DIRECTORY: join(directory, 'keyring'),
        COFFER__EMBEDDED_UPSTREAM__DIRECTORY: join(directory, 'upstream'),
        // The second recipe: `<coffer>.coffer.localhost` addresses the coffer (virtual-hosted).
        COFFER__SERVER__VIRTUAL_HOST_SUFFIXES: '["coffer.localhost"]',
      },
    });
    gateway = await startGateway(config, { log: createLogger('silent') });
    gatewayPort = gateway.port;
    // The page's own server: another port, so another origin than the gateway's.
    const sdk = readFileSync(SDK_FILE);
    pagePort = await listening(
      createServer((req, res) => {
        if (req.url === '/cos-js-sdk-v5.min.js') res.writeHead(200, { 'content-type': 'text/javascript' }).end(sdk);
        else res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(PAGE);
      }),
    );
    browser = await launchChromium({ hostMap: [FOREIGN_HOST] });
  });

  afterAll(async () => {
    await browser?.close();
    for (const server of servers) await new Promise<void>((resolve) => server.close(() => resolve()));
    await gateway?.stop();
    rmSync(directory, { recursive: true, force: true });
  });

  async function pageAt(host: string): Promise<Page> {
    const page = await browser.newPage();
    await page.goto(`http://${host}:${pagePort}/`);
    return page;
  }

  /** The SDK's `Domain` for each recipe: path-style (the embedded default), or virtual-hosted under localhost. */
  const domains = {
    'path-style': () => `127.0.0.1:${gatewayPort}/{Bucket}`,
    'virtual-hosted': () => `{Bucket}.coffer.localhost:${gatewayPort}`,
  } as const;
  type Addressing = keyof typeof domains;

  /** Calls `method` of a COS client on the page. */
  function sdkCall(page: Page, method: string, params: Record<string, unknown>, addressing: Addressing = 'path-style'): Promise<SdkAnswer> {
    return page.evaluate(
      ([domain, secretId, secretKey, name, callParams]) => {
        const w = globalThis as unknown as { client: (...args: unknown[]) => unknown; call: (...args: unknown[]) => Promise<SdkAnswer> };
        return w.call(w.client(domain, secretId, secretKey), name, callParams);
      },
      [domains[addressing](), SECRET_ID, SECRET_KEY, method, params] as const,
    );
  }

  const target = (): CosTarget => ({ port: gatewayPort, coffer: Bucket, secretId: SECRET_ID, secretKey: SECRET_KEY });

  test.each(['path-style', 'virtual-hosted'] as const)('%s: putObject, getObject and getBucket; ETag and RequestId readable by the page; the object read back by another client', async (addressing) => {
    const page = await pageAt('localhost');
    expect(await page.evaluate(() => (globalThis as unknown as { location: { origin: string } }).location.origin)).toBe(`http://localhost:${pagePort}`);
    const key = `browser/${addressing}/hello.txt`;

    const put = await sdkCall(page, 'putObject', { Bucket, Region, Key: key, Body: 'hello from a web page' }, addressing);
    expect(put.error).toBeUndefined();
    expect(put.data?.['statusCode']).toBe(200);
    // The SDK reads both from response headers: only there if the gateway exposes them.
    expect(put.data?.['ETag']).toBe(md5Etag('hello from a web page'));
    expect(put.data?.['RequestId']).toMatch(/^[0-9a-f]{32}$/);

    const get = await sdkCall(page, 'getObject', { Bucket, Region, Key: key }, addressing);
    expect(get.error).toBeUndefined();
    expect(get.data?.['Body']).toBe('hello from a web page');
    expect(get.data?.['ETag']).toBe(put.data?.['ETag']);

    // What the page stored is what any other client reads.
    expect((await cos(target(), 'GET', key)).text).toBe('hello from a web page');

    const list = await sdkCall(page, 'getBucket', { Bucket, Region, Prefix: `browser/${addressing}/` }, addressing);
    expect(list.error).toBeUndefined();
    expect((list.data?.['Contents'] as Array<{ Key: string }>).map((entry) => entry.Key)).toEqual([key]);
    await page.close();
  });

  test('sliceUploadFile: a multipart upload of three parts from a Blob, read back whole with the same SHA-256', async () => {
    const page = await pageAt('localhost');
    const size = 11 * MiB;
    const result = await page.evaluate(
      async ([domain, secretId, secretKey, bucket, region, bytes, chunkSize]) => {
        const w = globalThis as unknown as { client: (...args: unknown[]) => unknown; call: (...args: unknown[]) => Promise<SdkAnswer>; pattern: (size: number) => Uint8Array; sha256Hex: (data: ArrayBuffer | Uint8Array) => Promise<string> };
        const client = w.client(domain, secretId, secretKey);
        const data = w.pattern(bytes);
        const uploaded = await w.call(client, 'sliceUploadFile', { Bucket: bucket, Region: region, Key: 'browser/big.bin', Body: new Blob([data]), ChunkSize: chunkSize });
        const downloaded = await w.call(client, 'getObject', { Bucket: bucket, Region: region, Key: 'browser/big.bin', DataType: 'arraybuffer' });
        const body = downloaded.data?.['Body'] as ArrayBuffer | undefined;
        return { uploaded, downloadError: downloaded.error, downloadedBytes: body?.byteLength, downloadedSha256: body === undefined ? undefined : await w.sha256Hex(body) };
      },
      [domains['path-style'](), SECRET_ID, SECRET_KEY, Bucket, Region, size, 5 * MiB] as const,
    );
    expect(result.uploaded.error).toBeUndefined();
    // A multipart ETag: "<md5 of the part MD5s>-<parts>".
    expect(result.uploaded.data?.['ETag']).toMatch(/^"[0-9a-f]{32}-3"$/);
    expect(result.downloadError).toBeUndefined();
    expect(result.downloadedBytes).toBe(size);
    expect(result.downloadedSha256).toBe(sha256(pattern(size)));
    await page.close();
  });

  test('an error reaches the page with its code and request id (NoSuchKey), not as a network failure', async () => {
    const page = await pageAt('localhost');
    const missing = await sdkCall(page, 'getObject', { Bucket, Region, Key: 'browser/never-written.txt' });
    expect(missing.error?.statusCode).toBe(404);
    expect(missing.error?.code).toBe('NoSuchKey');
    expect(missing.error?.requestId).toMatch(/^[0-9a-f]{32}$/);
    await page.close();
  });

  test('the same page from an origin the coffer does not allow: the browser blocks every call, nothing is stored', async () => {
    const page = await pageAt(FOREIGN_HOST);
    expect(await page.evaluate(() => (globalThis as unknown as { location: { origin: string } }).location.origin)).toBe(`http://${FOREIGN_HOST}:${pagePort}`);
    const put = await sdkCall(page, 'putObject', { Bucket, Region, Key: 'browser/foreign.txt', Body: 'should not land' });
    expect(put.data).toBeUndefined();
    // Blocked by the browser: the page learns no status and no request id.
    expect(put.error?.statusCode ?? 0).toBe(0);
    expect(put.error?.requestId).toBeUndefined();
    expect((await cos(target(), 'HEAD', 'browser/foreign.txt')).status).toBe(404);
    await page.close();
  });
});
