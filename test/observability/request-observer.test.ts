/**
 * Every answer is reported exactly once — to `requests_total` (with operation, code, HTTP status and a
 * bounded coffer label) and to one audit line — including refusals the listener makes before any
 * operation runs (405, 411, an unparsable target, malformed HTTP) and server faults (logged once, at
 * error). A real gateway (serve) on the embedded upstream, read back through a scrape of /metrics and
 * the JSON lines its logger wrote.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../src/config';
import { createLogger } from '../../src/observability/logger';
import { startGateway, type RunningGateway } from '../../src/app/serve';
import { cos, type CosTarget } from '../support/cos-http-client';
import { rawExchange } from '../server/helpers';
import { collectLogLines } from '../support/log-lines';

const DEMO = 'demo-1250000000';
const DOWN = 'down-1250000000';
const KEY = { secretId: 'AKIDobserver', secretKey: 'observer-secret-key-0123456789' };
const DOWN_KEY = { secretId: 'AKIDobserverdown', secretKey: 'observer-down-secret-key-0123456789' };

interface LogLine {
  readonly level: string;
  readonly msg: string;
  readonly requestId?: string;
  readonly [field: string]: unknown;
}

let directory: string;
let gateway: RunningGateway;
const log = collectLogLines();
let demo: CosTarget;
let down: CosTarget;

beforeAll(async () => {
  directory = mkdtempSync(join(tmpdir(), 'coffer-observer-'));
  const file = join(directory, 'config.json');
  writeFileSync(
    file,
    JSON.stringify({
      server: { port: 0, adminPort: 0 },
      embeddedUpstream: { enabled: true, directory: join(directory, 'upstream') },
      demo: { enabled: true, coffer: DEMO, ...KEY },
      keyring: { directory: join(directory, 'keyring') },
      auth: { accessKeys: [{ ...DOWN_KEY, grants: [{ coffer: DOWN, actions: ['*'] }] }] },
      // An upstream nobody listens on: every request to it is a server-side failure (BadGateway).
      coffers: {
        [DOWN]: {
          upstream: { endpoint: 'http://127.0.0.1:1', bucket: 'down', credentials: { accessKeyId: 'AKIDDOWNUPSTREAM', secretAccessKey: 'down-upstream-secret-0123456789' } },
          role: { type: 'static' },
          kms: { type: 'local', keyId: 'down' },
        },
      },
    }),
  );
  gateway = await startGateway(loadConfig({ file, env: {} }), { log: createLogger('info', log.sink) });
  demo = { port: gateway.port, coffer: DEMO, ...KEY };
  down = { port: gateway.port, coffer: DOWN, ...DOWN_KEY };
});

afterAll(async () => {
  await gateway.stop();
  rmSync(directory, { recursive: true, force: true });
});

async function requestsTotal(labels: Record<string, string>): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${gateway.adminPort}/metrics`)).text();
  let sum = 0;
  for (const line of text.split('\n')) {
    const match = /^coffer_gateway_requests_total\{(.*)\} (\S+)$/.exec(line);
    if (match === null) continue;
    const sample = Object.fromEntries([...(match[1] as string).matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
    if (Object.entries(labels).every(([k, v]) => sample[k] === v)) sum += Number(match[2]);
  }
  return sum;
}

/** The audit lines of one request, waiting until its report arrived (the report follows the response's close). */
async function auditLinesOf(requestId: string): Promise<LogLine[]> {
  for (let i = 0; i < 200; i += 1) {
    const found = log.records<LogLine>().filter((line) => line.requestId === requestId && (line.msg === 'request' || line.msg === 'request failed'));
    if (found.length > 0) {
      await new Promise((resolve) => setTimeout(resolve, 20)); // a second (duplicate) line would be written in the same turn
      return log.records<LogLine>().filter((line) => line.requestId === requestId && (line.msg === 'request' || line.msg === 'request failed'));
    }
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`no audit line for ${requestId}`);
}

const idOf = (text: string): string => /x-cos-request-id: ([0-9a-f]{32})/i.exec(text)?.[1] as string;

