/**
 * The public API (src/index.ts): createCofferGateway(config) mounted in an Express 5 app beside the
 * app's own routes, on a server the app owns — `attach` is what makes that server a gateway listener.
 */
import express from 'express';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, createCofferGateway, type CofferGateway } from '../../src';
import { createLogger } from '../../src/observability/logger';
import { cos, signedRequestHead, type CosTarget } from '../support/cos-http-client';
import { rawExchange, rawHeader } from '../server/helpers';

const COFFER = 'mounted-1250000000';
const SECRET_ID = 'AKIDmounted0001';
const SECRET_KEY = 'mounted-secret-key-0123456789abcdef';

let directory: string;
const opened: Array<() => Promise<void>> = [];

beforeEach(() => {
  directory = mkdtempSync(join(tmpdir(), 'coffer-mounted-'));
});
afterEach(async () => {
  for (const close of opened.splice(0).reverse()) await close();
  rmSync(directory, { recursive: true, force: true });
});

/** The configuration object a YAML file would hold: the demo coffer on the embedded upstream. */
function config(server: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    server: { port: 0, adminPort: 0, ...server },
    keyring: { directory: join(directory, 'keyring') },
    embeddedUpstream: { enabled: true, directory: join(directory, 'upstream') },
    demo: { enabled: true, coffer: COFFER, secretId: SECRET_ID, secretKey: SECRET_KEY },
  };
}

async function gatewayFor(settings: Record<string, unknown> = {}): Promise<CofferGateway> {
  const gateway = await createCofferGateway(config(settings), { log: createLogger('silent') });
  opened.push(() => gateway.close());
  return gateway;
}

/** An app with routes of its own (a health check, a refusing upload route), then the gateway. */
function appWith(gateway: CofferGateway): express.Express {
  const app = express();
  app.get('/healthz', (_req, res) => void res.type('text/plain').send('app ok'));
  app.put('/private/:name', (_req, res) => void res.status(403).type('text/plain').send('not here'));
  app.use(gateway.handler);
  return app;
}

async function listening(server: Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  opened.push(() => new Promise((resolve) => (server.listening ? server.close(() => resolve()) : resolve())));
  return (server.address() as AddressInfo).port;
}

/** A plain http.createServer(app) with the gateway attached: no listener options of our own. */
async function mounted(gateway: CofferGateway): Promise<{ port: number; server: Server }> {
  const server = createServer(appWith(gateway));
  gateway.attach(server);
  return { port: await listening(server), server };
}

const target = (port: number): CosTarget => ({ port, coffer: COFFER, secretId: SECRET_ID, secretKey: SECRET_KEY });

test('mounted beside the app’s own routes: the app answers its routes, the gateway stores and returns an object through the same server', async () => {
  const gateway = await gatewayFor();
  const { port } = await mounted(gateway);
  const health = await fetch(`http://127.0.0.1:${port}/healthz`);
  expect(await health.text()).toBe('app ok');
  expect(health.headers.get('x-cos-request-id')).toBeNull(); // the app's own answer, not the gateway's
  const body = Buffer.from('mounted in express');
  const put = await cos(target(port), 'PUT', 'notes/a.txt', [], body);
  expect(put.status).toBe(200);
  expect(put.headers['x-cos-request-id']).toMatch(/^[0-9a-f]{32}$/);
  const get = await cos(target(port), 'GET', 'notes/a.txt');
  expect(get.status).toBe(200);
  expect(get.body.equals(body)).toBe(true);
});

