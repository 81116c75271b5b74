/** `auth.jwt`: bearer JWTs, verified with public keys only (JWKS, inline JWKs or PEM files), and their rules. */
import { createPublicKey, type JsonWebKey, type KeyObject } from 'node:crypto';
import { z } from 'zod';
import { checkCertificate, checkPublicKey, httpUrl, int, problem, secretFile, textFile, whenValid, type ConfigIo } from './building-blocks';
import { grantSchema } from './auth-grants';

/**
 * JWT verification is asymmetric only. The gateway verifies tokens somebody else issues (the Kubernetes
 * API server, an identity provider): with an HMAC algorithm the verification key would also be a signing
 * key, so the gateway — and anyone who can read its Secret mount — could mint tokens for any subject.
 * Public keys also rule out algorithm-confusion attacks (an HS256 token "signed" with a published RSA
 * key). The authenticator refuses HS* as well (src/auth/jwt-authenticator.ts); the schema says so first.
 */
const ASYMMETRIC_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519'] as const;
export type JwtAlgorithm = (typeof ASYMMETRIC_ALGORITHMS)[number];
const UNSUPPORTED_SYMMETRIC = 'only asymmetric algorithms are accepted (a shared HMAC secret would let the gateway mint tokens, too)';

/**
 * Fields that existed once, or that people look for, and are refused with an explanation instead of a
 * bare "unknown key" (dotted path of the object + key → message). load-config.ts uses it.
 */
export const UNSUPPORTED_FIELDS: ReadonlyMap<string, string> = new Map([['auth.jwt.hmacSecretFile', `is not supported: ${UNSUPPORTED_SYMMETRIC}; use jwks, keys or publicKeyFiles`]]);

/** Which algorithms a public key can verify, by Node key type. */
function algorithmsForKey(key: KeyObject): readonly string[] {
  switch (key.asymmetricKeyType) {
    case 'rsa':
      return ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512'];
    case 'rsa-pss':
      return ['PS256', 'PS384', 'PS512'];
    case 'ec':
      return ['ES256', 'ES384', 'ES512'];
    case 'ed25519':
      return ['EdDSA', 'Ed25519'];
    case 'ed448':
      return ['EdDSA'];
    default:
      return [];
  }
}

const PRIVATE_JWK_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];

function jwkSchema() {
  return z.record(z.string(), z.unknown()).superRefine((jwk, ctx) => {
    if (PRIVATE_JWK_MEMBERS.some((m) => m in jwk)) {
      problem(ctx, 'must be a public key (private or symmetric key members such as "d" or "k" are refused)');
      return;
    }
    if (!['RSA', 'EC', 'OKP'].includes(String(jwk['kty']))) {
      problem(ctx, 'kty must be RSA, EC or OKP', ['kty']);
      return;
    }
    try {
      createPublicKey({ key: jwk as JsonWebKey, format: 'jwk' });
    } catch {
      problem(ctx, 'is not a valid public JWK');
    }
  });
}

