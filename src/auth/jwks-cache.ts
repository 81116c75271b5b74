/**
 * A JWKS cache with the properties jose's createRemoteJWKSet lacks: stale-if-error (cached keys keep
 * verifying while the endpoint is down), one shared cooldown for every fetch (unknown `kid`s and
 * expired entries cannot turn into a fetch storm against the issuer), single-flight fetching, and an
 * injected clock and fetcher so all of it is testable. Key selection is jose's createLocalJWKSet.
 */
import { createLocalJWKSet, type CryptoKey, type FlattenedJWSInput, type JSONWebKeySet, type JWK, type JWSHeaderParameters } from 'jose';
import { GatewayError } from '../errors/gateway-error';

/** Returns the parsed JSON body of the JWKS endpoint, or throws; see jwks-http-fetcher.ts. */
export type FetchJwks = () => Promise<unknown>;

export type JwksCacheEvent = { readonly type: 'refreshed'; readonly keys: number } | { readonly type: 'refresh-failed'; readonly reason: string } | { readonly type: 'refresh-skipped'; readonly reason: 'cooldown' };

export interface JwksCacheOptions {
  readonly fetchJwks: FetchJwks;
  /** Milliseconds since the epoch. */
  readonly now: () => number;
  /** After this age a request triggers a refresh (subject to the cooldown). Default 5 min. */
  readonly maxAgeMs?: number;
  /** Minimum time between two fetch attempts, successful or not. Default 30 s. */
  readonly cooldownMs?: number;
  /** How long past maxAge a key set is still used when refreshing fails. Default 24 h. */
  readonly maxStaleMs?: number;
  /** For logs/metrics; events carry no key material and no token. */
  readonly onEvent?: (event: JwksCacheEvent) => void;
}

export type JwtKeyResolver = (header: JWSHeaderParameters, token: FlattenedJWSInput) => Promise<CryptoKey>;

interface CachedKeySet {
  readonly select: ReturnType<typeof createLocalJWKSet>;
  readonly fetchedAt: number;
}

export class JwksCache {
  readonly #fetchJwks: FetchJwks;
  readonly #now: () => number;
  readonly #maxAgeMs: number;
  readonly #cooldownMs: number;
  readonly #maxStaleMs: number;
  readonly #onEvent: (event: JwksCacheEvent) => void;
  #cached: CachedKeySet | undefined;
  #lastAttemptAt: number | undefined;
  #inFlight: Promise<boolean> | undefined;

  constructor(options: JwksCacheOptions) {
    this.#fetchJwks = options.fetchJwks;
    this.#now = options.now;
    this.#maxAgeMs = options.maxAgeMs ?? 5 * 60_000;
    this.#cooldownMs = options.cooldownMs ?? 30_000;
    this.#maxStaleMs = options.maxStaleMs ?? 24 * 3600_000;
    this.#onEvent = options.onEvent ?? (() => undefined);
  }

  /** jose-compatible key resolver (`jwtVerify(token, cache.resolve)`). */
  readonly resolve: JwtKeyResolver = async (header, token) => {
    if (this.#cached === undefined || this.#now() - this.#cached.fetchedAt >= this.#maxAgeMs) await this.refresh();
    const cached = this.#usable();
    try {
      return await cached.select(header, token);
    } catch (error) {
      if (!isNoMatchingKey(error)) throw error;
      // The issuer may have rotated keys: look again, but at most once per cooldown for everyone,
      // so tokens with made-up kids cost the issuer nothing.
      if (!(await this.refresh())) throw error;
      return this.#usable().select(header, token);
    }
  };

  /**
   * Fetches a new key set unless one is in flight (then joins it) or the last attempt was less than
   * a cooldown ago. Never throws: a failed fetch keeps the previous set (stale-if-error).
   * Resolves to true when a new key set is in place.
   */
  refresh(): Promise<boolean> {
    if (this.#inFlight !== undefined) return this.#inFlight;
    const now = this.#now();
    if (this.#lastAttemptAt !== undefined && now - this.#lastAttemptAt < this.#cooldownMs) {
      this.#onEvent({ type: 'refresh-skipped', reason: 'cooldown' });
      return Promise.resolve(false);
    }
    this.#lastAttemptAt = now;
    this.#inFlight = this.#load().finally(() => {
      this.#inFlight = undefined;
    });
    return this.#inFlight;
  }

  async #load(): Promise<boolean> {
    try {
      const jwks = toVerificationKeySet(await this.#fetchJwks());
      // createLocalJWKSet validates the set's shape (throws ERR_JWKS_INVALID) before we replace anything.
      this.#cached = { select: createLocalJWKSet(jwks), fetchedAt: this.#now() };
      this.#onEvent({ type: 'refreshed', keys: jwks.keys.length });
      return true;
    } catch (error) {
      this.#onEvent({ type: 'refresh-failed', reason: describeFailure(error) });
      return false;
    }
  }

  /** The cached set if it is fresh or within the stale allowance; otherwise fail closed. */
  #usable(): CachedKeySet {
    const cached = this.#cached;
    if (cached === undefined || this.#now() - cached.fetchedAt > this.#maxAgeMs + this.#maxStaleMs) {
      throw new GatewayError('ServiceUnavailable', 'The token signing keys are not available; retry later.', {
        reason: 'jwks-unavailable',
      });
    }
    return cached;
  }
}

/**
 * Keeps only public signature-verification keys: a published private key (`d`) or a symmetric
 * (`oct`) key is never used, so an HMAC secret can never enter the verification path.
 */
export function toVerificationKeySet(body: unknown): JSONWebKeySet {
  if (typeof body !== 'object' || body === null || !Array.isArray((body as { keys?: unknown }).keys)) {
    throw new Error('JWKS body has no "keys" array');
  }
  const keys = (body as { keys: unknown[] }).keys.filter((key): key is JWK => typeof key === 'object' && key !== null && (key as JWK).kty !== 'oct' && !('d' in key) && (key as JWK).use !== 'enc');
  return { keys };
}

function isNoMatchingKey(error: unknown): boolean {
  return typeof error === 'object' && error !== null && (error as { code?: unknown }).code === 'ERR_JWKS_NO_MATCHING_KEY';
}

function describeFailure(error: unknown): string {
  if (typeof error === 'object' && error !== null) {
    const { code, message } = error as { code?: unknown; message?: unknown };
    if (typeof code === 'string') return code;
    if (typeof message === 'string') return message.slice(0, 200);
  }
  return 'unknown';
}