describe('Expect: 100-continue on a mounted gateway: nothing is sent before a refusal', () => {
  const expecting = (port: number, key: string, headers: ReadonlyArray<readonly [string, string]> = []): string => signedRequestHead(target(port), 'PUT', key, [], [['Content-Length', '5'], ['Expect', '100-continue'], ...headers]);

  test('the app’s own refusing route, the gateway’s refusal (bad signature) and its acceptance', async () => {
    const gateway = await gatewayFor();
    const { port } = await mounted(gateway);
    // The app's route refuses: no 100 (the client keeps its body).
    const appRefusal = await rawExchange(port, [`PUT /private/x HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n`]);
    expect(appRefusal.statuses).toEqual([403]);
    // The gateway refuses (the signature is for another key than the path): no 100, the XML answer.
    const forged = expecting(port, 'signed-for-this').replace('/signed-for-this', '/but-sent-to-that');
    const gatewayRefusal = await rawExchange(port, [forged]);
    expect(gatewayRefusal.statuses).toEqual([403]);
    expect(gatewayRefusal.text).toContain('<Code>SignatureDoesNotMatch</Code>');
    expect(rawHeader(gatewayRefusal.text, 'connection')).toBe('close');
    // The gateway accepts: 100 first, then (after the body) 200.
    const accepted = await rawExchange(port, [expecting(port, 'accepted.txt'), 'hello'], { pauseMs: 100 });
    expect(accepted.statuses).toEqual([100, 200]);
  });

  test('the measured trap, for contrast: the same app on http.createServer(app) without attach sends 100 before the refusal', async () => {
    const gateway = await gatewayFor();
    const port = await listening(createServer(appWith(gateway)));
    const appRefusal = await rawExchange(port, [`PUT /private/x HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n`]);
    expect(appRefusal.statuses).toEqual([100, 403]);
  });
});

test('attach makes a server built without options a gateway listener: header cap → 431 and a missing Host → 400, both as the gateway’s XML with request ids', async () => {
  const gateway = await gatewayFor({ maxHeaderBytes: 2048 });
  const { port } = await mounted(gateway);
  const oversized = await rawExchange(port, [`GET /${COFFER}/a HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Filler: ${'a'.repeat(4096)}\r\n\r\n`]);
  expect(oversized.statuses).toEqual([431]);
  expect(oversized.text).toContain('<Code>RequestHeaderFieldsTooLarge</Code>');
  // Node's own default (requireHostHeader) would answer a bare 400 without our ids.
  const hostless = await rawExchange(port, [`GET /${COFFER}/a HTTP/1.1\r\n\r\n`]);
  expect(hostless.statuses).toEqual([400]);
  expect(hostless.text).toContain('<Code>InvalidRequest</Code>');
  expect(rawHeader(hostless.text, 'x-cos-request-id')).toMatch(/^[0-9a-f]{32}$/);
});

test('attach refuses a server that already listens (Node fixes its timeout checks at listen time)', async () => {
  const gateway = await gatewayFor();
  const server = createServer(appWith(gateway));
  await listening(server);
  expect(() => gateway.attach(server)).toThrow(/before server\.listen/);
});

test('close() drains and closes the attached server', async () => {
  const gateway = await gatewayFor();
  const { server } = await mounted(gateway);
  await gateway.close();
  expect(server.listening).toBe(false);
});

test('close() resolves only once the start-up readiness check in flight has ended: nothing is written into the data directory afterwards', async () => {
  // Closed while the first readiness check is creating the keyring's key file: it has just made the
  // keyring directory (the afterEach rmSync of this file used to meet ENOTEMPTY under load).
  const gateway = await createCofferGateway(config(), { log: createLogger('silent') });
  while (!existsSync(join(directory, 'keyring'))) await new Promise((resolve) => setImmediate(resolve));
  await gateway.close();
  const listing = (): string[] => readdirSync(directory, { recursive: true, encoding: 'utf8' }).sort();
  const atClose = listing();
  await gateway.dependenciesAttempted;
  expect(listing()).toEqual(atClose);
});

test('the configuration object is validated by the configuration schema: every problem named by its path, nothing opened', async () => {
  const bad = { ...config(), server: { port: 'eighty' }, coffers: { 'Not A Coffer': {} } };
  const failure = await createCofferGateway(bad, { log: createLogger('silent') }).catch((error: unknown) => error);
  expect(failure).toBeInstanceOf(ConfigError);
  expect((failure as ConfigError).problems).toEqual(expect.arrayContaining([expect.stringMatching(/^server\.port: /), expect.stringMatching(/^coffers/)]));
});
