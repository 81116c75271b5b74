import { ERROR_CATALOGUE, type ErrorCode, type Fault } from './error-catalogue';

/**
 * The only error type stages throw on purpose. `message` is safe to show to the client; `reason`
 * is a short machine-readable word (e.g. `throttled`, `access-denied`) for logs, metrics and the
 * 409 bodies of KMSFailed / AssumeRoleFailed. Neither may contain a secret.
 */
export class GatewayError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly fault: Fault;
  readonly reason: string | undefined;
  /** Headers the answer must carry besides the rendered ones (a 416's `Content-Range`, a 503's `Retry-After`); never a secret. */
  readonly headers: Readonly<Record<string, string>>;

  constructor(code: ErrorCode, message?: string, options?: { reason?: string; cause?: unknown; headers?: Readonly<Record<string, string>> }) {
    super(message ?? ERROR_CATALOGUE[code].message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'GatewayError';
    this.code = code;
    this.status = ERROR_CATALOGUE[code].status;
    this.fault = ERROR_CATALOGUE[code].fault;
    this.reason = options?.reason;
    this.headers = options?.headers ?? {};
  }
}

export function isGatewayError(value: unknown): value is GatewayError {
  return value instanceof GatewayError;
}
