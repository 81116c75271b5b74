import { GatewayError } from '../../src/errors/gateway-error';
import { createAwsKmsKeyProvider, type AwsKmsKeyProvider } from '../../src/keys/aws-kms-key-provider';
import { DataKeyCache, cachingKeyProvider, dataKeyCacheKey } from '../../src/keys/data-key-cache';
import type { DataKey, EncryptionContext, KeyProvider } from '../../src/keys/key-provider';
import { startKmsTestServer, type KmsTestServer } from '../support/kms-test-server';
import { TestCredentialStore } from '../support/sts-test-server';

const CONTEXT = { coffer: 'photos', key: 'a.jpg' } as const;

/** A plain-object provider whose decrypts resolve only when the test says so. */
function deferredProvider() {
  const pending: Array<{ wrapped: Buffer; context: EncryptionContext; resolve: (b: Buffer) => void; reject: (e: unknown) => void }> = [];
  let generated = 0;
  const provider: KeyProvider = {
    name: 'local',
    async generateDataKey(): Promise<DataKey> {
      generated++;
      return { plaintext: Buffer.alloc(32, generated), wrapped: Buffer.from(`wrapped-${generated}`), keyId: 'k' };
    },
    decryptDataKey(wrapped, context) {
      return new Promise<Buffer>((resolve, reject) => pending.push({ wrapped, context, resolve, reject }));
    },
  };
  return { provider, pending };
}

describe('against the KMS test server', () => {
  let kms: KmsTestServer;
  let inner: AwsKmsKeyProvider;
  let other: { arn: string };
  beforeEach(async () => {
    const store = new TestCredentialStore();
    store.addUser('AKIDCACHE', 'cache-secret');
    kms = await startKmsTestServer({ store, region: 'eu-west-1' });
    const key = kms.createKey();
    other = kms.createKey();
    inner = createAwsKmsKeyProvider({
      keyId: key.arn,
      // Trusted for reads, so an envelope naming it is unwrapped under it (the rotation case).
      previousKeyIds: [other.arn],
      kms: { region: 'eu-west-1', endpoint: kms.endpoint, credentials: { accessKeyId: 'AKIDCACHE', secretAccessKey: 'cache-secret' } },
      sleep: async () => undefined,
    });
  });
  afterEach(async () => {
    inner.destroy();
    await kms.close();
  });

  it('generate + 50 decrypts of the same wrapped key → exactly 1 KMS call', async () => {
    const cached = cachingKeyProvider(inner, { maxAgeMs: 60_000, maxEntries: 100 });
    const dataKey = await cached.generateDataKey(CONTEXT);
    for (let i = 0; i < 50; i++) {
      expect((await cached.decryptDataKey(dataKey.wrapped, { key: 'a.jpg', coffer: 'photos' }, dataKey.keyId)).equals(dataKey.plaintext)).toBe(true);
    }
    expect(kms.calls.map((c) => c.operation)).toEqual(['GenerateDataKey']);
    expect(cached.cache.stats()).toMatchObject({ hits: 50, misses: 0, size: 1 });
  });

  it('same wrapped key with another context misses, goes to KMS and is rejected; the right context still hits', async () => {
    const cached = cachingKeyProvider(inner, { maxAgeMs: 60_000, maxEntries: 100 });
    const dataKey = await cached.generateDataKey(CONTEXT);
    const error = (await cached.decryptDataKey(dataKey.wrapped, { ...CONTEXT, coffer: 'videos' }).catch((e: unknown) => e)) as GatewayError;
    expect(error).toBeInstanceOf(GatewayError);
    expect(error.reason).toBe('invalid-ciphertext');
    expect(kms.callCount('Decrypt')).toBe(1);
    expect((await cached.decryptDataKey(dataKey.wrapped, CONTEXT, dataKey.keyId)).equals(dataKey.plaintext)).toBe(true);
    expect(kms.callCount('Decrypt')).toBe(1);
    expect(cached.cache.stats()).toMatchObject({ hits: 1, misses: 1 });
  });

  it('an entry is found only under the key id it was made with: another name misses and KMS refuses it', async () => {
    const cached = cachingKeyProvider(inner, { maxAgeMs: 60_000, maxEntries: 100 });
    const dataKey = await cached.generateDataKey(CONTEXT);
    const error = (await cached.decryptDataKey(dataKey.wrapped, CONTEXT, other.arn).catch((e: unknown) => e)) as GatewayError;
    expect(error.reason).toBe('incorrect-key');
    expect(kms.callCount('Decrypt')).toBe(1);
    // After a rewrap the new wrapped key is a new entry, unwrapped once under the new key.
    const rewrapped = await inner.rewrapDataKey(dataKey.wrapped, CONTEXT, dataKey.keyId, other.arn);
    for (let i = 0; i < 3; i++) expect((await cached.decryptDataKey(rewrapped.wrapped, CONTEXT, rewrapped.keyId)).equals(dataKey.plaintext)).toBe(true);
    expect(kms.calls.filter((c) => c.operation === 'Decrypt').map((c) => [c.requestedKeyId, c.status])).toEqual([
      [other.arn, 400],
      [other.arn, 200],
    ]);
  });

  it('100 concurrent decrypts of an uncached key → one KMS Decrypt (single flight), each caller its own copy', async () => {
    const dataKey = await inner.generateDataKey(CONTEXT); // not through the cache
    const cached = cachingKeyProvider(inner, { maxAgeMs: 60_000, maxEntries: 100 });
    const results = await Promise.all(Array.from({ length: 100 }, () => cached.decryptDataKey(dataKey.wrapped, CONTEXT)));
    expect(kms.callCount('Decrypt')).toBe(1);
    for (const r of results) expect(r.equals(dataKey.plaintext)).toBe(true);
    results[0]!.fill(0); // a caller wiping its copy does not affect anyone else
    expect(results[1]!.equals(dataKey.plaintext)).toBe(true);
    expect((await cached.decryptDataKey(dataKey.wrapped, CONTEXT)).equals(dataKey.plaintext)).toBe(true);
    expect(cached.cache.stats()).toMatchObject({ misses: 100, coalesced: 99, hits: 1 });
  });
});

