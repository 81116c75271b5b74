/**
 * S3/SigV4 URI encoding. The upstream URL is built from configuration plus these encodings only: user
 * input never goes through `new URL()`, `path.normalize` or any path rewrite (WHATWG URL would collapse
 * `..` and `%2e%2e`; S3 keys are opaque).
 */

const UNRESERVED = new Uint8Array(256);
for (const char of 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~') UNRESERVED[char.charCodeAt(0)] = 1;
const HEX = '0123456789ABCDEF';

function encodeBytes(value: string, keepSlash: boolean): string {
  const bytes = Buffer.from(value, 'utf8');
  let out = '';
  for (const byte of bytes) {
    if (UNRESERVED[byte] === 1 || (keepSlash && byte === 0x2f)) out += String.fromCharCode(byte);
    else out += `%${HEX[byte >> 4]}${HEX[byte & 15]}`;
  }
  return out;
}

/**
 * A key as the path of the request and as SigV4's canonical URI for S3 (which is not normalised and
 * not double-encoded): every UTF-8 byte except unreserved characters and '/' becomes %XX (upper case).
 */
export function encodeKeyPath(key: string): string {
  return encodeBytes(key, true);
}

/** A query-string name or value, encoded as SigV4's canonical query string wants (slash encoded too). */
export function encodeQueryComponent(value: string): string {
  return encodeBytes(value, false);
}

/** `name=value&…` in the given order (callers pass the order they signed; SigV4 sorts independently). */
export function buildQueryString(query: Readonly<Record<string, string>>): string {
  return Object.entries(query)
    .map(([name, value]) => `${encodeQueryComponent(name)}=${encodeQueryComponent(value)}`)
    .join('&');
}

/**
 * Decodes a value from a listing requested with `encoding-type=url`. AWS S3 encodes a space as '+'
 * (form encoding) and always encodes a literal '+' as %2B; Ceph RGW and the embedded upstream encode
 * a space as %20. Treating '+' as a space is therefore right for all of them.
 */
export function decodeUrlEncodedListingValue(value: string): string {
  return decodeURIComponent(value.replace(/\+/g, ' '));
}

/** UTF-8 byte order, which is the order S3 lists keys in (JS string order differs above U+FFFF). */
export function compareUtf8(a: string, b: string): number {
  const length = Math.min(a.length, b.length);
  for (let i = 0; i < length; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y) return utf8Rank(x) - utf8Rank(y);
  }
  return a.length - b.length;
}

/** Orders UTF-16 code units as their code points' UTF-8 bytes: surrogates (astral) above U+E000–U+FFFF. */
function utf8Rank(unit: number): number {
  if (unit >= 0xd800 && unit <= 0xdfff) return unit + 0x2000;
  if (unit >= 0xe000) return unit - 0x800;
  return unit;
}
