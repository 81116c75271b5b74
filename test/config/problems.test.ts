import { ConfigError } from '../../src/config';
import { baseConfig, fixture, load, problemsOf } from './helpers';

describe('every problem is reported at once, with its path', () => {
  test('a file with five distinct mistakes gives exactly five problems', () => {
    const config = baseConfig();
    config.server = { port: 70000 }; // 1: out of range
    config.logging = { level: 'loud' }; // 2: not an allowed level
    config.coffers['demo-1250000000'].upstream = { endpoint: 'http://127.0.0.1:9000' }; // 3: bucket missing
    config.coffers['demo-1250000000'].role = { type: 'sts', roleArn: 'not-an-arn' }; // 4: bad ARN
    config.auth.accessKeys[0].grants[0].actions = ['delete']; // 5: unknown action
    const problems = problemsOf(() => load(config));
    expect(problems).toEqual([
      'server.port: must be at most 65535',
      'auth.accessKeys[0].grants[0].actions[0]: must be one of read, write, list, manage, *',
      'coffers.demo-1250000000.upstream.bucket: required',
      'coffers.demo-1250000000.role.roleArn: must be a role ARN such as "arn:aws:iam::123456789012:role/name"',
      'logging.level: must be one of silent, error, warn, info, debug, trace',
    ]);
  });

  test('the thrown error lists the problems in its message and carries no cause', () => {
    const config = baseConfig();
    config.server = { port: -1 };
    let error: unknown;
    try {
      load(config);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).message).toContain('1 problem');
    expect((error as ConfigError).message).toContain('server.port: must be at least 0');
    expect((error as ConfigError).cause).toBeUndefined();
    expect(Object.isFrozen((error as ConfigError).problems)).toBe(true);
  });

  test('cross-field checks still run when unrelated sections are wrong', () => {
    const config = baseConfig();
    config.logging = { level: 'loud' };
    config.auth.accessKeys[0].grants.push({ coffer: 'typo-1250000000', actions: ['read'] });
    expect(problemsOf(() => load(config))).toEqual(['logging.level: must be one of silent, error, warn, info, debug, trace', 'auth.accessKeys[0].grants[1].coffer: is not a configured coffer']);
  });

  test('server.virtualHostSuffixes: host names of two labels or more, kept lower-case', () => {
    const config = baseConfig();
    config.server = { virtualHostSuffixes: ['internal', 'a_b.example'] };
    expect(problemsOf(() => load(config))).toEqual([
      'server.virtualHostSuffixes[0]: must be a host name with at least two labels, such as "cdcs.example.internal"',
      'server.virtualHostSuffixes[1]: must be a host name with at least two labels, such as "cdcs.example.internal"',
    ]);
    const ok = baseConfig();
    ok.server = { virtualHostSuffixes: ['Coffers.Example.Internal'] };
    expect(load(ok).server.virtualHostSuffixes).toEqual(['coffers.example.internal']);
  });

  test('wrong types name the expected type', () => {
    const config = baseConfig();
    config.server = { port: '8080', acceptAbsoluteForm: 'yes' };
    config.auth.accessKeys = { secretId: 'x' };
    expect(problemsOf(() => load(config))).toEqual(['server.port: expected number, got string', 'server.acceptAbsoluteForm: expected boolean, got string', 'auth.accessKeys: expected a list, got mapping']);
  });
});

