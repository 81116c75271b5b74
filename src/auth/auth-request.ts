/**
 * The request as the authentication stage sees it. The router builds it once: the query decoded
 * exactly once, headers from `rawHeaders` (Node's `req.headers` silently drops or joins duplicates,
 * and a duplicated signed header must be visible to be rejected), and the coffer/key it will act
 * on, so that authentication, authorization and forwarding all use the same decoded key.
 */
export interface AuthRequest {
  /** HTTP method as received (`PUT`, `GET`, ...). */
  readonly method: string;
  /** Coffer name parsed by the router; undefined only for GetService (`GET /`). */
  readonly coffer: string | undefined;
  /** Decoded object key, or undefined for coffer-level operations (`GET /<Coffer>?uploads`). */
  readonly key: string | undefined;
  /**
   * Where the coffer name came from (request-target.ts): `virtual-hosted` when the Host names it, so
   * the signature covers `/<Key>` and the signed host binds the coffer. Default `path`.
   */
  readonly addressing?: 'path' | 'virtual-hosted';
  /** Query pairs in request order, decoded once; `null` value for a bare name (`?uploads`). */
  readonly query: readonly (readonly [name: string, value: string | null])[];
  /** Lower-case header name → every value received, in order. */
  readonly headers: ReadonlyMap<string, readonly string[]>;
}

/** Builds the header map from Node's `rawHeaders` (`[name, value, name, value, ...]`). */
export function headersFromRaw(rawHeaders: readonly string[]): Map<string, string[]> {
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

/** All values of one header (empty when absent). */
export function headerValues(request: Pick<AuthRequest, 'headers'>, name: string): readonly string[] {
  return request.headers.get(name) ?? [];
}
