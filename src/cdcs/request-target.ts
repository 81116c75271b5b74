/**
 * Parses the request target once (pure, no I/O) into the request identity every later stage uses:
 * authority, addressing, coffer, key and query. The authenticator verifies exactly this, and the
 * router and handler act on exactly this (docs/ARCHITECTURE.md, "Request identity").
 *
 * Two target forms are accepted:
 * - origin-form `/<coffer>[/<key>][?query]`, what the SDK sends with `Domain` (+ `Ip`);
 * - absolute-form `http(s)://<authority>/<path>?query`, what the SDK sends when the gateway is its
 *   `Proxy`. Only with `acceptAbsoluteForm`, and only when the Host header names the same authority
 *   (the SDK signs `host`, so the signed authority and the one that picks the coffer must be one).
 *   The authority is NEVER used to pick an upstream: that would be an SSRF.
 *
 * Two addressings: when the authority is `<coffer>.cos.<region>.myqcloud.com`,
 * `<coffer>.cos.<region>.tencentcos.cn`, `<coffer>.cdcs.<region>.myqcloud.com` or `<coffer>.<suffix>`
 * for a configured suffix (virtual-hosted), the coffer comes from the authority and the whole path is
 * the key, as COS does; otherwise (path-style) the first path segment is the coffer.
 *
 * Percent-escapes are decoded exactly once, strictly: a bad escape or bytes that are not UTF-8 are an
 * error, never replaced (U+FFFD would silently map two different keys to one). The key is kept exactly
 * as decoded: S3 keys are opaque bytes, so `..`, `.`, `//` and `%2F` are ordinary key content. Nothing
 * here uses `new URL()` or path normalisation, which collapse `..` and `%2e%2e`.
 */
import { COFFER_NAME } from '../config/schema';
import { GatewayError } from '../errors/gateway-error';

export type QueryPair = readonly [name: string, value: string | null];

/** Where the coffer name came from: the first path segment, or the authority (host). */
export type Addressing = 'path' | 'virtual-hosted';

