/**
 * Parses the request target once (pure): origin-form `/<Coffer>[/<Key>][?query]`, or absolute-form
 * `http://cdcs.<region>.myqcloud.com/<Coffer>/<Key>?…` from clients that use the gateway as their HTTP
 * proxy. The host of an absolute-form target is never used to route or to pick an upstream (SSRF).
 * Percent-escapes are decoded exactly once, strictly (bad escapes or bad UTF-8 are rejected), and the
 * key is kept exactly as decoded: S3 keys are opaque, so `..`, `//` and `%2F` are ordinary key bytes.
 * That same key is used for authentication, authorization and the upstream.
 */
import { GatewayError } from '../errors/gateway-error';

export interface RequestTarget {
  readonly absoluteForm: boolean;
  /** Decoded path as the COS signature covers it (`/<Coffer>/<Key>`). */
  readonly pathname: string;
  readonly coffer?: string;
  readonly key?: string;
  readonly query: ReadonlyArray<readonly [string, string | null]>;
}

export const MAX_KEY_BYTES = 850;
const COFFER_NAME = /^[a-z0-9](?:[a-z0-9-]{0,48}[a-z0-9])?-\d{1,20}$/;
const utf8 = new TextDecoder('utf-8', { fatal: true });

function decodeComponent(raw: string, what: string): string {
  if (!raw.includes('%')) return raw;
  const bytes: number[] = [];
  for (let i = 0; i < raw.length; i += 1) {
    const char = raw.charCodeAt(i);
    if (char === 0x25) {
      const hex = raw.slice(i + 1, i + 3);
      if (!/^[0-9a-fA-F]{2}$/.test(hex)) throw new GatewayError('InvalidURI', `The ${what} has an invalid percent-escape.`);
      bytes.push(parseInt(hex, 16));
      i += 2;
    } else {
      bytes.push(...Buffer.from(raw[i] as string, 'utf8'));
    }
  }
  try {
    return utf8.decode(Uint8Array.from(bytes));
  } catch {
    throw new GatewayError('InvalidURI', `The ${what} is not valid UTF-8.`);
  }
}

export function validateObjectKey(key: string): void {
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(key)) throw new GatewayError('InvalidObjectKey', 'Object keys may not contain control characters.');
  if (Buffer.byteLength(key, 'utf8') > MAX_KEY_BYTES) throw new GatewayError('InvalidObjectKey', `Object keys are at most ${MAX_KEY_BYTES} bytes.`);
}

export function parseRequestTarget(rawTarget: string, acceptAbsoluteForm: boolean): RequestTarget {
  let target = rawTarget;
  let absoluteForm = false;
  const scheme = /^https?:\/\//i.exec(target);
  if (scheme !== null) {
    if (!acceptAbsoluteForm) throw new GatewayError('InvalidRequest', 'Absolute-form request targets are not accepted.');
    absoluteForm = true;
    const pathStart = target.indexOf('/', scheme[0].length);
    const queryStart = target.indexOf('?', scheme[0].length);
    target = pathStart < 0 || (queryStart >= 0 && queryStart < pathStart) ? `/${queryStart >= 0 ? target.slice(queryStart) : ''}` : target.slice(pathStart);
  }
  if (!target.startsWith('/')) throw new GatewayError('InvalidURI', 'The request target must be a path.');
  const queryAt = target.indexOf('?');
  const rawPath = queryAt < 0 ? target : target.slice(0, queryAt);
  const rawQuery = queryAt < 0 ? '' : target.slice(queryAt + 1);

  const slash = rawPath.indexOf('/', 1);
  const rawCoffer = slash < 0 ? rawPath.slice(1) : rawPath.slice(1, slash);
  const rawKey = slash < 0 ? '' : rawPath.slice(slash + 1);
  const coffer = rawCoffer === '' ? undefined : decodeComponent(rawCoffer, 'coffer name');
  if (coffer !== undefined && !COFFER_NAME.test(coffer)) throw new GatewayError('NoSuchCoffer', 'The coffer name is not valid.');
  const key = rawKey === '' ? undefined : decodeComponent(rawKey, 'object key');
  if (key !== undefined) validateObjectKey(key);

  const query: Array<readonly [string, string | null]> = [];
  for (const pair of rawQuery.split('&')) {
    if (pair === '') continue;
    const eq = pair.indexOf('=');
    const name = decodeComponent(eq < 0 ? pair : pair.slice(0, eq), 'query');
    query.push([name, eq < 0 ? null : decodeComponent(pair.slice(eq + 1), 'query')]);
  }
  const pathname = coffer === undefined ? '/' : `/${coffer}${key === undefined ? (slash < 0 ? '' : '/') : `/${key}`}`;
  return { absoluteForm, pathname, coffer, key, query };
}

/** The single value of a query parameter; undefined when absent. */
export function queryValue(target: Pick<RequestTarget, 'query'>, name: string): string | null | undefined {
  const found = target.query.find(([n]) => n === name);
  return found === undefined ? undefined : found[1];
}
