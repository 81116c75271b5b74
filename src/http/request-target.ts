/**
 * Parses the request target once (pure, no I/O).
 *
 * Two forms are accepted:
 * - origin-form `/<coffer>[/<key>][?query]`, what the SDK sends with `Domain` (+ `Ip`);
 * - absolute-form `http(s)://<authority>/<coffer>/<key>?query`, what the SDK sends when the gateway is
 *   its `Proxy`. Only with `acceptAbsoluteForm`. The authority is recorded for the signature check
 *   (the SDK signs `host`) and NEVER used to route or to pick an upstream: that would be an SSRF.
 *
 * Percent-escapes are decoded exactly once, strictly: a bad escape or bytes that are not UTF-8 are an
 * error, never replaced (U+FFFD would silently map two different keys to one). The key is kept exactly
 * as decoded: S3 keys are opaque bytes, so `..`, `.`, `//` and `%2F` are ordinary key content. Nothing
 * here uses `new URL()` or path normalisation, which collapse `..` and `%2e%2e`.
 */
import { COFFER_NAME } from '../config/schema';
import { GatewayError } from '../errors/gateway-error';

export type QueryPair = readonly [name: string, value: string | null];

export interface RequestTarget {
  /** True when the client sent `http(s)://authority/...` (proxy style). */
  readonly absoluteForm: boolean;
  /** The authority of an absolute-form target, as received (may include a port). For signature checks only. */
  readonly host?: string;
  /** The decoded path (`/`, `/<coffer>`, `/<coffer>/`, `/<coffer>/<key>`): what the COS signature covers. */
  readonly pathname: string;
  /** Absent only for `/` (GetService). */
  readonly coffer?: string;
  /** Absent for coffer-level requests (`/<coffer>` and `/<coffer>/`). */
  readonly key?: string;
  /** Query pairs in request order, decoded once; `null` for a bare name (`?uploads`); duplicates kept. */
  readonly query: ReadonlyArray<QueryPair>;
}

/** COS object keys are at most 850 bytes of UTF-8. */
export const MAX_KEY_BYTES = 850;

/**
 * Longest request target accepted (→ 414). Room for an 850-byte key fully percent-encoded (2,550
 * characters), a coffer, an absolute-form authority and a presigned query. Node counts the request
 * line against `maxHeaderBytes`, so this is only reachable while maxHeaderBytes is larger (default 16 KiB);
 * below that, an over-long line is answered 431 by the parser.
 */
export const MAX_TARGET_LENGTH = 8192;

