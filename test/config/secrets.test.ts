import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, REDACTED, loadConfig, redactConfig } from '../../src/config';
import { INLINE_SECRET, baseConfig, fixture, load, problemsOf } from './helpers';

const FILE_SECRET = 'file-Secret-Value-abcdef0123456789';

describe('secret files', () => {
  test('are read at load time and trimmed', () => {
    const config = baseConfig();
    delete config.auth.accessKeys[0].secretKey;
    config.auth.accessKeys[0].secretKeyFile = '/run/secrets/key';
    config.coffers['demo-1250000000'].upstream.credentials = { accessKeyId: 'minio', secretAccessKeyFile: '/run/secrets/s3' };
    const loaded = load(config, { files: { '/run/secrets/key': `  ${FILE_SECRET}\n`, '/run/secrets/s3': 'minio-secret-0123\r\n' } });
    expect(loaded.auth.accessKeys[0]).toMatchObject({ secretKey: FILE_SECRET, secretKeyFile: '/run/secrets/key' });
    expect(loaded.coffers['demo-1250000000']?.upstream.credentials).toEqual({
      accessKeyId: 'minio',
      secretAccessKey: 'minio-secret-0123',
      secretAccessKeyFile: '/run/secrets/s3',
    });
  });

  test('missing files are reported together with every other problem', () => {
    const config = baseConfig();
    delete config.auth.accessKeys[0].secretKey;
    config.auth.accessKeys[0].secretKeyFile = '/run/secrets/missing';
    config.server = { port: 'x', tls: { certFile: '/tls/missing.crt', keyFile: '/tls/missing.key' } };
    config.coffers['demo-1250000000'].upstream.credentials = { accessKeyId: 'minio', secretAccessKeyFile: '/run/secrets/also-missing' };
    expect(problemsOf(() => load(config))).toEqual([
      'server.port: expected number, got string',
      'server.tls.certFile: cannot read file "/tls/missing.crt" (ENOENT)',
      'server.tls.keyFile: cannot read file "/tls/missing.key" (ENOENT)',
      'auth.accessKeys[0].secretKeyFile: cannot read file "/run/secrets/missing" (ENOENT)',
      'coffers.demo-1250000000.upstream.credentials.secretAccessKeyFile: cannot read file "/run/secrets/also-missing" (ENOENT)',
    ]);
  });

  test('exactly one of secretKey and secretKeyFile', () => {
    const both = baseConfig();
    both.auth.accessKeys[0].secretKeyFile = '/run/secrets/key';
    expect(problemsOf(() => load(both, { files: { '/run/secrets/key': FILE_SECRET } }))).toEqual(['auth.accessKeys[0].secretKeyFile: set only one of secretKey and secretKeyFile']);
    const neither = baseConfig();
    delete neither.auth.accessKeys[0].secretKey;
    expect(problemsOf(() => load(neither))).toEqual(['auth.accessKeys[0].secretKey: required (set secretKey or secretKeyFile)']);
  });

  test('TLS files: certificate and key are checked and must match', () => {
    const config = { ...baseConfig(), server: { tls: { certFile: '/tls/crt', keyFile: '/tls/key' } } };
    const loaded = load(config, { files: { '/tls/crt': fixture('tls.crt'), '/tls/key': fixture('tls.key') } });
    expect(loaded.server.tls?.keyPem).toContain('PRIVATE KEY');
    expect(problemsOf(() => load(config, { files: { '/tls/crt': fixture('other.crt'), '/tls/key': fixture('tls.key') } }))).toEqual(['server.tls.keyFile: does not match the certificate in certFile']);
    expect(problemsOf(() => load(config, { files: { '/tls/crt': fixture('tls.key'), '/tls/key': fixture('tls.crt') } }))).toEqual([
      'server.tls.certFile: file "/tls/crt" is not a PEM certificate',
      'server.tls.keyFile: file "/tls/key" is not an unencrypted PEM private key',
    ]);
  });
});

