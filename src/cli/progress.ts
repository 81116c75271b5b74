/**
 * A one-line progress bar on stderr, drawn only when stderr is a terminal (a log file or a pipe gets
 * nothing, so scripts and CI see only the final summary). Hand-rolled: one redrawn `\r` line does not
 * justify a production dependency (README, "Command line", says which packages were considered).
 */
import type { OutputStream } from './cli-io';

export interface Progress {
  /** Adds to the amount done (bytes or objects). */
  advance(amount: number): void;
  /** Clears the line; call before printing anything else and at the end. */
  done(): void;
}

export interface ProgressOptions {
  readonly label: string;
  /** Unknown totals (e.g. a listing still being paged) draw a counter instead of a bar. */
  total?: number;
  readonly unit: 'bytes' | 'objects';
  readonly now?: () => number;
  /** Minimum time between redraws. */
  readonly intervalMs?: number;
}

export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value.toFixed(value < 10 ? 2 : 1)} ${units[unit]}`;
}

export function createProgress(stream: OutputStream, options: ProgressOptions): Progress & { total?: number } {
  if (stream.isTTY !== true) return { total: options.total, advance: () => undefined, done: () => undefined };
  const now = options.now ?? Date.now;
  const started = now();
  const interval = options.intervalMs ?? 100;
  let doneAmount = 0;
  let lastDraw = -Infinity;
  let drawn = false;
  const state = { total: options.total };
  const show = (amount: number): string => (options.unit === 'bytes' ? formatBytes(amount) : String(amount));
  const draw = (force: boolean): void => {
    const t = now();
    if (!force && t - lastDraw < interval) return;
    lastDraw = t;
    const seconds = Math.max((t - started) / 1000, 0.001);
    const rate = options.unit === 'bytes' ? `${formatBytes(doneAmount / seconds)}/s` : `${(doneAmount / seconds).toFixed(1)}/s`;
    const total = state.total;
    let line: string;
    if (total !== undefined && total > 0) {
      const fraction = Math.min(doneAmount / total, 1);
      const width = Math.max(10, Math.min(40, (stream.columns ?? 80) - options.label.length - 50));
      const filled = Math.round(fraction * width);
      line = `${options.label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${(fraction * 100).toFixed(0).padStart(3)}% ${show(doneAmount)}/${show(total)} ${rate}`;
    } else {
      line = `${options.label} ${show(doneAmount)} ${rate}`;
    }
    stream.write(`\r\x1b[K${line}`);
    drawn = true;
  };
  return Object.assign(state, {
    advance(amount: number): void {
      doneAmount += amount;
      draw(false);
    },
    done(): void {
      if (drawn) stream.write('\r\x1b[K');
      drawn = false;
    },
  });
}
