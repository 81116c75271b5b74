import { loadConfig } from '../../src/config';
import { INLINE_SECRET, baseConfig, fakeFs, load, problemsOf } from './helpers';

const noFile = (env: NodeJS.ProcessEnv) => loadConfig({ env, readFile: fakeFs({}) });

describe('environment overrides', () => {
  test('COFFER__ paths override file values, matching names case-insensitively', () => {
    const config = load(baseConfig(), {
      env: {
        COFFER__SERVER__PORT: '9000',
        COFFER__SERVER__REQUEST_IDLE_TIMEOUT_MS: '120000',
        COFFER__SERVER__ACCEPT_ABSOLUTE_FORM: 'false',
        COFFER__LOGGING__LEVEL: 'debug',
        COFFER__SERVER__HOST: '0.0.0.0',
      },
    });
    expect(config.server.port).toBe(9000);
    expect(config.server.requestIdleTimeoutMs).toBe(120_000);
    expect(config.server.acceptAbsoluteForm).toBe(false);
    expect(config.server.host).toBe('0.0.0.0');
    expect(config.logging.level).toBe('debug');
  });

  test('PORT overrides server.port, with or without a file', () => {
    expect(noFile({ PORT: '3000' }).server.port).toBe(3000);
    expect(load({ ...baseConfig(), server: { port: 1234 } }, { env: { PORT: '4000' } }).server.port).toBe(4000);
    expect(noFile({ PORT: '' }).server.port).toBe(8080);
    expect(noFile({ PORT: '3000', COFFER__SERVER__PORT: '3000' }).server.port).toBe(3000);
  });

  test('a malformed PORT and conflicting settings are reported with the variable name', () => {
    expect(problemsOf(() => noFile({ PORT: 'http' }))).toEqual(['server.port: expected number, got string (from PORT)']);
    expect(problemsOf(() => noFile({ PORT: '99999' }))).toEqual(['server.port: must be at most 65535 (from PORT)']);
    expect(problemsOf(() => noFile({ PORT: '3000', COFFER__SERVER__PORT: '4000' }))).toEqual(['PORT and COFFER__SERVER__PORT both set server.port to different values; set only one']);
  });

  test('the demo credentials come from COFFER_DEMO_SECRET_ID / COFFER_DEMO_SECRET_KEY', () => {
    const config = noFile({ COFFER_DEMO_SECRET_ID: 'AKIDmine', COFFER_DEMO_SECRET_KEY: 'my-own-demo-secret-key-0123' });
    expect(config.demo.secretId).toBe('AKIDmine');
    expect(config.demo.secretKey).toBe('my-own-demo-secret-key-0123');
  });

  test('unknown COFFER__ paths are errors; other variables are ignored', () => {
    const problems = problemsOf(() =>
      noFile({
        COFFER__SERVER__PROT: '1',
        COFFER__NOPE: 'x',
        COFFER__LOGGING__LEVEL__DEEP: 'x',
        COFFER__SERVER____PORT: '1',
        COFFER__AUTH__ACCESS_KEYS__FIRST__SECRET_ID: 'x',
        COFFERX__SERVER__PORT: '1',
        HOME: '/root',
        COFFER_SOMETHING: 'x',
      }),
    );
    expect(problems).toEqual([
      'COFFER__NOPE: unknown setting "nope" in the configuration root',
      'COFFER__SERVER__PROT: unknown setting "prot" in server',
      'COFFER__LOGGING__LEVEL__DEEP: logging.level is a single value and has no "deep"',
      'COFFER__SERVER____PORT: empty path segment (use "__" only between names)',
      'COFFER__AUTH__ACCESS_KEYS__FIRST__SECRET_ID: auth.accessKeys is a list; expected an index, got "first"',
    ]);
  });

  test('values are JSON when they parse; string fields always get the raw string', () => {
    const config = noFile({
      COFFER__DEMO__SECRET_ID: '12345',
      COFFER__DEMO__SECRET_KEY: 'demo-secret-key-from-env-0123',
      COFFER__KEYRING__DIRECTORY: 'null-ish/dir',
      COFFER__KMS: '{"maxAttempts": 7}',
      COFFER__KMS__DATA_KEY_CACHE_MAX_ENTRIES: '7',
    });
    expect(config.demo.secretId).toBe('12345');
    expect(config.keyring.directory).toBe('null-ish/dir');
    // The whole object replaces the section, then the deeper path applies on top of it.
    expect(config.kms).toMatchObject({ maxAttempts: 7, dataKeyCacheMaxEntries: 7, dataKeyCacheMaxAgeSeconds: 300 });
  });

  test('a whole coffer, list entries and map keys can be set from the environment', () => {
    const config = noFile({
      COFFER__DEMO__ENABLED: 'false',
      COFFER__COFFERS__ARCHIVE_1250000000__UPSTREAM__ENDPOINT: 'https://s3.eu-west-1.amazonaws.com',
      COFFER__COFFERS__ARCHIVE_1250000000__UPSTREAM__BUCKET: 'archive-bucket',
      COFFER__COFFERS__ARCHIVE_1250000000__UPSTREAM__MIN_PART_SIZE: '8MiB',
      COFFER__COFFERS__ARCHIVE_1250000000__KMS: '{"type":"local","keyId":"k1"}',
      COFFER__AUTH__ACCESS_KEYS__0__SECRET_ID: 'AKIDenv',
      COFFER__AUTH__ACCESS_KEYS__0__SECRET_KEY: INLINE_SECRET,
      COFFER__AUTH__ACCESS_KEYS__0__GRANTS: '[{"coffer":"archive-1250000000","actions":["write"]}]',
    });
    const archive = config.coffers['archive-1250000000'];
    expect(archive?.upstream).toMatchObject({ endpoint: 'https://s3.eu-west-1.amazonaws.com', bucket: 'archive-bucket', minPartSize: 8 * 1024 * 1024 });
    expect(config.auth.accessKeys).toEqual([{ secretId: 'AKIDenv', secretKey: INLINE_SECRET, secretKeyFile: undefined, grants: [{ coffer: 'archive-1250000000', actions: ['write'] }] }]);
  });

  test('map keys from the environment reuse an existing key from the file', () => {
    const config = load(baseConfig(), { env: { COFFER__COFFERS__DEMO_1250000000__UPSTREAM__BUCKET: 'other-bucket' } });
    expect(Object.keys(config.coffers)).toEqual(['demo-1250000000']);
    expect(config.coffers['demo-1250000000']?.upstream.bucket).toBe('other-bucket');
  });

  test('null removes a setting; list indices may not leave holes', () => {
    const withPrefix = baseConfig();
    withPrefix.coffers['demo-1250000000'].upstream.prefix = 'a/';
    expect(load(withPrefix, { env: { COFFER__COFFERS__DEMO_1250000000__UPSTREAM__PREFIX: 'null' } }).coffers['demo-1250000000']?.upstream.prefix).toBeUndefined();
    expect(problemsOf(() => noFile({ COFFER__AUTH__ACCESS_KEYS__2__SECRET_ID: 'x' }))).toEqual(['COFFER__AUTH__ACCESS_KEYS__2__SECRET_ID: index 2 is beyond the end of auth.accessKeys (length 0)']);
  });

  test('validation problems of overridden values name the variable', () => {
    expect(problemsOf(() => load(baseConfig(), { env: { COFFER__SERVER: '{"prot": 1}', COFFER__LOGGING__LEVEL: 'loud' } }))).toEqual([
      'server.prot: unknown key (did you mean "port"?) (from COFFER__SERVER)',
      'logging.level: must be one of silent, error, warn, info, debug, trace (from COFFER__LOGGING__LEVEL)',
    ]);
  });

  test('a value that cannot be placed is reported', () => {
    expect(problemsOf(() => load({ ...baseConfig(), server: 5 }, { env: { COFFER__SERVER__PORT: '1' } }))).toEqual(['COFFER__SERVER__PORT: cannot set server.port because server is not a mapping', 'server: expected a mapping, got number']);
  });
});
