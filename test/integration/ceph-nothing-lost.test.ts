/**
 * "Nothing lost" (reliability-checklist.md (a)–(d), items 3, 6 and 7) through the gateway on Ceph RGW,
 * judged from Ceph's own view rather than the gateway's: Ceph's ListParts of the upload's data object
 * (part numbers, ETags, sizes as Ceph stores them) and Ceph's ListObjects of the part-record prefix (how
 * many records exist, never parsing their names: their encoding is the format's business). Keys come
 * from the gateway's upstream-layout helpers.
 *
 * With a 6 MiB part 1 stored, re-uploads of part 1 with other bytes are cut at 0 bytes, 1 byte, half and
 * N − 1 bytes; then Content-Length one more than sent (short, then the client closes) and one less (the
 * extra byte pipelined, with the Content-MD5 of what the client meant). After each: the client got no
 * 2xx (c); Ceph's view of part 1 and the part-record count are unchanged (a, b); the gateway's ListParts
 * still shows the first part's ETag. After all of them: file descriptors back to the baseline and the
 * gateway's in-flight counters at 0; the retried upload completes and decrypts byte-exact (d). Last, two
 * uploads of one part where the first started finishes last: the last to finish wins (ceph/s3-tests
 * `test_multipart_resend_first_finishes_last`), and Complete decrypts it.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:net';
import { CreateBucketCommand, ListMultipartUploadsCommand, ListObjectsV2Command, ListPartsCommand, S3Client } from '@aws-sdk/client-s3';
import { createLogger } from '../../src/observability/logger';
import { startGateway, type RunningGateway } from '../../src/app/serve';
import { upstreamLayout } from '../../src/store/upstream-layout';
import { cephRgw, describeWithCeph } from '../support/ceph-rgw';
import { completeBody, cos, initiate, listedEtags, md5Etag, openCos, signedRequestHead, type CosAnswer, type CosTarget } from '../support/cos-http-client';
import { load } from '../config/helpers';
import { sha256 } from '../support/digests';

const MiB = 1024 * 1024;
const PART = 6 * MiB;
const Bucket = 'lost-1250000000';
const BUCKET = `coffer-lost-${randomBytes(4).toString('hex')}`;
const PREFIX = 'coffer/';
const KEY = { secretId: 'AKIDnothingLost', secretKey: 'nothing-lost-secret-key-0123456789' };
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const layout = upstreamLayout(PREFIX);

/** Open file descriptors of this process (the gateway runs in it). */
const openFds = (): number => readdirSync('/proc/self/fd').length;

/** Sends `head` + `body` on a raw socket, optionally half-closes, and collects everything until the server closes. */
function rawSend(port: number, data: Buffer, halfClose: boolean): Promise<{ statuses: number[]; text: string }> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => {
      chunks.push(c);
      // One complete error answer is all these exchanges can get; the connection may stay open after it.
      if (Buffer.concat(chunks).toString('latin1').includes('</Error>')) socket.destroy();
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      const text = Buffer.concat(chunks).toString('latin1');
      resolve({ statuses: [...text.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => Number(m[1])), text });
    });
    socket.once('connect', () => {
      socket.write(data);
      if (halfClose) socket.end();
    });
    // The gateway closes after an error answer; this only bounds a hung test.
    setTimeout(() => socket.destroy(), 15_000).unref();
  });
}

