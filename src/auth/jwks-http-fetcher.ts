/**
 * Fetches a JWKS document over HTTP(S) with what the Kubernetes API server's `/openid/v1/jwks` needs:
 * a private CA and a bearer token. Uses node:http/https directly because global fetch cannot take a
 * CA without undici's dispatcher API. No redirects are followed and the body is bounded.
 */
import http from 'node:http';
import https from 'node:https';
import type { FetchJwks } from './jwks-cache';

export interface JwksHttpFetcherOptions {
  readonly url: string;
  /** PEM CA bundle, already read (e.g. /var/run/secrets/kubernetes.io/serviceaccount/ca.crt). */
  readonly ca?: string | Buffer;
  /**
   * Returns the bearer token for the JWKS request. Called on every fetch because projected
   * service-account tokens are rotated on disk by the kubelet.
   */
  readonly bearerToken?: () => string | Promise<string>;
  readonly timeoutMs?: number;
  readonly maxBytes?: number;
}

const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]', '::1']);

export function createJwksHttpFetcher(options: JwksHttpFetcherOptions): FetchJwks {
  const url = new URL(options.url); // configuration, not user input
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new Error('JWKS URL must be http(s)');
  if (url.protocol === 'http:' && options.bearerToken !== undefined && !LOOPBACK_HOSTS.has(url.hostname)) {
    // A bearer token sent in clear text to a remote host would hand out the gateway's identity.
    throw new Error('JWKS URL must use https when a bearer token is configured');
  }
  const timeoutMs = options.timeoutMs ?? 5000;
  const maxBytes = options.maxBytes ?? 1024 * 1024;

  return async () => {
    const headers: Record<string, string> = { accept: 'application/json, application/jwk-set+json' };
    if (options.bearerToken !== undefined) headers.authorization = `Bearer ${(await options.bearerToken()).trim()}`;
    const body = await get(url, { headers, ca: options.ca, timeoutMs, maxBytes });
    return JSON.parse(body) as unknown;
  };
}

function get(url: URL, options: { headers: Record<string, string>; ca: string | Buffer | undefined; timeoutMs: number; maxBytes: number }): Promise<string> {
  return new Promise((resolve, reject) => {
    // Settle exactly once: after a failure, late 'end'/'error' events of a destroyed socket are ignored.
    let settled = false;
    const fail = (error: Error): void => {
      if (settled) return;
      settled = true;
      request.destroy();
      reject(error);
    };
    const requestOptions: https.RequestOptions = { method: 'GET', headers: options.headers, timeout: options.timeoutMs };
    if (options.ca !== undefined) requestOptions.ca = options.ca;
    const request = (url.protocol === 'https:' ? https : http).request(url, requestOptions, (response) => {
      response.on('error', fail);
      if (response.statusCode !== 200) {
        fail(new Error(`JWKS endpoint answered HTTP ${response.statusCode ?? 0}`));
        return;
      }
      const chunks: Buffer[] = [];
      let size = 0;
      response.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > options.maxBytes) fail(new Error('JWKS body too large'));
        else chunks.push(chunk);
      });
      response.on('end', () => {
        if (settled) return;
        settled = true;
        resolve(Buffer.concat(chunks).toString('utf8'));
      });
    });
    request.on('timeout', () => fail(new Error('JWKS request timed out')));
    request.on('error', fail);
    request.end();
  });
}
