/**
 * "Nothing lost" and statelessness against a real Ceph RGW (reliability-checklist.md a–d):
 * several gateway processes serve one upload; a client that disconnects mid-part leaves the
 * previous version of that part intact and nothing partial upstream; the retried upload completes
 * byte-exact.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateBucketCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { loadConfig } from '../../src/config';
import { createLogger } from '../../src/observability/logger';
import { startGateway, type RunningGateway } from '../../src/app/serve';
import { cephRgw, describeWithCeph } from '../support/ceph-rgw';
import { md5Etag, sha256 } from '../support/digests';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const COS = require('cos-nodejs-sdk-v5');

const MiB = 1024 * 1024;
// A bucket per run: the shared cluster outlives runs, and coffers are write-once.
const REPLICAS_BUCKET = `coffer-replicas-${randomBytes(4).toString('hex')}`;
const Bucket = 'replicas-1250000000';
const Region = 'ap-guangzhou';

describeWithCeph('statelessness and nothing-lost on Ceph RGW', () => {
  const ceph = cephRgw() as NonNullable<ReturnType<typeof cephRgw>>;
  let directory: string;
  const gateways: RunningGateway[] = [];
  const clients: any[] = [];

  beforeAll(async () => {
    directory = mkdtempSync(join(tmpdir(), 'coffer-replicas-'));
    const s3 = new S3Client({ endpoint: ceph.endpoint, region: ceph.region, forcePathStyle: true, credentials: { accessKeyId: ceph.accessKeyId, secretAccessKey: ceph.secretAccessKey } });
    await s3.send(new CreateBucketCommand({ Bucket: REPLICAS_BUCKET }));
    const file = join(directory, 'config.json');
    writeFileSync(
      file,
      JSON.stringify({
        server: { port: 0, adminPort: 0 },
        auth: { cos: { acceptKeyOnlyPath: true }, accessKeys: [{ secretId: 'AKIDreplicas', secretKey: 'replicas-secret-key-0123456789', grants: [{ coffer: Bucket, actions: ['*'] }] }] },
        // Replicas share the keyring (in production: KMS); they share nothing else.
        keyring: { directory: join(directory, 'keyring') },
        coffers: {
          [Bucket]: {
            upstream: { endpoint: ceph.endpoint, region: ceph.region, bucket: REPLICAS_BUCKET, credentials: { accessKeyId: ceph.accessKeyId, secretAccessKey: ceph.secretAccessKey } },
            role: { type: 'static' },
            kms: { type: 'local', keyId: 'replicas' },
          },
        },
      }),
    );
    for (let i = 0; i < 3; i += 1) {
      const gateway = await startGateway(loadConfig({ file, env: {} }), { log: createLogger('silent') });
      // Start-up readiness checks touch the upstream and the key provider; let their first round finish.
      await gateway.dependenciesAttempted;
      gateways.push(gateway);
      clients.push(new COS({ SecretId: 'AKIDreplicas', SecretKey: 'replicas-secret-key-0123456789', Protocol: 'http:', Domain: `127.0.0.1:${gateway.port}/{Bucket}` }));
    }
  });

  afterAll(async () => {
    await Promise.all(gateways.map((g) => g.stop()));
    rmSync(directory, { recursive: true, force: true });
  });

  test('three gateways serve one upload: initiate on one, parts on each, list and complete on others, read from any', async () => {
    const parts = [randomBytes(6 * MiB), randomBytes(MiB), randomBytes(MiB), randomBytes(4000)];
    const Key = 'replicated/object.bin';
    const init = await clients[0].multipartInit({ Bucket, Region, Key });
    for (const [i, body] of parts.entries()) {
      const answer = await clients[i % 3].multipartUpload({ Bucket, Region, Key, UploadId: init.UploadId, PartNumber: i + 1, Body: body });
      expect(answer.ETag).toBe(md5Etag(body));
    }
    const listed = await clients[2].multipartListPart({ Bucket, Region, Key, UploadId: init.UploadId });
    expect(listed.Part.map((p: any) => p.ETag)).toEqual(parts.map(md5Etag));
    const uploads = await clients[1].multipartList({ Bucket, Region });
    expect(uploads.Upload.map((u: any) => u.UploadId)).toContain(init.UploadId);
    await clients[1].multipartComplete({ Bucket, Region, Key, UploadId: init.UploadId, Parts: parts.map((p, i) => ({ PartNumber: i + 1, ETag: md5Etag(p) })) });
    for (const client of clients) expect(sha256((await client.getObject({ Bucket, Region, Key })).Body)).toBe(sha256(Buffer.concat(parts)));
  });

  test('a client that disconnects mid-part: the previous version stays, nothing partial becomes visible, the retry completes', async () => {
    const Key = 'disconnect.bin';
    const first = randomBytes(6 * MiB);
    const init = await clients[0].multipartInit({ Bucket, Region, Key });
    await clients[0].multipartUpload({ Bucket, Region, Key, UploadId: init.UploadId, PartNumber: 1, Body: first });
    for (const fraction of [0, 0.5, 0.999]) {
      // Re-upload part 1 with other bytes, and hang up after a fraction of the body.
      const gateway = gateways[1] as RunningGateway;
      const cos = clients[1];
      const url = cos.getObjectUrl({ Bucket, Region, Key, Sign: true, Query: { partNumber: '1', uploadId: init.UploadId }, Method: 'PUT' }, () => undefined);
      const path = url.replace(/^http:\/\/[^/]+/, '');
      await new Promise<void>((resolve) => {
        const req = request({ host: '127.0.0.1', port: gateway.port, method: 'PUT', path, headers: { 'content-length': String(6 * MiB) } });
        req.on('error', () => resolve());
        req.on('response', (res) => {
          res.resume();
          res.on('end', () => resolve());
        });
        req.write(randomBytes(Math.floor(6 * MiB * fraction)), () => setTimeout(() => req.destroy(), 50));
      });
      await new Promise((r) => setTimeout(r, 200));
      const listed = await clients[2].multipartListPart({ Bucket, Region, Key, UploadId: init.UploadId });
      expect(listed.Part.map((p: any) => [p.PartNumber, p.ETag, p.Size])).toEqual([['1', md5Etag(first), String(first.length)]]);
    }
    const second = randomBytes(200);
    await clients[2].multipartUpload({ Bucket, Region, Key, UploadId: init.UploadId, PartNumber: 2, Body: second });
    await clients[0].multipartComplete({
      Bucket,
      Region,
      Key,
      UploadId: init.UploadId,
      Parts: [
        { PartNumber: 1, ETag: md5Etag(first) },
        { PartNumber: 2, ETag: md5Etag(second) },
      ],
    });
    expect(sha256((await clients[1].getObject({ Bucket, Region, Key })).Body)).toBe(sha256(Buffer.concat([first, second])));
    const s3 = new S3Client({ endpoint: ceph.endpoint, region: ceph.region, forcePathStyle: true, credentials: { accessKeyId: ceph.accessKeyId, secretAccessKey: ceph.secretAccessKey } });
    const left = await s3.send(new ListObjectsV2Command({ Bucket: REPLICAS_BUCKET, Prefix: 'p/' }));
    expect(left.KeyCount ?? 0).toBe(0);
  });
});
