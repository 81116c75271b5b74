import { createHmac } from 'node:crypto';
import { exportJWK, SignJWT } from 'jose';
import type { AuthRequest } from '../../src/auth/auth-request';
import { createJwtAuthenticator, type JwtAuthenticatorOptions, sessionNameForSubject } from '../../src/auth/jwt-authenticator';
import { createJwtKeyResolver } from '../../src/auth/jwt-key-source';
import type { JwtGrantRule } from '../../src/auth/jwt-grant-rules';
import type { JwtKeyResolver } from '../../src/auth/jwks-cache';
import { type JwksTestServer, startJwksTestServer } from '../support/jwks-test-server';
import { AUDIENCE, b64url, ISSUER, makeKey, mint, SA_SUBJECT, START_MS, type TestKey } from './jwt-test-tokens';
import { rejection } from '../support/gateway-rejection';

const RULES: JwtGrantRule[] = [
  { subject: SA_SUBJECT, grants: [{ coffer: 'uploads-1250000000', actions: ['write'] }] },
  { claims: { 'kubernetes.io.namespace': 'team-a' }, grants: [{ coffer: 'team-a-1250000000', actions: ['read', 'list'] }] },
];

function bearer(token: string, query: [string, string | null][] = []): AuthRequest {
  return { method: 'GET', coffer: 'c', key: 'k', query, headers: new Map([['authorization', [`Bearer ${token}`]]]) };
}

let signing: TestKey;
let attacker: TestKey;
let rotated: TestKey;

beforeAll(async () => {
  signing = await makeKey('k1');
  attacker = await makeKey('k1'); // same kid, different key
  rotated = await makeKey('k2');
});