const utf8 = new TextDecoder('utf-8', { fatal: true });
const HEX = /^[0-9A-Fa-f]{2}$/;
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;
/** Printable ASCII except `#`: RFC 3986 requires everything else to be percent-encoded, and a fragment is never sent. */
const TARGET_CHARS = /^[\u0021\u0022\u0024-\u007e]*$/;
/** reg-name / IPv4 / [IPv6] with an optional port; no userinfo (`user:pass@` in a target is never legitimate). */
const AUTHORITY = /^(?:[A-Za-z0-9._~-]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?$/;
const ABSOLUTE = /^(https?):\/\//i;

/**
 * Decodes percent-escapes once. Works on bytes so that a multi-byte character split over escapes
 * (`%E8%85%BE`) is reassembled, then requires the result to be valid UTF-8. `+` stays a plus: COS and
 * the SDK encode spaces as `%20`, and form-decoding `+` would change keys that contain one.
 */
export function percentDecode(raw: string, what: string): string {
  if (!raw.includes('%')) return raw;
  const bytes = new Uint8Array(raw.length);
  let length = 0;
  for (let i = 0; i < raw.length; i += 1) {
    const code = raw.charCodeAt(i);
    if (code === 0x25) {
      const hex = raw.slice(i + 1, i + 3);
      if (!HEX.test(hex)) throw new GatewayError('InvalidURI', `The ${what} contains an invalid percent-escape.`);
      bytes[length++] = Number.parseInt(hex, 16);
      i += 2;
    } else if (code > 0x7f) {
      // Callers pass ASCII only (checked on the raw target); never guess an encoding for anything else.
      throw new GatewayError('InvalidURI', `The ${what} contains a character that is not percent-encoded.`);
    } else {
      bytes[length++] = code;
    }
  }
  try {
    return utf8.decode(bytes.subarray(0, length));
  } catch {
    throw new GatewayError('InvalidURI', `The ${what} is not valid UTF-8 once decoded.`);
  }
}

/** Throws InvalidObjectKey unless `key` is 1..850 bytes of UTF-8 without control characters. */
export function validateObjectKey(key: string): void {
  if (key.length === 0) throw new GatewayError('InvalidObjectKey', 'The object key is empty.');
  if (CONTROL.test(key)) throw new GatewayError('InvalidObjectKey', 'The object key contains a control character (U+0000-U+001F or U+007F).');
  const bytes = Buffer.byteLength(key, 'utf8');
  if (bytes > MAX_KEY_BYTES) throw new GatewayError('InvalidObjectKey', `The object key is ${bytes} bytes; at most ${MAX_KEY_BYTES} are allowed.`);
}

/** `a=1&b&c=` → [['a','1'], ['b',null], ['c','']]; empty pairs (`&&`) are dropped, order and duplicates kept. */
export function parseQuery(rawQuery: string): QueryPair[] {
  const pairs: QueryPair[] = [];
  if (rawQuery === '') return pairs;
  for (const part of rawQuery.split('&')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    if (eq < 0) pairs.push([percentDecode(part, 'query'), null]);
    else pairs.push([percentDecode(part.slice(0, eq), 'query'), percentDecode(part.slice(eq + 1), 'query')]);
  }
  return pairs;
}

interface SplitTarget {
  readonly absoluteForm: boolean;
  readonly host?: string;
  /** Raw (still encoded) path, starting with `/`. */
  readonly rawPath: string;
  readonly rawQuery: string;
}

function splitTarget(rawTarget: string, acceptAbsoluteForm: boolean): SplitTarget {
  if (rawTarget.length > MAX_TARGET_LENGTH) throw new GatewayError('URITooLong', `The request target is longer than ${MAX_TARGET_LENGTH} characters.`);
  if (!TARGET_CHARS.test(rawTarget)) throw new GatewayError('InvalidURI', 'The request target contains a character that must be percent-encoded.');
  let rest = rawTarget;
  let host: string | undefined;
  const scheme = ABSOLUTE.exec(rawTarget);
  if (scheme !== null) {
    if (!acceptAbsoluteForm) throw new GatewayError('InvalidRequest', 'Absolute-form request targets are not accepted by this gateway.');
    const afterScheme = rawTarget.slice(scheme[0].length);
    const end = afterScheme.search(/[/?]/);
    host = end < 0 ? afterScheme : afterScheme.slice(0, end);
    if (!AUTHORITY.test(host)) throw new GatewayError('InvalidURI', 'The authority of the absolute-form request target is not valid.');
    rest = end < 0 ? '/' : afterScheme.slice(end);
    if (rest.startsWith('?')) rest = `/${rest}`;
  } else if (!rawTarget.startsWith('/')) {
    // asterisk-form (`OPTIONS *`), authority-form, or another scheme.
    throw new GatewayError('InvalidURI', 'The request target must be a path or an http(s) URL.');
  }
  const queryAt = rest.indexOf('?');
  return {
    absoluteForm: scheme !== null,
    ...(host === undefined ? {} : { host }),
    rawPath: queryAt < 0 ? rest : rest.slice(0, queryAt),
    rawQuery: queryAt < 0 ? '' : rest.slice(queryAt + 1),
  };
}

/**
 * Parses a raw request target (`req.url`). Throws GatewayError: 414 URITooLong, 400 InvalidURI (bad
 * characters, escapes or UTF-8), 400 InvalidRequest (absolute-form while not accepted), 404
 * NoSuchCoffer (a name that cannot be a coffer, so it cannot exist) and 400 InvalidObjectKey.
 * Whether a well-formed coffer exists is decided later, by the handler.
 */
export function parseRequestTarget(rawTarget: string, acceptAbsoluteForm: boolean): RequestTarget {
  const { absoluteForm, host, rawPath, rawQuery } = splitTarget(rawTarget, acceptAbsoluteForm);
  const query = parseQuery(rawQuery);
  const base = { absoluteForm, ...(host === undefined ? {} : { host }), query };
  if (rawPath === '/') return { ...base, pathname: '/' };

  // Split on the raw `/` before decoding: `%2F` inside the coffer segment is not a separator.
  const slash = rawPath.indexOf('/', 1);
  const rawCoffer = slash < 0 ? rawPath.slice(1) : rawPath.slice(1, slash);
  const coffer = percentDecode(rawCoffer, 'coffer name');
  if (!COFFER_NAME.test(coffer)) throw new GatewayError('NoSuchCoffer', 'The coffer name is not valid: expected "<name>-<APPID>".');
  const rawKey = slash < 0 ? '' : rawPath.slice(slash + 1);
  if (rawKey === '') return { ...base, pathname: slash < 0 ? `/${coffer}` : `/${coffer}/`, coffer };
  const key = percentDecode(rawKey, 'object key');
  validateObjectKey(key);
  return { ...base, pathname: `/${coffer}/${key}`, coffer, key };
}

/**
 * The `Resource` of an error answer when the target may not have parsed: the path only (the query can
 * carry a presigned signature), decoded when that is possible and yields no control characters (which
 * XML 1.0 cannot carry), else the raw path; bounded so a 414 does not echo 8 KiB back.
 */
export function resourceOf(rawTarget: string): string {
  let path = rawTarget;
  const scheme = ABSOLUTE.exec(path);
  if (scheme !== null) {
    const rest = path.slice(scheme[0].length);
    const end = rest.search(/[/?#]/);
    path = end < 0 ? '/' : rest.slice(end);
  }
  const queryAt = path.search(/[?#]/);
  if (queryAt >= 0) path = path.slice(0, queryAt);
  if (!path.startsWith('/')) path = `/${path}`;
  let decoded = path;
  try {
    decoded = percentDecode(path, 'path');
  } catch {
    // keep the raw path
  }
  const safe = CONTROL.test(decoded) || !TARGET_CHARS.test(path) ? path.replace(/[^\u0021-\u007e]/g, '') : decoded;
  return safe.length > 1024 ? `${safe.slice(0, 1024)}…` : safe;
}

/** Every value of a query parameter, in order (a bare name gives `null`). */
export function queryValues(target: Pick<RequestTarget, 'query'>, name: string): Array<string | null> {
  return target.query.filter(([n]) => n === name).map(([, v]) => v);
}
