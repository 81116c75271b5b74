/**
 * V8's garbage collector, called explicitly where the gateway knows better than V8's heuristics when
 * memory has turned into garbage (docs/development/benchmarks.md "Memory and the young generation").
 * node:v8 documents setting flags at run time; --expose-gc only makes gc() available to contexts
 * created afterwards, so the function comes from a fresh one (node:vm) and no Node flag is needed.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/** V8's gc() options: `last-resort` also compacts the heap, flushes bytecode and gives freed pages back to the system. */
interface GcOptions {
  readonly type: 'major' | 'minor';
  readonly flavor?: 'regular' | 'last-resort';
}

let gc: ((options: GcOptions) => void) | undefined;

function collector(): (options: GcOptions) => void {
  if (gc === undefined) {
    setFlagsFromString('--expose-gc');
    gc = runInNewContext('gc') as (options: GcOptions) => void;
  }
  return gc;
}

/**
 * A full, memory-reducing collection, once start-up is done. Why: building the gateway leaves ~6 MB of
 * garbage (the configuration's schema and parse, module bodies run once, their bytecode) in a heap V8
 * sized for it, and V8 neither collects it nor gives the pages back while the gateway idles (measured:
 * RSS unchanged after 40 s). This collection takes ~0.1–0.4 s once, before the listener accepts, and
 * lowers the idle RSS by ~8 MB; the few functions whose bytecode it flushed compile again on first use.
 */
export function releaseStartUpGarbage(): void {
  collector()({ type: 'major', flavor: 'last-resort' });
}
