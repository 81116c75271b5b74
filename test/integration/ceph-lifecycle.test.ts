/**
 * Coffer lifecycle end to end on Ceph RGW, whose lifecycle engine runs with `rgw lc debug interval =
 * 10` (a lifecycle "day" lasts 10 s; test/support/ceph/start-rgw.sh): PutCofferLifecycle and
 * GetCofferLifecycle with the official COS SDK (XML) and as the CDCS JSON documents (raw signed
 * requests), the bucket's other rules kept, and expiry — objects disappear from the gateway at once
 * and from Ceph later, by Ceph's own engine. Nothing here is timed: waits poll with generous bounds.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateBucketCommand, GetBucketLifecycleConfigurationCommand, ListObjectsV2Command, PutBucketLifecycleConfigurationCommand, S3Client } from '@aws-sdk/client-s3';
import { loadConfig } from '../../src/config';
import { createLogger } from '../../src/observability/logger';
import { startGateway, type RunningGateway } from '../../src/app/serve';
import { cephRgw, describeWithCeph } from '../support/ceph-rgw';
import { send, signed, type SentAnswer } from '../support/cos-signed-request';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const COS = require('cos-nodejs-sdk-v5');

const Region = 'ap-guangzhou';
const BUCKET = `coffer-lc-${randomBytes(4).toString('hex')}`;
const COFFER = 'expiring-1250000000';
const PREFIX = `lc-${randomBytes(6).toString('hex')}/`;
const ADMIN = { secretId: 'AKIDlcadmin', secretKey: 'lifecycle-admin-secret-0123456789' };
const WRITER = { secretId: 'AKIDlcwriter', secretKey: 'lifecycle-writer-secret-0123456789' };
const md5b64 = (body: Buffer): string => createHash('md5').update(body).digest('base64');

/** Polls `check` every `everyMs` until it returns true; fails after `bound` attempts (no timing assertion). */
async function eventually(check: () => Promise<boolean>, bound: number, everyMs = 1000): Promise<void> {
  for (let attempt = 0; attempt < bound; attempt += 1) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
  throw new Error(`condition not reached after ${bound} polls`);
}

