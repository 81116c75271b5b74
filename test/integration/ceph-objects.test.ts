/**
 * Objects through the gateway to a real Ceph RADOS Gateway: the official COS SDK's object calls
 * (putObject, headObject, getObject with ranges and conditions, getBucket, downloadFile, getService),
 * the cost of range reads counted at the upstream's door, and a tamper suite that damages every region
 * of stored objects behind the gateway's back and checks that no read ever returns a wrong byte.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateBucketCommand, DeleteObjectCommand, GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { formatKeyTime, signCosRequest } from '../../src/auth/cos-signature';
import { loadConfig } from '../../src/config';
import { parseSealedManifest, replaceEnvelope } from '../../src/format/manifest';
import { partCiphertextLength } from '../../src/format/part-format';
import { createLogger } from '../../src/observability/logger';
import { startGateway, type RunningGateway } from '../../src/app/serve';
import { cephRgw, describeWithCeph } from '../support/ceph-rgw';
import { sha256 } from '../support/digests';
import { startUpstreamForwarder, type ForwardedRequest, type UpstreamForwarder } from '../support/upstream-forwarder';
import { collectLogLines } from '../support/log-lines';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const COS = require('cos-nodejs-sdk-v5');

const MiB = 1024 * 1024;
const Region = 'ap-guangzhou';
const Bucket = 'objects-1250000000';
// A bucket per run: a cluster started outside jest (COFFER_TEST_CEPH) outlives runs, and coffers are write-once.
const BUCKET = `coffer-objects-${randomBytes(4).toString('hex')}`;
const PREFIX = 'coffer/';
const SECRET_ID = 'AKIDobjects';
const SECRET_KEY = 'objects-secret-key-0123456789';

interface RawAnswer {
  status: number;
  code?: string;
  body: Buffer;
  /** False when the connection broke before Content-Length bytes arrived. */
  complete: boolean;
  headers: Record<string, string | string[] | undefined>;
}

