/**
 * CORS for browser clients (src/server/browser-cors.ts) at the HTTP level, through the public API
 * mounted in an Express app the way a user mounts it: preflights answered from the configuration
 * alone (no authentication, no upstream call, the same refusal for an unknown coffer), origins matched
 * exactly, the headers the SDK reads exposed on answers and errors alike, never credentials.
 * The real browser SDK in Chromium: test/e2e/cos-js-sdk-browser.test.ts.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openCos, type CosResponse, type CosTarget } from '../support/cos-http-client';
import { startTestGateway } from '../support/test-gateway';
import { rawExchange } from './helpers';

const DEMO = 'demo-1250000000';
const SHOP = 'shop-1250000000';
const SECRET_ID = 'AKIDbrowser0001';
const SECRET_KEY = 'browser-secret-key-0123456789abcdef';
const SHOP_ORIGIN = 'https://shop.example.com';

let directory: string;
let upstreamRequests: string[];
let port: number;
const opened: Array<() => Promise<void>> = [];

async function listening(server: Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  opened.push(() => new Promise((resolve) => server.close(() => resolve())));
  return (server.address() as AddressInfo).port;
}

beforeAll(async () => {
  directory = mkdtempSync(join(tmpdir(), 'coffer-cors-'));
  // The configured coffer's upstream records every request it gets: a preflight must add none.
  upstreamRequests = [];
  const upstream = createServer((req, res) => {
    upstreamRequests.push(`${req.method} ${req.url}`);
    res.writeHead(200, { 'content-length': '0' }).end();
  });
  const upstreamPort = await listening(upstream);
  // Mounted as a user mounts it (Express, attach): the CORS handling lives inside the gateway's handler.
  const started = await startTestGateway({
    server: { port: 0, adminPort: 0 },
    keyring: { directory: join(directory, 'keyring') },
    embeddedUpstream: { enabled: true, directory: join(directory, 'upstream') },
    // The demo coffer keeps its default CORS origins (loopback, any port).
    demo: { enabled: true, coffer: DEMO, secretId: SECRET_ID, secretKey: SECRET_KEY },
    coffers: {
      [SHOP]: {
        upstream: { endpoint: `http://127.0.0.1:${upstreamPort}`, bucket: 'shop', credentials: { accessKeyId: 'AKIDUPSTREAM0001', secretAccessKey: 'upstream-secret-0123456789abcdef' } },
        kms: { type: 'local', keyId: 'shop' },
        cors: { allowedOrigins: [SHOP_ORIGIN, 'http://127.0.0.1:*'] },
      },
    },
    auth: { accessKeys: [{ secretId: 'AKIDshop0001', secretKey: SECRET_KEY, grants: [{ coffer: SHOP, actions: ['*'] }] }] },
  });
  opened.push(() => started.close());
  await started.gateway.dependenciesAttempted;
  port = started.port;
});

afterAll(async () => {
  for (const close of opened.splice(0).reverse()) await close();
  rmSync(directory, { recursive: true, force: true });
});

interface Answer {
  readonly status: number;
  readonly headers: Headers;
  readonly text: string;
}

async function preflight(path: string, origin: string, method = 'PUT', requestHeaders = 'authorization,content-type'): Promise<Answer> {
  const response = await fetch(`http://127.0.0.1:${port}${path}`, {
    method: 'OPTIONS',
    headers: { origin, 'access-control-request-method': method, 'access-control-request-headers': requestHeaders },
  });
  return { status: response.status, headers: response.headers, text: await response.text() };
}

/** A COS-signed request from a page at `origin`. */
async function signedFrom(origin: string, coffer: string, method: string, key: string, body = Buffer.alloc(0)): Promise<CosResponse> {
  const target: CosTarget = { port, coffer, secretId: coffer === DEMO ? SECRET_ID : 'AKIDshop0001', secretKey: SECRET_KEY };
  const call = openCos(target, method, key, [], body.length, { origin });
  call.req.end(body);
  const answer = await call.done;
  if (answer === 'reset') throw new Error('reset');
  return answer;
}

