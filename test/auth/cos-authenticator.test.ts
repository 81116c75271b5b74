import type { AuthRequest } from '../../src/auth/auth-request';
import { createCosAuthenticator, type CosAuthenticatorOptions } from '../../src/auth/cos-authenticator';
import type { CosCredential, CredentialStore } from '../../src/auth/credential-store';
import type { Grant } from '../../src/auth/principal';
import { renderError } from '../../src/errors/render-error';
import { editAuthorization, HOST, KEY_TIME, NOW_MS, NOW_S, SECRET_ID, SECRET_KEY, sign, type Signed, withAuthorization, withHeader } from './cos-test-request';
import { rejection } from '../support/gateway-rejection';

const GRANTS: Grant[] = [{ coffer: 'coffer-1250000000', actions: ['read', 'write'] }];

/** Plain-object fake of the credential store that counts lookups. */
function fakeStore(grants: Grant[] = GRANTS): CredentialStore & { lookups: string[] } {
  const lookups: string[] = [];
  return {
    lookups,
    async lookup(secretId: string): Promise<CosCredential | undefined> {
      lookups.push(secretId);
      return secretId === SECRET_ID ? { secretId, secretKey: SECRET_KEY, grants } : undefined;
    },
  };
}

function authenticator(options: Partial<CosAuthenticatorOptions> & { grants?: Grant[] } = {}, nowMs = NOW_MS) {
  const { grants, ...rest } = options;
  return createCosAuthenticator({ credentials: fakeStore(grants), now: () => nowMs, ...rest });
}

/** UploadPart as the SDK sends it: all query params signed, host/content-length/content-md5 signed. */
const uploadPart = (): Signed =>
  sign({
    query: [
      ['partNumber', '1'],
      ['uploadId', 'abc-123'],
    ],
  });

describe('COS authenticator: valid requests', () => {
  test('round trip: header-signed UploadPart over /<Coffer>/<Key> yields the principal', async () => {
    const principal = await authenticator().authenticate(uploadPart().request);
    expect(principal).toEqual({
      method: 'cos-signature',
      id: SECRET_ID,
      grants: GRANTS,
      sessionName: SECRET_ID,
      signedPath: 'full',
    });
  });

  test('headers that are not listed are ignored (e.g. x-cos-security-token, user-agent)', async () => {
    const { request } = uploadPart();
    const extended = withHeader(withHeader(request, 'user-agent', ['cos-nodejs-sdk-v5-3.0.0']), 'x-cos-security-token', ['tok']);
    await expect(authenticator().authenticate(extended)).resolves.toMatchObject({ id: SECRET_ID });
  });

  test('valueless parameter (?uploads) signs as uploads=', async () => {
    const { request } = sign({ method: 'POST', query: [['uploads', null]] });
    await expect(authenticator().authenticate(request)).resolves.toMatchObject({ id: SECRET_ID });
  });

  test('a retry that adds a signed x-cos-sdk-retry header verifies (list read from the request)', async () => {
    const { request } = sign({
      headers: [
        ['Host', HOST],
        ['x-cos-sdk-retry', 'true'],
        ['Content-Type', 'text/plain'],
      ],
    });
    await expect(authenticator().authenticate(request)).resolves.toMatchObject({ id: SECRET_ID });
  });

  test('coffer-level request accepts /<Coffer> and /<Coffer>/', async () => {
    for (const pathname of ['/coffer-1250000000', '/coffer-1250000000/']) {
      const { request } = sign({ method: 'GET', key: undefined, pathname, query: [['uploads', null]] });
      await expect(authenticator().authenticate(request)).resolves.toMatchObject({ signedPath: 'full' });
    }
  });

  test('presigned URL (fields in the query, security token unsigned) verifies', async () => {
    const { request } = sign({ method: 'GET', mode: 'query', headers: [['Host', HOST]], query: [['response-content-type', 'text/plain']] });
    const withToken: AuthRequest = { ...request, query: [...request.query, ['x-cos-security-token', 'opaque']] };
    expect(withToken.headers.has('authorization')).toBe(false);
    await expect(authenticator().authenticate(withToken)).resolves.toMatchObject({ id: SECRET_ID });
  });

  test('presigned URL: an added unsigned uploadId cannot turn a GET/PUT into another operation', async () => {
    const { request } = sign({ mode: 'query', headers: [['Host', HOST]] });
    const tampered: AuthRequest = { ...request, query: [...request.query, ['uploadId', 'x'], ['partNumber', '1']] };
    const error = await rejection(authenticator().authenticate(tampered));
    expect([error.code, error.reason]).toEqual(['SignatureDoesNotMatch', 'unsigned-parameter']);
  });

  test('an upper-case hex signature is the same signature', async () => {
    const { request, authorization } = uploadPart();
    const upper = authorization.replace(/q-signature=([0-9a-f]{40})/, (_m, hex: string) => `q-signature=${hex.toUpperCase()}`);
    expect(upper).not.toBe(authorization);
    await expect(authenticator().authenticate(withAuthorization(request, upper))).resolves.toMatchObject({ id: SECRET_ID });
  });

  test('requiredSignedHeaders: [] allows a signature without host', async () => {
    const { request } = sign({ signHeaders: ['content-length'] });
    await expect(authenticator({ requiredSignedHeaders: [] }).authenticate(request)).resolves.toMatchObject({ id: SECRET_ID });
    const error = await rejection(authenticator().authenticate(request));
    expect([error.code, error.reason]).toEqual(['AccessDenied', 'required-header-unsigned']);
    // cos-nodejs-sdk-v5 2.12.x does this for non-COS domains: the answer says which versions work.
    expect(error.message).toMatch(/2\.12\.x does not sign host.*2\.13 or later \(3\.x works\)/);
  });
});

