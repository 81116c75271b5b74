/**
 * Fuzzed headers through the whole gateway (reliability checklist item 12; the key round trip is the
 * identity side's property test). Property-based (fast-check), on raw sockets so that anything can be
 * sent — names and values node:http would refuse to send, duplicates of meaningful headers (Range,
 * Content-MD5, If-Match, x-cos-*, Expect, Content-Length, Transfer-Encoding), control bytes and obs-text:
 *  - every request is answered, never with a 5xx, and the process never crashes;
 *  - validly signed reads that got 200 return exactly the stored bytes (or the exact range asked for);
 *  - afterwards the gateway serves normally and nothing is left in flight;
 *  - an oversize header block is 431, an oversize request target 414.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { loadConfig } from '../../src/config';
import { createLogger } from '../../src/observability/logger';
import { startGateway, type RunningGateway } from '../../src/app/serve';
import { cos, signedRequestHead, type CosTarget } from '../support/cos-http-client';
import { sha256 } from '../support/digests';

const COFFER = 'demo-1250000000';
const KEYS = { secretId: 'AKIDheaderFuzz', secretKey: 'header-fuzz-secret-key-0123456789' };
const OBJECT = randomBytes(5000);

interface RawAnswer {
  /** 0 when the connection ended without a status line. */
  readonly status: number;
  readonly body: Buffer;
}

/** Writes `data` on a fresh connection; resolves with the first response (status and body) or on close. */
function exchange(port: number, data: Buffer, method: string): Promise<RawAnswer> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    let received = Buffer.alloc(0);
    let settled = false;
    const settle = (answer: RawAnswer): void => {
      if (settled) return;
      settled = true;
      socket.destroy();
      resolve(answer);
    };
    const parse = (final: boolean): void => {
      const end = received.indexOf('\r\n\r\n');
      if (end < 0) {
        if (final) settle({ status: 0, body: Buffer.alloc(0) });
        return;
      }
      const head = received.subarray(0, end).toString('latin1');
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0);
      if (status === 100) {
        received = received.subarray(end + 4); // interim answer: wait for the final one
        return parse(final);
      }
      const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0);
      const body = received.subarray(end + 4);
      const bodyless = method === 'HEAD' || status === 204 || status === 304;
      if (bodyless || body.length >= length || final) settle({ status, body: bodyless ? Buffer.alloc(0) : body.subarray(0, length) });
    };
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      parse(false);
    });
    socket.on('error', () => undefined);
    socket.on('close', () => parse(true));
    socket.once('connect', () => socket.write(data));
    setTimeout(() => parse(true), 10_000).unref();
  });
}

const TOKEN_CHARS = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
/** Header names that mean something to the gateway, its parser or its upstream. */
const MEANINGFUL = [
  'range',
  'content-md5',
  'if-match',
  'if-none-match',
  'if-modified-since',
  'if-unmodified-since',
  'if-range',
  'x-cos-meta-a',
  'x-cos-security-token',
  'x-cos-storage-class',
  'expect',
  'content-type',
  'content-encoding',
  'transfer-encoding',
  'content-length',
  'connection',
  'host',
  'authorization',
  'traceparent',
  'x-forwarded-for',
  'x-forwarded-host',
  'upgrade',
  'te',
  'trailer',
  'cache-control',
];

const name = fc.oneof(
  fc.string({ unit: fc.constantFrom(...TOKEN_CHARS), minLength: 1, maxLength: 40 }),
  fc.constantFrom(...MEANINGFUL),
  fc.constantFrom(...MEANINGFUL).map((n) => n.toUpperCase()),
);
/** Visible ASCII, space and tab mostly; sometimes obs-text bytes and control bytes a strict parser refuses. */
const value = fc.oneof(
  { weight: 6, arbitrary: fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)), maxLength: 120 }) },
  { weight: 1, arbitrary: fc.string({ unit: fc.integer({ min: 0x80, max: 0xff }).map((c) => String.fromCharCode(c)), maxLength: 20 }) },
  { weight: 1, arbitrary: fc.string({ unit: fc.integer({ min: 0x00, max: 0x1f }).map((c) => String.fromCharCode(c)), minLength: 1, maxLength: 3 }) },
  { weight: 1, arbitrary: fc.constantFrom('bytes=0-99', 'bytes=-1', 'bytes=4990-', 'bytes=0-0,5-9', 'bytes=9999999-', '100-continue', 'chunked', '0', '5', '-1', '"*"', '*', 'close', '\t', '') },
);
/** Extra header lines, duplicates likely (names are drawn again and again from a small set). */
const extraHeaders = fc.array(fc.tuple(name, value), { maxLength: 12 });

type Operation = { readonly method: string; readonly key: string; readonly params: Array<[string, string]>; readonly body: Buffer };

