/**
 * Cache of plaintext data keys, the standard cure for KMS throttling: one upload has one wrapped data key
 * and many parts, and every part (and every ranged GET) needs the plaintext key again.
 *
 * Security property: an entry is found only with the same provider scope, the same wrapped bytes, the
 * same canonical encryption context AND the same named master key. A lookup with the right wrapped key
 * but another context or another key id misses and goes to the provider, which then refuses — so the
 * cache never widens what the provider would allow.
 *
 * Ownership: the cache keeps a private copy of each key and hands every caller a fresh copy, which the
 * caller owns and should zero when done. The private copy is zeroed when the entry expires, is evicted,
 * or the cache is cleared (best effort: the V8 heap may hold other copies we cannot reach).
 */
import { createHash } from 'node:crypto';
import { canonicalContext } from './encryption-context';
import type { DataKey, EncryptionContext, KeyProvider } from './key-provider';

export interface DataKeyCacheOptions {
  /** Entries older than this (since insertion) are dropped and zeroed. */
  readonly maxAgeMs: number;
  /** Least recently used entries beyond this count are dropped and zeroed. */
  readonly maxEntries: number;
  /** Injected clock (ms); defaults to Date.now. */
  readonly now?: () => number;
  /**
   * Called on every lookup with its result (an expired entry is a miss); the gateway counts them. Gets
   * no key material. Must not throw.
   */
  readonly onLookup?: (result: 'hit' | 'miss') => void;
}

export interface DataKeyCacheStats {
  readonly hits: number;
  readonly misses: number;
  /** Callers that found a decrypt for the same entry already in flight and waited for it. */
  readonly coalesced: number;
  readonly evictions: number;
  readonly expirations: number;
  readonly size: number;
}

interface Entry {
  readonly key: Buffer;
  readonly insertedAt: number;
}

function u32(value: number): Buffer {
  const out = Buffer.alloc(4);
  out.writeUInt32BE(value);
  return out;
}

/**
 * Cache key = SHA-256 over length-prefixed scope, wrapped key, canonical context and the named master key
 * id (the envelope's; empty = the provider's configured key). Hashing bounds the memory per entry; the
 * length prefixes keep distinct tuples distinct. The key id is part of it because the provider checks it
 * (KMS answers IncorrectKeyException for a blob named under another key): an entry made under one name
 * must not answer a lookup under another.
 */
export function dataKeyCacheKey(scope: string, wrapped: Buffer, context: EncryptionContext, keyId?: string): string {
  const scopeBytes = Buffer.from(scope, 'utf8');
  const ctx = canonicalContext(context);
  const keyIdBytes = Buffer.from(keyId ?? '', 'utf8');
  return createHash('sha256').update(u32(scopeBytes.length)).update(scopeBytes).update(u32(wrapped.length)).update(wrapped).update(u32(ctx.length)).update(ctx).update(u32(keyIdBytes.length)).update(keyIdBytes).digest('base64');
}

export class DataKeyCache {
  private readonly entries = new Map<string, Entry>();
  private readonly maxAgeMs: number;
  private readonly maxEntries: number;
  private readonly now: () => number;
  private readonly onLookup: ((result: 'hit' | 'miss') => void) | undefined;
  private counters = { hits: 0, misses: 0, coalesced: 0, evictions: 0, expirations: 0 };

  constructor(options: DataKeyCacheOptions) {
    if (!(options.maxAgeMs > 0) || !(options.maxEntries >= 1)) throw new RangeError('DataKeyCache needs maxAgeMs > 0 and maxEntries >= 1.');
    this.maxAgeMs = options.maxAgeMs;
    this.maxEntries = Math.floor(options.maxEntries);
    this.now = options.now ?? Date.now;
    this.onLookup = options.onLookup;
  }

  /** Returns a caller-owned copy, or undefined (counted as a miss). */
  get(cacheKey: string): Buffer | undefined {
    const entry = this.entries.get(cacheKey);
    if (entry && this.now() - entry.insertedAt >= this.maxAgeMs) {
      this.drop(cacheKey, entry);
      this.counters.expirations++;
    } else if (entry) {
      // Re-insert to mark as most recently used (Map iteration order = insertion order).
      this.entries.delete(cacheKey);
      this.entries.set(cacheKey, entry);
      this.counters.hits++;
      this.onLookup?.('hit');
      return Buffer.from(entry.key);
    }
    this.counters.misses++;
    this.onLookup?.('miss');
    return undefined;
  }

