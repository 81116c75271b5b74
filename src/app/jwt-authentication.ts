/**
 * The JWT authenticator of `auth.jwt`: where its verification keys come from (a JWKS URL with its
 * cache, bearer token file and CA, or static JWKs and PEM keys) and the JWKS metrics and log lines.
 */
import { readFileSync } from 'node:fs';
import type { Authenticator } from '../auth/authenticate';
import { createJwtAuthenticator } from '../auth/jwt-authenticator';
import { createJwtKeyResolver } from '../auth/jwt-key-source';
import type { GatewayConfig } from '../config';
import type { Logger } from '../observability/logger';
import type { GatewayMetrics } from '../observability/metrics';

export async function createConfiguredJwtAuthenticator(jwt: NonNullable<GatewayConfig['auth']['jwt']>, deps: { readonly now: () => number; readonly metrics: GatewayMetrics; readonly log: Logger }): Promise<Authenticator> {
  const { now, metrics, log } = deps;
  return createJwtAuthenticator({
    keys: await createJwtKeyResolver(
      jwt.jwks !== undefined
        ? {
            kind: 'jwks-url',
            url: jwt.jwks.url,
            ...(jwt.jwks.caPem === undefined ? {} : { ca: jwt.jwks.caPem }),
            // Projected service-account tokens rotate: read the file on every fetch.
            ...(jwt.jwks.tokenFile === undefined ? {} : { bearerToken: () => readFileSync(jwt.jwks?.tokenFile as string, 'utf8').trim() }),
            maxAgeMs: jwt.jwks.cacheMaxAgeSeconds * 1000,
            cooldownMs: jwt.jwks.cooldownSeconds * 1000,
            timeoutMs: jwt.jwks.timeoutMs,
          }
        : {
            kind: 'static',
            keys: [...(jwt.keys ?? []).map((jwk) => ({ jwk: jwk as never })), ...(jwt.publicKeyPems ?? []).map((pem) => ({ pem, alg: jwt.algorithms[0] as string }))],
          },
      {
        now,
        onJwksEvent: (event) => {
          if (event.type === 'refreshed') metrics.jwksFetches.inc({ result: 'ok' });
          if (event.type === 'refresh-failed') {
            metrics.jwksFetches.inc({ result: 'error' });
            log.warn({ reason: event.reason }, 'JWKS fetch failed; the previous key set stays in use');
          }
        },
      },
    ),
    algorithms: jwt.algorithms,
    issuer: jwt.issuer,
    audience: jwt.audiences,
    clockToleranceSeconds: jwt.clockToleranceSeconds,
    rules: jwt.rules,
    now,
  });
}
