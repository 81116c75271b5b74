/**
 * Request fields both dialects read the same way: Content-MD5, user metadata (`x-cos-meta-*` for
 * CDCS, `x-amz-meta-*` for S3 — the same stored attribute), and numeric query parameters.
 */
import { GatewayError } from '../errors/gateway-error';
import { queryValues, type RequestTarget } from '../cdcs/request-target';
import { headerValue, type RequestHeaders } from '../server/request-headers';

/** The Content-MD5 digest, if sent; anything but 16 bytes in canonical base64 is InvalidDigest. */
export function contentMd5(headers: RequestHeaders): Buffer | undefined {
  const raw = headerValue(headers, 'content-md5');
  if (raw === undefined) return undefined;
  const digest = Buffer.from(raw, 'base64');
  if (digest.length !== 16 || digest.toString('base64') !== raw.trim()) throw new GatewayError('InvalidDigest');
  return digest;
}

/** User metadata: every header named `<prefix><name>`, keyed by `<name>`. */
export function userMetadata(headers: RequestHeaders, prefix: 'x-cos-meta-' | 'x-amz-meta-'): Record<string, string> {
  const metadata: Record<string, string> = {};
  for (const name of headers.keys()) {
    if (name.startsWith(prefix)) metadata[name.slice(prefix.length)] = headerValue(headers, name) as string;
  }
  return metadata;
}

/** The single value of a query parameter (the router already refused duplicates of the ones it reads). */
export function queryValue(target: RequestTarget, name: string): string | null | undefined {
  return queryValues(target, name)[0];
}

/** A non-negative integer parameter (at most 9 digits), or `fallback` when absent or empty. */
export function numberParam(target: RequestTarget, name: string, fallback: number): number {
  const raw = queryValue(target, name);
  if (raw === undefined || raw === null || raw === '') return fallback;
  if (!/^\d{1,9}$/.test(raw)) throw new GatewayError('InvalidArgument', `${name} must be a non-negative integer.`);
  return Number(raw);
}
