/**
 * Write-side idle detection: a client that stops reading a response (a large GET, or any answer) fills
 * the socket buffers, the producer waits for a `drain` that never comes, and the connection — and the
 * upstream stream feeding it — would be held forever (the server deliberately has no socket inactivity
 * timeout: a long Complete or a slow upstream legitimately sends nothing for a while).
 *
 * So "idle" here means exactly: output is waiting in the socket and none of it was flushed for
 * `timeoutMs`. Progress is measured as `bytesWritten - writableLength` (bytes the kernel accepted),
 * which only grows; a socket with nothing pending is never idle. Checked by a periodic sweep rather than
 * a timer per write: writes are frequent, stalls rare.
 */

/** What the tracker reads from a socket; net.Socket and tls.TLSSocket both have it. */
export interface SocketWriteState {
  /** Bytes handed to the socket so far (flushed or still buffered). */
  readonly bytesWritten: number;
  /** Bytes handed to the socket and not yet flushed to the kernel. */
  readonly writableLength: number;
}

interface Observation {
  readonly flushed: number;
  readonly since: number;
}

export class WriteStallTracker {
  private readonly observations = new WeakMap<object, Observation>();

  constructor(
    private readonly timeoutMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * True when `socket` has had output pending, with not one more byte flushed, for at least timeoutMs.
   * The stall is timed from the first check that saw it, so it never fires early; it fires at most one
   * check interval late.
   */
  stalled(socket: SocketWriteState & object): boolean {
    const pending = socket.writableLength;
    if (!(pending > 0)) {
      this.observations.delete(socket);
      return false;
    }
    const flushed = socket.bytesWritten - pending;
    const seen = this.observations.get(socket);
    const t = this.now();
    if (seen === undefined || seen.flushed !== flushed) {
      this.observations.set(socket, { flushed, since: t });
      return false;
    }
    return t - seen.since >= this.timeoutMs;
  }

  forget(socket: object): void {
    this.observations.delete(socket);
  }
}

/** How often to sweep for a given timeout: a tenth of it, between 100 ms and 5 s. */
export function sweepIntervalMs(timeoutMs: number): number {
  return Math.max(100, Math.min(5_000, Math.floor(timeoutMs / 10)));
}
