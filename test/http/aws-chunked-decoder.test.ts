/**
 * The aws-chunked decoder on bodies made by others: the worked example of AWS's SigV4 streaming
 * documentation (signed chunks, its published signatures) and bodies the current AWS SDK for
 * JavaScript streams on its defaults (STREAMING-UNSIGNED-PAYLOAD-TRAILER with a trailing checksum),
 * captured at a plain HTTP server. Tampering and truncation are errors on the stream, never an end.
 */
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { PutObjectCommand, S3Client, type ChecksumAlgorithm as SdkChecksumAlgorithm } from '@aws-sdk/client-s3';
import { headersFromRaw } from '../../src/auth/auth-request';
import { InMemoryCredentialStore } from '../../src/auth/credential-store';
import { createSigV4Authenticator, type SignedPayload } from '../../src/auth/sigv4-authenticator';
import { GatewayError } from '../../src/errors/gateway-error';
import { AwsChunkedDecoder, type AwsChunkedDecoderOptions } from '../../src/http/aws-chunked-decoder';
import { algorithmOfHeader, type ChecksumAlgorithm } from '../../src/http/object-checksum';

async function decode(body: Buffer, options: AwsChunkedDecoderOptions, pieceSize = body.length): Promise<{ data: Buffer; decoder: AwsChunkedDecoder }> {
  const pieces: Buffer[] = [];
  for (let at = 0; at < body.length; at += pieceSize) pieces.push(body.subarray(at, at + pieceSize));
  const out: Buffer[] = [];
  const decoder = new AwsChunkedDecoder(options);
  await pipeline(
    Readable.from(pieces),
    decoder,
    new Writable({
      write(chunk: Buffer, _encoding, callback) {
        out.push(chunk);
        callback();
      },
    }),
  );
  return { data: Buffer.concat(out), decoder };
}

async function failure(body: Buffer, options: AwsChunkedDecoderOptions): Promise<GatewayError> {
  try {
    await decode(body, options);
  } catch (error) {
    if (error instanceof GatewayError) return error;
    throw error;
  }
  throw new Error('expected the decoder to fail');
}

