/**
 * Maps every way an upstream call can fail onto the port's two error types (see upstream-store.ts).
 * Messages name the upstream error code and HTTP status only: never the URL, the key, a credential or
 * the upstream's own message (which may echo request details).
 */
import { NETWORK_CODES as AWS_NETWORK_CODES, TIMEOUT_CODES as AWS_TIMEOUT_CODES, TIMEOUT_NAMES as AWS_TIMEOUT_NAMES } from '../util/aws-errors';
import { GatewayError } from '../errors/gateway-error';
import { UpstreamNotFoundError, UpstreamPreconditionFailedError, type UpstreamNotFoundKind } from './upstream-store';

const NOT_FOUND: Readonly<Record<string, UpstreamNotFoundKind>> = {
  NoSuchKey: 'NoSuchKey',
  NotFound: 'NoSuchKey', // HEAD has no body: the SDK names a 404 "NotFound"
  NoSuchUpload: 'NoSuchUpload',
  NoSuchBucket: 'NoSuchBucket',
};

// The socket-level and timeout codes of every AWS call, plus what a streamed body can die of.
const NETWORK_CODES: ReadonlySet<string> = new Set([...AWS_NETWORK_CODES, 'ERR_STREAM_PREMATURE_CLOSE', 'HPE_INVALID_CONSTANT']);
const TIMEOUT_CODES: ReadonlySet<string> = new Set([...AWS_TIMEOUT_CODES, ...AWS_TIMEOUT_NAMES]);

function field(value: unknown, key: string): unknown {
  return typeof value === 'object' && value !== null ? (value as Record<string, unknown>)[key] : undefined;
}

/** An error answer of the upstream: its XML `<Code>` (or a stand-in) and its HTTP status. */
export function mapUpstreamResponse(code: string | undefined, status: number, cause?: unknown): Error {
  const name = code !== undefined && /^[A-Za-z0-9.]{1,64}$/.test(code) ? code : `HTTP${status}`;
  const notFound = NOT_FOUND[name] ?? (status === 404 && code === undefined ? 'NoSuchKey' : undefined);
  if (notFound !== undefined) return new UpstreamNotFoundError(notFound);
  if (name === 'PreconditionFailed' || status === 412) return new UpstreamPreconditionFailedError();
  const options = { reason: `upstream-${name}`, cause };
  const message = `The upstream object store answered ${name} (HTTP ${status}).`;
  if (name === 'SlowDown' || status === 503) return new GatewayError('ServiceUnavailable', message, options);
  if (name === 'RequestTimeout' || status === 504) return new GatewayError('GatewayTimeout', message, options);
  return new GatewayError('BadGateway', message, options);
}

/** A failure without an upstream answer: connection refused/reset, DNS, timeout. */
export function mapTransportError(error: unknown): GatewayError {
  const code = field(error, 'code');
  const name = field(error, 'name');
  const message = field(error, 'message');
  const label = typeof code === 'string' ? code : typeof name === 'string' ? name : 'Error';
  if (TIMEOUT_CODES.has(label) || (typeof name === 'string' && TIMEOUT_CODES.has(name)) || (typeof message === 'string' && /\bETIMEDOUT\b|timed? ?out/i.test(message))) {
    return new GatewayError('GatewayTimeout', 'The upstream object store did not answer in time.', { reason: 'upstream-timeout', cause: error });
  }
  let errno = NETWORK_CODES.has(label) ? label : undefined;
  if (errno === undefined && typeof message === 'string') {
    // The SDK re-wraps socket errors from another realm (Jest) and drops `code`; recover it.
    errno = /\b(ECONNRESET|ECONNREFUSED|EPIPE|ENOTFOUND|EAI_AGAIN|EHOSTUNREACH|ENETUNREACH|ENETDOWN|ECONNABORTED)\b/.exec(message)?.[1];
    if (errno === undefined && /socket hang up/i.test(message)) errno = 'ECONNRESET';
  }
  return new GatewayError('BadGateway', `The upstream object store could not be reached (${errno ?? 'network error'}).`, { reason: `upstream-${errno ?? 'network'}`, cause: error });
}

/** Maps anything an SDK `send` (or a streamed request) threw. Port errors pass through untouched. */
export function mapUpstreamError(error: unknown): Error {
  if (error instanceof GatewayError || error instanceof UpstreamNotFoundError || error instanceof UpstreamPreconditionFailedError) return error;
  const status = field(field(error, '$metadata'), 'httpStatusCode');
  if (typeof status === 'number' && field(error, '$fault') !== undefined) {
    const name = field(error, 'Code') ?? field(error, 'name');
    return mapUpstreamResponse(typeof name === 'string' && name !== 'Unknown' && name !== 'UnknownError' ? name : undefined, status, error);
  }
  return mapTransportError(error);
}
