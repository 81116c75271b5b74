/**
 * Verifies COS-signed requests (Authorization header or presigned URL) against the credential store.
 *
 * Error codes, in the order the checks run:
 * - 400 MalformedAuthorization: the fields cannot be read unambiguously (see cos-auth-fields.ts), the
 *   Authorization header is repeated, or both header and presigned fields are present;
 * - 403 AccessDenied: validity window longer than allowed, or a required header (host) not signed;
 * - 403 InvalidAccessKeyId: unknown SecretId;
 * - 403 RequestTimeTooSkewed: the window starts in the future beyond the skew;
 * - 403 AccessDenied "Request has expired" (exact message, no reason: the SDK compares the message
 *   and then corrects its clock from our Date header);
 * - 400 InvalidRequest: a signed header or any query parameter occurs twice (which value was signed,
 *   and which one the router would act on, is ambiguous — parameter pollution);
 * - 403 SignatureDoesNotMatch: a listed header/parameter is absent, a query parameter is not signed,
 *   or the HMAC differs.
 */
import { timingSafeEqual } from 'node:crypto';
import { GatewayError } from '../errors/gateway-error';
import { type AuthRequest, headerValues } from './auth-request';
import { type CosAuthFields, hasPresignedFields, parseAuthorizationHeader, parsePresignedQuery, isCosAuthField } from './cos-auth-fields';
import {
  buildHttpString,
  buildStringToSign,
  computeSignature,
  cosEncodeName,
  deriveSignKey,
  type SignedPair,
} from './cos-signature';
import type { CredentialStore } from './credential-store';
import { type Principal, toSessionName } from './principal';

export interface CosAuthenticatorOptions {
  readonly credentials: CredentialStore;
  /** Milliseconds since the epoch (Date.now semantics); injected so time windows are testable. */
  readonly now: () => number;
  /** Allowed clock difference on both ends of the window. Default 900 s (what COS tolerates). */
  readonly skewSeconds?: number;
  /** Longest accepted end − start. Default 7 days (S3's presigned-URL limit); the SDK uses 900 s. */
  readonly maxValiditySeconds?: number;
  /**
   * Also accept a signature over `/<Key>` instead of `/<Coffer>/<Key>` (what cos-nodejs-sdk-v5 3.0.0
   * signs against a path-style endpoint). The coffer is then not covered by the signature, so the
   * resulting principal says `signedPath: 'key-only'` and authorize() remains the only coffer binding.
   */
  readonly acceptKeyOnlyPath?: boolean;
  /**
   * Lower-case header names every signature must cover. Default `['host']`: the SDK always signs it,
   * and it stops a signature made for one endpoint from being replayed against another.
   */
  readonly requiredSignedHeaders?: readonly string[];
}

export interface CosAuthenticator {
  authenticate(request: AuthRequest): Promise<Principal>;
}

export const DEFAULT_SKEW_SECONDS = 900;
export const DEFAULT_MAX_VALIDITY_SECONDS = 7 * 24 * 3600;

/**
 * Query parameters that carry credentials rather than request semantics and so are not expected in
 * q-url-param-list: the presigned fields themselves and the temporary-credential token (which the SDK
 * appends to a presigned URL after signing).
 */
const UNSIGNED_QUERY_PARAMS = new Set(['x-cos-security-token', 'x-cdcs-security-token']);

export function createCosAuthenticator(options: CosAuthenticatorOptions): CosAuthenticator {
  const skew = options.skewSeconds ?? DEFAULT_SKEW_SECONDS;
  const maxValidity = options.maxValiditySeconds ?? DEFAULT_MAX_VALIDITY_SECONDS;
  const requiredHeaders = (options.requiredSignedHeaders ?? ['host']).map((name) => cosEncodeName(name.toLowerCase()));
  if (!(skew >= 0) || !(maxValidity >= 0)) throw new Error('skewSeconds and maxValiditySeconds must be >= 0');

  return {
    async authenticate(request: AuthRequest): Promise<Principal> {
      const fields = readFields(request);

      if (fields.end - fields.start > maxValidity) {
        throw new GatewayError('AccessDenied', `The signature validity window exceeds ${maxValidity} seconds.`, {
          reason: 'validity-too-long',
        });
      }
      for (const name of requiredHeaders) {
        if (!fields.headerList.includes(name)) {
          throw new GatewayError('AccessDenied', `The signature must cover the ${name} header.`, {
            reason: 'required-header-unsigned',
          });
        }
      }

      const credential = await options.credentials.lookup(fields.secretId);
      if (credential === undefined) throw new GatewayError('InvalidAccessKeyId', undefined, { reason: 'unknown-secret-id' });

      checkTimeWindow(fields, Math.floor(options.now() / 1000), skew);

      const headers = signedHeaders(request, fields.headerList);
      const params = signedParams(request, fields.paramList);
      const signKey = deriveSignKey(credential.secretKey, fields.keyTime);

      // Compute every accepted path form and compare each in constant time; which one matched is
      // recorded on the principal (not secret: it only depends on the client's configuration).
      let matched: 'full' | 'key-only' | undefined;
      for (const [pathname, kind] of candidatePaths(request, options.acceptKeyOnlyPath === true)) {
        const httpString = encodeOrReject(() => buildHttpString({ method: request.method, pathname, params, headers }));
        const expected = Buffer.from(computeSignature(signKey, buildStringToSign(fields.keyTime, httpString)), 'hex');
        // Both buffers are 20 bytes: parse guaranteed 40 hex digits, HMAC-SHA1 gives 20 bytes.
        if (timingSafeEqual(expected, fields.signature) && matched === undefined) matched = kind;
      }
      if (matched === undefined) throw new GatewayError('SignatureDoesNotMatch', undefined, { reason: 'mismatch' });

      return {
        method: 'cos-signature',
        id: credential.secretId,
        grants: credential.grants,
        sessionName: toSessionName(credential.secretId),
        signedPath: matched,
      };
    },
  };
}

