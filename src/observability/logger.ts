/**
 * Structured JSON logs (pino). Every request logs through a child logger carrying its request id.
 * Secrets never reach a log line by construction: callers log only the fields below, and pino's
 * redaction removes the known secret-bearing paths as a second line of defence.
 */
import pino, { type Logger } from 'pino';

export type { Logger } from 'pino';

export const REDACTED_PATHS = [
  'authorization',
  'headers.authorization',
  'headers["x-cos-security-token"]',
  'headers["x-cdcs-security-token"]',
  'req.headers.authorization',
  'query',
  'secretKey',
  'secretAccessKey',
  'sessionToken',
  'token',
  'dataKey',
  'plaintext',
  '*.secretKey',
  '*.secretAccessKey',
  '*.sessionToken',
];

export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'coffer-gateway' },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
      formatters: { level: (label) => ({ level: label }) },
    },
    destination,
  );
}

/** An unexpected error for a log line: its class and message only (no stack, no attached request or response objects). */
export function describeError(error: unknown): { name: string; message: string } {
  return error instanceof Error ? { name: error.name, message: error.message } : { name: typeof error, message: String(error) };
}
