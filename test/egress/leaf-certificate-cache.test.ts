/**
 * The leaf-certificate cache bounds what a client can make the gateway mint: one issuance per name
 * (shared by concurrent CONNECTs), at most `maxEntries` kept, at most `issuancePerMinute` issued, and
 * a fresh certificate only after half the lifetime. Real certificates from a real local CA.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureLocalCertificateAuthority, type CertificateAuthority } from '../../src/egress/certificate-authority';
import { IssuanceRateExceeded, LeafCertificateCache } from '../../src/egress/leaf-certificate-cache';

const HOUR = 3600_000;
let directory: string;
let authority: CertificateAuthority;

beforeAll(async () => {
  directory = mkdtempSync(join(tmpdir(), 'coffer-leaf-cache-'));
  authority = (await ensureLocalCertificateAuthority(directory)).authority;
});
afterAll(() => rmSync(directory, { recursive: true, force: true }));

const host = (i: number): string => `demo-1250000000.cos.region-${i}.myqcloud.com`;

function cacheWith(options: { maxEntries?: number; issuancePerMinute?: number }) {
  let now = Date.now(); // the CA stamps real dates; the cache reads this clock
  const issued: string[] = [];
  const cache = new LeafCertificateCache({
    issue: (name, validityMs) => {
      issued.push(name);
      return authority.issue(name, validityMs);
    },
    validityMs: 24 * HOUR,
    maxEntries: options.maxEntries ?? 100,
    issuancePerMinute: options.issuancePerMinute ?? 1000,
    now: () => now,
  });
  return { cache, issued, advance: (ms: number) => (now += ms) };
}

test('a name is issued once; concurrent CONNECTs for it share the issuance; later ones hit the cache', async () => {
  const { cache, issued } = cacheWith({});
  const [a, b] = await Promise.all([cache.contextFor(host(1)), cache.contextFor(host(1))]);
  expect(a).toBe(b);
  expect(await cache.contextFor(host(1))).toBe(a);
  expect(issued).toEqual([host(1)]);
});

test('at most maxEntries names are kept, the least recently used evicted first', async () => {
  const { cache, issued } = cacheWith({ maxEntries: 2 });
  await cache.contextFor(host(1));
  await cache.contextFor(host(2));
  await cache.contextFor(host(1)); // 1 is now the most recently used
  await cache.contextFor(host(3)); // evicts 2
  expect(cache.size()).toBe(2);
  await cache.contextFor(host(1));
  expect(issued).toEqual([host(1), host(2), host(3)]);
  await cache.contextFor(host(2));
  expect(issued).toEqual([host(1), host(2), host(3), host(2)]);
});

test('issuance is rate-limited: a minute’s worth at once, then IssuanceRateExceeded until tokens refill; cached names still served', async () => {
  const { cache, issued, advance } = cacheWith({ issuancePerMinute: 2 });
  await cache.contextFor(host(1));
  await cache.contextFor(host(2));
  await expect(cache.contextFor(host(3))).rejects.toBeInstanceOf(IssuanceRateExceeded);
  await expect(cache.contextFor(host(1))).resolves.toBeDefined();
  advance(30_000); // one token back
  await cache.contextFor(host(3));
  await expect(cache.contextFor(host(4))).rejects.toBeInstanceOf(IssuanceRateExceeded);
  expect(issued).toEqual([host(1), host(2), host(3)]);
});

test('a cached certificate is replaced once half its lifetime has passed', async () => {
  const { cache, issued, advance } = cacheWith({});
  const first = await cache.contextFor(host(1));
  advance(11 * HOUR);
  expect(await cache.contextFor(host(1))).toBe(first);
  advance(2 * HOUR);
  expect(await cache.contextFor(host(1))).not.toBe(first);
  expect(issued).toEqual([host(1), host(1)]);
});
