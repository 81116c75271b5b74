/**
 * AWS Signature Version 4 for S3, the parts a *verifier* needs (pure, no I/O): reading the signature
 * fields (Authorization header or presigned query), the canonical request rebuilt from the request
 * identity, the string to sign, and the chained signatures of aws-chunked bodies. Key derivation and
 * its cache come from `@smithy/signature-v4` (`getSigningKey`), the same library the gateway's
 * upstream client signs with.
 *
 * One canonical request: the caller passes the path, parameters and headers it will act on (the
 * decoded identity of src/cdcs/request-target.ts), and this module encodes them the one way S3 does.
 * A client that signed some other spelling of the same request (another escaping, another case of a
 * parameter name) does not match, and so cannot make the verifier and the router read two requests.
 *
 * Used by the gateway's front (src/auth/sigv4-authenticator.ts) and by the embedded upstream
 * (src/embedded-upstream/sigv4-verifier.ts).
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { Hash } from '@smithy/hash-node';
import { getSigningKey } from '@smithy/signature-v4';
import { encodeKeyPath, encodeQueryComponent } from '../upstream/s3-encoding';

export const SIGV4_ALGORITHM = 'AWS4-HMAC-SHA256';
export const UNSIGNED_PAYLOAD = 'UNSIGNED-PAYLOAD';
export const STREAMING_SIGNED_PAYLOAD = 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD';
export const STREAMING_SIGNED_PAYLOAD_TRAILER = 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER';
export const STREAMING_UNSIGNED_PAYLOAD_TRAILER = 'STREAMING-UNSIGNED-PAYLOAD-TRAILER';
/** SHA-256 of the empty string, hex. */
export const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

/** What the client claims, before anything is verified. */
export interface SigV4Fields {
  readonly form: 'header' | 'presigned';
  readonly accessKeyId: string;
  /** `YYYYMMDD` of the credential scope. */
  readonly shortDate: string;
  readonly region: string;
  readonly service: string;
  /** Lower-case, as listed (must be sorted and unique). */
  readonly signedHeaders: readonly string[];
  /** 32 bytes. */
  readonly signature: Buffer;
  /** `YYYYMMDDTHHMMSSZ`: x-amz-date (header form) or X-Amz-Date (presigned). */
  readonly amzDate: string;
  /** Presigned only: X-Amz-Expires, seconds (1..604800). */
  readonly expiresSeconds?: number;
}

/** Why fields could not be read; the caller maps it to its dialect's error. */
export class SigV4FormatError extends Error {
  override readonly name = 'SigV4FormatError';
  constructor(
    readonly kind: 'header' | 'query' | 'date',
    message: string,
  ) {
    super(message);
  }
}

