/**
 * PUT Coffer / DELETE Coffer / GET Service end to end with the official COS SDK (putBucket,
 * deleteBucket, getService) against two gateways — replicas — sharing one upstream (an embedded S3
 * endpoint started here) and one keyring: a coffer created on one replica is served by the other,
 * a non-empty coffer is not deleted, a planted or tampered registration is refused, and configured
 * and created names never collide.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../src/config';
import { isConfigError } from '../../src/config/config-error';
import { createLogger } from '../../src/observability/logger';
import { startGateway, type RunningGateway } from '../../src/app/serve';
import { EmbeddedUpstream } from '../../src/embedded-upstream';
import { S3UpstreamStore } from '../../src/upstream/s3-upstream-store';
import { readSmallObject } from '../../src/store/read-small-object';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const COS = require('cos-nodejs-sdk-v5');

const Region = 'ap-guangzhou';
const STATIC = 'static-1250000000';
const UPSTREAM_KEYS = { accessKeyId: 'EMBEDDEDcoffers0001', secretAccessKey: 'embedded-coffers-secret-0123456789abcdef' };
const ADMIN = { secretId: 'AKIDcofferAdmin', secretKey: 'coffer-admin-secret-0123456789' };
const CREATOR = { secretId: 'AKIDcofferCreator', secretKey: 'coffer-creator-secret-0123456789', principal: 'qcs::cam::uin/100000000001:uin/100000000033' };
const STRANGER = { secretId: 'AKIDcofferStranger', secretKey: 'coffer-stranger-secret-0123456789', principal: 'qcs::cam::uin/100000000001:uin/100000000044' };
const MiB = 1024 * 1024;

let directory: string;
let upstream: EmbeddedUpstream;
let replicaA: RunningGateway;
let replicaB: RunningGateway;
let bucketStore: S3UpstreamStore;

const statusOf = (promise: Promise<unknown>): Promise<number> =>
  promise.then(
    () => 200,
    (error: { statusCode?: number }) => error.statusCode ?? -1,
  );
const codeOf = (promise: Promise<unknown>): Promise<string> =>
  promise.then(
    () => 'ok',
    (error: { statusCode?: number; code?: string }) => `${error.statusCode} ${error.code}`,
  );
const sdk = (gateway: RunningGateway, c: { secretId: string; secretKey: string }): any => new COS({ SecretId: c.secretId, SecretKey: c.secretKey, Protocol: 'http:', Proxy: `http://127.0.0.1:${gateway.port}` });

function configFor(name: string, overrides: Record<string, unknown> = {}): string {
  const coffer = (prefix: string) => ({
    upstream: { endpoint: upstream.endpoint, bucket: 'coffers', prefix, forcePathStyle: true, minPartSize: MiB, maxPartSize: 5 * 1024 * MiB, credentials: UPSTREAM_KEYS },
    kms: { type: 'local', keyId: 'coffers' },
  });
  const file = join(directory, `${name}.json`);
  writeFileSync(
    file,
    JSON.stringify({
      server: { port: 0, adminPort: 0 },
      demo: { enabled: false },
      keyring: { directory: join(directory, 'keyring') },
      coffers: { [STATIC]: coffer('static/') },
      cofferClasses: { team: { pattern: 'team-*-1250000000', coffer: coffer('created/'), creators: [CREATOR.principal] } },
      auth: {
        accessKeys: [
          { secretId: ADMIN.secretId, secretKey: ADMIN.secretKey, grants: [{ coffer: '*', actions: ['*'] }] },
          // The creator's only configured grant is to list the static coffer; creating is the class's `creators`.
          { secretId: CREATOR.secretId, secretKey: CREATOR.secretKey, grants: [{ coffer: STATIC, actions: ['list'] }] },
          { secretId: STRANGER.secretId, secretKey: STRANGER.secretKey, grants: [{ coffer: STATIC, actions: ['read'] }] },
        ],
      },
      // A day is a second and nothing is cached, so an object expires within the test.
      lifecycle: { dayLengthSeconds: 1, cacheSeconds: 0 },
      // The stranger is a policy principal too, but not one of the class's creators.
      policies: {
        principals: [
          { accessKey: CREATOR.secretId, principal: CREATOR.principal },
          { accessKey: STRANGER.secretId, principal: STRANGER.principal },
        ],
      },
      ...overrides,
    }),
  );
  return file;
}

beforeAll(async () => {
  directory = mkdtempSync(join(tmpdir(), 'coffer-classes-e2e-'));
  upstream = await EmbeddedUpstream.start({ directory: join(directory, 'upstream'), bucket: 'coffers', ...UPSTREAM_KEYS, minPartSize: MiB, maxPartSize: 5 * 1024 * MiB });
  replicaA = await startGateway(loadConfig({ file: configFor('a'), env: {} }), { log: createLogger('silent') });
  await replicaA.dependenciesAttempted; // the keyring's key file exists before the second replica starts
  replicaB = await startGateway(loadConfig({ file: configFor('b'), env: {} }), { log: createLogger('silent') });
  await replicaB.dependenciesAttempted;
  bucketStore = new S3UpstreamStore({
    endpoint: upstream.endpoint,
    region: 'us-east-1',
    bucket: 'coffers',
    forcePathStyle: true,
    credentials: async () => UPSTREAM_KEYS,
    idleTimeoutMs: 10_000,
    requestTimeoutMs: 10_000,
    connectTimeoutMs: 10_000,
  });
});

afterAll(async () => {
  bucketStore?.destroy();
  await replicaA?.stop();
  await replicaB?.stop();
  await upstream?.close();
  rmSync(directory, { recursive: true, force: true });
});

const listedNames = async (gateway: RunningGateway, c: { secretId: string; secretKey: string }): Promise<string[]> => ((await sdk(gateway, c).getService({})).Buckets ?? []).map((b: { Name: string }) => b.Name).sort();

test('putBucket creates a coffer on one replica; the other serves it; getService lists it; deleteBucket refuses it while it has a live object or an open upload', async () => {
  const Bucket = 'team-alpha-1250000000';
  const onA = sdk(replicaA, ADMIN);
  const onB = sdk(replicaB, ADMIN);
  // Replica B looks the name up first: its negative cache must not outlive the creation by more than its TTL.
  expect(await codeOf(onB.getBucket({ Bucket, Region }))).toMatch(/^404/);
  await onA.putBucket({ Bucket, Region });
  await onA.putObject({ Bucket, Region, Key: 'hello.txt', Body: 'hello' });
  let body: string | undefined;
  for (let attempt = 0; attempt < 100 && body === undefined; attempt += 1) {
    body = await onB.getObject({ Bucket, Region, Key: 'hello.txt' }).then(
      (r: { Body: Buffer }) => Buffer.from(r.Body).toString(),
      () => undefined,
    );
    if (body === undefined) await new Promise((resolve) => setTimeout(resolve, 100));
  }
  expect(body).toBe('hello');
  expect(await listedNames(replicaB, ADMIN)).toEqual([STATIC, Bucket]);

  expect(await codeOf(onB.deleteBucket({ Bucket, Region }))).toBe('409 CofferNotEmpty');
  const upload = await onA.multipartInit({ Bucket, Region, Key: 'open.bin' });
  expect(await codeOf(onA.deleteBucket({ Bucket, Region }))).toBe('409 CofferNotEmpty');
  await onA.multipartAbort({ Bucket, Region, Key: 'open.bin', UploadId: upload.UploadId });
  // Still the live object: objects leave a coffer by expiry only (next test).
  expect(await codeOf(onA.deleteBucket({ Bucket, Region }))).toBe('409 CofferNotEmpty');
});

test('an empty coffer is deleted (204): registration, policy and leftovers go, on every replica; the name can be created again, fresh', async () => {
  const Bucket = 'team-short-1250000000';
  const admin = sdk(replicaA, ADMIN);
  await admin.putBucket({ Bucket, Region });
  await admin.putBucketPolicy({ Bucket, Region, Policy: { version: '2.0', Statement: [{ Principal: { qcs: [CREATOR.principal] }, Effect: 'allow', Action: ['name/cdcs:GetObject'], Resource: [`qcs::cdcs::uid/1250000000:${Bucket}/*`] }] } });
  // An upload opened and aborted leaves the coffer empty.
  const upload = await admin.multipartInit({ Bucket, Region, Key: 'aborted.bin' });
  expect(await codeOf(admin.deleteBucket({ Bucket, Region }))).toBe('409 CofferNotEmpty'); // an open upload alone
  await admin.multipartAbort({ Bucket, Region, Key: 'aborted.bin', UploadId: upload.UploadId });
  expect(await statusOf(sdk(replicaB, ADMIN).getBucket({ Bucket, Region }))).toBe(200); // replica B resolves (and caches) it
  const result = await admin.deleteBucket({ Bucket, Region });
  expect(result.statusCode).toBe(204);
  expect(await codeOf(admin.getBucket({ Bucket, Region }))).toBe('404 NoSuchCoffer');
  expect(await listedNames(replicaA, ADMIN)).not.toContain(Bucket);
  expect((await bucketStore.listObjects(`created/${Bucket}/`)).objects.map((o) => o.key)).toEqual([]);
  expect((await bucketStore.listObjects(`created/_registry/r/${Bucket}`)).objects).toEqual([]);
  // Replica B stops serving it once its cache entry (5 s) has expired.
  let status = 200;
  for (let attempt = 0; attempt < 100 && status === 200; attempt += 1) {
    status = await statusOf(sdk(replicaB, ADMIN).getBucket({ Bucket, Region }));
    if (status === 200) await new Promise((resolve) => setTimeout(resolve, 100));
  }
  expect(status).toBe(404);
  await admin.putBucket({ Bucket, Region });
  expect((await admin.getBucket({ Bucket, Region })).Contents).toEqual([]);
  expect(await codeOf(admin.getBucketPolicy({ Bucket, Region }))).toMatch(/^404/);
});

test('a replica deleting from a stale cache never deletes the coffer created again under the name meanwhile', async () => {
  const Bucket = 'team-again-1250000000';
  await sdk(replicaA, ADMIN).putBucket({ Bucket, Region });
  expect(await statusOf(sdk(replicaB, ADMIN).getBucket({ Bucket, Region }))).toBe(200); // B caches this generation (5 s)
  await sdk(replicaA, ADMIN).deleteBucket({ Bucket, Region });
  await sdk(replicaA, ADMIN).putBucket({ Bucket, Region });
  await sdk(replicaA, ADMIN).putObject({ Bucket, Region, Key: 'keep.txt', Body: 'keep' });
  // B still holds the old, empty generation: its delete must not take the new coffer.
  expect(await codeOf(sdk(replicaB, ADMIN).deleteBucket({ Bucket, Region }))).toBe('404 NoSuchCoffer');
  expect(Buffer.from((await sdk(replicaA, ADMIN).getObject({ Bucket, Region, Key: 'keep.txt' })).Body).toString()).toBe('keep');
});

test('a creator (the class names their principal) may create and then use their coffer through its policy; others may not create', async () => {
  const Bucket = 'team-creator-1250000000';
  expect(await codeOf(sdk(replicaA, STRANGER).putBucket({ Bucket, Region }))).toBe('403 AccessDenied');
  const creator = sdk(replicaA, CREATOR);
  await creator.putBucket({ Bucket, Region });
  await creator.putObject({ Bucket, Region, Key: 'mine.txt', Body: 'mine' });
  expect(Buffer.from((await creator.getObject({ Bucket, Region, Key: 'mine.txt' })).Body).toString()).toBe('mine');
  expect(await listedNames(replicaA, CREATOR)).toEqual([STATIC, Bucket]);
  expect(await listedNames(replicaA, STRANGER)).toEqual([STATIC]);
  expect(await statusOf(sdk(replicaA, STRANGER).getObject({ Bucket, Region, Key: 'mine.txt' }))).toBe(403);
});

test('names: an existing coffer → 409 CofferAlreadyExists (also across replicas); a configured name → 409, not deletable; a name no class admits → 400 InvalidCofferName', async () => {
  const Bucket = 'team-twice-1250000000';
  await sdk(replicaA, ADMIN).putBucket({ Bucket, Region });
  expect(await codeOf(sdk(replicaB, ADMIN).putBucket({ Bucket, Region }))).toBe('409 CofferAlreadyExists');
  expect(await codeOf(sdk(replicaA, ADMIN).putBucket({ Bucket, Region }))).toBe('409 CofferAlreadyExists');
  expect(await codeOf(sdk(replicaA, ADMIN).putBucket({ Bucket: STATIC, Region }))).toBe('409 CofferAlreadyExists');
  expect(await codeOf(sdk(replicaA, ADMIN).deleteBucket({ Bucket: STATIC, Region }))).toBe('405 MethodNotAllowed');
  expect(await codeOf(sdk(replicaA, ADMIN).putBucket({ Bucket: 'other-1250000000', Region }))).toBe('400 InvalidCofferName');
});

test('two replicas creating the same coffer at once: exactly one wins', async () => {
  const Bucket = 'team-race-1250000000';
  const outcomes = await Promise.all([codeOf(sdk(replicaA, ADMIN).putBucket({ Bucket, Region })), codeOf(sdk(replicaB, ADMIN).putBucket({ Bucket, Region }))]);
  expect(outcomes.sort()).toEqual(['409 CofferAlreadyExists', 'ok']);
});

test('a planted or tampered registration is refused: the coffer is not served (500 IntegrityCheckFailed) and not listed', async () => {
  const Real = 'team-real-1250000000';
  const Planted = 'team-planted-1250000000';
  const Forged = 'team-forged-1250000000';
  await sdk(replicaA, ADMIN).putBucket({ Bucket: Real, Region });
  const record = await readSmallObject((await bucketStore.getObject(`created/_registry/r/${Real}`)).body, 64 * 1024);
  // A bucket writer copies a valid registration to another name, and writes one of their own.
  await bucketStore.putObject(`created/_registry/r/${Planted}`, { body: record });
  await bucketStore.putObject(`created/_registry/r/${Forged}`, { body: Buffer.from(JSON.stringify({ coffer: Forged, class: 'team', generation: '0011223344556677' })) });
  // Replica B has never looked these names up.
  expect(await codeOf(sdk(replicaB, ADMIN).getBucket({ Bucket: Planted, Region }))).toBe('500 IntegrityCheckFailed');
  expect(await codeOf(sdk(replicaB, ADMIN).getBucket({ Bucket: Forged, Region }))).toBe('500 IntegrityCheckFailed');
  const listed = await listedNames(replicaB, ADMIN);
  expect(listed).toContain(Real);
  expect(listed).not.toContain(Planted);
  expect(listed).not.toContain(Forged);
  // The real one altered in place (one bit): refused too (replica B has listed it but never resolved it, so nothing is cached).
  record[record.length - 1] = (record[record.length - 1] as number) ^ 1;
  await bucketStore.putObject(`created/_registry/r/${Real}`, { body: record });
  expect(await codeOf(sdk(replicaB, ADMIN).getBucket({ Bucket: Real, Region }))).toBe('500 IntegrityCheckFailed');
});

test('configuration: a class admitting a configured coffer name is refused at start-up', () => {
  const file = configFor('collide', {
    cofferClasses: { wide: { pattern: '*-1250000000', coffer: { upstream: { endpoint: upstream.endpoint, bucket: 'coffers', prefix: 'wide/', credentials: UPSTREAM_KEYS }, kms: { type: 'local', keyId: 'coffers' } } } },
  });
  return startGateway(loadConfig({ file, env: {} }), { log: createLogger('silent') }).then(
    () => {
      throw new Error('started');
    },
    (error: unknown) => {
      expect(isConfigError(error)).toBe(true);
      expect(String((error as Error).message)).toMatch(/admits "static-1250000000"/);
    },
  );
});
