/**
 * Request-body framing checks (pure) and the body guard: the request body as a Readable that fails
 * with a GatewayError instead of hanging or ending short.
 *
 * - Framing: a streamed PUT needs its length up front (the upstream gets an explicit ciphertext
 *   Content-Length, never chunked), so PUT without Content-Length, or with Transfer-Encoding, is 411.
 *   GET/HEAD/DELETE carry no body here: a body on them is refused rather than silently left on the
 *   connection, where a front proxy could disagree with us about where the next request starts.
 * - Idle timeout (like nginx `client_body_timeout`): the timer runs only while the guard is waiting
 *   for the client, i.e. after its consumer asked for data. While the consumer applies backpressure
 *   (slow upstream) the client is not idle and the timer is off.
 * - Minimum rate (like Apache mod_reqtimeout `body=20,MinRate=500`): the time spent waiting for the
 *   client may not exceed `graceMs` plus 1 s for every `bytesPerSecond` bytes received. The idle timeout
 *   alone never cuts a client dripping one byte just inside it; this does, after about `graceMs`.
 *   Like the idle timer it only counts while the guard waits for the client, so backpressure from a
 *   slow upstream is never charged to the client.
 * - Short body: the client closing before Content-Length bytes arrived is IncompleteBody, never an
 *   `end` — a well-formed truncated body must not look like a complete part.
 */
import type { IncomingMessage } from 'node:http';
import { Readable } from 'node:stream';
import { performance } from 'node:perf_hooks';
import { GatewayError } from '../errors/gateway-error';
import type { RequestHeaders } from './request-headers';

/** Lower-case header name → every value received, in order (built once from rawHeaders). */
export type HeaderMap = RequestHeaders;

export type BodyFraming = { readonly kind: 'none' } | { readonly kind: 'length'; readonly length: number } | { readonly kind: 'chunked' };

const DIGITS = /^[0-9]{1,16}$/;

/**
 * Decides how the request body is framed, from rawHeaders (so duplicates are visible). Throws 411
 * MissingContentLength, or 400 InvalidArgument / InvalidRequest for framing Node's parser would
 * normally already have refused (kept here as a second line: the parser is a dependency).
 */
export function bodyFramingOf(method: string, headers: HeaderMap): BodyFraming {
  const lengths = headers.get('content-length') ?? [];
  const encodings = headers.get('transfer-encoding') ?? [];
  if (lengths.length > 1) throw new GatewayError('InvalidArgument', 'Content-Length appears more than once.');
  if (lengths.length === 1 && encodings.length > 0) throw new GatewayError('InvalidRequest', 'Content-Length and Transfer-Encoding cannot be combined.');

  let framing: BodyFraming = { kind: 'none' };
  if (lengths.length === 1) {
    const raw = (lengths[0] as string).trim();
    if (!DIGITS.test(raw) || !Number.isSafeInteger(Number(raw))) throw new GatewayError('InvalidArgument', 'Content-Length is not a non-negative integer.');
    framing = { kind: 'length', length: Number(raw) };
  } else if (encodings.length > 0) {
    // An S3 aws-chunked body declares its object size up front (x-amz-decoded-content-length), which is what the store needs.
    if (method === 'PUT' && !isAwsChunked(headers)) throw new GatewayError('MissingContentLength', 'Content-Length is required; chunked transfer encoding is not accepted for PUT.');
    if (encodings.join(',').trim().toLowerCase() !== 'chunked') throw new GatewayError('InvalidRequest', 'Only "Transfer-Encoding: chunked" is supported.');
    framing = { kind: 'chunked' };
  } else if (method === 'PUT') {
    throw new GatewayError('MissingContentLength');
  }

  const hasBody = framing.kind === 'chunked' || (framing.kind === 'length' && framing.length > 0);
  if (hasBody && (method === 'GET' || method === 'HEAD' || method === 'DELETE')) {
    throw new GatewayError('InvalidRequest', `A ${method} request must not carry a body.`);
  }
  return framing;
}

/** An S3 streamed body (src/http/aws-chunked-decoder.ts): a STREAMING-* payload type with `x-amz-decoded-content-length`. */
function isAwsChunked(headers: HeaderMap): boolean {
  const payload = headers.get('x-amz-content-sha256') ?? [];
  return payload.length === 1 && (payload[0] as string).startsWith('STREAMING-') && (headers.get('x-amz-decoded-content-length') ?? []).length === 1;
}

/** Refuses, before any byte is read, a body whose declared length is over `maxBytes` (EntityTooLarge). */
export function checkDeclaredSize(framing: BodyFraming, maxBytes: number | undefined): void {
  if (maxBytes !== undefined && framing.kind === 'length' && framing.length > maxBytes) {
    throw new GatewayError('EntityTooLarge', `The body is ${framing.length} bytes; at most ${maxBytes} are accepted here.`);
  }
}

export interface BodyGuardOptions {
  /** Fail with RequestTimeout when no byte arrives for this long while data is wanted. */
  readonly idleTimeoutMs: number;
  readonly framing: BodyFraming;
  /** Fail with EntityTooLarge beyond this many bytes (checked up front for Content-Length, while reading for chunked). */
  readonly maxBytes?: number;
  /** Fail with RequestTimeout when the client is slower than this (see the module comment); absent or 0 bytes/s = off. */
  readonly minRate?: MinBodyRate;
}

export interface MinBodyRate {
  readonly bytesPerSecond: number;
  /** Waiting time allowed before any byte counts (mod_reqtimeout's initial `body=` timeout). */
  readonly graceMs: number;
}

/** The subset of IncomingMessage the guard uses; a plain Readable works for tests. */
export type BodySource = Readable & Partial<Pick<IncomingMessage, 'complete'>>;