describe('JWT authenticator with a remote JWKS (real HTTP server on 127.0.0.1)', () => {
  let server: JwksTestServer;
  let clock: number;
  let keys: JwtKeyResolver;
  let bearerReads: number;
  const COOLDOWN_MS = 30_000;
  const MAX_AGE_MS = 300_000;

  const auth = (overrides: Partial<JwtAuthenticatorOptions> = {}) =>
    createJwtAuthenticator({
      keys,
      algorithms: ['RS256'],
      issuer: ISSUER,
      audience: AUDIENCE,
      clockToleranceSeconds: 30,
      rules: RULES,
      now: () => clock,
      ...overrides,
    });
  const token = (options: Partial<Parameters<typeof mint>[0]> = {}) => mint({ key: signing, nowMs: clock, ...options });

  beforeEach(async () => {
    server = await startJwksTestServer({ keys: [signing.publicJwk] });
    clock = START_MS;
    bearerReads = 0;
    keys = await createJwtKeyResolver(
      {
        kind: 'jwks-url',
        url: server.url,
        cooldownMs: COOLDOWN_MS,
        maxAgeMs: MAX_AGE_MS,
        bearerToken: () => {
          bearerReads += 1;
          return `k8s-token-${bearerReads}\n`;
        },
      },
      { now: () => clock },
    );
  });
  afterEach(() => server.close());

  test('a Kubernetes service-account token verifies and maps to the union of matching grants', async () => {
    const principal = await auth().authenticate(bearer(await token()));
    expect(principal).toEqual({
      method: 'jwt',
      id: SA_SUBJECT,
      grants: [
        { coffer: 'uploads-1250000000', actions: ['write'] },
        { coffer: 'team-a-1250000000', actions: ['read', 'list'] },
      ],
      sessionName: 'sa.team-a.uploader',
    });
    // The JWKS request carried the (re-read, trimmed) bearer token.
    expect(server.authorizations).toEqual(['Bearer k8s-token-1']);
  });

  test('the JWKS is cached: many tokens, one fetch', async () => {
    for (let i = 0; i < 5; i += 1) await auth().authenticate(bearer(await token()));
    expect(server.requests).toBe(1);
  });

  test('attack: unknown kid → InvalidToken, at most one fetch per cooldown', async () => {
    await auth().authenticate(bearer(await token())); // warm: 1 fetch
    const early = await rejection(auth().authenticate(bearer(await token({ key: attacker, kid: 'early' }))));
    expect(early.reason).toBe('unknown-key');
    expect(server.requests).toBe(1); // the set was fetched less than a cooldown ago: no refetch
    clock += COOLDOWN_MS;
    const forged = await Promise.all(Array.from({ length: 20 }, (_, i) => token({ key: attacker, kid: `random-${i}` })));
    const errors = await Promise.all(forged.map((t) => rejection(auth().authenticate(bearer(t)))));
    for (const error of errors) expect([error.code, error.reason]).toEqual(['InvalidToken', 'unknown-key']);
    expect(server.requests).toBe(2);
    for (const t of forged.slice(0, 5)) await rejection(auth().authenticate(bearer(t)));
    expect(server.requests).toBe(2);
    clock += COOLDOWN_MS;
    await rejection(auth().authenticate(bearer(forged[0] as string)));
    expect(server.requests).toBe(3);
  });

  test('key rotation: a new kid is fetched (after the cooldown) and verifies', async () => {
    await auth().authenticate(bearer(await token()));
    server.setJwks({ keys: [signing.publicJwk, rotated.publicJwk] });
    clock += COOLDOWN_MS;
    await expect(auth().authenticate(bearer(await token({ key: rotated })))).resolves.toMatchObject({ id: SA_SUBJECT });
    expect(server.requests).toBe(2);
  });

  test.each(['http-503', 'reset', 'garbage'] as const)('JWKS down (%s) with a warm cache: cached keys keep verifying', async (mode) => {
    await auth().authenticate(bearer(await token()));
    server.setMode(mode);
    clock += MAX_AGE_MS + 1; // the set is due for refresh, which fails
    await expect(auth().authenticate(bearer(await token()))).resolves.toMatchObject({ id: SA_SUBJECT });
    clock += COOLDOWN_MS;
    await expect(auth().authenticate(bearer(await token()))).resolves.toMatchObject({ id: SA_SUBJECT });
    expect(server.requests).toBe(3); // initial + one attempt per cooldown
  });

  test('cold start with JWKS down fails closed (503), and recovers once the endpoint is back', async () => {
    server.setMode('http-503');
    const first = await rejection(auth().authenticate(bearer(await token())));
    expect([first.status, first.code, first.reason]).toEqual([503, 'ServiceUnavailable', 'jwks-unavailable']);
    // Within the cooldown no new fetch is made and the answer stays closed.
    expect((await rejection(auth().authenticate(bearer(await token())))).code).toBe('ServiceUnavailable');
    expect(server.requests).toBe(1);
    server.setMode('up');
    clock += COOLDOWN_MS;
    await expect(auth().authenticate(bearer(await token()))).resolves.toMatchObject({ id: SA_SUBJECT });
  });

  test('a key removed from the JWKS stops verifying after a refresh', async () => {
    await auth().authenticate(bearer(await token()));
    server.setJwks({ keys: [rotated.publicJwk] });
    clock += MAX_AGE_MS;
    const error = await rejection(auth().authenticate(bearer(await token())));
    expect([error.code, error.reason]).toEqual(['InvalidToken', 'unknown-key']);
  });

  test('junk tokens (alg none, HS256, garbage) never trigger a JWKS fetch', async () => {
    const none = `${b64url({ alg: 'none', kid: 'zzz' })}.${b64url({ sub: SA_SUBJECT })}.AAAA`;
    await rejection(auth().authenticate(bearer(none)));
    await rejection(auth().authenticate(bearer('abc.def.ghi')));
    expect(server.requests).toBe(0);
  });
});