describe('COS authenticator: key-only path (cos-nodejs-sdk-v5 3.0.0)', () => {
  const keyOnly = () => sign({ pathname: '/dir/report (final)*.txt' });
  const refusal = async (promise: Promise<unknown>): Promise<[string, string | undefined]> => {
    const error = await rejection(promise);
    return [error.code, error.reason];
  };

  test('path-style: refused by default, with the reason (403 AccessDenied, key-only-unbound)', async () => {
    expect(await refusal(authenticator().authenticate(keyOnly().request))).toEqual(['AccessDenied', 'key-only-unbound']);
  });

  test('path-style: accepted with acceptKeyOnlyPath from a key that reaches this coffer only, and marked key-only', async () => {
    const principal = await authenticator({ acceptKeyOnlyPath: true }).authenticate(keyOnly().request);
    expect(principal.signedPath).toBe('key-only');
  });

  test.each<[string, Grant[]]>([
    ['two coffers', [...GRANTS, { coffer: 'other-1250000000', actions: ['read'] }]],
    ['every coffer', [{ coffer: '*', actions: ['*'] }]],
    ['another coffer only', [{ coffer: 'other-1250000000', actions: ['*'] }]],
  ])('path-style: refused from a key that reaches %s (the signature does not say which coffer)', async (_what, grants) => {
    expect(await refusal(authenticator({ acceptKeyOnlyPath: true, grants }).authenticate(keyOnly().request))).toEqual(['AccessDenied', 'key-only-unbound']);
  });

  test('never when the signed path starts with a coffer name the key can reach: /<A>/<K> is also the full-path signature of key <K> in <A>', async () => {
    // The full-path signature for key "x" in coffer-1250000000 …
    const full = sign({ key: 'x' });
    await expect(authenticator({ acceptKeyOnlyPath: true }).authenticate(full.request)).resolves.toMatchObject({ signedPath: 'full' });
    // … replayed as key "coffer-1250000000/x" in the same coffer (path /coffer-1250000000/coffer-1250000000/x).
    const shifted: AuthRequest = { ...full.request, key: 'coffer-1250000000/x' };
    expect(await refusal(authenticator({ acceptKeyOnlyPath: true }).authenticate(shifted))).toEqual(['AccessDenied', 'key-only-unbound']);
    // Virtual-hosted too: the host names coffer-1250000000, the path another coffer the key reaches.
    const grants: Grant[] = [...GRANTS, { coffer: 'other-1250000000', actions: ['read'] }];
    const hosted = sign({ key: 'other-1250000000/x', pathname: '/other-1250000000/x' });
    expect(await refusal(authenticator({ grants }).authenticate({ ...hosted.request, addressing: 'virtual-hosted' }))).toEqual(['AccessDenied', 'key-only-unbound']);
  });

  test('with the served coffers known, only their names count: a key "2024-01/x" stays usable for a key granted "*"', async () => {
    const grants: Grant[] = [{ coffer: '*', actions: ['*'] }];
    const isCoffer = (name: string): boolean => name === 'coffer-1250000000' || name === 'other-1250000000';
    const dated = sign({ key: '2024-01/x', pathname: '/2024-01/x' });
    await expect(authenticator({ grants, isCoffer }).authenticate({ ...dated.request, addressing: 'virtual-hosted' })).resolves.toMatchObject({ signedPath: 'key-only' });
    // Without the list every valid coffer name counts (the conservative default).
    expect(await refusal(authenticator({ grants }).authenticate({ ...dated.request, addressing: 'virtual-hosted' }))).toEqual(['AccessDenied', 'key-only-unbound']);
    const served = sign({ key: 'other-1250000000/x', pathname: '/other-1250000000/x' });
    expect(await refusal(authenticator({ grants, isCoffer }).authenticate({ ...served.request, addressing: 'virtual-hosted' }))).toEqual(['AccessDenied', 'key-only-unbound']);
  });

  test('full path still works with acceptKeyOnlyPath and is marked full', async () => {
    const principal = await authenticator({ acceptKeyOnlyPath: true }).authenticate(uploadPart().request);
    expect(principal.signedPath).toBe('full');
  });

  test('coffer-level key-only signature is over "/", and needs a parameter (GET / alone is GetService)', async () => {
    const { request } = sign({ method: 'GET', key: undefined, pathname: '/', query: [['prefix', 'a/']] });
    await expect(authenticator({ acceptKeyOnlyPath: true }).authenticate(request)).resolves.toMatchObject({ signedPath: 'key-only' });
    expect(await refusal(authenticator().authenticate(request))).toEqual(['AccessDenied', 'key-only-unbound']);
    const service = sign({ method: 'GET', key: undefined, pathname: '/' });
    expect(await refusal(authenticator({ acceptKeyOnlyPath: true }).authenticate(service.request))).toEqual(['AccessDenied', 'key-only-unbound']);
    // The same signature on GET / is GetService, and valid.
    await expect(authenticator({ acceptKeyOnlyPath: true }).authenticate({ ...service.request, coffer: undefined, key: undefined })).resolves.toMatchObject({ signedPath: 'full' });
  });

  test('virtual-hosted: only /<Key> is accepted, whatever acceptKeyOnlyPath and however many coffers the key reaches', async () => {
    const grants: Grant[] = [{ coffer: '*', actions: ['*'] }];
    await expect(authenticator({ grants }).authenticate({ ...keyOnly().request, addressing: 'virtual-hosted' })).resolves.toMatchObject({ signedPath: 'key-only' });
    const full = uploadPart().request;
    expect((await rejection(authenticator({ grants }).authenticate({ ...full, addressing: 'virtual-hosted' }))).code).toBe('SignatureDoesNotMatch');
  });

  test('a full-path signature for one coffer does not verify for another coffer', async () => {
    const { request } = uploadPart();
    const other: AuthRequest = { ...request, coffer: 'other-1250000000' };
    expect((await rejection(authenticator({ acceptKeyOnlyPath: true }).authenticate(other))).code).toBe('SignatureDoesNotMatch');
  });
});