export function jwtSchema(io: ConfigIo) {
  const jwks = z
    .strictObject({
      /** JWKS document URL, e.g. https://kubernetes.default.svc/openid/v1/jwks. https only (http for loopback). */
      url: httpUrl({ httpsUnlessLoopback: true }),
      /** PEM CA bundle to verify the JWKS server (e.g. the service-account ca.crt). Default: system CAs. */
      caFile: textFile(io, checkCertificate).optional(),
      /** Bearer token file sent to the JWKS server (e.g. a projected service-account token). Checked
       * at load time; re-read on every fetch because it rotates. */
      tokenFile: secretFile(io).optional(),
      /** How long fetched keys are used before a refetch; cached keys keep working while the JWKS endpoint is down. */
      cacheMaxAgeSeconds: int(1, 86_400).default(600),
      /** Minimum time between two fetches, so tokens with unknown `kid`s cannot cause a fetch storm. */
      cooldownSeconds: int(0, 3_600).default(30),
      /** Timeout of one JWKS fetch. */
      timeoutMs: int(100, 60_000).default(5_000),
    })
    .transform(({ caFile, tokenFile, ...rest }) => ({
      ...rest,
      caFile: caFile?.path,
      /** The CA bundle read from caFile. */
      caPem: caFile?.content,
      tokenFile: tokenFile?.path,
    }));

  const rule = z
    .strictObject({
      /** Required `sub` claim, e.g. system:serviceaccount:<namespace>:<name>. */
      subject: z.string().min(1, 'must not be empty').optional(),
      /** Further required claims: claim name → exact string value (top-level string claims). */
      claims: z.record(z.string().min(1, 'claim names must not be empty'), z.string()).optional(),
      /** What a token matching this rule may do. */
      grants: z.array(grantSchema()).min(1, 'must list at least one grant'),
    })
    .superRefine(
      (r, ctx) => {
        if (r.subject === undefined && (r.claims === undefined || Object.keys(r.claims).length === 0)) {
          problem(ctx, 'needs subject, claims or both (a rule matching every token is refused)');
        }
      },
      whenValid('subject', 'claims'),
    );

  return z
    .strictObject({
      /** Required `iss` claim. */
      issuer: z.string().min(1, 'must not be empty'),
      /** Accepted `aud` values; a token must carry at least one. */
      audiences: z.array(z.string().min(1, 'must not be empty')).min(1, 'must list at least one audience'),
      /**
       * Allow-list of signature algorithms: asymmetric only (see ASYMMETRIC_ALGORITHMS for why).
       * "none" and HS256/384/512 are refused.
       */
      algorithms: z
        .array(
          z.enum(ASYMMETRIC_ALGORITHMS, {
            error: (issue) =>
              typeof issue.input === 'string' && /^HS(256|384|512)$/.test(issue.input) ? `${issue.input} is not supported: ${UNSUPPORTED_SYMMETRIC}` : `must be one of ${ASYMMETRIC_ALGORITHMS.join(', ')} ("none" is never accepted)`,
          }),
        )
        .min(1, 'must list at least one algorithm'),
      /** Leeway for exp/nbf/iat checks. */
      clockToleranceSeconds: int(0, 300).default(30),
      /** Key source 1 of 3: a JWKS endpoint. */
      jwks: jwks.optional(),
      /** Key source 2 of 3: inline public JWKs. */
      keys: z.array(jwkSchema()).min(1, 'must list at least one key').optional(),
      /** Key source 3 of 3: PEM public key (SPKI) or certificate files. */
      publicKeyFiles: z.array(textFile(io, checkPublicKey)).min(1, 'must list at least one file').optional(),
      /** Which tokens get which grants; a token matching several rules gets the union. */
      rules: z.array(rule).min(1, 'must list at least one rule (without rules no token is authorized)'),
    })
    .superRefine(
      (jwt, ctx) => {
        const sources = (['jwks', 'keys', 'publicKeyFiles'] as const).filter((s) => jwt[s] !== undefined);
        if (sources.length !== 1) {
          problem(ctx, sources.length === 0 ? 'set exactly one key source: jwks, keys or publicKeyFiles' : `set exactly one key source, not ${sources.join(' and ')}`);
          return;
        }
        const checkKey = (key: KeyObject, path: PropertyKey[]) => {
          if (!algorithmsForKey(key).some((alg) => jwt.algorithms.includes(alg as JwtAlgorithm))) {
            problem(ctx, 'cannot verify any of auth.jwt.algorithms (key type and algorithms do not match)', path);
          }
        };
        jwt.keys?.forEach((jwk, i) => checkKey(createPublicKey({ key: jwk as JsonWebKey, format: 'jwk' }), ['keys', i]));
        jwt.publicKeyFiles?.forEach((file, i) => checkKey(createPublicKey(file.content), ['publicKeyFiles', i]));
      },
      whenValid('jwks', 'keys', 'publicKeyFiles', 'algorithms'),
    )
    .transform(({ publicKeyFiles, ...rest }) => ({
      ...rest,
      /** The configured key source. */
      keySource: (rest.jwks !== undefined ? 'jwks' : rest.keys !== undefined ? 'keys' : 'publicKeyFiles') as 'jwks' | 'keys' | 'publicKeyFiles',
      publicKeyFiles: publicKeyFiles?.map((f) => f.path),
      /** PEM contents of publicKeyFiles, same order. */
      publicKeyPems: publicKeyFiles?.map((f) => f.content),
    }));
}
