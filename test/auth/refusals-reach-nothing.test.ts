/**
 * Reliability checklist item 10, end to end: malformed COS signatures (≥ 20) and JWT attacks (≥ 10)
 * sent to a real gateway over a socket are refused with 4xx — and cause no upstream request at all,
 * counted at a recording proxy in front of the upstream. Controls: the same requests correctly signed
 * do reach the upstream, so a silent proxy cannot pass the test.
 */
import { SignJWT, exportJWK, generateKeyPair } from 'jose';
import { send, signed, type CosCredentials, type SendableRequest } from '../support/cos-signed-request';
import { startRecordedGateway, type RecordedGateway } from '../support/recorded-gateway';
import { AUDIENCE, ISSUER, SA_SUBJECT, b64url, makeKey, mint, type TestKey } from './jwt-test-tokens';

const COFFER = 'refusals-1250000000';
const KEY: CosCredentials = { secretId: 'AKIDrefusalsReachNothing', secretKey: 'refusals-reach-nothing-secret-0123456789' };

let recorded: RecordedGateway;
let signer: TestKey;
let stranger: TestKey;
beforeAll(async () => {
  signer = await makeKey('gateway-test-1');
  stranger = await makeKey('gateway-test-1'); // same kid, other key pair
  recorded = await startRecordedGateway({
    coffers: [COFFER],
    accessKeys: [{ ...KEY, grants: [{ coffer: COFFER, actions: ['*'] }] }],
    jwt: { issuer: ISSUER, audiences: [AUDIENCE], algorithms: ['RS256'], keys: [signer.publicJwk], rules: [{ subject: SA_SUBJECT, grants: [{ coffer: COFFER, actions: ['*'] }] }] },
  });
});
afterAll(async () => {
  await recorded?.stop();
});

const host = (): string => `127.0.0.1:${recorded.port}`;
/** A GetObject of a key that does not exist: signed correctly it reaches the upstream (and is a 404). */
const target = { method: 'GET', host: '', path: `/${COFFER}/absent.bin`, params: [] as Array<[string, string]> };
const valid = (): SendableRequest => signed({ ...target, host: host(), signedPath: target.path, mode: 'header', credentials: KEY });

/** Sends `request` and returns its status and how many upstream requests it caused. */
async function attempt(request: SendableRequest): Promise<{ status: number; upstream: number }> {
  const before = recorded.proxy.arrivals.length;
  const { status } = await send(recorded.port, request);
  return { status, upstream: recorded.proxy.arrivals.length - before };
}

const withAuthorization = (authorization: string): SendableRequest => ({ ...target, host: host(), authorization });
const field =
  (name: string, value: string | undefined) =>
  (authorization: string): string => {
    const fields = authorization.split('&').filter((f) => !f.startsWith(`${name}=`));
    return [...fields, ...(value === undefined ? [] : [`${name}=${value}`])].join('&');
  };

const MALFORMED_COS: Array<[string, (authorization: string) => string]> = [
  ['no q-signature', field('q-signature', undefined)],
  ['no q-ak', field('q-ak', undefined)],
  ['no q-sign-time', field('q-sign-time', undefined)],
  ['no q-key-time', field('q-key-time', undefined)],
  ['no q-header-list', field('q-header-list', undefined)],
  ['no q-url-param-list', field('q-url-param-list', undefined)],
  ['no q-sign-algorithm', field('q-sign-algorithm', undefined)],
  ['algorithm sha256', field('q-sign-algorithm', 'sha256')],
  ['algorithm SHA1', field('q-sign-algorithm', 'SHA1')],
  ['unknown access key', field('q-ak', 'AKIDnobodyHasThisKey')],
  ['empty access key', field('q-ak', '')],
  ['signature not hex', field('q-signature', 'z'.repeat(40))],
  ['signature too short', field('q-signature', 'a'.repeat(39))],
  ['signature sha256-sized', field('q-signature', 'a'.repeat(64))],
  ['signature of zeros', field('q-signature', '0'.repeat(40))],
  ['expired window', (a) => field('q-key-time', '1000000000;1000000600')(field('q-sign-time', '1000000000;1000000600')(a))],
  ['sign-time differs from key-time', field('q-sign-time', '1;2')],
  ['non-numeric time', (a) => field('q-key-time', 'abc;def')(field('q-sign-time', 'abc;def')(a))],
  ['header list upper case', field('q-header-list', 'Host')],
  ['header list duplicate', field('q-header-list', 'host;host')],
  ['unknown field', (a) => `${a}&q-extra=1`],
  ['duplicate q-ak', (a) => `${a}&q-ak=${KEY.secretId}`],
  ['empty segment', (a) => a.replace('&', '&&')],
  ['not a COS header at all', () => 'Basic dXNlcjpwYXNz'],
];

