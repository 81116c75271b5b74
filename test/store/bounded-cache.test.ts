import { BoundedCache } from '../../src/store/bounded-cache';

test('evicts the least recently used entries to stay within the byte budget', () => {
  const cache = new BoundedCache<string>({ maxBytes: 10, ttlMs: 1000, now: () => 0 }, (v) => v.length);
  cache.set('a', 'aaaa');
  cache.set('b', 'bbbb');
  expect(cache.get('a')).toBe('aaaa'); // a is now the most recently used
  cache.set('c', 'cccc');
  expect(cache.get('b')).toBeUndefined();
  expect(cache.get('a')).toBe('aaaa');
  expect(cache.get('c')).toBe('cccc');
  expect(cache.totalBytes).toBe(8);
});

test('entries expire after the TTL; an entry larger than the budget is not kept', () => {
  let now = 0;
  const cache = new BoundedCache<string>({ maxBytes: 10, ttlMs: 1000, now: () => now }, (v) => v.length);
  cache.set('a', 'x');
  now = 999;
  expect(cache.get('a')).toBe('x');
  now = 1000;
  expect(cache.get('a')).toBeUndefined();
  expect(cache.size).toBe(0);
  cache.set('huge', 'x'.repeat(11));
  expect(cache.get('huge')).toBeUndefined();
  expect(cache.totalBytes).toBe(0);
});

test('replacing and deleting keep the byte count exact', () => {
  const cache = new BoundedCache<string>({ maxBytes: 100, ttlMs: 1000, now: () => 0 }, (v) => v.length);
  cache.set('a', 'aaaa');
  cache.set('a', 'aa');
  expect(cache.totalBytes).toBe(2);
  cache.delete('a');
  cache.delete('missing');
  expect(cache.totalBytes).toBe(0);
});