describe('COS authenticator: time window', () => {
  const start = NOW_S - 1;
  const end = NOW_S + 899;
  const skew = 900;
  const at = (seconds: number) => seconds * 1000 + 999; // the end of that second: floor() is used

  test.each([
    ['start − skew', at(start - skew)],
    ['end + skew', at(end + skew)],
    ['inside', at(start + 10)],
  ])('accepts now = %s', async (_label, nowMs) => {
    await expect(authenticator({}, nowMs).authenticate(uploadPart().request)).resolves.toMatchObject({ id: SECRET_ID });
  });

  test('now = start − skew − 1 → 403 RequestTimeTooSkewed', async () => {
    const error = await rejection(authenticator({}, at(start - skew - 1)).authenticate(uploadPart().request));
    expect([error.status, error.code]).toEqual([403, 'RequestTimeTooSkewed']);
  });

  test('now = end + skew + 1 → 403 AccessDenied "Request has expired" with no reason (SDK clock correction)', async () => {
    const error = await rejection(authenticator({}, at(end + skew + 1)).authenticate(uploadPart().request));
    expect([error.status, error.code, error.message, error.reason]).toEqual([403, 'AccessDenied', 'Request has expired', undefined]);
  });

  test('the expired error renders exactly as the SDK expects (message compared verbatim)', async () => {
    const error = await rejection(authenticator({}, at(end + skew + 1)).authenticate(uploadPart().request));
    const rendered = renderError(error, { resource: '/c/k', requestId: 'r', traceId: 't' });
    expect(rendered.status).toBe(403);
    expect(rendered.body).toContain('<Code>AccessDenied</Code><Message>Request has expired</Message>');
    expect(rendered.headers.date).toBeDefined();
  });

  test('skew is configurable', async () => {
    const error = await rejection(authenticator({ skewSeconds: 0 }, at(end + 1)).authenticate(uploadPart().request));
    expect(error.message).toBe('Request has expired');
    await expect(authenticator({ skewSeconds: 0 }, at(end)).authenticate(uploadPart().request)).resolves.toBeDefined();
  });

  test('validity window: exactly the maximum is accepted, one second more is refused', async () => {
    const okTime = `${NOW_S};${NOW_S + 3600}`;
    const longTime = `${NOW_S};${NOW_S + 3601}`;
    const auth = authenticator({ maxValiditySeconds: 3600 });
    await expect(auth.authenticate(sign({ keyTime: okTime }).request)).resolves.toBeDefined();
    const error = await rejection(auth.authenticate(sign({ keyTime: longTime }).request));
    expect([error.code, error.reason]).toEqual(['AccessDenied', 'validity-too-long']);
  });

  test('default maximum validity is 7 days', async () => {
    const week = 7 * 24 * 3600;
    await expect(authenticator().authenticate(sign({ keyTime: `${NOW_S};${NOW_S + week}` }).request)).resolves.toBeDefined();
    expect((await rejection(authenticator().authenticate(sign({ keyTime: `${NOW_S};${NOW_S + week + 1}` }).request))).reason).toBe('validity-too-long');
  });
});

