/**
 * Every way README documents to point the official COS SDK (cos-nodejs-sdk-v5 3.0.0) at the gateway,
 * end to end against the gateway as `npm start` runs it (embedded upstream, demo coffer and key):
 * path-style `Domain: 'host:port/{Bucket}'`, virtual-hosted through `Ip` (the SDK's default
 * `{Bucket}.cos.{Region}.myqcloud.com`, the `.tencentcos.cn` and `.cdcs.` domains, a configured
 * suffix), and the gateway
 * as the SDK's HTTP `Proxy` (absolute-form, virtual-hosted). Each writes, reads, lists and uploads in
 * parts; and with the host naming another coffer than the key's path, nothing is written anywhere.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../src/config';
import { createLogger } from '../../src/observability/logger';
import { startGateway, type RunningGateway } from '../../src/app/serve';
import { sha256 } from '../support/digests';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const COS = require('cos-nodejs-sdk-v5');

const MiB = 1024 * 1024;
const Bucket = 'demo-1250000000';
const Region = 'ap-guangzhou';
const SecretId = 'AKIDe2eConfigurations';
const SecretKey = 'e2e-configurations-secret-key-0123456789';

let directory: string;
let gateway: RunningGateway;

beforeAll(async () => {
  directory = mkdtempSync(join(tmpdir(), 'coffer-sdk-configurations-'));
  const config = loadConfig({
    env: {
      PORT: '0',
      COFFER__SERVER__ADMIN_PORT: '0',
      COFFER_DEMO_SECRET_ID: SecretId,
      COFFER_DEMO_SECRET_KEY: SecretKey,
      COFFER__KEYRING__DIRECTORY: join(directory, 'keyring'),
      COFFER__EMBEDDED_UPSTREAM__DIRECTORY: join(directory, 'upstream'),
      COFFER__SERVER__VIRTUAL_HOST_SUFFIXES: '["coffers.example.internal"]',
    },
  });
  gateway = await startGateway(config, { log: createLogger('silent') });
});

afterAll(async () => {
  await gateway?.stop();
  rmSync(directory, { recursive: true, force: true });
});

/** The README recipes, by name; each builds the SDK options for the running gateway. */
const CONFIGURATIONS: Array<[string, (port: number) => Record<string, unknown>, { service: boolean }]> = [
  ['path-style: Domain "127.0.0.1:PORT/{Bucket}"', (port) => ({ Domain: `127.0.0.1:${port}/{Bucket}` }), { service: false }],
  ['path-style with a CDCS host: Domain "cdcs.{Region}.myqcloud.com/{Bucket}" with Ip', (port) => ({ Domain: 'cdcs.{Region}.myqcloud.com/{Bucket}', Ip: `127.0.0.1:${port}` }), { service: false }],
  ['path-style through the proxy: Domain "cdcs.{Region}.myqcloud.com/{Bucket}" with Proxy', (port) => ({ Domain: 'cdcs.{Region}.myqcloud.com/{Bucket}', Proxy: `http://127.0.0.1:${port}` }), { service: false }],
  ['virtual-hosted: the default domain ({Bucket}.cos.{Region}.myqcloud.com) sent to Ip "127.0.0.1:PORT"', (port) => ({ Ip: `127.0.0.1:${port}` }), { service: true }],
  ['virtual-hosted: Domain "{Bucket}.cos.{Region}.tencentcos.cn" with Ip', (port) => ({ Domain: '{Bucket}.cos.{Region}.tencentcos.cn', Ip: `127.0.0.1:${port}` }), { service: true }],
  ['virtual-hosted: Domain "{Bucket}.cdcs.{Region}.myqcloud.com" with Ip', (port) => ({ Domain: '{Bucket}.cdcs.{Region}.myqcloud.com', Ip: `127.0.0.1:${port}` }), { service: true }],
  ['own domain: Domain "{Bucket}.coffers.example.internal" (server.virtualHostSuffixes) with Ip', (port) => ({ Domain: '{Bucket}.coffers.example.internal', Ip: `127.0.0.1:${port}` }), { service: false }],
  ['proxy: Proxy "http://127.0.0.1:PORT" (absolute-form, the default virtual-hosted domain)', (port) => ({ Proxy: `http://127.0.0.1:${port}` }), { service: true }],
];

