/**
 * The gateway's dependency metrics move with real traffic, read back the way Prometheus reads them (a
 * scrape of /metrics on the admin port): data-key cache hits and misses (two gateways on one upstream,
 * so the second starts cold), STS AssumeRole by result and role-credential lookups by outcome (the real
 * STS client against the strict STS test server), and JWKS fetches by result (a real JWKS endpoint).
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { loadConfig } from '../../src/config';
import { EmbeddedUpstream } from '../../src/embedded-upstream';
import { createLogger } from '../../src/observability/logger';
import { collectDefaultMetrics } from 'prom-client';
import { createMetrics, NODE_PROCESS_COLLECTORS } from '../../src/observability/metrics';
import { startGateway, type RunningGateway } from '../../src/app/serve';
import { AUDIENCE, ISSUER, SA_SUBJECT, makeKey, mint } from '../auth/jwt-test-tokens';
import { cos, initiate, type CosTarget } from '../support/cos-http-client';
import { startJwksTestServer, type JwksTestServer } from '../support/jwks-test-server';
import { TestCredentialStore, startStsTestServer, type StsTestServer } from '../support/sts-test-server';

const MiB = 1024 * 1024;
const DEMO = 'demo-1250000000';
const STS_COFFER = 'sts-1250000000';
const ROLE = 'arn:aws:iam::111122223333:role/coffer-sts';
const BASE = { accessKeyId: 'AKIDGATEWAYBASE01', secretAccessKey: 'base-secret-never-logged' };
const DEMO_KEY = { secretId: 'AKIDmetricsdemo', secretKey: 'metrics-demo-secret-0123456789' };
const STS_OK = { secretId: 'AKIDmetricssts1', secretKey: 'metrics-sts-secret-one-0123456789' };
const STS_FAIL = { secretId: 'AKIDmetricssts2', secretKey: 'metrics-sts-secret-two-0123456789' };

/** One sample of a scrape: metric name, labels, value. */
interface Sample {
  readonly name: string;
  readonly labels: Record<string, string>;
  readonly value: number;
}

function parseScrape(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (match === null) continue;
    const labels: Record<string, string> = {};
    for (const pair of (match[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[pair[1] as string] = pair[2] as string;
    samples.push({ name: match[1] as string, labels, value: Number(match[3]) });
  }
  return samples;
}

/** Scrapes the admin port; `value(name, labels)` sums the samples whose labels include `labels` (0 when absent). */
async function scrape(gateway: RunningGateway): Promise<(name: string, labels?: Record<string, string>) => number> {
  const response = await fetch(`http://127.0.0.1:${gateway.adminPort}/metrics`);
  expect(response.status).toBe(200);
  const samples = parseScrape(await response.text());
  return (name, labels = {}) => samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)).reduce((sum, s) => sum + s.value, 0);
}

let directory: string;
let configFile: string;
let sts: StsTestServer;
let stsUpstream: EmbeddedUpstream;
let jwks: JwksTestServer;
let signingKey: Awaited<ReturnType<typeof makeKey>>;
let otherKey: Awaited<ReturnType<typeof makeKey>>;

beforeAll(async () => {
  directory = mkdtempSync(join(tmpdir(), 'coffer-metrics-'));
  const store = new TestCredentialStore();
  store.addUser(BASE.accessKeyId, BASE.secretAccessKey);
  // STS issues 900 s credentials as if 700 s ago: 200 s of validity is left, inside the SDK's 5-minute
  // refresh margin, so every upstream request asks the role provider again (a cache hit) instead of
  // the SDK's own memo. The provider's refresh point is 100 s away: nothing refreshes during the test.
  sts = await startStsTestServer({ store, now: () => Date.now() - 700_000, roles: [{ roleArn: ROLE }] });
  // The STS coffer's upstream knows none of the issued keys: its requests fail after the credentials
  // were obtained, which is all the role metrics need (and a real S3 would answer the same 403).
  stsUpstream = await EmbeddedUpstream.start({ directory: join(directory, 'sts-upstream'), bucket: 'coffer-sts', accessKeyId: 'AKIDOTHERUPSTREAM', secretAccessKey: 'other-upstream-secret-0123' });
  signingKey = await makeKey('k1');
  otherKey = await makeKey('k2');
  jwks = await startJwksTestServer({ keys: [signingKey.publicJwk] });
  configFile = join(directory, 'config.yaml');
  writeFileSync(
    configFile,
    stringify({
      server: { port: 0, adminPort: 0 },
      embeddedUpstream: { enabled: true, directory: join(directory, 'upstream') },
      demo: { enabled: true, ...DEMO_KEY },
      keyring: { directory: join(directory, 'keyring') },
      coffers: {
        [STS_COFFER]: {
          upstream: { endpoint: stsUpstream.endpoint, bucket: 'coffer-sts', credentials: BASE },
          role: { type: 'sts', roleArn: ROLE, endpoint: sts.endpoint, durationSeconds: 900 },
          kms: { type: 'local', keyId: 'sts' },
        },
      },
      auth: {
        accessKeys: [STS_OK, STS_FAIL].map((k) => ({ ...k, grants: [{ coffer: STS_COFFER, actions: ['*'] }] })),
        jwt: {
          issuer: ISSUER,
          audiences: [AUDIENCE],
          algorithms: ['RS256'],
          // No cooldown, so the unknown-kid lookup below refetches at once.
          jwks: { url: jwks.url, cooldownSeconds: 0 },
          rules: [{ subject: SA_SUBJECT, grants: [{ coffer: DEMO, actions: ['list'] }] }],
        },
      },
    }),
  );
});