const AUTHORIZATION = /^AWS4-HMAC-SHA256 Credential=([^,\s]+), ?SignedHeaders=([^,\s]+), ?Signature=([0-9a-f]{64})$/;
const AMZ_DATE = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/;
const HEADER_NAME = /^[a-z0-9!#$%&'*+.^_`|~-]+$/;
const SIGNATURE_HEX = /^[0-9a-f]{64}$/;
export const MAX_PRESIGNED_EXPIRES_SECONDS = 7 * 24 * 3600;

/** The presigned-URL parameters; they carry the signature, so they are not part of what is signed (X-Amz-Signature) or are signed as values. */
export const PRESIGNED_PARAMETERS = ['X-Amz-Algorithm', 'X-Amz-Credential', 'X-Amz-Date', 'X-Amz-Expires', 'X-Amz-SignedHeaders', 'X-Amz-Signature', 'X-Amz-Security-Token'] as const;

export function isSigV4Header(authorization: string): boolean {
  return authorization.startsWith(`${SIGV4_ALGORITHM} `);
}

function parseCredential(credential: string, kind: 'header' | 'query'): Pick<SigV4Fields, 'accessKeyId' | 'shortDate' | 'region' | 'service'> {
  const scope = credential.split('/');
  if (scope.length !== 5 || scope[4] !== 'aws4_request' || !/^\d{8}$/.test(scope[1] ?? '') || !/^[a-z0-9-]{1,64}$/.test(scope[2] ?? '') || scope[0] === '') {
    throw new SigV4FormatError(kind, 'The credential must be <AccessKeyId>/<YYYYMMDD>/<region>/s3/aws4_request.');
  }
  const [accessKeyId, shortDate, region, service] = scope as [string, string, string, string];
  return { accessKeyId, shortDate, region, service };
}

function parseSignedHeaders(list: string, kind: 'header' | 'query'): string[] {
  const names = list.split(';');
  for (let i = 0; i < names.length; i += 1) {
    const name = names[i] as string;
    if (!HEADER_NAME.test(name)) throw new SigV4FormatError(kind, 'SignedHeaders must list lower-case header names separated by ";".');
    // Sorted and unique is what every signer produces; anything else could be read two ways.
    if (i > 0 && !((names[i - 1] as string) < name)) throw new SigV4FormatError(kind, 'SignedHeaders must be sorted and without repeats.');
  }
  return names;
}

/** The fields of an `Authorization: AWS4-HMAC-SHA256 …` header; the date comes from x-amz-date. */
export function parseAuthorizationHeader(authorization: string, amzDate: string | undefined): SigV4Fields {
  const match = AUTHORIZATION.exec(authorization);
  if (match === null) throw new SigV4FormatError('header', 'The Authorization header must be "AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=<64 hex>".');
  const [, credential = '', list = '', signature = ''] = match;
  if (amzDate === undefined || !AMZ_DATE.test(amzDate)) throw new SigV4FormatError('date', 'AWS authentication requires a valid x-amz-date header (YYYYMMDDTHHMMSSZ).');
  return { form: 'header', ...parseCredential(credential, 'header'), signedHeaders: parseSignedHeaders(list, 'header'), signature: Buffer.from(signature, 'hex'), amzDate };
}

/** The fields of a presigned URL; `value(name)` returns the single value of a query parameter (or undefined). */
export function parsePresignedQuery(value: (name: string) => string | null | undefined): SigV4Fields {
  const algorithm = value('X-Amz-Algorithm');
  if (algorithm !== SIGV4_ALGORITHM) throw new SigV4FormatError('query', 'X-Amz-Algorithm must be AWS4-HMAC-SHA256.');
  const credential = value('X-Amz-Credential');
  const amzDate = value('X-Amz-Date');
  const expires = value('X-Amz-Expires');
  const list = value('X-Amz-SignedHeaders');
  const signature = value('X-Amz-Signature');
  if (credential == null || amzDate == null || expires == null || list == null || signature == null) {
    throw new SigV4FormatError('query', 'Query-string authentication requires X-Amz-Credential, X-Amz-Date, X-Amz-Expires, X-Amz-SignedHeaders and X-Amz-Signature.');
  }
  if (!AMZ_DATE.test(amzDate)) throw new SigV4FormatError('query', 'X-Amz-Date must be YYYYMMDDTHHMMSSZ.');
  if (!/^[1-9][0-9]{0,6}$/.test(expires) || Number(expires) > MAX_PRESIGNED_EXPIRES_SECONDS) {
    throw new SigV4FormatError('query', `X-Amz-Expires must be an integer from 1 to ${MAX_PRESIGNED_EXPIRES_SECONDS} (seven days).`);
  }
  if (!SIGNATURE_HEX.test(signature)) throw new SigV4FormatError('query', 'X-Amz-Signature must be 64 lower-case hex digits.');
  return {
    form: 'presigned',
    ...parseCredential(credential, 'query'),
    signedHeaders: parseSignedHeaders(list, 'query'),
    signature: Buffer.from(signature, 'hex'),
    amzDate,
    expiresSeconds: Number(expires),
  };
}

/** `YYYYMMDDTHHMMSSZ` → Date (UTC). */
export function parseAmzDate(amzDate: string): Date {
  const m = AMZ_DATE.exec(amzDate);
  if (m === null) throw new SigV4FormatError('date', 'The date must be YYYYMMDDTHHMMSSZ.');
  const [, y, mo, d, h, mi, s] = m.map(Number) as [number, number, number, number, number, number, number];
  const date = new Date(Date.UTC(y, mo - 1, d, h, mi, s));
  // Date.UTC rolls 20241341 over into 2025; a date that does not round-trip is not a date.
  if (date.getUTCMonth() !== mo - 1 || date.getUTCDate() !== d || h > 23 || mi > 59 || s > 59) throw new SigV4FormatError('date', 'The date is not a valid calendar time.');
  return date;
}

export interface CanonicalRequestInput {
  readonly method: string;
  /** The decoded path the request acts on (`/`, `/<bucket>`, `/<bucket>/`, `/<bucket>/<key>`, or `/<key>` virtual-hosted). */
  readonly path: string;
  /** Decoded query pairs (`null` for a bare name), X-Amz-Signature already left out. */
  readonly query: ReadonlyArray<readonly [string, string | null]>;
  /** Signed header name (lower case) → its one value as received. */
  readonly headers: ReadonlyArray<readonly [string, string]>;
  /** x-amz-content-sha256 (header form) or UNSIGNED-PAYLOAD (presigned). */
  readonly payloadHash: string;
}

/** The SigV4 canonical request (S3 flavour: the path is encoded once, never normalised). */
export function canonicalRequest(input: CanonicalRequestInput): string {
  const query = input.query
    .map(([name, value]) => [encodeQueryComponent(name), encodeQueryComponent(value ?? '')] as const)
    .sort(([a, av], [b, bv]) => (a < b ? -1 : a > b ? 1 : av < bv ? -1 : av > bv ? 1 : 0))
    .map(([name, value]) => `${name}=${value}`)
    .join('&');
  const headers = input.headers.map(([name, value]) => `${name}:${value.trim().replace(/\s+/g, ' ')}\n`).join('');
  const names = input.headers.map(([name]) => name).join(';');
  return [input.method, encodeKeyPath(input.path), query, headers, names, input.payloadHash].join('\n');
}

export function sha256Hex(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

export function credentialScope(fields: Pick<SigV4Fields, 'shortDate' | 'region' | 'service'>): string {
  return `${fields.shortDate}/${fields.region}/${fields.service}/aws4_request`;
}

export function stringToSign(amzDate: string, scope: string, canonical: string): string {
  return `${SIGV4_ALGORITHM}\n${amzDate}\n${scope}\n${sha256Hex(canonical)}`;
}

/** The derived key kSigning (cached by smithy per credential and scope). */
export async function signingKeyFor(secretAccessKey: string, accessKeyId: string, fields: Pick<SigV4Fields, 'shortDate' | 'region' | 'service'>): Promise<Uint8Array> {
  return getSigningKey(Hash.bind(null, 'sha256'), { accessKeyId, secretAccessKey }, fields.shortDate, fields.region, fields.service);
}

export function hmacHex(key: Uint8Array, text: string): string {
  return createHmac('sha256', key).update(text, 'utf8').digest('hex');
}

/** Constant-time comparison of a computed hex signature with the received 32 bytes. */
export function sameSignature(expectedHex: string, received: Buffer): boolean {
  const expected = Buffer.from(expectedHex, 'hex');
  return expected.length === received.length && timingSafeEqual(expected, received);
}

/** String to sign of one aws-chunked chunk (STREAMING-AWS4-HMAC-SHA256-PAYLOAD): chained on the previous signature. */
export function chunkStringToSign(amzDate: string, scope: string, previousSignature: string, chunkSha256Hex: string): string {
  return `AWS4-HMAC-SHA256-PAYLOAD\n${amzDate}\n${scope}\n${previousSignature}\n${EMPTY_SHA256}\n${chunkSha256Hex}`;
}

/** String to sign of the trailer of STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER: chained on the final chunk's signature. */
export function trailerStringToSign(amzDate: string, scope: string, previousSignature: string, trailerSha256Hex: string): string {
  return `AWS4-HMAC-SHA256-TRAILER\n${amzDate}\n${scope}\n${previousSignature}\n${trailerSha256Hex}`;
}
