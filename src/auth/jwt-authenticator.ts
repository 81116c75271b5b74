/**
 * Verifies `Authorization: Bearer <jwt>` (mainly Kubernetes service-account tokens) with jose and maps
 * the claims to grants. Everything jose needs is explicit: algorithms, issuer, audience, clock
 * tolerance, and `exp`/`sub` are required claims. Cheap checks run before the key lookup so that junk
 * tokens (alg none, HS256, garbage) never reach the JWKS cache and cannot trigger a fetch.
 *
 * Errors: 403 InvalidToken (reason says why) for a token that is malformed, badly signed, expired,
 * not yet valid, for the wrong issuer/audience, signed with an unknown key or a disallowed algorithm,
 * or given twice; 403 AccessDenied when the token is valid but no grant rule matches; 503
 * ServiceUnavailable when no key set could ever be loaded (fail closed). Messages are fixed texts:
 * the token and its claim values are attacker-chosen or sensitive and are never echoed.
 */
import { decodeProtectedHeader, jwtVerify, type JWTPayload } from 'jose';
import { GatewayError } from '../errors/gateway-error';
import { type AuthRequest, headerValues } from './auth-request';
import type { JwtKeyResolver } from './jwks-cache';
import { compileGrantRules, grantsForClaims, type JwtGrantRule } from './jwt-grant-rules';
import { type Principal, toSessionName } from './principal';

/** Asymmetric JWS algorithms only: with HS* a verification key would also be a signing key. */
export const ALLOWED_JWT_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519'] as const;

export interface JwtAuthenticatorOptions {
  readonly keys: JwtKeyResolver;
  /** Accepted `alg` values, a non-empty subset of ALLOWED_JWT_ALGORITHMS (Kubernetes signs RS256). */
  readonly algorithms: readonly string[];
  readonly issuer: string | readonly string[];
  readonly audience: string | readonly string[];
  /** Seconds of leeway for exp/nbf/iat. */
  readonly clockToleranceSeconds: number;
  readonly rules: readonly JwtGrantRule[];
  /** Milliseconds since the epoch. */
  readonly now: () => number;
  /**
   * Name of a query parameter that may carry the token instead of the header (off by default: URLs
   * end up in logs). A token in both places is rejected.
   */
  readonly queryParam?: string;
}

export interface JwtAuthenticator {
  authenticate(request: AuthRequest): Promise<Principal>;
}

/** Kubernetes tokens are ~1 KiB; the bound keeps base64/JSON work per request small. */
const MAX_TOKEN_LENGTH = 16 * 1024;
const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;
const BEARER = /^Bearer +(\S+)$/i;
const SERVICE_ACCOUNT = /^system:serviceaccount:([^:]+):([^:]+)$/;

export function createJwtAuthenticator(options: JwtAuthenticatorOptions): JwtAuthenticator {
  if (options.algorithms.length === 0) throw new Error('jwt.algorithms must not be empty');
  for (const alg of options.algorithms) {
    if (!(ALLOWED_JWT_ALGORITHMS as readonly string[]).includes(alg)) throw new Error(`jwt.algorithms: ${alg} is not allowed`);
  }
  const issuers = typeof options.issuer === 'string' ? [options.issuer] : [...options.issuer];
  const audiences = typeof options.audience === 'string' ? [options.audience] : [...options.audience];
  if (issuers.length === 0 || issuers.some((i) => i === '')) throw new Error('jwt.issuer is required');
  if (audiences.length === 0 || audiences.some((a) => a === '')) throw new Error('jwt.audience is required');
  if (!(options.clockToleranceSeconds >= 0 && options.clockToleranceSeconds <= 300)) {
    throw new Error('jwt.clockToleranceSeconds must be between 0 and 300');
  }
  const rules = compileGrantRules(options.rules);
  const algorithms = [...options.algorithms];

  return {
    async authenticate(request: AuthRequest): Promise<Principal> {
      const token = extractToken(request, options.queryParam);
      checkHeader(token, algorithms);

      let payload: JWTPayload;
      try {
        ({ payload } = await jwtVerify(token, options.keys, {
          algorithms,
          issuer: issuers,
          audience: audiences,
          clockTolerance: options.clockToleranceSeconds,
          currentDate: new Date(options.now()),
          requiredClaims: ['exp', 'sub'],
        }));
      } catch (error) {
        throw toGatewayError(error);
      }

      const subject = payload.sub;
      if (typeof subject !== 'string' || subject === '' || subject.length > 1024) {
        throw invalid('The token subject is not valid.', 'claim-invalid');
      }
      const grants = grantsForClaims(payload, rules);
      if (grants.length === 0) {
        throw new GatewayError('AccessDenied', 'No access rule matches this token.', { reason: 'no-matching-rule' });
      }
      return { method: 'jwt', id: subject, grants, sessionName: sessionNameForSubject(subject) };
    },
  };
}

