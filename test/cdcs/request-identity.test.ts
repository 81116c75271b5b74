/**
 * "A signature means one request" (docs/ARCHITECTURE.md, "Request identity"), tried as an attacker
 * holding one signed request would: every signed request shape — Authorization header and presigned
 * URL; full path, key-only path-style, virtual-hosted; origin-form and through the gateway as proxy —
 * replayed with each parameter name re-cased,
 * with the path shifted by one segment, against another coffer, against another key and as another
 * operation. Every replay is refused (400 or 403) and causes no upstream request at all (counted at a
 * recording proxy in front of the upstream); the unaltered request succeeds, so the signatures are good.
 *
 * A real gateway with two coffers on one embedded upstream, and two access keys: MULTI may use both
 * coffers, SINGLE only alpha (so its key-only signatures are bound to alpha by the key itself).
 */
import { send, signed, type CosCredentials, type SendableRequest, type SentAnswer } from '../support/cos-signed-request';
import { startRecordedGateway, type RecordedGateway } from '../support/recorded-gateway';
import type { S3TestProxy } from '../support/s3-test-proxy';

const ALPHA = 'alpha-1250000000';
const BETA = 'beta-1250000000';
const REGION = 'ap-guangzhou';
const MULTI: CosCredentials = { secretId: 'AKIDidentityMulti', secretKey: 'identity-multi-secret-key-0123456789' };
const SINGLE: CosCredentials = { secretId: 'AKIDidentitySingle', secretKey: 'identity-single-secret-key-0123456789' };
const virtualHost = (coffer: string): string => `${coffer}.cos.${REGION}.myqcloud.com`;

let recorded: RecordedGateway;
let proxy: S3TestProxy;
let gateway: { port: number };
let gatewayHost: string;

beforeAll(async () => {
  recorded = await startRecordedGateway({
    coffers: [ALPHA, BETA],
    acceptKeyOnlyPath: true,
    accessKeys: [
      {
        ...MULTI,
        grants: [
          { coffer: ALPHA, actions: ['*'] },
          { coffer: BETA, actions: ['*'] },
        ],
      },
      { ...SINGLE, grants: [{ coffer: ALPHA, actions: ['*'] }] },
    ],
  });
  proxy = recorded.proxy;
  gateway = { port: recorded.port };
  gatewayHost = `127.0.0.1:${recorded.port}`;
});

afterAll(async () => {
  await recorded?.stop();
});

/** A signed request shape: how the coffer and key are addressed and what the signature covers. */
interface Shape {
  readonly name: string;
  readonly mode: 'header' | 'presigned';
  readonly credentials: CosCredentials;
  readonly addressing: 'full' | 'key-only' | 'virtual-hosted';
  /** Sent as an absolute-form target (the gateway as the client's HTTP proxy). */
  readonly proxy?: boolean;
}

const SHAPES: Shape[] = (['header', 'presigned'] as const).flatMap((mode) => [
  { name: `${mode}, full path, key of two coffers`, mode, credentials: MULTI, addressing: 'full' as const },
  { name: `${mode}, full path, key of one coffer`, mode, credentials: SINGLE, addressing: 'full' as const },
  { name: `${mode}, key-only path-style, key of one coffer`, mode, credentials: SINGLE, addressing: 'key-only' as const },
  { name: `${mode}, virtual-hosted, key of two coffers`, mode, credentials: MULTI, addressing: 'virtual-hosted' as const },
  { name: `${mode}, virtual-hosted through the gateway as proxy, key of two coffers`, mode, credentials: MULTI, addressing: 'virtual-hosted' as const, proxy: true },
  { name: `${mode}, full path through the gateway as proxy, key of one coffer`, mode, credentials: SINGLE, addressing: 'full' as const, proxy: true },
]);

/** Where a request for (coffer, key) goes and what its signature covers, for a shape. */
function address(shape: Shape, coffer: string, key: string | undefined): { host: string; path: string; signedPath: string } {
  const keyPath = key === undefined ? '/' : `/${key}`;
  switch (shape.addressing) {
    case 'full':
      return { host: gatewayHost, path: key === undefined ? `/${coffer}/` : `/${coffer}${keyPath}`, signedPath: key === undefined ? `/${coffer}/` : `/${coffer}${keyPath}` };
    case 'key-only':
      return { host: gatewayHost, path: key === undefined ? `/${coffer}/` : `/${coffer}${keyPath}`, signedPath: keyPath };
    case 'virtual-hosted':
      return { host: virtualHost(coffer), path: keyPath, signedPath: keyPath };
  }
}

function request(shape: Shape, method: string, key: string | undefined, params: Array<[string, string]>): SendableRequest {
  return signed({ method, params, mode: shape.mode, credentials: shape.credentials, ...address(shape, ALPHA, key) });
}

/** The same signature sent for another (coffer, key). */
function readdressed(shape: Shape, original: SendableRequest, coffer: string, key: string | undefined): SendableRequest {
  const { host, path } = address(shape, coffer, key);
  return { ...original, host, path };
}

const recase = (name: string): string[] => [...new Set([name.toUpperCase(), name[0]?.toUpperCase() + name.slice(1), name.toLowerCase()])].filter((n) => n !== name);

interface Operation {
  readonly name: string;
  readonly method: string;
  readonly key: string | undefined;
  readonly params: Array<[string, string]>;
  readonly body?: Buffer;
  readonly okStatus: number;
}

let openUploadId = '';
const EXISTING = 'docs/secret.txt';

