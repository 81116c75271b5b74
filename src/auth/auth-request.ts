/**
 * The request as the authentication stage sees it. The router builds it once: the query decoded
 * exactly once, headers from `rawHeaders` (Node's `req.headers` silently drops or joins duplicates,
 * and a duplicated signed header must be visible to be rejected), and the coffer/key it will act
 * on, so that authentication, authorization and forwarding all use the same decoded key.
 */
import { readHeaders } from '../server/request-headers';

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

/** Builds the header map from Node's `rawHeaders` (the one shape: src/server/request-headers.ts). */
export const headersFromRaw = readHeaders;

/** All values of one header (empty when absent). */
export function headerValues(request: Pick<AuthRequest, 'headers'>, name: string): readonly string[] {
  return request.headers.get(name) ?? [];
}
