/**
 * Upstream failures in the middle of a part (reliability-checklist.md test 4): the upstream answers
 * 500 InternalError or 503 SlowDown after half the body, or resets the connection (RST) half-way. The client gets 503 / 502 — never a 200 —
 * or it takes the whole part and never answers (a stall: 504 after upstream.idleTimeoutMs). The client
 * gets 503 / 502 / 504 — never a 200 — the previous version of the part stays, and after the fault
 * clears the upload completes byte-exact.
 * A fault-injecting proxy sits between the gateway and a real Ceph RGW. Bound stated for the stall: the
 * client's 504 comes within upstream.idleTimeoutMs (1 s here) plus 5 s (generous, for a loaded machine).
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { formatKeyTime, signCosRequest } from '../../src/auth/cos-signature';
import { loadConfig } from '../../src/config';
import { createLogger } from '../../src/observability/logger';
import { startGateway, type RunningGateway } from '../../src/app/serve';
import { cephRgw, describeWithCeph } from '../support/ceph-rgw';
import { startUpstreamForwarder, type UpstreamForwarder } from '../support/upstream-forwarder';

const MiB = 1024 * 1024;
const COFFER = 'faults-1250000000';
const SECRET_ID = 'AKIDfaults';
const SECRET_KEY = 'faults-secret-key-0123456789';
type Mode = 'pass' | 'internal-error-half-way' | 'slow-down' | 'reset-half-way' | 'stall';
const IDLE_TIMEOUT_MS = 1000;
// A bucket per run: the shared cluster outlives runs, and coffers are write-once.
const BUCKET = `coffer-faults-${randomBytes(4).toString('hex')}`;

describeWithCeph('upstream faults mid-part', () => {
  let directory: string;
  let proxy: UpstreamForwarder;
  let mode: Mode = 'pass';
  const stalled: Array<import('node:http').ServerResponse> = [];
  let gateway: RunningGateway;

  beforeAll(async () => {
    const ceph = cephRgw() as NonNullable<ReturnType<typeof cephRgw>>;
    directory = mkdtempSync(join(tmpdir(), 'coffer-faults-'));
    const s3 = new S3Client({ endpoint: ceph.endpoint, region: ceph.region, forcePathStyle: true, credentials: { accessKeyId: ceph.accessKeyId, secretAccessKey: ceph.secretAccessKey } });
    await s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
    // Forwards requests unchanged (the SigV4 signature covers the Host it was sent to), except part uploads when armed.
    proxy = await startUpstreamForwarder({
      target: ceph.endpoint,
      intercept: ({ req, res, forward }) => {
        const isPart = req.method === 'PUT' && (req.url ?? '').includes('partNumber=');
        if (!isPart || mode === 'pass') return false;
        if (mode === 'stall') {
          req.resume(); // takes every byte, never answers: only the gateway's idle timeout ends this
          stalled.push(res);
          return true;
        }
        if (mode === 'internal-error-half-way') {
          // Takes half the body, then answers 500 and closes, as a failing upstream node would.
          const half = Number(req.headers['content-length']) / 2;
          let seen = 0;
          req.on('data', (chunk: Buffer) => {
            seen += chunk.length;
            if (seen >= half && !res.headersSent) {
              res.writeHead(500, { 'content-type': 'application/xml', connection: 'close' }).end('<Error><Code>InternalError</Code><Message>We encountered an internal error.</Message></Error>');
              req.socket.end();
            }
          });
          return true;
        }
        if (mode === 'slow-down') {
          req.resume();
          res.writeHead(503, { 'content-type': 'application/xml' }).end('<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>');
          return true;
        }
        // reset-half-way: half the body goes upstream, then the connection to the gateway is reset.
        const out = forward(null);
        const half = Number(req.headers['content-length']) / 2;
        let seen = 0;
        req.on('data', (chunk: Buffer) => {
          seen += chunk.length;
          if (seen < half) out.write(chunk);
          else {
            out.destroy();
            // An RST from the upstream side, not a FIN: the gateway's own destroy path must handle it.
            req.socket.resetAndDestroy();
          }
        });
        return true;
      },
    });
    const file = join(directory, 'config.json');
    writeFileSync(
      file,
      JSON.stringify({
        server: { port: 0, adminPort: 0 },
        auth: { accessKeys: [{ secretId: SECRET_ID, secretKey: SECRET_KEY, grants: [{ coffer: COFFER, actions: ['*'] }] }] },
        keyring: { directory: join(directory, 'keyring') },
        coffers: {
          [COFFER]: {
            upstream: { endpoint: proxy.endpoint, region: ceph.region, bucket: BUCKET, idleTimeoutMs: IDLE_TIMEOUT_MS, credentials: { accessKeyId: ceph.accessKeyId, secretAccessKey: ceph.secretAccessKey } },
            role: { type: 'static' },
            kms: { type: 'local', keyId: 'faults' },
          },
        },
      }),
    );
    gateway = await startGateway(loadConfig({ file, env: {} }), { log: createLogger('silent') });
    // Start-up readiness checks touch the upstream and the key provider; let their first round finish.
    await gateway.dependenciesAttempted;
  });

  afterAll(async () => {
    for (const res of stalled) res.destroy();
    await gateway?.stop();
    await proxy?.close();
    rmSync(directory, { recursive: true, force: true });
  });

  function call(method: string, key: string, params: Array<[string, string]>, body?: Buffer): Promise<{ status: number; body: string; etag?: string }> {
    const host = `127.0.0.1:${gateway.port}`;
    const now = Math.floor(Date.now() / 1000);
    const { authorization } = signCosRequest({ method, pathname: `/${COFFER}/${key}`, params, headers: [['host', host]], secretId: SECRET_ID, secretKey: SECRET_KEY, keyTime: formatKeyTime(now - 60, now + 600) });
    const query = params.map(([n, v]) => (v === '' ? n : `${n}=${encodeURIComponent(v)}`)).join('&');
    return new Promise((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port: gateway.port, method, path: `/${COFFER}/${key}${query ? `?${query}` : ''}`, headers: { host, authorization, 'content-length': String(body?.length ?? 0) } }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode as number, body: Buffer.concat(chunks).toString('utf8'), etag: res.headers.etag }));
      });
      req.on('error', reject);
      req.end(body);
    });
  }

  test('500 and 503 SlowDown half-way, a connection reset mid-part and a stalled upstream reach the client as 502, 503, 502 and 504; the previous part survives', async () => {
    const init = await call('POST', 'faulty.bin', [['uploads', '']]);
    const uploadId = /<UploadId>([0-9a-f]{32})<\/UploadId>/.exec(init.body)?.[1] as string;
    const good = randomBytes(6 * MiB);
    const part = (body: Buffer) =>
      call(
        'PUT',
        'faulty.bin',
        [
          ['partNumber', '1'],
          ['uploadId', uploadId],
        ],
        body,
      );
    const first = await part(good);
    expect(first.status).toBe(200);
    const listEtags = async () => [...(await call('GET', 'faulty.bin', [['uploadId', uploadId]])).body.matchAll(/<ETag>([^<]+)<\/ETag>/g)].map((m) => m[1]?.replace(/&quot;/g, '"'));

    mode = 'internal-error-half-way';
    const failed = await part(randomBytes(6 * MiB));
    expect([failed.status, /<Code>(\w+)<\/Code>/.exec(failed.body)?.[1]]).toEqual([502, 'BadGateway']);
    expect(await listEtags()).toEqual([first.etag]);
    mode = 'slow-down';
    const slowed = await part(randomBytes(6 * MiB));
    expect([slowed.status, /<Code>(\w+)<\/Code>/.exec(slowed.body)?.[1]]).toEqual([503, 'ServiceUnavailable']);
    mode = 'reset-half-way';
    const reset = await part(randomBytes(6 * MiB));
    expect([reset.status, /<Code>(\w+)<\/Code>/.exec(reset.body)?.[1]]).toEqual([502, 'BadGateway']);
    expect(await listEtags()).toEqual([first.etag]);
    mode = 'stall';
    const stallStarted = Date.now();
    const stall = await part(randomBytes(6 * MiB));
    expect(Date.now() - stallStarted).toBeLessThan(IDLE_TIMEOUT_MS + 5_000);
    expect([stall.status, /<Code>(\w+)<\/Code>/.exec(stall.body)?.[1]]).toEqual([504, 'GatewayTimeout']);
    expect(stalled).toHaveLength(1);
    mode = 'pass';
    expect(await listEtags()).toEqual([first.etag]);

    const last = randomBytes(1000);
    const second = await call(
      'PUT',
      'faulty.bin',
      [
        ['partNumber', '2'],
        ['uploadId', uploadId],
      ],
      last,
    );
    const xml = `<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>${first.etag}</ETag></Part><Part><PartNumber>2</PartNumber><ETag>${second.etag}</ETag></Part></CompleteMultipartUpload>`;
    expect((await call('POST', 'faulty.bin', [['uploadId', uploadId]], Buffer.from(xml))).status).toBe(200);
    const back = await call('GET', 'faulty.bin', []);
    expect(back.status).toBe(200);
    const got = await new Promise<Buffer>((resolve, reject) => {
      const host = `127.0.0.1:${gateway.port}`;
      const now = Math.floor(Date.now() / 1000);
      const { authorization } = signCosRequest({ method: 'GET', pathname: `/${COFFER}/faulty.bin`, params: [], headers: [['host', host]], secretId: SECRET_ID, secretKey: SECRET_KEY, keyTime: formatKeyTime(now - 60, now + 600) });
      request({ host: '127.0.0.1', port: gateway.port, path: `/${COFFER}/faulty.bin`, headers: { host, authorization } }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve(Buffer.concat(chunks)));
      })
        .on('error', reject)
        .end();
    });
    expect(createHash('sha256').update(got).digest('hex')).toBe(
      createHash('sha256')
        .update(Buffer.concat([good, last]))
        .digest('hex'),
    );
  });
});
