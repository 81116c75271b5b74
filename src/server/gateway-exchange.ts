/**
 * One request and its answer, as every stage after the listener sees them. The listener
 * (gateway-server.ts) builds both once per request — headers read once (request-headers.ts), the
 * target parsed and routed by the dialect's router, the body framing checked, the request and trace
 * ids, a logger carrying them — and nothing below reads Node's `req`/`res` for these again.
 *
 * - The body is reached only through `acceptBody({maxBytes})`, which is also what answers
 *   `Expect: 100-continue`: calling it is the decision to accept, so nothing is sent to a waiting
 *   client before the stage that reads the body has decided (the operation pipeline calls it only
 *   after an operation's `prepare`).
 * - The response knows what it has committed to (`committed`, `errorFitsInBody`), so the listener's one
 *   error path (gateway-server.ts `fail`) decides from it whether an error is still an XML answer, the
 *   end of an already-started 200 XML body (a kept-alive Complete), or only a reset.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { GatewayError } from '../errors/gateway-error';
import type { Logger } from '../observability/logger';
import type { RequestTarget } from '../cdcs/request-target';
import { keepAliveAnswer, type KeepAliveAnswer } from '../http/keep-alive-answer';
import { markChunksMovable } from '../util/movable-chunks';
import { guardBody, type BodyFraming } from './body-guard';
import type { RequestHeaders } from './request-headers';

/** What the listener needs of a routed operation: its name (logs, metrics); dialects add their parameters. */
export interface NamedOperation {
  readonly name: string;
}

export interface BodyLimits {
  /** The body's declared length over this is EntityTooLarge before 100 Continue; a chunked body over it fails while read. */
  readonly maxBytes?: number;
}

export interface GatewayRequest<Operation extends NamedOperation = NamedOperation> {
  readonly id: string;
  /** The caller's W3C trace id (one valid `traceparent`), else a fresh one. */
  readonly traceId: string;
  readonly method: string;
  /** Every header field, read once from rawHeaders (duplicates visible). */
  readonly headers: RequestHeaders;
  /** The request target as the client sent it, parsed once: authentication verifies it, the operation acts on it. */
  readonly target: RequestTarget;
  readonly operation: Operation;
  /** How the body is framed (already validated: a PUT has a Content-Length). */
  readonly framing: BodyFraming;
  /** The client sent `Expect: 100-continue` and sends no body before `acceptBody`. */
  readonly expectContinue: boolean;
  /** Carries the request id. */
  readonly log: Logger;
  /** The TCP peer's address (a coffer policy's `qcs:ip`); forwarding headers are never trusted for it. */
  readonly remoteAddress?: string;
  /** Who the request was authenticated as (set by authentication; the audit line names it). */
  principal: string | undefined;
  /**
   * Accepts the body: refuses a declared length over `maxBytes` (EntityTooLarge, nothing sent yet),
   * then sends `100 Continue` if the client waits for it, and returns the body guarded (idle timeout,
   * minimum rate, short body → GatewayError). At most once per request.
   */
  acceptBody(limits?: BodyLimits): Readable;
  /** Body bytes read so far. */
  readonly bodyBytesRead: number;
}

/** The listener's body guard settings (server.* configuration). */
export interface BodyGuardSettings {
  readonly idleTimeoutMs: number;
  readonly minRate: { readonly bytesPerSecond: number; readonly graceMs: number };
}

export function createGatewayRequest<Operation extends NamedOperation>(
  req: IncomingMessage,
  fields: Omit<GatewayRequest<Operation>, 'acceptBody' | 'bodyBytesRead' | 'principal'>,
  guard: BodyGuardSettings,
  writeContinue: () => void,
): GatewayRequest<Operation> {
  let body: { readonly bytesReceived: number } | undefined;
  return {
    ...fields,
    principal: undefined,
    get bodyBytesRead() {
      return body?.bytesReceived ?? 0;
    },
    acceptBody(limits = {}) {
      if (body !== undefined) throw new GatewayError('InternalError', 'The request body was accepted twice.');
      // The guard refuses a declared length over maxBytes as it is built (nothing is read until its
      // consumer asks), so the 100 below goes out only to a body within the limit.
      const guarded = guardBody(req, { idleTimeoutMs: guard.idleTimeoutMs, framing: fields.framing, minRate: guard.minRate, ...(limits.maxBytes === undefined ? {} : { maxBytes: limits.maxBytes }) });
      body = guarded; // counts the bytes (a 'data' listener here would start the flow before the consumer attaches)
      writeContinue();
      // The parser gives each body piece a fresh buffer that only this stream hands on: the encryptor may move them (src/util/movable-chunks.ts).
      return markChunksMovable(guarded);
    },
  };
}

