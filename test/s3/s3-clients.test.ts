/**
 * S3 clients against the gateway as `npm start` runs it (embedded upstream, local keyring, the demo
 * coffer and access key): the AWS SDK for JavaScript on its defaults and aws-cli (the Debian package,
 * /usr/bin/aws). Real HTTP, real signatures, the same at-rest format as the CDCS dialect — an object
 * written with one dialect is read with the other; `aws s3 mb` / `rb` against a gateway with a coffer
 * class create and delete coffers the CDCS side sees.
 */
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { CopyObjectCommand, DeleteObjectCommand, DeleteObjectsCommand, GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client, S3ServiceException } from '@aws-sdk/client-s3';
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

  test('lib-storage Upload of a body of unknown length (multipart, parts streamed with trailing checksums)', async () => {
    const body = randomBytes(12 * MiB + 12345);
    const upload = new Upload({ client: s3, params: { Bucket: BUCKET, Key: 'sdk/multipart.bin', Body: Readable.from([body.subarray(0, 5 * MiB), body.subarray(5 * MiB)]) }, partSize: 5 * MiB });
    await upload.done();
    const got = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'sdk/multipart.bin' }));
    expect(md5(Buffer.from(await (got.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray()))).toBe(md5(body));
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