describe('secret values never appear in problems', () => {
  const SECRETS = {
    short: 'shortSecret1',
    spaced: 'has spaces inside the secret value',
    envShort: 'envSecret99',
    fileSpaced: 'file secret with spaces 0123456789',
    fileShort: 'fshort',
    urlPassword: 'urlPassw0rdSecret',
    unknownKey: 'unknownKeySecretValue0123456789',
    level: 'levelSecretValue0123456789',
    secretId: 'secret/id with slash+space 0123456789',
    demo: 'demoShort1',
  };

  test('in any message, for any kind of mistake', () => {
    const config = baseConfig();
    config.auth.accessKeys = [
      { secretId: 'AKID1', secretKey: SECRETS.short, grants: [{ coffer: '*', actions: ['*'] }] },
      { secretId: 'AKID2', secretKey: SECRETS.spaced, grants: [{ coffer: '*', actions: ['*'] }] },
      { secretId: 'AKID3', secretKeyFile: '/s/spaced', grants: [{ coffer: '*', actions: ['*'] }] },
      { secretId: 'AKID4', secretKeyFile: '/s/short', grants: [{ coffer: '*', actions: ['*'] }] },
      { secretId: 'AKID5', secretKey: 1234567890123456, grants: [{ coffer: '*', actions: ['*'] }] },
      { secretId: SECRETS.secretId, secretKey: INLINE_SECRET, secretkey: SECRETS.unknownKey, grants: [{ coffer: '*', actions: ['*'] }] },
      { secretId: 'AKID7', secretKeyFile: '/s/empty', grants: [{ coffer: '*', actions: ['*'] }] },
    ];
    config.coffers['demo-1250000000'].upstream.endpoint = `https://AKIA:${SECRETS.urlPassword}@s3.example.com`;
    config.logging = { level: SECRETS.level };
    config.demo = { secretKey: SECRETS.demo };
    const env = { COFFER__AUTH__ACCESS_KEYS__0__SECRET_KEY: SECRETS.envShort };
    let error: unknown;
    try {
      load(config, { env, files: { '/s/spaced': SECRETS.fileSpaced, '/s/short': SECRETS.fileShort, '/s/empty': ' \n' } });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const problems = (error as ConfigError).problems;
    expect(problems).toEqual([
      'auth.accessKeys[0].secretKey: must be at least 16 characters (from COFFER__AUTH__ACCESS_KEYS__0__SECRET_KEY)',
      'auth.accessKeys[1].secretKey: must not contain whitespace',
      'auth.accessKeys[2].secretKeyFile: file "/s/spaced" must hold a single value without inner whitespace or line breaks',
      'auth.accessKeys[3].secretKeyFile: the secret in file "/s/short" is too short (at least 16 bytes)',
      'auth.accessKeys[4].secretKey: expected string, got number',
      'auth.accessKeys[5].secretId: must be 3 to 128 letters, digits, ".", "_" or "-"',
      'auth.accessKeys[5].secretkey: unknown key (did you mean "secretKey"?)',
      'auth.accessKeys[6].secretKeyFile: file "/s/empty" is empty',
      'coffers.demo-1250000000.upstream.endpoint: must not contain credentials (user:password@)',
      'demo.secretKey: must be at least 16 characters',
      'logging.level: must be one of silent, error, warn, info, debug, trace',
    ]);
    const everything = [String(error), (error as Error).stack ?? '', JSON.stringify(error), ...problems].join('\n');
    for (const secret of Object.values(SECRETS)) expect(everything).not.toContain(secret);
    expect(everything).not.toContain('1234567890123456');
  });
});

describe('the loaded configuration', () => {
  test('is deep-frozen: mutation throws in strict mode', () => {
    const config = load(baseConfig());
    expect(Object.isFrozen(config)).toBe(true);
    expect(() => {
      (config.server as { port: number }).port = 1;
    }).toThrow(TypeError);
    expect(() => {
      (config.auth.accessKeys as unknown[]).push({});
    }).toThrow(TypeError);
    expect(() => {
      (config.coffers['demo-1250000000']!.upstream as { bucket: string }).bucket = 'other';
    }).toThrow(TypeError);
    expect(() => {
      (config.auth.accessKeys[0]!.grants[0]!.actions as string[])[0] = 'write';
    }).toThrow(TypeError);
    expect(config.server.port).toBe(8080);
  });

  test('redactConfig replaces every secret and keeps the rest', () => {
    const config = baseConfig();
    config.coffers['demo-1250000000'].upstream.credentials = { accessKeyId: 'minio', secretAccessKey: 'minio-secret-0123' };
    config.server = { tls: { certFile: '/tls/crt', keyFile: '/tls/key' } };
    config.auth.jwt = {
      issuer: 'https://issuer.example',
      audiences: ['gw'],
      algorithms: ['ES256'],
      jwks: { url: 'https://issuer.example/jwks', tokenFile: '/s/jwks-token' },
      rules: [{ subject: 'svc', grants: [{ coffer: '*', actions: ['read'] }] }],
    };
    config.demo = { enabled: true, secretId: 'AKIDdemo', secretKey: 'demo-secret-key-0123456789' };
    config.embeddedUpstream = { enabled: true };
    config.coffers['other-1250000000'] = config.coffers['demo-1250000000'];
    delete config.coffers['demo-1250000000'];
    config.auth.accessKeys[0].grants[0].coffer = 'other-1250000000';
    const loaded = load(config, { files: { '/tls/crt': fixture('tls.crt'), '/tls/key': fixture('tls.key'), '/s/jwks-token': 'jwks-bearer-token-0123456789' } });
    const redacted = redactConfig(loaded);
    const text = JSON.stringify(redacted);
    for (const secret of [INLINE_SECRET, 'minio-secret-0123', 'demo-secret-key-0123456789', 'PRIVATE KEY']) {
      expect(JSON.stringify(loaded)).toContain(secret);
      expect(text).not.toContain(secret);
    }
    expect(redacted.auth.accessKeys[0]?.secretKey).toBe(REDACTED);
    expect(redacted.auth.accessKeys[0]?.secretId).toBe('AKIDtest');
    expect(redacted.coffers['other-1250000000']?.upstream.credentials?.secretAccessKey).toBe(REDACTED);
    // The JWKS bearer token is re-read from its file at every fetch: only the path is in the configuration.
    expect(text).not.toContain('jwks-bearer-token-0123456789');
    expect(redacted.auth.jwt?.jwks?.tokenFile).toBe('/s/jwks-token');
    expect(redacted.server.tls?.keyPem).toBe(REDACTED);
    expect(redacted.server.tls?.certPem).toBe(fixture('tls.crt'));
    expect(redacted.demo.secretKey).toBe(REDACTED);
    expect(Object.isFrozen(redacted.auth)).toBe(true);
    expect(loaded.auth.accessKeys[0]?.secretKey).toBe(INLINE_SECRET);
  });

  test('the default readFile reads real files (config and secret file)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'coffer-config-'));
    try {
      const config = baseConfig();
      delete config.auth.accessKeys[0].secretKey;
      config.auth.accessKeys[0].secretKeyFile = join(dir, 'secret-key');
      writeFileSync(join(dir, 'secret-key'), `${FILE_SECRET}\n`, { mode: 0o600 });
      writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
      expect(loadConfig({ file: join(dir, 'config.json'), env: {} }).auth.accessKeys[0]?.secretKey).toBe(FILE_SECRET);
      expect(problemsOf(() => loadConfig({ file: join(dir, 'absent.yaml'), env: {} }))).toEqual([`config file ${JSON.stringify(join(dir, 'absent.yaml'))}: cannot read (ENOENT)`]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
