/** Key pairs and token minting for the JWT tests (not a test file itself). */
import { type CryptoKey, exportJWK, exportSPKI, generateKeyPair, type JWK, type JWTPayload, SignJWT } from 'jose';

export const ISSUER = 'https://kubernetes.default.svc.cluster.local';
export const AUDIENCE = 'coffer-gateway';
export const SA_SUBJECT = 'system:serviceaccount:team-a:uploader';
/** Milliseconds; tests move it. */
export const START_MS = 1_700_000_000_000;

export interface TestKey {
  readonly kid: string;
  readonly privateKey: CryptoKey;
  readonly publicJwk: JWK;
  readonly publicPem: string;
}

export async function makeKey(kid: string, alg = 'RS256'): Promise<TestKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const publicJwk = { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' };
  return { kid, privateKey, publicJwk, publicPem: await exportSPKI(publicKey) };
}

export interface MintOptions {
  readonly key: TestKey;
  readonly nowMs: number;
  readonly alg?: string;
  readonly kid?: string | null;
  readonly claims?: JWTPayload;
  readonly iss?: string | null;
  readonly aud?: string | null;
  readonly sub?: string | null;
  /** Seconds relative to now; null leaves the claim out. */
  readonly exp?: number | null;
  readonly nbf?: number;
}

/** A Kubernetes-like service-account token. */
export async function mint(options: MintOptions): Promise<string> {
  const now = Math.floor(options.nowMs / 1000);
  const claims: JWTPayload = {
    'kubernetes.io': { namespace: 'team-a', serviceaccount: { name: 'uploader', uid: 'u-1' } },
    ...options.claims,
  };
  const header: Record<string, unknown> = { alg: options.alg ?? 'RS256' };
  const kid = options.kid === undefined ? options.key.kid : options.kid;
  if (kid !== null) header.kid = kid;
  let jwt = new SignJWT(claims).setProtectedHeader(header as { alg: string }).setIssuedAt(now);
  if (options.iss !== null) jwt = jwt.setIssuer(options.iss ?? ISSUER);
  if (options.aud !== null) jwt = jwt.setAudience(options.aud ?? AUDIENCE);
  if (options.sub !== null) jwt = jwt.setSubject(options.sub ?? SA_SUBJECT);
  if (options.exp !== null) jwt = jwt.setExpirationTime(now + (options.exp ?? 600));
  if (options.nbf !== undefined) jwt = jwt.setNotBefore(now + options.nbf);
  return jwt.sign(options.key.privateKey);
}

export function b64url(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}
