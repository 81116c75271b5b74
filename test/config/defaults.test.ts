import { DEMO_DEFAULT_COFFER, DEMO_SCRATCH_COFFER, GiB, MiB, loadConfig } from '../../src/config';
import { CONFIG_PATH, baseConfig, fakeFs, load, problemsOf } from './helpers';

describe('defaults', () => {
  test('loadConfig with no file and no environment yields the embedded demo configuration', () => {
    const config = loadConfig({ env: {}, readFile: fakeFs({}) });
    expect(config.embeddedUpstream).toEqual({ enabled: true, directory: './data/upstream' });
    // credentials are generated at start; browser pages on this machine may call the demo coffer (CORS)
    expect(config.demo).toEqual({ enabled: true, coffer: DEMO_DEFAULT_COFFER, scratchCoffer: DEMO_SCRATCH_COFFER, cors: { allowedOrigins: ['http://localhost:*', 'http://127.0.0.1:*', 'http://[::1]:*'] } });
    expect(config.keyring).toEqual({ directory: './data/keyring', create: true });
    expect(config.coffers).toEqual({});
    expect(config.server).toEqual({
      host: '127.0.0.1',
      port: 8080,
      adminHost: '127.0.0.1',
      adminPort: 9090,
      requestIdleTimeoutMs: 60_000,
      minBodyRateBytesPerSecond: 500,
      minBodyRateGraceMs: 20_000,
      responseIdleTimeoutMs: 60_000,
      completeKeepAliveMs: 10_000,
      headersTimeoutMs: 20_000,
      requestTimeoutMs: 0,
      keepAliveTimeoutMs: 5_000,
      maxConnections: 1024,
      maxHeaderBytes: 16_384,
      acceptAbsoluteForm: true,
      virtualHostSuffixes: [],
      shutdownGraceMs: 30_000,
    });
    // The embedded default accepts what the official SDK 3.0.0 signs (`/<Key>` without the coffer).
    expect(config.auth.cos).toEqual({ maxClockSkewSeconds: 900, maxSignatureValiditySeconds: 7 * 86_400, acceptKeyOnlyPath: true });
    expect(config.auth.accessKeys).toEqual([]);
    expect(config.auth.jwt).toBeUndefined();
    expect(config.kms).toEqual({ maxAttempts: 5, requestTimeoutMs: 5_000, deadlineMs: 10_000, dataKeyCacheMaxAgeSeconds: 300, dataKeyCacheMaxEntries: 1000 });
    expect(config.sts).toEqual({ maxAttempts: 5, requestTimeoutMs: 5_000, deadlineMs: 10_000 });
    expect(config.roles).toEqual({ refreshBeforeExpirySeconds: 300 });
    expect(config.logging).toEqual({ level: 'info' });
    // npm start intercepts CONNECT to the demo coffer's endpoints with a local CA created on first start next to the keyring.
    expect(config.egress).toEqual({ enabled: true, leafValiditySeconds: 86_400, certificateCacheEntries: 1000, issuancePerMinute: 60, handshakeTimeoutMs: 10_000 });
  });

  test('the file named by COFFER_CONFIG is loaded; an explicit file wins over it', () => {
    const readFile = fakeFs({
      '/a.yaml': JSON.stringify({ ...baseConfig(), logging: { level: 'debug' } }),
      '/b.yaml': JSON.stringify({ ...baseConfig(), logging: { level: 'warn' } }),
    });
    expect(loadConfig({ env: { COFFER_CONFIG: '/a.yaml' }, readFile }).logging.level).toBe('debug');
    expect(loadConfig({ file: '/b.yaml', env: { COFFER_CONFIG: '/a.yaml' }, readFile }).logging.level).toBe('warn');
  });

  test('with a file, the embedded upstream and the demo are off unless enabled', () => {
    const config = load(baseConfig());
    expect(config.embeddedUpstream.enabled).toBe(false);
    expect(config.demo.enabled).toBe(false);
    expect(config.egress.enabled).toBe(false);
  });

  test('coffer defaults: region, path style, part sizes, static role', () => {
    const coffer = load(baseConfig()).coffers['demo-1250000000'];
    expect(coffer?.upstream).toEqual({
      endpoint: 'http://127.0.0.1:9000',
      region: 'us-east-1',
      bucket: 'coffer-demo',
      forcePathStyle: true,
      minPartSize: 5 * MiB,
      maxPartSize: 5 * GiB,
      idleTimeoutMs: 120_000,
      requestTimeoutMs: 30_000,
      connectTimeoutMs: 10_000,
    });
    expect(coffer?.role).toEqual({ type: 'static' });
  });

  test('an empty file is an empty configuration, which has no coffer and no credentials', () => {
    expect(problemsOf(() => load(undefined, { text: '' }))).toEqual(['coffers: no coffer is configured (and the demo coffer is disabled)', 'auth: no access key, JWT issuer or demo key is configured, so no request could be authorized']);
  });

  test('a missing or malformed file is reported without quoting its content', () => {
    expect(problemsOf(() => loadConfig({ file: '/nope.yaml', env: {}, readFile: fakeFs({}) }))).toEqual(['config file "/nope.yaml": cannot read (ENOENT)']);
    const text = 'server:\n  port: 1\n  port: 2\nauth: { secretKey: "super-secret-value\n';
    const problems = problemsOf(() => load(undefined, { text }));
    expect(problems.length).toBeGreaterThanOrEqual(2);
    expect(problems[0]).toMatch(/^config file "\/etc\/coffer-gateway\/config.yaml": YAML\/JSON syntax error DUPLICATE_KEY at line 3, column 3$/);
    expect(problems.join('\n')).not.toContain('super-secret-value');
    expect(problemsOf(() => load(undefined, { text: '- a\n- b\n' }))).toEqual([`config file "${CONFIG_PATH}": the top level must be a mapping of settings`]);
  });

  test('JSON files are accepted', () => {
    expect(load(undefined, { text: JSON.stringify(baseConfig()) }).coffers['demo-1250000000']?.upstream.bucket).toBe('coffer-demo');
  });
});