describe('DataKeyCache / cachingKeyProvider (fakes, injected clock)', () => {
  it('entries expire after maxAge (insertion time) and the next decrypt goes to the provider', async () => {
    let now = 1_000;
    const { provider, pending } = deferredProvider();
    const cached = cachingKeyProvider(provider, { maxAgeMs: 10_000, maxEntries: 10, now: () => now });
    const dk = await cached.generateDataKey(CONTEXT);
    now += 9_999;
    expect((await cached.decryptDataKey(dk.wrapped, CONTEXT, dk.keyId)).equals(dk.plaintext)).toBe(true);
    expect(pending).toHaveLength(0);
    now += 1;
    const again = cached.decryptDataKey(dk.wrapped, CONTEXT, dk.keyId);
    expect(pending).toHaveLength(1);
    pending[0]!.resolve(Buffer.from(dk.plaintext));
    expect((await again).equals(dk.plaintext)).toBe(true);
    expect(cached.cache.stats()).toMatchObject({ hits: 1, misses: 1, expirations: 1, size: 1 });
  });

  it('evicts the least recently used entry beyond maxEntries', async () => {
    const { provider, pending } = deferredProvider();
    const cached = cachingKeyProvider(provider, { maxAgeMs: 60_000, maxEntries: 2 });
    const a = await cached.generateDataKey({ n: 'a' });
    const b = await cached.generateDataKey({ n: 'b' });
    await cached.decryptDataKey(a.wrapped, { n: 'a' }, a.keyId); // a is now most recent
    await cached.generateDataKey({ n: 'c' }); // evicts b
    expect(cached.cache.stats()).toMatchObject({ size: 2, evictions: 1 });
    await cached.decryptDataKey(a.wrapped, { n: 'a' }, a.keyId);
    expect(pending).toHaveLength(0);
    const bAgain = cached.decryptDataKey(b.wrapped, { n: 'b' }, b.keyId);
    expect(pending).toHaveLength(1);
    pending[0]!.resolve(Buffer.from(b.plaintext));
    expect((await bAgain).equals(b.plaintext)).toBe(true);
  });

  it('reports every lookup to onLookup: hits, misses, and an expired entry as a miss', () => {
    let now = 0;
    const results: string[] = [];
    const cache = new DataKeyCache({ maxAgeMs: 100, maxEntries: 10, now: () => now, onLookup: (r) => results.push(r) });
    expect(cache.get('k')).toBeUndefined();
    cache.set('k', Buffer.alloc(32, 7));
    expect(cache.get('k')?.equals(Buffer.alloc(32, 7))).toBe(true);
    now = 100;
    expect(cache.get('k')).toBeUndefined();
    expect(results).toEqual(['miss', 'hit', 'miss']);
    expect(cache.stats()).toMatchObject({ hits: 1, misses: 2, expirations: 1 });
  });

  it('zeroes its private copy on eviction, expiry and clear', () => {
    let now = 0;
    const cache = new DataKeyCache({ maxAgeMs: 100, maxEntries: 1, now: () => now });
    const copies: Buffer[] = [];
    const from = jest.spyOn(Buffer, 'from');
    try {
      cache.set('k1', Buffer.alloc(32, 1));
      copies.push(from.mock.results.at(-1)!.value as Buffer);
      cache.set('k2', Buffer.alloc(32, 2)); // evicts k1
      copies.push(from.mock.results.at(-1)!.value as Buffer);
    } finally {
      from.mockRestore();
    }
    expect(copies[0]!.equals(Buffer.alloc(32, 0))).toBe(true);
    expect(copies[1]!.equals(Buffer.alloc(32, 2))).toBe(true);
    now = 100;
    expect(cache.purgeExpired()).toBe(1);
    expect(copies[1]!.equals(Buffer.alloc(32, 0))).toBe(true);
    cache.set('k3', Buffer.alloc(32, 3));
    cache.clear();
    expect(cache.stats().size).toBe(0);
  });

  it("the buffer the caller passed to generate stays the caller's (cache keeps its own copy)", async () => {
    const { provider } = deferredProvider();
    const cached = cachingKeyProvider(provider, { maxAgeMs: 60_000, maxEntries: 10 });
    const dk = await cached.generateDataKey(CONTEXT);
    const original = Buffer.from(dk.plaintext);
    dk.plaintext.fill(0); // caller done with it
    expect((await cached.decryptDataKey(dk.wrapped, CONTEXT, dk.keyId)).equals(original)).toBe(true);
  });

  it("the provider's decrypt buffer is wiped once every waiter has its copy", async () => {
    const { provider, pending } = deferredProvider();
    const cached = cachingKeyProvider(provider, { maxAgeMs: 60_000, maxEntries: 10 });
    const waiters = [cached.decryptDataKey(Buffer.from('w'), CONTEXT), cached.decryptDataKey(Buffer.from('w'), CONTEXT)];
    const fromProvider = Buffer.alloc(32, 9);
    pending[0]!.resolve(fromProvider);
    const results = await Promise.all(waiters);
    expect(results.every((r) => r.equals(Buffer.alloc(32, 9)))).toBe(true);
    expect(fromProvider.equals(Buffer.alloc(32, 0))).toBe(true);
    expect(pending).toHaveLength(1);
  });

  it('a failed decrypt reaches every concurrent waiter and is not cached', async () => {
    const { provider, pending } = deferredProvider();
    const cached = cachingKeyProvider(provider, { maxAgeMs: 60_000, maxEntries: 10 });
    const waiters = Array.from({ length: 5 }, () => cached.decryptDataKey(Buffer.from('w'), CONTEXT).catch((e: unknown) => e));
    expect(pending).toHaveLength(1);
    const failure = new GatewayError('KMSFailed', 'no', { reason: 'throttled' });
    pending[0]!.reject(failure);
    expect(await Promise.all(waiters)).toEqual(Array(5).fill(failure));
    const retry = cached.decryptDataKey(Buffer.from('w'), CONTEXT);
    expect(pending).toHaveLength(2);
    pending[1]!.resolve(Buffer.alloc(32, 4));
    expect((await retry).equals(Buffer.alloc(32, 4))).toBe(true);
  });

  it("scopes partition a shared cache (one coffer cannot hit another's entries)", async () => {
    const shared = new DataKeyCache({ maxAgeMs: 60_000, maxEntries: 10 });
    const a = deferredProvider();
    const b = deferredProvider();
    const cachedA = cachingKeyProvider(a.provider, { maxAgeMs: 1, maxEntries: 1, cache: shared, scope: 'coffer-a' });
    const cachedB = cachingKeyProvider(b.provider, { maxAgeMs: 1, maxEntries: 1, cache: shared, scope: 'coffer-b' });
    const dk = await cachedA.generateDataKey(CONTEXT);
    void cachedB.decryptDataKey(dk.wrapped, CONTEXT, dk.keyId);
    expect(b.pending).toHaveLength(1);
    expect(shared.stats()).toMatchObject({ misses: 1, hits: 0 });
  });

  it('cache keys separate scope, wrapped bytes, context and key id unambiguously', () => {
    const keys = new Set([
      dataKeyCacheKey('s', Buffer.from('ab'), { c: 'd' }),
      dataKeyCacheKey('sa', Buffer.from('b'), { c: 'd' }),
      dataKeyCacheKey('s', Buffer.from('a'), { bc: 'd' }),
      dataKeyCacheKey('s', Buffer.from('ab'), { c: 'd', e: '' }),
      dataKeyCacheKey('s', Buffer.from('ab'), {}),
      dataKeyCacheKey('s', Buffer.from('ab'), { c: 'd' }, 'k1'),
      dataKeyCacheKey('s', Buffer.from('ab'), { c: 'd' }, 'k2'),
    ]);
    expect(keys.size).toBe(7);
    expect(dataKeyCacheKey('s', Buffer.from('ab'), { c: 'd', x: 'y' })).toBe(dataKeyCacheKey('s', Buffer.from('ab'), { x: 'y', c: 'd' }));
  });
});
