/**
 * The one wrapper every answered request passes through (the listener reports each request exactly
 * once, refusals before the handler and malformed HTTP included: src/server/gateway-server.ts
 * `AnsweredRequest`). From that single report come:
 *
 * - the access/audit line, one per request at `info` (`error` for a server fault, with the error's
 *   class and message): who (principal), what (operation, coffer, key), the outcome (status, code,
 *   reason), bytes in and out, duration, request and trace id. Never a secret: no header value, no
 *   query string, no body — only fields the gateway itself parsed or decided.
 * - `requests_total` and the duration histogram by operation, code, HTTP status and coffer; the
 *   plaintext byte counters by operation and coffer; integrity failures and upstream errors.
 *
 * The `coffer` label is bounded by construction: a configured coffer's name, `-` when the request
 * named none (GetService, refusals before routing), and `other` for any name the gateway does not
 * serve (so a client cannot mint label values).
 */
import type { AnsweredRequest } from '../server/gateway-server';
import type { Logger } from './logger';
import type { GatewayMetrics } from './metrics';

/** The `coffer` label of a request that named a coffer the gateway does not serve. */
export const UNSERVED_COFFER_LABEL = 'other';
/** The `coffer` label of a request that named no coffer. */
export const NO_COFFER_LABEL = '-';
/** The `operation` label of a request refused before it was routed. */
export const UNROUTED_OPERATION_LABEL = 'Unknown';

const UPSTREAM_CODES: ReadonlySet<string> = new Set(['BadGateway', 'ServiceUnavailable', 'GatewayTimeout']);

export interface RequestObserverOptions {
  readonly log: Logger;
  readonly metrics?: GatewayMetrics;
  /** The coffers the gateway serves (the `coffer` label's values). */
  readonly coffers?: ReadonlySet<string>;
  /** Operations whose request body is object data (plaintext bytes in), and those whose answer body is (bytes out). */
  readonly objectData?: { readonly in: ReadonlySet<string>; readonly out: ReadonlySet<string> };
}

export function cofferLabel(coffer: string | undefined, served: ReadonlySet<string>): string {
  if (coffer === undefined) return NO_COFFER_LABEL;
  return served.has(coffer) ? coffer : UNSERVED_COFFER_LABEL;
}

export function createRequestObserver(options: RequestObserverOptions): (answered: AnsweredRequest) => void {
  const { log, metrics } = options;
  const served = options.coffers ?? new Set<string>();
  const objectData = options.objectData ?? { in: new Set<string>(), out: new Set<string>() };
  return (answered) => {
    const operation = answered.operation ?? UNROUTED_OPERATION_LABEL;
    const coffer = cofferLabel(answered.coffer, served);
    if (metrics !== undefined) {
      const labels = { operation, code: answered.code, status: String(answered.status), coffer };
      metrics.requests.inc(labels);
      metrics.requestSeconds.observe(labels, answered.durationSeconds);
      if (answered.code === 'OK') {
        if (objectData.in.has(operation)) metrics.bytesIn.inc({ operation, coffer }, answered.bytesIn);
        if (objectData.out.has(operation)) metrics.bytesOut.inc({ operation, coffer }, answered.bytesOut);
      }
      if (answered.code === 'IntegrityCheckFailed') metrics.integrityFailures.inc({ reason: answered.reason ?? 'unknown' });
      // Only routed requests reached an upstream: a 503 while shutting down is not an upstream error.
      if (answered.operation !== undefined && UPSTREAM_CODES.has(answered.code)) metrics.upstreamErrors.inc({ code: answered.code });
    }
    const line = {
      requestId: answered.requestId,
      traceId: answered.traceId,
      principal: answered.principal,
      method: answered.method,
      operation,
      coffer: answered.coffer,
      key: answered.key,
      status: answered.status,
      code: answered.code,
      ...(answered.reason === undefined ? {} : { reason: answered.reason }),
      ...(answered.error === undefined ? {} : { err: answered.error }),
      bytesIn: answered.bytesIn,
      bytesOut: answered.bytesOut,
      durationMs: Math.round(answered.durationSeconds * 1000),
    };
    if (answered.fault !== 'server') log.info(line, 'request');
    else if (answered.code === 'IntegrityCheckFailed') log.error(line, 'stored data failed authentication');
    else log.error(line, 'request failed');
  };
}
