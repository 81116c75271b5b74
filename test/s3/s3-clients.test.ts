/**
 * S3 clients against the gateway as `npm start` runs it (embedded upstream, local keyring, the demo
 * coffer and access key): the AWS SDK for JavaScript on its defaults and aws-cli (the Debian package,
 * /usr/bin/aws). Real HTTP, real signatures, the same at-rest format as the CDCS dialect — an object
 * written with one dialect is read with the other; `aws s3 mb` / `rb` against a gateway with a coffer
 * class create and delete coffers the CDCS side sees.
 */
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync, writeSync, readSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { crc32 as zlibCrc32 } from 'node:zlib';
import { Crc64Nvme } from '@aws-sdk/crc64-nvme';
import { crc32c } from '@node-rs/crc32';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectTaggingCommand,
  ListPartsCommand,
  UploadPartCommand,
  UploadPartCopyCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import type { RunningGateway } from '../../src/app/serve';
import { startRecordedGateway } from '../support/recorded-gateway';
import { DEMO_BUCKET, S3_ACCESS_KEY, S3_SECRET_KEY, SCRATCH_BUCKET, startS3Gateway, type S3Gateway } from '../support/s3-gateway';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const COS = require('cos-nodejs-sdk-v5');

const run = promisify(execFile);
const MiB = 1024 * 1024;
const ACCESS_KEY = S3_ACCESS_KEY;
const SECRET_KEY = S3_SECRET_KEY;
const BUCKET = DEMO_BUCKET;
const SCRATCH = SCRATCH_BUCKET;
const md5 = (b: Buffer): string => createHash('md5').update(b).digest('hex');
const uint32 = (value: number): string => {
  const out = Buffer.alloc(4);
  out.writeUInt32BE(value >>> 0);
  return out.toString('base64');
};
const crc32Of = (b: Buffer): string => uint32(zlibCrc32(b));
const crc32cOf = (b: Buffer): string => uint32(crc32c(b));
const bytesOf = async (body: unknown): Promise<Buffer> => Buffer.from(await (body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray());

let fixture: S3Gateway;
let directory: string;
let gateway: RunningGateway;
let endpoint: string;
let s3: S3Client;

beforeAll(async () => {
  fixture = await startS3Gateway();
  ({ directory, gateway, endpoint } = fixture);
  s3 = new S3Client({ endpoint, forcePathStyle: true, region: 'us-east-1', credentials: { accessKeyId: ACCESS_KEY, secretAccessKey: SECRET_KEY } });
});

afterAll(async () => {
  s3?.destroy();
  await fixture?.stop();
});

const code = async (promise: Promise<unknown>): Promise<string> => {
  try {
    await promise;
  } catch (error) {
    if (error instanceof S3ServiceException) return error.name;
    throw error;
  }
  return 'OK';
};

describe('@aws-sdk/client-s3 on its defaults', () => {
  test('PutObject with a streamed body (aws-chunked, trailing CRC32) → GetObject, HeadObject, ranged GetObject, ListObjectsV2', async () => {
    const body = randomBytes(300_000);
    const put = await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'sdk/streamed.bin', Body: Readable.from([body]), ContentLength: body.length, Metadata: { who: 'sdk' } }));
    expect(put.ETag).toBe(`"${md5(body)}"`);
    expect(put.ChecksumCRC32).toBeDefined();
    const got = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'sdk/streamed.bin' }));
    expect(Buffer.from(await (got.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray()).equals(body)).toBe(true);
    expect(got.Metadata).toEqual({ who: 'sdk' });
    const head = await s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: 'sdk/streamed.bin' }));
    expect(head.ContentLength).toBe(body.length);
    const ranged = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'sdk/streamed.bin', Range: 'bytes=1000-1999' }));
    expect(Buffer.from(await (ranged.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray()).equals(body.subarray(1000, 2000))).toBe(true);
    const listed = await s3.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: 'sdk/' }));
    expect(listed.Contents?.map((o) => o.Key)).toEqual(['sdk/streamed.bin']);
  });

  test('the trailing checksum is stored authenticated and returned with x-amz-checksum-mode: ENABLED (the SDK verifies it)', async () => {
    const body = randomBytes(100_000);
    const put = await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'sdk/checksummed', Body: Readable.from([body]), ContentLength: body.length, ChecksumAlgorithm: 'CRC64NVME' }));
    expect(put.ChecksumCRC64NVME).toBeDefined();
    const head = await s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: 'sdk/checksummed', ChecksumMode: 'ENABLED' }));
    expect(head.ChecksumCRC64NVME).toBe(put.ChecksumCRC64NVME);
    const got = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'sdk/checksummed', ChecksumMode: 'ENABLED' }));
    expect(got.ChecksumCRC64NVME).toBe(put.ChecksumCRC64NVME);
    expect(Buffer.from(await (got.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray()).equals(body)).toBe(true);
    const plain = await s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: 'sdk/checksummed' }));
    expect(plain.ChecksumCRC64NVME).toBeUndefined();
  });

  test('lib-storage Upload of a body of unknown length (multipart; lib-storage buffers each part and sends it with its CRC32)', async () => {
    const body = randomBytes(12 * MiB + 12345);
    const upload = new Upload({ client: s3, params: { Bucket: BUCKET, Key: 'sdk/multipart.bin', Body: Readable.from([body.subarray(0, 5 * MiB), body.subarray(5 * MiB)]) }, partSize: 5 * MiB });
    await upload.done();
    const got = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'sdk/multipart.bin' }));
    expect(md5(Buffer.from(await (got.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray()))).toBe(md5(body));
  });

  test('lib-storage on its defaults declares CRC32 at CreateMultipartUpload and sends each part with its CRC32: the object gets the COMPOSITE checksum, returned with ChecksumMode ENABLED', async () => {
    // What the current SDK sends, recorded on the wire (after signing).
    const wire: Array<{ query: Record<string, unknown>; headers: Record<string, string>; body: string }> = [];
    const client = new S3Client({ endpoint, forcePathStyle: true, region: 'us-east-1', credentials: { accessKeyId: ACCESS_KEY, secretAccessKey: SECRET_KEY } });
    client.middlewareStack.add(
      (next) => async (args) => {
        const request = args.request as { query: Record<string, unknown>; headers: Record<string, string>; body: unknown };
        wire.push({ query: { ...request.query }, headers: { ...request.headers }, body: typeof request.body === 'string' ? request.body : '' });
        return next(args);
      },
      { step: 'finalizeRequest', priority: 'low' },
    );
    try {
      const body = randomBytes(12 * MiB + 12345);
      const parts = [body.subarray(0, 5 * MiB), body.subarray(5 * MiB, 10 * MiB), body.subarray(10 * MiB)];
      await new Upload({ client, params: { Bucket: BUCKET, Key: 'sdk/checksummed-multipart.bin', Body: Readable.from([body]) }, partSize: 5 * MiB }).done();
      const create = wire.find((r) => 'uploads' in r.query);
      expect(create?.headers['x-amz-checksum-algorithm']).toBe('CRC32');
      expect(create?.headers['x-amz-checksum-type']).toBeUndefined();
      const uploads = wire.filter((r) => 'partNumber' in r.query);
      expect(uploads).toHaveLength(3);
      // lib-storage hands UploadPart each part as a buffer: a signed SHA-256 payload with the part's CRC32 in a header.
      expect(uploads.map((upload) => [upload.headers['x-amz-checksum-crc32'], upload.headers['x-amz-content-sha256']])).toEqual(parts.map((part) => [crc32Of(part), createHash('sha256').update(part).digest('hex')]));
      const complete = wire.find((r) => 'uploadId' in r.query && !('partNumber' in r.query));
      expect(complete?.body).toContain(`<ChecksumCRC32>${crc32Of(parts[0] as Buffer)}</ChecksumCRC32>`);

      const expected = `${crc32Of(Buffer.concat(parts.map((part) => Buffer.from(crc32Of(part), 'base64'))))}-3`;
      const got = await client.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'sdk/checksummed-multipart.bin', ChecksumMode: 'ENABLED' }));
      expect([got.ChecksumCRC32, got.ChecksumType]).toEqual([expected, 'COMPOSITE']);
      expect((await bytesOf(got.Body)).equals(body)).toBe(true);
      const head = await client.send(new HeadObjectCommand({ Bucket: BUCKET, Key: 'sdk/checksummed-multipart.bin', ChecksumMode: 'ENABLED' }));
      expect([head.ChecksumCRC32, head.ChecksumType]).toEqual([expected, 'COMPOSITE']);
      // The same object through the CDCS dialect's reader is unchanged (no checksum headers unless asked).
      const plain = await client.send(new HeadObjectCommand({ Bucket: BUCKET, Key: 'sdk/checksummed-multipart.bin' }));
      expect(plain.ChecksumCRC32).toBeUndefined();
    } finally {
      client.destroy();
    }
  });

  test('FULL_OBJECT checksums: CRC64NVME (its default) and CRC32 are the CRC of the whole object, combined from the parts; the SDK verifies the body against it', async () => {
    const body = randomBytes(3 * MiB + 4567);
    const crc64 = new Crc64Nvme();
    crc64.update(body);
    const crc64Value = Buffer.from(await crc64.digest()).toString('base64');
    // 1 MiB+ parts (the gateway's minimum; lib-storage needs 5 MiB) sent with UploadPart, each with its CRC.
    for (const [Key, algorithm, type, expected] of [
      ['sdk/full-crc64', 'CRC64NVME', undefined, crc64Value],
      ['sdk/full-crc32', 'CRC32', 'FULL_OBJECT', crc32Of(body)],
    ] as const) {
      const { UploadId, ChecksumType } = await s3.send(new CreateMultipartUploadCommand({ Bucket: SCRATCH, Key, ChecksumAlgorithm: algorithm, ...(type === undefined ? {} : { ChecksumType: type }) }));
      expect(ChecksumType).toBe('FULL_OBJECT');
      const cuts = [0, MiB + 1, 2 * MiB + 3, body.length];
      const parts = [];
      for (let i = 0; i + 1 < cuts.length; i += 1) {
        const uploaded = await s3.send(new UploadPartCommand({ Bucket: SCRATCH, Key, UploadId, PartNumber: i + 1, Body: body.subarray(cuts[i], cuts[i + 1]), ChecksumAlgorithm: algorithm }));
        parts.push({ PartNumber: i + 1, ETag: uploaded.ETag, ChecksumCRC64NVME: uploaded.ChecksumCRC64NVME, ChecksumCRC32: uploaded.ChecksumCRC32 });
      }
      // The whole object's checksum asserted on Complete (as a header) is checked against the parts' before anything is assembled.
      const asserted = (value: string) => (algorithm === 'CRC32' ? { ChecksumCRC32: value } : { ChecksumCRC64NVME: value });
      const wrong = algorithm === 'CRC32' ? crc32Of(Buffer.from('other')) : Buffer.alloc(8).toString('base64');
      expect(await code(s3.send(new CompleteMultipartUploadCommand({ Bucket: SCRATCH, Key, UploadId, MultipartUpload: { Parts: parts }, ChecksumType: 'FULL_OBJECT', ...asserted(wrong) })))).toBe('BadDigest');
      expect(await code(s3.send(new HeadObjectCommand({ Bucket: SCRATCH, Key })))).toBe('NotFound');
      const completed = await s3.send(new CompleteMultipartUploadCommand({ Bucket: SCRATCH, Key, UploadId, MultipartUpload: { Parts: parts }, ChecksumType: 'FULL_OBJECT', ...asserted(expected) }));
      expect([completed.ChecksumCRC64NVME ?? completed.ChecksumCRC32, completed.ChecksumType]).toEqual([expected, 'FULL_OBJECT']);
      const got = await s3.send(new GetObjectCommand({ Bucket: SCRATCH, Key, ChecksumMode: 'ENABLED' }));
      expect([got.ChecksumCRC64NVME ?? got.ChecksumCRC32, got.ChecksumType]).toEqual([expected, 'FULL_OBJECT']);
      expect((await bytesOf(got.Body)).equals(body)).toBe(true);
    }
  });

  test('multipart checksums are checked: algorithm/type pairs at Create, the declared algorithm at UploadPart, every listed part checksum at Complete (mismatch InvalidPart, missing InvalidRequest); UploadPartCopy and ListParts carry them', async () => {
    expect(await code(s3.send(new CreateMultipartUploadCommand({ Bucket: SCRATCH, Key: 'ck/x', ChecksumAlgorithm: 'CRC64NVME', ChecksumType: 'COMPOSITE' })))).toBe('InvalidRequest');
    expect(await code(s3.send(new CreateMultipartUploadCommand({ Bucket: SCRATCH, Key: 'ck/x', ChecksumAlgorithm: 'SHA256', ChecksumType: 'FULL_OBJECT' })))).toBe('InvalidRequest');
    const source = randomBytes(1500);
    await s3.send(new PutObjectCommand({ Bucket: SCRATCH, Key: 'ck/source', Body: source }));
    const Key = 'ck/target';
    const created = await s3.send(new CreateMultipartUploadCommand({ Bucket: SCRATCH, Key, ChecksumAlgorithm: 'CRC32C' }));
    expect([created.ChecksumAlgorithm, created.ChecksumType]).toEqual(['CRC32C', 'COMPOSITE']);
    const { UploadId } = created;
    const first = randomBytes(MiB + 10);
    const one = await s3.send(new UploadPartCommand({ Bucket: SCRATCH, Key, UploadId, PartNumber: 1, Body: first, ChecksumAlgorithm: 'CRC32C' }));
    expect(one.ChecksumCRC32C).toBe(crc32cOf(first));
    // Another algorithm than the upload's: refused before the body is stored.
    expect(await code(s3.send(new UploadPartCommand({ Bucket: SCRATCH, Key, UploadId, PartNumber: 2, Body: randomBytes(100), ChecksumAlgorithm: 'CRC32' })))).toBe('InvalidRequest');
    // A copied part gets the upload's checksum, computed over the copied bytes.
    const two = await s3.send(new UploadPartCopyCommand({ Bucket: SCRATCH, Key, UploadId, PartNumber: 2, CopySource: `${SCRATCH}/ck/source`, CopySourceRange: 'bytes=100-1099' }));
    expect(two.CopyPartResult?.ChecksumCRC32C).toBe(crc32cOf(source.subarray(100, 1100)));
    const listed = await s3.send(new ListPartsCommand({ Bucket: SCRATCH, Key, UploadId }));
    expect([listed.ChecksumAlgorithm, listed.ChecksumType]).toEqual(['CRC32C', 'COMPOSITE']);
    expect(listed.Parts?.map((p) => [p.PartNumber, p.ChecksumCRC32C])).toEqual([
      [1, crc32cOf(first)],
      [2, crc32cOf(source.subarray(100, 1100))],
    ]);

    const complete = (parts: Array<{ PartNumber: number; ETag?: string; ChecksumCRC32C?: string }>) => s3.send(new CompleteMultipartUploadCommand({ Bucket: SCRATCH, Key, UploadId, MultipartUpload: { Parts: parts } }));
    const good = [
      { PartNumber: 1, ETag: one.ETag, ChecksumCRC32C: one.ChecksumCRC32C },
      { PartNumber: 2, ETag: two.CopyPartResult?.ETag, ChecksumCRC32C: two.CopyPartResult?.ChecksumCRC32C },
    ];
    expect(await code(complete([good[0] as (typeof good)[0], { ...(good[1] as (typeof good)[0]), ChecksumCRC32C: crc32cOf(Buffer.from('other')) }]))).toBe('InvalidPart');
    expect(await code(complete([good[0] as (typeof good)[0], { PartNumber: 2, ETag: two.CopyPartResult?.ETag }]))).toBe('InvalidRequest');
    expect(await code(s3.send(new HeadObjectCommand({ Bucket: SCRATCH, Key })))).toBe('NotFound');
    const done = await complete(good);
    const expected = `${crc32cOf(Buffer.concat([Buffer.from(crc32cOf(first), 'base64'), Buffer.from(crc32cOf(source.subarray(100, 1100)), 'base64')]))}-2`;
    expect([done.ChecksumCRC32C, done.ChecksumType]).toEqual([expected, 'COMPOSITE']);
    const head = await s3.send(new HeadObjectCommand({ Bucket: SCRATCH, Key, ChecksumMode: 'ENABLED' }));
    expect([head.ChecksumCRC32C, head.ChecksumType]).toEqual([expected, 'COMPOSITE']);
  });

  test('a write-once bucket refuses overwrite and delete with AccessDenied; the object stays', async () => {
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'sdk/once', Body: 'first' }));
    expect(await code(s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'sdk/once', Body: 'second' })))).toBe('AccessDenied');
    expect(await code(s3.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: 'sdk/once' })))).toBe('AccessDenied');
    expect(await code(s3.send(new DeleteObjectsCommand({ Bucket: BUCKET, Delete: { Objects: [{ Key: 'sdk/once' }] } })))).toBe('AccessDenied');
    const got = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'sdk/once' }));
    expect(await (got.Body as { transformToString(): Promise<string> }).transformToString()).toBe('first');
  });

  test('the scratch bucket (writeOnce: false) allows overwrite, DeleteObject and DeleteObjects', async () => {
    await s3.send(new PutObjectCommand({ Bucket: SCRATCH, Key: 'k', Body: 'first' }));
    await s3.send(new PutObjectCommand({ Bucket: SCRATCH, Key: 'k', Body: 'second, longer' }));
    const got = await s3.send(new GetObjectCommand({ Bucket: SCRATCH, Key: 'k' }));
    expect(await (got.Body as { transformToString(): Promise<string> }).transformToString()).toBe('second, longer');
    await s3.send(new DeleteObjectCommand({ Bucket: SCRATCH, Key: 'k' }));
    expect(await code(s3.send(new GetObjectCommand({ Bucket: SCRATCH, Key: 'k' })))).toBe('NoSuchKey');
    for (const key of ['a', 'b', 'c']) await s3.send(new PutObjectCommand({ Bucket: SCRATCH, Key: `many/${key}`, Body: key }));
    const deleted = await s3.send(new DeleteObjectsCommand({ Bucket: SCRATCH, Delete: { Objects: [{ Key: 'many/a' }, { Key: 'many/b' }] } }));
    expect(deleted.Deleted?.map((d) => d.Key)).toEqual(['many/a', 'many/b']);
    const listed = await s3.send(new ListObjectsV2Command({ Bucket: SCRATCH, Prefix: 'many/' }));
    expect(listed.Contents?.map((o) => o.Key)).toEqual(['many/c']);
    // The demo coffer's listing does not see the scratch coffer's objects (same upstream bucket, own prefix).
    const demo = await s3.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: 'many/' }));
    expect(demo.KeyCount).toBe(0);
  });

  test('CopyObject decrypts and re-encrypts across coffers (metadata copied or replaced); a source without read grant is AccessDenied', async () => {
    const body = randomBytes(200_000);
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'copy/source', Body: body, ContentType: 'application/x-test', Metadata: { origin: 'demo' } }));
    const copied = await s3.send(new CopyObjectCommand({ Bucket: SCRATCH, Key: 'copy/target', CopySource: `${BUCKET}/copy/source` }));
    expect(copied.CopyObjectResult?.ETag).toBe(`"${md5(body)}"`);
    const got = await s3.send(new GetObjectCommand({ Bucket: SCRATCH, Key: 'copy/target' }));
    expect(Buffer.from(await (got.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray()).equals(body)).toBe(true);
    expect([got.ContentType, got.Metadata]).toEqual(['application/x-test', { origin: 'demo' }]);
    await s3.send(new CopyObjectCommand({ Bucket: SCRATCH, Key: 'copy/replaced', CopySource: `${BUCKET}/copy/source`, MetadataDirective: 'REPLACE', Metadata: { origin: 'replaced' } }));
    expect((await s3.send(new HeadObjectCommand({ Bucket: SCRATCH, Key: 'copy/replaced' }))).Metadata).toEqual({ origin: 'replaced' });
    expect(await code(s3.send(new CopyObjectCommand({ Bucket: SCRATCH, Key: 'copy/denied', CopySource: 'nope-1250000000/x' })))).toBe('AccessDenied');
    expect(await code(s3.send(new CopyObjectCommand({ Bucket: BUCKET, Key: 'copy/source', CopySource: `${SCRATCH}/copy/target` })))).toBe('AccessDenied');
    expect(await code(s3.send(new HeadObjectCommand({ Bucket: SCRATCH, Key: 'copy/denied' })))).not.toBe('OK');
  });

  test('CopyObject obeys x-amz-copy-source-if-* (412 PreconditionFailed, nothing written) and refuses a range', async () => {
    const body = randomBytes(10_000);
    const put = await s3.send(new PutObjectCommand({ Bucket: SCRATCH, Key: 'cond/source', Body: body }));
    const past = new Date(Date.now() - 3600_000);
    const future = new Date(Date.now() + 3600_000);
    const copy = (Key: string, conditions: Partial<ConstructorParameters<typeof CopyObjectCommand>[0]>) => code(s3.send(new CopyObjectCommand({ Bucket: SCRATCH, Key, CopySource: `${SCRATCH}/cond/source`, ...conditions })));
    expect(await copy('cond/a', { CopySourceIfMatch: put.ETag })).toBe('OK');
    expect(await copy('cond/b', { CopySourceIfMatch: '"0123456789abcdef0123456789abcdef"' })).toBe('PreconditionFailed');
    expect(await copy('cond/c', { CopySourceIfNoneMatch: put.ETag })).toBe('PreconditionFailed');
    expect(await copy('cond/d', { CopySourceIfModifiedSince: future })).toBe('PreconditionFailed');
    expect(await copy('cond/e', { CopySourceIfUnmodifiedSince: past })).toBe('PreconditionFailed');
    // S3's documented combinations: if-match holding wins over if-unmodified-since failing; if-none-match holding over if-modified-since failing.
    expect(await copy('cond/f', { CopySourceIfMatch: put.ETag, CopySourceIfUnmodifiedSince: past })).toBe('OK');
    expect(await copy('cond/g', { CopySourceIfNoneMatch: '"0123456789abcdef0123456789abcdef"', CopySourceIfModifiedSince: future })).toBe('OK');
    expect(await copy('cond/h', { CopySourceIfModifiedSince: past, CopySourceIfUnmodifiedSince: future })).toBe('OK');
    const listed = await s3.send(new ListObjectsV2Command({ Bucket: SCRATCH, Prefix: 'cond/' }));
    expect(listed.Contents?.map((o) => o.Key)).toEqual(['cond/a', 'cond/f', 'cond/g', 'cond/h', 'cond/source']);
    const failure = await s3.send(new CopyObjectCommand({ Bucket: SCRATCH, Key: 'cond/x', CopySource: `${SCRATCH}/cond/source`, CopySourceIfMatch: '"00"' })).catch((error: unknown) => error as S3ServiceException);
    expect(failure.$metadata.httpStatusCode).toBe(412);
    // Tags: none stored, so an existing object's tag set is empty (what aws-cli's multipart copy reads); a missing object is NoSuchKey.
    expect((await s3.send(new GetObjectTaggingCommand({ Bucket: SCRATCH, Key: 'cond/source' }))).TagSet).toEqual([]);
    expect(await code(s3.send(new GetObjectTaggingCommand({ Bucket: SCRATCH, Key: 'cond/none' })))).toBe('NoSuchKey');
  });

  test("CopyObject keeps the source's checksum algorithm (recomputed over the copied bytes, FULL_OBJECT) or takes the one asked for", async () => {
    const body = randomBytes(50_000);
    await s3.send(new PutObjectCommand({ Bucket: SCRATCH, Key: 'ckcopy/source', Body: body, ChecksumAlgorithm: 'CRC32C' }));
    const kept = await s3.send(new CopyObjectCommand({ Bucket: SCRATCH, Key: 'ckcopy/kept', CopySource: `${SCRATCH}/ckcopy/source` }));
    expect(kept.CopyObjectResult?.ChecksumCRC32C).toBe(crc32cOf(body));
    const head = await s3.send(new HeadObjectCommand({ Bucket: SCRATCH, Key: 'ckcopy/kept', ChecksumMode: 'ENABLED' }));
    expect([head.ChecksumCRC32C, head.ChecksumType]).toEqual([crc32cOf(body), 'FULL_OBJECT']);
    await s3.send(new CopyObjectCommand({ Bucket: SCRATCH, Key: 'ckcopy/sha', CopySource: `${SCRATCH}/ckcopy/source`, ChecksumAlgorithm: 'SHA256' }));
    const sha = await s3.send(new GetObjectCommand({ Bucket: SCRATCH, Key: 'ckcopy/sha', ChecksumMode: 'ENABLED' }));
    expect(sha.ChecksumSHA256).toBe(createHash('sha256').update(body).digest('base64'));
    expect((await bytesOf(sha.Body)).equals(body)).toBe(true);
  });

  test('UploadPartCopy: ranged and whole parts copied from an object (decrypted, re-encrypted), part ETag = MD5 of the copied bytes, conditions and bounds checked before anything is stored', async () => {
    const source = randomBytes(3 * MiB + 777);
    const put = await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'upc/source', Body: source }));
    const small = randomBytes(1000);
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'upc/small', Body: small }));
    const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: SCRATCH, Key: 'upc/target' }));
    const partCopy = (PartNumber: number, extra: Partial<ConstructorParameters<typeof UploadPartCopyCommand>[0]>) =>
      s3.send(new UploadPartCopyCommand({ Bucket: SCRATCH, Key: 'upc/target', UploadId, PartNumber, CopySource: `${BUCKET}/upc/source`, ...extra }));
    const first = await partCopy(1, { CopySourceRange: `bytes=0-${2 * MiB - 1}`, CopySourceIfMatch: put.ETag });
    expect(first.CopyPartResult?.ETag).toBe(`"${md5(source.subarray(0, 2 * MiB))}"`);
    expect(first.CopyPartResult?.LastModified).toBeInstanceOf(Date);
    const second = await partCopy(2, { CopySourceRange: `bytes=${2 * MiB}-${source.length - 1}` });
    expect(second.CopyPartResult?.ETag).toBe(`"${md5(source.subarray(2 * MiB))}"`);
    const third = await partCopy(3, { CopySource: `${BUCKET}/upc/small` });
    expect(third.CopyPartResult?.ETag).toBe(`"${md5(small)}"`);

    // Refused before a byte is written: each leaves part 4 absent.
    expect(await code(partCopy(4, { CopySourceIfMatch: '"0123456789abcdef0123456789abcdef"' }))).toBe('PreconditionFailed');
    expect(await code(partCopy(4, { CopySourceIfNoneMatch: put.ETag }))).toBe('PreconditionFailed');
    expect(await code(partCopy(4, { CopySourceRange: `bytes=0-${source.length}` }))).toBe('InvalidArgument');
    expect(await code(partCopy(4, { CopySourceRange: 'bytes=100-' }))).toBe('InvalidArgument');
    expect(await code(partCopy(4, { CopySourceRange: 'bytes=9-3' }))).toBe('InvalidArgument');
    expect(await code(partCopy(4, { CopySource: `${BUCKET}/upc/missing` }))).toBe('NoSuchKey');
    expect(await code(partCopy(4, { CopySource: 'nope-1250000000/upc/source' }))).toBe('AccessDenied');
    expect(await code(s3.send(new UploadPartCopyCommand({ Bucket: SCRATCH, Key: 'upc/target', UploadId: 'f'.repeat(32), PartNumber: 4, CopySource: `${BUCKET}/upc/source` })))).toBe('NoSuchUpload');
    const parts = await s3.send(new ListPartsCommand({ Bucket: SCRATCH, Key: 'upc/target', UploadId }));
    expect(parts.Parts?.map((p) => [p.PartNumber, p.Size])).toEqual([
      [1, 2 * MiB],
      [2, source.length - 2 * MiB],
      [3, small.length],
    ]);

    await s3.send(
      new CompleteMultipartUploadCommand({
        Bucket: SCRATCH,
        Key: 'upc/target',
        UploadId,
        MultipartUpload: { Parts: [first, second, third].map((p, i) => ({ PartNumber: i + 1, ETag: p.CopyPartResult?.ETag })) },
      }),
    );
    const got = await s3.send(new GetObjectCommand({ Bucket: SCRATCH, Key: 'upc/target' }));
    expect(Buffer.from(await (got.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray()).equals(Buffer.concat([source, small]))).toBe(true);
  });

  test('UploadPartCopy of a source whose stored bytes fail authentication mid-stream stores nothing for that part', async () => {
    const source = randomBytes(2 * MiB + 4321);
    await s3.send(new PutObjectCommand({ Bucket: SCRATCH, Key: 'upc/damaged', Body: source }));
    // The embedded upstream keeps each object in one file: the data object is the one file a little longer than the plaintext.
    const upstream = join(directory, 'upstream');
    const files = readdirSync(upstream, { recursive: true, encoding: 'utf8' })
      .map((name) => join(upstream, name))
      .filter((file) => file.endsWith('.obj'));
    const data = files.filter((file) => statSync(file).size > source.length && statSync(file).size < source.length + 64 * 1024);
    expect(data).toHaveLength(1);
    const fd = openSync(data[0] as string, 'r+');
    try {
      const at = Math.floor(source.length * 0.75);
      const byte = Buffer.alloc(1);
      readSync(fd, byte, 0, 1, at);
      writeSync(fd, Buffer.from([(byte[0] as number) ^ 0xff]), 0, 1, at);
    } finally {
      closeSync(fd);
    }
    const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket: SCRATCH, Key: 'upc/from-damaged' }));
    expect(await code(s3.send(new UploadPartCopyCommand({ Bucket: SCRATCH, Key: 'upc/from-damaged', UploadId, PartNumber: 1, CopySource: `${SCRATCH}/upc/damaged` })))).toBe('IntegrityCheckFailed');
    const parts = await s3.send(new ListPartsCommand({ Bucket: SCRATCH, Key: 'upc/from-damaged', UploadId }));
    expect(parts.Parts ?? []).toEqual([]);
    await s3.send(new AbortMultipartUploadCommand({ Bucket: SCRATCH, Key: 'upc/from-damaged', UploadId }));
  });

  test('a bucket name that cannot be a coffer (no -APPID) is NoSuchBucket to S3 clients, as S3 names it, with x-amz-request-id', async () => {
    const failure = (await s3.send(new ListObjectsV2Command({ Bucket: 'backups' })).then(
      () => undefined,
      (error: unknown) => error,
    )) as S3ServiceException;
    expect(failure.$metadata.httpStatusCode).toBe(404);
    expect(failure.name).toBe('NoSuchBucket');
    expect(failure.$metadata.requestId).toMatch(/\S/);
  });

  test('a bucket the access key is not granted: 403 AccessDenied (no existence oracle)', async () => {
    const failure = await s3.send(new HeadObjectCommand({ Bucket: 'nope-1250000000', Key: 'x' })).catch((error: unknown) => error as S3ServiceException);
    expect(failure.$metadata.httpStatusCode).toBe(403);
    expect(await code(s3.send(new ListObjectsV2Command({ Bucket: 'nope-1250000000' })))).toBe('AccessDenied');
  });
});

