import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { KeyProvider } from '../../src/keys/key-provider';
import { createLocalKeyring } from '../../src/keys/local-keyring';
import type { CofferContext } from '../../src/store/coffer-context';
import { cofferKey } from '../../src/store/coffer-key';
import { upstreamLayout } from '../../src/store/upstream-layout';
import { MemoryUploadStore } from '../support/memory-upload-store';

let directory: string;
beforeAll(() => {
  directory = mkdtempSync(join(tmpdir(), 'coffer-key-'));
});
afterAll(() => rmSync(directory, { recursive: true, force: true }));

function replica(store: MemoryUploadStore, calls: { generate: number; decrypt: number }): CofferContext {
  const inner = createLocalKeyring({ directory, keyId: 'ck', create: true });
  const keys: KeyProvider = {
    name: 'local',
    generateDataKey: async (c) => {
      calls.generate += 1;
      return inner.generateDataKey(c);
    },
    decryptDataKey: async (w, c, k) => {
      calls.decrypt += 1;
      return inner.decryptDataKey(w, c, k);
    },
  };
  return { coffer: 'demo-1250000000', store, layout: upstreamLayout('pre/'), keys, minPartSize: 5 * 1024 * 1024, maxPartSize: 5 * 1024 ** 3 };
}

describe('the coffer key (FORMAT.md §8.6)', () => {
  test("replicas creating it at once agree on one key (If-None-Match: the losers read the winner's record)", async () => {
    const store = new MemoryUploadStore();
    const calls = { generate: 0, decrypt: 0 };
    const replicas = Array.from({ length: 6 }, () => replica(store, calls));
    const keys = await Promise.all(replicas.map((context) => cofferKey(context, { create: true })));
    expect(new Set(keys.map((k) => (k as Buffer).toString('hex'))).size).toBe(1);
    expect([...store.objects.keys()]).toEqual(['pre/k/coffer-key']);
    const record = JSON.parse((store.objects.get('pre/k/coffer-key')?.data as Buffer).toString('utf8')) as { v: number; envelope: { context: Record<string, string> } };
    expect(record).toMatchObject({ v: 2, envelope: { context: { coffer: 'demo-1250000000' } } });
  });

  test('a reader never creates it; the record is read once per context, then only unwrapped', async () => {
    const store = new MemoryUploadStore();
    const calls = { generate: 0, decrypt: 0 };
    const reader = replica(store, calls);
    expect(await cofferKey(reader, { create: false })).toBeUndefined();
    expect(store.objects.size).toBe(0);
    const written = (await cofferKey(replica(store, calls), { create: true })) as Buffer;
    const gets = store.stats.byOperation.get('getObject') ?? 0;
    expect(((await cofferKey(reader, { create: false })) as Buffer).equals(written)).toBe(true);
    expect(((await cofferKey(reader, { create: false })) as Buffer).equals(written)).toBe(true);
    expect((store.stats.byOperation.get('getObject') ?? 0) - gets).toBe(1);
  });
});