afterAll(async () => {
  await Promise.all([sts?.close(), stsUpstream?.close(), jwks?.close()]);
  rmSync(directory, { recursive: true, force: true });
});

const start = (): Promise<RunningGateway> => startGateway(loadConfig({ file: configFile, env: {} }), { log: createLogger('silent') });
const demo = (gateway: RunningGateway): CosTarget => ({ port: gateway.port, coffer: DEMO, ...DEMO_KEY });
const stsCoffer = (gateway: RunningGateway, key: typeof STS_OK): CosTarget => ({ port: gateway.port, coffer: STS_COFFER, ...key });

test('data-key cache, STS and JWKS series move with real traffic', async () => {
  const part = (n: number) => randomBytes(n === 3 ? MiB : 5 * MiB);

  // Gateway A: Initiate puts the new data key in the cache; the part upload then finds it there.
  const first = await start();
  let uploadId: string;
  try {
    uploadId = await initiate(demo(first), 'metrics.bin');
    expect(
      (
        await cos(
          demo(first),
          'PUT',
          'metrics.bin',
          [
            ['partNumber', '1'],
            ['uploadId', uploadId],
          ],
          part(1),
        )
      ).status,
    ).toBe(200);
    const a = await scrape(first);
    expect(a('coffer_gateway_data_key_cache_lookups_total', { result: 'hit' })).toBe(1);
    expect(a('coffer_gateway_data_key_cache_lookups_total', { result: 'miss' })).toBe(0);
  } finally {
    await first.stop();
  }

  const second = await start();
  try {
    // Gateway B starts cold: its first part of the upload misses (and unwraps the key, to open the sealed
    // upload record, FORMAT.md §8.1); the part then finds the key in the cache, and so does the next part.
    expect(
      (
        await cos(
          demo(second),
          'PUT',
          'metrics.bin',
          [
            ['partNumber', '2'],
            ['uploadId', uploadId],
          ],
          part(2),
        )
      ).status,
    ).toBe(200);
    let b = await scrape(second);
    expect(b('coffer_gateway_data_key_cache_lookups_total', { result: 'miss' })).toBe(1);
    expect(b('coffer_gateway_data_key_cache_lookups_total', { result: 'hit' })).toBe(1);
    expect(b('coffer_gateway_key_provider_calls_total', { operation: 'Decrypt', result: 'ok' })).toBe(1);
    expect(
      (
        await cos(
          demo(second),
          'PUT',
          'metrics.bin',
          [
            ['partNumber', '3'],
            ['uploadId', uploadId],
          ],
          part(3),
        )
      ).status,
    ).toBe(200);
    b = await scrape(second);
    expect(b('coffer_gateway_data_key_cache_lookups_total', { result: 'hit' })).toBe(2);
    expect(b('coffer_gateway_data_key_cache_lookups_total', { result: 'miss' })).toBe(1);

    // The readiness check assumes the role once under its own session, then stops at the upstream (which
    // refuses the issued keys): counts below are relative to that.
    for (let i = 0; i < 400 && !/upstream:/.test(await (await fetch(`http://127.0.0.1:${second.adminPort}/readyz`)).text()); i += 1) await new Promise((resolve) => setTimeout(resolve, 25));
    b = await scrape(second);
    const readinessAssumes = b('coffer_gateway_sts_assume_role_total', { coffer: STS_COFFER, result: 'ok' });
    expect(readinessAssumes).toBe(1);
    const stsCallsBefore = sts.callCount();

    // STS: the first request of a session waits for AssumeRole (misses: the request's concurrent upstream
    // calls all wait for the one AssumeRole); later ones are served from the cache.
    const firstSts = await cos(stsCoffer(second, STS_OK), 'POST', 'role.bin', [['uploads', '']]);
    expect(firstSts.status).toBeGreaterThanOrEqual(400); // the upstream refuses the issued keys, see beforeAll
    b = await scrape(second);
    expect(b('coffer_gateway_sts_assume_role_total', { coffer: STS_COFFER, result: 'ok' })).toBe(readinessAssumes + 1);
    const misses = b('coffer_gateway_role_credentials_total', { coffer: STS_COFFER, outcome: 'miss' });
    expect(misses).toBeGreaterThanOrEqual(1);
    const hitsBefore = b('coffer_gateway_role_credentials_total', { coffer: STS_COFFER, outcome: 'hit' });
    await cos(stsCoffer(second, STS_OK), 'POST', 'role.bin', [['uploads', '']]);
    b = await scrape(second);
    expect(b('coffer_gateway_role_credentials_total', { coffer: STS_COFFER, outcome: 'hit' })).toBeGreaterThan(hitsBefore);
    expect(b('coffer_gateway_role_credentials_total', { coffer: STS_COFFER, outcome: 'miss' })).toBe(misses);
    expect(b('coffer_gateway_sts_assume_role_total', { coffer: STS_COFFER, result: 'ok' })).toBe(readinessAssumes + 1);
    expect(sts.callCount()).toBe(stsCallsBefore + 1);

    // Another session while STS refuses: AssumeRole fails (AccessDenied is not retried) and the client gets 409.
    sts.failAlways('AccessDenied');
    const refused = await cos(stsCoffer(second, STS_FAIL), 'POST', 'role.bin', [['uploads', '']]);
    expect(refused.status).toBe(409);
    expect(refused.text).toContain('<Code>AssumeRoleFailed</Code>');
    b = await scrape(second);
    expect(b('coffer_gateway_sts_assume_role_total', { coffer: STS_COFFER, result: 'error' })).toBe(1);
    expect(b('coffer_gateway_sts_assume_role_total', { coffer: STS_COFFER, result: 'ok' })).toBe(readinessAssumes + 1);

    // JWKS: the first token fetches the key set; a token with an unknown kid refetches, and that fetch fails.
    const listUploads = async (token: string) => (await fetch(`http://127.0.0.1:${second.port}/${DEMO}?uploads`, { headers: { authorization: `Bearer ${token}` } })).status;
    expect(await listUploads(await mint({ key: signingKey, nowMs: Date.now() }))).toBe(200);
    b = await scrape(second);
    expect(b('coffer_gateway_jwks_fetches_total', { result: 'ok' })).toBe(1);
    expect(b('coffer_gateway_jwks_fetches_total', { result: 'error' })).toBe(0);
    jwks.setMode('http-503');
    expect(await listUploads(await mint({ key: otherKey, nowMs: Date.now() }))).toBeGreaterThanOrEqual(400);
    b = await scrape(second);
    expect(b('coffer_gateway_jwks_fetches_total', { result: 'error' })).toBe(1);
    expect(b('coffer_gateway_jwks_fetches_total', { result: 'ok' })).toBe(1);
    expect(jwks.requests).toBe(2);
  } finally {
    await second.stop();
  }
});

