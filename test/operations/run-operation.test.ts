/**
 * The operation pipeline, driven through a real listener by a dialect of its own (a router, a
 * two-entry table, a renderer, an authenticator) — which is also what a second dialect amounts to:
 * - `prepare` runs before the client may send the body: a refusal there sends no 100 Continue and
 *   reads no body byte, and `run` never runs;
 * - a body over the entry's limit is refused before 100 Continue, and `release` still gives back
 *   what `prepare` held (the data key is disposed);
 * - an accepted body flows after 100 Continue, `release` runs after the answer;
 * - results and errors are rendered by the dialect.
 */
import { randomBytes } from 'node:crypto';
import { GatewayError } from '../../src/errors/gateway-error';
import { DataKeyMaterial } from '../../src/keys/data-key-material';
import { operation, type Dialect } from '../../src/operations/operation-table';
import { createOperationHandler } from '../../src/operations/run-operation';
import { createGatewayServer, type GatewayServer } from '../../src/server/gateway-server';
import { parseRequestTarget } from '../../src/cdcs/request-target';
import { closeGateways, expectContinueExchange, serverConfig } from '../server/helpers';

type EchoOperation = { readonly name: 'Echo' } | { readonly name: 'Refuse' };

const events: string[] = [];
const keys: DataKeyMaterial[] = [];

const dialect: Dialect<EchoOperation> = {
  router: {
    parseTarget: (rawTarget) => parseRequestTarget(rawTarget, { acceptAbsoluteForm: false, hostHeader: 'h', virtualHostSuffixes: [] }),
    route: (_method, target) => (target.key === 'refuse' ? { name: 'Refuse' } : { name: 'Echo' }),
  },
  authenticate: async () => ({ id: 'tester', grants: [{ coffer: '*', actions: ['read', 'write', 'list'] }] }) as never,
  operations: {
    Echo: operation<{ readonly name: 'Echo' }, DataKeyMaterial>({
      action: 'write',
      scope: 'service',
      body: { maxBytes: 8, objectData: true },
      prepare: async () => {
        events.push('prepare');
        const key = new DataKeyMaterial(randomBytes(32));
        keys.push(key);
        return key;
      },
      run: async (key, body) => {
        events.push('run');
        let bytes = 0;
        for await (const chunk of body as AsyncIterable<Buffer>) bytes += chunk.length;
        return { kind: 'document', status: 200, result: { kind: 'InitiateMultipartUpload', coffer: 'c', key: String(bytes), uploadId: key.disposed ? 'disposed' : 'live' } };
      },
      release: (key) => {
        events.push('release');
        key.dispose();
      },
    }),
    Refuse: operation<{ readonly name: 'Refuse' }, undefined>({
      action: 'write',
      scope: 'service',
      body: { objectData: false },
      prepare: async () => {
        events.push('prepare');
        throw new GatewayError('NoSuchUpload');
      },
      run: async () => {
        events.push('run');
        return { kind: 'empty', status: 200 };
      },
    }),
  },
  renderResult: (result) => `<Rendered>${result.kind === 'InitiateMultipartUpload' ? `${result.key}/${result.uploadId}` : ''}</Rendered>`,
  renderError: (error, context) => {
    const code = error instanceof GatewayError ? error.code : 'InternalError';
    const status = error instanceof GatewayError ? error.status : 500;
    const body = `<DialectError>${code}</DialectError>`;
    return { status, headers: { 'content-type': 'application/xml', 'content-length': String(body.length), 'x-cos-request-id': context.requestId }, body };
  },
};

let gateway: GatewayServer;
let port: number;
beforeEach(async () => {
  events.length = 0;
  keys.length = 0;
  gateway = createGatewayServer({
    server: serverConfig(),
    router: dialect.router,
    renderError: dialect.renderError,
    handle: createOperationHandler(dialect, { coffers: { contextFor: () => Promise.reject(new Error('no coffers here')) }, keepAliveMs: 10_000 }),
  });
  ({ port } = await gateway.listen());
});
afterEach(async () => {
  await gateway.close(0);
  await closeGateways();
});

const head = (key: string, length: number): string => `PUT /demo-1250000000/${key} HTTP/1.1\r\nHost: h\r\nContent-Length: ${length}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n`;

test("a refusal in prepare: no 100 Continue, no body byte read, run never runs; the error in the dialect's XML", async () => {
  const result = await expectContinueExchange(port, head('refuse', 5), 'hello');
  expect(result.sentBody).toBe(false);
  expect(result.text.startsWith('HTTP/1.1 404 ')).toBe(true);
  expect(result.text).toContain('<DialectError>NoSuchUpload</DialectError>');
  expect(events).toEqual(['prepare']);
});

test("a declared body over the entry's limit: refused before 100 Continue, and release still disposes the data key", async () => {
  const result = await expectContinueExchange(port, head('k', 9), '123456789');
  expect(result.sentBody).toBe(false);
  expect(result.text).toContain('<DialectError>EntityTooLarge</DialectError>');
  expect(events).toEqual(['prepare', 'release']);
  expect(keys[0]?.disposed).toBe(true);
});

test('an accepted body: prepare, then 100 Continue, then run with the body; release after the answer; rendered by the dialect', async () => {
  const result = await expectContinueExchange(port, head('k', 5), 'hello');
  expect(result.sentBody).toBe(true);
  expect(result.text).toMatch(/^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200 OK\r\n/);
  expect(result.text.endsWith('<Rendered>5/live</Rendered>')).toBe(true);
  expect(events).toEqual(['prepare', 'run', 'release']);
  expect(keys[0]?.disposed).toBe(true);
});
