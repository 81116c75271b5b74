/**
 * A coffer keyed by AWS KMS — the real @aws-sdk/client-kms against the strict KMS test server
 * (JSON 1.1, SigV4 checked, encryption context enforced) — over Ceph RGW, driven by the COS SDK.
 * Proves one KMS call per upload, one Decrypt per other replica, and 409 KMSFailed before any upload.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { loadConfig } from '../../src/config';
import { createLogger } from '../../src/observability/logger';
import { startGateway, type RunningGateway } from '../../src/app/serve';
import { cephRgw, describeWithCeph } from '../support/ceph-rgw';
import { startKmsTestServer, type KmsTestServer } from '../support/kms-test-server';
import { sha256 } from '../support/digests';

// A bucket per run: the shared cluster (COFFER_TEST_CEPH) outlives runs, and coffers are write-once.
const KMS_BUCKET = `coffer-kms-${randomBytes(4).toString('hex')}`;

// eslint-disable-next-line @typescript-eslint/no-require-imports
const COS = require('cos-nodejs-sdk-v5');

const MiB = 1024 * 1024;
const Bucket = 'kms-1250000000';
const Region = 'ap-guangzhou';

describeWithCeph('AWS KMS-keyed coffer on Ceph RGW', () => {
  let directory: string;
  let kms: KmsTestServer;
  const gateways: RunningGateway[] = [];
  const clients: any[] = [];

  beforeAll(async () => {
    const ceph = cephRgw() as NonNullable<ReturnType<typeof cephRgw>>;
    directory = mkdtempSync(join(tmpdir(), 'coffer-kms-'));
    kms = await startKmsTestServer();
    // The gateway signs KMS calls with the coffer's credentials (static role: the upstream keys).
    kms.store.addUser(ceph.accessKeyId, ceph.secretAccessKey);
    const key = kms.createKey({ description: 'coffer key' });
    const s3 = new S3Client({ endpoint: ceph.endpoint, region: ceph.region, forcePathStyle: true, credentials: { accessKeyId: ceph.accessKeyId, secretAccessKey: ceph.secretAccessKey } });
    await s3.send(new CreateBucketCommand({ Bucket: KMS_BUCKET }));
    const file = join(directory, 'config.json');
    writeFileSync(
      file,
      JSON.stringify({
        server: { port: 0, adminPort: 0 },
        auth: { cos: { acceptKeyOnlyPath: true }, accessKeys: [{ secretId: 'AKIDkms', secretKey: 'kms-e2e-secret-key-0123456789', grants: [{ coffer: Bucket, actions: ['*'] }] }] },
        keyring: { directory: join(directory, 'keyring') },
        kms: { maxAttempts: 3 },
        coffers: {
          [Bucket]: {
            upstream: { endpoint: ceph.endpoint, region: ceph.region, bucket: KMS_BUCKET, credentials: { accessKeyId: ceph.accessKeyId, secretAccessKey: ceph.secretAccessKey } },
            role: { type: 'static' },
            kms: { type: 'aws-kms', keyId: key.arn, endpoint: kms.endpoint, region: 'us-east-1' },
          },
        },
      }),
    );
    for (let i = 0; i < 2; i += 1) {
      const gateway = await startGateway(loadConfig({ file, env: {} }), { log: createLogger('silent') });
      // Start-up readiness checks touch the upstream and the key provider; let their first round finish.
      await gateway.dependenciesAttempted;
      gateways.push(gateway);
      clients.push(new COS({ SecretId: 'AKIDkms', SecretKey: 'kms-e2e-secret-key-0123456789', Protocol: 'http:', Domain: `127.0.0.1:${gateway.port}/{Bucket}` }));
    }
  });

  afterAll(async () => {
    await Promise.all(gateways.map((g) => g.stop()));
    await kms?.close();
    rmSync(directory, { recursive: true, force: true });
  });

  test('one GenerateDataKey per upload, with the names as encryption context; another replica needs one Decrypt', async () => {
    const data = randomBytes(3 * MiB + 17);
    const file = join(directory, 'data.bin');
    writeFileSync(file, data);
    const before = kms.calls.length;
    await clients[0].sliceUploadFile({ Bucket, Region, Key: 'kms/object.bin', FilePath: file, ChunkSize: MiB });
    expect(sha256((await clients[0].getObject({ Bucket, Region, Key: 'kms/object.bin' })).Body)).toBe(sha256(data));
    // The object's data key, and (the coffer's first write) the coffer key that seals listing summaries (FORMAT.md §8.6).
    const uploadCalls = kms.calls.slice(before);
    expect(uploadCalls.map((c) => [c.operation, c.status, c.encryptionContext])).toEqual([
      ['GenerateDataKey', 200, { coffer: Bucket, key: 'kms/object.bin' }],
      ['GenerateDataKey', 200, { coffer: Bucket }],
    ]);
    const beforeRead = kms.calls.length;
    expect(sha256((await clients[1].getObject({ Bucket, Region, Key: 'kms/object.bin', Range: 'bytes=100-2000000' })).Body)).toBe(sha256(data.subarray(100, 2000001)));
    expect(sha256((await clients[1].getObject({ Bucket, Region, Key: 'kms/object.bin' })).Body)).toBe(sha256(data));
    expect(kms.calls.slice(beforeRead).map((c) => c.operation)).toEqual(['Decrypt']);
  });

  test('KMS throttled beyond the retry budget or denied → 409 KMSFailed, nothing started upstream', async () => {
    const error = (p: Promise<unknown>) =>
      p.then(
        () => ({ code: 'none' }),
        (e: any) => ({ code: e.code, statusCode: e.statusCode }),
      );
    kms.failNext(3, 'ThrottlingException', 'GenerateDataKey');
    const before = kms.calls.length;
    expect(await error(clients[0].multipartInit({ Bucket, Region, Key: 'throttled.bin' }))).toEqual({ code: 'KMSFailed', statusCode: 409 });
    expect(kms.calls.length - before).toBe(3);
    kms.failNext(1, 'AccessDeniedException', 'GenerateDataKey');
    const beforeDenied = kms.calls.length;
    expect(await error(clients[0].multipartInit({ Bucket, Region, Key: 'denied.bin' }))).toEqual({ code: 'KMSFailed', statusCode: 409 });
    expect(kms.calls.length - beforeDenied).toBe(1);
    const uploads = await clients[0].multipartList({ Bucket, Region });
    expect((uploads.Upload ?? []).map((u: any) => u.Key)).not.toContain('throttled.bin');
  });
});
