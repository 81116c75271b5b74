import { type JwksCacheEvent, JwksCache, toVerificationKeySet } from '../../src/auth/jwks-cache';
import { createJwksHttpFetcher } from '../../src/auth/jwks-http-fetcher';
import { GatewayError } from '../../src/errors/gateway-error';
import { startJwksTestServer } from '../support/jwks-test-server';
import { makeKey, type TestKey } from './jwt-test-tokens';

/** A controllable fake fetch: resolves with the current body or rejects while `down`. */
function fakeFetch(body: () => unknown) {
  const state = { calls: 0, down: false, gate: undefined as Promise<void> | undefined };
  const fetchJwks = async () => {
    state.calls += 1;
    if (state.gate !== undefined) await state.gate;
    if (state.down) throw new Error('ECONNREFUSED');
    return body();
  };
  return { state, fetchJwks };
}

let k1: TestKey;
let k2: TestKey;
beforeAll(async () => {
  k1 = await makeKey('k1');
  k2 = await makeKey('k2');
});

const header = (kid: string) => ({ alg: 'RS256', kid });
const token = { payload: '', signature: '', protected: '' };

describe('JwksCache', () => {
  test('single flight: concurrent cold-start lookups share one fetch', async () => {
    let release!: () => void;
    const { state, fetchJwks } = fakeFetch(() => ({ keys: [k1.publicJwk] }));
    state.gate = new Promise((resolve) => (release = resolve));
    const cache = new JwksCache({ fetchJwks, now: () => 0 });
    const lookups = Array.from({ length: 10 }, () => cache.resolve(header('k1'), token));
    release();
    const keys = await Promise.all(lookups);
    expect(keys).toHaveLength(10);
    expect(state.calls).toBe(1);
  });

  test('stale-if-error is bounded by maxStaleMs, then fails closed', async () => {
    let now = 0;
    const { state, fetchJwks } = fakeFetch(() => ({ keys: [k1.publicJwk] }));
    const cache = new JwksCache({ fetchJwks, now: () => now, maxAgeMs: 1000, cooldownMs: 100, maxStaleMs: 5000 });
    await cache.resolve(header('k1'), token);
    state.down = true;
    now = 6000; // fetchedAt 0 + maxAge 1000 + maxStale 5000: still usable
    await expect(cache.resolve(header('k1'), token)).resolves.toBeDefined();
    now = 6001;
    const error = await cache.resolve(header('k1'), token).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(GatewayError);
    expect((error as GatewayError).code).toBe('ServiceUnavailable');
  });

  test('an invalid JWKS body does not replace a good key set', async () => {
    let now = 0;
    let body: unknown = { keys: [k1.publicJwk] };
    const events: JwksCacheEvent[] = [];
    const { fetchJwks } = fakeFetch(() => body);
    const cache = new JwksCache({ fetchJwks, now: () => now, maxAgeMs: 1000, cooldownMs: 0, onEvent: (e) => events.push(e) });
    await cache.resolve(header('k1'), token);
    body = { not: 'a jwks' };
    now = 2000;
    await expect(cache.resolve(header('k1'), token)).resolves.toBeDefined();
    expect(events.map((e) => e.type)).toEqual(['refreshed', 'refresh-failed']);
  });

  test('expired set + failing endpoint: one attempt per cooldown, not per request', async () => {
    let now = 0;
    const { state, fetchJwks } = fakeFetch(() => ({ keys: [k1.publicJwk] }));
    const cache = new JwksCache({ fetchJwks, now: () => now, maxAgeMs: 1000, cooldownMs: 500 });
    await cache.resolve(header('k1'), token);
    state.down = true;
    now = 1000;
    for (let i = 0; i < 50; i += 1) await cache.resolve(header('k1'), token);
    expect(state.calls).toBe(2);
    now = 1500;
    await cache.resolve(header('k1'), token);
    expect(state.calls).toBe(3);
  });

  test('unknown kid after the cooldown picks up a rotated key', async () => {
    let now = 0;
    let keys = [k1.publicJwk];
    const { state, fetchJwks } = fakeFetch(() => ({ keys }));
    const cache = new JwksCache({ fetchJwks, now: () => now, cooldownMs: 100 });
    await cache.resolve(header('k1'), token);
    keys = [k1.publicJwk, k2.publicJwk];
    await expect(cache.resolve(header('k2'), token)).rejects.toMatchObject({ code: 'ERR_JWKS_NO_MATCHING_KEY' });
    now = 100;
    await expect(cache.resolve(header('k2'), token)).resolves.toBeDefined();
    expect(state.calls).toBe(2);
  });

  test('private and symmetric keys in a published set are ignored', () => {
    const set = toVerificationKeySet({
      keys: [k1.publicJwk, { kty: 'oct', k: 'c2VjcmV0', kid: 'hmac' }, { ...k2.publicJwk, d: 'private' }, { ...k2.publicJwk, use: 'enc' }, 'junk'],
    });
    expect(set.keys.map((k) => k.kid)).toEqual(['k1']);
    expect(() => toVerificationKeySet({ keys: 'no' })).toThrow(/keys/);
  });
});

describe('JWKS HTTP fetcher', () => {
  test('sends the bearer token read at fetch time, parses JSON', async () => {
    const server = await startJwksTestServer({ keys: [] });
    try {
      let n = 0;
      const fetchJwks = createJwksHttpFetcher({ url: server.url, bearerToken: () => `t${(n += 1)}` });
      await expect(fetchJwks()).resolves.toEqual({ keys: [] });
      await fetchJwks();
      expect(server.authorizations).toEqual(['Bearer t1', 'Bearer t2']);
    } finally {
      await server.close();
    }
  });

  test('non-200, oversize, and non-JSON answers are failures', async () => {
    const server = await startJwksTestServer({ keys: Array.from({ length: 200 }, (_, i) => ({ kty: 'RSA', kid: `k${i}`, n: 'x'.repeat(100) })) });
    try {
      await expect(createJwksHttpFetcher({ url: server.url, maxBytes: 1000 })()).rejects.toThrow(/too large/);
      server.setMode('http-503');
      await expect(createJwksHttpFetcher({ url: server.url })()).rejects.toThrow(/HTTP 503/);
      server.setMode('garbage');
      await expect(createJwksHttpFetcher({ url: server.url })()).rejects.toThrow(SyntaxError);
      server.setMode('stall');
      await expect(createJwksHttpFetcher({ url: server.url, timeoutMs: 100 })()).rejects.toThrow(/timed out/);
    } finally {
      await server.close();
    }
  });

  test('refuses to send a bearer token over plain http to a non-loopback host', () => {
    expect(() => createJwksHttpFetcher({ url: 'http://jwks.example/keys', bearerToken: () => 't' })).toThrow(/https/);
    expect(() => createJwksHttpFetcher({ url: 'ftp://x/keys' })).toThrow(/http/);
    expect(() => createJwksHttpFetcher({ url: 'https://kubernetes.default.svc/openid/v1/jwks', bearerToken: () => 't', ca: 'PEM' })).not.toThrow();
  });
});