type Case = [name: string, build: () => AuthRequest, code: string, reason?: string];

const header =
  (edit: (authorization: string) => string | string[]): (() => AuthRequest) =>
  () => {
    const { request, authorization } = uploadPart();
    return withAuthorization(request, edit(authorization));
  };
const field = (name: string, value: string | undefined) => header((a) => editAuthorization(a, name, value));

const MALFORMED_CASES: Case[] = [
  ['missing q-signature', field('q-signature', undefined), 'MalformedAuthorization', 'missing-field'],
  ['missing q-ak', field('q-ak', undefined), 'MalformedAuthorization', 'missing-field'],
  ['missing q-sign-time', field('q-sign-time', undefined), 'MalformedAuthorization', 'missing-field'],
  ['missing q-key-time', field('q-key-time', undefined), 'MalformedAuthorization', 'missing-field'],
  ['missing q-header-list', field('q-header-list', undefined), 'MalformedAuthorization', 'missing-field'],
  ['missing q-url-param-list', field('q-url-param-list', undefined), 'MalformedAuthorization', 'missing-field'],
  ['missing q-sign-algorithm', field('q-sign-algorithm', undefined), 'MalformedAuthorization', 'missing-field'],
  ['duplicate q-ak', header((a) => `${a}&q-ak=${SECRET_ID}`), 'MalformedAuthorization', 'duplicate-field'],
  ['duplicate q-signature', header((a) => `${a}&q-signature=${'0'.repeat(40)}`), 'MalformedAuthorization', 'duplicate-field'],
  ['unknown q-* field', header((a) => `${a}&q-sign-extra=1`), 'MalformedAuthorization', 'unknown-field'],
  ['unknown non-q field', header((a) => `${a}&foo=bar`), 'MalformedAuthorization', 'unknown-field'],
  ['field without =', header((a) => `${a}&q-ak`), 'MalformedAuthorization', 'field-syntax'],
  ['empty segment (&&)', header((a) => a.replace('&q-ak', '&&q-ak')), 'MalformedAuthorization', 'field-syntax'],
  ['algorithm sha256', field('q-sign-algorithm', 'sha256'), 'MalformedAuthorization', 'algorithm'],
  ['algorithm SHA1 (case)', field('q-sign-algorithm', 'SHA1'), 'MalformedAuthorization', 'algorithm'],
  ['empty q-ak', field('q-ak', ''), 'MalformedAuthorization', 'secret-id'],
  ['q-ak with a space', field('q-ak', 'AKID x'), 'MalformedAuthorization', 'secret-id'],
  ['signature not hex', field('q-signature', 'z'.repeat(40)), 'MalformedAuthorization', 'signature-syntax'],
  ['signature 39 digits', field('q-signature', 'a'.repeat(39)), 'MalformedAuthorization', 'signature-syntax'],
  ['signature 41 digits', field('q-signature', 'a'.repeat(41)), 'MalformedAuthorization', 'signature-syntax'],
  ['signature 64 digits (sha256 length)', field('q-signature', 'a'.repeat(64)), 'MalformedAuthorization', 'signature-syntax'],
  ['empty signature', field('q-signature', ''), 'MalformedAuthorization', 'signature-syntax'],
  ['sign-time ≠ key-time', field('q-sign-time', `${NOW_S - 2};${NOW_S + 899}`), 'MalformedAuthorization', 'time-mismatch'],
  ['non-numeric times', header((a) => a.split(KEY_TIME).join('abc;def')), 'MalformedAuthorization', 'time-syntax'],
  ['single time value', header((a) => a.split(KEY_TIME).join(String(NOW_S))), 'MalformedAuthorization', 'time-syntax'],
  ['negative start', header((a) => a.split(KEY_TIME).join(`-1;${NOW_S}`)), 'MalformedAuthorization', 'time-syntax'],
  ['exponent time', header((a) => a.split(KEY_TIME).join(`1e9;${NOW_S}`)), 'MalformedAuthorization', 'time-syntax'],
  ['start after end', header((a) => a.split(KEY_TIME).join(`${NOW_S + 10};${NOW_S}`)), 'MalformedAuthorization', 'time-order'],
  ['header list trailing ;', field('q-header-list', 'content-length;content-md5;host;'), 'MalformedAuthorization', 'list-syntax'],
  ['header list upper case', field('q-header-list', 'Content-Length;content-md5;host'), 'MalformedAuthorization', 'list-syntax'],
  ['header list duplicate', field('q-header-list', 'host;host'), 'MalformedAuthorization', 'list-duplicate'],
  ['param list with space', field('q-url-param-list', 'part number'), 'MalformedAuthorization', 'list-syntax'],
  ['too many listed names', field('q-url-param-list', Array.from({ length: 65 }, (_, i) => `p${i}`).join(';')), 'MalformedAuthorization', 'list-too-long'],
  ['Authorization header twice', header((a) => [a, a]), 'MalformedAuthorization', 'duplicate-authorization'],
  [
    'header and presigned query together',
    () => {
      const { request, queryFields } = uploadPart();
      return { ...request, query: [...request.query, ...queryFields.map(([n, v]) => [n, v] as [string, string])] };
    },
    'MalformedAuthorization',
    'header-and-query',
  ],
  [
    'presigned: duplicate q-signature',
    () => {
      const { request } = sign({ mode: 'query', headers: [['Host', HOST]] });
      return { ...request, query: [...request.query, ['q-signature', 'a'.repeat(40)]] };
    },
    'MalformedAuthorization',
    'duplicate-field',
  ],
  [
    'presigned: unknown q- parameter',
    () => {
      const { request } = sign({ mode: 'query', headers: [['Host', HOST]] });
      return { ...request, query: [...request.query, ['q-expires', '1']] };
    },
    'MalformedAuthorization',
    'unknown-field',
  ],
  [
    'presigned: field without value',
    () => {
      const { request } = sign({ mode: 'query', headers: [['Host', HOST]] });
      return { ...request, query: request.query.map(([n, v]) => [n, n === 'q-ak' ? null : v] as const) };
    },
    'MalformedAuthorization',
    'field-syntax',
  ],
  // Well-formed, but wrong: 403s.
  ['unknown SecretId', field('q-ak', 'AKIDunknown'), 'InvalidAccessKeyId', 'unknown-secret-id'],
  ['tampered signature', field('q-signature', 'f'.repeat(40)), 'SignatureDoesNotMatch', 'mismatch'],
  ['upper-case copy of a wrong signature', field('q-signature', 'ABCDEF0123456789ABCDEF0123456789ABCDEF01'), 'SignatureDoesNotMatch', 'mismatch'],
  ['validity window too long', header((a) => a.split(KEY_TIME).join(`${NOW_S};${NOW_S + 8 * 86400}`)), 'AccessDenied', 'validity-too-long'],
  ['host not signed', field('q-header-list', 'content-length;content-md5'), 'AccessDenied', 'required-header-unsigned'],
  ['listed header absent', () => withHeader(uploadPart().request, 'content-md5', undefined), 'SignatureDoesNotMatch', 'signed-header-missing'],
  ['listed header duplicated', () => withHeader(uploadPart().request, 'content-md5', ['a', 'b']), 'InvalidRequest', 'duplicate-signed-header'],
  ['signed header value changed', () => withHeader(uploadPart().request, 'content-length', ['14']), 'SignatureDoesNotMatch', 'mismatch'],
  [
    'listed param absent',
    () => {
      const { request } = uploadPart();
      return { ...request, query: request.query.filter(([n]) => n !== 'uploadId') };
    },
    'SignatureDoesNotMatch',
    'signed-parameter-missing',
  ],
  [
    'param duplicated (parameter pollution)',
    () => {
      const { request } = uploadPart();
      return { ...request, query: [...request.query, ['uploadId', 'other']] };
    },
    'InvalidRequest',
    'duplicate-parameter',
  ],
  [
    'param duplicated in another case',
    () => {
      const { request } = uploadPart();
      return { ...request, query: [...request.query, ['UPLOADID', 'other']] };
    },
    'InvalidRequest',
    'duplicate-parameter',
  ],
  [
    'unsigned param added',
    () => {
      const { request } = uploadPart();
      return { ...request, query: [...request.query, ['versionId', '1']] };
    },
    'SignatureDoesNotMatch',
    'unsigned-parameter',
  ],
  [
    'param value changed',
    () => {
      const { request } = uploadPart();
      return { ...request, query: request.query.map(([n, v]) => [n, n === 'partNumber' ? '2' : v] as const) };
    },
    'SignatureDoesNotMatch',
    'mismatch',
  ],
  ['method changed', () => ({ ...uploadPart().request, method: 'POST' }), 'SignatureDoesNotMatch', 'mismatch'],
  ['key changed', () => ({ ...uploadPart().request, key: 'dir/other.txt' }), 'SignatureDoesNotMatch', 'mismatch'],
  [
    'signed by another secret key',
    () =>
      sign({
        secretKey: 'another-secret-key-of-32-chars!!',
        query: [
          ['partNumber', '1'],
          ['uploadId', 'abc-123'],
        ],
      }).request,
    'SignatureDoesNotMatch',
    'mismatch',
  ],
  [
    'lone surrogate in a parameter value',
    () => {
      const { request } = uploadPart();
      return { ...request, query: request.query.map(([n, v]) => [n, n === 'uploadId' ? '\uD800' : v] as const) };
    },
    'InvalidArgument',
    'encoding',
  ],
];

