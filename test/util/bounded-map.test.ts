import { boundedMap } from '../../src/util/bounded-map';

/** A call that resolves (or rejects) only when the test says so. */
function gate<T>() {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => ((resolve = res), (reject = rej)));
  return { promise, resolve, reject };
}
const turn = () => new Promise((resolve) => setImmediate(resolve));

test('keeps input order and never runs more than the limit at once', async () => {
  let running = 0;
  let peak = 0;
  const gates = Array.from({ length: 7 }, () => gate<number>());
  const result = boundedMap([0, 1, 2, 3, 4, 5, 6], 3, async (item) => {
    running += 1;
    peak = Math.max(peak, running);
    try {
      return await gates[item]!.promise;
    } finally {
      running -= 1;
    }
  });
  await turn();
  expect(running).toBe(3);
  // Finish them out of order.
  for (const index of [2, 0, 1, 6, 5, 4, 3]) {
    gates[index]!.resolve(index * 10);
    await turn();
  }
  expect(await result).toEqual([0, 10, 20, 30, 40, 50, 60]);
  expect(peak).toBe(3);
});

test('after a failure no new call starts, and the rejection waits for the running ones', async () => {
  const started: number[] = [];
  const gates = Array.from({ length: 5 }, () => gate<void>());
  let settled = false;
  const result = boundedMap([0, 1, 2, 3, 4], 2, async (item) => {
    started.push(item);
    await gates[item]!.promise;
  }).finally(() => (settled = true));
  await turn();
  gates[0]!.reject(new Error('copy failed'));
  await turn();
  expect(settled).toBe(false); // item 1 is still running
  expect(started).toEqual([0, 1]);
  gates[1]!.resolve();
  await expect(result).rejects.toThrow('copy failed');
  expect(started).toEqual([0, 1]);
});

test('an empty list and a bad limit', async () => {
  await expect(boundedMap([], 4, async () => 1)).resolves.toEqual([]);
  await expect(boundedMap([1], 0, async () => 1)).rejects.toThrow(RangeError);
});
