/**
 * "A signature means one request" for SigV4 (docs/ARCHITECTURE.md, "Request identity"), tried as an
 * attacker holding one signed S3 request would: header-signed and presigned requests replayed with a
 * parameter name re-cased, the path shifted by one segment, against another coffer, another key, as
 * another operation, and with expired and future dates. Every replay is refused (400/403) and causes
 * no upstream request (counted at a recording proxy in front of the upstream). Streamed bodies
 * (STREAMING-AWS4-HMAC-SHA256-PAYLOAD) with a tampered or truncated chunk are refused and store
 * nothing: no upstream write completes and the key does not exist afterwards; so are signed trailers
 * (STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER) with a tampered checksum, a tampered trailer signature
 * or no trailer. The unaltered requests succeed, so the signatures are good. Requests are signed with the AWS SDK's signer (@smithy/signature-v4).
 */
import { request } from 'node:http';
import { crc32 } from 'node:zlib';
import { Hash } from '@smithy/hash-node';
import { SignatureV4 } from '@smithy/signature-v4';
import { startRecordedGateway, type RecordedGateway } from '../support/recorded-gateway';
import { encodePath, type WireRequest } from '../auth/sigv4-test-request';
import { sha256 } from '../support/digests';

const ALPHA = 'alpha-1250000000';
const BETA = 'beta-1250000000';
const KEY = { secretId: 'AKIDs3Replay', secretKey: 's3-replay-secret-key-0123456789' };
const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

let recorded: RecordedGateway;
let host: string;

beforeAll(async () => {
  recorded = await startRecordedGateway({
    coffers: [ALPHA, BETA],
    accessKeys: [
      {
        ...KEY,
        grants: [
          { coffer: ALPHA, actions: ['*'] },
          { coffer: BETA, actions: ['*'] },
        ],
      },
    ],
  });
  host = `127.0.0.1:${recorded.port}`;
});

afterAll(async () => {
  await recorded?.stop();
});

const signer = new SignatureV4({ service: 's3', region: 'us-east-1', credentials: { accessKeyId: KEY.secretId, secretAccessKey: KEY.secretKey }, sha256: Hash.bind(null, 'sha256'), uriEscapePath: false });

function encodeQuery(query: Record<string, string>): string {
  return Object.entries(query)
    .map(([name, value]) => `${encodeURIComponent(name)}=${encodeURIComponent(value)}`)
    .join('&');
}

async function signHeader(method: string, path: string, query: Record<string, string>, headers: Record<string, string>, signingDate = new Date()): Promise<WireRequest & { authorization: string }> {
  const signed = await signer.sign({ method, protocol: 'http:', hostname: '127.0.0.1', path: encodePath(path), query, headers: { host, ...headers } }, { signingDate });
  const search = encodeQuery(query);
  const all = signed.headers as Record<string, string>;
  return { method, target: search === '' ? encodePath(path) : `${encodePath(path)}?${search}`, headers: Object.entries(all), authorization: all['authorization'] as string };
}

