import { partCiphertextLength } from '../../src/format/part-format';
import { planAssembly, type ChosenPart } from '../../src/store/assembly-plan';

const MiB = 1024 * 1024;
const staged = (partNumber: number, plaintextLength = MiB): ChosenPart => ({ partNumber, plaintextLength, storage: 'staged' });
const direct = (partNumber: number, plaintextLength = 8 * MiB): ChosenPart => ({ partNumber, plaintextLength, storage: 'direct' });

function checkInvariants(parts: ChosenPart[], min: number): ReturnType<typeof planAssembly> {
  const plan = planAssembly(parts, min);
  const numbers = plan.upstreamParts.map((p) => p.upstreamPartNumber);
  expect([...numbers].sort((a, b) => a - b)).toEqual(numbers); // ascending, as S3 requires
  expect(new Set(numbers).size).toBe(numbers.length);
  plan.upstreamParts.slice(0, -1).forEach((p) => expect(p.size).toBeGreaterThanOrEqual(min)); // every non-last part ≥ min
  // Extents: inside the object, non-overlapping, in CDCS order.
  let expected = 0;
  for (const upstreamPart of plan.upstreamParts) {
    const members = upstreamPart.kind === 'direct' ? [upstreamPart.partNumber] : upstreamPart.partNumbers;
    for (const n of members) {
      expect(plan.offsets.get(n)).toBe(expected);
      expected += partCiphertextLength((parts.find((p) => p.partNumber === n) as ChosenPart).plaintextLength);
    }
    if (upstreamPart.kind === 'staged') expected += upstreamPart.filler;
  }
  expect(plan.ciphertextSize).toBe(expected);
  return plan;
}

describe('assembly plan', () => {
  test('all direct: nothing copied, upstream numbers are the part numbers', () => {
    const plan = checkInvariants([direct(1), direct(2), direct(3, 100)], 5 * MiB);
    expect(plan.copiedBytes).toBe(0);
    expect(plan.upstreamParts.map((p) => p.upstreamPartNumber)).toEqual([1, 2, 3]);
  });

  test('the COS SDK default (1 MiB parts, small last part) on a 5 MiB upstream: runs ≥ 5 MiB, last small part direct, no filler', () => {
    const parts = [...Array.from({ length: 12 }, (_, i) => staged(i + 1)), direct(13, 300 * 1024)];
    const plan = checkInvariants(parts, 5 * MiB);
    expect(plan.upstreamParts.map((p) => (p.kind === 'staged' ? p.partNumbers.length : 'd'))).toEqual([5, 7, 'd']);
    expect(plan.fillerBytes).toBe(0);
    expect(plan.copiedBytes).toBe(parts.slice(0, 12).reduce((s, p) => s + partCiphertextLength(p.plaintextLength), 0));
  });

  test('a short run before a direct part gets filler; a short run at the end does not', () => {
    const plan = checkInvariants([staged(1), staged(2), direct(3), staged(4)], 5 * MiB);
    const first = plan.upstreamParts[0];
    expect(first?.kind === 'staged' && first.filler).toBe(5 * MiB - 2 * partCiphertextLength(MiB));
    const last = plan.upstreamParts[2];
    expect(last?.kind === 'staged' && last.filler).toBe(0);
  });

  test('sparse part numbers and a 1 MiB upstream minimum', () => {
    const plan = checkInvariants([direct(2, MiB), direct(17, MiB), direct(9999, 10)], MiB);
    expect(plan.copiedBytes).toBe(0);
  });

  test('10000 staged parts plan quickly and stay within bounds', () => {
    const parts = Array.from({ length: 10000 }, (_, i) => staged(i + 1, MiB));
    const plan = checkInvariants(parts, 5 * MiB);
    expect(plan.upstreamParts.length).toBe(2000);
    for (const p of plan.upstreamParts) expect(p.size).toBeLessThan(3 * 5 * MiB);
  });
});