test('a successful PutObject: one audit line naming principal, coffer, key, operation, status, code, bytes and duration; counted with coffer and status', async () => {
  const before = await requestsTotal({ operation: 'PutObject', code: 'OK', status: '200', coffer: DEMO });
  const body = Buffer.from('audited body');
  const answer = await cos(demo, 'PUT', 'audit/one.txt', [], body);
  expect(answer.status).toBe(200);
  const [line, ...more] = await auditLinesOf(answer.headers['x-cos-request-id'] as string);
  expect(more).toEqual([]);
  expect(line).toMatchObject({ level: 'info', msg: 'request', principal: KEY.secretId, coffer: DEMO, key: 'audit/one.txt', operation: 'PutObject', method: 'PUT', status: 200, code: 'OK', bytesIn: body.length, bytesOut: 0 });
  expect(typeof line?.durationMs).toBe('number');
  expect(JSON.stringify(line)).not.toContain(KEY.secretKey);
  expect(await requestsTotal({ operation: 'PutObject', code: 'OK', status: '200', coffer: DEMO })).toBe(before + 1);
  const read = await cos(demo, 'GET', 'audit/one.txt');
  const [readLine] = await auditLinesOf(read.headers['x-cos-request-id'] as string);
  expect(readLine).toMatchObject({ operation: 'GetObject', status: 200, bytesIn: 0, bytesOut: body.length });
});

test('refusals before any operation runs are counted and logged once: 405 on a coffer, 411 on a routed PUT, an unparsable target', async () => {
  const before405 = await requestsTotal({ operation: 'Unknown', code: 'MethodNotAllowed', status: '405', coffer: DEMO });
  const notAllowed = await rawExchange(gateway.port, [`POST /${DEMO} HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`]);
  expect(notAllowed.statuses).toEqual([405]);
  expect(await auditLinesOf(idOf(notAllowed.text))).toEqual([expect.objectContaining({ level: 'info', status: 405, code: 'MethodNotAllowed', operation: 'Unknown', coffer: DEMO })]);
  expect(await requestsTotal({ operation: 'Unknown', code: 'MethodNotAllowed', status: '405', coffer: DEMO })).toBe(before405 + 1);

  const before411 = await requestsTotal({ operation: 'PutObject', code: 'MissingContentLength', status: '411' });
  const noLength = await rawExchange(gateway.port, [`PUT /${DEMO}/k HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n`]);
  expect(noLength.statuses).toEqual([411]);
  expect(await auditLinesOf(idOf(noLength.text))).toEqual([expect.objectContaining({ status: 411, code: 'MissingContentLength', operation: 'PutObject', key: 'k' })]);
  expect(await requestsTotal({ operation: 'PutObject', code: 'MissingContentLength', status: '411' })).toBe(before411 + 1);

  const badTarget = await rawExchange(gateway.port, [`GET /${DEMO}/%zz HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n`]);
  expect(badTarget.statuses).toEqual([400]);
  expect(await auditLinesOf(idOf(badTarget.text))).toEqual([expect.objectContaining({ status: 400, code: 'InvalidURI', operation: 'Unknown' })]);
});

test('malformed HTTP (answered by the listener, no request object) is counted too, under operation Unknown and coffer "-"', async () => {
  const before = await requestsTotal({ operation: 'Unknown', code: 'InvalidRequest', status: '400', coffer: '-' });
  const answer = await rawExchange(gateway.port, ['GET / HTTP/1.1\r\nHost: h\r\nContent-Length: x\r\n\r\n']);
  expect(answer.statuses).toEqual([400]);
  expect(await auditLinesOf(idOf(answer.text))).toEqual([expect.objectContaining({ status: 400, code: 'InvalidRequest', operation: 'Unknown' })]);
  expect(await requestsTotal({ operation: 'Unknown', code: 'InvalidRequest', status: '400', coffer: '-' })).toBe(before + 1);
});

test('the coffer label is bounded: a name the gateway does not serve is counted as "other", never as itself', async () => {
  // Refused (no grant names it), yet reported: under "other".
  const answer = await cos({ ...demo, coffer: 'unserved-1250000000' }, 'GET', 'k');
  expect(answer.status).toBe(403);
  expect(await requestsTotal({ coffer: 'unserved-1250000000' })).toBe(0);
  expect(await requestsTotal({ coffer: 'other', operation: 'GetObject' })).toBeGreaterThanOrEqual(1);
});

test('a server fault is logged exactly once, at error, with its code and the audit fields', async () => {
  const answer = await cos(down, 'GET', 'k');
  expect(answer.status).toBeGreaterThanOrEqual(500);
  const requestId = answer.headers['x-cos-request-id'] as string;
  const logged = await auditLinesOf(requestId);
  expect(logged).toEqual([expect.objectContaining({ level: 'error', msg: 'request failed', principal: DOWN_KEY.secretId, coffer: DOWN, operation: 'GetObject', status: answer.status })]);
  expect(log.records<LogLine>().filter((line) => line.requestId === requestId && line.level === 'error')).toHaveLength(1);
});