const exposed = (headers: IncomingHttpHeaders): string[] =>
  String(headers['access-control-expose-headers'] ?? '')
    .split(',')
    .map((name) => name.trim().toLowerCase());

describe('preflight', () => {
  test('an allowed origin gets 204 with its own origin, the methods and the requested headers; no Authorization, no upstream call', async () => {
    const before = upstreamRequests.length;
    const answer = await preflight(`/${SHOP}/photos/cat.jpg?partNumber=1&uploadId=0123456789abcdef0123456789abcdef`, SHOP_ORIGIN);
    expect(answer.status).toBe(204);
    expect(answer.text).toBe('');
    expect(answer.headers.get('access-control-allow-origin')).toBe(SHOP_ORIGIN);
    expect(answer.headers.get('access-control-allow-methods')).toBe('GET,HEAD,PUT,POST,DELETE');
    expect(answer.headers.get('access-control-allow-headers')).toBe('authorization,content-type');
    expect(answer.headers.get('access-control-max-age')).toBe('600');
    expect(answer.headers.get('access-control-allow-credentials')).toBeNull();
    expect(answer.headers.get('vary')).toMatch(/\bOrigin\b/);
    expect(answer.headers.get('x-cos-request-id')).toMatch(/^[0-9a-f]{32}$/);
    expect(upstreamRequests.length).toBe(before);
  });

  test('a scheme and host on any port (":*") match that host on every port, and nothing else', async () => {
    for (const origin of ['http://127.0.0.1', 'http://127.0.0.1:5173', 'http://127.0.0.1:65535']) {
      expect((await preflight(`/${SHOP}/a`, origin)).headers.get('access-control-allow-origin')).toBe(origin);
    }
    for (const origin of ['https://127.0.0.1:5173', 'http://127.0.0.1.evil.net:5173', 'http://127.0.0.10:5173', 'http://127.0.0.1:5173/x']) {
      expect((await preflight(`/${SHOP}/a`, origin)).status).toBe(403);
    }
  });

  test('origins are compared exactly: near misses, other schemes and "null" are refused with 403 AccessDenied and no CORS headers', async () => {
    for (const origin of ['https://shop.example.com.evil.net', 'https://evil-shop.example.com', 'http://shop.example.com', 'https://shop.example.com:8443', 'https://SHOP.example.com', 'https://shop.example.com/', 'null', '*']) {
      const answer = await preflight(`/${SHOP}/a`, origin);
      expect({ origin, status: answer.status }).toEqual({ origin, status: 403 });
      expect(answer.text).toContain('<Code>AccessDenied</Code>');
      expect(answer.headers.get('access-control-allow-origin')).toBeNull();
      expect(answer.headers.get('access-control-allow-methods')).toBeNull();
    }
  });

  test('an unknown coffer and the service endpoint get exactly the refusal a disallowed origin gets: a preflight reveals no coffer', async () => {
    const disallowed = await preflight(`/${SHOP}/a`, 'https://elsewhere.example.com');
    const unknown = await preflight('/nosuch-1250000000/a', SHOP_ORIGIN);
    const service = await preflight('/', SHOP_ORIGIN, 'GET');
    const redacted = (text: string): string => text.replace(/<(RequestId|TraceId|Resource)>[^<]*</g, '<$1><');
    for (const answer of [unknown, service]) {
      expect(answer.status).toBe(disallowed.status);
      expect(redacted(answer.text).replace(/<Resource><\/Resource>/, '')).toBe(redacted(disallowed.text).replace(/<Resource><\/Resource>/, ''));
      expect(answer.headers.get('access-control-allow-origin')).toBeNull();
    }
  });

  test('the demo coffer allows pages from this machine on any port by default, and no other origin', async () => {
    for (const origin of ['http://localhost:5173', 'http://127.0.0.1:8080', 'http://[::1]:3000', 'http://localhost']) {
      expect((await preflight(`/${DEMO}/a`, origin)).headers.get('access-control-allow-origin')).toBe(origin);
    }
    for (const origin of ['http://localhost.evil.net:5173', 'https://localhost:5173', SHOP_ORIGIN]) {
      expect((await preflight(`/${DEMO}/a`, origin)).status).toBe(403);
    }
  });

  test('an Origin sent twice matches nothing', async () => {
    const raw = await rawExchange(port, [`OPTIONS /${SHOP}/a HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nOrigin: ${SHOP_ORIGIN}\r\nOrigin: ${SHOP_ORIGIN}\r\nAccess-Control-Request-Method: PUT\r\n\r\n`]);
    expect(raw.statuses).toEqual([403]);
    expect(raw.text.toLowerCase()).not.toContain('access-control-allow-origin');
  });

  test('a preflight carrying a body is refused (400) and its connection closed', async () => {
    const raw = await rawExchange(port, [`OPTIONS /${SHOP}/a HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nOrigin: ${SHOP_ORIGIN}\r\nAccess-Control-Request-Method: PUT\r\nContent-Length: 5\r\n\r\nhello`]);
    expect(raw.statuses).toEqual([400]);
    expect(raw.text).toContain('<Code>InvalidRequest</Code>');
    expect(raw.closed).toBe(true);
  });

  test('an OPTIONS that is no preflight (no Access-Control-Request-Method) stays 405 MethodNotAllowed', async () => {
    const response = await fetch(`http://127.0.0.1:${port}/${SHOP}/a`, { method: 'OPTIONS', headers: { origin: SHOP_ORIGIN } });
    expect(response.status).toBe(405);
    expect(await response.text()).toContain('<Code>MethodNotAllowed</Code>');
  });
});

