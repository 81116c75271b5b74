/**
 * releaseStartUpGarbage (src/util/garbage-collection.ts): a full, memory-reducing collection — the
 * garbage a start-up leaves is collected and the heap's pages are given back, which V8 on its own does
 * not do while the process idles.
 */
import { getHeapStatistics } from 'node:v8';
import { releaseStartUpGarbage } from '../../src/util/garbage-collection';

const MB = 1e6;

test('garbage is collected and the heap shrinks (pages given back), not only freed for reuse', () => {
  releaseStartUpGarbage(); // from a settled heap
  // ~40 MB of small objects that stay alive long enough to reach the old generation, then become garbage.
  const grown = ((): ReturnType<typeof getHeapStatistics> => {
    const startUp = Array.from({ length: 400_000 }, (_, index) => ({ index, text: `start-up ${index}` }));
    expect(startUp).toHaveLength(400_000);
    return getHeapStatistics();
  })();
  releaseStartUpGarbage();
  const after = getHeapStatistics();
  expect(grown.used_heap_size - after.used_heap_size).toBeGreaterThan(20 * MB);
  expect(grown.total_heap_size - after.total_heap_size).toBeGreaterThan(20 * MB);
});
