/**
 * A coffer whose role is assumed through STS (the real @aws-sdk/client-sts against the strict STS test
 * server) over Ceph RGW, driven by the official COS SDK. Ceph cannot accept keys issued by the STS test
 * server, so a strict re-signing proxy stands at its door (test/support/s3-test-proxy.ts): it verifies
 * every request's SigV4 against the STS server's credential store — session token, expiry, and a bucket
 * policy that admits only the role — answers failures as S3 would without forwarding them, and re-signs
 * what passes with Ceph's keys. It records which access key signed each request, so the tests prove the
 * upstream was only ever called with STS-issued session credentials, never the gateway's base keys.
 *
 * Clocks: the gateway and the proxy use the real clock; the STS server's clock can lag behind it, which
 * makes it issue credentials that have only seconds left (the way to test expiry without waiting 15 min).
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateBucketCommand, ListMultipartUploadsCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import { loadConfig } from '../../src/config';
import { createLogger } from '../../src/observability/logger';
import { startGateway, type RunningGateway } from '../../src/app/serve';
import { cephRgw, describeWithCeph } from '../support/ceph-rgw';
import { completeBody, cos, initiate, listedEtags, md5Etag, openCos, type CosTarget } from '../support/cos-http-client';
import { startS3TestProxy, type S3TestProxy, type S3TestProxyRequest } from '../support/s3-test-proxy';
import { TEST_ACCOUNT_ID, TestCredentialStore, startStsTestServer, type IssuedCredentials, type StsTestServer } from '../support/sts-test-server';
import { sha256 } from '../support/digests';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const COS = require('cos-nodejs-sdk-v5');

const MiB = 1024 * 1024;
const Region = 'ap-guangzhou';
const Bucket = 'sts-1250000000';
// A bucket per run: a cluster started outside jest (COFFER_TEST_CEPH) outlives runs, and coffers are write-once.
const BUCKET = `coffer-sts-${randomBytes(4).toString('hex')}`;
const ROLE = `arn:aws:iam::${TEST_ACCOUNT_ID}:role/coffer-ceph-sts`;
const DURATION_SECONDS = 900;
/** The gateway's own keys: they may call STS, and nothing else (Ceph has never heard of them). */
const BASE = { accessKeyId: 'AKIDCOFFERSTSBASE01', secretAccessKey: 'sts-base-secret-0123456789abcdef' };
/** One client key per scenario: the role session is per key (RoleSessionName = SecretId), so each starts cold. */
const KEYS = {
  sdk: { secretId: 'AKIDstsSdk', secretKey: 'sts-sdk-secret-key-0123456789' },
  replicas: { secretId: 'AKIDstsReplicas', secretKey: 'sts-replicas-secret-key-0123456789' },
  expiry: { secretId: 'AKIDstsExpiry', secretKey: 'sts-expiry-secret-key-0123456789' },
  down: { secretId: 'AKIDstsDown', secretKey: 'sts-down-secret-key-0123456789' },
  denied: { secretId: 'AKIDstsDenied', secretKey: 'sts-denied-secret-key-0123456789' },
} as const;
type KeyName = keyof typeof KEYS;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
const codeOf = (xml: string): string | undefined => /<Code>([^<]+)<\/Code>/.exec(xml)?.[1];

