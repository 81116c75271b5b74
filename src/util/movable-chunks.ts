/**
 * A mark on a stream whose chunks nobody looks at or reuses once they are read, so its consumer may
 * move them to another thread (transfer their memory, leaving them empty) instead of copying them.
 *
 * Why a mark and not a convention: moving detaches the chunk for everyone who still holds it. A
 * request body qualifies by construction — Node's HTTP parser delivers every body piece in a fresh
 * buffer that only the body stream hands on — so the server marks it where it wraps the request
 * (src/server/gateway-exchange.ts); any other stream, and anything derived from one (a decoder, a
 * test's buffers), is unmarked and copied.
 */
import type { Readable } from 'node:stream';

const MOVABLE_CHUNKS = Symbol('coffer-gateway.movable-chunks');

type Marked = Readable & { [MOVABLE_CHUNKS]?: true };

/** Marks `stream` (and returns it): its chunks are its consumer's to move once read. */
export function markChunksMovable<T extends Readable>(stream: T): T {
  (stream as Marked)[MOVABLE_CHUNKS] = true;
  return stream;
}

/** Whether `stream` was marked by markChunksMovable. */
export function chunksAreMovable(stream: Readable): boolean {
  return (stream as Marked)[MOVABLE_CHUNKS] === true;
}