describe('JWT attacks (static keys)', () => {
  let clock: number;
  let authenticator: ReturnType<typeof createJwtAuthenticator>;
  const token = (options: Partial<Parameters<typeof mint>[0]> = {}) => mint({ key: signing, nowMs: clock, ...options });
  const reject = async (jwt: string, request = bearer(jwt)) => rejection(authenticator.authenticate(request));

  beforeAll(async () => {
    clock = START_MS;
    const keys = await createJwtKeyResolver({ kind: 'static', keys: [{ pem: signing.publicPem, alg: 'RS256', kid: 'k1' }] }, { now: () => clock });
    authenticator = createJwtAuthenticator({
      keys,
      algorithms: ['RS256'],
      issuer: ISSUER,
      audience: AUDIENCE,
      clockToleranceSeconds: 30,
      rules: RULES,
      now: () => clock,
      queryParam: 'access_token',
    });
  });

  test('baseline: a good token from a PEM key verifies', async () => {
    await expect(authenticator.authenticate(bearer(await token()))).resolves.toMatchObject({ id: SA_SUBJECT });
  });

  test('alg "none" (with and without a signature part)', async () => {
    const payload = b64url({ sub: SA_SUBJECT, iss: ISSUER, aud: AUDIENCE, exp: clock / 1000 + 600 });
    const unsigned = `${b64url({ alg: 'none' })}.${payload}.`;
    expect([(await reject(unsigned)).code, (await reject(unsigned)).reason]).toEqual(['InvalidToken', 'malformed']);
    const withSig = `${b64url({ alg: 'none', kid: 'k1' })}.${payload}.AAAA`;
    expect([(await reject(withSig)).code, (await reject(withSig)).reason]).toEqual(['InvalidToken', 'alg-not-allowed']);
  });

  test('alg confusion: HS256 signed with the RSA public key as the HMAC secret', async () => {
    const header = b64url({ alg: 'HS256', kid: 'k1', typ: 'JWT' });
    const payload = b64url({ sub: SA_SUBJECT, iss: ISSUER, aud: AUDIENCE, exp: Math.floor(clock / 1000) + 600 });
    for (const secret of [signing.publicPem, JSON.stringify(signing.publicJwk)]) {
      const mac = createHmac('sha256', secret).update(`${header}.${payload}`).digest('base64url');
      const error = await reject(`${header}.${payload}.${mac}`);
      expect([error.code, error.reason]).toEqual(['InvalidToken', 'alg-not-allowed']);
    }
  });

  test('an algorithm that is allowed by jose but not configured (PS256 with the same kid)', async () => {
    const ps = await makeKey('k1', 'PS256');
    const error = await reject(await token({ key: ps, alg: 'PS256' }));
    expect(error.reason).toBe('alg-not-allowed');
  });

  test('expired, including beyond the clock tolerance', async () => {
    const error = await reject(await token({ exp: -31 }));
    expect([error.code, error.reason]).toEqual(['InvalidToken', 'expired']);
    // Within the 30 s tolerance it is still accepted.
    await expect(authenticator.authenticate(bearer(await token({ exp: -29 })))).resolves.toBeDefined();
  });

  test('not yet valid (nbf in the future beyond the tolerance)', async () => {
    const error = await reject(await token({ nbf: 120 }));
    expect([error.code, error.reason]).toEqual(['InvalidToken', 'not-yet-valid']);
  });

  test('wrong issuer', async () => {
    expect((await reject(await token({ iss: 'https://evil.example' }))).reason).toBe('issuer');
    expect((await reject(await token({ iss: null }))).reason).toBe('issuer');
  });

  test('wrong audience (e.g. a token minted for the API server)', async () => {
    expect((await reject(await token({ aud: 'https://kubernetes.default.svc' }))).reason).toBe('audience');
    expect((await reject(await token({ aud: null }))).reason).toBe('audience');
  });

  test('bad signature: signed by another key with the same kid', async () => {
    const error = await reject(await token({ key: attacker }));
    expect([error.code, error.reason]).toEqual(['InvalidToken', 'bad-signature']);
  });

  test('bad signature: attacker key embedded in the header (jwk) is not trusted', async () => {
    const forged = await new SignJWT({ sub: SA_SUBJECT })
      .setProtectedHeader({ alg: 'RS256', kid: 'k1', jwk: attacker.publicJwk })
      .setIssuer(ISSUER)
      .setAudience(AUDIENCE)
      .setExpirationTime(Math.floor(clock / 1000) + 600)
      .sign(attacker.privateKey);
    expect((await reject(forged)).reason).toBe('bad-signature');
  });

  test('tampered payload (sub changed, signature kept)', async () => {
    const [header, , signature] = (await token()).split('.');
    const payload = b64url({ sub: 'system:serviceaccount:kube-system:admin', iss: ISSUER, aud: AUDIENCE, exp: Math.floor(clock / 1000) + 600 });
    const error = await reject(`${header}.${payload}.${signature}`);
    expect([error.code, error.reason]).toEqual(['InvalidToken', 'bad-signature']);
  });

  test('unknown kid with static keys', async () => {
    expect((await reject(await token({ kid: 'other' }))).reason).toBe('unknown-key');
  });

  test('malformed tokens', async () => {
    for (const bad of ['not-a-jwt', 'a.b', 'a.b.c.d.e', `${b64url({ alg: 'RS256' })}.%%%.sig`, 'x'.repeat(20_000)]) {
      const error = await reject(bad);
      expect([error.code, error.reason]).toEqual(['InvalidToken', 'malformed']);
    }
    const badJsonHeader = `${Buffer.from('{not json').toString('base64url')}.${b64url({})}.AAAA`;
    expect((await reject(badJsonHeader)).reason).toBe('malformed');
  });

  test('missing exp or sub is refused (legacy non-expiring tokens)', async () => {
    expect((await reject(await token({ exp: null }))).reason).toBe('claim-invalid');
    expect((await reject(await token({ sub: null }))).reason).toBe('claim-invalid');
  });

  test('token in both header and query', async () => {
    const jwt = await token();
    const error = await reject(jwt, bearer(jwt, [['access_token', jwt]]));
    expect([error.code, error.reason]).toEqual(['InvalidToken', 'token-in-header-and-query']);
  });

  test('token in the query alone is accepted when configured; twice is refused', async () => {
    const jwt = await token();
    const viaQuery: AuthRequest = { method: 'GET', coffer: 'c', key: 'k', query: [['access_token', jwt]], headers: new Map() };
    await expect(authenticator.authenticate(viaQuery)).resolves.toMatchObject({ id: SA_SUBJECT });
    const twice: AuthRequest = {
      ...viaQuery,
      query: [
        ['access_token', jwt],
        ['access_token', jwt],
      ],
    };
    expect((await rejection(authenticator.authenticate(twice))).reason).toBe('duplicate-token');
  });

  test('valid token that matches no rule → 403 AccessDenied', async () => {
    const error = await reject(await token({ sub: 'system:serviceaccount:team-b:reader', claims: { 'kubernetes.io': { namespace: 'team-b' } } }));
    expect([error.status, error.code, error.reason]).toEqual([403, 'AccessDenied', 'no-matching-rule']);
  });

  test('non-Bearer Authorization scheme', async () => {
    const request: AuthRequest = { method: 'GET', coffer: 'c', key: 'k', query: [], headers: new Map([['authorization', ['Basic dXNlcjpwYXNz']]]) };
    expect((await rejection(authenticator.authenticate(request))).reason).toBe('not-bearer');
  });

  test('no error message or reason contains the token', async () => {
    const jwt = await token({ key: attacker });
    const error = await reject(jwt);
    expect(`${error.message} ${error.reason} ${JSON.stringify(error)}`).not.toContain(jwt.split('.')[2]);
  });
});

