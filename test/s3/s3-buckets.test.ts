/**
 * Buckets as coffers in the S3 dialect, with the AWS SDK for JavaScript against a real gateway whose
 * upstream sits behind a recording proxy (test/support/recorded-gateway.ts), coffer classes
 * configured: HeadBucket and GetBucketLocation look the one bucket up (no listing of the coffer
 * directory, counted upstream) and answer the gateway's S3 region; a credential scope naming another
 * region is refused before the body and before any upstream request.
 */
import { request } from 'node:http';
import { GetBucketLocationCommand, HeadBucketCommand, HeadObjectCommand, PutObjectCommand, S3Client, S3ServiceException } from '@aws-sdk/client-s3';
import { Hash } from '@smithy/hash-node';
import { SignatureV4 } from '@smithy/signature-v4';
import { startRecordedGateway, type RecordedGateway } from '../support/recorded-gateway';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const COS = require('cos-nodejs-sdk-v5');

const CONFIGURED = 'alpha-1250000000';
const ADMIN = { secretId: 'AKIDs3Buckets', secretKey: 's3-buckets-secret-key-0123456789' };

let recorded: RecordedGateway;

beforeAll(async () => {
  recorded = await startRecordedGateway({
    coffers: [CONFIGURED],
    accessKeys: [{ ...ADMIN, grants: [{ coffer: '*', actions: ['*'] }] }],
    cofferClasses: { team: { pattern: 'team-*-1250000000' } },
  });
});

afterAll(async () => {
  await recorded?.stop();
});

const clientFor = (gateway: RecordedGateway, region: string, keys: { secretId: string; secretKey: string } = ADMIN): S3Client =>
  new S3Client({ endpoint: `http://127.0.0.1:${gateway.port}`, forcePathStyle: true, region, credentials: { accessKeyId: keys.secretId, secretAccessKey: keys.secretKey } });

const failureOf = async (promise: Promise<unknown>): Promise<{ code: string; status: number; message: string }> => {
  try {
    await promise;
  } catch (error) {
    if (error instanceof S3ServiceException) return { code: error.name, status: error.$metadata.httpStatusCode ?? 0, message: error.message };
    throw error;
  }
  return { code: 'OK', status: 200, message: '' };
};

/** The upstream requests `action` caused, as the recording proxy saw them arrive. */
async function upstreamDuring(gateway: RecordedGateway, action: () => Promise<unknown>): Promise<Array<{ method: string; path: string; query: string }>> {
  const before = gateway.proxy.arrivals.length;
  await action();
  return gateway.proxy.arrivals.slice(before);
}

/** PUT Coffer through the CDCS dialect (the official COS SDK). */
async function createWithCos(gateway: RecordedGateway, Bucket: string): Promise<void> {
  const cos = new COS({ SecretId: ADMIN.secretId, SecretKey: ADMIN.secretKey, Protocol: 'http:', Proxy: `http://127.0.0.1:${gateway.port}` });
  await cos.putBucket({ Bucket, Region: 'ap-guangzhou' });
}

describe('HeadBucket and GetBucketLocation: one lookup, the gateway region', () => {
  let s3: S3Client;
  beforeAll(async () => {
    s3 = clientFor(recorded, 'us-east-1');
    for (const name of ['team-one-1250000000', 'team-two-1250000000', 'team-three-1250000000']) await createWithCos(recorded, name);
  });
  afterAll(() => s3?.destroy());

  test('a created coffer is found without listing the coffer directory (no upstream listing, no other registration read)', async () => {
    const requests = await upstreamDuring(recorded, async () => {
      const head = await s3.send(new HeadBucketCommand({ Bucket: 'team-two-1250000000' }));
      expect(head.BucketRegion).toBe('us-east-1');
      const location = await s3.send(new GetBucketLocationCommand({ Bucket: 'team-two-1250000000' }));
      // S3's answer for us-east-1: an empty LocationConstraint.
      expect(location.LocationConstraint ?? '').toBe('');
    });
    expect(requests.filter((r) => /(^|&)(list-type|prefix)=/.test(r.query))).toEqual([]);
    expect(requests.filter((r) => r.path.includes('/_registry/r/') && !r.path.endsWith('/team-two-1250000000'))).toEqual([]);
  });

  test("a configured coffer: no upstream request but the coffer policy's (cached); an unknown name of a class: NoSuchBucket", async () => {
    const requests = await upstreamDuring(recorded, async () => {
      expect((await s3.send(new HeadBucketCommand({ Bucket: CONFIGURED }))).BucketRegion).toBe('us-east-1');
      expect((await s3.send(new GetBucketLocationCommand({ Bucket: CONFIGURED }))).LocationConstraint ?? '').toBe('');
    });
    expect(requests.filter((r) => !r.path.endsWith('/k/policy'))).toEqual([]);
    expect((await failureOf(s3.send(new GetBucketLocationCommand({ Bucket: 'team-none-1250000000' })))).code).toBe('NoSuchBucket');
  });
});