test('a correctly signed COS request reaches the upstream (the control)', async () => {
  const { status, upstream } = await attempt(valid());
  expect(status).toBe(404);
  expect(upstream).toBeGreaterThan(0);
});

test.each(MALFORMED_COS)('COS signature: %s → 4xx, no upstream request', async (_name, mutate) => {
  const { status, upstream } = await attempt(withAuthorization(mutate(valid().authorization as string)));
  expect(status).toBeGreaterThanOrEqual(400);
  expect(status).toBeLessThan(500);
  expect(upstream).toBe(0);
});

test('the COS table has at least 20 malformed cases', () => {
  expect(MALFORMED_COS.length).toBeGreaterThanOrEqual(20);
});

const now = (): number => Date.now();
const JWT_ATTACKS: Array<[string, () => Promise<string>]> = [
  ['alg none', async () => `${b64url({ alg: 'none', typ: 'JWT' })}.${b64url({ iss: ISSUER, aud: AUDIENCE, sub: SA_SUBJECT, exp: Math.floor(now() / 1000) + 600 })}.`],
  [
    'HS256 keyed with the public key (algorithm confusion)',
    async () => new SignJWT({ sub: SA_SUBJECT }).setProtectedHeader({ alg: 'HS256', kid: signer.kid }).setIssuer(ISSUER).setAudience(AUDIENCE).setIssuedAt().setExpirationTime('10m').sign(new TextEncoder().encode(signer.publicPem)),
  ],
  ['signed by another key with the same kid', () => mint({ key: stranger, nowMs: now() })],
  ['unknown kid', () => mint({ key: signer, nowMs: now(), kid: 'someone-else' })],
  ['expired', () => mint({ key: signer, nowMs: now() - 3_600_000, exp: 60 })],
  ['not yet valid', () => mint({ key: signer, nowMs: now(), nbf: 3_600 })],
  ['wrong issuer', () => mint({ key: signer, nowMs: now(), iss: 'https://evil.example' })],
  ['wrong audience', () => mint({ key: signer, nowMs: now(), aud: 'another-service' })],
  ['no audience', () => mint({ key: signer, nowMs: now(), aud: null })],
  ['subject no rule matches', () => mint({ key: signer, nowMs: now(), sub: 'system:serviceaccount:team-b:intruder' })],
  [
    'payload swapped after signing',
    async () => {
      const [header, , signature] = (await mint({ key: signer, nowMs: now(), sub: 'system:serviceaccount:team-b:intruder' })).split('.');
      return `${header}.${b64url({ iss: ISSUER, aud: AUDIENCE, sub: SA_SUBJECT, exp: Math.floor(now() / 1000) + 600 })}.${signature}`;
    },
  ],
  ['signature stripped', async () => (await mint({ key: signer, nowMs: now() })).split('.').slice(0, 2).join('.') + '.'],
  [
    'ES256 from an unconfigured key',
    async () => {
      const { privateKey, publicKey } = await generateKeyPair('ES256');
      const jwk = await exportJWK(publicKey);
      return new SignJWT({ sub: SA_SUBJECT }).setProtectedHeader({ alg: 'ES256', jwk }).setIssuer(ISSUER).setAudience(AUDIENCE).setIssuedAt().setExpirationTime('10m').sign(privateKey);
    },
  ],
  ['not a JWT', async () => 'not.a.jwt'],
];

test('a valid bearer token reaches the upstream (the control)', async () => {
  const { status, upstream } = await attempt(withAuthorization(`Bearer ${await mint({ key: signer, nowMs: now() })}`));
  expect(status).toBe(404);
  expect(upstream).toBeGreaterThan(0);
});

test.each(JWT_ATTACKS)('JWT: %s → 4xx, no upstream request', async (_name, token) => {
  const { status, upstream } = await attempt(withAuthorization(`Bearer ${await token()}`));
  expect(status).toBeGreaterThanOrEqual(400);
  expect(status).toBeLessThan(500);
  expect(upstream).toBe(0);
});

test('the JWT table has at least 10 attacks', () => {
  expect(JWT_ATTACKS.length).toBeGreaterThanOrEqual(10);
});
