/**
 * S3 listings and stored data that fails authentication: a manifest replaced upstream (another key's
 * copied over it) is listed as damaged by ListObjects and ListObjectsV2 — never hidden — and counted
 * in `coffer_gateway_integrity_failures_total{reason}`, the metric the CDCS listing counts it in
 * (docs/reference/metrics.md). The AWS SDK against a real gateway; the damage is done with the
 * upstream's own keys, as a writer of the bucket could.
 */
import { GetObjectCommand, ListObjectsCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { startRecordedGateway, UPSTREAM_KEYS, type RecordedGateway } from '../support/recorded-gateway';

const COFFER = 'alpha-1250000000';
const KEYS = { secretId: 'AKIDs3Listing', secretKey: 's3-listing-secret-key-0123456789' };

let recorded: RecordedGateway;
let s3: S3Client;
let upstream: S3Client;

beforeAll(async () => {
  recorded = await startRecordedGateway({ coffers: [COFFER], accessKeys: [{ ...KEYS, grants: [{ coffer: COFFER, actions: ['*'] }] }] });
  s3 = new S3Client({ endpoint: `http://127.0.0.1:${recorded.port}`, forcePathStyle: true, region: 'us-east-1', credentials: { accessKeyId: KEYS.secretId, secretAccessKey: KEYS.secretKey } });
  upstream = new S3Client({ endpoint: recorded.proxy.endpoint, forcePathStyle: true, region: 'us-east-1', credentials: UPSTREAM_KEYS });
});

afterAll(async () => {
  s3?.destroy();
  upstream?.destroy();
  await recorded?.stop();
});

const integrityFailures = async (): Promise<number> => (await recorded.gateway.metrics.integrityFailures.get()).values.reduce((sum, v) => sum + v.value, 0);

test('a manifest replaced upstream is listed (size 0) by ListObjectsV2 and ListObjects and counted as an integrity failure each time; its GET fails', async () => {
  await s3.send(new PutObjectCommand({ Bucket: COFFER, Key: 'list/a', Body: 'the first object' }));
  await s3.send(new PutObjectCommand({ Bucket: COFFER, Key: 'list/b', Body: 'the second one' }));
  // The manifest of list/b copied over list/a's (the coffer's layout: <prefix>m/<key>).
  const manifest = await upstream.send(new GetObjectCommand({ Bucket: 'recorded', Key: 'coffer-0/m/list/b' }));
  await upstream.send(new PutObjectCommand({ Bucket: 'recorded', Key: 'coffer-0/m/list/a', Body: await (manifest.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray() }));

  const before = await integrityFailures();
  const v2 = await s3.send(new ListObjectsV2Command({ Bucket: COFFER, Prefix: 'list/' }));
  expect(v2.Contents?.map((o) => [o.Key, o.Size])).toEqual([
    ['list/a', 0],
    ['list/b', 14],
  ]);
  expect((await integrityFailures()) - before).toBe(1);
  const v1 = await s3.send(new ListObjectsCommand({ Bucket: COFFER, Prefix: 'list/' }));
  expect(v1.Contents?.map((o) => o.Key)).toEqual(['list/a', 'list/b']);
  expect((await integrityFailures()) - before).toBe(2);
  const read = await s3.send(new GetObjectCommand({ Bucket: COFFER, Key: 'list/a' })).then(
    () => 200,
    (error: { $metadata?: { httpStatusCode?: number } }) => error.$metadata?.httpStatusCode,
  );
  expect(read).toBe(500);
});