describe('STREAMING-AWS4-HMAC-SHA256-PAYLOAD: the example of AWS SigV4 streaming documentation', () => {
  // PUT /examplebucket/chunkObject.txt, 66560 bytes of 'a' in chunks of 65536 + 1024, AWS's example keys.
  const ACCESS = 'AKIAIOSFODNN7EXAMPLE';
  const SECRET = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY';
  const SEED = '4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9';
  const CHUNK_1 = 'ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648';
  const CHUNK_2 = '0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497';
  const FINAL = 'b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9';
  const headers: Array<[string, string]> = [
    ['Host', 's3.amazonaws.com'],
    ['x-amz-date', '20130524T000000Z'],
    ['x-amz-storage-class', 'REDUCED_REDUNDANCY'],
    [
      'Authorization',
      `AWS4-HMAC-SHA256 Credential=${ACCESS}/20130524/us-east-1/s3/aws4_request,SignedHeaders=content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;x-amz-storage-class,Signature=${SEED}`,
    ],
    ['x-amz-content-sha256', 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD'],
    ['Content-Encoding', 'aws-chunked'],
    ['x-amz-decoded-content-length', '66560'],
    ['Content-Length', '66824'],
  ];
  const body = (c1 = CHUNK_1, c2 = CHUNK_2, final = FINAL): Buffer =>
    Buffer.concat([Buffer.from(`10000;chunk-signature=${c1}\r\n`), Buffer.alloc(65536, 'a'), Buffer.from(`\r\n400;chunk-signature=${c2}\r\n`), Buffer.alloc(1024, 'a'), Buffer.from(`\r\n0;chunk-signature=${final}\r\n\r\n`)]);

  async function payload(): Promise<SignedPayload> {
    const authenticator = createSigV4Authenticator({
      credentials: new InMemoryCredentialStore([{ secretId: ACCESS, secretKey: SECRET, grants: [{ coffer: '*', actions: ['*'] }] }]),
      now: () => Date.UTC(2013, 4, 24, 0, 1),
    });
    const request = { method: 'PUT', coffer: 'examplebucket', key: 'chunkObject.txt', addressing: 'path' as const, query: [], headers: headersFromRaw(headers.flat()), pathname: '/examplebucket/chunkObject.txt' };
    return (await authenticator.authenticate(request)).payload;
  }

  async function options(): Promise<AwsChunkedDecoderOptions> {
    const signed = await payload();
    if (signed.kind !== 'aws-chunked' || signed.signing === undefined) throw new Error('expected a signed aws-chunked payload');
    return { decodedLength: 66560, signing: signed.signing, trailer: false };
  }

  test('the seed signature verifies, every chunk signature verifies, the object is the 66560 bytes', async () => {
    const signed = await payload();
    expect(signed).toMatchObject({ kind: 'aws-chunked', trailer: false, signing: { seedSignature: SEED } });
    const { data } = await decode(body(), await options());
    expect(data.equals(Buffer.alloc(66560, 'a'))).toBe(true);
  });

  test('decoding does not depend on how the body is split into reads (1, 7, 4096 bytes)', async () => {
    for (const size of [1, 7, 4096]) {
      const { data } = await decode(body(), await options(), size);
      expect(data.length).toBe(66560);
    }
  });

  test('a changed data byte → SignatureDoesNotMatch', async () => {
    const tampered = body();
    tampered[100] = 'b'.charCodeAt(0);
    expect((await failure(tampered, await options())).code).toBe('SignatureDoesNotMatch');
  });

  test("chunks reordered, a signature replaced by another chunk's, the final signature forged → SignatureDoesNotMatch", async () => {
    const opts = await options();
    expect((await failure(body(CHUNK_2, CHUNK_1), opts)).code).toBe('SignatureDoesNotMatch');
    expect((await failure(body(CHUNK_1, CHUNK_2, CHUNK_2), opts)).code).toBe('SignatureDoesNotMatch');
  });

  test('truncated: at a chunk boundary, inside a chunk, without the final chunk → IncompleteBody before the end', async () => {
    const opts = await options();
    const whole = body();
    const firstChunkEnd = `10000;chunk-signature=${CHUNK_1}\r\n`.length + 65536 + 2;
    expect((await failure(whole.subarray(0, firstChunkEnd), opts)).code).toBe('IncompleteBody');
    expect((await failure(whole.subarray(0, 1000), opts)).code).toBe('IncompleteBody');
    expect((await failure(whole.subarray(0, whole.length - 2), opts)).code).toBe('IncompleteBody');
  });

  test('a final chunk signed early (the second chunk dropped) → the decoded length is short', async () => {
    const opts = await options();
    const dropped = Buffer.concat([Buffer.from(`10000;chunk-signature=${CHUNK_1}\r\n`), Buffer.alloc(65536, 'a'), Buffer.from(`\r\n0;chunk-signature=${FINAL}\r\n\r\n`)]);
    expect((await failure(dropped, opts)).code).toBe('IncompleteBody');
  });

  test('bytes after the end, unsigned chunk headers, overlong lines → InvalidChunkedBody', async () => {
    const opts = await options();
    expect((await failure(Buffer.concat([body(), Buffer.from('x')]), opts)).code).toBe('InvalidChunkedBody');
    expect((await failure(Buffer.from('10000\r\n'), opts)).code).toBe('InvalidChunkedBody');
    expect((await failure(Buffer.from(`1${'0'.repeat(600)}`), opts)).code).toBe('InvalidChunkedBody');
    expect((await failure(Buffer.from('20000;chunk-signature=' + CHUNK_1 + '\r\n'), opts)).code).toBe('InvalidChunkedBody');
  });
});

describe('STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER: the trailing-header example of AWS SigV4 streaming documentation', () => {
  // "Signature calculations for trailing headers (chunked uploads)": the same PUT and 66560 bytes of 'a',
  // now with x-amz-trailer: x-amz-checksum-crc32c; its published seed, chunk and trailer signatures.
  const ACCESS = 'AKIAIOSFODNN7EXAMPLE';
  const SECRET = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY';
  const SEED = '106e2a8a18243abcf37539882f36619c00e2dfc72633413f02d3b74544bfeb8e';
  const CHUNK_1 = 'b474d8862b1487a5145d686f57f013e54db672cee1c953b3010fb58501ef5aa2';
  const CHUNK_2 = '1c1344b170168f8e65b41376b44b20fe354e373826ccbbe2c1d40a8cae51e5c7';
  const FINAL = '2ca2aba2005185cf7159c6277faf83795951dd77a3a99e6e65d5c9f85863f992';
  const TRAILER = 'x-amz-checksum-crc32c:sOO8/Q==';
  const TRAILER_SIGNATURE = 'd81f82fc3505edab99d459891051a732e8730629a2e4a59689829ca17fe2e435';
  const headers: Array<[string, string]> = [
    ['Host', 's3.amazonaws.com'],
    ['x-amz-date', '20130524T000000Z'],
    ['x-amz-storage-class', 'REDUCED_REDUNDANCY'],
    [
      'Authorization',
      `AWS4-HMAC-SHA256 Credential=${ACCESS}/20130524/us-east-1/s3/aws4_request,SignedHeaders=content-encoding;host;x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;x-amz-storage-class;x-amz-trailer,Signature=${SEED}`,
    ],
    ['x-amz-content-sha256', 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER'],
    ['Content-Encoding', 'aws-chunked'],
    ['x-amz-decoded-content-length', '66560'],
    ['x-amz-trailer', 'x-amz-checksum-crc32c'],
  ];
  /** The body as the example lays it out: chunks, the final 0-byte chunk, the trailer chunk (ended by an empty line, as SDKs send it). */
  const body = (trailer = TRAILER, trailerSignature = TRAILER_SIGNATURE): Buffer =>
    Buffer.concat([
      Buffer.from(`10000;chunk-signature=${CHUNK_1}\r\n`),
      Buffer.alloc(65536, 'a'),
      Buffer.from(`\r\n400;chunk-signature=${CHUNK_2}\r\n`),
      Buffer.alloc(1024, 'a'),
      Buffer.from(`\r\n0;chunk-signature=${FINAL}\r\n${trailer}\r\nx-amz-trailer-signature:${trailerSignature}\r\n\r\n`),
    ]);

  async function options(): Promise<AwsChunkedDecoderOptions> {
    const authenticator = createSigV4Authenticator({
      credentials: new InMemoryCredentialStore([{ secretId: ACCESS, secretKey: SECRET, grants: [{ coffer: '*', actions: ['*'] }] }]),
      now: () => Date.UTC(2013, 4, 24, 0, 1),
      region: 'us-east-1',
    });
    const request = { method: 'PUT', coffer: 'examplebucket', key: 'chunkObject.txt', addressing: 'path' as const, query: [], headers: headersFromRaw(headers.flat()), pathname: '/examplebucket/chunkObject.txt' };
    const signed = (await authenticator.authenticate(request)).payload;
    if (signed.kind !== 'aws-chunked' || signed.signing === undefined) throw new Error('expected a signed aws-chunked payload');
    expect(signed).toMatchObject({ trailer: true, signing: { seedSignature: SEED } });
    return { decodedLength: 66560, signing: signed.signing, trailer: true, trailerChecksum: 'CRC32C' };
  }

  test('the seed, chunk and trailer signatures verify; the CRC32C is verified and reported; the object is the 66560 bytes', async () => {
    for (const pieceSize of [66946, 1, 4096]) {
      const { data, decoder } = await decode(body(), await options(), pieceSize);
      expect(data.equals(Buffer.alloc(66560, 'a'))).toBe(true);
      expect(decoder.verifiedChecksum).toEqual({ algorithm: 'CRC32C', value: 'sOO8/Q==' });
    }
  });

  test('a tampered trailer value, a tampered trailer signature, a missing trailer or trailer signature → refused before the end', async () => {
    const opts = await options();
    // Another checksum (of other bytes) under the same trailer signature.
    expect((await failure(body('x-amz-checksum-crc32c:AAAAAA=='), opts)).code).toBe('SignatureDoesNotMatch');
    expect((await failure(body(TRAILER, TRAILER_SIGNATURE.replace(/^d8/, '00')), opts)).code).toBe('SignatureDoesNotMatch');
    // The final chunk's signature in place of the trailer's.
    expect((await failure(body(TRAILER, FINAL), opts)).code).toBe('SignatureDoesNotMatch');
    const text = body().toString('latin1');
    expect((await failure(Buffer.from(text.replace(`${TRAILER}\r\n`, ''), 'latin1'), opts)).code).toBe('InvalidChunkedBody');
    expect((await failure(Buffer.from(text.replace(`x-amz-trailer-signature:${TRAILER_SIGNATURE}\r\n`, ''), 'latin1'), opts)).code).toBe('InvalidChunkedBody');
    // Cut after the final chunk: no trailer at all.
    expect((await failure(Buffer.from(text.slice(0, text.indexOf(TRAILER)), 'latin1'), opts)).code).toBe('IncompleteBody');
  });

  test('a data byte changed: its chunk signature fails before the trailer is read', async () => {
    const tampered = body();
    tampered[70_000 - 66560] = 'b'.charCodeAt(0);
    expect((await failure(tampered, await options())).code).toBe('SignatureDoesNotMatch');
  });
});

interface Captured {
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/** What @aws-sdk/client-s3 sends for a PutObject on its defaults, captured at a plain HTTP server. */
async function captureSdkPut(body: Buffer, checksumAlgorithm?: SdkChecksumAlgorithm): Promise<Captured> {
  let captured: Captured | undefined;
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      captured = { headers: req.headers, body: Buffer.concat(chunks) };
      res.writeHead(200, { ETag: '"0"' });
      res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const client = new S3Client({
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    forcePathStyle: true,
    region: 'us-east-1',
    credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'x'.repeat(32) },
  });
  try {
    await client.send(new PutObjectCommand({ Bucket: 'demo-1250000000', Key: 'k', Body: Readable.from([body]), ContentLength: body.length, ...(checksumAlgorithm === undefined ? {} : { ChecksumAlgorithm: checksumAlgorithm }) }));
  } finally {
    client.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
  if (captured === undefined) throw new Error('nothing captured');
  return captured;
}

function sdkOptions(captured: Captured): AwsChunkedDecoderOptions {
  expect(captured.headers['content-encoding']).toBe('aws-chunked');
  expect(captured.headers['x-amz-content-sha256']).toBe('STREAMING-UNSIGNED-PAYLOAD-TRAILER');
  const trailerChecksum = algorithmOfHeader(String(captured.headers['x-amz-trailer']));
  return { decodedLength: Number(captured.headers['x-amz-decoded-content-length']), trailer: true, ...(trailerChecksum === undefined ? {} : { trailerChecksum }) };
}

describe('STREAMING-UNSIGNED-PAYLOAD-TRAILER as the AWS SDK for JavaScript streams it', () => {
  const object = Buffer.from(Array.from({ length: 200_000 }, (_, i) => (i * 7919) % 251));

  test('default (CRC32 trailer): decoded, checksum verified and reported', async () => {
    const captured = await captureSdkPut(object);
    expect(captured.headers['x-amz-trailer']).toBe('x-amz-checksum-crc32');
    const { data, decoder } = await decode(captured.body, sdkOptions(captured), 3000);
    expect(data.equals(object)).toBe(true);
    expect(decoder.verifiedChecksum?.algorithm).toBe('CRC32');
    expect(captured.body.toString('latin1')).toContain(`x-amz-checksum-crc32:${decoder.verifiedChecksum?.value ?? ''}`);
  });

  test.each(['CRC32C', 'CRC64NVME', 'SHA1', 'SHA256'] as const)("%s trailer: the SDK's value equals ours", async (algorithm: ChecksumAlgorithm) => {
    const captured = await captureSdkPut(object, algorithm);
    const { data, decoder } = await decode(captured.body, sdkOptions(captured));
    expect(data.equals(object)).toBe(true);
    expect(decoder.verifiedChecksum?.algorithm).toBe(algorithm);
  });

  test('a changed data byte → BadDigest; a missing trailer → InvalidChunkedBody; a trailer not declared → InvalidChunkedBody', async () => {
    const captured = await captureSdkPut(object);
    const options = sdkOptions(captured);
    const tampered = Buffer.from(captured.body);
    tampered[50_000] = (tampered[50_000] ?? 0) ^ 1;
    expect((await failure(tampered, options)).code).toBe('BadDigest');
    const text = captured.body.toString('latin1');
    const withoutTrailer = Buffer.from(text.replace(/x-amz-checksum-crc32:[^\r]*\r\n/, ''), 'latin1');
    expect((await failure(withoutTrailer, options)).code).toBe('InvalidChunkedBody');
    const otherTrailer = Buffer.from(text.replace('x-amz-checksum-crc32:', 'x-amz-meta-x:'), 'latin1');
    expect((await failure(otherTrailer, options)).code).toBe('InvalidChunkedBody');
  });

  test('a decoded length other than x-amz-decoded-content-length is refused', async () => {
    const captured = await captureSdkPut(object);
    expect((await failure(captured.body, { ...sdkOptions(captured), decodedLength: object.length - 1 })).code).toBe('InvalidChunkedBody');
    expect((await failure(captured.body, { ...sdkOptions(captured), decodedLength: object.length + 1 })).code).toBe('IncompleteBody');
  });
});
