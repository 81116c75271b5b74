/**
 * Builds the JWT key resolver from configuration: either a JWKS URL (cached, see jwks-cache.ts) or
 * static keys. Secrets (CA, bearer token) arrive already read; reading files is the config stage's job.
 */
import { type JwksCacheEvent, JwksCache, type JwtKeyResolver } from './jwks-cache';
import { createJwksHttpFetcher } from './jwks-http-fetcher';
import { createStaticKeyResolver, type StaticJwtKey } from './jwt-static-keys';

export type JwtKeySourceConfig =
  | {
      readonly kind: 'jwks-url';
      readonly url: string;
      readonly ca?: string | Buffer;
      readonly bearerToken?: () => string | Promise<string>;
      readonly maxAgeMs?: number;
      readonly cooldownMs?: number;
      readonly maxStaleMs?: number;
      readonly timeoutMs?: number;
    }
  | { readonly kind: 'static'; readonly keys: readonly StaticJwtKey[] };

export interface JwtKeySourceDeps {
  readonly now: () => number;
  readonly onJwksEvent?: (event: JwksCacheEvent) => void;
}

export async function createJwtKeyResolver(config: JwtKeySourceConfig, deps: JwtKeySourceDeps): Promise<JwtKeyResolver> {
  if (config.kind === 'static') return createStaticKeyResolver(config.keys);
  const fetcherOptions = {
    url: config.url,
    ...(config.ca === undefined ? {} : { ca: config.ca }),
    ...(config.bearerToken === undefined ? {} : { bearerToken: config.bearerToken }),
    ...(config.timeoutMs === undefined ? {} : { timeoutMs: config.timeoutMs }),
  };
  const cache = new JwksCache({
    fetchJwks: createJwksHttpFetcher(fetcherOptions),
    now: deps.now,
    ...(config.maxAgeMs === undefined ? {} : { maxAgeMs: config.maxAgeMs }),
    ...(config.cooldownMs === undefined ? {} : { cooldownMs: config.cooldownMs }),
    ...(config.maxStaleMs === undefined ? {} : { maxStaleMs: config.maxStaleMs }),
    ...(deps.onJwksEvent === undefined ? {} : { onEvent: deps.onJwksEvent }),
  });
  return cache.resolve;
}