test("Node's process metrics keep their usual names (stock dashboards work) and build_info says which build runs", async () => {
  const text = await createMetrics().registry.metrics();
  expect(text).toMatch(/^process_cpu_seconds_total /m);
  expect(text).toMatch(/^nodejs_heap_size_used_bytes /m);
  expect(text).not.toMatch(/^coffer_gateway_process_/m);
  const { version } = JSON.parse(readFileSync(join(__dirname, '..', '..', 'package.json'), 'utf8')) as { version: string };
  expect(text).toContain(`coffer_gateway_build_info{version="${version}",nodejs="${process.versions.node}"} 1`);
});

test("Node's process metrics are prom-client's default ones but the GC histogram, whose per-collection entries piled up as old-generation garbage", async () => {
  // A collector prom-client adds or renames in an upgrade shows up here.
  expect([...NODE_PROCESS_COLLECTORS].sort()).toEqual(collectDefaultMetrics.metricsList.filter((name) => name !== 'gc').sort());
  const text = await createMetrics().registry.metrics();
  for (const name of [
    'process_cpu_seconds_total',
    'process_start_time_seconds',
    'process_resident_memory_bytes',
    'process_open_fds',
    'process_max_fds',
    'nodejs_eventloop_lag_p99_seconds',
    'nodejs_active_resources_total',
    'nodejs_active_handles_total',
    'nodejs_active_requests_total',
    'nodejs_heap_size_used_bytes',
    'nodejs_heap_space_size_used_bytes',
    'nodejs_version_info',
  ]) {
    expect(text).toContain(`# TYPE ${name} `);
  }
  expect(text).not.toContain('nodejs_gc_duration_seconds');
});

test('docs/reference/metrics.md lists every metric the gateway exports (beyond Node process metrics)', async () => {
  const doc = readFileSync(join(__dirname, '..', '..', 'docs', 'reference', 'metrics.md'), 'utf8');
  const names = (await createMetrics({ defaultMetrics: false }).registry.getMetricsAsJSON()).map((metric) => metric.name);
  expect(names.length).toBeGreaterThan(15);
  const missing = names.filter((name) => !doc.includes(`\`${name}\``) && !doc.includes(`\`${name.replace(/_total$/, '')}`));
  expect(missing).toEqual([]);
});