describe('COS authenticator: malformed and wrong signatures', () => {
  test('the table has at least 20 malformed cases', () => {
    expect(MALFORMED_CASES.filter(([, , code]) => code === 'MalformedAuthorization').length).toBeGreaterThanOrEqual(20);
  });

  const rows = MALFORMED_CASES.map(([name, build, code, reason]) => ({ name, build, code, reason }));
  test.each(rows)('$name → $code', async ({ build, code, reason }) => {
    const request = build();
    const error = await rejection(authenticator().authenticate(request));
    expect(error.code).toBe(code);
    if (reason !== undefined) expect(error.reason).toBe(reason);
    expect(error.status).toBeGreaterThanOrEqual(400);
    expect(error.status).toBeLessThan(500);
    // No secret in anything that could be logged: message, reason, or the serialised error.
    const rendered = `${error.message} ${error.reason ?? ''} ${JSON.stringify(error)} ${String(error.stack)}`;
    expect(rendered).not.toContain(SECRET_KEY);
    const signature = [...(request.headers.get('authorization') ?? []), ...request.query.map(([, v]) => v ?? '')].join('&').match(/q-signature=([0-9a-fA-F]{40})/)?.[1];
    if (signature !== undefined) expect(rendered).not.toContain(signature);
  });

  test('malformed requests never reach the credential store', async () => {
    const store = fakeStore();
    const auth = createCosAuthenticator({ credentials: store, now: () => NOW_MS });
    await rejection(auth.authenticate(field('q-signature', 'xyz')()));
    await rejection(auth.authenticate(field('q-sign-algorithm', 'md5')()));
    expect(store.lookups).toEqual([]);
  });

  test('no credentials at all → 401 AuthFailed', async () => {
    const error = await rejection(authenticator().authenticate(withAuthorization(uploadPart().request, undefined)));
    expect([error.status, error.code]).toEqual([401, 'AuthFailed']);
  });
});
