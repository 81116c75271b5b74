/**
 * UploadPart decides before the body: with `Expect: 100-continue`, every refusal that does not depend on
 * the body (unknown upload, KMS refusing or throttling the data-key unwrap, STS refusing the role) is
 * answered without `100 Continue` — the client never sends a byte of the part — and without a single
 * write reaching the upstream. The writes are counted at a proxy between the gateway and Ceph RGW by
 * arrival of their headers (test/support/s3-test-proxy.ts `arrivals`), so even a write destroyed mid-body
 * would count. A positive control on the same connection setup shows `100 Continue` and the upstream
 * write do happen when nothing refuses, so "no 100" cannot pass for a client or proxy that never sees one.
 *
 * The coffer is keyed by AWS KMS (the strict KMS test server) with the data-key cache switched off, so
 * every UploadPart unwraps its data key with a KMS Decrypt; the role is assumed through the strict STS
 * test server, whose session credentials the proxy verifies and re-signs for Ceph.
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
import { initiate, openCos, type CosAnswer, type CosTarget } from '../support/cos-http-client';
import { startKmsTestServer, type KmsTestServer } from '../support/kms-test-server';
import { startS3TestProxy, type S3TestProxy } from '../support/s3-test-proxy';
import { TEST_ACCOUNT_ID, TestCredentialStore, startStsTestServer, type StsTestServer } from '../support/sts-test-server';

const MiB = 1024 * 1024;
const Bucket = 'order-1250000000';
const BUCKET = `coffer-order-${randomBytes(4).toString('hex')}`;
const ROLE = `arn:aws:iam::${TEST_ACCOUNT_ID}:role/coffer-upload-order`;
const BASE = { accessKeyId: 'AKIDCOFFERORDERBASE1', secretAccessKey: 'order-base-secret-0123456789abcdef' };
/** `cold` has never been used, so its role session is not cached: its first request must call AssumeRole. */
const KEYS = {
  main: { secretId: 'AKIDorderMain', secretKey: 'order-main-secret-key-0123456789' },
  cold: { secretId: 'AKIDorderCold', secretKey: 'order-cold-secret-key-0123456789' },
} as const;

interface ContinueAnswer {
  /** Whether the gateway sent `100 Continue`. */
  readonly continued: boolean;
  readonly answer: CosAnswer;
}

/** An UploadPart with `Expect: 100-continue`: the body is sent only if the gateway says 100 Continue. */
async function uploadPartExpectingContinue(target: CosTarget, key: string, uploadId: string, partNumber: number, body: Buffer): Promise<ContinueAnswer> {
  const call = openCos(
    target,
    'PUT',
    key,
    [
      ['partNumber', String(partNumber)],
      ['uploadId', uploadId],
    ],
    body.length,
    { expect: '100-continue' },
  );
  let continued = false;
  call.req.on('continue', () => {
    continued = true;
    call.req.end(body);
  });
  call.req.flushHeaders();
  const answer = await call.done;
  call.req.destroy();
  return { continued, answer };
}

const codeOf = (answer: CosAnswer): string | undefined => (answer === 'reset' ? 'reset' : /<Code>([^<]+)<\/Code>/.exec(answer.text)?.[1]);
const statusOf = (answer: CosAnswer): number | 'reset' => (answer === 'reset' ? 'reset' : answer.status);