describe('JWT authenticator configuration', () => {
  const base = (): JwtAuthenticatorOptions => ({
    keys: async () => {
      throw new Error('unused');
    },
    algorithms: ['RS256'],
    issuer: ISSUER,
    audience: AUDIENCE,
    clockToleranceSeconds: 30,
    rules: RULES,
    now: () => START_MS,
  });

  test.each([
    ['HS256 algorithm', { algorithms: ['HS256'] }, /not allowed/],
    ['none algorithm', { algorithms: ['none'] }, /not allowed/],
    ['no algorithms', { algorithms: [] }, /must not be empty/],
    ['empty issuer', { issuer: '' }, /issuer/],
    ['no audience', { audience: [] }, /audience/],
    ['huge clock tolerance', { clockToleranceSeconds: 3600 }, /clockTolerance/],
    ['rule without condition', { rules: [{ grants: [{ coffer: '*', actions: ['*'] }] }] }, /subject or at least one claim/],
  ] as const)('refuses %s', (_name, override, message) => {
    expect(() => createJwtAuthenticator({ ...base(), ...(override as Partial<JwtAuthenticatorOptions>) })).toThrow(message);
  });

  test('static keys must be public', async () => {
    const key = await makeKey('k9');
    const privateJwk = await exportJWK(key.privateKey);
    await expect(createJwtKeyResolver({ kind: 'static', keys: [{ jwk: privateJwk }] }, { now: Date.now })).rejects.toThrow(/public/);
    await expect(createJwtKeyResolver({ kind: 'static', keys: [{ jwk: { kty: 'oct', k: 'c2VjcmV0' } }] }, { now: Date.now })).rejects.toThrow(/public/);
  });

  test('session names for service accounts and other subjects', () => {
    expect(sessionNameForSubject('system:serviceaccount:ns:name')).toBe('sa.ns.name');
    expect(sessionNameForSubject('user@example.com')).toBe('user@example.com');
    expect(sessionNameForSubject(`system:serviceaccount:${'n'.repeat(63)}:${'s'.repeat(63)}`)).toMatch(/^[\w+=,.@-]{64}$/);
  });
});