describe('the S3 region (config s3.region)', () => {
  test('a scope naming another region → 400 AuthorizationHeaderMalformed naming the expected one; no upstream request', async () => {
    const wrong = clientFor(recorded, 'eu-west-1');
    try {
      const requests = await upstreamDuring(recorded, async () => {
        const failure = await failureOf(wrong.send(new PutObjectCommand({ Bucket: CONFIGURED, Key: 'region/x', Body: 'x' })));
        expect(failure).toMatchObject({ code: 'AuthorizationHeaderMalformed', status: 400 });
        expect(failure.message).toContain("the region 'eu-west-1' is wrong; expecting 'us-east-1'");
      });
      expect(requests).toEqual([]);
    } finally {
      wrong.destroy();
    }
  });

  test('decided before the body: a PUT waiting for 100 Continue is refused without it', async () => {
    const host = `127.0.0.1:${recorded.port}`;
    const signer = new SignatureV4({ service: 's3', region: 'eu-west-1', credentials: { accessKeyId: ADMIN.secretId, secretAccessKey: ADMIN.secretKey }, sha256: Hash.bind(null, 'sha256'), uriEscapePath: false });
    const signed = await signer.sign({
      method: 'PUT',
      protocol: 'http:',
      hostname: '127.0.0.1',
      path: `/${CONFIGURED}/region/continue`,
      headers: { host, 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD', 'content-length': '1000', expect: '100-continue' },
    });
    const outcome = await new Promise<{ status: number; continued: boolean }>((resolve, reject) => {
      let continued = false;
      const req = request({ host: '127.0.0.1', port: recorded.port, method: 'PUT', path: `/${CONFIGURED}/region/continue`, headers: signed.headers as Record<string, string> }, (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode ?? 0, continued }));
      });
      req.on('continue', () => {
        continued = true;
        req.end(Buffer.alloc(1000));
      });
      req.on('error', reject);
      req.flushHeaders();
    });
    expect(outcome).toEqual({ status: 400, continued: false });
  });

  test('a gateway configured for eu-central-1: its clients sign for it, GetBucketLocation and HeadBucket name it, us-east-1 is refused', async () => {
    const other = await startRecordedGateway({ coffers: [CONFIGURED], accessKeys: [{ ...ADMIN, grants: [{ coffer: '*', actions: ['*'] }] }], config: { s3: { region: 'eu-central-1' } } });
    const central = clientFor(other, 'eu-central-1');
    const east = clientFor(other, 'us-east-1');
    try {
      await central.send(new PutObjectCommand({ Bucket: CONFIGURED, Key: 'x', Body: 'x' }));
      expect((await central.send(new HeadObjectCommand({ Bucket: CONFIGURED, Key: 'x' }))).ContentLength).toBe(1);
      expect((await central.send(new GetBucketLocationCommand({ Bucket: CONFIGURED }))).LocationConstraint).toBe('eu-central-1');
      expect((await central.send(new HeadBucketCommand({ Bucket: CONFIGURED }))).BucketRegion).toBe('eu-central-1');
      const refused = await failureOf(east.send(new HeadObjectCommand({ Bucket: CONFIGURED, Key: 'x' })));
      expect(refused.status).toBe(400);
    } finally {
      central.destroy();
      east.destroy();
      await other.stop();
    }
  });
});
