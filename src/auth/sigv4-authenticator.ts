/**
 * Verifies AWS Signature Version 4 requests (the S3 dialect) against the same credential store as
 * COS signatures: an access key id is a SecretId, its secret the SecretKey, its grants the same.
 * Detected per request: `Authorization: AWS4-HMAC-SHA256 …` (header form) or `X-Amz-Algorithm` in the
 * query (presigned URL).
 *
 * The canonical request is rebuilt from the request identity the router acts on (src/auth/sigv4-signature.ts),
 * never from the raw target. What the signature must cover, beyond S3's own rules:
 * - `host` (a signature made for one endpoint is not replayed against another; the host also names
 *   the coffer of a virtual-hosted request);
 * - every `x-amz-*` header the request carries (an unsigned `x-amz-copy-source` would turn a signed
 *   PutObject into a CopyObject);
 * - every query parameter (the canonical query is all of them, so an added `uploadId` or `partNumber`
 *   changes the signature).
 * A signed header or a query parameter that appears twice is 400 InvalidRequest: which copy was
 * signed and which one the router would act on would be ambiguous.
 *
 * The payload: `x-amz-content-sha256` (header form; presigned requests default to UNSIGNED-PAYLOAD)
 * is returned as a `SignedPayload`, which the body path checks as the bytes stream
 * (src/http/signed-payload.ts): a digest is compared at the end (XAmzContentSHA256Mismatch, nothing
 * stored), aws-chunked bodies are decoded with their chunk signatures chained on this signature.
 *
 * Error codes, in the order the checks run: 400 AuthorizationHeaderMalformed / AuthorizationQueryParametersError
 * (unreadable fields, wrong service, region or date mismatch), 400 InvalidArgument (header and query
 * signature both present), 403 AccessDenied (host or an x-amz-* header not signed; temporary
 * credentials), 403 InvalidAccessKeyId, 403 RequestTimeTooSkewed (header date outside ±skew),
 * 403 AccessDenied "Request is not valid yet" / "Request has expired" (presigned window),
 * 400 InvalidRequest (duplicates), 403 SignatureDoesNotMatch.
 */
import { GatewayError } from '../errors/gateway-error';
import { type AuthRequest, headerValues } from './auth-request';
import type { CredentialStore } from './credential-store';
import type { Principal } from './principal';
import { toSessionName } from './principal';
import {
  canonicalRequest,
  credentialScope,
  hmacHex,
  isSigV4Header,
  parseAmzDate,
  parseAuthorizationHeader,
  parsePresignedQuery,
  sameSignature,
  SigV4FormatError,
  type SigV4Fields,
  signingKeyFor,
  STREAMING_SIGNED_PAYLOAD,
  STREAMING_SIGNED_PAYLOAD_TRAILER,
  STREAMING_UNSIGNED_PAYLOAD_TRAILER,
  stringToSign,
  UNSIGNED_PAYLOAD,
} from './sigv4-signature';

/** The request as SigV4 sees it: the identity plus the exact decoded path the router acts on. */
export interface SigV4AuthRequest extends AuthRequest {
  /** `/`, `/<coffer>`, `/<coffer>/`, `/<coffer>/<key>` (path-style) or `/`, `/<key>` (virtual-hosted): RequestTarget.pathname. */
  readonly pathname: string;
}

/** What the chunk signatures of an aws-chunked body chain on. The key never leaves this object's closure-like, non-enumerable slot. */
export interface ChunkSigning {
  readonly seedSignature: string;
  readonly amzDate: string;
  readonly scope: string;
  /** kSigning; non-enumerable so logging the payload never prints it. */
  readonly signingKey: Uint8Array;
}

export type SignedPayload =
  | { readonly kind: 'unsigned' }
  | { readonly kind: 'sha256'; readonly sha256Hex: string }
  /** Content-Encoding aws-chunked: `signing` for STREAMING-AWS4-HMAC-SHA256-PAYLOAD(-TRAILER), absent for STREAMING-UNSIGNED-PAYLOAD-TRAILER. */
  | { readonly kind: 'aws-chunked'; readonly signing?: ChunkSigning; readonly trailer: boolean };

export interface SigV4Authentication {
  readonly principal: Principal;
  readonly payload: SignedPayload;
}

export interface SigV4AuthenticatorOptions {
  readonly credentials: CredentialStore;
  /** Milliseconds since the epoch; injected so time windows are testable. */
  readonly now: () => number;
  /** Accepted clock difference for header signatures and the start of a presigned window. Default 900 s (S3's). */
  readonly skewSeconds?: number;
  /** The region a credential scope must name (config `s3.region`); undefined accepts any (unit tests of other checks). */
  readonly region?: string;
}

export interface SigV4Authenticator {
  authenticate(request: SigV4AuthRequest): Promise<SigV4Authentication>;
}

const DEFAULT_SKEW_SECONDS = 900;

