/**
 * Coffer policies end to end with the official COS SDK (putBucketPolicy / getBucketPolicy /
 * deleteBucketPolicy against a coffer) over the embedded upstream: authorization is the configured
 * grants plus the coffer's policy, an explicit deny wins, resources are prefix-scoped, and only
 * callers allowed PutCofferPolicy change it.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../src/config';
import { createLogger } from '../../src/observability/logger';
import { startGateway, type RunningGateway } from '../../src/app/serve';
import { AbortMultipartUploadCommand, CopyObjectCommand, CreateMultipartUploadCommand, GetObjectCommand, HeadObjectCommand, ListPartsCommand, S3Client, UploadPartCopyCommand } from '@aws-sdk/client-s3';
import { send, signed } from '../support/cos-signed-request';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const COS = require('cos-nodejs-sdk-v5');

const Bucket = 'demo-1250000000';
const Region = 'ap-guangzhou';
const OWNER = { secretId: 'AKIDpolicyOwner', secretKey: 'policy-owner-secret-0123456789' };
const ALICE = { secretId: 'AKIDpolicyAlice', secretKey: 'policy-alice-secret-0123456789', principal: 'qcs::cam::uin/100000000001:uin/100000000011' };
const BOB = { secretId: 'AKIDpolicyBob', secretKey: 'policy-bob-secret-0123456789', principal: 'qcs::cam::uin/100000000001:uin/100000000022' };
const resource = (path: string): string => `qcs::cdcs:${Region}:uid/1250000000:${Bucket}/${path}`;

const POLICY = {
  Statement: [
    // Alice may only list by configuration: the policy lets her read reports/ and nothing else.
    { Principal: { qcs: [ALICE.principal] }, Effect: 'allow', Action: ['name/cdcs:GetObject', 'name/cdcs:CheckObject'], Resource: [resource('reports/*')] },
    // Bob may write everything by configuration; the policy denies him locked/.
    { Principal: { qcs: [BOB.principal] }, Effect: 'deny', Action: ['name/cdcs:*'], Resource: [resource('locked/*')] },
  ],
  version: '2.0',
};

let directory: string;
let gateway: RunningGateway;
let owner: any;
let alice: any;
let bob: any;

const statusOf = (promise: Promise<unknown>): Promise<number> =>
  promise.then(
    () => 200,
    (error: { statusCode?: number }) => error.statusCode ?? -1,
  );

beforeAll(async () => {
  directory = mkdtempSync(join(tmpdir(), 'coffer-policy-e2e-'));
  const file = join(directory, 'config.yaml');
  writeFileSync(
    file,
    JSON.stringify({
      server: { port: 0, adminPort: 0 },
      embeddedUpstream: { enabled: true, directory: join(directory, 'upstream') },
      demo: { enabled: true, secretId: OWNER.secretId, secretKey: OWNER.secretKey },
      keyring: { directory: join(directory, 'keyring') },
      auth: {
        accessKeys: [
          // An access key needs a grant: Alice may list, no more, by configuration.
          { secretId: ALICE.secretId, secretKey: ALICE.secretKey, grants: [{ coffer: Bucket, actions: ['list'] }] },
          { secretId: BOB.secretId, secretKey: BOB.secretKey, grants: [{ coffer: Bucket, actions: ['read', 'write', 'list'] }] },
        ],
      },
      policies: {
        principals: [
          { accessKey: ALICE.secretId, principal: ALICE.principal },
          { accessKey: BOB.secretId, principal: BOB.principal },
        ],
      },
    }),
  );
  gateway = await startGateway(loadConfig({ file, env: {} }), { log: createLogger('silent') });
  await gateway.dependenciesAttempted;
  const sdk = (c: { secretId: string; secretKey: string }) => new COS({ SecretId: c.secretId, SecretKey: c.secretKey, Protocol: 'http:', Ip: `127.0.0.1:${gateway.port}` });
  owner = sdk(OWNER);
  alice = sdk(ALICE);
  bob = sdk(BOB);
  await owner.putObject({ Bucket, Region, Key: 'reports/q1.txt', Body: 'q1' });
  await owner.putObject({ Bucket, Region, Key: 'other/notes.txt', Body: 'notes' });
});

afterAll(async () => {
  await gateway?.stop();
  rmSync(directory, { recursive: true, force: true });
});

test('without a policy, a caller without a grant for the action is refused', async () => {
  expect(await statusOf(alice.getObject({ Bucket, Region, Key: 'reports/q1.txt' }))).toBe(403);
  await expect(owner.getBucketPolicy({ Bucket, Region })).rejects.toMatchObject({ statusCode: 404 });
});

test('putBucketPolicy: allow with a prefix, deny beats a configured grant, only PutCofferPolicy callers change it', async () => {
  expect(await statusOf(alice.putBucketPolicy({ Bucket, Region, Policy: POLICY }))).toBe(403);
  expect(await statusOf(bob.putBucketPolicy({ Bucket, Region, Policy: POLICY }))).toBe(403);
  await owner.putBucketPolicy({ Bucket, Region, Policy: POLICY });

  expect(Buffer.from((await alice.getObject({ Bucket, Region, Key: 'reports/q1.txt' })).Body).toString()).toBe('q1');
  expect(await statusOf(alice.headObject({ Bucket, Region, Key: 'reports/q1.txt' }))).toBe(200);
  expect(await statusOf(alice.getObject({ Bucket, Region, Key: 'other/notes.txt' }))).toBe(403);
  expect(await statusOf(alice.putObject({ Bucket, Region, Key: 'reports/new.txt', Body: 'x' }))).toBe(403);
  expect(await statusOf(alice.getBucket({ Bucket, Region }))).toBe(200); // her configured grant

  expect(await statusOf(bob.putObject({ Bucket, Region, Key: 'free/a.txt', Body: 'a' }))).toBe(200);
  expect(await statusOf(bob.putObject({ Bucket, Region, Key: 'locked/a.txt', Body: 'a' }))).toBe(403);
  expect(await statusOf(bob.getObject({ Bucket, Region, Key: 'free/a.txt' }))).toBe(200);

  const got = await owner.getBucketPolicy({ Bucket, Region });
  expect(got.Policy).toEqual(POLICY);
});

test('the policy governs the S3 dialect too: a denied prefix stays denied to S3 GET, HEAD, CopyObject and UploadPartCopy (the copy source obeys its policy like a GET)', async () => {
  await owner.putObject({ Bucket, Region, Key: 'locked/secret.txt', Body: 'secret' });
  // S3 clients sign for the gateway's S3 region (config s3.region, default us-east-1), not the COS region.
  const s3 = new S3Client({ endpoint: `http://127.0.0.1:${gateway.port}`, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: BOB.secretId, secretAccessKey: BOB.secretKey } });
  const s3Status = (promise: Promise<unknown>): Promise<number> =>
    promise.then(
      () => 200,
      (error: { $metadata?: { httpStatusCode?: number } }) => error.$metadata?.httpStatusCode ?? -1,
    );
  try {
    expect(await s3Status(s3.send(new GetObjectCommand({ Bucket, Key: 'locked/secret.txt' })))).toBe(403);
    expect(await s3Status(s3.send(new HeadObjectCommand({ Bucket, Key: 'locked/secret.txt' })))).toBe(403);
    // Copying the denied object to a key Bob may read would hand him its bytes: refused, nothing written.
    expect(await s3Status(s3.send(new CopyObjectCommand({ Bucket, Key: 'free/stolen.txt', CopySource: `${Bucket}/locked/secret.txt` })))).toBe(403);
    expect(await statusOf(owner.headObject({ Bucket, Region, Key: 'free/stolen.txt' }))).toBe(404);
    // The same through UploadPartCopy into an upload Bob may write: refused, no part stored.
    const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket, Key: 'free/stolen-parts.txt' }));
    expect(await s3Status(s3.send(new UploadPartCopyCommand({ Bucket, Key: 'free/stolen-parts.txt', UploadId, PartNumber: 1, CopySource: `${Bucket}/locked/secret.txt` })))).toBe(403);
    expect(await s3Status(s3.send(new UploadPartCopyCommand({ Bucket, Key: 'free/stolen-parts.txt', UploadId, PartNumber: 1, CopySource: `${Bucket}/locked/secret.txt`, CopySourceRange: 'bytes=0-2' })))).toBe(403);
    expect((await s3.send(new ListPartsCommand({ Bucket, Key: 'free/stolen-parts.txt', UploadId }))).Parts ?? []).toEqual([]);
    // Control: a source the policy does not deny is copied into the same upload.
    expect(await s3Status(s3.send(new UploadPartCopyCommand({ Bucket, Key: 'free/stolen-parts.txt', UploadId, PartNumber: 1, CopySource: `${Bucket}/free/a.txt` })))).toBe(200);
    await s3.send(new AbortMultipartUploadCommand({ Bucket, Key: 'free/stolen-parts.txt', UploadId }));
    // Controls: what the policy does not deny works through S3.
    expect(await s3Status(s3.send(new CopyObjectCommand({ Bucket, Key: 'free/copied.txt', CopySource: `${Bucket}/free/a.txt` })))).toBe(200);
    expect(await s3Status(s3.send(new GetObjectCommand({ Bucket, Key: 'free/copied.txt' })))).toBe(200);
  } finally {
    s3.destroy();
  }
});

test('a malformed policy is refused and the stored one kept; deleteBucketPolicy removes it', async () => {
  const bad = { ...POLICY, Statement: [{ ...POLICY.Statement[0], Resource: ['qcs::cdcs::uid/1250000000:other-1250000000/*'] }] };
  await expect(owner.putBucketPolicy({ Bucket, Region, Policy: bad })).rejects.toMatchObject({ statusCode: 400, code: 'MalformedPolicy' });
  expect((await owner.getBucketPolicy({ Bucket, Region })).Policy).toEqual(POLICY);

  // The CDCS JSON shape as a raw signed request.
  const body = Buffer.from(JSON.stringify(POLICY));
  const raw = await send(gateway.port, signed({ method: 'PUT', signedPath: `/${Bucket}`, params: [['policy', '']], host: `127.0.0.1:${gateway.port}`, path: `/${Bucket}`, mode: 'header', credentials: OWNER }), body, false, {
    'content-type': 'application/json',
    'content-md5': createHash('md5').update(body).digest('base64'),
  });
  expect(raw.status).toBe(200);

  await owner.deleteBucketPolicy({ Bucket, Region });
  await owner.deleteBucketPolicy({ Bucket, Region }); // none left: still 200 (CDCS)
  expect(await statusOf(alice.getObject({ Bucket, Region, Key: 'reports/q1.txt' }))).toBe(403);
  expect(await statusOf(bob.putObject({ Bucket, Region, Key: 'locked/b.txt', Body: 'b' }))).toBe(200);
});
