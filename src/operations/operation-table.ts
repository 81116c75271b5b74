/**
 * The operation table: what the gateway does for each operation, independent of the protocol dialect
 * that named it. Each entry is `{prepare, run}`:
 *
 * - `prepare` decides everything that can refuse the request without its body — parameters and
 *   headers, size limits, the upload or object record, the data key — and cannot reach the body: it
 *   is not given one. So "decided before the body" holds by construction, and `Expect: 100-continue`
 *   is answered (by `acceptBody`) only after `prepare` returned.
 * - `run` gets what `prepare` returned and the accepted body (for entries that declare `body`), does
 *   the work and returns an `Answer`: data, never bytes on the wire. The pipeline
 *   (run-operation.ts) writes it, with the dialect's renderer turning result documents into XML.
 * - `release` (optional) gives back what `prepare` holds (a data key), whether `run` ran or not.
 *
 * A dialect (CDCS today: src/cdcs/cdcs-dialect.ts; S3 XML next) is its router, its authenticator, its
 * renderer and its table; the pipeline, the listener, the store and the audit wrapper are shared.
 */
import type { Readable } from 'node:stream';
import type { Action, Principal } from '../auth/principal';
import type { RenderedError, ErrorContext } from '../errors/render-error';
import type { GatewayRequest, NamedOperation, BodyLimits } from '../server/gateway-exchange';
import type { RequestRouter } from '../server/gateway-server';
import type { CofferContext } from '../store/coffer-context';
import type { OperationResult } from './operation-results';

export type AnswerHeaders = Readonly<Record<string, string | number>>;

export type Answer =
  /** Status and headers only (a part's ETag, a 204, a 304, a HEAD). */
  | { readonly kind: 'empty'; readonly status: number; readonly headers?: AnswerHeaders }
  /** A result document, rendered by the dialect (XML). */
  | { readonly kind: 'document'; readonly status: number; readonly result: OperationResult; readonly headers?: AnswerHeaders }
  /** Object data streamed after the status line; `headers` carry its Content-Length. */
  | { readonly kind: 'object'; readonly status: number; readonly headers: AnswerHeaders; readonly chunks: AsyncIterable<Buffer> }
  /**
   * Slow work that ends in a result document (Complete's assembly): the HTTP layer keeps the
   * connection alive while it runs (a 200 committed early, whitespace; src/http/keep-alive-answer.ts).
   */
  | { readonly kind: 'kept-alive'; readonly work: (keptAlive: () => boolean) => Promise<OperationResult> };

/** What an entry is called with: the request, the routed operation, and — for coffer operations — the authorized coffer. */
export interface OperationCall<Operation extends NamedOperation> {
  readonly request: GatewayRequest<Operation>;
  readonly operation: Operation;
  readonly principal: Principal;
  /** The coffer's keys, store and layout (coffer-scoped entries only). */
  readonly context: CofferContext;
  /** The coffer and (for object operations) the key the target named. */
  readonly coffer: string;
  readonly key: string;
}

export interface OperationEntry<Operation extends NamedOperation, Prepared> {
  /** What authorization must allow (`read`, `write`, `list`). */
  readonly action: Action;
  /** `service`: no coffer (GetService; `context` is absent, authorization is the entry's business). `coffer`: authorized, context built, role assumed before `prepare`. */
  readonly scope: 'service' | 'coffer';
  /** The body `run` reads; absent = none is accepted. `objectData`: it is plaintext object data (metrics). */
  readonly body?: BodyLimits & { readonly objectData: boolean };
  /** The answer's body is plaintext object data (metrics). */
  readonly objectDataOut?: boolean;
  prepare(call: OperationCall<Operation>): Promise<Prepared>;
  run(prepared: Prepared, body: Readable | undefined, call: OperationCall<Operation>): Promise<Answer>;
  release?(prepared: Prepared): void;
}

/** One entry per operation name of the dialect's routed operations. */
export type OperationTable<Operation extends NamedOperation> = {
  readonly [Name in Operation['name']]: OperationEntry<Extract<Operation, { readonly name: Name }>, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- each entry's own Prepared type is checked where the entry is written (`operation()`)
};

/** Writes an entry with its `Prepared` type inferred and checked between `prepare`, `run` and `release`. */
export function operation<Operation extends NamedOperation, Prepared>(entry: OperationEntry<Operation, Prepared>): OperationEntry<Operation, Prepared> {
  return entry;
}

/** A protocol dialect: how requests are routed, who sent them, how answers and errors look. */
export interface Dialect<Operation extends NamedOperation> {
  readonly router: RequestRouter<Operation>;
  readonly operations: OperationTable<Operation>;
  /** Verifies the request's credentials (COS signature or JWT for CDCS; SigV4 for S3). */
  authenticate(request: GatewayRequest<Operation>): Promise<Principal>;
  /** A result document as the dialect's XML (declaration included). */
  renderResult(result: OperationResult): string;
  /** An error as the dialect's XML answer (the listener calls it, from its one error path). */
  renderError(error: unknown, context: ErrorContext): RenderedError;
}
