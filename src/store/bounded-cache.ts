/**
 * A small LRU cache with a byte budget and a time-to-live, for immutable values fetched from the
 * upstream (manifests, listing summaries). Pure: the clock is injected.
 *
 * Why a TTL for immutable values: objects never change, but lifecycle rules expire them upstream;
 * the TTL bounds how long a replica may keep answering from a manifest that is gone.
 */
export interface BoundedCacheOptions {
  /** Sum of entry sizes (as reported by `sizeOf`) kept at most. */
  readonly maxBytes: number;
  readonly ttlMs: number;
  readonly now?: () => number;
}

interface Slot<V> {
  readonly value: V;
  readonly bytes: number;
  readonly expires: number;
}

export class BoundedCache<V> {
  private readonly slots = new Map<string, Slot<V>>();
  private bytes = 0;
  private readonly now: () => number;

  constructor(
    private readonly options: BoundedCacheOptions,
    private readonly sizeOf: (value: V) => number,
  ) {
    this.now = options.now ?? Date.now;
  }

  get(key: string): V | undefined {
    const slot = this.slots.get(key);
    if (slot === undefined) return undefined;
    if (slot.expires <= this.now()) {
      this.delete(key);
      return undefined;
    }
    // Re-insert: Map iteration order is insertion order, so the first key is the least recently used.
    this.slots.delete(key);
    this.slots.set(key, slot);
    return slot.value;
  }

  set(key: string, value: V): void {
    this.delete(key);
    const bytes = this.sizeOf(value);
    if (bytes > this.options.maxBytes) return; // never worth evicting everything for one entry
    this.slots.set(key, { value, bytes, expires: this.now() + this.options.ttlMs });
    this.bytes += bytes;
    for (const [oldest, slot] of this.slots) {
      if (this.bytes <= this.options.maxBytes) break;
      this.slots.delete(oldest);
      this.bytes -= slot.bytes;
    }
  }

  delete(key: string): void {
    const slot = this.slots.get(key);
    if (slot === undefined) return;
    this.slots.delete(key);
    this.bytes -= slot.bytes;
  }

  get size(): number {
    return this.slots.size;
  }

  get totalBytes(): number {
    return this.bytes;
  }
}
