/**
 * A logger destination that keeps every line a test's gateway writes, for assertions on what was
 * (and was not) logged. pino hands its destination whole lines; a write may still carry several.
 */
import type { DestinationStream } from 'pino';

export interface LogLines {
  /** Every non-empty line, in order, as written. */
  readonly lines: string[];
  /** Pass to createLogger(level, sink). */
  readonly sink: DestinationStream;
  /** The lines parsed as JSON objects (pino's format). */
  records<T = Record<string, unknown>>(): T[];
}

export function collectLogLines(): LogLines {
  const lines: string[] = [];
  return {
    lines,
    sink: {
      write(chunk: string): void {
        for (const line of chunk.split('\n')) if (line !== '') lines.push(line);
      },
    },
    records: <T>() => lines.map((line) => JSON.parse(line) as T),
  };
}
