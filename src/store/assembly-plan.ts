/**
 * How CompleteMultipartUpload turns the chosen part uploads into one upstream multipart object
 * (docs/FORMAT.md §8.3–§8.4). Pure: sizes and numbers in, a plan out.
 *
 * - A direct part (streamed straight into upstream part N) stays upstream part N: never copied again.
 * - Staged parts (below the upstream minimum) are concatenated, as stored, into upstream parts of at
 *   least `minPartSize`. A run of consecutive staged parts is split greedily into chunks ≥ min; the
 *   remainder joins the run's last chunk (chunks stay < 3·min ≤ max). Each chunk takes the upstream
 *   number of its first part, so the data object keeps the CDCS part order and a whole-object read is
 *   one upstream request.
 * - A run shorter than min that is followed by a direct part is padded with filler bytes (never read:
 *   the manifest records every part's offset). A run at the very end may be short: S3 lets the last
 *   part be small.
 */
import { partCiphertextLength } from '../format/part-format';

export interface ChosenPart {
  readonly partNumber: number;
  readonly plaintextLength: number;
  readonly storage: 'direct' | 'staged';
}

export type UpstreamPartPlan =
  | { readonly kind: 'direct'; readonly upstreamPartNumber: number; readonly partNumber: number; readonly size: number }
  | { readonly kind: 'staged'; readonly upstreamPartNumber: number; readonly partNumbers: readonly number[]; readonly filler: number; readonly size: number };

export interface AssemblyPlan {
  readonly upstreamParts: readonly UpstreamPartPlan[];
  /** Offset of each CDCS part's ciphertext in the data object. */
  readonly offsets: ReadonlyMap<number, number>;
  readonly ciphertextSize: number;
  /** Bytes written upstream a second time (staged parts copied) plus filler. */
  readonly copiedBytes: number;
  readonly fillerBytes: number;
}

export function planAssembly(parts: readonly ChosenPart[], minPartSize: number): AssemblyPlan {
  const plan: UpstreamPartPlan[] = [];
  let run: ChosenPart[] = [];
  const flushRun = (followedByDirect: boolean): void => {
    if (run.length === 0) return;
    const chunks: ChosenPart[][] = [];
    let chunk: ChosenPart[] = [];
    let size = 0;
    for (const part of run) {
      chunk.push(part);
      size += partCiphertextLength(part.plaintextLength);
      if (size >= minPartSize) {
        chunks.push(chunk);
        chunk = [];
        size = 0;
      }
    }
    if (chunk.length > 0) {
      const last = chunks[chunks.length - 1];
      if (last !== undefined) last.push(...chunk);
      else chunks.push(chunk);
    }
    for (const members of chunks) {
      const bytes = members.reduce((sum, p) => sum + partCiphertextLength(p.plaintextLength), 0);
      const filler = followedByDirect && bytes < minPartSize ? minPartSize - bytes : 0;
      plan.push({ kind: 'staged', upstreamPartNumber: (members[0] as ChosenPart).partNumber, partNumbers: members.map((p) => p.partNumber), filler, size: bytes + filler });
    }
    run = [];
  };
  for (const part of parts) {
    if (part.storage === 'staged') {
      run.push(part);
    } else {
      flushRun(true);
      plan.push({ kind: 'direct', upstreamPartNumber: part.partNumber, partNumber: part.partNumber, size: partCiphertextLength(part.plaintextLength) });
    }
  }
  flushRun(false);

  const lengths = new Map(parts.map((p) => [p.partNumber, partCiphertextLength(p.plaintextLength)]));
  const offsets = new Map<number, number>();
  let offset = 0;
  let copiedBytes = 0;
  let fillerBytes = 0;
  for (const upstreamPart of plan) {
    if (upstreamPart.kind === 'direct') {
      offsets.set(upstreamPart.partNumber, offset);
    } else {
      let inner = offset;
      for (const partNumber of upstreamPart.partNumbers) {
        offsets.set(partNumber, inner);
        inner += lengths.get(partNumber) as number;
      }
      copiedBytes += upstreamPart.size;
      fillerBytes += upstreamPart.filler;
    }
    offset += upstreamPart.size;
  }
  return { upstreamParts: plan, offsets, ciphertextSize: offset, copiedBytes, fillerBytes };
}