/** Whether the request carries a SigV4 signature (header or presigned). */
export function hasSigV4(request: Pick<AuthRequest, 'headers' | 'query'>): boolean {
  const authorization = headerValues(request, 'authorization');
  return authorization.some(isSigV4Header) || request.query.some(([name]) => name === 'X-Amz-Algorithm');
}

export function createSigV4Authenticator(options: SigV4AuthenticatorOptions): SigV4Authenticator {
  const skew = options.skewSeconds ?? DEFAULT_SKEW_SECONDS;
  if (!(skew >= 0)) throw new Error('skewSeconds must be >= 0');

  return {
    async authenticate(request: SigV4AuthRequest): Promise<SigV4Authentication> {
      const fields = readFields(request);
      const malformed = fields.form === 'header' ? 'AuthorizationHeaderMalformed' : 'AuthorizationQueryParametersError';
      if (fields.service !== 's3') throw new GatewayError(malformed, `The credential scope names the service "${fields.service}"; this is s3.`, { reason: 'wrong-service' });
      if (fields.amzDate.slice(0, 8) !== fields.shortDate) throw new GatewayError(malformed, 'The credential scope date does not match the request date.', { reason: 'scope-date' });
      if (options.region !== undefined && fields.region !== options.region) {
        // S3's own wording (header form / presigned form), so tools that parse it find the expected region.
        const what = fields.form === 'header' ? 'The authorization header is malformed' : 'Error parsing the X-Amz-Credential parameter';
        throw new GatewayError(malformed, `${what}; the region '${fields.region}' is wrong; expecting '${options.region}'`, { reason: 'wrong-region' });
      }
      if (!fields.signedHeaders.includes('host')) throw new GatewayError('AccessDenied', 'The signature must cover the host header.', { reason: 'required-header-unsigned' });
      for (const name of request.headers.keys()) {
        if (name.startsWith('x-amz-') && !fields.signedHeaders.includes(name)) {
          throw new GatewayError('AccessDenied', `The header ${name} is not covered by the signature; every x-amz-* header must be signed.`, { reason: 'unsigned-amz-header' });
        }
      }
      if (request.headers.has('x-amz-security-token') || request.query.some(([name]) => name === 'X-Amz-Security-Token')) {
        throw new GatewayError('AccessDenied', 'Temporary credentials (a security token) are not accepted by this gateway.', { reason: 'security-token' });
      }

      const credential = await options.credentials.lookup(fields.accessKeyId);
      if (credential === undefined) throw new GatewayError('InvalidAccessKeyId', undefined, { reason: 'unknown-access-key' });

      checkTime(fields, options.now(), skew);

      const headers = signedHeaders(request, fields.signedHeaders);
      const payloadHash = payloadHashOf(request, fields);
      const query = signedQuery(request, fields.form);
      const scope = credentialScope(fields);
      const canonical = canonicalRequest({ method: request.method, path: request.pathname, query, headers, payloadHash });
      const key = await signingKeyFor(credential.secretKey, credential.secretId, fields);
      const expected = hmacHex(key, stringToSign(fields.amzDate, scope, canonical));
      if (!sameSignature(expected, fields.signature)) throw new GatewayError('SignatureDoesNotMatch', undefined, { reason: 'mismatch' });

      const principal: Principal = { method: 'sigv4', id: credential.secretId, grants: credential.grants, sessionName: toSessionName(credential.secretId) };
      return { principal, payload: signedPayload(payloadHash, fields, scope, expected, key) };
    },
  };
}

function readFields(request: SigV4AuthRequest): SigV4Fields {
  const authorization = headerValues(request, 'authorization');
  const presigned = request.query.some(([name]) => name === 'X-Amz-Algorithm');
  if (authorization.length > 1) throw new GatewayError('MalformedAuthorization', 'The Authorization header appears more than once.', { reason: 'duplicate-authorization' });
  if (authorization.length === 1 && presigned) {
    throw new GatewayError('InvalidArgument', 'Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter or the Authorization header should be specified.', { reason: 'header-and-query' });
  }
  const amzDates = headerValues(request, 'x-amz-date');
  try {
    if (authorization.length === 1) {
      if (amzDates.length > 1) throw new SigV4FormatError('date', 'x-amz-date appears more than once.');
      return parseAuthorizationHeader(authorization[0] as string, amzDates[0]);
    }
    return parsePresignedQuery((name) => {
      const values = request.query.filter(([n]) => n === name);
      if (values.length > 1) throw new SigV4FormatError('query', `${name} appears more than once.`);
      return values[0]?.[1];
    });
  } catch (error) {
    if (!(error instanceof SigV4FormatError)) throw error;
    if (error.kind === 'query') throw new GatewayError('AuthorizationQueryParametersError', error.message, { reason: 'malformed' });
    if (error.kind === 'date') throw new GatewayError('AccessDenied', error.message, { reason: 'malformed-date' });
    throw new GatewayError('AuthorizationHeaderMalformed', error.message, { reason: 'malformed' });
  }
}

