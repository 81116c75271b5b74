/**
 * The data plane: one signed PUT whose body is streamed, never buffered, with an explicit
 * Content-Length and no chunked encoding.
 *
 * Why a plain `node:http(s).request` and not http-proxy-middleware / httpxy (both installed):
 * - hpm's API is a `(req, res, next)` middleware that forwards the *incoming client request*; the body
 *   here is a Readable produced inside the gateway (the encryptor's output), below the HTTP layer, and
 *   there is no `res` to write the upstream's answer into — the store must parse it (ETag, XML error).
 * - httpxy's `ProxyServer.web(req, res, { buffer })` would need a fake IncomingMessage/ServerResponse
 *   pair, and its body path is `source.pipe(proxyReq)`: on a source error it unpipes and leaves the
 *   upstream request open, on a *short* source it calls `proxyReq.end()` (a well-formed truncated
 *   request), it never counts bytes, and it has no AbortSignal. Each of those is exactly what the
 *   "nothing lost" rules forbid; working around them means re-implementing this file around httpxy.
 * So every failure path here ends in `request.destroy()` — never `end()` — which resets the
 * connection: the upstream discards the partial body and the previous version stays intact. The last
 * byte is held back until the body has ended (so a body that proves too long, or fails in its final
 * flush, never reaches the upstream as a complete request).
 */
import { request as httpRequest, type Agent as HttpAgent, type IncomingMessage, type OutgoingHttpHeaders } from 'node:http';
import { request as httpsRequest, type Agent as HttpsAgent } from 'node:https';
import type { Readable } from 'node:stream';
import { GatewayError } from '../errors/gateway-error';
import { mapTransportError, mapUpstreamResponse } from './upstream-errors';

export interface StreamedPutRequest {
  readonly protocol: 'http:' | 'https:';
  readonly hostname: string;
  readonly port: number | undefined;
  /** Already encoded path plus query (built from configuration and the encoded key only). */
  readonly path: string;
  /** Signed headers; must include content-length. */
  readonly headers: OutgoingHttpHeaders;
  readonly agent: HttpAgent | HttpsAgent;
  readonly body: Readable;
  readonly contentLength: number;
  readonly signal?: AbortSignal;
  /** Called with each body chunk once its write has completed (StreamedUpload.release). */
  readonly release?: (chunk: Buffer) => void;
  /** No byte sent or received for this long → destroy, GatewayTimeout. */
  readonly idleTimeoutMs: number;
}

export interface StreamedPutResult {
  readonly etag: string;
  readonly headers: IncomingMessage['headers'];
}

/** Upper bound on an error body kept for its <Code>. */
const MAX_ERROR_BODY = 64 * 1024;
const noop = (): void => {};

