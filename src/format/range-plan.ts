/**
 * Maps a plaintext byte range of an object to the upstream byte ranges that hold it
 * (docs/FORMAT.md §7). Only the segments that contain requested bytes are read: at most the part of
 * one segment before the range and one after it. Adjacent reads are merged, so an object stored in
 * part order is read with one upstream request per range. Pure: the manifest in, a plan out.
 */
import type { ManifestPart, ObjectManifest } from './manifest';
import { SEGMENT_SIZE, partCiphertextLength, segmentCiphertextOffset, segmentPlaintextLength, TAG_SIZE } from './part-format';

export interface PartRead {
  readonly part: ManifestPart;
  readonly firstSegment: number;
  readonly lastSegment: number;
  /** The read starts at the part header (firstSegment 0): it is read too, so its commitment is checked and reads of consecutive parts merge. */
  readonly withHeader: boolean;
  /** Upstream (data object) byte range of those segments; end exclusive. */
  readonly upstreamStart: number;
  readonly upstreamEnd: number;
  /** Plaintext bytes to drop from the first segment and to emit in total. */
  readonly skip: number;
  readonly take: number;
}

export interface UpstreamRead {
  readonly upstreamStart: number;
  readonly upstreamEnd: number;
  readonly parts: readonly PartRead[];
}

/** Plans the read of plaintext bytes [start, end] (inclusive, as in HTTP Range) of a non-empty range. */
export function planRange(manifest: Pick<ObjectManifest, 'parts' | 'plaintextSize'>, start: number, end: number): PartRead[] {
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0 || end < start || end >= manifest.plaintextSize) {
    throw new RangeError(`range ${start}-${end} outside object of ${manifest.plaintextSize} bytes`);
  }
  const reads: PartRead[] = [];
  let partStart = 0;
  for (const part of manifest.parts) {
    const partEnd = partStart + part.plaintextLength - 1;
    // An empty part inside the range is read too (116 bytes): it keeps the upstream read contiguous and gets verified.
    const emptyInside = part.plaintextLength === 0 && partStart > start && partStart <= end;
    if (emptyInside) {
      reads.push({ part, firstSegment: 0, lastSegment: 0, withHeader: true, upstreamStart: part.offset, upstreamEnd: part.offset + partCiphertextLength(0), skip: 0, take: 0 });
    } else if (part.plaintextLength > 0 && partEnd >= start && partStart <= end) {
      const from = Math.max(start, partStart) - partStart;
      const to = Math.min(end, partEnd) - partStart;
      const firstSegment = Math.floor(from / SEGMENT_SIZE);
      const lastSegment = Math.floor(to / SEGMENT_SIZE);
      reads.push({
        part,
        firstSegment,
        lastSegment,
        withHeader: firstSegment === 0,
        upstreamStart: firstSegment === 0 ? part.offset : part.offset + segmentCiphertextOffset(firstSegment),
        upstreamEnd: part.offset + segmentCiphertextOffset(lastSegment) + segmentPlaintextLength(part.plaintextLength, lastSegment) + TAG_SIZE,
        skip: from - firstSegment * SEGMENT_SIZE,
        take: to - from + 1,
      });
    }
    if (partStart > end) break;
    partStart += part.plaintextLength;
  }
  return reads;
}

/** Groups part reads whose upstream ranges touch into single upstream requests, preserving order. */
export function mergeUpstreamReads(reads: readonly PartRead[]): UpstreamRead[] {
  const merged: Array<{ upstreamStart: number; upstreamEnd: number; parts: PartRead[] }> = [];
  for (const read of reads) {
    const last = merged[merged.length - 1];
    if (last !== undefined && last.upstreamEnd === read.upstreamStart) {
      last.upstreamEnd = read.upstreamEnd;
      last.parts.push(read);
    } else {
      merged.push({ upstreamStart: read.upstreamStart, upstreamEnd: read.upstreamEnd, parts: [read] });
    }
  }
  return merged;
}
