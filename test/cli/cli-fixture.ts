/**
 * What the command-line tests share: an embedded upstream (the loopback S3 server of `npm start`,
 * started on its own so both the gateway and a CLI child process reach it), the strict KMS and STS test
 * servers, a configuration file with two coffers (AWS KMS and local keyring), the gateway itself
 * (startGateway) for writing objects through the official COS SDK, and two ways to run a command:
 * in-process with captured output, or as a real `node dist/src/cli.js` child process.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { loadConfig } from '../../src/config';
import { EmbeddedUpstream } from '../../src/embedded-upstream';
import { runCli } from '../../src/cli/main';
import { createLogger } from '../../src/observability/logger';
import { startGateway, type RunningGateway } from '../../src/app/serve';
import { S3UpstreamStore } from '../../src/upstream/s3-upstream-store';
import { upstreamLayout } from '../../src/store/upstream-layout';
import { startKmsTestServer, type KmsTestServer, type TestKmsKey } from '../support/kms-test-server';
import { TestCredentialStore, startStsTestServer, type StsTestServer } from '../support/sts-test-server';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const COS = require('cos-nodejs-sdk-v5');

export const ROOT = join(__dirname, '..', '..');
export const CLI = join(ROOT, 'dist', 'src', 'cli.js');
export const MiB = 1024 * 1024;
export const KMS_COFFER = 'kms-1250000000';
export const LOCAL_COFFER = 'local-1250000000';
export const PREFIXES: Readonly<Record<string, string>> = { [KMS_COFFER]: 'coffers/kms/', [LOCAL_COFFER]: 'coffers/local/' };
export const BUCKET = 'coffer-cli';
export const ROLE_ARN = 'arn:aws:iam::111122223333:role/coffer-cli';
const ACCESS = { secretId: 'AKIDcli', secretKey: 'cli-test-secret-key-0123456789' };
const REGION = 'us-east-1';

/** Builds dist/ unless it is current (test/support/dist-build.ts; the system tier's global setup already did, once per run). */
export { ensureCliBuilt } from '../support/dist-build';

export interface CommandResult {
  readonly code: number;
  readonly stdout: Buffer;
  readonly stderr: string;
}

class Capture extends Writable {
  readonly chunks: Buffer[] = [];
  constructor(readonly isTTY = false) {
    super();
  }
  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: () => void): void {
    this.chunks.push(Buffer.from(chunk));
    callback();
  }
  get bytes(): Buffer {
    return Buffer.concat(this.chunks);
  }
}

/** Runs a command in this process with captured output (stdout and stderr are not terminals). */
export async function runInProcess(args: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<CommandResult> {
  const stdout = new Capture();
  const stderr = new Capture();
  const code = await runCli(args, { stdout, stderr, env });
  if (code === 'running') throw new Error('the command did not finish');
  return { code, stdout: stdout.bytes, stderr: stderr.bytes.toString('utf8') };
}

/** Runs `node dist/src/cli.js …` as a child process (call ensureCliBuilt first). */
export function runProcess(args: readonly string[], options: { env?: NodeJS.ProcessEnv; onSpawn?: (pid: number) => void } = {}): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    // Only what the command needs: no COFFER_* from the developer's shell leaks into the test.
    const child = spawn(process.execPath, [CLI, ...args], { cwd: ROOT, env: { PATH: process.env['PATH'] ?? '', ...options.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => err.push(chunk));
    child.on('error', reject);
    if (child.pid !== undefined) options.onSpawn?.(child.pid);
    child.on('close', (code, signal) => resolve({ code: code ?? (signal === null ? -1 : 128), stdout: Buffer.concat(out), stderr: Buffer.concat(err).toString('utf8') }));
  });
}

export interface CofferOverrides {
  readonly upstream?: Record<string, unknown>;
  readonly role?: Record<string, unknown>;
  readonly kms?: Record<string, unknown>;
}

export interface CliFixture {
  readonly directory: string;
  readonly upstream: EmbeddedUpstream;
  readonly upstreamKeys: { accessKeyId: string; secretAccessKey: string };
  readonly credentials: TestCredentialStore;
  readonly kms: KmsTestServer;
  readonly sts: StsTestServer;
  readonly key: TestKmsKey;
  readonly configFile: string;
  /** Direct access to the upstream bucket (what an attacker or an operator with bucket access has). */
  readonly store: S3UpstreamStore;
  /** Writes a configuration file with the given coffer settings (overrides merged into the defaults). */
  writeConfig(name: string, coffers: Readonly<Record<string, CofferOverrides | null>>, extra?: Record<string, unknown>): string;
  cofferSettings(coffer: string, overrides?: CofferOverrides): Record<string, unknown>;
  close(): Promise<void>;
}