function checkTime(fields: SigV4Fields, nowMs: number, skew: number): void {
  let signedAt: number;
  try {
    signedAt = parseAmzDate(fields.amzDate).getTime() / 1000;
  } catch (error) {
    throw new GatewayError('AccessDenied', (error as Error).message, { reason: 'malformed-date' });
  }
  const now = nowMs / 1000;
  if (fields.form === 'header') {
    if (Math.abs(now - signedAt) > skew) throw new GatewayError('RequestTimeTooSkewed', 'The difference between the request time and the current time is too large.', { reason: 'skew' });
    return;
  }
  if (now < signedAt - skew) throw new GatewayError('AccessDenied', 'Request is not valid yet', { reason: 'not-yet-valid' });
  if (now > signedAt + (fields.expiresSeconds ?? 0)) throw new GatewayError('AccessDenied', 'Request has expired', { reason: 'expired' });
}

/** The signed headers with their single received value, in the listed (sorted) order. */
function signedHeaders(request: SigV4AuthRequest, names: readonly string[]): Array<readonly [string, string]> {
  return names.map((name) => {
    const values = headerValues(request, name);
    if (values.length === 0) throw new GatewayError('SignatureDoesNotMatch', `The signed header ${name} is not in the request.`, { reason: 'signed-header-missing' });
    if (values.length > 1) throw new GatewayError('InvalidRequest', `The signed header ${name} appears more than once.`, { reason: 'duplicate-signed-header' });
    return [name, values[0] as string] as const;
  });
}

/** Every query parameter is signed (the canonical query is all of them); X-Amz-Signature carries the signature. Repeats are refused. */
function signedQuery(request: SigV4AuthRequest, form: SigV4Fields['form']): Array<readonly [string, string | null]> {
  const seen = new Set<string>();
  const pairs: Array<readonly [string, string | null]> = [];
  for (const [name, value] of request.query) {
    if (seen.has(name)) throw new GatewayError('InvalidRequest', `The query parameter ${name} appears more than once.`, { reason: 'duplicate-parameter' });
    seen.add(name);
    if (form === 'presigned' && name === 'X-Amz-Signature') continue;
    pairs.push([name, value]);
  }
  return pairs;
}

const SHA256_HEX = /^[0-9a-f]{64}$/;
const PAYLOAD_MODES = new Set([UNSIGNED_PAYLOAD, STREAMING_SIGNED_PAYLOAD, STREAMING_SIGNED_PAYLOAD_TRAILER, STREAMING_UNSIGNED_PAYLOAD_TRAILER]);

function payloadHashOf(request: SigV4AuthRequest, fields: SigV4Fields): string {
  const values = headerValues(request, 'x-amz-content-sha256');
  if (values.length > 1) throw new GatewayError('InvalidRequest', 'x-amz-content-sha256 appears more than once.', { reason: 'duplicate-signed-header' });
  const value = values[0];
  if (value === undefined) {
    if (fields.form === 'presigned') return UNSIGNED_PAYLOAD;
    throw new GatewayError('InvalidRequest', 'Missing required header for this request: x-amz-content-sha256', { reason: 'missing-content-sha256' });
  }
  if (SHA256_HEX.test(value) || PAYLOAD_MODES.has(value)) {
    if (fields.form === 'presigned' && value.startsWith('STREAMING-')) throw new GatewayError('InvalidRequest', 'A presigned request cannot stream an aws-chunked body.', { reason: 'presigned-streaming' });
    return value;
  }
  throw new GatewayError('InvalidArgument', 'x-amz-content-sha256 must be a SHA-256 hex digest, UNSIGNED-PAYLOAD or a STREAMING-* payload type.', { reason: 'bad-content-sha256' });
}

function signedPayload(payloadHash: string, fields: SigV4Fields, scope: string, seedSignature: string, key: Uint8Array): SignedPayload {
  if (payloadHash === UNSIGNED_PAYLOAD) return { kind: 'unsigned' };
  if (payloadHash === STREAMING_UNSIGNED_PAYLOAD_TRAILER) return { kind: 'aws-chunked', trailer: true };
  if (payloadHash === STREAMING_SIGNED_PAYLOAD || payloadHash === STREAMING_SIGNED_PAYLOAD_TRAILER) {
    const signing = { seedSignature, amzDate: fields.amzDate, scope } as ChunkSigning;
    Object.defineProperty(signing, 'signingKey', { value: key, enumerable: false });
    return { kind: 'aws-chunked', signing: Object.freeze(signing), trailer: payloadHash === STREAMING_SIGNED_PAYLOAD_TRAILER };
  }
  return { kind: 'sha256', sha256Hex: payloadHash };
}
