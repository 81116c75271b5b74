/**
 * Decrypts a plaintext byte range of a completed object, given its verified manifest and a way to
 * fetch upstream byte ranges. Reads only the covering segments (range-plan), one upstream request per
 * contiguous run, and yields plaintext only after each segment authenticated. A failure anywhere —
 * short upstream body, extra bytes, a segment that does not authenticate, a header that does not
 * match the manifest — throws an IntegrityError after the last verified byte.
 */
import type { ObjectManifest } from '../format/manifest';
import { mergeUpstreamReads, planRange, type PartRead } from '../format/range-plan';
import { IntegrityError } from '../format/integrity-error';
import { PartOpener } from './part-decryptor';

/** Fetches data-object bytes [start, endExclusive); must yield exactly that many bytes or fewer (never more on purpose). */
export type FetchUpstreamRange = (start: number, endExclusive: number) => Promise<AsyncIterable<Buffer | Uint8Array>>;

export interface ReadObjectRangeOptions {
  readonly manifest: ObjectManifest;
  readonly dataKey: Buffer;
  /** Inclusive plaintext range; defaults to the whole object. */
  readonly start?: number;
  readonly end?: number;
  readonly fetchRange: FetchUpstreamRange;
}

export async function* readObjectRange(options: ReadObjectRangeOptions): AsyncGenerator<Buffer> {
  const { manifest } = options;
  if (manifest.plaintextSize === 0) return;
  const start = options.start ?? 0;
  const end = options.end ?? manifest.plaintextSize - 1;
  for (const group of mergeUpstreamReads(planRange(manifest, start, end))) {
    const body = await options.fetchRange(group.upstreamStart, group.upstreamEnd);
    let index = 0;
    let current: OpenPart | undefined = openPart(options.dataKey, manifest.objectId, group.parts[0] as PartRead);
    for await (const raw of body) {
      let chunk = Buffer.isBuffer(raw) ? raw : Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
      while (chunk.length > 0) {
        if (current === undefined) throw new IntegrityError('trailing-data', 'upstream returned more bytes than requested');
        const take = Math.min(current.remaining, chunk.length);
        yield* current.feed(chunk.subarray(0, take));
        chunk = chunk.subarray(take);
        if (current.remaining === 0) {
          current.finish();
          index += 1;
          current = index < group.parts.length ? openPart(options.dataKey, manifest.objectId, group.parts[index] as PartRead) : undefined;
        }
      }
    }
    if (current !== undefined) {
      current.abandon();
      throw new IntegrityError('truncated', `upstream data ended early in part ${current.partNumber}`);
    }
  }
}

interface OpenPart {
  readonly partNumber: number;
  remaining: number;
  feed(chunk: Buffer): Generator<Buffer>;
  finish(): void;
  abandon(): void;
}

function openPart(dataKey: Buffer, objectId: Buffer, read: PartRead): OpenPart {
  const opener = new PartOpener({
    dataKey,
    expected: { objectId, partNumber: read.part.partNumber, plaintextLength: read.part.plaintextLength, salt: read.part.salt },
    withHeader: read.withHeader,
    firstSegment: read.firstSegment,
    lastSegment: read.lastSegment,
  });
  let skip = read.skip;
  let take = read.take;
  return {
    partNumber: read.part.partNumber,
    remaining: read.upstreamEnd - read.upstreamStart,
    *feed(chunk: Buffer): Generator<Buffer> {
      this.remaining -= chunk.length;
      for (const plaintext of opener.update(chunk)) {
        let out = plaintext;
        if (skip > 0) {
          const dropped = Math.min(skip, out.length);
          out = out.subarray(dropped);
          skip -= dropped;
        }
        if (out.length > take) out = out.subarray(0, take);
        take -= out.length;
        if (out.length > 0) yield out;
      }
    },
    finish(): void {
      opener.final();
    },
    abandon(): void {
      opener.wipe();
    },
  };
}