/**
 * The answer side. Its writers count the body bytes sent (the audit line's bytes out); `raw` is the
 * Node response for what they do not cover.
 */
export class GatewayResponse {
  #bytesWritten = 0;
  #keepAlive: KeepAliveAnswer | undefined;

  constructor(
    readonly raw: ServerResponse,
    private readonly method: string,
  ) {}

  /** The status line is out: the status can no longer change. */
  get committed(): boolean {
    return this.raw.headersSent;
  }

  /** The status line is out but the 200 XML body is still open (a kept-alive answer): an error can end it as an `<Error>` document. */
  get errorFitsInBody(): boolean {
    return this.#keepAlive?.committed === true && !this.raw.writableEnded && !this.raw.destroyed;
  }

  /** Body bytes sent so far. */
  get bodyBytesWritten(): number {
    return this.#bytesWritten;
  }

  /** A whole answer with its Content-Length (no body on HEAD, as RFC 9110 §9.3.2 says). */
  send(status: number, headers: Readonly<Record<string, string | number>>, body?: string | Buffer): void {
    const bytes = body === undefined ? undefined : typeof body === 'string' ? Buffer.from(body) : body;
    const lengthHeader = bytes === undefined ? {} : { 'content-length': bytes.length };
    this.raw.writeHead(status, { ...headers, ...lengthHeader });
    if (bytes === undefined || this.method === 'HEAD') {
      this.raw.end();
      return;
    }
    this.#bytesWritten += bytes.length;
    this.raw.end(bytes);
  }

  /** Streams `chunks` after the status line; the client going away is ClientClosedRequest (the pipeline has released the source). */
  async stream(status: number, headers: Readonly<Record<string, string | number>>, chunks: AsyncIterable<Buffer>): Promise<void> {
    this.raw.writeHead(status, headers);
    const counted = async function* (this: GatewayResponse): AsyncGenerator<Buffer> {
      for await (const chunk of chunks) {
        this.#bytesWritten += chunk.length;
        yield chunk;
      }
    }.call(this);
    try {
      await pipeline(Readable.from(counted), this.raw);
    } catch (error) {
      // The client went away (or was reset for not reading): this is the client's doing, not a
      // gateway failure. Integrity and upstream errors pass.
      if ((error as NodeJS.ErrnoException).code === 'ERR_STREAM_PREMATURE_CLOSE') throw new GatewayError('ClientClosedRequest', undefined, { cause: error });
      throw error;
    }
  }

  /**
   * Runs slow `work` that ends in an XML document, keeping the connection alive meanwhile
   * (src/http/keep-alive-answer.ts): past `intervalMs` the answer commits to 200 and sends
   * whitespace. If `work` fails after that commit, the error is rethrown with `errorFitsInBody` set,
   * so the listener ends the body with the rendered `<Error>`.
   */
  async keepAliveWhile(intervalMs: number, work: (keptAlive: () => boolean) => Promise<string>, onCommit?: () => void): Promise<void> {
    const keepAlive = keepAliveAnswer(this.raw, intervalMs, onCommit);
    this.#keepAlive = keepAlive;
    keepAlive.begin();
    let document: string;
    try {
      document = await work(() => keepAlive.committed);
    } catch (error) {
      keepAlive.cancel();
      throw error;
    }
    this.#bytesWritten += Buffer.byteLength(document);
    keepAlive.end(document, 200);
  }

  /** Ends a kept-alive 200 body with an error document (only when `errorFitsInBody`). */
  endBodyWithError(document: string): void {
    this.#bytesWritten += Buffer.byteLength(document);
    this.#keepAlive?.end(document, 200);
  }
}