const AWS = '/usr/bin/aws';
const awsEnv = (): NodeJS.ProcessEnv => ({
  PATH: '/usr/bin:/bin',
  HOME: directory,
  AWS_ACCESS_KEY_ID: ACCESS_KEY,
  AWS_SECRET_ACCESS_KEY: SECRET_KEY,
  AWS_DEFAULT_REGION: 'us-east-1',
  AWS_EC2_METADATA_DISABLED: 'true',
});
const aws = (...args: string[]) => run(AWS, ['--endpoint-url', endpoint, ...args], { env: awsEnv(), maxBuffer: 64 * MiB });

// Skipped only outside CI when the package is not installed (.ci/install-s3-clients.sh installs it).
(existsSync(AWS) || process.env['CI'] !== undefined ? describe : describe.skip)('aws-cli (Debian awscli)', () => {
  test('s3 cp (multipart), ls, s3api get-object with a range, presign + fetch', async () => {
    const file = join(directory, 'cli-upload.bin');
    const body = randomBytes(20 * MiB + 7);
    writeFileSync(file, body);
    await aws('s3', 'cp', file, `s3://${BUCKET}/cli/big.bin`);
    const { stdout } = await aws('s3', 'ls', `s3://${BUCKET}/cli/`);
    expect(stdout).toMatch(/20971527 big\.bin/);
    const out = join(directory, 'cli-range.bin');
    await aws('s3api', 'get-object', '--bucket', BUCKET, '--key', 'cli/big.bin', '--range', 'bytes=5-1004', out);
    expect(readFileSync(out).equals(body.subarray(5, 1005))).toBe(true);
    const back = join(directory, 'cli-back.bin');
    await aws('s3', 'cp', `s3://${BUCKET}/cli/big.bin`, back);
    expect(md5(readFileSync(back))).toBe(md5(body));
    const url = (await aws('s3', 'presign', `s3://${BUCKET}/cli/big.bin`, '--expires-in', '300')).stdout.trim();
    const response = await fetch(url, { headers: { range: 'bytes=0-99' } });
    expect(response.status).toBe(206);
    expect(Buffer.from(await response.arrayBuffer()).equals(body.subarray(0, 100))).toBe(true);
  });

  test('s3 cp between buckets above the multipart threshold (UploadPartCopy), and s3api upload-part-copy with a range', async () => {
    const body = randomBytes(9 * MiB + 123);
    const file = join(directory, 'cli-copy-source.bin');
    writeFileSync(file, body);
    await aws('s3', 'cp', file, `s3://${SCRATCH}/cli/big`);
    // Above aws-cli's 8 MiB multipart threshold the copy is CreateMultipartUpload + UploadPartCopy per 8 MiB range + Complete.
    // On aws-cli's defaults it also reads the source's tags (GetObjectTagging: none, this gateway stores no tags).
    await aws('s3', 'cp', `s3://${SCRATCH}/cli/big`, `s3://${SCRATCH}/cli/big2`);
    const head = JSON.parse((await aws('s3api', 'head-object', '--bucket', SCRATCH, '--key', 'cli/big2')).stdout) as { ETag: string; ContentLength: number };
    expect(head.ETag).toMatch(/-2"$/);
    expect(head.ContentLength).toBe(body.length);
    const back = join(directory, 'cli-copy-back.bin');
    await aws('s3', 'cp', `s3://${SCRATCH}/cli/big2`, back);
    expect(readFileSync(back).equals(body)).toBe(true);

    const created = JSON.parse((await aws('s3api', 'create-multipart-upload', '--bucket', SCRATCH, '--key', 'cli/ranged')).stdout) as { UploadId: string };
    const copied = JSON.parse(
      (await aws('s3api', 'upload-part-copy', '--bucket', SCRATCH, '--key', 'cli/ranged', '--upload-id', created.UploadId, '--part-number', '1', '--copy-source', `${SCRATCH}/cli/big`, '--copy-source-range', 'bytes=1000-2999')).stdout,
    ) as { CopyPartResult: { ETag: string } };
    expect(copied.CopyPartResult.ETag).toBe(`"${md5(body.subarray(1000, 3000))}"`);
    const parts = JSON.stringify({ Parts: [{ PartNumber: 1, ETag: copied.CopyPartResult.ETag }] });
    await aws('s3api', 'complete-multipart-upload', '--bucket', SCRATCH, '--key', 'cli/ranged', '--upload-id', created.UploadId, '--multipart-upload', parts);
    const out = join(directory, 'cli-ranged.bin');
    await aws('s3api', 'get-object', '--bucket', SCRATCH, '--key', 'cli/ranged', out);
    expect(readFileSync(out).equals(body.subarray(1000, 3000))).toBe(true);
  });

  test('s3 sync --delete to the scratch bucket: new, changed and removed files', async () => {
    const source = join(directory, 'cli-sync');
    mkdirSync(join(source, 'sub'), { recursive: true });
    writeFileSync(join(source, 'a.txt'), 'alpha');
    writeFileSync(join(source, 'sub/b.txt'), 'beta');
    await aws('s3', 'sync', '--delete', source, `s3://${SCRATCH}/sync`);
    rmSync(join(source, 'sub/b.txt'));
    writeFileSync(join(source, 'a.txt'), 'alpha, longer now');
    writeFileSync(join(source, 'c.txt'), 'gamma');
    await aws('s3', 'sync', '--delete', source, `s3://${SCRATCH}/sync`);
    const listed = (await aws('s3', 'ls', '--recursive', `s3://${SCRATCH}/sync/`)).stdout;
    expect(listed).toMatch(/17 sync\/a\.txt/);
    expect(listed).toMatch(/5 sync\/c\.txt/);
    expect(listed).not.toMatch(/b\.txt/);
  });

  test('s3 mb / s3 rb create and delete a coffer of a coffer class, seen by the COS SDK; mb of an existing bucket reports BucketAlreadyOwnedByYou', async () => {
    const withClasses = await startRecordedGateway({
      coffers: ['fixed-1250000000'],
      accessKeys: [{ secretId: ACCESS_KEY, secretKey: SECRET_KEY, grants: [{ coffer: '*', actions: ['*'] }] }],
      cofferClasses: { team: { pattern: 'team-*-1250000000' } },
    });
    const cli = (...args: string[]) => run(AWS, ['--endpoint-url', `http://127.0.0.1:${withClasses.port}`, ...args], { env: awsEnv() });
    const cos = new COS({ SecretId: ACCESS_KEY, SecretKey: SECRET_KEY, Protocol: 'http:', Proxy: `http://127.0.0.1:${withClasses.port}` });
    const cosStatus = (Bucket: string): Promise<number> =>
      cos.getBucket({ Bucket, Region: 'ap-guangzhou' }).then(
        () => 200,
        (error: { statusCode?: number }) => error.statusCode ?? -1,
      );
    try {
      expect((await cli('s3', 'mb', 's3://team-cli-1250000000')).stdout).toMatch(/make_bucket: team-cli-1250000000/);
      expect(await cosStatus('team-cli-1250000000')).toBe(200);
      expect((await cli('s3', 'ls')).stdout).toMatch(/team-cli-1250000000/);
      const again = await cli('s3', 'mb', 's3://team-cli-1250000000').catch((error: { stderr: string }) => error);
      expect((again as { stderr: string }).stderr).toMatch(/BucketAlreadyOwnedByYou/);
      expect((await cli('s3', 'rb', 's3://team-cli-1250000000')).stdout).toMatch(/remove_bucket: team-cli-1250000000/);
      expect(await cosStatus('team-cli-1250000000')).toBe(404);
    } finally {
      await withClasses.stop();
    }
  });

  test('both dialects on one object: written with the COS SDK, read with aws-cli, and the reverse', async () => {
    const cos = new COS({ SecretId: ACCESS_KEY, SecretKey: SECRET_KEY, Protocol: 'http:', Domain: `127.0.0.1:${gateway.port}/{Bucket}` });
    const fromCos = randomBytes(4096);
    await new Promise<void>((resolve, reject) => cos.putObject({ Bucket: BUCKET, Region: 'ap-guangzhou', Key: 'cross/from-cos.bin', Body: fromCos }, (err: unknown) => (err ? reject(err) : resolve())));
    const out = join(directory, 'from-cos.bin');
    await aws('s3', 'cp', `s3://${BUCKET}/cross/from-cos.bin`, out);
    expect(readFileSync(out).equals(fromCos)).toBe(true);

    const fromCli = randomBytes(5000);
    const file = join(directory, 'from-cli.bin');
    writeFileSync(file, fromCli);
    await aws('s3', 'cp', file, `s3://${BUCKET}/cross/from-cli.bin`);
    const read = await new Promise<Buffer>((resolve, reject) => cos.getObject({ Bucket: BUCKET, Region: 'ap-guangzhou', Key: 'cross/from-cli.bin' }, (err: unknown, data: { Body: Buffer }) => (err ? reject(err) : resolve(data.Body))));
    expect(read.equals(fromCli)).toBe(true);
  });
});
