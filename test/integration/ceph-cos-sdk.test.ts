/**
 * The official COS SDK through the gateway to a real Ceph RADOS Gateway — with S3's 5 MiB minimum
 * part size and with 1 MiB (as COS allows) — plus the contract errors Ceph itself would get wrong.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateBucketCommand, GetObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { loadConfig } from '../../src/config';
import { createLogger } from '../../src/observability/logger';
import { startGateway, type RunningGateway } from '../../src/app/serve';
import { cephRgw, describeWithCeph } from '../support/ceph-rgw';
import { sha256 } from '../support/digests';

// A bucket per run: the shared cluster (COFFER_TEST_CEPH) outlives runs, and coffers are write-once.
const BIG_BUCKET = `coffer-big-${randomBytes(4).toString('hex')}`;
const SMALL_BUCKET = `coffer-small-${randomBytes(4).toString('hex')}`;

// eslint-disable-next-line @typescript-eslint/no-require-imports
const COS = require('cos-nodejs-sdk-v5');

const MiB = 1024 * 1024;
const Region = 'ap-guangzhou';
const coffers = { big: 'ceph5-1250000000', small: 'ceph1-1250000000' } as const;
/** A fresh key prefix per run: the buckets persist on the shared Ceph and coffers are write-once. */
const RUN_PREFIX = `coffer-${randomBytes(6).toString('hex')}/`;