export interface RequestTarget {
  /** True when the client sent `http(s)://authority/...` (proxy style). */
  readonly absoluteForm: boolean;
  /**
   * The authority the request names, lower-cased: the absolute-form authority, else the Host header
   * (absent only for an HTTP/1.0 request without Host). It decides the addressing; the COS signature
   * must cover it (the `host` header).
   */
  readonly authority?: string;
  /** `virtual-hosted` when the authority named the coffer. */
  readonly addressing: Addressing;
  /**
   * The decoded path as received: `/`, `/<coffer>`, `/<coffer>/`, `/<coffer>/<key>` (path-style) or
   * `/`, `/<key>` (virtual-hosted). The `Resource` of error answers.
   */
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

// ignoreBOM: a leading U+FEFF is key content, not a byte-order mark (else `%EF%BB%BFabc` and `abc` would be one key).
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const HEX = /^[0-9A-Fa-f]{2}$/;
/**
 * What a key (or a value echoed in an XML answer) may not contain: C0 controls and DEL (XML 1.0
 * cannot carry most of them, and none is a sane key character), C1 controls, and U+FFFE / U+FFFF,
 * which are outside XML 1.0's Char production. Surrogates cannot occur: decoding is strict UTF-8.
 */
// eslint-disable-next-line no-control-regex
const NOT_KEY_TEXT = /[\u0000-\u001f\u007f-\u009f\ufffe\uffff]/;
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

/** True when `text` can be a key or appear in an XML answer: no C0/C1 control, DEL, U+FFFE or U+FFFF. */
export function isKeyText(text: string): boolean {
  return !NOT_KEY_TEXT.test(text);
}

/**
 * Throws InvalidObjectKey unless `key` is 1..850 bytes of UTF-8 without control characters (C0, DEL,
 * C1) or U+FFFE/U+FFFF: every key the gateway stores must be one that XML 1.0 can carry back in a
 * listing, exactly, or the listing page would be broken for good (coffers are write-once).
 */
export function validateObjectKey(key: string): void {
  if (key.length === 0) throw new GatewayError('InvalidObjectKey', 'The object key is empty.');
  if (!isKeyText(key)) throw new GatewayError('InvalidObjectKey', 'The object key contains a character XML 1.0 cannot carry or a control character (U+0000-U+001F, U+007F-U+009F, U+FFFE, U+FFFF).');
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

export interface TargetOptions {
  /** Accept `http(s)://authority/...` targets (the gateway as the client's HTTP proxy). */
  readonly acceptAbsoluteForm: boolean;
  /** The single Host header value, if one was sent (the HTTP front refuses two). */
  readonly hostHeader?: string;
  /** Configured host suffixes for virtual-hosted addressing (`<coffer>.<suffix>`), lower case. */
  readonly virtualHostSuffixes?: readonly string[];
}

/** The hosts that name a coffer in their first label, as COS and CDCS endpoints do. */
const COS_VIRTUAL_HOSTS = [/^cos\.[a-z0-9-]+\.myqcloud\.com$/, /^cos\.[a-z0-9-]+\.tencentcos\.cn$/, /^cdcs\.[a-z0-9-]+\.myqcloud\.com$/];

/** The coffer a virtual-hosted authority names, or undefined when the authority is not virtual-hosted. */
export function cofferOfAuthority(authority: string, suffixes: readonly string[] = []): string | undefined {
  const hostname = authority.startsWith('[') ? authority : authority.replace(/:[0-9]*$/, '');
  const dot = hostname.indexOf('.');
  if (dot <= 0) return undefined;
  const domain = hostname.slice(dot + 1);
  if (!COS_VIRTUAL_HOSTS.some((pattern) => pattern.test(domain)) && !suffixes.includes(domain)) return undefined;
  const coffer = hostname.slice(0, dot);
  if (!COFFER_NAME.test(coffer)) throw new GatewayError('NoSuchCoffer', 'The host does not name a valid coffer: expected "<name>-<APPID>.<domain>".');
  return coffer;
}

function authorityOf(split: SplitTarget, hostHeader: string | undefined): string | undefined {
  const header = hostHeader?.toLowerCase();
  if (header !== undefined && !AUTHORITY.test(header)) throw new GatewayError('InvalidRequest', 'The Host header is not a valid authority.');
  if (split.host === undefined) return header;
  const authority = split.host.toLowerCase();
  // The signature covers the Host header; the target's authority would choose the coffer. One request, one authority.
  if (header !== undefined && header !== authority) throw new GatewayError('InvalidRequest', 'The Host header must name the authority of the absolute-form request target.');
  return authority;
}

/**
 * Parses a raw request target (`req.url`) with its Host header. Throws GatewayError: 414 URITooLong,
 * 400 InvalidURI (bad characters, escapes or UTF-8), 400 InvalidRequest (absolute-form while not
 * accepted, a Host that is not an authority or differs from the target's), 404 NoSuchCoffer (a name
 * that cannot be a coffer, so it cannot exist) and 400 InvalidObjectKey. Whether a well-formed coffer
 * exists is decided later, by the handler.
 */
export function parseRequestTarget(rawTarget: string, options: TargetOptions): RequestTarget {
  const split = splitTarget(rawTarget, options.acceptAbsoluteForm);
  const { absoluteForm, rawPath, rawQuery } = split;
  const authority = authorityOf(split, options.hostHeader);
  const query = parseQuery(rawQuery);
  const hostCoffer = authority === undefined ? undefined : cofferOfAuthority(authority, options.virtualHostSuffixes);
  const base = { absoluteForm, ...(authority === undefined ? {} : { authority }), query };

  if (hostCoffer !== undefined) {
    // Virtual-hosted: the whole path is the key (`/a/b` is key `a/b`), as COS reads it.
    const hosted = { ...base, addressing: 'virtual-hosted' as const, coffer: hostCoffer };
    if (rawPath === '/') return { ...hosted, pathname: '/' };
    const key = percentDecode(rawPath.slice(1), 'object key');
    validateObjectKey(key);
    return { ...hosted, pathname: `/${key}`, key };
  }

  const pathBase = { ...base, addressing: 'path' as const };
  if (rawPath === '/') return { ...pathBase, pathname: '/' };
  // Split on the raw `/` before decoding: `%2F` inside the coffer segment is not a separator.
  const slash = rawPath.indexOf('/', 1);
  const rawCoffer = slash < 0 ? rawPath.slice(1) : rawPath.slice(1, slash);
  const coffer = percentDecode(rawCoffer, 'coffer name');
  if (!COFFER_NAME.test(coffer)) throw new GatewayError('NoSuchCoffer', 'The coffer name is not valid: expected "<name>-<APPID>".');
  const rawKey = slash < 0 ? '' : rawPath.slice(slash + 1);
  if (rawKey === '') return { ...pathBase, pathname: slash < 0 ? `/${coffer}` : `/${coffer}/`, coffer };
  const key = percentDecode(rawKey, 'object key');
  validateObjectKey(key);
  return { ...pathBase, pathname: `/${coffer}/${key}`, coffer, key };
}

/**
 * The `Resource` of an error answer when the target may not have parsed: the path only (the query can
 * carry a presigned signature), decoded when that is possible and yields only characters a key may
 * hold (XML 1.0 cannot carry the others), else the raw path; bounded so a 414 does not echo 8 KiB back.
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
  const safe = !isKeyText(decoded) || !TARGET_CHARS.test(path) ? path.replace(/[^\u0021-\u007e]/g, '') : decoded;
  return safe.length > 1024 ? `${safe.slice(0, 1024)}…` : safe;
}

/** Every value of a query parameter, in order (a bare name gives `null`). */
export function queryValues(target: Pick<RequestTarget, 'query'>, name: string): Array<string | null> {
  return target.query.filter(([n]) => n === name).map(([, v]) => v);
}