export async function startCliFixture(): Promise<CliFixture> {
  const directory = mkdtempSync(join(tmpdir(), 'coffer-cli-'));
  const upstreamKeys = { accessKeyId: `EMBEDDED${randomBytes(8).toString('hex')}`, secretAccessKey: randomBytes(24).toString('base64url') };
  const upstream = await EmbeddedUpstream.start({ directory: join(directory, 'upstream'), bucket: BUCKET, ...upstreamKeys });
  const credentials = new TestCredentialStore();
  // Static role: the gateway signs KMS (and STS) calls with the upstream keys, as a real deployment would.
  credentials.addUser(upstreamKeys.accessKeyId, upstreamKeys.secretAccessKey);
  const kms = await startKmsTestServer({ store: credentials, region: REGION });
  const sts = await startStsTestServer({ store: credentials, region: REGION, roles: [{ roleArn: ROLE_ARN }] });
  const key = kms.createKey({ alias: 'alias/coffer-cli', description: 'first key' });
  const store = new S3UpstreamStore({ endpoint: upstream.endpoint, region: REGION, bucket: BUCKET, forcePathStyle: true, credentials: async () => upstreamKeys });

  const cofferSettings = (coffer: string, overrides: CofferOverrides = {}): Record<string, unknown> => ({
    upstream: { endpoint: upstream.endpoint, region: REGION, bucket: BUCKET, prefix: PREFIXES[coffer] ?? `coffers/${coffer}/`, credentials: upstreamKeys, ...overrides.upstream },
    role: { type: 'static', ...overrides.role },
    kms: coffer === LOCAL_COFFER ? { type: 'local', keyId: 'v1', ...overrides.kms } : { type: 'aws-kms', keyId: key.arn, endpoint: kms.endpoint, region: REGION, ...overrides.kms },
  });
  const writeConfig = (name: string, coffers: Readonly<Record<string, CofferOverrides | null>>, extra: Record<string, unknown> = {}): string => {
    const file = join(directory, `${name}.json`);
    writeFileSync(
      file,
      JSON.stringify({
        server: { port: 0, adminPort: 0 },
        auth: { cos: { acceptKeyOnlyPath: true }, accessKeys: [{ ...ACCESS, grants: [{ coffer: '*', actions: ['*'] }] }] },
        keyring: { directory: join(directory, 'keyring') },
        kms: { maxAttempts: 2 },
        sts: { maxAttempts: 2 },
        logging: { level: 'silent' },
        coffers: Object.fromEntries(Object.entries(coffers).map(([coffer, overrides]) => [coffer, cofferSettings(coffer, overrides ?? {})])),
        ...extra,
      }),
    );
    return file;
  };
  const configFile = writeConfig('config', { [KMS_COFFER]: null, [LOCAL_COFFER]: null });
  return {
    directory,
    upstream,
    upstreamKeys,
    credentials,
    kms,
    sts,
    key,
    configFile,
    store,
    writeConfig,
    cofferSettings,
    close: async () => {
      store.destroy();
      await upstream.close();
      await kms.close();
      await sts.close();
      rmSync(directory, { recursive: true, force: true });
    },
  };
}

export interface FixtureGateway {
  readonly gateway: RunningGateway;
  /** Uploads through the gateway with the COS SDK's multipart upload (1 MiB parts). */
  upload(coffer: string, key: string, data: Buffer): Promise<string>;
  /** A single PutObject through the gateway. */
  put(coffer: string, key: string, data: Buffer): Promise<string>;
  /** The COS SDK client talking to the gateway (multipartInit, multipartUpload, … for open uploads). */
  readonly cos: any;
  download(coffer: string, key: string): Promise<Buffer>;
  stop(): Promise<void>;
}

export async function startFixtureGateway(fixture: CliFixture, configFile = fixture.configFile): Promise<FixtureGateway> {
  const gateway = await startGateway(loadConfig({ file: configFile, env: {} }), { log: createLogger('silent') });
  // Virtual-hosted (the SDK's default Domain, sent to the gateway's address): the key reaches every
  // coffer, so only a signed host can bind a key-only signature to one (docs/ARCHITECTURE.md).
  const cos = new COS({ SecretId: ACCESS.secretId, SecretKey: ACCESS.secretKey, Protocol: 'http:', Ip: `127.0.0.1:${gateway.port}` });
  return {
    gateway,
    upload: async (coffer, key, data) => {
      const file = join(fixture.directory, `upload-${randomBytes(6).toString('hex')}.bin`);
      writeFileSync(file, data);
      try {
        const result = await cos.sliceUploadFile({ Bucket: coffer, Region: 'ap-guangzhou', Key: key, FilePath: file, ChunkSize: MiB });
        return result.ETag as string;
      } finally {
        rmSync(file, { force: true });
      }
    },
    put: async (coffer, key, data) => (await cos.putObject({ Bucket: coffer, Region: 'ap-guangzhou', Key: key, Body: data })).ETag as string,
    cos,
    download: async (coffer, key) => (await cos.getObject({ Bucket: coffer, Region: 'ap-guangzhou', Key: key })).Body as Buffer,
    stop: () => gateway.stop(),
  };
}

/** Reads an upstream object whole. */
export async function readUpstream(store: S3UpstreamStore, key: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of (await store.getObject(key)).body) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** Every upstream object under a prefix: key → { etag, bytes }. */
export async function snapshotUpstream(store: S3UpstreamStore, prefix: string): Promise<Map<string, { etag: string; bytes: Buffer }>> {
  const out = new Map<string, { etag: string; bytes: Buffer }>();
  let token: string | undefined;
  do {
    const page = await store.listObjects(prefix, { continuationToken: token });
    for (const object of page.objects) out.set(object.key, { etag: object.etag, bytes: await readUpstream(store, object.key) });
    token = page.isTruncated ? page.nextContinuationToken : undefined;
  } while (token !== undefined);
  return out;
}

/** The upstream key of an object's data object (its manifest names the upload). */
export async function dataObjectKey(store: S3UpstreamStore, coffer: string, key: string): Promise<string> {
  const layout = upstreamLayout(PREFIXES[coffer]);
  const listing = await store.listObjects(layout.dataPrefix(key));
  if (listing.objects.length !== 1) throw new Error(`expected one data object for ${key}, found ${listing.objects.length}`);
  return (listing.objects[0] as { key: string }).key;
}