function readFields(request: AuthRequest): CosAuthFields {
  const authorization = headerValues(request, 'authorization');
  const presigned = hasPresignedFields(request.query);
  if (authorization.length > 1) {
    throw new GatewayError('MalformedAuthorization', 'The Authorization header appears more than once.', {
      reason: 'duplicate-authorization',
    });
  }
  if (authorization.length === 1 && presigned) {
    throw new GatewayError('MalformedAuthorization', 'Send the signature either in the Authorization header or in the query, not both.', {
      reason: 'header-and-query',
    });
  }
  if (authorization.length === 1) return parseAuthorizationHeader(authorization[0] as string);
  if (presigned) return parsePresignedQuery(request.query);
  throw new GatewayError('AuthFailed', 'The request carries no COS signature.', { reason: 'no-signature' });
}

function checkTimeWindow(fields: CosAuthFields, nowSeconds: number, skew: number): void {
  if (nowSeconds < fields.start - skew) {
    throw new GatewayError('RequestTimeTooSkewed', undefined, { reason: 'not-yet-valid' });
  }
  if (nowSeconds > fields.end + skew) {
    // Exact message and no reason: cos-nodejs-sdk-v5 matches `AccessDenied` + this message to resync its clock.
    throw new GatewayError('AccessDenied', 'Request has expired');
  }
}

/** The headers named in q-header-list with their single received value. */
function signedHeaders(request: AuthRequest, headerList: readonly string[]): SignedPair[] {
  const byEncodedName = new Map<string, [string, readonly string[]]>();
  for (const [name, values] of request.headers) byEncodedName.set(encodeName(name), [name, values]);
  return headerList.map((encoded) => {
    const entry = byEncodedName.get(encoded);
    if (entry === undefined) {
      throw new GatewayError('SignatureDoesNotMatch', `The signed header ${encoded} is not in the request.`, {
        reason: 'signed-header-missing',
      });
    }
    const [name, values] = entry;
    if (values.length !== 1) {
      throw new GatewayError('InvalidRequest', `The signed header ${encoded} appears more than once.`, {
        reason: 'duplicate-signed-header',
      });
    }
    return [name, values[0] as string] as const;
  });
}

/**
 * Every query parameter must be signed (the SDK signs all of them): an unsigned `uploadId` or
 * `partNumber` added to a presigned PUT would otherwise turn it into a different operation.
 */
function signedParams(request: AuthRequest, paramList: readonly string[]): SignedPair[] {
  const listed = new Set(paramList);
  const seen = new Set<string>();
  const pairs: SignedPair[] = [];
  for (const [name, value] of request.query) {
    if (isCosAuthField(name) || UNSIGNED_QUERY_PARAMS.has(name)) continue;
    const encoded = encodeName(name);
    if (seen.has(encoded)) {
      throw new GatewayError('InvalidRequest', `The query parameter ${encoded} appears more than once.`, {
        reason: 'duplicate-parameter',
      });
    }
    seen.add(encoded);
    if (!listed.has(encoded)) {
      throw new GatewayError('SignatureDoesNotMatch', `The query parameter ${encoded} is not covered by the signature.`, {
        reason: 'unsigned-parameter',
      });
    }
    pairs.push([name, value ?? '']);
  }
  for (const encoded of paramList) {
    if (!seen.has(encoded)) {
      throw new GatewayError('SignatureDoesNotMatch', `The signed query parameter ${encoded} is not in the request.`, {
        reason: 'signed-parameter-missing',
      });
    }
  }
  return pairs;
}

/** The path forms a valid signature may cover, most specific first. */
function candidatePaths(request: AuthRequest, acceptKeyOnlyPath: boolean): [string, 'full' | 'key-only'][] {
  const { coffer, key } = request;
  // GetService (`GET /`): the service itself is the resource, and the whole path is signed.
  if (coffer === undefined) return [['/', 'full']];
  if (key !== undefined) {
    const paths: [string, 'full' | 'key-only'][] = [[`/${coffer}/${key}`, 'full']];
    if (acceptKeyOnlyPath) paths.push([`/${key}`, 'key-only']);
    return paths;
  }
  // A coffer-level request reaches the router as `/<Coffer>` or `/<Coffer>/`: both name the same
  // resource, so a signature over either is accepted. The SDK signs `/` here (empty key).
  const paths: [string, 'full' | 'key-only'][] = [
    [`/${coffer}`, 'full'],
    [`/${coffer}/`, 'full'],
  ];
  if (acceptKeyOnlyPath) paths.push(['/', 'key-only']);
  return paths;
}

/** lower(UrlEncode(name)). */
function encodeName(name: string): string {
  return encodeOrReject(() => cosEncodeName(name));
}

/** UrlEncode throws URIError on a lone surrogate: such a name or value cannot have been signed. */
function encodeOrReject(encode: () => string): string {
  try {
    return encode();
  } catch (error) {
    if (!(error instanceof URIError)) throw error;
    throw new GatewayError('InvalidArgument', 'A query parameter or header is not well-formed Unicode.', { reason: 'encoding' });
  }
}