  /** Stores a private copy of `key`; the caller keeps ownership of the buffer it passed. */
  set(cacheKey: string, key: Buffer): void {
    const previous = this.entries.get(cacheKey);
    if (previous) this.drop(cacheKey, previous);
    this.entries.set(cacheKey, { key: Buffer.from(key), insertedAt: this.now() });
    while (this.entries.size > this.maxEntries) {
      const oldest = this.entries.entries().next().value;
      if (!oldest) break;
      this.drop(oldest[0], oldest[1]);
      this.counters.evictions++;
    }
  }

  /** Drops and zeroes expired entries; call periodically so idle keys do not linger in memory. */
  purgeExpired(): number {
    const now = this.now();
    let purged = 0;
    for (const [cacheKey, entry] of this.entries) {
      if (now - entry.insertedAt >= this.maxAgeMs) {
        this.drop(cacheKey, entry);
        this.counters.expirations++;
        purged++;
      }
    }
    return purged;
  }

  /** Drops and zeroes every entry. */
  clear(): void {
    for (const [cacheKey, entry] of this.entries) this.drop(cacheKey, entry);
  }

  /** @internal used by cachingKeyProvider to count coalesced waiters. */
  noteCoalesced(): void {
    this.counters.coalesced++;
  }

  stats(): DataKeyCacheStats {
    return { ...this.counters, size: this.entries.size };
  }

  private drop(cacheKey: string, entry: Entry): void {
    entry.key.fill(0);
    this.entries.delete(cacheKey);
  }
}

export interface CachingKeyProviderOptions extends DataKeyCacheOptions {
  /**
   * Part of every cache key; defaults to the inner provider's name. When several providers (e.g. one per
   * coffer role) share one `cache`, give each its own scope so one coffer's entries can never answer
   * another's lookups even if the contexts were equal.
   */
  readonly scope?: string;
  /** Share a cache between decorators; otherwise each decorator gets its own. */
  readonly cache?: DataKeyCache;
}

export interface CachingKeyProvider extends KeyProvider {
  readonly cache: DataKeyCache;
}

/**
 * Decorates a KeyProvider with a DataKeyCache. generateDataKey always goes to the provider (every object
 * gets a fresh key) but inserts the result, so the next decrypt of that wrapped key is a hit.
 * Concurrent decrypts of one entry share a single provider call (single flight); failures are not cached.
 */
export function cachingKeyProvider(inner: KeyProvider, options: CachingKeyProviderOptions): CachingKeyProvider {
  const cache = options.cache ?? new DataKeyCache(options);
  const scope = options.scope ?? inner.name;
  const inFlight = new Map<string, { promise: Promise<Buffer>; waiters: number }>();

  async function decryptDataKey(wrapped: Buffer, context: EncryptionContext, keyId?: string): Promise<Buffer> {
    const cacheKey = dataKeyCacheKey(scope, wrapped, context, keyId);
    const cached = cache.get(cacheKey);
    if (cached) return cached;

    let flight = inFlight.get(cacheKey);
    if (flight) {
      cache.noteCoalesced();
    } else {
      const promise = inner.decryptDataKey(wrapped, context, keyId).then(
        (plaintext) => {
          inFlight.delete(cacheKey);
          cache.set(cacheKey, plaintext);
          return plaintext;
        },
        (error: unknown) => {
          inFlight.delete(cacheKey);
          throw error;
        },
      );
      flight = { promise, waiters: 0 };
      inFlight.set(cacheKey, flight);
    }
    // Every waiter (the first caller included) copies the provider's buffer; the last one zeroes it, so
    // nobody holds a buffer someone else may wipe.
    const current = flight;
    current.waiters++;
    let shared: Buffer | undefined;
    try {
      shared = await current.promise;
      return Buffer.from(shared);
    } finally {
      if (--current.waiters === 0) shared?.fill(0);
    }
  }

  return {
    name: inner.name,
    cache,
    async generateDataKey(context: EncryptionContext): Promise<DataKey> {
      const dataKey = await inner.generateDataKey(context);
      try {
        // Under the key id the envelope will record, which is what later decrypts name.
        cache.set(dataKeyCacheKey(scope, dataKey.wrapped, context, dataKey.keyId), dataKey.plaintext);
      } catch (error) {
        dataKey.plaintext.fill(0);
        throw error;
      }
      return dataKey;
    },
    decryptDataKey,
  };
}