describe.each(CONFIGURATIONS)('%s', (name, options, { service }) => {
  const client = (): any => new COS({ SecretId, SecretKey, Protocol: 'http:', ...options(gateway.port) });
  const prefix = `${createHash('sha1').update(name).digest('hex').slice(0, 8)}/`;

  test('putObject, headObject, getObject (whole and ranged), getBucket, multipartList, sliceUploadFile', async () => {
    const cos = client();
    const small = randomBytes(1000);
    await cos.putObject({ Bucket, Region, Key: `${prefix}small ü+%.bin`, Body: small });
    const head = await cos.headObject({ Bucket, Region, Key: `${prefix}small ü+%.bin` });
    expect(Number(head.headers['content-length'])).toBe(small.length);
    expect(sha256((await cos.getObject({ Bucket, Region, Key: `${prefix}small ü+%.bin` })).Body)).toBe(sha256(small));
    const ranged = await cos.getObject({ Bucket, Region, Key: `${prefix}small ü+%.bin`, Range: 'bytes=10-19' });
    expect(sha256(ranged.Body)).toBe(sha256(small.subarray(10, 20)));

    const large = randomBytes(2 * MiB + 17);
    const file = join(directory, `${prefix.slice(0, -1)}.bin`);
    writeFileSync(file, large);
    const uploaded = await cos.sliceUploadFile({ Bucket, Region, Key: `${prefix}large.bin`, FilePath: file, ChunkSize: MiB });
    expect(uploaded.ETag).toMatch(/-3"$/);
    expect(sha256((await cos.getObject({ Bucket, Region, Key: `${prefix}large.bin` })).Body)).toBe(sha256(large));

    const listed = await cos.getBucket({ Bucket, Region, Prefix: prefix });
    expect(listed.Contents.map((c: any) => [c.Key, Number(c.Size)])).toEqual([
      [`${prefix}large.bin`, large.length],
      [`${prefix}small ü+%.bin`, small.length],
    ]);
    const uploads = await cos.multipartList({ Bucket, Region, Prefix: prefix });
    expect(uploads.Upload ?? []).toEqual([]);
  });

  (service ? test : test.skip)('getService lists the demo coffer (and the scratch coffer the demo key also reaches)', async () => {
    const listed = await client().getService({});
    expect(listed.Buckets.map((b: any) => b.Name)).toEqual([Bucket, 'scratch-1250000000']);
  });
});

describe('the host binds the coffer (defect: a host naming one coffer, a path naming another)', () => {
  test.each([
    ['Ip', (port: number) => ({ Ip: `127.0.0.1:${port}` })],
    ['Proxy', (port: number) => ({ Proxy: `http://127.0.0.1:${port}` })],
  ])('%s: putObject to another coffer with the key "<demo coffer>/x" is refused, and nothing is stored in the demo coffer', async (_name, options) => {
    const cos = new COS({ SecretId, SecretKey, Protocol: 'http:', ...options(gateway.port) });
    const refused = await cos.putObject({ Bucket: 'other-1250000000', Region, Key: `${Bucket}/stolen.txt`, Body: Buffer.from('x') }).then(
      () => ({ statusCode: 200 }),
      (error: any) => ({ statusCode: error.statusCode }),
    );
    expect(refused.statusCode).toBe(403);
    const pathStyle = new COS({ SecretId, SecretKey, Protocol: 'http:', Domain: `127.0.0.1:${gateway.port}/{Bucket}` });
    const listed = await pathStyle.getBucket({ Bucket, Region, Prefix: '' });
    expect(listed.Contents.map((c: any) => c.Key)).not.toContain('stolen.txt');
    expect(listed.Contents.map((c: any) => c.Key)).not.toContain(`${Bucket}/stolen.txt`);
  });
});
