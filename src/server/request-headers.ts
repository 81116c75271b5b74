/**
 * The request's header fields in the one shape every stage reads: lower-case name → every value
 * received, in order, built once from Node's `rawHeaders`. Node's own `req.headers` silently drops or
 * joins duplicates, and a duplicated signed header (or framing header) must be visible to be refused,
 * so nothing reads `req.headers`.
 */
export type RequestHeaders = ReadonlyMap<string, readonly string[]>;

/** Builds the header map from `rawHeaders` (`[name, value, name, value, ...]`). */
export function readHeaders(rawHeaders: readonly string[]): Map<string, string[]> {
  const headers = new Map<string, string[]>();
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const name = (rawHeaders[i] as string).toLowerCase();
    const value = rawHeaders[i + 1] as string;
    const values = headers.get(name);
    if (values === undefined) headers.set(name, [value]);
    else values.push(value);
  }
  return headers;
}

/**
 * Fields that hold one value: a duplicate is ignored (the first counts), as Node does for these. Every
 * other field is a list, whose repeated lines mean the same as one line joined with ", " (RFC 9110
 * §5.3) — so a repeated Content-MD5 or Range is judged as the joined (invalid) value, never as one
 * of its parts.
 */
const SINGLE_VALUED: ReadonlySet<string> = new Set([
  'content-type',
  'content-length',
  'host',
  'authorization',
  'if-modified-since',
  'if-unmodified-since',
  'user-agent',
  'referer',
  'etag',
  'expires',
  'last-modified',
  'location',
  'max-forwards',
  'proxy-authorization',
  'retry-after',
  'server',
  'age',
  'from',
]);

/** The field's value as one string (see SINGLE_VALUED), or undefined when absent. */
export function headerValue(headers: RequestHeaders, name: string): string | undefined {
  const values = headers.get(name);
  if (values === undefined || values.length === 0) return undefined;
  return SINGLE_VALUED.has(name) ? values[0] : values.join(', ');
}