class GuardedBody extends Readable {
  readonly #source: BodySource;
  readonly #idleTimeoutMs: number;
  readonly #expected: number | undefined;
  readonly #maxBytes: number | undefined;
  readonly #minRate: MinBodyRate | undefined;
  #received = 0;
  #timer: NodeJS.Timeout | undefined;
  #settled = false;
  /** Time spent waiting for the client (armed), in ms, and when the current wait started. */
  #waitedMs = 0;
  #waitStartedAt: number | undefined;

  constructor(source: BodySource, options: BodyGuardOptions) {
    super();
    this.#source = source;
    this.#idleTimeoutMs = options.idleTimeoutMs;
    this.#expected = options.framing.kind === 'length' ? options.framing.length : options.framing.kind === 'none' ? 0 : undefined;
    this.#maxBytes = options.maxBytes;
    this.#minRate = options.minRate !== undefined && options.minRate.bytesPerSecond > 0 ? options.minRate : undefined;
    source.pause();
    source.on('data', this.#onData);
    source.on('end', this.#onEnd);
    source.on('error', this.#onError);
    source.on('close', this.#onClose);
    if (source.readableEnded) queueMicrotask(this.#onEnd);
    else if (source.destroyed) queueMicrotask(this.#onClose);
  }

  /** Body bytes received from the client so far (the audit line's bytes in). */
  get bytesReceived(): number {
    return this.#received;
  }

  override _read(): void {
    if (this.#settled) return;
    this.#arm();
    this.#source.resume();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.#detach();
    callback(error);
  }

  readonly #onData = (chunk: Buffer): void => {
    this.#disarm();
    this.#received += chunk.length;
    if (this.#maxBytes !== undefined && this.#received > this.#maxBytes) {
      return this.#fail(new GatewayError('EntityTooLarge', `The body is larger than ${this.#maxBytes} bytes.`));
    }
    if (this.#expected !== undefined && this.#received > this.#expected) {
      return this.#fail(new GatewayError('InvalidRequest', 'The body is longer than Content-Length.'));
    }
    if (this.push(chunk)) this.#arm();
    else this.#source.pause(); // backpressure: the client is not idle, we are; _read re-arms.
  };

  readonly #onEnd = (): void => {
    if (this.#settled) return;
    if (this.#expected !== undefined && this.#received !== this.#expected) {
      return this.#fail(new GatewayError('IncompleteBody', `The body ended after ${this.#received} of ${this.#expected} bytes.`));
    }
    this.#settled = true;
    this.#detach();
    this.push(null);
  };

  readonly #onError = (error: unknown): void => {
    this.#fail(new GatewayError('IncompleteBody', this.#shortMessage(), { cause: error }));
  };

  /** `close` before `end` means the client went away mid-body (Node also emits `aborted`/`error`). */
  readonly #onClose = (): void => {
    if (this.#settled || this.#source.readableEnded) return;
    this.#fail(new GatewayError('IncompleteBody', this.#shortMessage()));
  };

  #shortMessage(): string {
    return this.#expected === undefined ? `The connection closed after ${this.#received} bytes, before the chunked body ended.` : `The connection closed after ${this.#received} of ${this.#expected} bytes.`;
  }

  #fail(error: GatewayError): void {
    if (this.#settled) return;
    this.#settled = true;
    // The source stays paused (not destroyed): the server still has to answer on this socket, with
    // `Connection: close` because the rest of the body was not read.
    this.#source.pause();
    this.destroy(error);
  }

  /** How much longer the client may keep us waiting before it is below the minimum rate (Infinity when off). */
  #rateBudgetMs(): number {
    const rate = this.#minRate;
    if (rate === undefined) return Infinity;
    return rate.graceMs + (this.#received * 1000) / rate.bytesPerSecond - this.#waitedMs;
  }

  #tooSlow(): GatewayError {
    const rate = this.#minRate as MinBodyRate;
    return new GatewayError('RequestTimeout', `The body arrived slower than ${rate.bytesPerSecond} bytes/s (${this.#received} bytes after ${Math.round(this.#waitedMs)} ms of waiting).`);
  }

  #arm(): void {
    this.#disarm();
    const budgetMs = this.#rateBudgetMs();
    if (budgetMs <= 0) return this.#fail(this.#tooSlow());
    this.#waitStartedAt = performance.now();
    const rateCuts = budgetMs < this.#idleTimeoutMs;
    this.#timer = setTimeout(
      () => {
        this.#disarm();
        this.#fail(rateCuts ? this.#tooSlow() : new GatewayError('RequestTimeout', `No body bytes arrived for ${this.#idleTimeoutMs} ms.`));
      },
      Math.ceil(Math.min(budgetMs, this.#idleTimeoutMs)),
    );
    this.#timer.unref();
  }

  /** Stops the timer and books the time waited so far against the rate budget. */
  #disarm(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#waitStartedAt !== undefined) this.#waitedMs += performance.now() - this.#waitStartedAt;
    this.#waitStartedAt = undefined;
  }

  #detach(): void {
    this.#disarm();
    this.#source.off('data', this.#onData);
    this.#source.off('end', this.#onEnd);
    this.#source.off('error', this.#onError);
    this.#source.off('close', this.#onClose);
    // Keep swallowing late source errors: an unhandled 'error' would crash the process.
    this.#source.on('error', ignore);
  }
}

function ignore(): void {}

/**
 * Wraps a request body. Throws EntityTooLarge synchronously when Content-Length is over `maxBytes`
 * (so a 100-continue client can be refused before it sends); every other failure is an `error` on
 * the returned stream, always a GatewayError.
 */
export function guardBody(source: BodySource, options: BodyGuardOptions): Readable & { readonly bytesReceived: number } {
  checkDeclaredSize(options.framing, options.maxBytes);
  return new GuardedBody(source, options);
}
