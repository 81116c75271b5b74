/**
 * The cap on part bodies (UploadPart and PutObject) being received at once, so that a burst of
 * concurrent uploads gets 503 SlowDown instead of growing the gateway past its memory limit (an OOM
 * kill loses every upload in progress). The decision is made in the operation's preparation, before
 * `100 Continue` and before any body byte is read: a refused client has sent nothing but headers.
 *
 * The cap is `server.maxPartsInFlight` when configured; otherwise it is derived from the memory the
 * process may use (the container's cgroup limit, or the host's memory without one):
 *
 *   cap = max(1, floor((limit × MEMORY_HEADROOM − IDLE_RSS_BYTES) / BYTES_PER_PART_IN_FLIGHT))
 *
 * with the figures measured by `npm run bench` (docs/operations/sizing.md explains them).
 */
import { readFileSync } from 'node:fs';
import { totalmem } from 'node:os';
import { GatewayError } from '../errors/gateway-error';

const MiB = 1024 * 1024;
/** Share of the memory limit the gateway plans to use (the rest: GC slack, the read path, TLS, the allocator). */
export const MEMORY_HEADROOM = 0.8;
/** RSS of a gateway at rest, rounded up (the bench measures 84–86 MB, ~100 MB with two crypto workers running). */
export const IDLE_RSS_BYTES = 128 * MiB;
/**
 * Memory per part being received, rounded up with margin: the bench's 32 concurrent 64 MiB parts peak
 * at ~204–230 MB, ~4 MB each above idle (shared crypto blocks, ciphertext waiting for the upstream
 * socket, socket buffers, dead reads awaiting collection); earlier versions reached ~9 MB.
 */
export const BYTES_PER_PART_IN_FLIGHT = 10 * MiB;
/** Seconds a refused client is told to wait (`Retry-After`); SDKs back off further on their own. */
export const RETRY_AFTER_SECONDS = 1;

/** Where the memory limit came from, for the startup log and the docs. */
export type MemoryLimitSource = 'cgroup-v2' | 'cgroup-v1' | 'host';

/** cgroup files that hold the container's memory limit (v2, then v1); a value of "max" or a huge number means none. */
const CGROUP_FILES: ReadonlyArray<readonly [string, MemoryLimitSource]> = [
  ['/sys/fs/cgroup/memory.max', 'cgroup-v2'],
  ['/sys/fs/cgroup/memory/memory.limit_in_bytes', 'cgroup-v1'],
];
/** cgroup v1 reports "no limit" as a page-rounded 2^63 − 1; anything at or above the host's memory is no limit either. */
const readLimit = (text: string, host: number): number | undefined => {
  const value = text.trim();
  if (value === 'max' || !/^\d+$/.test(value)) return undefined;
  const bytes = Number(value);
  return bytes > 0 && bytes < host ? bytes : undefined;
};

/** The memory this process may use: the cgroup limit when there is one, else the host's memory. */
export function memoryLimit(read: (path: string) => string = (path) => readFileSync(path, 'utf8'), host = totalmem()): { bytes: number; source: MemoryLimitSource } {
  for (const [path, source] of CGROUP_FILES) {
    let text: string;
    try {
      text = read(path);
    } catch {
      continue; // not this cgroup version (or no cgroup file system)
    }
    const bytes = readLimit(text, host);
    if (bytes !== undefined) return { bytes, source };
  }
  return { bytes: host, source: 'host' };
}

/** The cap for a memory limit (the module comment's formula). */
export function derivedPartsInFlight(limitBytes: number): number {
  return Math.max(1, Math.floor((limitBytes * MEMORY_HEADROOM - IDLE_RSS_BYTES) / BYTES_PER_PART_IN_FLIGHT));
}

/** A place among the parts in flight; `release` is idempotent (the upload's end and the response's close may both call it). */
export interface PartSlot {
  release(): void;
}

/** Counts part bodies in flight against the cap; `admit` refuses beyond it with 503 SlowDown. */
export class PartsInFlight {
  private inFlight = 0;

  constructor(readonly limit: number) {
    if (!Number.isInteger(limit) || limit < 1) throw new RangeError('the cap on parts in flight must be a positive integer');
  }

  get current(): number {
    return this.inFlight;
  }

  /** Takes a slot, or throws SlowDown (503, Retry-After) when every slot is taken. */
  admit(): PartSlot {
    if (this.inFlight >= this.limit) {
      throw new GatewayError('SlowDown', `The gateway is receiving ${this.limit} part bodies at once, its limit for the memory it may use; retry shortly.`, {
        reason: 'parts-in-flight',
        headers: { 'retry-after': String(RETRY_AFTER_SECONDS) },
      });
    }
    this.inFlight += 1;
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        this.inFlight -= 1;
      },
    };
  }
}
