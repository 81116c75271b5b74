/**
 * The embedded upstream's S3 semantics, strictly: Complete rules, atomic writes under aborted
 * connections, SigV4 checks, ranges, persistence, listing encodings — over raw HTTP, the store and the
 * AWS SDK.
 */
import { createHash } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { request, type IncomingHttpHeaders } from 'node:http';
import { connect } from 'node:net';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { Hash } from '@smithy/hash-node';
import { SignatureV4 } from '@smithy/signature-v4';
import { EmbeddedUpstream } from '../../src/embedded-upstream';
import { S3UpstreamStore } from '../../src/upstream/s3-upstream-store';
import { ACCESS_KEY, BUCKET, bodyOf, MiB, pattern, readAll, SECRET_KEY, startFixture, type Fixture } from '../upstream/embedded-fixture';

let fx: Fixture;
beforeAll(async () => {
  fx = await startFixture({ minPartSize: 1 * MiB });
});
afterAll(async () => fx.close());

const signer = new SignatureV4({ service: 's3', region: 'us-east-1', credentials: { accessKeyId: ACCESS_KEY, secretAccessKey: SECRET_KEY }, sha256: Hash.bind(null, 'sha256'), uriEscapePath: false });

interface RawResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/** A signed raw request; `tamper` changes the signed request before it is sent. */
async function raw(method: string, path: string, options: { query?: Record<string, string>; headers?: Record<string, string>; body?: Buffer; tamper?: (headers: Record<string, string>) => void } = {}): Promise<RawResponse> {
  const url = new URL(fx.upstream.endpoint);
  const body = options.body ?? Buffer.alloc(0);
  const headers: Record<string, string> = { host: url.host, 'x-amz-content-sha256': createHash('sha256').update(body).digest('hex'), ...(options.headers ?? {}) };
  if (method === 'PUT' || method === 'POST') headers['content-length'] ??= String(body.length);
  const signed = await signer.sign({ method, protocol: 'http:', hostname: url.hostname, port: Number(url.port), path, query: options.query ?? {}, headers });
  const sent = { ...(signed.headers as Record<string, string>) };
  options.tamper?.(sent);
  const search = Object.entries(options.query ?? {})
    .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`)
    .join('&');
  return new Promise((resolve, reject) => {
    const req = request({ hostname: url.hostname, port: url.port, method, path: search === '' ? path : `${path}?${search}`, headers: sent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

const code = (response: RawResponse): string | undefined => /<Code>([^<]+)<\/Code>/.exec(response.body)?.[1];

describe('CompleteMultipartUpload rules', () => {
  test('EntityTooSmall for a non-last part below the minimum; the last part may be small', async () => {
    const key = 'c1/small';
    const { uploadId } = await fx.store.createMultipartUpload(key);
    const a = await fx.store.uploadPart(key, uploadId, 1, bodyOf(pattern(MiB - 1, 1)));
    const b = await fx.store.uploadPart(key, uploadId, 2, bodyOf(pattern(10, 2)));
    await expect(
      fx.store.completeMultipartUpload(key, uploadId, [
        { partNumber: 1, etag: a.etag },
        { partNumber: 2, etag: b.etag },
      ]),
    ).rejects.toMatchObject({ code: 'BadGateway', reason: 'upstream-EntityTooSmall' });
    // The upload survives a failed Complete; a fixed part 1 completes, with a small last part.
    const a2 = await fx.store.uploadPart(key, uploadId, 1, bodyOf(pattern(MiB, 3)));
    await fx.store.completeMultipartUpload(key, uploadId, [
      { partNumber: 1, etag: a2.etag },
      { partNumber: 2, etag: b.etag },
    ]);
    expect((await fx.store.headObject(key))?.size).toBe(MiB + 10);
  });

  test('InvalidPart for an unknown part or a stale ETag; InvalidPartOrder; NoSuchUpload', async () => {
    const key = 'c2/rules';
    const { uploadId } = await fx.store.createMultipartUpload(key);
    const first = await fx.store.uploadPart(key, uploadId, 1, bodyOf(pattern(MiB, 4)));
    await fx.store.uploadPart(key, uploadId, 1, bodyOf(pattern(MiB, 5))); // replaces: first.etag is stale now
    const two = await fx.store.uploadPart(key, uploadId, 2, bodyOf(pattern(MiB, 6)));
    await expect(fx.store.completeMultipartUpload(key, uploadId, [{ partNumber: 1, etag: first.etag }])).rejects.toMatchObject({ reason: 'upstream-InvalidPart' });
    await expect(fx.store.completeMultipartUpload(key, uploadId, [{ partNumber: 3, etag: two.etag }])).rejects.toMatchObject({ reason: 'upstream-InvalidPart' });
    await expect(
      fx.store.completeMultipartUpload(key, uploadId, [
        { partNumber: 2, etag: two.etag },
        { partNumber: 1, etag: first.etag },
      ]),
    ).rejects.toMatchObject({ reason: 'upstream-InvalidPartOrder' });
    await expect(fx.store.completeMultipartUpload(key, 'f'.repeat(32), [{ partNumber: 2, etag: two.etag }])).rejects.toMatchObject({ kind: 'NoSuchUpload' });
    // An upload id is bound to its key.
    await expect(fx.store.uploadPart('c2/other-key', uploadId, 1, bodyOf(Buffer.from('x')))).rejects.toMatchObject({ kind: 'NoSuchUpload' });
    await expect(fx.store.listParts(key, '../../etc')).rejects.toMatchObject({ kind: 'NoSuchUpload' });
    // ETags match with or without quotes.
    await fx.store.completeMultipartUpload(key, uploadId, [{ partNumber: 2, etag: two.etag.replace(/"/g, '') }]);
    expect((await fx.store.headObject(key))?.etag).toMatch(/^"[0-9a-f]{32}-1"$/);
  });

  test('UploadPart to an unknown upload is NoSuchUpload before the body is read; bad part numbers are InvalidArgument', async () => {
    const unknown = await raw('PUT', `/${BUCKET}/c3/k`, { query: { partNumber: '1', uploadId: 'a'.repeat(32) }, body: Buffer.from('abc') });
    expect([unknown.status, code(unknown)]).toEqual([404, 'NoSuchUpload']);
    const { uploadId } = await fx.store.createMultipartUpload('c3/k');
    const zero = await raw('PUT', `/${BUCKET}/c3/k`, { query: { partNumber: '0', uploadId }, body: Buffer.from('abc') });
    expect([zero.status, code(zero)]).toEqual([400, 'InvalidArgument']);
    const big = await raw('PUT', `/${BUCKET}/c3/k`, { query: { partNumber: '10001', uploadId }, body: Buffer.from('abc') });
    expect(code(big)).toBe('InvalidArgument');
  });
});

describe('atomicity', () => {
  test('a connection that dies mid-body leaves the previous object and no temp file', async () => {
    const key = 'a1/object';
    const first = pattern(100_000, 7);
    await fx.store.putObject(key, { body: first });
    const url = new URL(fx.upstream.endpoint);
    const path = `/${BUCKET}/${key}`;
    const headers = { host: url.host, 'content-length': String(1_000_000), 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD' };
    const signed = await signer.sign({ method: 'PUT', protocol: 'http:', hostname: url.hostname, port: Number(url.port), path, query: {}, headers });
    const failed = new Promise<{ key: string; code: string }>((resolve) => fx.upstream.once('body-failed', resolve));
    const socket = connect(Number(url.port), url.hostname);
    await new Promise<void>((resolve) => socket.on('connect', resolve));
    const head = Object.entries(signed.headers)
      .map(([k, v]) => `${k}: ${v}`)
      .join('\r\n');
    socket.write(`PUT ${path} HTTP/1.1\r\n${head}\r\n\r\n`);
    socket.write(pattern(500_000, 8));
    await new Promise((resolve) => setTimeout(resolve, 100));
    socket.destroy();
    expect(await failed).toEqual({ key, code: 'ConnectionAborted' });
    expect((await readAll((await fx.store.getObject(key)).body)).equals(first)).toBe(true);
    expect(readdirSync(join(fx.directory, BUCKET, 'tmp'))).toEqual([]);
  });

  test('a wrong Content-MD5 or x-amz-content-sha256 stores nothing', async () => {
    const key = 'a2/digest';
    const md5 = await raw('PUT', `/${BUCKET}/${key}`, { body: Buffer.from('abc'), headers: { 'content-md5': createHash('md5').update('abd').digest('base64') } });
    expect([md5.status, code(md5)]).toEqual([400, 'BadDigest']);
    const badMd5 = await raw('PUT', `/${BUCKET}/${key}`, { body: Buffer.from('abc'), headers: { 'content-md5': 'not-base64' } });
    expect(code(badMd5)).toBe('InvalidDigest');
    const sha = await raw('PUT', `/${BUCKET}/${key}`, { body: Buffer.from('abc'), headers: { 'x-amz-content-sha256': createHash('sha256').update('abd').digest('hex') } });
    expect([sha.status, code(sha)]).toEqual([400, 'XAmzContentSHA256Mismatch']);
    expect(await fx.store.headObject(key)).toBeUndefined();
  });

  test('concurrent uploads of the same part: the later-finishing one wins, completely', async () => {
    const key = 'a3/concurrent';
    const { uploadId } = await fx.store.createMultipartUpload(key);
    const slow = pattern(2 * MiB, 9);
    const fast = pattern(2 * MiB, 10);
    const slowBody = new Readable({ read() {} });
    const slowDone = fx.store.uploadPart(key, uploadId, 1, { body: slowBody, contentLength: slow.length });
    slowBody.push(slow.subarray(0, MiB));
    const fastResult = await fx.store.uploadPart(key, uploadId, 1, bodyOf(fast));
    slowBody.push(slow.subarray(MiB));
    slowBody.push(null);
    const slowResult = await slowDone;
    expect((await fx.store.listParts(key, uploadId))[0]?.etag).toBe(slowResult.etag);
    expect(fastResult.etag).not.toBe(slowResult.etag);
    await fx.store.completeMultipartUpload(key, uploadId, [{ partNumber: 1, etag: slowResult.etag }]);
    expect((await readAll((await fx.store.getObject(key)).body)).equals(slow)).toBe(true);
  });
});

describe('SigV4', () => {
  test('a header changed after signing → 403 SignatureDoesNotMatch; unsigned x-amz-* → AccessDenied; anonymous → AccessDenied', async () => {
    const tampered = await raw('GET', `/${BUCKET}/`, { query: { 'list-type': '2' }, tamper: (h) => (h['x-amz-content-sha256'] = createHash('sha256').update('x').digest('hex')) });
    expect([tampered.status, code(tampered)]).toEqual([403, 'SignatureDoesNotMatch']);
    const pathChanged = await raw('GET', `/${BUCKET}/a`, { tamper: () => undefined, query: {} });
    expect(pathChanged.status).toBe(404); // correctly signed: NoSuchKey
    const unsigned = await raw('GET', `/${BUCKET}/`, { query: { 'list-type': '2' }, tamper: (h) => (h['x-amz-meta-extra'] = '1') });
    expect([unsigned.status, code(unsigned)]).toEqual([403, 'AccessDenied']);
    const anonymous = await raw('GET', `/${BUCKET}/`, { query: { 'list-type': '2' }, tamper: (h) => delete h['authorization'] });
    expect([anonymous.status, code(anonymous)]).toEqual([403, 'AccessDenied']);
    const skewed = new SignatureV4({ service: 's3', region: 'us-east-1', credentials: { accessKeyId: ACCESS_KEY, secretAccessKey: SECRET_KEY }, sha256: Hash.bind(null, 'sha256'), uriEscapePath: false });
    const url = new URL(fx.upstream.endpoint);
    const old = await skewed.sign(
      { method: 'GET', protocol: 'http:', hostname: url.hostname, path: `/${BUCKET}/k`, query: {}, headers: { host: url.host, 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD' } },
      { signingDate: new Date(Date.now() - 3_600_000) },
    );
    const tooOld = await raw('GET', `/${BUCKET}/k`, { tamper: (h) => Object.assign(h, old.headers) });
    expect(code(tooOld)).toBe('RequestTimeTooSkewed');
  });

  test('chunked and aws-chunked uploads are refused like Ceph RGW (411), streaming signatures not implemented', async () => {
    const chunked = await new Promise<number>((resolve, reject) => {
      const url = new URL(fx.upstream.endpoint);
      void signer
        .sign({ method: 'PUT', protocol: 'http:', hostname: url.hostname, port: Number(url.port), path: `/${BUCKET}/ch`, query: {}, headers: { host: url.host, 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD', 'transfer-encoding': 'chunked' } })
        .then((signed) => {
          const req = request({ hostname: url.hostname, port: url.port, method: 'PUT', path: `/${BUCKET}/ch`, headers: signed.headers }, (res) => {
            res.resume();
            resolve(res.statusCode ?? 0);
          });
          req.on('error', reject);
          req.end('abc');
        });
    });
    expect(chunked).toBe(411);
    const streaming = await raw('PUT', `/${BUCKET}/ch`, { body: Buffer.from('abc'), headers: { 'x-amz-content-sha256': 'STREAMING-UNSIGNED-PAYLOAD-TRAILER' } });
    expect(streaming.status).toBe(501);
  });
});

describe('reads and listings over raw HTTP', () => {
  test('GET Range → 206 with Content-Range; unsatisfiable → 416 with bytes */size; HEAD has no body', async () => {
    await fx.store.putObject('r1/data', { body: Buffer.from('0123456789') }, { metadata: { m: 'v' } });
    const part = await raw('GET', `/${BUCKET}/r1/data`, { headers: { range: 'bytes=2-4' } });
    expect([part.status, part.body, part.headers['content-range'], part.headers['content-length']]).toEqual([206, '234', 'bytes 2-4/10', '3']);
    const suffix = await raw('GET', `/${BUCKET}/r1/data`, { headers: { range: 'bytes=-3' } });
    expect([suffix.status, suffix.body]).toEqual([206, '789']);
    const open = await raw('GET', `/${BUCKET}/r1/data`, { headers: { range: 'bytes=8-' } });
    expect([open.status, open.body]).toEqual([206, '89']);
    const outside = await raw('GET', `/${BUCKET}/r1/data`, { headers: { range: 'bytes=10-20' } });
    expect([outside.status, code(outside), outside.headers['content-range']]).toEqual([416, 'InvalidRange', 'bytes */10']);
    const whole = await raw('GET', `/${BUCKET}/r1/data`, { headers: { range: 'bytes=5-2' } });
    expect([whole.status, whole.body]).toEqual([200, '0123456789']);
    const head = await raw('HEAD', `/${BUCKET}/r1/data`);
    expect([head.status, head.body, head.headers['content-length'], head.headers['x-amz-meta-m'], head.headers.etag]).toEqual([200, '', '10', 'v', `"${createHash('md5').update('0123456789').digest('hex')}"`]);
  });

  test('ListObjectsV2 with encoding-type=url percent-encodes keys, prefixes and delimiter', async () => {
    await fx.store.putObject('l1/a b+c/ü', { body: Buffer.from('x') });
    await fx.store.putObject('l1/x&<y>', { body: Buffer.from('x') });
    const listed = await raw('GET', `/${BUCKET}`, { query: { 'list-type': '2', prefix: 'l1/', delimiter: '/', 'encoding-type': 'url' } });
    expect(listed.status).toBe(200);
    expect(listed.body).toContain('<Prefix>l1/a%20b%2Bc/</Prefix>');
    expect(listed.body).toContain('<Key>l1/x%26%3Cy%3E</Key>');
    expect(listed.body).toContain('<EncodingType>url</EncodingType>');
    const plain = await raw('GET', `/${BUCKET}`, { query: { 'list-type': '2', prefix: 'l1/x' } });
    expect(plain.body).toContain('<Key>l1/x&amp;&lt;y&gt;</Key>');
    const badToken = await raw('GET', `/${BUCKET}`, { query: { 'list-type': '2', 'continuation-token': 'garbage' } });
    expect(code(badToken)).toBe('InvalidArgument');
    const otherBucket = await raw('GET', '/another-bucket', { query: { 'list-type': '2' } });
    expect(code(otherBucket)).toBe('NoSuchBucket');
  });

  test('ListParts pages with max-parts and part-number-marker', async () => {
    const { uploadId } = await fx.store.createMultipartUpload('l2/k');
    for (const n of [1, 2, 5, 9]) await fx.store.uploadPart('l2/k', uploadId, n, bodyOf(Buffer.from(String(n))));
    const first = await raw('GET', `/${BUCKET}/l2/k`, { query: { uploadId, 'max-parts': '2' } });
    expect(first.body).toContain('<IsTruncated>true</IsTruncated>');
    expect(first.body).toContain('<NextPartNumberMarker>2</NextPartNumberMarker>');
    const second = await raw('GET', `/${BUCKET}/l2/k`, { query: { uploadId, 'max-parts': '2', 'part-number-marker': '2' } });
    expect([...second.body.matchAll(/<PartNumber>(\d+)<\/PartNumber>/g)].map((m) => m[1])).toEqual(['5', '9']);
    expect(second.body).toContain('<IsTruncated>false</IsTruncated>');
  });

  test('DeleteObjects needs Content-MD5 (the store adds it); more than 1000 keys is MalformedXML', async () => {
    const xml = Buffer.from('<Delete><Object><Key>d1/a</Key></Object></Delete>');
    const missing = await raw('POST', `/${BUCKET}`, { query: { delete: '' }, body: xml });
    expect([missing.status, code(missing)]).toEqual([400, 'InvalidRequest']);
    const ok = await raw('POST', `/${BUCKET}`, { query: { delete: '' }, body: xml, headers: { 'content-md5': createHash('md5').update(xml).digest('base64') } });
    expect([ok.status, ok.body]).toEqual([200, expect.stringContaining('<Deleted><Key>d1/a</Key></Deleted>')]);
    const many = Buffer.from(`<Delete>${'<Object><Key>k</Key></Object>'.repeat(1001)}</Delete>`);
    const tooMany = await raw('POST', `/${BUCKET}`, { query: { delete: '' }, body: many, headers: { 'content-md5': createHash('md5').update(many).digest('base64') } });
    expect(code(tooMany)).toBe('MalformedXML');
  });
});

test('the AWS SDK itself (WHEN_REQUIRED checksums) works against the embedded upstream', async () => {
  const client = new S3Client({
    endpoint: fx.upstream.endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: ACCESS_KEY, secretAccessKey: SECRET_KEY },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  try {
    await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'sdk/ü b', Body: 'from the sdk' }));
    const got = await client.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'sdk/ü b' }));
    expect(await got.Body?.transformToString()).toBe('from the sdk');
  } finally {
    client.destroy();
  }
});

test('state survives a restart: objects, metadata, open uploads and their parts; key names never touch the file system', async () => {
  const directory = fx.directory;
  const first = await EmbeddedUpstream.start({ directory, bucket: 'restart-bucket', accessKeyId: ACCESS_KEY, secretAccessKey: SECRET_KEY, minPartSize: 1 });
  const storeFor = (upstream: EmbeddedUpstream): S3UpstreamStore =>
    new S3UpstreamStore({ endpoint: upstream.endpoint, region: 'us-east-1', bucket: 'restart-bucket', forcePathStyle: true, credentials: async () => ({ accessKeyId: ACCESS_KEY, secretAccessKey: SECRET_KEY }) });
  const key = `p/${'ü'.repeat(400)}/../%2F + 🙂`; // 800+ UTF-8 bytes: no file system takes that as a name
  let store = storeFor(first);
  await store.putObject(key, { body: Buffer.from('persisted') }, { metadata: { a: '1' } });
  const { uploadId } = await store.createMultipartUpload('p/mp', { metadata: { b: '2' } });
  const part = await store.uploadPart('p/mp', uploadId, 3, bodyOf(Buffer.from('part three')));
  store.destroy();
  await first.close();

  const second = await EmbeddedUpstream.start({ directory, bucket: 'restart-bucket', accessKeyId: ACCESS_KEY, secretAccessKey: SECRET_KEY, minPartSize: 1 });
  store = storeFor(second);
  try {
    const got = await store.getObject(key);
    expect([(await readAll(got.body)).toString(), got.metadata]).toEqual(['persisted', { a: '1' }]);
    expect((await store.listObjects('p/')).objects.map((o) => o.key)).toEqual([key]);
    expect(await store.listParts('p/mp', uploadId)).toEqual([expect.objectContaining({ partNumber: 3, etag: part.etag, size: 10 })]);
    await store.completeMultipartUpload('p/mp', uploadId, [{ partNumber: 3, etag: part.etag }]);
    expect((await store.getObject('p/mp')).metadata).toEqual({ b: '2' });
    const names = readdirSync(join(directory, 'restart-bucket'), { recursive: true }).map(String);
    expect(names.some((n) => n.includes('ü') || n.includes('🙂') || n.includes('%2F') || n.includes(' '))).toBe(false);
  } finally {
    store.destroy();
    await second.close();
  }
});