describeWithCeph('coffer lifecycle on Ceph RGW (one lifecycle day = 10 s)', () => {
  const ceph = cephRgw() as NonNullable<ReturnType<typeof cephRgw>>;
  let directory: string;
  let gateway: RunningGateway;
  let s3: S3Client;
  let admin: any;
  let writer: any;

  const raw = (method: string, credentials = ADMIN, body = Buffer.alloc(0), headers: Record<string, string> = {}): Promise<SentAnswer> =>
    send(gateway.port, signed({ method, signedPath: `/${COFFER}`, params: [['lifecycle', '']], host: `127.0.0.1:${gateway.port}`, path: `/${COFFER}`, mode: 'header', credentials }), body, false, headers);

  const upstreamKeys = async (area: string): Promise<string[]> => ((await s3.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: `${PREFIX}${area}` }))).Contents ?? []).map((o) => o.Key as string);

  beforeAll(async () => {
    directory = mkdtempSync(join(tmpdir(), 'coffer-ceph-lifecycle-'));
    const credentials = { accessKeyId: ceph.accessKeyId, secretAccessKey: ceph.secretAccessKey };
    s3 = new S3Client({ endpoint: ceph.endpoint, region: ceph.region, forcePathStyle: true, credentials });
    await s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
    // The operator's own rule, which the gateway must keep.
    await s3.send(
      new PutBucketLifecycleConfigurationCommand({
        Bucket: BUCKET,
        LifecycleConfiguration: { Rules: [{ ID: 'operator-logs', Filter: { Prefix: 'logs/' }, Status: 'Enabled', Expiration: { Days: 30 }, NoncurrentVersionExpiration: { NoncurrentDays: 5 } }] },
      }),
    );
    const file = join(directory, 'config.yaml');
    writeFileSync(
      file,
      JSON.stringify({
        server: { port: 0, adminPort: 0 },
        auth: {
          accessKeys: [
            { ...ADMIN, grants: [{ coffer: COFFER, actions: ['*'] }] },
            { ...WRITER, grants: [{ coffer: COFFER, actions: ['read', 'write', 'list'] }] },
          ],
        },
        keyring: { directory: join(directory, 'keyring') },
        lifecycle: { dayLengthSeconds: 10 },
        coffers: {
          [COFFER]: {
            upstream: { endpoint: ceph.endpoint, region: ceph.region, bucket: BUCKET, prefix: PREFIX, credentials: { accessKeyId: ceph.accessKeyId, secretAccessKey: ceph.secretAccessKey } },
            role: { type: 'static' },
            kms: { type: 'local', keyId: 'ceph-lifecycle' },
          },
        },
      }),
    );
    gateway = await startGateway(loadConfig({ file, env: {} }), { log: createLogger('silent') });
    await gateway.dependenciesAttempted;
    const sdk = (c: typeof ADMIN) => new COS({ SecretId: c.secretId, SecretKey: c.secretKey, Protocol: 'http:', Ip: `127.0.0.1:${gateway.port}` });
    admin = sdk(ADMIN);
    writer = sdk(WRITER);
  });

  afterAll(async () => {
    await gateway?.stop();
    rmSync(directory, { recursive: true, force: true });
  });

  test('a coffer without a configuration: GetCofferLifecycle answers 404 NoSuchLifecycleConfiguration', async () => {
    const answer = await raw('GET');
    expect([answer.status, answer.code]).toEqual([404, 'NoSuchLifecycleConfiguration']);
  });

  test('the CDCS JSON form: Content-MD5 required, Days checked, the configuration read back as JSON', async () => {
    const body = Buffer.from(JSON.stringify({ Rule: [{ Expiration: { Days: 3 } }] }));
    expect(await raw('PUT', ADMIN, body).then((a) => [a.status, a.code])).toEqual([400, 'InvalidRequest']);
    expect(await raw('PUT', ADMIN, body, { 'content-md5': md5b64(Buffer.from('other')) }).then((a) => [a.status, a.code])).toEqual([400, 'BadDigest']);
    const tooLong = Buffer.from(JSON.stringify({ Rule: [{ Expiration: { Days: 3651 } }] }));
    expect(await raw('PUT', ADMIN, tooLong, { 'content-md5': md5b64(tooLong) }).then((a) => [a.status, a.code])).toEqual([400, 'InvalidArgument']);
    const notJson = Buffer.from('{"Rule":');
    expect(await raw('PUT', ADMIN, notJson, { 'content-md5': md5b64(notJson) }).then((a) => [a.status, a.code])).toEqual([400, 'MalformedXML']);
    // Nothing was recorded by the refused requests.
    expect((await raw('GET')).code).toBe('NoSuchLifecycleConfiguration');

    // A writer may upload, but expiry removes data: configuring it needs `manage`.
    expect(await raw('PUT', WRITER, body, { 'content-md5': md5b64(body) }).then((a) => [a.status, a.code])).toEqual([403, 'AccessDenied']);

    const put = await raw('PUT', ADMIN, body, { 'content-md5': md5b64(body), 'content-type': 'application/json' });
    expect(put.status).toBe(200);
    const got = await raw('GET');
    expect(got.status).toBe(200);
    expect(got.headers?.['content-type']).toBe('application/json');
    expect(JSON.parse(got.text)).toEqual({ Rule: [{ Expiration: { Days: 3 } }] });
  });

  test("the COS SDK's putBucketLifecycle / getBucketLifecycle; the bucket keeps the operator's rule", async () => {
    await admin.putBucketLifecycle({ Bucket: COFFER, Region, Rules: [{ ID: 'expire-all', Status: 'Enabled', Filter: {}, Expiration: { Days: 1 } }] });
    const got = await admin.getBucketLifecycle({ Bucket: COFFER, Region });
    expect(got.Rules).toEqual([expect.objectContaining({ ID: 'expire-all', Status: 'Enabled', Expiration: { Days: '1' } })]);
    await expect(writer.putBucketLifecycle({ Bucket: COFFER, Region, Rules: [{ ID: 'x', Status: 'Enabled', Filter: {}, Expiration: { Days: 1 } }] })).rejects.toMatchObject({ statusCode: 403 });

    const rules = (await s3.send(new GetBucketLifecycleConfigurationCommand({ Bucket: BUCKET }))).Rules ?? [];
    const byId = new Map(rules.map((rule) => [rule.ID, rule]));
    // Kept as it was, including what the gateway does not model (noncurrent versions).
    expect(byId.get('operator-logs')).toMatchObject({ Filter: { Prefix: 'logs/' }, Expiration: { Days: 30 }, NoncurrentVersionExpiration: { NoncurrentDays: 5 } });
    expect(byId.get(`coffer-gateway:${COFFER}:manifests`)).toMatchObject({ Filter: { Prefix: `${PREFIX}m/` }, Expiration: { Days: 1 } });
    expect(byId.get(`coffer-gateway:${COFFER}:data`)).toMatchObject({ Filter: { Prefix: `${PREFIX}d/` }, Expiration: { Days: 2 }, AbortIncompleteMultipartUpload: { DaysAfterInitiation: 1 } });
    expect(rules).toHaveLength(6);
  });

  test('objects disappear from the gateway at once, from Ceph later, and their keys can be written again', async () => {
    const body = randomBytes(4096);
    await admin.putObject({ Bucket: COFFER, Region, Key: 'reports/old.bin', Body: body });
    const head = await admin.headObject({ Bucket: COFFER, Region, Key: 'reports/old.bin' });
    expect(head.statusCode).toBe(200);
    expect(await upstreamKeys('m/')).toEqual([`${PREFIX}m/reports/old.bin`]);

    // One day (10 s) after completion the gateway answers 404 and lists nothing.
    await eventually(
      async () =>
        (await admin.headObject({ Bucket: COFFER, Region, Key: 'reports/old.bin' }).then(
          () => 200,
          (e: { statusCode: number }) => e.statusCode,
        )) === 404,
      120,
    );
    await expect(admin.getObject({ Bucket: COFFER, Region, Key: 'reports/old.bin' })).rejects.toMatchObject({ statusCode: 404 });
    expect((await admin.getBucket({ Bucket: COFFER, Region })).Contents).toEqual([]);

    // Write-once holds for live objects only.
    const again = randomBytes(100);
    await admin.putObject({ Bucket: COFFER, Region, Key: 'reports/old.bin', Body: again });
    expect(Buffer.from((await admin.getObject({ Bucket: COFFER, Region, Key: 'reports/old.bin' })).Body).equals(again)).toBe(true);

    // Ceph's own engine removes everything of the coffer's data areas in time (the manifest after a day,
    // the data object after two); the coffer key and lifecycle record stay.
    await eventually(async () => (await upstreamKeys('m/')).length === 0 && (await upstreamKeys('d/')).length === 0, 300);
    expect((await upstreamKeys('k/')).sort()).toEqual([`${PREFIX}k/coffer-key`, `${PREFIX}k/lifecycle`]);
  }, 900_000);
});