describe('fuzzed headers through the gateway', () => {
  let directory: string;
  let gateway: RunningGateway;
  let target: CosTarget;
  let uploadId: string;
  const statuses = new Map<number, number>();

  beforeAll(async () => {
    directory = mkdtempSync(join(tmpdir(), 'coffer-header-fuzz-'));
    const config = loadConfig({
      env: {
        PORT: '0',
        COFFER__SERVER__ADMIN_PORT: '0',
        COFFER_DEMO_SECRET_ID: KEYS.secretId,
        COFFER_DEMO_SECRET_KEY: KEYS.secretKey,
        COFFER__KEYRING__DIRECTORY: join(directory, 'keyring'),
        COFFER__EMBEDDED_UPSTREAM__DIRECTORY: join(directory, 'upstream'),
      },
    });
    gateway = await startGateway(config, { log: createLogger('silent') });
    target = { port: gateway.port, coffer: COFFER, ...KEYS };
    expect((await cos(target, 'PUT', 'fuzz/object.bin', [], OBJECT)).status).toBe(200);
    const initiated = await cos(target, 'POST', 'fuzz/upload.bin', [['uploads', '']]);
    uploadId = /<UploadId>([^<]+)<\/UploadId>/.exec(initiated.text)?.[1] as string;
  });

  afterAll(async () => {
    await gateway?.stop();
    rmSync(directory, { recursive: true, force: true });
  });

  test('random header names, values and duplicates on signed reads and writes: always answered, never 5xx, 200 reads exact', async () => {
    const operations: Operation[] = [
      { method: 'GET', key: 'fuzz/object.bin', params: [], body: Buffer.alloc(0) },
      { method: 'HEAD', key: 'fuzz/object.bin', params: [], body: Buffer.alloc(0) },
      { method: 'GET', key: 'fuzz/upload.bin', params: [['uploadId', uploadId]], body: Buffer.alloc(0) },
      {
        method: 'PUT',
        key: 'fuzz/upload.bin',
        params: [
          ['partNumber', '1'],
          ['uploadId', uploadId],
        ],
        body: randomBytes(300),
      },
      { method: 'PUT', key: 'fuzz/small.bin', params: [], body: randomBytes(100) },
    ];
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...operations), extraHeaders, async (operation, headers) => {
        const hasLength = headers.some(([n]) => n.toLowerCase() === 'content-length');
        const lines: Array<[string, string]> = [...headers, ...(hasLength || operation.body.length === 0 ? [] : [['Content-Length', String(operation.body.length)] as [string, string]])];
        const head = signedRequestHead(target, operation.method, operation.key, operation.params, lines);
        const answer = await exchange(gateway.port, Buffer.concat([Buffer.from(head, 'latin1'), operation.body]), operation.method);
        statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1);
        expect(answer.status).toBeGreaterThanOrEqual(200);
        expect(answer.status).toBeLessThan(500);
        if (operation.method === 'GET' && operation.key === 'fuzz/object.bin') {
          if (answer.status === 200) expect(sha256(answer.body)).toBe(sha256(OBJECT));
          if (answer.status === 206) expect(OBJECT.includes(answer.body)).toBe(true);
        }
      }),
      { numRuns: 300, seed: 20261204 },
    );
    // Every status seen was answered (0 would mean a connection ended without an answer).
    expect(statuses.has(0)).toBe(false);
    expect([...statuses.keys()].every((s) => s < 500)).toBe(true);
    // Still serving, nothing left in flight.
    expect(sha256((await cos(target, 'GET', 'fuzz/object.bin')).body)).toBe(sha256(OBJECT));
    expect((await gateway.metrics.inFlightParts.get()).values[0]?.value ?? 0).toBe(0);
  });

  test('raw garbage header lines (any bytes but CR and LF): answered 400/431 or served, never 5xx, no crash', async () => {
    const garbage = fc.array(
      fc.uint8Array({ minLength: 1, maxLength: 80 }).map((bytes) => Buffer.from(bytes.filter((b) => b !== 0x0d && b !== 0x0a))),
      { minLength: 1, maxLength: 5 },
    );
    await fc.assert(
      fc.asyncProperty(garbage, async (lines) => {
        const head = signedRequestHead(target, 'GET', 'fuzz/object.bin').slice(0, -2); // keep the head open
        const request = Buffer.concat([Buffer.from(head, 'latin1'), ...lines.flatMap((line) => [line, Buffer.from('\r\n')]), Buffer.from('\r\n')]);
        const answer = await exchange(gateway.port, request, 'GET');
        expect(answer.status).toBeGreaterThanOrEqual(200);
        expect(answer.status).toBeLessThan(500);
      }),
      { numRuns: 150, seed: 4122026 },
    );
    expect(sha256((await cos(target, 'GET', 'fuzz/object.bin')).body)).toBe(sha256(OBJECT));
  });

  test('an oversize header block is 431; an oversize request target is 414', async () => {
    const big = signedRequestHead(target, 'GET', 'fuzz/object.bin', [], [['x-cos-meta-big', 'a'.repeat(20_000)]]);
    expect((await exchange(gateway.port, Buffer.from(big), 'GET')).status).toBe(431);
    const long = signedRequestHead(target, 'GET', `fuzz/${'k'.repeat(9_000)}`);
    expect((await exchange(gateway.port, Buffer.from(long), 'GET')).status).toBe(414);
  });
});