describe('actual requests', () => {
  test('an allowed origin’s signed PUT and GET carry its origin and expose ETag and x-cos-request-id; never credentials', async () => {
    const put = await signedFrom('http://localhost:5173', DEMO, 'PUT', 'browser/a.txt', Buffer.from('from a page'));
    expect(put.status).toBe(200);
    const get = await signedFrom('http://localhost:5173', DEMO, 'GET', 'browser/a.txt');
    expect(get.text).toBe('from a page');
    for (const answer of [put, get]) {
      expect(answer.headers['access-control-allow-origin']).toBe('http://localhost:5173');
      expect(answer.headers['access-control-allow-credentials']).toBeUndefined();
      expect(answer.headers['vary']).toMatch(/\bOrigin\b/);
      expect(exposed(answer.headers)).toEqual(expect.arrayContaining(['etag', 'x-cos-request-id', 'content-range', 'date']));
    }
  });

  test('errors keep the CORS headers, so the page reads the error code; an unsigned request is still refused (401)', async () => {
    const missing = await signedFrom('http://localhost:5173', DEMO, 'GET', 'browser/never-written.txt');
    expect(missing.status).toBe(404);
    expect(missing.text).toContain('<Code>NoSuchKey</Code>');
    expect(missing.headers['access-control-allow-origin']).toBe('http://localhost:5173');
    expect(exposed(missing.headers)).toContain('x-cos-request-id');

    const unsigned = await fetch(`http://127.0.0.1:${port}/${DEMO}/browser/a.txt`, { headers: { origin: 'http://localhost:5173' } });
    expect(unsigned.status).toBe(401);
    expect(unsigned.headers.get('access-control-allow-origin')).toBe('http://localhost:5173');
  });

  test('a disallowed origin’s request is served as any other (signatures decide) but carries no CORS headers, so its page cannot read it', async () => {
    const get = await signedFrom('https://elsewhere.example.com', DEMO, 'GET', 'browser/a.txt');
    expect(get.status).toBe(200);
    expect(get.headers['access-control-allow-origin']).toBeUndefined();
    expect(get.headers['access-control-expose-headers']).toBeUndefined();
  });
});