describeWithCeph('UploadPart refuses before the body (Expect: 100-continue, counted at a proxy in front of Ceph RGW)', () => {
  const ceph = cephRgw() as NonNullable<ReturnType<typeof cephRgw>>;
  let directory: string;
  let sts: StsTestServer;
  let kms: KmsTestServer;
  let proxy: S3TestProxy;
  let gateway: RunningGateway;
  let uploadId: string;
  const target = (key: keyof typeof KEYS): CosTarget => ({ port: gateway.port, coffer: Bucket, ...KEYS[key] });
  /** Writes (PUT, POST, DELETE) whose headers reached the upstream since `from`. */
  const writesSince = (from: number) => proxy.arrivals.slice(from).filter((r) => r.method !== 'GET' && r.method !== 'HEAD');

  beforeAll(async () => {
    directory = mkdtempSync(join(tmpdir(), 'coffer-order-'));
    const s3 = new S3Client({ endpoint: ceph.endpoint, region: ceph.region, forcePathStyle: true, credentials: { accessKeyId: ceph.accessKeyId, secretAccessKey: ceph.secretAccessKey } });
    await s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
    s3.destroy();
    const store = new TestCredentialStore();
    const baseUser = store.addUser(BASE.accessKeyId, BASE.secretAccessKey, 'coffer-gateway');
    sts = await startStsTestServer({ store, region: ceph.region, roles: [{ roleArn: ROLE, trustedPrincipals: [baseUser.principalArn] }] });
    kms = await startKmsTestServer({ store, region: ceph.region });
    const key = kms.createKey({ allowedPrincipals: [ROLE] });
    proxy = await startS3TestProxy({
      target: ceph.endpoint,
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
        // No data-key cache: every UploadPart unwraps its data key with KMS, so KMS can refuse it.
        kms: { dataKeyCacheMaxEntries: 0 },
        coffers: {
          [Bucket]: {
            upstream: { endpoint: proxy.endpoint, region: ceph.region, bucket: BUCKET, credentials: BASE },
            role: { type: 'sts', roleArn: ROLE, endpoint: sts.endpoint },
            kms: { type: 'aws-kms', keyId: key.arn, endpoint: kms.endpoint, region: ceph.region },
          },
        },
      }),
    );
    gateway = await startGateway(loadConfig({ file, env: {} }), { log: createLogger('silent') });
    uploadId = await initiate(target('main'), 'order/part.bin');
  });

  afterAll(async () => {
    await gateway?.stop();
    await proxy?.close();
    await kms?.close();
    await sts?.close();
    rmSync(directory, { recursive: true, force: true });
  });

  const part = randomBytes(MiB);

  test('control: nothing refuses → 100 Continue, 200, and the part is written upstream', async () => {
    const from = proxy.arrivals.length;
    const decrypts = kms.callCount('Decrypt');
    const { continued, answer } = await uploadPartExpectingContinue(target('main'), 'order/part.bin', uploadId, 1, part);
    expect(statusOf(answer)).toBe(200);
    expect(continued).toBe(true);
    expect(kms.callCount('Decrypt') - decrypts).toBe(1);
    expect(writesSince(from).some((w) => w.method === 'PUT')).toBe(true);
  });

  test('unknown upload → 404 NoSuchUpload, no 100 Continue, zero upstream writes', async () => {
    const from = proxy.arrivals.length;
    const { continued, answer } = await uploadPartExpectingContinue(target('main'), 'order/part.bin', 'f'.repeat(32), 1, part);
    expect([statusOf(answer), codeOf(answer)]).toEqual([404, 'NoSuchUpload']);
    expect(continued).toBe(false);
    expect(writesSince(from)).toEqual([]);
  });

  test('KMS refuses the data key (AccessDenied) → 409 KMSFailed after one Decrypt, no 100 Continue, zero upstream writes', async () => {
    kms.failNext(1, 'AccessDeniedException', 'Decrypt');
    const from = proxy.arrivals.length;
    const decrypts = kms.callCount('Decrypt');
    const { continued, answer } = await uploadPartExpectingContinue(target('main'), 'order/part.bin', uploadId, 2, part);
    expect([statusOf(answer), codeOf(answer)]).toEqual([409, 'KMSFailed']);
    expect(answer !== 'reset' && answer.text).toContain('access-denied');
    expect(continued).toBe(false);
    expect(kms.callCount('Decrypt') - decrypts).toBe(1);
    expect(writesSince(from)).toEqual([]);
  });

  test('KMS throttles every attempt → 409 KMSFailed after the default 5 attempts, no 100 Continue, zero upstream writes', async () => {
    kms.failNext(5, 'ThrottlingException', 'Decrypt');
    const from = proxy.arrivals.length;
    const decrypts = kms.callCount('Decrypt');
    const { continued, answer } = await uploadPartExpectingContinue(target('main'), 'order/part.bin', uploadId, 2, part);
    expect([statusOf(answer), codeOf(answer)]).toEqual([409, 'KMSFailed']);
    expect(answer !== 'reset' && answer.text).toContain('throttled');
    expect(continued).toBe(false);
    expect(kms.callCount('Decrypt') - decrypts).toBe(5);
    expect(writesSince(from)).toEqual([]);
  });

  test('STS refuses the role (AccessDenied) → 409 AssumeRoleFailed, no 100 Continue, zero upstream requests at all', async () => {
    sts.failNext(1, 'AccessDenied');
    const from = proxy.arrivals.length;
    const decrypts = kms.callCount('Decrypt');
    const { continued, answer } = await uploadPartExpectingContinue(target('cold'), 'order/part.bin', uploadId, 2, part);
    expect([statusOf(answer), codeOf(answer)]).toEqual([409, 'AssumeRoleFailed']);
    expect(continued).toBe(false);
    // Without credentials nothing can be signed: not even a read reached the upstream, and no KMS call.
    expect(proxy.arrivals.slice(from)).toEqual([]);
    expect(kms.callCount('Decrypt') - decrypts).toBe(0);
  });

  test('after the refusals, the same part uploads with a 100 Continue (the refusals left nothing in the way)', async () => {
    const { continued, answer } = await uploadPartExpectingContinue(target('cold'), 'order/part.bin', uploadId, 2, part);
    expect(continued).toBe(true);
    expect(statusOf(answer)).toBe(200);
  });
});