describeWithCeph("nothing lost, through the gateway, judged from Ceph RGW's own view", () => {
  const ceph = cephRgw() as NonNullable<ReturnType<typeof cephRgw>>;
  let s3: S3Client;
  let gateway: RunningGateway;
  let target: CosTarget;
  let directory: string;

  beforeAll(async () => {
    directory = mkdtempSync(join(tmpdir(), 'coffer-lost-'));
    s3 = new S3Client({ endpoint: ceph.endpoint, region: ceph.region, forcePathStyle: true, credentials: { accessKeyId: ceph.accessKeyId, secretAccessKey: ceph.secretAccessKey } });
    await s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
    const config = load({
      server: { port: 0, adminPort: 0 },
      auth: { cos: { acceptKeyOnlyPath: true }, accessKeys: [{ ...KEY, grants: [{ coffer: Bucket, actions: ['*'] }] }] },
      keyring: { directory: join(directory, 'keyring') },
      coffers: {
        [Bucket]: {
          upstream: { endpoint: ceph.endpoint, region: ceph.region, bucket: BUCKET, prefix: PREFIX, credentials: { accessKeyId: ceph.accessKeyId, secretAccessKey: ceph.secretAccessKey } },
          role: { type: 'static' },
          kms: { type: 'local', keyId: 'lost' },
        },
      },
    });
    gateway = await startGateway(config, { log: createLogger('silent') });
    target = { port: gateway.port, coffer: Bucket, ...KEY };
  });

  afterAll(async () => {
    await gateway?.stop();
    s3?.destroy();
    rmSync(directory, { recursive: true, force: true });
  });

  /** Ceph's own view of one upload: its ListParts of the data object, and how many part records exist. */
  async function cephView(key: string, uploadId: string, partNumber: number): Promise<{ parts: Array<[number, string, number]>; partRecords: number }> {
    const dataKey = layout.data(key, uploadId);
    const uploads = await s3.send(new ListMultipartUploadsCommand({ Bucket: BUCKET, Prefix: dataKey }));
    const upstreamUploads = (uploads.Uploads ?? []).filter((u) => u.Key === dataKey);
    expect(upstreamUploads).toHaveLength(1);
    const listed = await s3.send(new ListPartsCommand({ Bucket: BUCKET, Key: dataKey, UploadId: upstreamUploads[0]!.UploadId }));
    const records = await s3.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: layout.partRecordPrefix(uploadId, partNumber) }));
    return { parts: (listed.Parts ?? []).map((p) => [p.PartNumber ?? 0, p.ETag ?? '', p.Size ?? 0]), partRecords: records.KeyCount ?? 0 };
  }

  const inFlightParts = async (): Promise<number> => (await gateway.metrics.inFlightParts.get()).values[0]?.value ?? 0;

  /** Polls until `condition` holds (the test's timeout bounds it); the gateway finishes a cut request asynchronously. */
  async function eventually(condition: () => Promise<boolean> | boolean): Promise<void> {
    while (!(await condition())) await sleep(25);
  }

  test("cuts at 0, 1, half and N − 1 bytes and Content-Length ± 1 leave part 1 as it was (Ceph's view), no 2xx, and no leak; the retry completes byte-exact", async () => {
    const key = 'lost/part-cuts.bin';
    const uploadId = await initiate(target, key);
    const first = randomBytes(PART);
    const stored = await cos(
      target,
      'PUT',
      key,
      [
        ['partNumber', '1'],
        ['uploadId', uploadId],
      ],
      first,
    );
    expect(stored.status).toBe(200);
    expect(stored.etag).toBe(md5Etag(first));
    const before = await cephView(key, uploadId, 1);
    expect(before.parts).toHaveLength(1);
    expect(before.partRecords).toBe(1);
    // Baseline after one complete exchange, so the upstream connection pool is already warm.
    await eventually(async () => (await inFlightParts()) === 0);
    const fdBaseline = openFds();

    const unchanged = async (what: string): Promise<void> => {
      await eventually(async () => (await inFlightParts()) === 0);
      const now = await cephView(key, uploadId, 1);
      expect({ what, ...now }).toEqual({ what, ...before });
      const listed = await cos(target, 'GET', key, [['uploadId', uploadId]]);
      expect({ what, etags: listedEtags(listed.text) }).toEqual({ what, etags: [md5Etag(first)] });
    };

    for (const cut of [0, 1, PART / 2, PART - 1]) {
      const other = randomBytes(PART);
      const call = openCos(
        target,
        'PUT',
        key,
        [
          ['partNumber', '1'],
          ['uploadId', uploadId],
        ],
        PART,
      );
      call.req.flushHeaders();
      if (cut > 0) await new Promise<void>((resolve) => call.req.write(other.subarray(0, cut), () => resolve()));
      await sleep(150); // let the gateway take the bytes (and start its upstream write) before the cut
      call.req.destroy();
      const answer: CosAnswer = await call.done;
      // (c): never a 2xx for a cut body.
      expect({ cut, status: answer === 'reset' ? 'reset' : answer.status < 300 ? 'success' : 'refused' }).not.toEqual({ cut, status: 'success' });
      await unchanged(`cut at ${cut}`);
    }

    // Content-Length one more than sent, then the client closes its side (FIN): the body is short
    // (IncompleteBody inside the gateway) and, the HTTP server not keeping half-open connections, the
    // connection is closed without an answer: certainly no 2xx, and nothing stored.
    const short = randomBytes(PART);
    const shortAnswer = await rawSend(
      gateway.port,
      Buffer.concat([
        Buffer.from(
          signedRequestHead(
            target,
            'PUT',
            key,
            [
              ['partNumber', '1'],
              ['uploadId', uploadId],
            ],
            [['Content-Length', String(PART + 1)]],
          ),
        ),
        short,
      ]),
      true,
    );
    expect(shortAnswer.statuses).toEqual([]);
    await unchanged('Content-Length + 1');

    // Content-Length one less than sent: the body is the first N − 1 bytes, which do not match the
    // Content-MD5 of the N the client meant (400 BadDigest); the extra byte starts a request that is never served.
    // The extra byte is a 'G', a plausible start of a pipelined GET, so the parser waits for the rest of
    // it rather than failing the connection at once (random garbage there gets the connection destroyed).
    const long = Buffer.concat([randomBytes(PART - 1), Buffer.from('G')]);
    const md5 = createHash('md5').update(long).digest('base64');
    const longAnswer = await rawSend(
      gateway.port,
      Buffer.concat([
        Buffer.from(
          signedRequestHead(
            target,
            'PUT',
            key,
            [
              ['partNumber', '1'],
              ['uploadId', uploadId],
            ],
            [
              ['Content-Length', String(PART - 1)],
              ['Content-MD5', md5],
            ],
          ),
        ),
        long,
      ]),
      false,
    );
    expect(longAnswer.statuses[0]).toBe(400);
    expect(longAnswer.text).toContain('<Code>BadDigest</Code>');
    expect(longAnswer.statuses.every((s) => s >= 400)).toBe(true);
    await unchanged('Content-Length − 1');

    // Sockets and file descriptors back to where they were; nothing in flight.
    await eventually(() => openFds() <= fdBaseline);
    expect(await inFlightParts()).toBe(0);
    expect((await gateway.metrics.upstreamReadStreams.get()).values[0]?.value ?? 0).toBe(0);

    // (d): the client retries part 1 with new bytes; the completed object decrypts byte-exact.
    const retried = randomBytes(PART);
    const tail = randomBytes(1000);
    expect(
      (
        await cos(
          target,
          'PUT',
          key,
          [
            ['partNumber', '1'],
            ['uploadId', uploadId],
          ],
          retried,
        )
      ).status,
    ).toBe(200);
    expect(
      (
        await cos(
          target,
          'PUT',
          key,
          [
            ['partNumber', '2'],
            ['uploadId', uploadId],
          ],
          tail,
        )
      ).status,
    ).toBe(200);
    const completed = await cos(
      target,
      'POST',
      key,
      [['uploadId', uploadId]],
      completeBody([
        [1, md5Etag(retried)],
        [2, md5Etag(tail)],
      ]),
    );
    expect(completed.status).toBe(200);
    expect(completed.text).not.toContain('<Error>');
    expect(sha256((await cos(target, 'GET', key)).body)).toBe(sha256(Buffer.concat([retried, tail])));
  });

  test('one part uploaded twice, the first started finishes last: the last to finish wins and Complete decrypts it', async () => {
    const key = 'lost/resend-first-finishes-last.bin';
    const uploadId = await initiate(target, key);
    const firstStarted = randomBytes(PART);
    const secondStarted = randomBytes(PART);
    const slow = openCos(
      target,
      'PUT',
      key,
      [
        ['partNumber', '1'],
        ['uploadId', uploadId],
      ],
      PART,
    );
    await new Promise<void>((resolve) => slow.req.write(firstStarted.subarray(0, PART / 2), () => resolve()));
    await sleep(150);
    const fast = await cos(
      target,
      'PUT',
      key,
      [
        ['partNumber', '1'],
        ['uploadId', uploadId],
      ],
      secondStarted,
    );
    expect(fast.status).toBe(200);
    slow.req.end(firstStarted.subarray(PART / 2));
    const late = await slow.done;
    expect(late !== 'reset' && late.status).toBe(200);
    const listed = await cos(target, 'GET', key, [['uploadId', uploadId]]);
    expect(listedEtags(listed.text)).toEqual([md5Etag(firstStarted)]);
    // Ceph's own view agrees: one part, the one that finished last (same size, one current record).
    const view = await cephView(key, uploadId, 1);
    expect(view.parts.map(([n]) => n)).toEqual([1]);
    const completed = await cos(target, 'POST', key, [['uploadId', uploadId]], completeBody([[1, md5Etag(firstStarted)]]));
    expect(completed.status).toBe(200);
    expect(completed.text).not.toContain('<Error>');
    expect(sha256((await cos(target, 'GET', key)).body)).toBe(sha256(firstStarted));
  });
});