describe('unknown keys are rejected at every level', () => {
  const cases: [string, (c: Record<string, any>) => void, string][] = [
    ['root', (c) => (c.servr = {}), 'servr: unknown key (did you mean "server"?)'],
    ['server', (c) => (c.server = { prot: 1 }), 'server.prot: unknown key (did you mean "port"?)'],
    ['server.tls', (c) => (c.server = { tls: { certFile: '/c', keyFile: '/k', ca: '/x' } }), 'server.tls.ca: unknown key'],
    ['auth', (c) => (c.auth.keys = []), 'auth.keys: unknown key'],
    ['auth.cos', (c) => (c.auth.cos = { maxClockSkew: 1 }), 'auth.cos.maxClockSkew: unknown key (did you mean "maxClockSkewSeconds"?)'],
    ['access key', (c) => (c.auth.accessKeys[0].secretkey = 'x'), 'auth.accessKeys[0].secretkey: unknown key (did you mean "secretKey"?)'],
    ['grant', (c) => (c.auth.accessKeys[0].grants[0].prefix = 'a/'), 'auth.accessKeys[0].grants[0].prefix: unknown key'],
    ['coffer', (c) => (c.coffers['demo-1250000000'].acl = 'private'), 'coffers.demo-1250000000.acl: unknown key'],
    ['upstream', (c) => (c.coffers['demo-1250000000'].upstream.Bucket = 'x'), 'coffers.demo-1250000000.upstream.Bucket: unknown key (did you mean "bucket"?)'],
    ['credentials', (c) => (c.coffers['demo-1250000000'].upstream.credentials = { accessKeyId: 'abc', secretAccessKey: 'abcdefghij', sessionToken: 't' }), 'coffers.demo-1250000000.upstream.credentials.sessionToken: unknown key'],
    ['static role', (c) => (c.coffers['demo-1250000000'].role = { type: 'static', roleArn: 'arn:aws:iam::123456789012:role/x' }), 'coffers.demo-1250000000.role.roleArn: unknown key (not valid for this type)'],
    ['kms', (c) => (c.coffers['demo-1250000000'].kms.region = 'us-east-1'), 'coffers.demo-1250000000.kms.region: unknown key (not valid for this type)'],
    ['keyring', (c) => (c.keyring = { dir: '/k' }), 'keyring.dir: unknown key'],
    ['embeddedUpstream', (c) => (c.embeddedUpstream = { port: 1 }), 'embeddedUpstream.port: unknown key'],
    ['demo', (c) => (c.demo = { bucket: 'x' }), 'demo.bucket: unknown key'],
    ['kms defaults', (c) => (c.kms = { retries: 3 }), 'kms.retries: unknown key'],
    ['sts defaults', (c) => (c.sts = { maxAttempt: 3 }), 'sts.maxAttempt: unknown key (did you mean "maxAttempts"?)'],
    ['roles', (c) => (c.roles = { refresh: 1 }), 'roles.refresh: unknown key (did you mean "refreshBeforeExpirySeconds"?)'],
    ['logging', (c) => (c.logging = { format: 'json' }), 'logging.format: unknown key'],
    [
      'jwt and its rules',
      (c) =>
        (c.auth.jwt = {
          issuer: 'i',
          audiences: ['a'],
          algorithms: ['RS256'],
          jwks: { url: 'https://example.com/jwks', refresh: 1 },
          rules: [{ subject: 's', grants: [{ coffer: '*', actions: ['read'] }], role: 'x' }],
          issuers: [],
        }),
      'auth.jwt.issuers: unknown key (did you mean "issuer"?)',
    ],
  ];

  test.each(cases)('%s', (_name, mutate, expected) => {
    const config = baseConfig();
    mutate(config);
    const problems = problemsOf(() => load(config, { files: { '/c': fixture('tls.crt'), '/k': fixture('tls.key') } }));
    expect(problems).toContain(expected);
    expect(problems.every((p) => p.includes('unknown key'))).toBe(true);
  });

  test('jwt nested objects report their own unknown keys too', () => {
    const config = baseConfig();
    cases[cases.length - 1]?.[1](config);
    expect(problemsOf(() => load(config))).toEqual(['auth.jwt.jwks.refresh: unknown key', 'auth.jwt.rules[0].role: unknown key', 'auth.jwt.issuers: unknown key (did you mean "issuer"?)']);
  });
});

describe('a whole section of the wrong type is a problem, never a crash', () => {
  // A cross-check watching `auth.accessKeys` once ran when `auth` itself was wrong (a problem at a
  // path shorter than the watched prefix did not count) and threw a TypeError out of loadConfig.
  test.each([
    ['auth', 5],
    ['auth', null],
    ['auth', 'keys'],
    ['coffers', 7],
    ['coffers', null],
    ['server', []],
  ])('%s: %p → a ConfigError naming it', (section, value) => {
    const config = baseConfig() as Record<string, unknown>;
    config[section] = value;
    let error: unknown;
    try {
      load(config as ReturnType<typeof baseConfig>);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).problems.some((p) => p.startsWith(`${section}:`))).toBe(true);
  });
});
