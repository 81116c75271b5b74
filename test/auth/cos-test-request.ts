/** Builds signed AuthRequests for the COS authenticator tests (not a test file itself). */
import type { AuthRequest } from '../../src/auth/auth-request';
import { signCosRequest, type SignedPair } from '../../src/auth/cos-signature';

export const SECRET_ID = 'AKIDQjz3ltompVjBni5LitkWHFlFpwkn9U5q';
export const SECRET_KEY = 'BQYIM75p8x0iWVFSIgqEKwFprpRSVHlz';
export const NOW_MS = 1_700_000_000_500;
export const NOW_S = 1_700_000_000;
/** What the SDK sends: start = now − 1, end = start + 900. */
export const KEY_TIME = `${NOW_S - 1};${NOW_S + 899}`;
export const HOST = '127.0.0.1:8080';

export interface SignSpec {
  method?: string;
  coffer?: string;
  key?: string | undefined;
  /** Non-signature query pairs as the router decoded them. */
  query?: [string, string | null][];
  /** Headers as sent (authorization is added by mode 'header'). */
  headers?: [string, string][];
  /** Which header names to sign (default: all given headers). */
  signHeaders?: string[];
  /** Which query names to sign (default: all). */
  signParams?: string[];
  /** Path to sign (default `/<coffer>/<key>`). */
  pathname?: string;
  keyTime?: string;
  secretId?: string;
  secretKey?: string;
  mode?: 'header' | 'query';
}

export interface Signed {
  request: AuthRequest;
  authorization: string;
  queryFields: readonly SignedPair[];
}

export function sign(spec: SignSpec = {}): Signed {
  const method = spec.method ?? 'PUT';
  const coffer = spec.coffer ?? 'coffer-1250000000';
  const key = 'key' in spec ? spec.key : 'dir/report (final)*.txt';
  const query = spec.query ?? [];
  const headers = spec.headers ?? [
    ['Host', HOST],
    ['Content-Length', '13'],
    ['Content-MD5', 'mQ/fVh815F3k6TAUm8m0eg=='],
  ];
  const signHeaderNames = (spec.signHeaders ?? headers.map(([n]) => n)).map((n) => n.toLowerCase());
  const signParamNames = spec.signParams ?? query.map(([n]) => n);
  const signed = signCosRequest({
    secretId: spec.secretId ?? SECRET_ID,
    secretKey: spec.secretKey ?? SECRET_KEY,
    keyTime: spec.keyTime ?? KEY_TIME,
    method,
    pathname: spec.pathname ?? (key === undefined ? `/${coffer}` : `/${coffer}/${key}`),
    params: query.filter(([n]) => signParamNames.includes(n)).map(([n, v]) => [n, v ?? ''] as const),
    headers: headers.filter(([n]) => signHeaderNames.includes(n.toLowerCase())),
  });
  const mode = spec.mode ?? 'header';
  const request = buildRequest({
    method,
    coffer,
    key,
    query: mode === 'query' ? [...query, ...signed.queryFields.map(([n, v]) => [n, v] as [string, string])] : query,
    headers: mode === 'header' ? [...headers, ['Authorization', signed.authorization]] : headers,
  });
  return { request, authorization: signed.authorization, queryFields: signed.queryFields };
}

export function buildRequest(parts: { method: string; coffer: string; key: string | undefined; query: [string, string | null][]; headers: [string, string][] }): AuthRequest {
  const headers = new Map<string, string[]>();
  for (const [name, value] of parts.headers) {
    const lower = name.toLowerCase();
    headers.set(lower, [...(headers.get(lower) ?? []), value]);
  }
  return { method: parts.method, coffer: parts.coffer, key: parts.key, query: parts.query, headers };
}

/** Replaces (or with `undefined`, removes) one field of an Authorization value. */
export function editAuthorization(authorization: string, field: string, value: string | undefined): string {
  return authorization
    .split('&')
    .flatMap((part) => (part.startsWith(`${field}=`) ? (value === undefined ? [] : [`${field}=${value}`]) : [part]))
    .join('&');
}

/** A copy of the request with a different Authorization header (or none). */
export function withAuthorization(request: AuthRequest, authorization: string | string[] | undefined): AuthRequest {
  const headers = new Map(request.headers);
  headers.delete('authorization');
  if (authorization !== undefined) headers.set('authorization', Array.isArray(authorization) ? authorization : [authorization]);
  return { ...request, headers };
}

export function withHeader(request: AuthRequest, name: string, values: string[] | undefined): AuthRequest {
  const headers = new Map(request.headers);
  if (values === undefined) headers.delete(name);
  else headers.set(name, values);
  return { ...request, headers };
}
