/**
 * A CompleteMultipartUpload that outlasts server.completeKeepAliveMs is answered 200 at once and kept
 * alive with whitespace; the result — or an <Error> — ends the body, and the official SDK reads both.
 *
 * The upstream's own Complete is held by a gate in a proxy in front of the embedded upstream, and is
 * released only once the client has seen the early 200 and whitespace (or the keep-alive metric moved):
 * the test waits for conditions, never for time.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../src/config';
import { EmbeddedUpstream } from '../../src/embedded-upstream';
import { createLogger } from '../../src/observability/logger';
import { startGateway, type RunningGateway } from '../../src/app/serve';
import { completeBody, cos, initiate, md5Etag, signedRequest, type CosTarget } from '../support/cos-http-client';
import { sha256 } from '../support/digests';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const COS = require('cos-nodejs-sdk-v5');

const MiB = 1024 * 1024;
const COFFER = 'slow-1250000000';
const KEY = { secretId: 'AKIDkeepalive', secretKey: 'keep-alive-secret-key-0123456789' };
const UPSTREAM_KEYS = { accessKeyId: 'AKIDKEEPALIVEUPSTREAM', secretAccessKey: 'keep-alive-upstream-secret-0123456789' };

/**
 * Forwards everything to the embedded upstream, except that an upstream CompleteMultipartUpload
 * (POST …?uploadId=) waits, after `hold()`, for `release()`: forwarded then, or failed with 503 SlowDown.
 */
interface GatedProxy {
  readonly endpoint: string;
  hold(): void;
  /** Resolves when a Complete is being held. */
  held(): Promise<void>;
  release(outcome?: 'forward' | 'slow-down'): void;
  close(): Promise<void>;
}