export function streamedPut(input: StreamedPutRequest): Promise<StreamedPutResult> {
  return new Promise<StreamedPutResult>((resolve, reject) => {
    const { body, contentLength, signal, release } = input;
    // Whatever happens to the body after we are done must not become an unhandled 'error'.
    body.on('error', noop);
    if (signal?.aborted) {
      body.destroy();
      reject(new GatewayError('IncompleteBody', 'The upload was aborted before it started.', { reason: 'aborted' }));
      return;
    }

    let settled = false;
    let sent = 0;
    let bodyComplete = false;
    let held: Buffer | undefined;
    let heldFrom: Buffer | undefined;
    let response: IncomingMessage | undefined;

    const outgoing = (input.protocol === 'https:' ? httpsRequest : httpRequest)({
      hostname: input.hostname,
      port: input.port,
      method: 'PUT',
      path: input.path,
      headers: input.headers,
      agent: input.agent,
    });

    const detach = (): void => {
      body.off('data', onData);
      body.off('end', onEnd);
      body.off('error', onBodyError);
      body.off('close', onBodyClose);
      signal?.removeEventListener('abort', onAbort);
    };

    /** The failure path: destroy (never end) the upstream request, release the body, reject. */
    const fail = (error: Error): void => {
      if (settled) return;
      settled = true;
      detach();
      outgoing.destroy();
      response?.destroy();
      if (!body.destroyed) body.destroy();
      reject(error);
    };

    const succeed = (result: StreamedPutResult): void => {
      if (settled) return;
      settled = true;
      detach();
      resolve(result);
    };

    function onData(data: Buffer | string): void {
      const chunk = typeof data === 'string' ? Buffer.from(data) : data;
      if (sent + chunk.length > contentLength) {
        fail(new GatewayError('IncompleteBody', 'The body is longer than its declared length.', { reason: 'body-too-long' }));
        return;
      }
      sent += chunk.length;
      if (response !== undefined) return; // the upstream already answered: stop feeding it
      let now = chunk;
      if (sent === contentLength && chunk.length > 0) {
        // Hold back the last byte until the body has *ended*: with every byte sent, the upstream would
        // hold a complete request and store it, even if the body then turns out too long or fails in
        // its final flush (e.g. a digest check) — and destroy() would come too late.
        held = chunk.subarray(chunk.length - 1);
        heldFrom = chunk;
        now = chunk.subarray(0, chunk.length - 1);
      }
      // The chunk is released only after a successful write (a failed one may still reference it) and,
      // when its last byte is held back, only after that byte is written too.
      const done =
        release === undefined || held !== undefined
          ? undefined
          : (error?: Error | null): void => {
              if (error == null) release(chunk);
            };
      if (now.length > 0 && !outgoing.write(now, done)) body.pause();
      else if (now.length === 0) done?.();
    }
    function onEnd(): void {
      if (sent !== contentLength) {
        fail(new GatewayError('IncompleteBody', 'The body ended before its declared length.', { reason: 'body-too-short' }));
        return;
      }
      bodyComplete = true;
      if (response === undefined) {
        if (held === undefined) outgoing.end();
        else {
          const from = heldFrom as Buffer;
          outgoing.end(held, () => release?.(from));
        }
      }
    }
    function onBodyError(error: Error): void {
      fail(new GatewayError('IncompleteBody', 'The body failed while it was being sent upstream.', { reason: 'body-error', cause: error }));
    }
    function onBodyClose(): void {
      // Destroyed without 'end' (and maybe without 'error'): a truncated body.
      if (!bodyComplete) fail(new GatewayError('IncompleteBody', 'The body was destroyed before its declared length.', { reason: 'body-destroyed' }));
    }
    function onAbort(): void {
      fail(new GatewayError('IncompleteBody', 'The upload was aborted.', { reason: 'aborted' }));
    }

    outgoing.on('drain', () => {
      if (!settled && response === undefined) body.resume();
    });
    outgoing.setTimeout(input.idleTimeoutMs, () => {
      fail(new GatewayError('GatewayTimeout', 'The upstream object store did not answer in time.', { reason: 'upstream-idle-timeout' }));
    });
    outgoing.on('error', (error) => {
      // A reset right after an early error answer: let the answer (if it completes) win.
      if (response !== undefined && !response.complete) {
        setImmediate(() => fail(mapTransportError(error)));
        return;
      }
      fail(mapTransportError(error));
    });
    outgoing.on('response', (incoming: IncomingMessage) => {
      response = incoming;
      const status = incoming.statusCode ?? 0;
      const early = !bodyComplete;
      if (early) body.pause(); // an answer before the whole body was sent can only be a rejection
      const chunks: Buffer[] = [];
      let kept = 0;
      incoming.on('data', (chunk: Buffer) => {
        if (kept < MAX_ERROR_BODY) {
          chunks.push(chunk);
          kept += chunk.length;
        }
      });
      incoming.on('error', (error) => fail(mapTransportError(error)));
      incoming.on('end', () => {
        if (status >= 200 && status < 300 && !early) {
          const etag = incoming.headers.etag;
          if (typeof etag !== 'string' || etag === '') {
            fail(new GatewayError('BadGateway', 'The upstream object store answered without an ETag.', { reason: 'upstream-no-etag' }));
            return;
          }
          succeed({ etag, headers: incoming.headers });
          return;
        }
        const text = Buffer.concat(chunks).toString('utf8');
        const code = /<Code>([^<]{1,64})<\/Code>/.exec(text)?.[1];
        if (status >= 200 && status < 300) {
          fail(new GatewayError('BadGateway', 'The upstream object store answered before the whole body was sent.', { reason: 'upstream-early-response' }));
          return;
        }
        fail(mapUpstreamResponse(code, status));
      });
    });

    body.on('data', onData);
    body.on('end', onEnd);
    body.on('error', onBodyError);
    body.on('close', onBodyClose);
    signal?.addEventListener('abort', onAbort, { once: true });
    if (body.readableEnded) onEnd();
  });
}