describeWithCeph('STS-role coffer on Ceph RGW, behind a strict re-signing proxy', () => {
  const ceph = cephRgw() as NonNullable<ReturnType<typeof cephRgw>>;
  let directory: string;
  let sts: StsTestServer;
  let proxy: S3TestProxy;
  /** The Ceph bucket seen directly, with Ceph's own keys. */
  let s3: S3Client;
  const gateways: RunningGateway[] = [];
  /** How far the STS server's clock lags behind the real one, ms. */
  let stsLagMs = 0;

  beforeAll(async () => {
    directory = mkdtempSync(join(tmpdir(), 'coffer-ceph-sts-'));
    s3 = new S3Client({ endpoint: ceph.endpoint1MiB, region: ceph.region, forcePathStyle: true, credentials: { accessKeyId: ceph.accessKeyId, secretAccessKey: ceph.secretAccessKey } });
    await s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
    const store = new TestCredentialStore();
    const baseUser = store.addUser(BASE.accessKeyId, BASE.secretAccessKey, 'coffer-gateway');
    sts = await startStsTestServer({ store, region: ceph.region, now: () => Date.now() - stsLagMs, roles: [{ roleArn: ROLE, trustedPrincipals: [baseUser.principalArn] }] });
    // The bucket policy admits the role only: a request signed with the base keys would be refused (and recorded).
    proxy = await startS3TestProxy({
      target: ceph.endpoint1MiB,
      region: ceph.region,
      resignWith: { accessKeyId: ceph.accessKeyId, secretAccessKey: ceph.secretAccessKey },
      verify: { store, region: ceph.region, principals: [ROLE] },
    });
    const file = join(directory, 'config.json');
    writeFileSync(
      file,
      JSON.stringify({
        server: { port: 0, adminPort: 0 },
        auth: { cos: { acceptKeyOnlyPath: true }, accessKeys: Object.values(KEYS).map((k) => ({ ...k, grants: [{ coffer: Bucket, actions: ['*'] }] })) },
        keyring: { directory: join(directory, 'keyring') },
        coffers: {
          [Bucket]: {
            upstream: { endpoint: proxy.endpoint, region: ceph.region, bucket: BUCKET, prefix: 'coffer/', minPartSize: '1MiB', credentials: BASE },
            role: { type: 'sts', roleArn: ROLE, endpoint: sts.endpoint, durationSeconds: DURATION_SECONDS },
            kms: { type: 'local', keyId: 'sts' },
          },
        },
      }),
    );
    for (let i = 0; i < 2; i += 1) gateways.push(await startGateway(loadConfig({ file, env: {} }), { log: createLogger('silent') }));
    // Start-up readiness checks assume the role and touch the upstream; let their first round finish.
    await Promise.all(gateways.map((gateway) => gateway.dependenciesAttempted));
  });

  afterAll(async () => {
    await Promise.all(gateways.map((g) => g.stop()));
    await proxy?.close();
    await sts?.close();
    s3?.destroy();
    rmSync(directory, { recursive: true, force: true });
  });

  const sdk = (gateway: number, key: KeyName): any => new COS({ SecretId: KEYS[key].secretId, SecretKey: KEYS[key].secretKey, Protocol: 'http:', Domain: `127.0.0.1:${(gateways[gateway] as RunningGateway).port}/{Bucket}` });
  const target = (gateway: number, key: KeyName): CosTarget => ({ port: (gateways[gateway] as RunningGateway).port, coffer: Bucket, ...KEYS[key] });
  /** The AssumeRole calls STS saw for a key's session. */
  const assumeCalls = (key: KeyName) => sts.calls.filter((c) => c.action === 'AssumeRole' && c.roleSessionName === KEYS[key].secretId);
  const issuedFor = (key: KeyName): IssuedCredentials[] => sts.issued.filter((c) => c.roleSessionName === KEYS[key].secretId);
  /** A mark in the proxy's log; `since(mark)` is everything that arrived after it. */
  const mark = (): number => proxy.requests.length;
  const since = (from: number): S3TestProxyRequest[] => proxy.requests.slice(from);
  const sdkError = (p: Promise<unknown>) =>
    p.then(
      () => ({ code: 'none' }),
      (e: any) => ({ code: e.code, statusCode: e.statusCode }),
    );

  test('the proxy is strict: base keys, unknown keys, a wrong secret or token are refused as S3 would and not forwarded', async () => {
    const from = mark();
    const forwardedBefore = proxy.forwarded().length;
    // A session issued to the base user, used the ways a confused client could.
    const stsClient = new STSClient({ endpoint: sts.endpoint, region: ceph.region, credentials: BASE });
    const assumed = (await stsClient.send(new AssumeRoleCommand({ RoleArn: ROLE, RoleSessionName: 'proxy-self-test', DurationSeconds: DURATION_SECONDS }))).Credentials!;
    stsClient.destroy();
    const session = { accessKeyId: assumed.AccessKeyId!, secretAccessKey: assumed.SecretAccessKey!, sessionToken: assumed.SessionToken! };
    const attempt = async (credentials: { accessKeyId: string; secretAccessKey: string; sessionToken?: string }) => {
      const client = new S3Client({ endpoint: proxy.endpoint, region: ceph.region, forcePathStyle: true, credentials, maxAttempts: 1 });
      try {
        await client.send(new ListObjectsV2Command({ Bucket: BUCKET, MaxKeys: 1 }));
        return { code: 'none', status: 200 };
      } catch (e: any) {
        return { code: e.name as string, status: e.$metadata?.httpStatusCode as number };
      } finally {
        client.destroy();
      }
    };
    expect(await attempt(BASE)).toEqual({ code: 'AccessDenied', status: 403 });
    expect(await attempt({ accessKeyId: 'ASIANOSUCHKEY0000000', secretAccessKey: 'x'.repeat(40), sessionToken: 'y' })).toEqual({ code: 'InvalidAccessKeyId', status: 403 });
    expect(await attempt({ ...session, secretAccessKey: `${session.secretAccessKey}x` })).toEqual({ code: 'SignatureDoesNotMatch', status: 403 });
    expect(await attempt({ ...session, sessionToken: `${session.sessionToken.slice(0, -2)}AA` })).toEqual({ code: 'InvalidToken', status: 400 });
    expect(await attempt({ accessKeyId: session.accessKeyId, secretAccessKey: session.secretAccessKey })).toEqual({ code: 'InvalidToken', status: 400 });
    // The same session, used properly, reaches Ceph (re-signed with Ceph's keys).
    expect(await attempt(session)).toEqual({ code: 'none', status: 200 });
    expect(since(from).map((r) => r.rejected ?? 'forwarded')).toEqual(['AccessDenied', 'InvalidAccessKeyId', 'SignatureDoesNotMatch', 'InvalidToken', 'InvalidToken', 'forwarded']);
    expect(proxy.forwarded().length - forwardedBefore).toBe(1);
  });

  test('COS SDK slice upload in 1 MB parts, whole and ranged reads byte-exact: one AssumeRole, every upstream call signed by the session', async () => {
    const from = mark();
    const data = randomBytes(5 * MiB + 12_345);
    const file = join(directory, 'sdk.bin');
    writeFileSync(file, data);
    const client = sdk(0, 'sdk');
    await client.sliceUploadFile({ Bucket, Region, Key: 'sts/sdk.bin', FilePath: file, ChunkSize: MiB });
    expect(sha256((await client.getObject({ Bucket, Region, Key: 'sts/sdk.bin' })).Body)).toBe(sha256(data));
    // Across the boundary of parts 1 and 2 (plaintext offset 1 MiB).
    const range = (await client.getObject({ Bucket, Region, Key: 'sts/sdk.bin', Range: `bytes=${MiB - 1000}-${MiB + 999}` })).Body as Buffer;
    expect(range.length).toBe(2000);
    expect(sha256(range)).toBe(sha256(data.subarray(MiB - 1000, MiB + 1000)));

    const calls = assumeCalls('sdk');
    expect(calls.map((c) => [c.status, c.roleArn, c.accessKeyId, c.durationSeconds])).toEqual([[200, ROLE, BASE.accessKeyId, DURATION_SECONDS]]);
    const [session] = issuedFor('sdk');
    const upstream = since(from);
    expect(upstream.filter((r) => r.rejected !== undefined)).toEqual([]);
    // Six parts reached Ceph, and every request the gateway made was signed with the session's key.
    expect(upstream.filter((r) => r.method === 'PUT' && /(^|&)partNumber=/.test(r.query)).length).toBeGreaterThanOrEqual(6);
    expect(new Set(upstream.map((r) => r.accessKeyId))).toEqual(new Set([session?.accessKeyId]));
    expect(upstream.some((r) => r.accessKeyId === BASE.accessKeyId)).toBe(false);
  });

  test('two gateway processes serve one upload (parts via one, Complete via the other): each assumes the role once', async () => {
    const parts = [randomBytes(MiB), randomBytes(MiB + 7), randomBytes(300_001)];
    const data = Buffer.concat(parts);
    const [first, second] = [sdk(0, 'replicas'), sdk(1, 'replicas')];
    const key = 'sts/replicas.bin';
    const fromParts = mark();
    const { UploadId } = await first.multipartInit({ Bucket, Region, Key: key });
    const etags: string[] = [];
    for (const [i, body] of parts.entries()) etags.push((await first.multipartUpload({ Bucket, Region, Key: key, UploadId, PartNumber: i + 1, Body: body })).ETag);
    expect(assumeCalls('replicas')).toHaveLength(1);
    const fromComplete = mark();
    await second.multipartComplete({ Bucket, Region, Key: key, UploadId, Parts: etags.map((ETag, i) => ({ PartNumber: i + 1, ETag })) });
    expect(sha256((await second.getObject({ Bucket, Region, Key: key })).Body)).toBe(sha256(data));
    expect(sha256((await first.getObject({ Bucket, Region, Key: key, Range: `bytes=${MiB - 10}-${2 * MiB + 10}` })).Body)).toBe(sha256(data.subarray(MiB - 10, 2 * MiB + 11)));

    expect(assumeCalls('replicas').map((c) => c.status)).toEqual([200, 200]);
    const [one, two] = issuedFor('replicas');
    expect(one?.accessKeyId).not.toBe(two?.accessKeyId);
    const partsPhase = proxy.requests.slice(fromParts, fromComplete);
    const completePhase = since(fromComplete);
    expect([...partsPhase, ...completePhase].filter((r) => r.rejected !== undefined)).toEqual([]);
    expect(new Set(partsPhase.map((r) => r.accessKeyId))).toEqual(new Set([one?.accessKeyId]));
    // Complete (and the read) on the second gateway used its own session; the ranged read on the first, the first's.
    expect(new Set(completePhase.map((r) => r.accessKeyId))).toEqual(new Set([one?.accessKeyId, two?.accessKeyId]));
    expect(completePhase.filter((r) => r.method === 'POST').every((r) => r.accessKeyId === two?.accessKeyId)).toBe(true);
  });

  test('credentials near and past expiry: the gateway refreshes (a second AssumeRole) and never signs with expired credentials', async () => {
    const parts = [randomBytes(MiB), randomBytes(MiB), randomBytes(12_345)];
    const data = Buffer.concat(parts);
    const key = 'sts/expiry.bin';
    const t = target(0, 'expiry');
    const from = mark();
    // STS issues 900 s credentials as if 890 s ago: about 10 s are left.
    stsLagMs = (DURATION_SECONDS - 10) * 1000;
    const uploadId = await initiate(t, key);
    stsLagMs = 0;
    const etags = [
      (
        await cos(
          t,
          'PUT',
          key,
          [
            ['partNumber', '1'],
            ['uploadId', uploadId],
          ],
          parts[0],
        )
      ).etag,
    ];
    const [short] = issuedFor('expiry');
    if (short === undefined) throw new Error('no credentials were issued');
    expect(short.expiration.getTime() - Date.now()).toBeLessThan(11_000);
    expect(assumeCalls('expiry')).toHaveLength(1);

    // Inside the refresh window (the last half of a lifetime this short), a few seconds before expiry.
    await sleep(short.expiration.getTime() - 2_500 - Date.now());
    etags.push(
      (
        await cos(
          t,
          'PUT',
          key,
          [
            ['partNumber', '2'],
            ['uploadId', uploadId],
          ],
          parts[1],
        )
      ).etag,
    );
    expect(assumeCalls('expiry').map((c) => c.status)).toEqual([200, 200]);
    // Past expiry of the first credentials: the rest of the upload.
    await sleep(short.expiration.getTime() + 500 - Date.now());
    etags.push(
      (
        await cos(
          t,
          'PUT',
          key,
          [
            ['partNumber', '3'],
            ['uploadId', uploadId],
          ],
          parts[2],
        )
      ).etag,
    );
    const completed = await cos(t, 'POST', key, [['uploadId', uploadId]], completeBody(etags.map((e, i) => [i + 1, e as string])));
    expect(completed.status).toBe(200);
    expect(sha256((await sdk(0, 'expiry').getObject({ Bucket, Region, Key: key })).Body)).toBe(sha256(data));
    expect(etags).toEqual(parts.map(md5Etag));

    expect(assumeCalls('expiry').map((c) => c.status)).toEqual([200, 200]);
    const [, fresh] = issuedFor('expiry');
    const upstream = since(from);
    // The strict proxy refused nothing: no request was signed with expired credentials (nor with the base keys).
    expect(upstream.filter((r) => r.rejected !== undefined)).toEqual([]);
    expect(new Set(upstream.map((r) => r.accessKeyId))).toEqual(new Set([short.accessKeyId, fresh?.accessKeyId]));
    const lastShort = upstream.map((r) => r.accessKeyId).lastIndexOf(short.accessKeyId);
    const firstFresh = upstream.findIndex((r) => r.accessKeyId === fresh?.accessKeyId);
    expect(lastShort).toBeLessThan(firstFresh);
    // And the proxy would have refused the expired session: it does now.
    const client = new S3Client({
      endpoint: proxy.endpoint,
      region: ceph.region,
      forcePathStyle: true,
      credentials: { accessKeyId: short.accessKeyId, secretAccessKey: short.secretAccessKey, sessionToken: short.sessionToken },
      maxAttempts: 1,
    });
    const refused = await client.send(new ListObjectsV2Command({ Bucket: BUCKET, MaxKeys: 1 })).then(
      () => ({ code: 'none', status: 200 }),
      (e: any) => ({ code: e.name, status: e.$metadata?.httpStatusCode }),
    );
    client.destroy();
    expect(refused).toEqual({ code: 'ExpiredToken', status: 400 });
  }, 60_000);

  test('STS down after the cached credentials expired: UploadPart (Expect: 100-continue) → 409 AssumeRoleFailed before the body, the stored part unchanged', async () => {
    const key = 'sts/down.bin';
    const t = target(0, 'down');
    const original = randomBytes(MiB + 99);
    // Credentials with about 8 s left, so they can expire while the upload record and data key stay cached.
    stsLagMs = (DURATION_SECONDS - 8) * 1000;
    const uploadId = await initiate(t, key);
    const first = await cos(
      t,
      'PUT',
      key,
      [
        ['partNumber', '1'],
        ['uploadId', uploadId],
      ],
      original,
    );
    expect(first.status).toBe(200);
    sts.failAlways('AccessDenied');
    stsLagMs = 0;
    const latest = issuedFor('down').at(-1);
    if (latest === undefined) throw new Error('no credentials were issued');
    await sleep(latest.expiration.getTime() + 500 - Date.now());

    const fromProxy = mark();
    const fromSts = sts.calls.length;
    const replacement = randomBytes(MiB + 99);
    const call = openCos(
      t,
      'PUT',
      key,
      [
        ['partNumber', '1'],
        ['uploadId', uploadId],
      ],
      replacement.length,
      { expect: '100-continue', 'content-md5': createHash('md5').update(replacement).digest('base64') },
    );
    let continued = false;
    call.req.on('continue', () => {
      continued = true;
      call.req.end(replacement);
    });
    call.req.flushHeaders();
    const answer = await call.done;
    call.req.destroy();
    if (answer === 'reset') throw new Error('the gateway reset the connection instead of answering');
    expect(answer.status).toBe(409);
    expect(codeOf(answer.text)).toBe('AssumeRoleFailed');
    expect(continued).toBe(false);
    // One AssumeRole (AccessDenied is not retried), and nothing at all reached the upstream.
    expect(sts.calls.slice(fromSts).map((c) => [c.action, c.status, c.errorCode])).toEqual([['AssumeRole', 403, 'AccessDenied']]);
    expect(since(fromProxy)).toEqual([]);

    // STS recovers: the old part is still there, and it is what the object holds.
    sts.script.clear();
    const listed = await cos(t, 'GET', key, [['uploadId', uploadId]]);
    expect(listed.status).toBe(200);
    expect(listedEtags(listed.text)).toEqual([md5Etag(original)]);
    expect((await cos(t, 'POST', key, [['uploadId', uploadId]], completeBody([[1, md5Etag(original)]]))).status).toBe(200);
    expect(sha256((await sdk(0, 'down').getObject({ Bucket, Region, Key: key })).Body)).toBe(sha256(original));
    const upstream = since(fromProxy);
    expect(upstream.filter((r) => r.method === 'PUT' && /(^|&)partNumber=/.test(r.query))).toEqual([]);
    expect(upstream.filter((r) => r.rejected !== undefined)).toEqual([]);
    expect(proxy.requests.some((r) => r.accessKeyId === latest.accessKeyId && r.rejected !== undefined)).toBe(false);
  }, 60_000);

  test('STS denies at Initiate → 409 AssumeRoleFailed and nothing created upstream; reads are refused the same way', async () => {
    const client = sdk(1, 'denied');
    const fromProxy = mark();
    sts.failAlways('AccessDenied');
    try {
      expect(await sdkError(client.multipartInit({ Bucket, Region, Key: 'sts/denied.bin' }))).toEqual({ code: 'AssumeRoleFailed', statusCode: 409 });
      expect(await sdkError(client.putObject({ Bucket, Region, Key: 'sts/denied-put.bin', Body: Buffer.from('never stored') }))).toEqual({ code: 'AssumeRoleFailed', statusCode: 409 });
      // An object that exists, readable by another session, is refused to this one before any upstream read.
      expect(await sdkError(client.getObject({ Bucket, Region, Key: 'sts/sdk.bin' }))).toEqual({ code: 'AssumeRoleFailed', statusCode: 409 });
    } finally {
      sts.script.clear();
    }
    expect(assumeCalls('denied').map((c) => [c.status, c.errorCode])).toEqual([
      [403, 'AccessDenied'],
      [403, 'AccessDenied'],
      [403, 'AccessDenied'],
    ]);
    expect(since(fromProxy)).toEqual([]);
    // Ceph itself, seen with its own keys: no record, data object or multipart upload for those keys.
    const objects = await s3.send(new ListObjectsV2Command({ Bucket: BUCKET }));
    expect((objects.Contents ?? []).map((o) => o.Key).filter((k) => k?.includes('denied'))).toEqual([]);
    const uploads = await s3.send(new ListMultipartUploadsCommand({ Bucket: BUCKET }));
    expect((uploads.Uploads ?? []).map((u) => u.Key).filter((k) => k?.includes('denied'))).toEqual([]);
    // Sanity: the listing does see what the other scenarios stored.
    expect((objects.Contents ?? []).some((o) => o.Key === 'coffer/m/sts/sdk.bin')).toBe(true);
  });
});
