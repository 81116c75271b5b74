/**
 * Created coffers on Ceph RGW (lifecycle engine sped up: one lifecycle day = 10 s, see
 * test/support/ceph/start-rgw.sh): a coffer created with the COS SDK's putBucket gets a lifecycle
 * configuration; DeleteCoffer refuses it while its object lives, deletes it once the object has
 * expired, and takes exactly its own rules out of the bucket's lifecycle configuration — the
 * operator's rule and another created coffer's rules stay — and its bytes out of the bucket.
 * Nothing here is timed: waits poll with generous bounds.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateBucketCommand, GetBucketLifecycleConfigurationCommand, ListObjectsV2Command, PutBucketLifecycleConfigurationCommand, S3Client } from '@aws-sdk/client-s3';
import { loadConfig } from '../../src/config';
import { createLogger } from '../../src/observability/logger';
import { startGateway, type RunningGateway } from '../../src/app/serve';
import { cephRgw, describeWithCeph } from '../support/ceph-rgw';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const COS = require('cos-nodejs-sdk-v5');

const Region = 'ap-guangzhou';
const BUCKET = `coffer-cc-${randomBytes(4).toString('hex')}`;
const BASE = `cc-${randomBytes(6).toString('hex')}/`;
const ADMIN = { secretId: 'AKIDccadmin', secretKey: 'created-coffers-admin-secret-0123456789' };
const SHORT = 'team-short-1250000000';
const KEPT = 'team-kept-1250000000';

async function eventually(check: () => Promise<boolean>, bound: number, everyMs = 1000): Promise<void> {
  for (let attempt = 0; attempt < bound; attempt += 1) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
  throw new Error(`condition not reached after ${bound} polls`);
}

describeWithCeph('created coffers on Ceph RGW (one lifecycle day = 10 s)', () => {
  const ceph = cephRgw() as NonNullable<ReturnType<typeof cephRgw>>;
  let directory: string;
  let gateway: RunningGateway;
  let s3: S3Client;
  let admin: any;

  const ruleIds = async (): Promise<string[]> => ((await s3.send(new GetBucketLifecycleConfigurationCommand({ Bucket: BUCKET }))).Rules ?? []).map((r) => r.ID as string).sort();
  const keysUnder = async (prefix: string): Promise<string[]> => ((await s3.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: prefix }))).Contents ?? []).map((o) => o.Key as string);
  const codeOf = (promise: Promise<unknown>): Promise<string> =>
    promise.then(
      () => 'ok',
      (error: { statusCode?: number; code?: string }) => `${error.statusCode} ${error.code}`,
    );

  beforeAll(async () => {
    directory = mkdtempSync(join(tmpdir(), 'coffer-ceph-created-'));
    const credentials = { accessKeyId: ceph.accessKeyId, secretAccessKey: ceph.secretAccessKey };
    s3 = new S3Client({ endpoint: ceph.endpoint, region: ceph.region, forcePathStyle: true, credentials });
    await s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
    await s3.send(new PutBucketLifecycleConfigurationCommand({ Bucket: BUCKET, LifecycleConfiguration: { Rules: [{ ID: 'operator-logs', Filter: { Prefix: 'logs/' }, Status: 'Enabled', Expiration: { Days: 30 } }] } }));
    const upstream = (prefix: string) => ({ endpoint: ceph.endpoint, region: ceph.region, bucket: BUCKET, prefix, credentials: { accessKeyId: ceph.accessKeyId, secretAccessKey: ceph.secretAccessKey } });
    const file = join(directory, 'config.json');
    writeFileSync(
      file,
      JSON.stringify({
        server: { port: 0, adminPort: 0 },
        auth: { accessKeys: [{ ...ADMIN, grants: [{ coffer: '*', actions: ['*'] }] }] },
        keyring: { directory: join(directory, 'keyring') },
        lifecycle: { dayLengthSeconds: 10, cacheSeconds: 0 },
        coffers: { 'static-1250000000': { upstream: upstream(`${BASE}static/`), kms: { type: 'local', keyId: 'ceph-created' } } },
        cofferClasses: { team: { pattern: 'team-*-1250000000', coffer: { upstream: upstream(`${BASE}created/`), kms: { type: 'local', keyId: 'ceph-created' } } } },
      }),
    );
    gateway = await startGateway(loadConfig({ file, env: {} }), { log: createLogger('silent') });
    await gateway.dependenciesAttempted;
    admin = new COS({ SecretId: ADMIN.secretId, SecretKey: ADMIN.secretKey, Protocol: 'http:', Ip: `127.0.0.1:${gateway.port}` });
  });

  afterAll(async () => {
    await gateway?.stop();
    rmSync(directory, { recursive: true, force: true });
  });

  test("an expired coffer is deleted with its own lifecycle rules and bytes; the operator's and another coffer's rules stay", async () => {
    await admin.putBucket({ Bucket: SHORT, Region });
    await admin.putBucket({ Bucket: KEPT, Region });
    for (const Bucket of [SHORT, KEPT]) {
      await admin.putObject({ Bucket, Region, Key: 'report.txt', Body: 'expires' });
      await admin.putBucketLifecycle({ Bucket, Region, Rules: [{ ID: 'expire', Status: 'Enabled', Filter: {}, Expiration: { Days: 1 } }] });
    }
    const before = await ruleIds();
    expect(before).toContain('operator-logs');
    expect(before.filter((id) => id.startsWith(`coffer-gateway:${SHORT}:`)).length).toBe(5);
    expect(before.filter((id) => id.startsWith(`coffer-gateway:${KEPT}:`)).length).toBe(5);

    expect(await codeOf(admin.deleteBucket({ Bucket: SHORT, Region }))).toBe('409 CofferNotEmpty');
    // One lifecycle day (10 s) later the object has expired for the gateway, and the coffer can go.
    await eventually(async () => (await codeOf(admin.deleteBucket({ Bucket: SHORT, Region }))) === 'ok', 60);

    const after = await ruleIds();
    expect(after).toContain('operator-logs');
    expect(after.filter((id) => id.startsWith(`coffer-gateway:${SHORT}:`))).toEqual([]);
    expect(after.filter((id) => id.startsWith(`coffer-gateway:${KEPT}:`)).length).toBe(5);
    expect(await keysUnder(`${BASE}created/${SHORT}/`)).toEqual([]);
    expect(await keysUnder(`${BASE}created/_registry/r/${SHORT}`)).toEqual([]);
    expect((await keysUnder(`${BASE}created/${KEPT}/`)).length).toBeGreaterThan(0);
    expect(await codeOf(admin.getBucket({ Bucket: SHORT, Region }))).toBe('404 NoSuchCoffer');
    const listed = (await new COS({ SecretId: ADMIN.secretId, SecretKey: ADMIN.secretKey, Protocol: 'http:', Proxy: `http://127.0.0.1:${gateway.port}` }).getService({})).Buckets.map((b: { Name: string }) => b.Name).sort();
    expect(listed).toEqual(['static-1250000000', KEPT]);
  });
});