beforeAll(async () => {
  // An object to read and an open upload, written through the gateway with a plain full-path signature.
  const put = signed({ method: 'PUT', params: [], mode: 'header', credentials: MULTI, host: `127.0.0.1:${gateway.port}`, path: `/${ALPHA}/${EXISTING}`, signedPath: `/${ALPHA}/${EXISTING}` });
  expect((await send(gateway.port, put, Buffer.from('top secret'))).status).toBe(200);
  const init = signed({ method: 'POST', params: [['uploads', '']], mode: 'header', credentials: MULTI, host: `127.0.0.1:${gateway.port}`, path: `/${ALPHA}/open/upload.bin`, signedPath: `/${ALPHA}/open/upload.bin` });
  const answer = await send(gateway.port, init);
  openUploadId = /<UploadId>([^<]+)<\/UploadId>/.exec(answer.text)?.[1] ?? '';
  expect(openUploadId).toMatch(/^[0-9a-f]{32}$/);
});

function operations(shape: Shape, index: number): Operation[] {
  return [
    { name: 'GetObject', method: 'GET', key: EXISTING, params: [], okStatus: 200 },
    { name: 'ListParts', method: 'GET', key: 'open/upload.bin', params: [['uploadId', openUploadId]], okStatus: 200 },
    {
      name: 'UploadPart',
      method: 'PUT',
      key: 'open/upload.bin',
      params: [
        ['partNumber', String(index + 1)],
        ['uploadId', openUploadId],
      ],
      body: Buffer.from('part'),
      okStatus: 200,
    },
    { name: 'GetCoffer limited to a prefix', method: 'GET', key: undefined, params: [['prefix', 'public/']], okStatus: 200 },
    { name: 'PutObject', method: 'PUT', key: `new/${shape.addressing}-${shape.mode}-${index}.txt`, params: [], body: Buffer.from('new'), okStatus: 200 },
  ];
}

/** Every replay of one signed request. */
function replays(shape: Shape, operation: Operation, original: SendableRequest): Array<[string, SendableRequest]> {
  const out: Array<[string, SendableRequest]> = [];
  for (const [index, [name, value]] of operation.params.entries()) {
    for (const variant of recase(name)) {
      const params = operation.params.map((pair, i) => (i === index ? ([variant, value] as [string, string]) : pair));
      out.push([`parameter ${name} sent as ${variant}`, { ...original, params }]);
    }
  }
  if (operation.params.length > 1) out.push(['every parameter upper-cased', { ...original, params: operation.params.map(([n, v]) => [n.toUpperCase(), v] as [string, string]) }]);
  const key = operation.key;
  out.push(['path shifted by one segment (the coffer repeated)', readdressed(shape, original, ALPHA, key === undefined ? ALPHA : `${ALPHA}/${key}`)]);
  if (shape.addressing !== 'virtual-hosted') out.push(['path shifted by one segment into another coffer', readdressed(shape, original, BETA, key === undefined ? ALPHA : `${ALPHA}/${key}`)]);
  if (key !== undefined) out.push(['path shifted by one segment (first key segment dropped)', readdressed(shape, original, ALPHA, key.split('/').slice(1).join('/') || 'x')]);
  out.push(['against another coffer', readdressed(shape, original, BETA, key)]);
  out.push(['against another key', readdressed(shape, original, ALPHA, key === undefined ? 'public/x' : `${key}.other`)]);
  if (operation.params.length > 0) out.push(['as another operation (parameters dropped)', { ...original, params: [] }]);
  if (!operation.params.some(([n]) => n === 'uploadId')) out.push(['as another operation (an unsigned uploadId added)', { ...original, params: [...original.params, ['uploadId', openUploadId]] }]);
  out.push(['as another operation (another method)', { ...original, method: operation.method === 'GET' ? 'HEAD' : 'POST' }]);
  return out;
}

/** Refused before anything is read: 400 (malformed), 403 (not what was signed), 405 (no such operation). */
const refused = (answer: SentAnswer): boolean => answer.status === 400 || answer.status === 403 || answer.status === 405;

describe.each(SHAPES)('$name', (shape) => {
  test('each operation: every replay is refused with nothing upstream, the original succeeds', async () => {
    const failures: string[] = [];
    for (const operation of operations(shape, SHAPES.indexOf(shape))) {
      const original = request(shape, operation.method, operation.key, operation.params);
      for (const [what, replay] of replays(shape, operation, original)) {
        const before = proxy.requests.length;
        const answer = await send(gateway.port, replay, operation.body, shape.proxy === true);
        const upstream = proxy.requests.length - before;
        if (!refused(answer) || upstream !== 0) failures.push(`${operation.name}, ${what}: ${answer.status} ${answer.code ?? ''}, ${upstream} upstream requests`);
      }
      const answer = await send(gateway.port, original, operation.body, shape.proxy === true);
      if (answer.status !== operation.okStatus) failures.push(`${operation.name}, the original: ${answer.status} ${answer.code ?? ''}`);
    }
    expect(failures).toEqual([]);
  });
});

describe('a GetService signature never lists a coffer', () => {
  test.each(['header', 'presigned'] as const)('%s: GET / replayed as GET /<coffer>/ and GET /<coffer> is refused, nothing upstream', async (mode) => {
    for (const credentials of [SINGLE, MULTI]) {
      const service = signed({ method: 'GET', params: [], mode, credentials, host: gatewayHost, path: '/', signedPath: '/' });
      expect((await send(gateway.port, service)).status).toBe(200);
      for (const path of [`/${ALPHA}/`, `/${ALPHA}`]) {
        const before = proxy.requests.length;
        const answer = await send(gateway.port, { ...service, path });
        expect([path, answer.status]).toEqual([path, 403]);
        expect(proxy.requests.length).toBe(before);
      }
    }
  });
});