async function presign(method: string, path: string, query: Record<string, string>, signingDate = new Date(), expiresIn = 300): Promise<WireRequest> {
  // As the S3 presigner does: the payload is UNSIGNED-PAYLOAD, and that header is not sent.
  const signed = await signer.presign(
    { method, protocol: 'http:', hostname: '127.0.0.1', path: encodePath(path), query, headers: { host, 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD' } },
    { signingDate, expiresIn, unsignableHeaders: new Set(['x-amz-content-sha256']), unhoistableHeaders: new Set(['x-amz-content-sha256']) },
  );
  return { method, target: `${encodePath(path)}?${encodeQuery(signed.query as Record<string, string>)}`, headers: [['host', host]] };
}

interface Answer {
  status: number;
  code?: string;
  body: Buffer;
}

function send(wire: WireRequest, body: Buffer = Buffer.alloc(0)): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const headers = wire.headers.filter(([name]) => name.toLowerCase() !== 'content-length');
    if (body.length > 0 || wire.method === 'PUT') headers.push(['content-length', String(body.length)]);
    const req = request({ host: '127.0.0.1', port: recorded.port, method: wire.method, path: wire.target, headers: headers.flat() as unknown as Record<string, string> }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => {
        const text = Buffer.concat(chunks);
        const code = /<Code>([^<]+)<\/Code>/.exec(text.toString('utf8'))?.[1];
        resolve({ status: res.statusCode ?? 0, ...(code === undefined ? {} : { code }), body: text });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function put(key: string, body: Buffer): Promise<void> {
  const wire = await signHeader('PUT', `/${ALPHA}/${key}`, {}, { 'x-amz-content-sha256': sha256(body) });
  const answer = await send(wire, body);
  expect(answer.status).toBe(200);
}

/** Sends `wire` and requires a 400/403 refusal that caused no upstream request at all. */
async function refusedWithoutUpstream(what: string, wire: WireRequest, body?: Buffer): Promise<string[]> {
  const before = recorded.proxy.arrivals.length;
  const answer = await send(wire, body);
  const upstream = recorded.proxy.arrivals.length - before;
  return (answer.status === 400 || answer.status === 403) && upstream === 0 ? [] : [`${what}: ${answer.status} ${answer.code ?? ''}, ${upstream} upstream requests`];
}

describe('SigV4 replays are refused before the upstream', () => {
  beforeAll(async () => {
    await put('dir/k', Buffer.from('alpha object'));
  });

  test('the unaltered requests succeed (header and presigned GetObject)', async () => {
    const header = await send(await signHeader('GET', `/${ALPHA}/dir/k`, { 'response-content-type': 'text/plain' }, { 'x-amz-content-sha256': EMPTY_SHA256 }));
    expect([header.status, header.body.toString()]).toEqual([200, 'alpha object']);
    expect((await send(await presign('GET', `/${ALPHA}/dir/k`, { 'response-content-type': 'text/plain' }))).status).toBe(200);
  });

  test.each(['header', 'presigned'] as const)('%s: re-cased parameter, shifted path, other coffer, other key, other operation', async (form) => {
    const sign = (method: string, path: string, query: Record<string, string>) => (form === 'header' ? signHeader(method, path, query, { 'x-amz-content-sha256': EMPTY_SHA256 }) : presign(method, path, query));
    const original = await sign('GET', `/${ALPHA}/dir/k`, { 'response-content-type': 'text/plain' });
    const failures = [
      ...(await refusedWithoutUpstream('re-cased parameter', { ...original, target: original.target.replace('response-content-type', 'Response-Content-Type') })),
      ...(await refusedWithoutUpstream('shifted path', { ...original, target: original.target.replace(`/${ALPHA}/dir/k`, `/${ALPHA}/dir`) })),
      ...(await refusedWithoutUpstream('shifted path (segment added)', { ...original, target: original.target.replace(`/${ALPHA}/dir/k`, `/${ALPHA}/${ALPHA}/dir/k`) })),
      ...(await refusedWithoutUpstream('other coffer', { ...original, target: original.target.replace(ALPHA, BETA) })),
      ...(await refusedWithoutUpstream('other key', { ...original, target: original.target.replace('dir/k', 'dir/j') })),
      ...(await refusedWithoutUpstream('other operation (DELETE)', { ...original, method: 'DELETE' })),
      ...(await refusedWithoutUpstream('other operation (HEAD)', { ...original, method: 'HEAD' })),
      ...(await refusedWithoutUpstream('other operation (ListParts)', { ...original, target: `${original.target}&uploadId=${'a'.repeat(32)}` })),
      ...(await refusedWithoutUpstream('virtual-hosted with another coffer in the host', {
        ...original,
        headers: original.headers.map(([n, v]) => [n, n.toLowerCase() === 'host' ? `${BETA}.cos.ap-guangzhou.myqcloud.com` : v] as [string, string]),
      })),
    ];
    expect(failures).toEqual([]);
  });

  test('expired and future dates', async () => {
    const hour = 3600_000;
    const failures = [
      ...(await refusedWithoutUpstream('header, signed an hour ago', await signHeader('GET', `/${ALPHA}/dir/k`, {}, { 'x-amz-content-sha256': EMPTY_SHA256 }, new Date(Date.now() - hour)))),
      ...(await refusedWithoutUpstream('header, signed an hour ahead', await signHeader('GET', `/${ALPHA}/dir/k`, {}, { 'x-amz-content-sha256': EMPTY_SHA256 }, new Date(Date.now() + hour)))),
      ...(await refusedWithoutUpstream('presigned, expired', await presign('GET', `/${ALPHA}/dir/k`, {}, new Date(Date.now() - hour), 60))),
      ...(await refusedWithoutUpstream('presigned, dated in the future', await presign('GET', `/${ALPHA}/dir/k`, {}, new Date(Date.now() + hour), 60))),
    ];
    expect(failures).toEqual([]);
  });

  test('a header-signed PutObject replayed to another key or coffer, or with another body, stores nothing', async () => {
    const body = Buffer.from('signed body');
    const original = await signHeader('PUT', `/${ALPHA}/put/original`, {}, { 'x-amz-content-sha256': sha256(body) });
    const failures = [
      ...(await refusedWithoutUpstream('PUT to another key', { ...original, target: original.target.replace('original', 'other') }, body)),
      ...(await refusedWithoutUpstream('PUT to another coffer', { ...original, target: original.target.replace(ALPHA, BETA) }, body)),
      ...(await refusedWithoutUpstream('PUT turned into UploadPart', { ...original, target: `${original.target}?partNumber=1&uploadId=${'a'.repeat(32)}` }, body)),
      ...(await refusedWithoutUpstream('PUT turned into a copy', { ...original, headers: [...original.headers, ['x-amz-copy-source', `/${BETA}/secret`]] }, body)),
    ];
    expect(failures).toEqual([]);
    // Another body under the same signature: refused at the end of the body, the object is not created.
    const other = await send(original, Buffer.from('evil body!!'));
    expect([other.status, other.code]).toEqual([400, 'XAmzContentSHA256Mismatch']);
    expect((await send(await signHeader('HEAD', `/${ALPHA}/put/original`, {}, { 'x-amz-content-sha256': EMPTY_SHA256 }))).status).toBe(404);
  });
});

const CHUNK = 64 * 1024;

/**
 * A signed aws-chunked upload of `object`: the request and its framed body (chunk signatures by the
 * SDK's signer). With `trailer`, STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER: the body ends with the
 * trailer `x-amz-checksum-crc32` (zlib's CRC32 unless given) and its signature (chained on the final chunk's).
 */
async function streamed(key: string, object: Buffer, trailer?: { readonly checksum?: string; readonly alter?: (trailerChunk: string) => string }): Promise<{ wire: WireRequest; body: Buffer; chunkStarts: number[] }> {
  const signingDate = new Date();
  const chunks: Buffer[] = [];
  for (let at = 0; at < object.length; at += CHUNK) chunks.push(object.subarray(at, at + CHUNK));
  chunks.push(Buffer.alloc(0));
  const declared: Record<string, string> =
    trailer === undefined ? { 'x-amz-content-sha256': 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD' } : { 'x-amz-content-sha256': 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER', 'x-amz-trailer': 'x-amz-checksum-crc32' };
  // Content-Length is left unsigned (send() sets it from the body), so a truncated body can be sent as such.
  const wire = await signHeader('PUT', `/${ALPHA}/${key}`, {}, { ...declared, 'content-encoding': 'aws-chunked', 'x-amz-decoded-content-length': String(object.length) }, signingDate);
  let previous = /Signature=([0-9a-f]{64})/.exec(wire.authorization)?.[1] as string;
  const amzDate = wire.headers.find(([n]) => n === 'x-amz-date')?.[1] as string;
  const scope = `${amzDate.slice(0, 8)}/us-east-1/s3/aws4_request`;
  const framed: Buffer[] = [];
  const chunkStarts: number[] = [];
  let offset = 0;
  for (const chunk of chunks) {
    const signature = await signer.sign(`AWS4-HMAC-SHA256-PAYLOAD\n${amzDate}\n${scope}\n${previous}\n${EMPTY_SHA256}\n${sha256(chunk)}`, { signingDate });
    previous = signature;
    const header = Buffer.from(`${chunk.length.toString(16)};chunk-signature=${signature}\r\n`);
    chunkStarts.push(offset);
    // The final chunk of a trailer payload is followed by the trailer, not by an empty line.
    const end = trailer !== undefined && chunk.length === 0 ? '' : '\r\n';
    framed.push(header, chunk, Buffer.from(end));
    offset += header.length + chunk.length + end.length;
  }
  if (trailer !== undefined) {
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(object));
    const line = `x-amz-checksum-crc32:${trailer.checksum ?? crc.toString('base64')}`;
    const signature = await signer.sign(`AWS4-HMAC-SHA256-TRAILER\n${amzDate}\n${scope}\n${previous}\n${sha256(`${line}\n`)}`, { signingDate });
    const trailerChunk = `${line}\r\nx-amz-trailer-signature:${signature}\r\n\r\n`;
    framed.push(Buffer.from(trailer.alter?.(trailerChunk) ?? trailerChunk));
  }
  return { wire, body: Buffer.concat(framed), chunkStarts };
}

/** Completed upstream writes (a destroyed one never completes) and whether the key exists afterwards. */
async function outcome(key: string, wire: WireRequest, body: Buffer): Promise<{ answer: Answer; completedWrites: number; exists: boolean }> {
  const before = recorded.proxy.requests.filter((r) => r.method === 'PUT').length;
  const answer = await send(wire, body);
  const completedWrites = recorded.proxy.requests.filter((r) => r.method === 'PUT').length - before;
  const head = await send(await signHeader('HEAD', `/${ALPHA}/${key}`, {}, { 'x-amz-content-sha256': EMPTY_SHA256 }));
  return { answer, completedWrites, exists: head.status === 200 };
}

describe('streamed bodies (STREAMING-AWS4-HMAC-SHA256-PAYLOAD): tampering and truncation store nothing', () => {
  const object = Buffer.from(Array.from({ length: 3 * CHUNK + 1000 }, (_, i) => (i * 31) % 256));

  test('the unaltered stream is stored and reads back', async () => {
    const { wire, body } = await streamed('stream/ok', object);
    const result = await outcome('stream/ok', wire, body);
    expect(result.answer.status).toBe(200);
    expect(result.exists).toBe(true);
    const got = await send(await signHeader('GET', `/${ALPHA}/stream/ok`, {}, { 'x-amz-content-sha256': EMPTY_SHA256 }));
    expect(got.body.equals(object)).toBe(true);
  });

  test('a changed byte in a chunk → SignatureDoesNotMatch, nothing stored', async () => {
    const { wire, body, chunkStarts } = await streamed('stream/tampered', object);
    const tampered = Buffer.from(body);
    const at = (chunkStarts[1] as number) + 200;
    tampered[at] = (tampered[at] as number) ^ 0xff;
    const result = await outcome('stream/tampered', wire, tampered);
    expect([result.answer.status, result.answer.code]).toEqual([403, 'SignatureDoesNotMatch']);
    expect(result.completedWrites).toBe(0);
    expect(result.exists).toBe(false);
  });

  test('chunks swapped → SignatureDoesNotMatch, nothing stored', async () => {
    const { wire, body, chunkStarts } = await streamed('stream/swapped', object);
    const [, second, third] = chunkStarts as [number, number, number, number];
    const swapped = Buffer.concat([body.subarray(0, second), body.subarray(third, chunkStarts[3] as number), body.subarray(second, third), body.subarray(chunkStarts[3] as number)]);
    const result = await outcome('stream/swapped', wire, swapped);
    expect(result.answer.code).toBe('SignatureDoesNotMatch');
    expect(result.completedWrites).toBe(0);
    expect(result.exists).toBe(false);
  });

  test('truncated after a whole chunk (the final chunks dropped) → IncompleteBody, nothing stored', async () => {
    const { wire, body, chunkStarts } = await streamed('stream/truncated', object);
    const result = await outcome('stream/truncated', wire, body.subarray(0, chunkStarts[2] as number));
    expect([result.answer.status, result.answer.code]).toEqual([400, 'IncompleteBody']);
    expect(result.completedWrites).toBe(0);
    expect(result.exists).toBe(false);
  });
});

describe('signed trailers (STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER): a tampered or missing trailer stores nothing', () => {
  const object = Buffer.from(Array.from({ length: 2 * 64 * 1024 + 777 }, (_, i) => (i * 13) % 256));

  test('the unaltered stream is stored, its CRC32 verified and returned with x-amz-checksum-mode: ENABLED', async () => {
    const { wire, body } = await streamed('trailer/ok', object, {});
    const result = await outcome('trailer/ok', wire, body);
    expect(result.answer.status).toBe(200);
    expect(result.exists).toBe(true);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(object));
    const head = await new Promise<string | undefined>((resolve, reject) => {
      void signHeader('HEAD', `/${ALPHA}/trailer/ok`, {}, { 'x-amz-content-sha256': EMPTY_SHA256, 'x-amz-checksum-mode': 'ENABLED' }).then((signed) => {
        const req = request({ host: '127.0.0.1', port: recorded.port, method: 'HEAD', path: signed.target, headers: signed.headers.flat() as unknown as Record<string, string> }, (res) => {
          res.resume();
          resolve(res.headers['x-amz-checksum-crc32'] as string | undefined);
        });
        req.on('error', reject);
        req.end();
      }, reject);
    });
    expect(head).toBe(crc.toString('base64'));
  });

  test.each([
    // The checksum changed after signing (e.g. to match altered data): the trailer signature no longer covers it.
    ['a tampered trailer value', 403, 'SignatureDoesNotMatch', { alter: (chunk: string) => chunk.replace(/crc32:[^\r]+/, 'crc32:AAAAAA==') }],
    ['a tampered trailer signature', 403, 'SignatureDoesNotMatch', { alter: (chunk: string) => chunk.replace(/signature:(.{63})(.)/, (_m, rest: string, last: string) => `signature:${rest}${last === '0' ? '1' : '0'}`) }],
    // Signed, but not the checksum of the bytes sent.
    ['a signed checksum that does not match the data', 400, 'BadDigest', { checksum: 'AAAAAA==' }],
  ])('%s → %d %s, nothing stored', async (what, status, code, trailer: { checksum?: string; alter?: (chunk: string) => string }) => {
    const key = `trailer/${what.replace(/\W+/g, '-')}`;
    const { wire, body } = await streamed(key, object, trailer);
    const result = await outcome(key, wire, body);
    expect([result.answer.status, result.answer.code]).toEqual([status, code]);
    expect(result.completedWrites).toBe(0);
    expect(result.exists).toBe(false);
  });

  test('no trailer (the body ends after the final chunk) → InvalidChunkedBody, nothing stored', async () => {
    const { wire, body } = await streamed('trailer/missing', object, {});
    const text = body.toString('latin1');
    const result = await outcome('trailer/missing', wire, Buffer.from(`${text.slice(0, text.indexOf('x-amz-checksum-crc32:'))}\r\n`, 'latin1'));
    expect([result.answer.status, result.answer.code]).toEqual([400, 'InvalidChunkedBody']);
    expect(result.completedWrites).toBe(0);
    expect(result.exists).toBe(false);
  });
});