describeWithCeph('COS SDK → gateway → Ceph RGW', () => {
  const ceph = cephRgw() as NonNullable<ReturnType<typeof cephRgw>>;
  let directory: string;
  let gateway: RunningGateway;
  let cos: any;
  let s3: S3Client;
  let s3Small: S3Client;

  beforeAll(async () => {
    directory = mkdtempSync(join(tmpdir(), 'coffer-ceph-e2e-'));
    const credentials = { accessKeyId: ceph.accessKeyId, secretAccessKey: ceph.secretAccessKey };
    s3 = new S3Client({ endpoint: ceph.endpoint, region: ceph.region, forcePathStyle: true, credentials });
    s3Small = new S3Client({ endpoint: ceph.endpoint1MiB, region: ceph.region, forcePathStyle: true, credentials });
    await s3.send(new CreateBucketCommand({ Bucket: BIG_BUCKET }));
    await s3Small.send(new CreateBucketCommand({ Bucket: SMALL_BUCKET }));
    const coffer = (endpoint: string, bucket: string, minPartSize: string) => ({
      upstream: { endpoint, region: ceph.region, bucket, prefix: RUN_PREFIX, minPartSize, credentials: { accessKeyId: ceph.accessKeyId, secretAccessKey: ceph.secretAccessKey } },
      role: { type: 'static' },
      kms: { type: 'local', keyId: 'ceph-test' },
    });
    const file = join(directory, 'config.yaml');
    writeFileSync(
      file,
      JSON.stringify({
        server: { port: 0, adminPort: 0 },
        auth: { cos: { acceptKeyOnlyPath: true }, accessKeys: [{ secretId: 'AKIDceph', secretKey: 'ceph-e2e-secret-key-0123456789', grants: [{ coffer: '*', actions: ['*'] }] }] },
        keyring: { directory: join(directory, 'keyring') },
        coffers: { [coffers.big]: coffer(ceph.endpoint, BIG_BUCKET, '5MiB'), [coffers.small]: coffer(ceph.endpoint1MiB, SMALL_BUCKET, '1MiB') },
      }),
    );
    gateway = await startGateway(loadConfig({ file, env: {} }), { log: createLogger('silent') });
    // Start-up readiness checks touch the upstream and the key provider; let their first round finish.
    await gateway.dependenciesAttempted;
    // Virtual-hosted (default Domain, sent to the gateway's address): this key reaches every coffer,
    // so only a signed host binds its key-only signatures to one (docs/ARCHITECTURE.md).
    cos = new COS({ SecretId: 'AKIDceph', SecretKey: 'ceph-e2e-secret-key-0123456789', Protocol: 'http:', Ip: `127.0.0.1:${gateway.port}` });
  });

  afterAll(async () => {
    await gateway?.stop();
    rmSync(directory, { recursive: true, force: true });
  });

  const copied = async (): Promise<number> => (await gateway.metrics.completeCopiedBytes.get()).values[0]?.value ?? 0;

  test.each([
    ['5 MiB minimum', coffers.big, BIG_BUCKET, () => s3],
    ['1 MiB minimum', coffers.small, SMALL_BUCKET, () => s3Small],
  ])('sliceUploadFile, ranged reads, byte-exact both ways, no plaintext upstream (%s)', async (label, Bucket, bucket, client) => {
    const data = randomBytes(9 * MiB + 4321);
    const file = join(directory, `${Bucket}.bin`);
    writeFileSync(file, data);
    const before = await copied();
    await cos.sliceUploadFile({ Bucket, Region, Key: 'backups/2026/db.bin', FilePath: file, ChunkSize: MiB });
    const extra = (await copied()) - before;
    process.stderr.write(`[ceph] ${label}: extra upstream bytes for a ${data.length}-byte upload in 1 MiB parts: ${extra}\n`);
    if (Bucket === coffers.small) expect(extra).toBe(0);
    else expect(extra).toBeGreaterThan(8 * MiB); // the 1 MiB parts were staged and copied once
    expect(sha256((await cos.getObject({ Bucket, Region, Key: 'backups/2026/db.bin' })).Body)).toBe(sha256(data));
    for (const [start, end] of [
      [MiB - 3, 2 * MiB + 3],
      [5 * MiB, 9 * MiB],
      [0, 10],
    ] as const) {
      const ranged = await cos.getObject({ Bucket, Region, Key: 'backups/2026/db.bin', Range: `bytes=${start}-${end}` });
      expect(sha256(ranged.Body)).toBe(sha256(data.subarray(start, end + 1)));
    }
    const listing = await client().send(new ListObjectsV2Command({ Bucket: bucket, Prefix: RUN_PREFIX }));
    const keys = (listing.Contents ?? []).map((o) => o.Key as string).sort();
    // Data object + manifest + the coffer key record (FORMAT.md §8.6); every bookkeeping object is gone.
    expect(keys.map((key) => key.split('/')[1])).toEqual(['d', 'k', 'm']);
    for (const key of keys) {
      const stored = Buffer.from(await ((await client().send(new GetObjectCommand({ Bucket: bucket, Key: key }))).Body as any).transformToByteArray());
      expect(stored.includes(data.subarray(2 * MiB, 2 * MiB + 64))).toBe(false);
    }
  });

  test('resume after an interruption sends only the missing parts', async () => {
    const data = randomBytes(5 * MiB + 10);
    const file = join(directory, 'resume.bin');
    writeFileSync(file, data);
    const init = await cos.multipartInit({ Bucket: coffers.big, Region, Key: 'resume.bin' });
    for (const n of [2, 3]) await cos.multipartUpload({ Bucket: coffers.big, Region, Key: 'resume.bin', UploadId: init.UploadId, PartNumber: n, Body: data.subarray((n - 1) * MiB, n * MiB) });
    const count = async () => (await gateway.metrics.requests.get()).values.filter((v) => v.labels.operation === 'UploadPart').reduce((s, v) => s + v.value, 0);
    const before = await count();
    await cos.sliceUploadFile({ Bucket: coffers.big, Region, Key: 'resume.bin', FilePath: file, ChunkSize: MiB });
    expect((await count()) - before).toBe(4);
    expect(sha256((await cos.getObject({ Bucket: coffers.big, Region, Key: 'resume.bin' })).Body)).toBe(sha256(data));
  });

  test('the gateway enforces what Ceph would not: part order at Complete, unknown uploads at Complete', async () => {
    const error = (p: Promise<unknown>) =>
      p.then(
        () => 'none',
        (e: any) => e.code,
      );
    const init = await cos.multipartInit({ Bucket: coffers.big, Region, Key: 'order.bin' });
    const a = await cos.multipartUpload({ Bucket: coffers.big, Region, Key: 'order.bin', UploadId: init.UploadId, PartNumber: 1, Body: randomBytes(6 * MiB) });
    const b = await cos.multipartUpload({ Bucket: coffers.big, Region, Key: 'order.bin', UploadId: init.UploadId, PartNumber: 2, Body: randomBytes(10) });
    expect(
      await error(
        cos.multipartComplete({
          Bucket: coffers.big,
          Region,
          Key: 'order.bin',
          UploadId: init.UploadId,
          Parts: [
            { PartNumber: 2, ETag: b.ETag },
            { PartNumber: 1, ETag: a.ETag },
          ],
        }),
      ),
    ).toBe('InvalidPartOrder');
    expect(await error(cos.multipartComplete({ Bucket: coffers.big, Region, Key: 'order.bin', UploadId: 'e'.repeat(32), Parts: [{ PartNumber: 1, ETag: a.ETag }] }))).toBe('NoSuchUpload');
    await cos.multipartAbort({ Bucket: coffers.big, Region, Key: 'order.bin', UploadId: init.UploadId });
  });
});
