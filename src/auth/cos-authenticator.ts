/**
 * Verifies COS-signed requests (Authorization header or presigned URL) against the credential store.
 *
 * Error codes, in the order the checks run:
 * - 400 MalformedAuthorization: the fields cannot be read unambiguously (see cos-auth-fields.ts), the
 *   Authorization header is repeated, or both header and presigned fields are present;
 * - 403 AccessDenied: validity window longer than allowed, or a required header (host) not signed;
 *   after the HMAC: a signature that is valid only over `/<Key>` where that form does not bind the
 *   coffer (see candidatePaths);
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
import { buildHttpString, buildStringToSign, computeSignature, cosEncodeName, deriveSignKey, type SignedPair } from './cos-signature';
import { COFFER_NAME } from '../config/schema';
import { isAllowed } from './authorize';
import type { CosCredential, CredentialStore } from './credential-store';
import { ACTIONS, type Grant, type Principal, toSessionName } from './principal';

export interface CosAuthenticatorOptions {
  readonly credentials: CredentialStore;
  /** Milliseconds since the epoch (Date.now semantics); injected so time windows are testable. */
  readonly now: () => number;
  /** Allowed clock difference on both ends of the window. Default 900 s (what COS tolerates). */
  readonly skewSeconds?: number;
  /** Longest accepted end − start. Default 7 days (S3's presigned-URL limit); the SDK uses 900 s. */
  readonly maxValiditySeconds?: number;
  /**
   * For path-style requests, also accept a signature over `/<Key>` instead of `/<Coffer>/<Key>` (what
   * cos-nodejs-sdk-v5 signs against `Domain: 'host:port/{Bucket}'`) — only from an access key whose
   * grants name exactly one coffer, the one requested: the key then binds the coffer, since the
   * signature does not. Virtual-hosted requests are always signed over `/<Key>` and need no setting.
   */
  readonly acceptKeyOnlyPath?: boolean;
  /**
   * Whether a name is a coffer this gateway serves. A key-only signature whose path starts with a
   * served coffer the access key may use is refused (see candidatePaths); knowing the served coffers
   * keeps keys such as `2024-01/x` usable for keys granted `*`. Default: every valid coffer name.
   */
  readonly isCoffer?: (name: string) => boolean;
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
  const isCoffer = options.isCoffer ?? ((name: string) => COFFER_NAME.test(name));
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
          throw new GatewayError('AccessDenied', `The signature must cover the ${name} header.${name === 'host' ? HOST_UNSIGNED_HINT : ''}`, {
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

      // Compute every path form this request could have been signed over and compare each in constant
      // time. A form that matched but does not bind the coffer is refused with its reason (not secret:
      // it only depends on the client's configuration and the key's grants).
      let matched: Candidate | undefined;
      for (const candidate of candidatePaths(request, credential, options.acceptKeyOnlyPath === true, isCoffer)) {
        const httpString = encodeOrReject(() => buildHttpString({ method: request.method, pathname: candidate.pathname, params, headers }));
        const expected = Buffer.from(computeSignature(signKey, buildStringToSign(fields.keyTime, httpString)), 'hex');
        // Both buffers are 20 bytes: parse guaranteed 40 hex digits, HMAC-SHA1 gives 20 bytes.
        if (timingSafeEqual(expected, fields.signature) && matched === undefined) matched = candidate;
      }
      if (matched === undefined) throw new GatewayError('SignatureDoesNotMatch', undefined, { reason: 'mismatch' });
      if (matched.refusal !== undefined) throw new GatewayError('AccessDenied', matched.refusal, { reason: 'key-only-unbound' });

      return {
        method: 'cos-signature',
        id: credential.secretId,
        grants: credential.grants,
        sessionName: toSessionName(credential.secretId),
        signedPath: matched.form,
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

const HOST_UNSIGNED_HINT = ' cos-nodejs-sdk-v5 2.12.x does not sign host for domains other than COS ones; use cos-nodejs-sdk-v5 2.13 or later (3.x works).';

interface Candidate {
  readonly pathname: string;
  readonly form: 'full' | 'key-only';
  /** Why this form, although it may match, is not accepted for this request (AccessDenied). */
  readonly refusal?: string;
}

/**
 * The path forms a signature for this request may cover (most specific first). This is where a
 * signature is bound to one coffer:
 * - GetService (`GET /`): `/`.
 * - Path-style: `/<Coffer>/<Key>` (coffer-level: `/<Coffer>` or `/<Coffer>/`) — the signature names the
 *   coffer. Also the key-only form `/<Key>` (coffer-level `/`), accepted only with acceptKeyOnlyPath,
 *   only when the access key reaches exactly one coffer (this one), and for a coffer-level request only
 *   with parameters: a signature over `GET /` without any is GetService's, never a listing.
 * - Virtual-hosted: `/<Key>` (or `/`) only; the signed host names the coffer.
 * For every key-only form: never when the signed path starts with a coffer name the access key can
 * reach, because that signature is also the full-path signature of another request
 * (`/<A>/<K>` is both key `<A>/<K>` key-only and key `<K>` in coffer `<A>`).
 */
function candidatePaths(request: AuthRequest, credential: Pick<CosCredential, 'grants' | 'keyOnlyPathCoffer'>, acceptKeyOnlyPath: boolean, isCoffer: (name: string) => boolean): Candidate[] {
  const { coffer, key } = request;
  if (coffer === undefined) return [{ pathname: '/', form: 'full' }];
  const keyOnly: Candidate = { pathname: key === undefined ? '/' : `/${key}`, form: 'key-only' };
  const refusal = keyOnlyRefusal(request, credential, acceptKeyOnlyPath, isCoffer);
  const keyOnlyCandidate = refusal === undefined ? keyOnly : { ...keyOnly, refusal };
  if (request.addressing === 'virtual-hosted') return [keyOnlyCandidate];
  const full: Candidate[] =
    key === undefined
      ? [
          { pathname: `/${coffer}`, form: 'full' },
          { pathname: `/${coffer}/`, form: 'full' },
        ]
      : [{ pathname: `/${coffer}/${key}`, form: 'full' }];
  return [...full, keyOnlyCandidate];
}

/** Whether `name` is a (served) coffer the grants reach for any action. */
function reaches(grants: readonly Grant[], name: string, isCoffer: (name: string) => boolean): boolean {
  return COFFER_NAME.test(name) && isCoffer(name) && ACTIONS.some((action) => isAllowed(grants, name, action));
}

/** The one coffer the grants name, or undefined when they name several or every (`*`) coffer. */
function onlyCoffer(grants: readonly Grant[]): string | undefined {
  const names = new Set(grants.map((grant) => grant.coffer));
  const [only] = names;
  return names.size === 1 && only !== '*' ? only : undefined;
}

function keyOnlyRefusal(request: AuthRequest, credential: Pick<CosCredential, 'grants' | 'keyOnlyPathCoffer'>, acceptKeyOnlyPath: boolean, isCoffer: (name: string) => boolean): string | undefined {
  const { coffer, key } = request;
  const { grants } = credential;
  if (request.addressing !== 'virtual-hosted') {
    const advice = 'sign the full path /<Coffer>/<Key>, or address the coffer by host (virtual-hosted: Domain "{Bucket}.cos.{Region}.myqcloud.com" with Ip, or Proxy).';
    if (!acceptKeyOnlyPath) return `The signature covers /<Key> without the coffer, which this gateway does not accept for path-style requests (auth.cos.acceptKeyOnlyPath); ${advice}`;
    // The key binds the coffer: its one key-only coffer (configured), else the only coffer its grants name.
    if ((credential.keyOnlyPathCoffer ?? onlyCoffer(grants)) !== coffer)
      return `The signature covers /<Key> without the coffer, and this access key's key-only signatures are not bound to this coffer (it can reach more than one coffer and keyOnlyPathCoffer names another, or none); ${advice}`;
    const operationParams = request.query.filter(([name]) => !isCosAuthField(name) && !UNSIGNED_QUERY_PARAMS.has(name));
    if (key === undefined && operationParams.length === 0)
      return `A signature over "GET /" without parameters is a GetService signature; it never lists a coffer. List with at least one parameter (the SDK's getBucket always sends prefix=), or ${advice}`;
  }
  const first = key?.split('/')[0];
  if (first !== undefined && reaches(grants, first, isCoffer))
    return `The signed path /${key} starts with the name of a coffer this access key can reach, so it is also the signature of a request to that coffer; a key-only signature is not accepted for it. Sign the full path /<Coffer>/<Key> (path-style).`;
  return undefined;
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