describeWithCeph('objects: COS SDK → gateway → Ceph RGW', () => {
  const ceph = cephRgw() as NonNullable<ReturnType<typeof cephRgw>>;
  let directory: string;
  let proxy: UpstreamForwarder;
  let gateway: RunningGateway;
  let cos: any;
  let s3: S3Client;
  let upstreamRequests: ForwardedRequest[];
  const { lines: logLines, sink: logSink } = collectLogLines();

  beforeAll(async () => {
    directory = mkdtempSync(join(tmpdir(), 'coffer-ceph-objects-'));
    s3 = new S3Client({ endpoint: ceph.endpoint1MiB, region: ceph.region, forcePathStyle: true, credentials: { accessKeyId: ceph.accessKeyId, secretAccessKey: ceph.secretAccessKey } });
    await s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
    // Counts what the gateway asks of the upstream, and the bytes it gets back; forwards unchanged.
    proxy = await startUpstreamForwarder({ target: ceph.endpoint1MiB });
    upstreamRequests = proxy.requests;
    const file = join(directory, 'config.json');
    writeFileSync(
      file,
      JSON.stringify({
        server: { port: 0, adminPort: 0 },
        auth: { cos: { acceptKeyOnlyPath: true }, accessKeys: [{ secretId: SECRET_ID, secretKey: SECRET_KEY, grants: [{ coffer: Bucket, actions: ['*'] }] }] },
        keyring: { directory: join(directory, 'keyring') },
        coffers: {
          [Bucket]: {
            upstream: { endpoint: proxy.endpoint, region: ceph.region, bucket: BUCKET, prefix: PREFIX, minPartSize: '1MiB', credentials: { accessKeyId: ceph.accessKeyId, secretAccessKey: ceph.secretAccessKey } },
            role: { type: 'static' },
            kms: { type: 'local', keyId: 'objects' },
          },
        },
      }),
    );
    gateway = await startGateway(loadConfig({ file, env: {} }), { log: createLogger('info', logSink) });
    // Start-up readiness checks touch the upstream and the key provider; let their first round finish.
    await gateway.dependenciesAttempted;
    cos = new COS({ SecretId: SECRET_ID, SecretKey: SECRET_KEY, Protocol: 'http:', Domain: `127.0.0.1:${gateway.port}/{Bucket}`, ServiceDomain: `127.0.0.1:${gateway.port}` });
  });

  afterAll(async () => {
    await gateway?.stop();
    await proxy?.close();
    rmSync(directory, { recursive: true, force: true });
  });

  /** A signed request the test reads byte by byte, so a body cut short is seen as such. */
  function raw(method: string, key: string, headers: Record<string, string> = {}): Promise<RawAnswer> {
    const host = `127.0.0.1:${gateway.port}`;
    const now = Math.floor(Date.now() / 1000);
    const signed = signCosRequest({ method, pathname: `/${Bucket}/${key}`, params: [], headers: [['host', host]], secretId: SECRET_ID, secretKey: SECRET_KEY, keyTime: formatKeyTime(now - 60, now + 600) });
    return new Promise((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port: gateway.port, method, path: `/${Bucket}/${encodeURIComponent(key)}`, headers: { host, authorization: signed.authorization, ...headers } });
      req.on('response', (res) => {
        const chunks: Buffer[] = [];
        let settled = false;
        const finish = (complete: boolean): void => {
          if (settled) return;
          settled = true;
          const body = Buffer.concat(chunks);
          resolve({
            status: res.statusCode as number,
            headers: res.headers,
            body,
            complete: complete && (res.headers['content-length'] === undefined || Number(res.headers['content-length']) === body.length),
            code: /<Code>([^<]+)<\/Code>/.exec(body.toString('latin1'))?.[1],
          });
        };
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => finish(true));
        res.on('aborted', () => finish(false));
        res.on('error', () => finish(false));
        res.on('close', () => finish(res.complete));
      });
      req.on('error', reject);
      req.end();
    });
  }

  const listUpstream = async (prefix: string): Promise<string[]> => ((await s3.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: prefix }))).Contents ?? []).map((o) => o.Key as string);
  const getUpstream = async (key: string): Promise<Buffer> => Buffer.from(await ((await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }))).Body as any).transformToByteArray());
  const putUpstream = (key: string, body: Buffer) => s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: body }));
  const dataKeyOf = async (key: string): Promise<string> => (await listUpstream(`${PREFIX}d/${key}/`))[0] as string;
  const manifestKeyOf = (key: string): string => `${PREFIX}m/${key}`;

  async function multipartObject(key: string, sizes: readonly number[]): Promise<Buffer> {
    const parts = sizes.map((size) => randomBytes(size));
    const init = await cos.multipartInit({ Bucket, Region, Key: key });
    const done: Array<{ PartNumber: number; ETag: string }> = [];
    for (const [index, part] of parts.entries()) {
      const answer = await cos.multipartUpload({ Bucket, Region, Key: key, UploadId: init.UploadId, PartNumber: index + 1, Body: part });
      done.push({ PartNumber: index + 1, ETag: answer.ETag });
    }
    await cos.multipartComplete({ Bucket, Region, Key: key, UploadId: init.UploadId, Parts: done });
    return Buffer.concat(parts);
  }

  test('putObject, headObject, getObject (ranges, conditions), getBucket, downloadFile, getService', async () => {
    const data = randomBytes(3 * MiB + 777);
    const put = await cos.putObject({ Bucket, Region, Key: 'sdk/put.bin', Body: data, ContentType: 'application/x-backup', Headers: { 'x-cos-meta-source': 'db-1' } });
    expect(put.ETag).toBe(`"${createHash('md5').update(data).digest('hex')}"`);
    const conflict = await cos.putObject({ Bucket, Region, Key: 'sdk/put.bin', Body: Buffer.from('x') }).then(
      () => undefined,
      (e: any) => e,
    );
    expect([conflict?.statusCode, conflict?.code]).toEqual([409, 'ObjectAlreadyExists']);

    const head = await cos.headObject({ Bucket, Region, Key: 'sdk/put.bin' });
    expect(head.headers).toMatchObject({ 'content-length': String(data.length), 'content-type': 'application/x-backup', 'x-cos-meta-source': 'db-1', etag: put.ETag });
    expect(sha256((await cos.getObject({ Bucket, Region, Key: 'sdk/put.bin' })).Body)).toBe(sha256(data));
    for (const range of ['bytes=0-0', 'bytes=65535-65536', 'bytes=3145000-', 'bytes=-100']) {
      const answer = await cos.getObject({ Bucket, Region, Key: 'sdk/put.bin', Range: range });
      const [, a, b] = /^bytes=(\d*)-(\d*)$/.exec(range) as RegExpExecArray;
      const start = a === '' ? data.length - Number(b) : Number(a);
      const end = a === '' || b === '' ? data.length - 1 : Number(b);
      expect(answer.statusCode).toBe(206);
      expect(answer.headers['content-range']).toBe(`bytes ${start}-${end}/${data.length}`);
      expect(sha256(answer.Body)).toBe(sha256(data.subarray(start, end + 1)));
    }
    const notModified = await cos.getObject({ Bucket, Region, Key: 'sdk/put.bin', IfNoneMatch: put.ETag }).then(
      (d: any) => d.statusCode,
      (e: any) => e.statusCode,
    );
    expect(notModified).toBe(304);
    const failed = await cos.getObject({ Bucket, Region, Key: 'sdk/put.bin', IfMatch: '"00000000000000000000000000000000"' }).then(
      () => undefined,
      (e: any) => e,
    );
    expect([failed?.statusCode, failed?.code]).toEqual([412, 'PreconditionFailed']);

    const multi = await multipartObject('sdk/dir/multi.bin', [MiB, MiB, 5000]);
    const file = join(directory, 'downloaded.bin');
    await cos.downloadFile({ Bucket, Region, Key: 'sdk/dir/multi.bin', FilePath: file, ChunkSize: 700 * 1024, ParallelLimit: 3 });
    expect(sha256(readFileSync(file))).toBe(sha256(multi));

    const listing = await cos.getBucket({ Bucket, Region, Prefix: 'sdk/' });
    expect(listing.Contents.map((o: any) => [o.Key, o.Size])).toEqual([
      ['sdk/dir/multi.bin', String(multi.length)],
      ['sdk/put.bin', String(data.length)],
    ]);
    const rolled = await cos.getBucket({ Bucket, Region, Prefix: 'sdk/', Delimiter: '/' });
    expect(rolled.CommonPrefixes.map((p: any) => p.Prefix)).toEqual(['sdk/dir/']);
    expect(rolled.Contents.map((o: any) => o.Key)).toEqual(['sdk/put.bin']);
    const service = await cos.getService({});
    expect(service.Buckets.map((b: any) => b.Name)).toEqual([Bucket]);
  });

  test('once an object is known, each range read costs one upstream request and at most one segment either side', async () => {
    const data = await multipartObject('costs/ranges.bin', [MiB, MiB, MiB, 123_457]);
    await raw('GET', 'costs/ranges.bin', { range: 'bytes=0-0' }); // learns the layout (manifest)
    const dataKey = await dataKeyOf('costs/ranges.bin');
    const ranges: Array<[number, number]> = [
      [0, 0],
      [MiB - 10, MiB + 10],
      [2 * MiB + 5, 3 * MiB + 70_000],
      [data.length - 1, data.length - 1],
      [123, 123 + MiB - 1],
      [65536, 131071],
    ];
    for (let i = 0; i < 20; i += 1) {
      const start = Math.floor(Math.random() * (data.length - MiB));
      ranges.push([start, start + MiB - 1]);
    }
    for (const [start, end] of ranges) {
      const first = upstreamRequests.length;
      const answer = await raw('GET', 'costs/ranges.bin', { range: `bytes=${start}-${end}` });
      expect(answer.status).toBe(206);
      expect(answer.body.equals(data.subarray(start, end + 1))).toBe(true);
      const made = upstreamRequests.slice(first);
      expect(made.map((r) => [r.method, r.path])).toEqual([['GET', `/${BUCKET}/${dataKey}`]]);
      // Requested bytes, plus per part touched its header and the segment tags, plus at most one partial segment either side.
      const partsTouched = Math.floor(end / MiB) - Math.floor(start / MiB) + 1;
      const segmentsTouched = Math.ceil((end - start + 1) / 65536) + 1 + partsTouched;
      // At least the requested bytes came through (their ciphertext), so the count is real.
      expect(made[0]?.responseBytes).toBeGreaterThanOrEqual(end - start + 1);
      expect(made[0]?.responseBytes).toBeLessThanOrEqual(end - start + 1 + 2 * 65552 + partsTouched * 100 + segmentsTouched * 16);
    }
  });

  describe('tamper suite: every GET fails with a clear error or stops early, never returns a wrong byte, and is logged', () => {
    const PART = MiB;
    const C = partCiphertextLength(PART);
    type Tamper = (victim: { key: string; dataKey: string; manifestKey: string; other: { dataKey: string; manifestKey: string } }) => Promise<void>;
    const flipDataBit =
      (at: (length: number) => number): Tamper =>
      async ({ dataKey }) => {
        const bytes = await getUpstream(dataKey);
        const index = at(bytes.length);
        bytes[index] = (bytes[index] as number) ^ 0x10;
        await putUpstream(dataKey, bytes);
      };
    const editData =
      (edit: (bytes: Buffer, other: Buffer) => Buffer): Tamper =>
      async ({ dataKey, other }) => {
        await putUpstream(dataKey, edit(await getUpstream(dataKey), await getUpstream(other.dataKey)));
      };
    const flipManifestBit =
      (at: (length: number) => number): Tamper =>
      async ({ manifestKey }) => {
        const bytes = await getUpstream(manifestKey);
        const index = at(bytes.length);
        bytes[index] = (bytes[index] as number) ^ 0x01;
        await putUpstream(manifestKey, bytes);
      };
    const cases: Array<[string, Tamper]> = [
      ['a bit of a part header', flipDataBit(() => 40)],
      ['a bit of the first segment', flipDataBit(() => 100 + 5)],
      ['a bit of a segment tag', flipDataBit(() => 100 + 65536 + 3)],
      ['a bit of the last part', flipDataBit((length) => length - 20)],
      ['a bit of the manifest body', flipManifestBit((length) => length - 60)],
      ['a bit of the manifest MAC', flipManifestBit((length) => length - 1)],
      [
        'a bit of the wrapped data key',
        async ({ manifestKey }) => {
          const bytes = await getUpstream(manifestKey);
          const { envelope } = parseSealedManifest(bytes);
          const wrappedKey = Buffer.from(envelope.wrappedKey);
          wrappedKey[wrappedKey.length - 5] = (wrappedKey[wrappedKey.length - 5] as number) ^ 1;
          await putUpstream(manifestKey, replaceEnvelope(bytes, { ...envelope, wrappedKey }));
        },
      ],
      ['truncated at a part boundary', editData((bytes) => bytes.subarray(0, 2 * C))],
      ['truncated inside a part', editData((bytes) => bytes.subarray(0, C + 5000))],
      ['two parts swapped', editData((bytes) => Buffer.concat([bytes.subarray(C, 2 * C), bytes.subarray(0, C), bytes.subarray(2 * C)]))],
      ['a part dropped', editData((bytes) => Buffer.concat([bytes.subarray(0, C), bytes.subarray(2 * C)]))],
      ['a part spliced in from another object', editData((bytes, other) => Buffer.concat([bytes.subarray(0, C), other.subarray(C, 2 * C), bytes.subarray(2 * C)]))],
      ['the layout record replaced by another object’s', async ({ manifestKey, other }) => void (await putUpstream(manifestKey, await getUpstream(other.manifestKey)))],
      ['the data object deleted', async ({ dataKey }) => void (await s3.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: dataKey })))],
    ];

    test.each(cases)('%s', async (label, tamper) => {
      const slug = label.replace(/[^a-z]+/gi, '-');
      const key = `tamper/${slug}`;
      const data = await multipartObject(key, [PART, PART, 200_000]);
      const otherData = await multipartObject(`tamper/${slug}-other`, [PART, PART, 200_000]);
      expect(otherData.length).toBe(data.length);
      await tamper({ key, dataKey: await dataKeyOf(key), manifestKey: manifestKeyOf(key), other: { dataKey: await dataKeyOf(`tamper/${slug}-other`), manifestKey: manifestKeyOf(`tamper/${slug}-other`) } });
      const loggedBefore = logLines.filter((line) => line.includes('stored data failed authentication')).length;

      const reads: Array<[string, number, number]> = [
        ['', 0, data.length - 1],
        ['bytes=0-99', 0, 99],
        [`bytes=${PART - 50}-${PART + 50}`, PART - 50, PART + 50],
        [`bytes=${2 * PART}-`, 2 * PART, data.length - 1],
        ['bytes=-10', data.length - 10, data.length - 1],
      ];
      let failures = 0;
      for (const [range, start, end] of reads) {
        const answer = await raw('GET', key, range === '' ? {} : { range });
        if (answer.status >= 400) {
          expect(answer.code).toBe('IntegrityCheckFailed');
          failures += 1;
          continue;
        }
        // Whatever arrived must be the true bytes; a read that touched damage must have stopped short.
        expect(answer.body.equals(data.subarray(start, start + answer.body.length))).toBe(true);
        if (!answer.complete) failures += 1;
        else expect(answer.body.length).toBe(end - start + 1);
      }
      const wholeFailed = failures > 0;
      expect(wholeFailed).toBe(true);
      const whole = await raw('GET', key);
      expect(whole.status >= 400 || !whole.complete).toBe(true);
      const logged = logLines.filter((line) => line.includes('stored data failed authentication')).length - loggedBefore;
      expect(logged).toBeGreaterThanOrEqual(1);
      // The untouched neighbour reads back intact.
      const neighbour = await raw('GET', `tamper/${slug}-other`);
      expect(sha256(neighbour.body)).toBe(sha256(otherData));
    });
  });

  /**
   * Issue 11's reproduced attacks, end to end through the COS SDK: an attacker with write access to the
   * bucket plants records. Each Complete answers 500 IntegrityCheckFailed (logged and counted), and no
   * object appears.
   */
  describe('format 2 against planted records (issue 11)', () => {
    async function twoUploadsOfPart2(key: string) {
      const init = await cos.multipartInit({ Bucket, Region, Key: key });
      const part1 = randomBytes(MiB);
      const e1 = await cos.multipartUpload({ Bucket, Region, Key: key, UploadId: init.UploadId, PartNumber: 1, Body: part1 });
      const first = randomBytes(1000);
      await cos.multipartUpload({ Bucket, Region, Key: key, UploadId: init.UploadId, PartNumber: 2, Body: first });
      const second = randomBytes(1000);
      const e2 = await cos.multipartUpload({ Bucket, Region, Key: key, UploadId: init.UploadId, PartNumber: 2, Body: second });
      return {
        uploadId: init.UploadId as string,
        parts: [
          { PartNumber: 1, ETag: e1.ETag },
          { PartNumber: 2, ETag: e2.ETag },
        ],
        secondEtag: e2.ETag as string,
      };
    }
    const counted = async (reason: string): Promise<number> => (await gateway.metrics.integrityFailures.get()).values.filter((v) => v.labels.reason === reason).reduce((sum, v) => sum + v.value, 0);
    const error = (p: Promise<unknown>) =>
      p.then(
        () => ({ code: 'none' }),
        (e: any) => ({ code: e.code, statusCode: e.statusCode }),
      );

    test("a part record naming another upload's salt with the second upload's MD5: Complete is refused, nothing is stored", async () => {
      const key = `attack/part-record-${randomBytes(3).toString('hex')}`;
      const upload = await twoUploadsOfPart2(key);
      const before = await counted('part-record-rejected');
      const loggedBefore = logLines.filter((line) => line.includes('stored data failed authentication')).length;
      // The v1 record layout: salt, kind, length, MD5 (the second upload's ETag), upstream ETag, a later time.
      const forged = `${PREFIX}p/${upload.uploadId}/00002/${randomBytes(32).toString('base64url')}.d.1000.${upload.secondEtag.replace(/"/g, '')}.${Buffer.from('x').toString('base64url')}.${Date.now() + 60_000}`;
      await putUpstream(forged, Buffer.alloc(0));
      expect(await error(cos.multipartComplete({ Bucket, Region, Key: key, UploadId: upload.uploadId, Parts: upload.parts }))).toMatchObject({ code: 'IntegrityCheckFailed', statusCode: 500 });
      expect(await counted('part-record-rejected')).toBeGreaterThan(before);
      expect(logLines.filter((line) => line.includes('stored data failed authentication')).length).toBeGreaterThan(loggedBefore);
      expect((await raw('GET', key)).status).toBe(404);
      expect(await listUpstream(`${PREFIX}m/${key}`)).toEqual([]);
    });
  });
});
