import { createPublicKey } from 'node:crypto';
import { loadConfig } from '../../src/config';
import { baseConfig, fakeFs, fixture, load, problemsOf } from './helpers';

const COFFER = 'coffers.demo-1250000000';
const withCoffer = (mutate: (coffer: Record<string, any>) => void) => {
  const config = baseConfig();
  mutate(config.coffers['demo-1250000000']);
  return config;
};

describe('coffers', () => {
  test.each([['Demo-1250000000'], ['demo'], ['demo-'], ['-demo-1250000000'], ['demo_x-1250000000'], ['demo-1250000000-']])('coffer name %s is refused', (name) => {
    const config = baseConfig();
    config.coffers = { [name]: config.coffers['demo-1250000000'] };
    config.auth.accessKeys[0].grants[0].coffer = '*';
    expect(problemsOf(() => load(config))).toEqual([expect.stringMatching(/^coffers(\.|\[).*: invalid name, must be a coffer name "<name>-<APPID>"/)]);
  });

  test.each([
    ['ab', 'must be 3 to 63 characters long'],
    ['Upper-case', 'may contain only lowercase letters'],
    ['a..b', 'must not contain "..", ".-" or "-."'],
    ['192.168.1.1', 'must not be formatted as an IP address'],
    ['xn--bucket', 'must not start with "xn--"'],
    ['bucket-s3alias', 'must not end with a reserved S3 suffix'],
  ])('bucket %s is refused', (bucket, message) => {
    const problems = problemsOf(() => load(withCoffer((c) => (c.upstream.bucket = bucket))));
    expect(problems.some((p) => p.startsWith(`${COFFER}.upstream.bucket: ${message}`))).toBe(true);
  });

  test.each([
    ['/a/', 'must not start with "/"'],
    ['a', 'must end with "/"'],
    ['a//b/', 'must not contain "//"'],
    ['a/../', 'must not contain "." or ".." segments'],
  ])('prefix %s is refused', (prefix, message) => {
    expect(problemsOf(() => load(withCoffer((c) => (c.upstream.prefix = prefix))))).toContain(`${COFFER}.upstream.prefix: ${message}`);
  });

  test('an empty prefix means none; a valid prefix is kept', () => {
    expect(load(withCoffer((c) => (c.upstream.prefix = ''))).coffers['demo-1250000000']?.upstream.prefix).toBeUndefined();
    expect(load(withCoffer((c) => (c.upstream.prefix = 'tenant/a/'))).coffers['demo-1250000000']?.upstream.prefix).toBe('tenant/a/');
  });

  test.each([
    ['s3.amazonaws.com', 'must be an absolute http:// or https:// URL'],
    ['ftp://s3.example.com', 'must use http:// or https://'],
    ['https://s3.example.com/path', 'must not have a path (use upstream.prefix for a key prefix)'],
    ['https://s3.example.com/?x=1', 'must not have a query or fragment'],
  ])('endpoint %s is refused', (endpoint, message) => {
    expect(problemsOf(() => load(withCoffer((c) => (c.upstream.endpoint = endpoint))))).toEqual([`${COFFER}.upstream.endpoint: ${message}`]);
  });

  test('endpoints are normalized to their origin', () => {
    expect(load(withCoffer((c) => (c.upstream.endpoint = 'HTTPS://S3.Example.com:443/'))).coffers['demo-1250000000']?.upstream.endpoint).toBe('https://s3.example.com');
  });

  test('part sizes accept IEC units and are bounded', () => {
    const sized = load(withCoffer((c) => Object.assign(c.upstream, { minPartSize: '8 MiB', maxPartSize: '1.5GiB' })));
    expect(sized.coffers['demo-1250000000']?.upstream).toMatchObject({ minPartSize: 8 * 1024 ** 2, maxPartSize: 1.5 * 1024 ** 3 });
    expect(problemsOf(() => load(withCoffer((c) => Object.assign(c.upstream, { minPartSize: '512KiB', maxPartSize: '6GiB' }))))).toEqual([
      `${COFFER}.upstream.minPartSize: must be at least 1 MiB`,
      `${COFFER}.upstream.maxPartSize: must be at most 5 GiB`,
    ]);
    expect(problemsOf(() => load(withCoffer((c) => Object.assign(c.upstream, { minPartSize: '1GiB', maxPartSize: '10MiB' }))))).toEqual([`${COFFER}.upstream.minPartSize: must not exceed maxPartSize`]);
    expect(problemsOf(() => load(withCoffer((c) => (c.upstream.minPartSize = '5 megabytes'))))).toEqual([`${COFFER}.upstream.minPartSize: expected a whole number of bytes or a size such as "5MiB" (units B, KiB, MiB, GiB)`]);
  });

  test('sts role: ARN, duration bounds, region defaulting, refresh margin', () => {
    const sts = { type: 'sts', roleArn: 'arn:aws:iam::123456789012:role/path/coffer-demo' };
    const loaded = load(withCoffer((c) => Object.assign(c, { role: sts, upstream: { ...c.upstream, region: 'eu-west-3' } })));
    expect(loaded.coffers['demo-1250000000']?.role).toEqual({ ...sts, sessionName: 'coffer-gateway', durationSeconds: 3600, region: 'eu-west-3' });
    expect(load(withCoffer((c) => (c.role = { ...sts, roleArn: 'arn:minio:iam:::role/abc' }))).coffers['demo-1250000000']?.role.type).toBe('sts');
    expect(problemsOf(() => load(withCoffer((c) => (c.role = { ...sts, roleArn: 'arn:aws:iam::12345:role/x', durationSeconds: 600 }))))).toEqual([
      `${COFFER}.role.roleArn: must be a role ARN such as "arn:aws:iam::123456789012:role/name"`,
      `${COFFER}.role.durationSeconds: must be at least 900`,
    ]);
    expect(problemsOf(() => load(withCoffer((c) => (c.role = { type: 'assume' }))))).toEqual([`${COFFER}.role.type: type must be "static" or "sts"`]);
    const tight = { ...withCoffer((c) => (c.role = { ...sts, durationSeconds: 900 })), roles: { refreshBeforeExpirySeconds: 900 } };
    expect(problemsOf(() => load(tight))).toEqual(['roles.refreshBeforeExpirySeconds: must be shorter than coffers.demo-1250000000.role.durationSeconds']);
  });

  test('aws-kms: key id forms and region resolution', () => {
    const arn = 'arn:aws:kms:ap-southeast-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab';
    const fromArn = load(withCoffer((c) => (c.kms = { type: 'aws-kms', keyId: arn })));
    expect(fromArn.coffers['demo-1250000000']?.kms).toEqual({ type: 'aws-kms', keyId: arn, region: 'ap-southeast-1', previousKeyIds: [] });
    expect(problemsOf(() => load(withCoffer((c) => (c.kms = { type: 'aws-kms', keyId: arn, previousKeyIds: ['alias/old'] }))))).toEqual([`${COFFER}.kms.previousKeyIds[0]: must be a KMS key ARN (as recorded in object envelopes)`]);
    expect(load(withCoffer((c) => (c.kms = { type: 'aws-kms', keyId: 'alias/coffer', region: 'us-west-2' }))).coffers['demo-1250000000']?.kms).toMatchObject({ region: 'us-west-2' });
    expect(problemsOf(() => load(withCoffer((c) => (c.kms = { type: 'aws-kms', keyId: 'alias/coffer' }))))).toEqual([`${COFFER}.kms.region: required unless kms.keyId is an ARN`]);
    expect(problemsOf(() => load(withCoffer((c) => (c.kms = { type: 'aws-kms', keyId: arn, region: 'us-east-1' }))))).toEqual([`${COFFER}.kms.region: does not match the region of the kms.keyId ARN`]);
    expect(problemsOf(() => load(withCoffer((c) => (c.kms = { type: 'aws-kms', keyId: 'alias/aws/s3', region: 'us-east-1' }))))).toEqual([`${COFFER}.kms.keyId: must not be an AWS managed key (alias/aws/…)`]);
    expect(problemsOf(() => load(withCoffer((c) => (c.kms = { type: 'local', keyId: '../etc/passwd' }))))).toEqual([`${COFFER}.kms.keyId: must be 1 to 128 letters, digits, ".", "_" or "-", starting with a letter or digit`]);
  });
});

describe('auth', () => {
  const jwtBase = () => ({
    issuer: 'https://issuer.example',
    audiences: ['coffer-gateway'],
    algorithms: ['ES256'],
    jwks: { url: 'https://issuer.example/jwks' },
    rules: [{ subject: 'system:serviceaccount:ns:sa', grants: [{ coffer: 'demo-1250000000', actions: ['write'] }] }],
  });
  const withJwt = (jwt: Record<string, unknown>) => ({ ...baseConfig(), auth: { jwt } });

  test('a JWKS-based issuer loads with its defaults', () => {
    expect(load(withJwt(jwtBase())).auth.jwt).toMatchObject({
      keySource: 'jwks',
      clockToleranceSeconds: 30,
      jwks: { url: 'https://issuer.example/jwks', cacheMaxAgeSeconds: 600, cooldownSeconds: 30, timeoutMs: 5000 },
    });
  });

  test('algorithm allow-list: asymmetric only, no "none", HS* refused with the reason', () => {
    expect(problemsOf(() => load(withJwt({ ...jwtBase(), algorithms: ['none'] })))).toEqual([expect.stringMatching(/^auth\.jwt\.algorithms\[0\]: must be one of RS256, .*\("none" is never accepted\)$/)]);
    expect(problemsOf(() => load(withJwt({ ...jwtBase(), algorithms: ['ES256', 'HS256', 'HS512'] })))).toEqual([
      'auth.jwt.algorithms[1]: HS256 is not supported: only asymmetric algorithms are accepted (a shared HMAC secret would let the gateway mint tokens, too)',
      'auth.jwt.algorithms[2]: HS512 is not supported: only asymmetric algorithms are accepted (a shared HMAC secret would let the gateway mint tokens, too)',
    ]);
  });

  test('hmacSecretFile is refused with the reason, not as a bare unknown key', () => {
    const hmac = { ...jwtBase(), jwks: undefined, hmacSecretFile: '/s/hmac', algorithms: ['HS256'] };
    expect(problemsOf(() => load(withJwt(hmac), { files: { '/s/hmac': 'x'.repeat(32) } }))).toEqual([
      'auth.jwt.algorithms[0]: HS256 is not supported: only asymmetric algorithms are accepted (a shared HMAC secret would let the gateway mint tokens, too)',
      'auth.jwt.hmacSecretFile: is not supported: only asymmetric algorithms are accepted (a shared HMAC secret would let the gateway mint tokens, too); use jwks, keys or publicKeyFiles',
    ]);
    // Next to a valid key source it is still refused (never silently ignored).
    expect(problemsOf(() => load(withJwt({ ...jwtBase(), hmacSecretFile: '/s/hmac' }), { files: { '/s/hmac': 'x'.repeat(32) } }))).toEqual([
      'auth.jwt.hmacSecretFile: is not supported: only asymmetric algorithms are accepted (a shared HMAC secret would let the gateway mint tokens, too); use jwks, keys or publicKeyFiles',
    ]);
  });

  test('exactly one key source', () => {
    expect(problemsOf(() => load(withJwt({ ...jwtBase(), jwks: undefined })))).toEqual(['auth.jwt: set exactly one key source: jwks, keys or publicKeyFiles']);
    expect(problemsOf(() => load(withJwt({ ...jwtBase(), publicKeyFiles: ['/k.pub'] }), { files: { '/k.pub': fixture('jwt-signing.pub') } }))).toEqual(['auth.jwt: set exactly one key source, not jwks and publicKeyFiles']);
  });

  test('inline JWKs and public key files: public keys only, of a type the algorithms can use', () => {
    const jwk = createPublicKey(fixture('jwt-signing.pub')).export({ format: 'jwk' });
    expect(load(withJwt({ ...jwtBase(), jwks: undefined, keys: [{ ...jwk, kid: 'k1' }] })).auth.jwt?.keySource).toBe('keys');
    expect(problemsOf(() => load(withJwt({ ...jwtBase(), jwks: undefined, keys: [{ ...jwk, d: 'secret' }] })))).toEqual(['auth.jwt.keys[0]: must be a public key (private or symmetric key members such as "d" or "k" are refused)']);
    expect(problemsOf(() => load(withJwt({ ...jwtBase(), jwks: undefined, algorithms: ['RS256'], keys: [jwk] })))).toEqual(['auth.jwt.keys[0]: cannot verify any of auth.jwt.algorithms (key type and algorithms do not match)']);
    const files = { '/k.pub': fixture('jwt-signing.pub'), '/k.key': fixture('tls.key') };
    expect(load(withJwt({ ...jwtBase(), jwks: undefined, publicKeyFiles: ['/k.pub'] }), { files }).auth.jwt?.publicKeyPems).toEqual([fixture('jwt-signing.pub')]);
    expect(problemsOf(() => load(withJwt({ ...jwtBase(), jwks: undefined, publicKeyFiles: ['/k.key'] }), { files }))).toEqual(['auth.jwt.publicKeyFiles[0]: file "/k.key" holds a private key; mount only the public key']);
  });

  test('JWKS over plain http only for loopback; rules need subject or claims', () => {
    expect(problemsOf(() => load(withJwt({ ...jwtBase(), jwks: { url: 'http://issuer.example/jwks' } })))).toEqual(['auth.jwt.jwks.url: must use https:// (plain http is accepted only for loopback hosts)']);
    expect(load(withJwt({ ...jwtBase(), jwks: { url: 'http://127.0.0.1:8443/jwks' } })).auth.jwt?.jwks?.url).toBe('http://127.0.0.1:8443/jwks');
    const rules = [{ grants: [{ coffer: '*', actions: ['read'] }] }, { claims: {}, grants: [{ coffer: '*', actions: ['read'] }] }];
    expect(problemsOf(() => load(withJwt({ ...jwtBase(), rules })))).toEqual([
      'auth.jwt.rules[0]: needs subject, claims or both (a rule matching every token is refused)',
      'auth.jwt.rules[1]: needs subject, claims or both (a rule matching every token is refused)',
    ]);
  });

  test('grants must name configured coffers; SecretIds are unique', () => {
    const config = baseConfig();
    config.auth.accessKeys.push({ secretId: 'AKIDtest', secretKey: 'another-secret-key-0123', grants: [{ coffer: 'typo-1250000000', actions: ['read'] }] });
    config.auth.jwt = { ...jwtBase(), rules: [{ subject: 's', grants: [{ coffer: 'other-1250000000', actions: ['read'] }] }] };
    expect(problemsOf(() => load(config))).toEqual([
      'auth.accessKeys[1].grants[0].coffer: is not a configured coffer',
      'auth.jwt.rules[0].grants[0].coffer: is not a configured coffer',
      'auth.accessKeys[1].secretId: is used by another access key (or the demo key)',
    ]);
  });
});

describe('server and demo', () => {
  test('timeouts and ports are cross-checked', () => {
    expect(problemsOf(() => load({ ...baseConfig(), server: { requestTimeoutMs: 10_000, headersTimeoutMs: 20_000, adminPort: 8080 } }))).toEqual([
      'server.headersTimeoutMs: must not exceed server.requestTimeoutMs when that is set (Node refuses it)',
      'server.adminPort: must differ from server.port',
    ]);
    expect(load({ ...baseConfig(), server: { port: 0, adminPort: 0 } }).server.port).toBe(0);
  });

  test('demo credentials come in pairs from the environment, or are generated at start', () => {
    expect(problemsOf(() => loadConfig({ env: { COFFER_DEMO_SECRET_ID: 'AKIDmine' }, readFile: fakeFs({}) }))).toEqual([
      'demo.secretKey: set both demo.secretId and demo.secretKey (COFFER_DEMO_SECRET_ID / COFFER_DEMO_SECRET_KEY), or neither to have them generated at start',
    ]);
    const own = loadConfig({ env: { COFFER_DEMO_SECRET_ID: 'AKIDmine', COFFER_DEMO_SECRET_KEY: 'my-own-demo-secret-0123', COFFER__SERVER__HOST: '0.0.0.0' }, readFile: fakeFs({}) });
    expect(own.demo).toMatchObject({ secretId: 'AKIDmine', secretKey: 'my-own-demo-secret-0123' });
    expect(loadConfig({ env: { COFFER__SERVER__HOST: '::1' }, readFile: fakeFs({}) }).demo.secretKey).toBeUndefined();
  });

  test('the demo needs the embedded upstream and its own coffer name', () => {
    expect(problemsOf(() => load({ ...baseConfig(), demo: { enabled: true } }))).toEqual(['demo.enabled: requires embeddedUpstream.enabled', 'demo.coffer: is also configured in coffers']);
  });
});

describe('lifecycle and policies', () => {
  test('defaults: a 24 h lifecycle day, 30 s caches, no principals', () => {
    const config = load(baseConfig());
    expect(config.lifecycle).toEqual({ dayLengthSeconds: 86_400, cacheSeconds: 30 });
    expect(config.policies).toEqual({ cacheSeconds: 30, principals: [] });
  });

  test('a principal mapping names a configured access key or a JWT subject, exactly one, and a qcs::cam:: principal', () => {
    const config = baseConfig();
    const secretId = config.auth.accessKeys[0].secretId as string;
    config.policies = {
      principals: [
        { accessKey: secretId, principal: 'qcs::cam::uin/100000000001:uin/100000000011' },
        { jwtSubject: 'system:serviceaccount:ns:app', principal: 'qcs::cam::uin/100000000001:uin/100000000022' },
        { accessKey: 'AKIDnobody', principal: 'qcs::cam::uin/100000000001:uin/100000000033' },
        { accessKey: secretId, jwtSubject: 'x', principal: 'qcs::cam::uin/100000000001:uin/100000000044' },
        { accessKey: secretId, principal: 'uin/100000000055' },
      ],
    };
    expect(problemsOf(() => load(config))).toEqual([
      'policies.principals[3].accessKey: set exactly one of accessKey and jwtSubject',
      'policies.principals[4].principal: must be a principal such as "qcs::cam::uin/100000000001:uin/100000000011"',
    ]);
    config.policies.principals = config.policies.principals.slice(0, 3);
    expect(problemsOf(() => load(config))).toEqual(['policies.principals[2].accessKey: is not the SecretId of a configured access key']);
  });
});
