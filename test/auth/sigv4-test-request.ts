/**
 * Builds SigV4-signed requests with the AWS SDK's own signer (@smithy/signature-v4, an implementation
 * independent of the gateway's verifier) and turns the request as it would go on the wire into the
 * identity the gateway acts on (parseRequestTarget + headersFromRaw), as the HTTP front does. Not a
 * test file itself.
 */
import { Hash } from '@smithy/hash-node';
import { SignatureV4 } from '@smithy/signature-v4';
import { headersFromRaw } from '../../src/auth/auth-request';
import type { SigV4AuthRequest } from '../../src/auth/sigv4-authenticator';
import { parseRequestTarget } from '../../src/cdcs/request-target';

export const ACCESS_KEY = 'AKIDQjz3ltompVjBni5LitkWHFlFpwkn9U5q';
export const SECRET_KEY = 'BQYIM75p8x0iWVFSIgqEKwFprpRSVHlz';
/** 2023-11-14T22:13:20Z. */
export const NOW_MS = 1_700_000_000_000;
export const HOST = '127.0.0.1:8080';

/** The path as a client sends it: every byte but unreserved characters and `/` percent-encoded. */
export function encodePath(path: string): string {
  return path
    .split('/')
    .map((segment) => encodeURIComponent(segment).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`))
    .join('/');
}

function encodeQueryPart(text: string): string {
  return encodeURIComponent(text).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

export interface WireRequest {
  method: string;
  /** Raw request target (`/path?query`), as in the request line. */
  target: string;
  /** Header pairs as sent (rawHeaders order). */
  headers: Array<[string, string]>;
}

export interface SigV4Spec {
  method?: string;
  /** Decoded path, e.g. `/coffer-1250000000/dir/a b.txt`. */
  path?: string;
  query?: Record<string, string>;
  /** Extra headers (host is added). */
  headers?: Record<string, string>;
  host?: string;
  accessKeyId?: string;
  secretAccessKey?: string;
  region?: string;
  service?: string;
  signingDate?: Date;
  /** x-amz-content-sha256 (header form); default the SHA-256 of the empty body. */
  payloadHash?: string;
}

function signer(spec: SigV4Spec): SignatureV4 {
  return new SignatureV4({
    service: spec.service ?? 's3',
    region: spec.region ?? 'us-east-1',
    credentials: { accessKeyId: spec.accessKeyId ?? ACCESS_KEY, secretAccessKey: spec.secretAccessKey ?? SECRET_KEY },
    sha256: Hash.bind(null, 'sha256'),
    uriEscapePath: false,
  });
}

function toTarget(path: string, query: Record<string, string | null>): string {
  const search = Object.entries(query)
    .map(([name, value]) => (value === null ? encodeQueryPart(name) : `${encodeQueryPart(name)}=${encodeQueryPart(value)}`))
    .join('&');
  return search === '' ? encodePath(path) : `${encodePath(path)}?${search}`;
}

/** Header-signed, as the AWS SDK and aws-cli send it. */
export async function signHeader(spec: SigV4Spec = {}): Promise<WireRequest> {
  const method = spec.method ?? 'GET';
  const path = spec.path ?? '/coffer-1250000000/dir/report (final)*.txt';
  const headers: Record<string, string> = {
    host: spec.host ?? HOST,
    'x-amz-content-sha256': spec.payloadHash ?? 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
    ...(spec.headers ?? {}),
  };
  const signed = await signer(spec).sign({ method, protocol: 'http:', hostname: '127.0.0.1', path: encodePath(path), query: spec.query ?? {}, headers }, { signingDate: spec.signingDate ?? new Date(NOW_MS) });
  return { method, target: toTarget(path, spec.query ?? {}), headers: Object.entries(signed.headers as Record<string, string>) };
}

/** A presigned URL, as the SDK's presigner and `aws s3 presign` make it. */
export async function presign(spec: SigV4Spec & { expiresIn?: number } = {}): Promise<WireRequest> {
  const method = spec.method ?? 'GET';
  const path = spec.path ?? '/coffer-1250000000/dir/report (final)*.txt';
  const headers: Record<string, string> = { host: spec.host ?? HOST, ...(spec.headers ?? {}) };
  const presigned = await signer(spec).presign(
    { method, protocol: 'http:', hostname: '127.0.0.1', path: encodePath(path), query: spec.query ?? {}, headers: { ...headers, 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD' } },
    { signingDate: spec.signingDate ?? new Date(NOW_MS), expiresIn: spec.expiresIn ?? 900, unsignableHeaders: new Set(['x-amz-content-sha256']), unhoistableHeaders: new Set(['x-amz-content-sha256']) },
  );
  return { method, target: toTarget(path, presigned.query as Record<string, string>), headers: Object.entries(headers) };
}

/** What the gateway's front makes of a wire request: the parsed identity + the raw headers. */
export function identityOf(wire: WireRequest, virtualHostSuffixes: readonly string[] = []): SigV4AuthRequest {
  const headers = headersFromRaw(wire.headers.flat());
  const target = parseRequestTarget(wire.target, { acceptAbsoluteForm: false, hostHeader: headers.get('host')?.[0], virtualHostSuffixes });
  return { method: wire.method, coffer: target.coffer, key: target.key, addressing: target.addressing, query: target.query, headers, pathname: target.pathname };
}

/** Replaces (or adds) a header, keeping the signature. */
export function withHeader(wire: WireRequest, name: string, value: string): WireRequest {
  const headers = wire.headers.filter(([n]) => n.toLowerCase() !== name.toLowerCase());
  headers.push([name, value]);
  return { ...wire, headers };
}

/** Rewrites the raw target, keeping the signature. */
export function withTarget(wire: WireRequest, rewrite: (target: string) => string): WireRequest {
  return { ...wire, target: rewrite(wire.target) };
}
