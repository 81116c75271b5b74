/**
 * Browser origins (RFC 6454) as the CORS configuration names them, and the one way a request's
 * `Origin` is matched against them: exactly, as strings, after the configuration was checked to be in
 * the serialization browsers send (lower-case scheme and host, no default port, no path, no trailing
 * slash). Nothing is normalized at request time, so `https://app.example.com.evil.net` or
 * `https://APP.example.com` can never pass for `https://app.example.com`.
 *
 * One relaxation, for local development: `<scheme>://<host>:*` allows that scheme and host on any
 * port (a dev server's port changes from run to run). `*` (any origin) is not a pattern: origins are
 * listed one by one.
 */

/** An allowed origin: exact, or a scheme and host on any port (`:*`). */
export interface OriginPattern {
  /** The serialized origin (`https://app.example.com`), or for `anyPort` the scheme and host without a port. */
  readonly origin: string;
  readonly anyPort: boolean;
}

const ANY_PORT = ':*';
const ORIGIN_HOST = /^(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*|\[[0-9a-f:.]+\])$/;

/** Whether `text` is exactly the origin a browser would serialize for it (WHATWG URL's `origin`). */
function isSerializedOrigin(text: string): boolean {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return false;
  }
  // The URL parser accepts `*` and other odd characters in a host; an origin host is a DNS name
  // (internationalized ones in their xn-- form), an IPv4 address or a bracketed IPv6 address.
  return (url.protocol === 'http:' || url.protocol === 'https:') && url.origin === text && ORIGIN_HOST.test(url.hostname);
}

/** The pattern `text` names, or undefined when it is not an origin as browsers send it (see the module comment). */
export function parseOriginPattern(text: string): OriginPattern | undefined {
  if (text.endsWith(ANY_PORT)) {
    const origin = text.slice(0, -ANY_PORT.length);
    // `http://host:8080:*` would parse as a port; a wildcard replaces the port, it does not follow one.
    return isSerializedOrigin(origin) && new URL(origin).port === '' ? { origin, anyPort: true } : undefined;
  }
  return isSerializedOrigin(text) ? { origin: text, anyPort: false } : undefined;
}

/** Whether the request's `Origin` value is allowed by one of `patterns` (string comparison only). */
export function originAllowed(origin: string, patterns: readonly OriginPattern[]): boolean {
  for (const pattern of patterns) {
    if (!pattern.anyPort) {
      if (origin === pattern.origin) return true;
      continue;
    }
    if (origin === pattern.origin) return true; // the scheme's default port
    if (origin.startsWith(`${pattern.origin}:`) && /^[0-9]{1,5}$/.test(origin.slice(pattern.origin.length + 1))) return true;
  }
  return false;
}

/** What the embedded demo coffer allows by default: pages served from this machine, on any port. */
export const LOOPBACK_ORIGINS: readonly string[] = ['http://localhost:*', 'http://127.0.0.1:*', 'http://[::1]:*'];
