/**
 * Verification keys given in configuration instead of a JWKS URL: JWK objects or PEM (SPKI public key
 * or X.509 certificate, e.g. a Kubernetes `sa.pub`). Everything is turned into one local JWKS so key
 * selection (kid, alg, use) behaves exactly as for a remote set.
 */
import { createLocalJWKSet, exportJWK, importSPKI, importX509, type JWK } from 'jose';
import type { JwtKeyResolver } from './jwks-cache';
import { toVerificationKeySet } from './jwks-cache';

export type StaticJwtKey = { readonly jwk: JWK } | { readonly pem: string; /** Required: a PEM does not say which algorithm it is for. */ readonly alg: string; readonly kid?: string };

export async function createStaticKeyResolver(keys: readonly StaticJwtKey[]): Promise<JwtKeyResolver> {
  if (keys.length === 0) throw new Error('at least one static JWT key is required');
  const jwks = await Promise.all(keys.map(toJwk));
  for (const jwk of jwks) {
    if (jwk.kty === 'oct' || 'd' in jwk) throw new Error('static JWT keys must be public keys');
  }
  const select = createLocalJWKSet(toVerificationKeySet({ keys: jwks }));
  return (header, token) => select(header, token);
}

async function toJwk(key: StaticJwtKey): Promise<JWK> {
  if ('jwk' in key) return { ...key.jwk };
  const imported = key.pem.includes('BEGIN CERTIFICATE') ? await importX509(key.pem, key.alg, { extractable: true }) : await importSPKI(key.pem, key.alg, { extractable: true });
  const jwk = await exportJWK(imported);
  return key.kid === undefined ? { ...jwk, alg: key.alg } : { ...jwk, alg: key.alg, kid: key.kid };
}
