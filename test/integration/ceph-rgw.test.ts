/**
 * The Ceph RADOS Gateway the integration tests use is a real, strict S3 upstream: SigV4 is checked,
 * multipart rules are enforced at Complete, unknown uploads are refused, url encoding of listings works,
 * and the 1 MiB gateway really accepts 1 MiB non-last parts. Talks to Ceph directly (no gateway).
 */
import { createHash, randomBytes } from 'node:crypto';
import {
  CompleteMultipartUploadCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  ListBucketsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
  UploadPartCommand,
  type CompletedPart,
} from '@aws-sdk/client-s3';
import { addCephGateway, cephRgw, describeWithCeph, stopCephGateway, type CephRgw } from '../support/ceph-rgw';
import { sha256 } from '../support/digests';

const MiB = 1024 * 1024;

function client(endpoint: string, ceph: CephRgw, secretAccessKey = ceph.secretAccessKey): S3Client {
  return new S3Client({
    endpoint,
    region: ceph.region,
    forcePathStyle: true,
    credentials: { accessKeyId: ceph.accessKeyId, secretAccessKey },
    // RGW 16 answers aws-chunked (streamed checksum) uploads with 411 Length Required.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}

/** The S3 error code and HTTP status a request failed with ('none' if it succeeded). */
async function failure(request: Promise<unknown>): Promise<{ code: string; status: number | undefined }> {
  try {
    await request;
    return { code: 'none', status: undefined };
  } catch (error) {
    if (!(error instanceof S3ServiceException)) throw error;
    return { code: error.name, status: error.$metadata.httpStatusCode };
  }
}

describeWithCeph('Ceph RGW is a real, strict S3 upstream', () => {
  const bucket = `strict-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
  let ceph: CephRgw;
  let s3: S3Client;
  let s3Small: S3Client;

  /** Uploads the given parts to a new multipart upload; returns its id and the parts for Complete. */
  async function uploadParts(target: S3Client, key: string, parts: readonly Buffer[]): Promise<{ UploadId: string; Parts: CompletedPart[] }> {
    const { UploadId } = await target.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key }));
    if (UploadId === undefined) throw new Error('no UploadId');
    const done: CompletedPart[] = [];
    for (const [index, Body] of parts.entries()) {
      const PartNumber = index + 1;
      const { ETag } = await target.send(new UploadPartCommand({ Bucket: bucket, Key: key, UploadId, PartNumber, Body }));
      done.push({ PartNumber, ETag });
    }
    return { UploadId, Parts: done };
  }

  const complete = (target: S3Client, key: string, upload: { UploadId: string; Parts: CompletedPart[] }) =>
    target.send(new CompleteMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: upload.UploadId, MultipartUpload: { Parts: upload.Parts } }));

  const read = async (target: S3Client, key: string): Promise<Uint8Array> => {
    const response = await target.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    return (response.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray();
  };

  beforeAll(async () => {
    ceph = cephRgw() as CephRgw;
    process.stderr.write(`[ceph] cluster start (global setup): ${ceph.startMs === undefined ? 'n/a (started outside jest)' : `${(ceph.startMs / 1000).toFixed(1)} s`}\n`);
    s3 = client(ceph.endpoint, ceph);
    s3Small = client(ceph.endpoint1MiB, ceph);
    await s3.send(new CreateBucketCommand({ Bucket: bucket }));
  });

  afterAll(() => {
    s3?.destroy();
    s3Small?.destroy();
  });

  test('the two gateways have the expected minimum part sizes and share one cluster', async () => {
    expect(ceph.gateways.map((g) => g.minPartSize).sort((a, b) => a - b)).toEqual([MiB, 5 * MiB]);
    const buckets = await s3Small.send(new ListBucketsCommand({}));
    expect(buckets.Buckets?.map((b) => b.Name)).toContain(bucket);
  });

  test('put and get round-trip byte-exact', async () => {
    const body = randomBytes(3 * MiB + 17);
    const put = await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'plain.bin', Body: body }));
    expect(put.ETag).toBe(`"${createHash('md5').update(body).digest('hex')}"`);
    expect(sha256(await read(s3, 'plain.bin'))).toBe(sha256(body));
    expect(sha256(await read(s3Small, 'plain.bin'))).toBe(sha256(body));
  });

  test('a too-small non-last part fails at Complete with EntityTooSmall (5 MiB gateway)', async () => {
    const upload = await uploadParts(s3, 'too-small.bin', [randomBytes(MiB), randomBytes(10)]);
    expect(await failure(complete(s3, 'too-small.bin', upload))).toEqual({ code: 'EntityTooSmall', status: 400 });
  });

  test('a bogus part ETag fails at Complete with InvalidPart', async () => {
    const upload = await uploadParts(s3, 'bogus-etag.bin', [randomBytes(100)]);
    const bogus = { ...upload, Parts: [{ PartNumber: 1, ETag: '"0123456789abcdef0123456789abcdef"' }] };
    expect(await failure(complete(s3, 'bogus-etag.bin', bogus))).toEqual({ code: 'InvalidPart', status: 400 });
  });

  test('UploadPart to an unknown upload fails with NoSuchUpload', async () => {
    const request = s3.send(new UploadPartCommand({ Bucket: bucket, Key: 'nowhere.bin', UploadId: '2~notAnUploadIdOfThisCluster', PartNumber: 1, Body: randomBytes(10) }));
    expect(await failure(request)).toEqual({ code: 'NoSuchUpload', status: 404 });
  });

  test('a wrong secret key fails with 403 SignatureDoesNotMatch', async () => {
    const forged = client(ceph.endpoint, ceph, `${ceph.secretAccessKey}x`);
    try {
      expect(await failure(forged.send(new PutObjectCommand({ Bucket: bucket, Key: 'forged.bin', Body: 'x' })))).toEqual({ code: 'SignatureDoesNotMatch', status: 403 });
      expect(await failure(forged.send(new ListObjectsV2Command({ Bucket: bucket })))).toEqual({ code: 'SignatureDoesNotMatch', status: 403 });
    } finally {
      forged.destroy();
    }
  });

  test('ListObjectsV2 with encoding-type=url round-trips keys with spaces and unicode', async () => {
    const keys = ['dir one/naïve 雪 file.txt', 'dir one/plus+and&equals=.txt', 'dir one/ü/€ 100%.txt'];
    for (const Key of keys) await s3.send(new PutObjectCommand({ Bucket: bucket, Key, Body: Key }));
    const listing = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: 'dir one/', EncodingType: 'url' }));
    expect(listing.EncodingType).toBe('url');
    const raw = (listing.Contents ?? []).map((o) => o.Key as string);
    expect(raw).toHaveLength(keys.length);
    for (const key of raw) expect(key).toMatch(/^[\x21-\x7e]+$/); // really encoded: no spaces, no raw unicode
    const decoded = raw.map((key) => decodeURIComponent(key.replace(/\+/g, ' ')));
    expect([...decoded].sort()).toEqual([...keys].sort());
    for (const key of decoded) expect(Buffer.from(await read(s3, key)).toString()).toBe(key);
  });

  test('the 1 MiB gateway completes an upload with a 1 MiB non-last part, and refuses one byte less', async () => {
    const parts = [randomBytes(MiB), randomBytes(MiB), randomBytes(12345)];
    const upload = await uploadParts(s3Small, 'one-mib-parts.bin', parts);
    const completed = await complete(s3Small, 'one-mib-parts.bin', upload);
    expect(completed.Key).toBe('one-mib-parts.bin');
    expect(sha256(await read(s3Small, 'one-mib-parts.bin'))).toBe(sha256(Buffer.concat(parts)));
    const short = await uploadParts(s3Small, 'one-mib-short.bin', [randomBytes(MiB - 1), randomBytes(10)]);
    expect(await failure(complete(s3Small, 'one-mib-short.bin', short))).toEqual({ code: 'EntityTooSmall', status: 400 });
  });

  test('a third gateway can be added to the running cluster and stopped again (timings printed)', async () => {
    const port = 7489;
    let begun = Date.now();
    const connection = await addCephGateway(ceph.scratch, { port, minPartSize: 2 * MiB });
    const addMs = Date.now() - begun;
    const extra = client(`http://127.0.0.1:${port}`, ceph);
    try {
      expect(connection.gateways.find((g) => g.port === port)?.minPartSize).toBe(2 * MiB);
      expect(sha256(await read(extra, 'plain.bin'))).toBe(sha256(await read(s3, 'plain.bin')));
      const upload = await uploadParts(extra, 'two-mib.bin', [randomBytes(MiB), randomBytes(10)]);
      expect(await failure(complete(extra, 'two-mib.bin', upload))).toEqual({ code: 'EntityTooSmall', status: 400 });
    } finally {
      extra.destroy();
      begun = Date.now();
      await stopCephGateway(ceph.scratch, port);
    }
    const stopMs = Date.now() - begun;
    process.stderr.write(`[ceph] extra radosgw (2 MiB minimum): added in ${addMs} ms, stopped in ${stopMs} ms\n`);
  });
});
