/**
 * Parsing and syntactic validation of the seven COS signature fields, whether they came in the
 * `Authorization` header or as presigned query parameters. Everything rejected here is a malformed
 * request (400 MalformedAuthorization, like S3's AuthorizationHeaderMalformed): it happens before any
 * key lookup or HMAC, and no message echoes a field value (q-signature is a credential, and the rest
 * is attacker-controlled text that would end up in logs).
 */
import { GatewayError } from '../errors/gateway-error';

export const COS_AUTH_FIELDS = ['q-sign-algorithm', 'q-ak', 'q-sign-time', 'q-key-time', 'q-header-list', 'q-url-param-list', 'q-signature'] as const;

export type CosAuthFieldName = (typeof COS_AUTH_FIELDS)[number];

export function isCosAuthField(name: string): name is CosAuthFieldName {
  return (COS_AUTH_FIELDS as readonly string[]).includes(name);
}

export interface CosAuthFields {
  readonly secretId: string;
  /** Exactly as sent (`"<start>;<end>"`): the HMAC input must be the client's bytes, not a reformatting. */
  readonly keyTime: string;
  readonly start: number;
  readonly end: number;
  /** Encoded lower-case names from q-header-list, unique, in the client's order. */
  readonly headerList: readonly string[];
  /** Encoded lower-case names from q-url-param-list, unique, in the client's order. */
  readonly paramList: readonly string[];
  /** The 20 signature bytes (decoded from 40 hex digits). */
  readonly signature: Buffer;
}

/** Bounds the work one request can cause; real SDK requests sign a handful of names. */
export const MAX_SIGNED_NAMES = 64;
const MAX_AUTHORIZATION_LENGTH = 8192;
/** Tencent SecretIds are `AKID` + alphanumerics; the wider set still keeps logs and errors clean. */
const SECRET_ID = /^[A-Za-z0-9_.-]{1,128}$/;
/** Unix seconds, digits only (no sign, no spaces, no exponent), at most 12 digits. */
const KEY_TIME = /^(\d{1,12});(\d{1,12})$/;
const SIGNATURE = /^[0-9a-fA-F]{40}$/;
/** lower(UrlEncode(name)) can only produce these characters. */
const ENCODED_NAME = /^[a-z0-9._~%-]+$/;

function malformed(message: string, reason: string): GatewayError {
  return new GatewayError('MalformedAuthorization', message, { reason });
}

/** Splits `q-sign-algorithm=sha1&q-ak=...` into fields, rejecting anything the SDK would never send. */
export function parseAuthorizationHeader(value: string): CosAuthFields {
  if (value.length > MAX_AUTHORIZATION_LENGTH) throw malformed('The Authorization header is too long.', 'too-long');
  const fields = new Map<string, string>();
  for (const part of value.split('&')) {
    const eq = part.indexOf('=');
    if (eq <= 0) throw malformed('An Authorization field is not of the form name=value.', 'field-syntax');
    addField(fields, part.slice(0, eq), part.slice(eq + 1));
  }
  return validateFields(fields);
}

/**
 * Collects the signature fields of a presigned URL. Any `q-*` parameter that is not one of the seven
 * fields is rejected rather than treated as an ordinary parameter, so that a near-miss spelling cannot
 * change which fields are in force.
 */
export function parsePresignedQuery(query: readonly (readonly [string, string | null])[]): CosAuthFields {
  const fields = new Map<string, string>();
  for (const [name, value] of query) {
    if (!name.toLowerCase().startsWith('q-')) continue;
    if (value === null) throw malformed('A signature query parameter has no value.', 'field-syntax');
    addField(fields, name, value);
  }
  return validateFields(fields);
}

/** True when the query carries at least one presigned-URL signature field. */
export function hasPresignedFields(query: readonly (readonly [string, string | null])[]): boolean {
  return query.some(([name]) => isCosAuthField(name));
}

function addField(fields: Map<string, string>, name: string, value: string): void {
  if (!isCosAuthField(name)) throw malformed('The signature carries an unknown field.', 'unknown-field');
  if (fields.has(name)) throw malformed(`The signature field ${name} appears more than once.`, 'duplicate-field');
  fields.set(name, value);
}

function validateFields(fields: ReadonlyMap<string, string>): CosAuthFields {
  for (const name of COS_AUTH_FIELDS) {
    if (!fields.has(name)) throw malformed(`The signature field ${name} is missing.`, 'missing-field');
  }
  const get = (name: CosAuthFieldName): string => fields.get(name) as string;

  // Only sha1 exists for this scheme; anything else is a client speaking another protocol.
  if (get('q-sign-algorithm') !== 'sha1') throw malformed('q-sign-algorithm must be sha1.', 'algorithm');

  const secretId = get('q-ak');
  if (!SECRET_ID.test(secretId)) throw malformed('q-ak is not a valid SecretId.', 'secret-id');

  // The spec computes SignKey from q-key-time and StringToSign from q-sign-time; every SDK sends the
  // same value twice. Requiring equality leaves one unambiguous time window to check.
  const keyTime = get('q-key-time');
  if (get('q-sign-time') !== keyTime) throw malformed('q-sign-time must equal q-key-time.', 'time-mismatch');
  const times = KEY_TIME.exec(keyTime);
  if (times === null) throw malformed('q-key-time must be "<start>;<end>" in Unix seconds.', 'time-syntax');
  const start = Number(times[1]);
  const end = Number(times[2]);
  if (start > end) throw malformed('q-key-time starts after it ends.', 'time-order');

  const signatureHex = get('q-signature');
  if (!SIGNATURE.test(signatureHex)) throw malformed('q-signature must be 40 hexadecimal digits.', 'signature-syntax');

  return {
    secretId,
    keyTime,
    start,
    end,
    headerList: parseNameList(get('q-header-list'), 'q-header-list'),
    paramList: parseNameList(get('q-url-param-list'), 'q-url-param-list'),
    signature: Buffer.from(signatureHex, 'hex'),
  };
}

/**
 * `a;b;c` → names. Empty means "nothing signed". Entries must already be lower(UrlEncode(name)) as
 * the SDK sends them; upper case, empty entries and repeats are rejected instead of normalised, so
 * there is exactly one reading of what was signed.
 */
function parseNameList(value: string, field: CosAuthFieldName): readonly string[] {
  if (value === '') return [];
  const names = value.split(';');
  if (names.length > MAX_SIGNED_NAMES) throw malformed(`${field} lists too many names.`, 'list-too-long');
  const seen = new Set<string>();
  for (const name of names) {
    if (!ENCODED_NAME.test(name)) throw malformed(`${field} contains an invalid name.`, 'list-syntax');
    if (seen.has(name)) throw malformed(`${field} lists a name more than once.`, 'list-duplicate');
    seen.add(name);
  }
  return names;
}