async function startGatedProxy(target: string): Promise<GatedProxy> {
  const upstream = new URL(target);
  let holding = false;
  let onHeld: (() => void) | undefined;
  let heldPromise = Promise.resolve();
  let gate: ((outcome: 'forward' | 'slow-down') => void) | undefined;
  const send = (req: IncomingMessage, res: ServerResponse, body?: Buffer): void => {
    const out = request({ host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    out.on('error', () => res.destroy());
    if (body === undefined) req.pipe(out);
    else out.end(body);
  };
  const server: Server = createServer((req, res) => {
    const isComplete = req.method === 'POST' && /[?&]uploadId=/.test(req.url ?? '');
    if (!isComplete || !holding) return send(req, res);
    holding = false;
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      gate = (outcome) => {
        if (outcome === 'forward') return send(req, res, Buffer.concat(chunks));
        const xml = '<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>';
        res.writeHead(503, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(xml) }).end(xml);
      };
      onHeld?.();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    hold() {
      holding = true;
      heldPromise = new Promise((resolve) => (onHeld = resolve));
    },
    held: () => heldPromise,
    release(outcome = 'forward') {
      gate?.(outcome);
      gate = undefined;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** Reads an answer as it arrives: status at once, then the body text so far. */
function streamingAnswer(res: IncomingMessage): { text: () => string; ended: Promise<string> } {
  let text = '';
  res.setEncoding('utf8');
  res.on('data', (chunk: string) => (text += chunk));
  return { text: () => text, ended: new Promise((resolve, reject) => (res.on('end', () => resolve(text)), res.on('error', reject))) };
}

async function until(condition: () => boolean | Promise<boolean>): Promise<void> {
  while (!(await condition())) await new Promise((resolve) => setTimeout(resolve, 5));
}

let directory: string;
let embedded: EmbeddedUpstream;
let proxy: GatedProxy;
let gateway: RunningGateway;
let target: CosTarget;

beforeAll(async () => {
  directory = mkdtempSync(join(tmpdir(), 'coffer-keepalive-'));
  embedded = await EmbeddedUpstream.start({ directory: join(directory, 'upstream'), bucket: 'coffer-slow', ...UPSTREAM_KEYS, minPartSize: 5 * MiB });
  proxy = await startGatedProxy(embedded.endpoint);
  const file = join(directory, 'config.json');
  writeFileSync(
    file,
    JSON.stringify({
      server: { port: 0, adminPort: 0, completeKeepAliveMs: 20 },
      demo: { enabled: false },
      keyring: { directory: join(directory, 'keyring') },
      // The official SDK 3.0.0 signs `/<Key>` without the coffer.
      auth: { cos: { acceptKeyOnlyPath: true }, accessKeys: [{ ...KEY, grants: [{ coffer: COFFER, actions: ['*'] }] }] },
      coffers: {
        [COFFER]: {
          // 1 MB parts are staged on this 5 MiB-minimum upstream: Complete copies them (the slow case).
          upstream: { endpoint: proxy.endpoint, bucket: 'coffer-slow', credentials: UPSTREAM_KEYS, minPartSize: 5 * MiB },
          role: { type: 'static' },
          kms: { type: 'local', keyId: 'slow' },
        },
      },
    }),
  );
  gateway = await startGateway(loadConfig({ file, env: {} }), { log: createLogger('silent') });
  // Start-up readiness checks touch the upstream and the key provider; let their first round finish.
  await gateway.dependenciesAttempted;
  target = { port: gateway.port, coffer: COFFER, ...KEY };
});

afterAll(async () => {
  await gateway?.stop();
  await Promise.all([proxy?.close(), embedded?.close()]);
  rmSync(directory, { recursive: true, force: true });
});

const keptAlive = async (): Promise<number> => (await gateway.metrics.completeKeepAlives.get()).values[0]?.value ?? 0;
const completes = async (code: string): Promise<number> => (await gateway.metrics.requests.get()).values.find((v) => v.labels.operation === 'CompleteMultipartUpload' && v.labels.code === code)?.value ?? 0;

async function uploadParts(key: string, parts: Buffer[]): Promise<{ uploadId: string; list: Array<[number, string]> }> {
  const uploadId = await initiate(target, key);
  const list: Array<[number, string]> = [];
  for (const [index, part] of parts.entries()) {
    const answer = await cos(
      target,
      'PUT',
      key,
      [
        ['partNumber', String(index + 1)],
        ['uploadId', uploadId],
      ],
      part,
    );
    expect(answer.status).toBe(200);
    list.push([index + 1, md5Etag(part)]);
  }
  return { uploadId, list };
}

/** Sends Complete with the upstream's Complete held at the gate; resolves once it is held, with the client's answer so far. */
async function heldComplete(key: string, uploadId: string, list: ReadonlyArray<readonly [number, string]>): Promise<{ res: IncomingMessage; answer: ReturnType<typeof streamingAnswer> }> {
  proxy.hold();
  const body = completeBody(list);
  const req = signedRequest(target, 'POST', key, [['uploadId', uploadId]], body.length);
  const response = new Promise<IncomingMessage>((resolve) => req.on('response', resolve));
  req.end(body);
  await proxy.held();
  const res = await response;
  return { res, answer: streamingAnswer(res) };
}

test('a slow Complete: 200 at once, the declaration, whitespace while the upstream works, then the result', async () => {
  const parts = [randomBytes(MiB), randomBytes(MiB), randomBytes(1000)];
  const { uploadId, list } = await uploadParts('slow.bin', parts);
  // The upstream Complete is held: the client already has its status line and keeps receiving spaces.
  const { res, answer } = await heldComplete('slow.bin', uploadId, list);
  expect(res.statusCode).toBe(200);
  expect(res.headers['content-length']).toBeUndefined();
  await until(() => /^<\?xml version="1\.0" encoding="UTF-8"\?>\n {2,}$/.test(answer.text()));
  proxy.release('forward');
  const text = await answer.ended;
  expect(text).toMatch(/^<\?xml version="1\.0" encoding="UTF-8"\?>\n +<CompleteMultipartUploadResult>.*<\/CompleteMultipartUploadResult>$/s);
  expect(text).toContain(`<Key>slow.bin</Key>`);
  expect(await keptAlive()).toBeGreaterThanOrEqual(1);
  const read = await cos(target, 'GET', 'slow.bin');
  expect(sha256(read.body)).toBe(sha256(Buffer.concat(parts)));
});

test('an upstream failure after the early 200 is an <Error> in the body; nothing is lost and a retry completes', async () => {
  const parts = [randomBytes(MiB), randomBytes(2000)];
  const { uploadId, list } = await uploadParts('fails-late.bin', parts);
  const before = await completes('ServiceUnavailable');
  const { res, answer } = await heldComplete('fails-late.bin', uploadId, list);
  expect(res.statusCode).toBe(200);
  await until(() => answer.text().endsWith(' '));
  proxy.release('slow-down');
  const text = await answer.ended;
  expect(text).toMatch(/^<\?xml version="1\.0" encoding="UTF-8"\?>\n +<Error><Code>ServiceUnavailable<\/Code>/);
  expect(text).toContain(`<RequestId>${res.headers['x-cos-request-id'] as string}</RequestId>`);
  expect(await completes('ServiceUnavailable')).toBe(before + 1);
  // The object does not exist yet; the upload is intact and completes on retry.
  expect((await cos(target, 'HEAD', 'fails-late.bin')).status).toBe(404);
  const retry = await cos(target, 'POST', 'fails-late.bin', [['uploadId', uploadId]], completeBody(list));
  expect(retry.status).toBe(200);
  expect(sha256((await cos(target, 'GET', 'fails-late.bin')).body)).toBe(sha256(Buffer.concat(parts)));
});

test('the official SDK reads both: a kept-alive success completes sliceUploadFile, a kept-alive <Error> fails multipartComplete with its code', async () => {
  const client = new COS({ SecretId: KEY.secretId, SecretKey: KEY.secretKey, Protocol: 'http:', Domain: `127.0.0.1:${gateway.port}/{Bucket}` });
  const data = randomBytes(3 * MiB + 12345);
  const file = join(directory, 'sdk.bin');
  writeFileSync(file, data);

  const committed = await keptAlive();
  proxy.hold();
  const uploaded = new Promise((resolve, reject) => client.sliceUploadFile({ Bucket: COFFER, Region: 'ap-guangzhou', Key: 'sdk.bin', FilePath: file, ChunkSize: MiB }, (err: unknown, out: unknown) => (err ? reject(err) : resolve(out))));
  await proxy.held();
  await until(async () => (await keptAlive()) > committed);
  proxy.release('forward');
  expect(await uploaded).toMatchObject({ statusCode: 200 });
  const got = await new Promise<Buffer>((resolve, reject) => client.getObject({ Bucket: COFFER, Region: 'ap-guangzhou', Key: 'sdk.bin' }, (err: unknown, out: { Body: Buffer }) => (err ? reject(err) : resolve(out.Body))));
  expect(sha256(got)).toBe(sha256(data));

  const { uploadId, list } = await uploadParts('sdk-fails.bin', [randomBytes(MiB), randomBytes(10)]);
  const failedBefore = await keptAlive();
  proxy.hold();
  const completed = new Promise<{ code?: string; statusCode?: number }>((resolve) =>
    client.multipartComplete({ Bucket: COFFER, Region: 'ap-guangzhou', Key: 'sdk-fails.bin', UploadId: uploadId, Parts: list.map(([PartNumber, ETag]) => ({ PartNumber, ETag })) }, (err: { code?: string; statusCode?: number } | null) =>
      resolve(err ?? {}),
    ),
  );
  await proxy.held();
  await until(async () => (await keptAlive()) > failedBefore);
  proxy.release('slow-down');
  const err = await completed;
  expect(err.code).toBe('ServiceUnavailable');
  expect(err.statusCode).toBe(200); // the status line said 200; the SDK found the <Error> in the body
});

test('validation still answers with its real status, however short the keep-alive interval', async () => {
  const { uploadId, list } = await uploadParts('invalid.bin', [randomBytes(MiB), randomBytes(10)]);
  const wrongEtag = completeBody([
    [1, list[0]?.[1] as string],
    [2, '"00000000000000000000000000000000"'],
  ]);
  const invalid = await cos(target, 'POST', 'invalid.bin', [['uploadId', uploadId]], wrongEtag);
  expect([invalid.status, /<Code>([^<]+)/.exec(invalid.text)?.[1]]).toEqual([400, 'InvalidPart']);
  const unordered = await cos(target, 'POST', 'invalid.bin', [['uploadId', uploadId]], completeBody([...list].reverse()));
  expect([unordered.status, /<Code>([^<]+)/.exec(unordered.text)?.[1]]).toEqual([400, 'InvalidPartOrder']);
});
