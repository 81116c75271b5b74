/**
 * COS "q-sign-algorithm=sha1" signing, byte for byte as in the COS signature document (436/7778) and
 * the shared reference cdcs-api.md. Pure: no I/O, no clock, no knowledge of which headers a request
 * should sign (the caller decides, the verifier reads it from q-header-list / q-url-param-list).
 */
import { createHash, createHmac } from 'node:crypto';

/** A name/value pair to be signed: a query parameter (valueless `?uploads` → `''`) or a header. */
export type SignedPair = readonly [name: string, value: string];

/**
 * COS UrlEncode: encodeURIComponent plus `! ' ( ) *`, which encodeURIComponent leaves alone but the
 * signature spec (and the SDK's camSafeUrlEncode) encodes. Throws URIError on a lone surrogate.
 */
export function cosUrlEncode(value: string): string {
  return encodeURIComponent(value).replace(/[!'()*]/g, (ch) => `%${ch.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** The form a name takes in HttpParameters/HttpHeaders and in q-header-list / q-url-param-list. */
export function cosEncodeName(name: string): string {
  return cosUrlEncode(name).toLowerCase();
}

/**
 * `k1=v1&k2=v2` with names lower(UrlEncode(name)), values UrlEncode(value), sorted by encoded name
 * (ASCII after encoding, so code-unit order is byte order). Ties (only possible if the caller passes a
 * name twice, which the verifier rejects earlier) are broken by value to stay deterministic.
 */
export function canonicalPairs(pairs: Iterable<SignedPair>): string {
  const encoded: [string, string][] = [];
  for (const [name, value] of pairs) encoded.push([cosEncodeName(name), cosUrlEncode(value)]);
  encoded.sort(([an, av], [bn, bv]) => compare(an, bn) || compare(av, bv));
  return encoded.map(([name, value]) => `${name}=${value}`).join('&');
}

/** The encoded, sorted names that go into q-header-list / q-url-param-list (`;`-joined). */
export function canonicalNameList(pairs: Iterable<SignedPair>): string {
  const names: string[] = [];
  for (const [name] of pairs) names.push(cosEncodeName(name));
  return names.sort(compare).join(';');
}

export interface CosCanonicalRequest {
  /** HTTP method, any case (lower-cased here). */
  readonly method: string;
  /** The decoded path that was signed, e.g. `/exampleobject(腾讯云)`. */
  readonly pathname: string;
  readonly params: readonly SignedPair[];
  readonly headers: readonly SignedPair[];
}

/** HttpString = lower(method)\nUriPathname\nHttpParameters\nHttpHeaders\n (empty parts keep their \n). */
export function buildHttpString(request: CosCanonicalRequest): string {
  return `${request.method.toLowerCase()}\n${request.pathname}\n${canonicalPairs(request.params)}\n${canonicalPairs(request.headers)}\n`;
}

export function sha1Hex(data: string): string {
  return createHash('sha1').update(data, 'utf8').digest('hex');
}

/** StringToSign = "sha1\n" + KeyTime + "\n" + hex(sha1(HttpString)) + "\n". */
export function buildStringToSign(keyTime: string, httpString: string): string {
  return `sha1\n${keyTime}\n${sha1Hex(httpString)}\n`;
}

/** SignKey = hex(HMAC-SHA1(SecretKey, KeyTime)). A secret: never log or return it to a client. */
export function deriveSignKey(secretKey: string, keyTime: string): string {
  return createHmac('sha1', secretKey).update(keyTime, 'utf8').digest('hex');
}

/**
 * Signature = hex(HMAC-SHA1(SignKey, StringToSign)). Note the HMAC key is the *hex string* of SignKey,
 * not its 20 raw bytes; that is what the spec and every SDK do.
 */
export function computeSignature(signKey: string, stringToSign: string): string {
  return createHmac('sha1', signKey).update(stringToSign, 'utf8').digest('hex');
}

/** KeyTime `"<start>;<end>"` in Unix seconds. */
export function formatKeyTime(startSeconds: number, endSeconds: number): string {
  if (!Number.isSafeInteger(startSeconds) || !Number.isSafeInteger(endSeconds) || startSeconds < 0 || startSeconds > endSeconds) {
    throw new RangeError('KeyTime needs integer seconds with 0 <= start <= end');
  }
  return `${startSeconds};${endSeconds}`;
}

export interface SignCosRequestInput extends CosCanonicalRequest {
  readonly secretId: string;
  readonly secretKey: string;
  /** `"<start>;<end>"`, see formatKeyTime. Used for both q-sign-time and q-key-time, as the SDK does. */
  readonly keyTime: string;
}

export interface SignedCosRequest {
  /** Value for the `Authorization` header. */
  readonly authorization: string;
  /** The same fields as query parameters (decoded values), in the SDK's order, for a presigned URL. */
  readonly queryFields: readonly SignedPair[];
  readonly signature: string;
}

/** Signs a request the way cos-nodejs-sdk-v5's getAuth does (for tests and for a future client). */
export function signCosRequest(input: SignCosRequestInput): SignedCosRequest {
  const signKey = deriveSignKey(input.secretKey, input.keyTime);
  const signature = computeSignature(signKey, buildStringToSign(input.keyTime, buildHttpString(input)));
  const queryFields: SignedPair[] = [
    ['q-sign-algorithm', 'sha1'],
    ['q-ak', input.secretId],
    ['q-sign-time', input.keyTime],
    ['q-key-time', input.keyTime],
    ['q-header-list', canonicalNameList(input.headers)],
    ['q-url-param-list', canonicalNameList(input.params)],
    ['q-signature', signature],
  ];
  return {
    authorization: queryFields.map(([name, value]) => `${name}=${value}`).join('&'),
    queryFields,
    signature,
  };
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
