import type { AuthRequest } from '../../src/auth/auth-request';
import { headersFromRaw } from '../../src/auth/auth-request';
import { type Authenticator, createAuthenticate, detectMethod } from '../../src/auth/authenticate';
import { authorize } from '../../src/auth/authorize';
import { createCosAuthenticator } from '../../src/auth/cos-authenticator';
import { InMemoryCredentialStore } from '../../src/auth/credential-store';
import { NOW_MS, SECRET_ID, SECRET_KEY, sign } from './cos-test-request';
import type { Principal } from '../../src/auth/principal';
import { GatewayError } from '../../src/errors/gateway-error';

const request = (headers: [string, string][], query: [string, string | null][] = []): AuthRequest => ({
  method: 'GET',
  coffer: 'c',
  key: 'k',
  query,
  headers: headersFromRaw(headers.flat()),
});

/** Plain-object fake authenticator that records what it was given. */
function fake(method: Principal['method']): Authenticator & { calls: number } {
  const self = {
    calls: 0,
    async authenticate(): Promise<Principal> {
      self.calls += 1;
      return { method, id: method, grants: [], sessionName: method };
    },
  };
  return self;
}

function errorOf(fn: () => unknown): GatewayError {
  try {
    fn();
  } catch (error) {
    if (error instanceof GatewayError) return error;
    throw error;
  }
  throw new Error('expected an error');
}

const COS = 'q-sign-algorithm=sha1&q-ak=AKID&q-sign-time=1;2&q-key-time=1;2&q-header-list=host&q-url-param-list=&q-signature=' + 'a'.repeat(40);

describe('detectMethod', () => {
  test.each([
    ['COS header', [['Authorization', COS]], [], 'cos-signature'],
    [
      'presigned query',
      [],
      [
        ['q-sign-algorithm', 'sha1'],
        ['q-ak', 'AKID'],
      ],
      'cos-signature',
    ],
    ['Bearer header', [['Authorization', 'Bearer a.b.c']], [], 'jwt'],
    ['bearer (case-insensitive scheme)', [['authorization', 'bearer a.b.c']], [], 'jwt'],
    ['token query parameter', [], [['access_token', 'a.b.c']], 'jwt'],
  ] as [string, [string, string][], [string, string][], string][])('%s → %s', (_name, headers, query, expected) => {
    expect(detectMethod(request(headers, query), 'access_token')).toBe(expected);
  });

  test.each([
    ['no credentials', [], [], 'AuthFailed', 401, 'no-credentials'],
    ['Basic scheme', [['Authorization', 'Basic dTpw']], [], 'AuthFailed', 401, 'unsupported-scheme'],
    ['AWS SigV4', [['Authorization', 'AWS4-HMAC-SHA256 Credential=x']], [], 'AuthFailed', 401, 'unsupported-scheme'],
    [
      'Authorization twice',
      [
        ['Authorization', COS],
        ['authorization', COS],
      ],
      [],
      'MalformedAuthorization',
      400,
      'duplicate-authorization',
    ],
    ['Bearer + presigned', [['Authorization', 'Bearer a.b.c']], [['q-signature', 'x']], 'InvalidArgument', 400, 'multiple-auth-methods'],
    ['COS header + token query', [['Authorization', COS]], [['access_token', 'a.b.c']], 'InvalidArgument', 400, 'multiple-auth-methods'],
  ] as [string, [string, string][], [string, string][], string, number, string][])('%s → %s', (_name, headers, query, code, status, reason) => {
    const error = errorOf(() => detectMethod(request(headers, query), 'access_token'));
    expect([error.code, error.status, error.reason]).toEqual([code, status, reason]);
  });

  test('without a configured token query parameter, access_token is just a parameter', () => {
    expect(errorOf(() => detectMethod(request([], [['access_token', 'a.b.c']]))).reason).toBe('no-credentials');
  });
});

describe('createAuthenticate', () => {
  test('dispatches to exactly one method', async () => {
    const cos = fake('cos-signature');
    const jwt = fake('jwt');
    const authenticate = createAuthenticate({ cos, jwt });
    await expect(authenticate(request([['Authorization', COS]]))).resolves.toMatchObject({ method: 'cos-signature' });
    await expect(authenticate(request([['Authorization', 'Bearer a.b.c']]))).resolves.toMatchObject({ method: 'jwt' });
    expect([cos.calls, jwt.calls]).toEqual([1, 1]);
  });

  test('a method that is not enabled → 401 AuthFailed, and nothing is called', async () => {
    const cos = fake('cos-signature');
    const authenticate = createAuthenticate({ cos });
    await expect(authenticate(request([['Authorization', 'Bearer a.b.c']]))).rejects.toMatchObject({ code: 'AuthFailed', reason: 'method-disabled' });
    expect(cos.calls).toBe(0);
  });
});

describe('headersFromRaw', () => {
  test('keeps duplicates visible and lower-cases names', () => {
    const headers = headersFromRaw(['Host', 'a', 'X-Cos-Acl', 'private', 'host', 'b']);
    expect([...headers]).toEqual([
      ['host', ['a', 'b']],
      ['x-cos-acl', ['private']],
    ]);
  });
});

describe('authentication + authorization with real components', () => {
  const store = new InMemoryCredentialStore([{ secretId: SECRET_ID, secretKey: SECRET_KEY, grants: [{ coffer: 'coffer-1250000000', actions: ['write'] }] }]);
  const authenticate = createAuthenticate({
    cos: createCosAuthenticator({ credentials: store, now: () => NOW_MS, acceptKeyOnlyPath: true }),
  });

  test('a key-only signature is bound to the one coffer its key reaches: replayed against another coffer it does not authenticate', async () => {
    const signed = sign({ pathname: '/dir/report (final)*.txt' });
    const principal = await authenticate(signed.request);
    expect(principal.signedPath).toBe('key-only');
    expect(() => authorize(principal, 'coffer-1250000000', 'write')).not.toThrow();
    const replayed: AuthRequest = { ...signed.request, coffer: 'other-1250000000' };
    await expect(authenticate(replayed)).rejects.toMatchObject({ code: 'AccessDenied', reason: 'key-only-unbound' });
  });

  test('a presigned URL goes through the dispatcher to the COS authenticator', async () => {
    const { request } = sign({ method: 'GET', mode: 'query', headers: [['Host', '127.0.0.1:8080']] });
    await expect(authenticate(request)).resolves.toMatchObject({ method: 'cos-signature', id: SECRET_ID });
  });
});