/** `system:serviceaccount:ns:name` → `sa.ns.name`; other subjects are sanitised as they are. */
export function sessionNameForSubject(subject: string): string {
  const serviceAccount = SERVICE_ACCOUNT.exec(subject);
  return toSessionName(serviceAccount === null ? subject : `sa.${serviceAccount[1]}.${serviceAccount[2]}`);
}

function invalid(message: string, reason: string): GatewayError {
  return new GatewayError('InvalidToken', message, { reason });
}

function extractToken(request: AuthRequest, queryParam: string | undefined): string {
  const authorization = headerValues(request, 'authorization');
  if (authorization.length > 1) throw invalid('The Authorization header appears more than once.', 'duplicate-authorization');
  const fromQuery = queryParam === undefined ? [] : request.query.filter(([name]) => name === queryParam);
  if (authorization.length === 1 && fromQuery.length > 0) {
    throw invalid('Send the token either in the Authorization header or in the query, not both.', 'token-in-header-and-query');
  }
  if (fromQuery.length > 1) throw invalid('The token query parameter appears more than once.', 'duplicate-token');
  let token: string;
  if (authorization.length === 1) {
    const match = BEARER.exec(authorization[0] as string);
    if (match === null) throw invalid('The Authorization header is not a valid Bearer token.', 'not-bearer');
    token = match[1] as string;
  } else if (fromQuery.length === 1) {
    token = fromQuery[0]?.[1] ?? ''; // a bare `?access_token` fails the syntax check below
  } else {
    throw new GatewayError('AuthFailed', 'The request carries no bearer token.', { reason: 'no-token' });
  }
  if (token.length > MAX_TOKEN_LENGTH || !COMPACT_JWS.test(token)) throw invalid('The token is not a compact JWS.', 'malformed');
  return token;
}

/** Rejects a disallowed `alg` (none, HS*, ...) before any key is looked up or fetched. */
function checkHeader(token: string, algorithms: readonly string[]): void {
  let alg: unknown;
  try {
    alg = decodeProtectedHeader(token).alg;
  } catch {
    throw invalid('The token header cannot be decoded.', 'malformed');
  }
  if (typeof alg !== 'string' || !algorithms.includes(alg)) throw invalid('The token algorithm is not accepted.', 'alg-not-allowed');
}

function toGatewayError(error: unknown): GatewayError {
  if (error instanceof GatewayError) return error; // e.g. ServiceUnavailable from the JWKS cache
  const { code, claim } = (typeof error === 'object' && error !== null ? error : {}) as { code?: unknown; claim?: unknown };
  switch (code) {
    case 'ERR_JWT_EXPIRED':
      return invalid('The token has expired.', 'expired');
    case 'ERR_JWT_CLAIM_VALIDATION_FAILED':
      if (claim === 'nbf') return invalid('The token is not valid yet.', 'not-yet-valid');
      if (claim === 'iat') return invalid('The token was issued in the future.', 'issued-in-future');
      if (claim === 'iss') return invalid('The token issuer is not accepted.', 'issuer');
      if (claim === 'aud') return invalid('The token audience is not accepted.', 'audience');
      return invalid('A token claim is missing or not valid.', 'claim-invalid');
    case 'ERR_JOSE_ALG_NOT_ALLOWED':
      return invalid('The token algorithm is not accepted.', 'alg-not-allowed');
    case 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED':
      return invalid('The token signature is not valid.', 'bad-signature');
    case 'ERR_JWKS_NO_MATCHING_KEY':
      return invalid('The token was signed with an unknown key.', 'unknown-key');
    case 'ERR_JWKS_MULTIPLE_MATCHING_KEYS':
      return invalid('The token does not identify its signing key (kid).', 'ambiguous-key');
    case 'ERR_JWS_INVALID':
    case 'ERR_JWT_INVALID':
    case 'ERR_JOSE_NOT_SUPPORTED':
      return invalid('The token is malformed.', 'malformed');
    default:
      // Unexpected failure inside verification: still a rejection (fail closed), but keep the cause
      // for logs. jose error messages do not contain the token.
      return new GatewayError('InvalidToken', 'The token could not be verified.', { reason: 'verification-failed', cause: error });
  }
}
