import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { GatewayError } from '../../src/errors/gateway-error';
import { IntegrityError } from '../../src/format/integrity-error';
import { createLocalKeyring } from '../../src/keys/local-keyring';
import type { CofferContext } from '../../src/store/coffer-context';
import { CofferLifecycle } from '../../src/store/coffer-lifecycle';
import { MultipartService } from '../../src/store/multipart-service';
import { ObjectService } from '../../src/store/object-service';
import type { LifecycleRule } from '../../src/store/ports';
import { upstreamLayout } from '../../src/store/upstream-layout';
import { MemoryUploadStore } from '../support/memory-upload-store';

const MiB = 1024 * 1024;
const DAY_MS = 10_000; // as Ceph with `rgw lc debug interval = 10`

/** The in-memory store plus a bucket lifecycle configuration (S3 semantics: the whole set is replaced). */
class LifecycleMemoryStore extends MemoryUploadStore {
  rules: LifecycleRule[] = [];
  puts = 0;
  async getLifecycleRules(): Promise<LifecycleRule[]> {
    return this.rules.map((rule) => ({ ...rule }));
  }
  async putLifecycleRules(rules: readonly LifecycleRule[]): Promise<void> {
    this.puts += 1;
    this.rules = rules.map((rule) => ({ ...rule }));
  }
}

let directory: string;
beforeAll(() => {
  directory = mkdtempSync(join(tmpdir(), 'coffer-lifecycle-'));
});
afterAll(() => rmSync(directory, { recursive: true, force: true }));

function setup(options: { store?: MemoryUploadStore; coffer?: string; prefix?: string } = {}) {
  let now = Date.parse('2026-01-01T00:00:00Z');
  const clock = { advance: (ms: number) => (now += ms), now: () => now };
  const store = options.store ?? new LifecycleMemoryStore(5 * MiB);
  const keys = createLocalKeyring({ directory, keyId: 'lifecycle', create: true });
  const lifecycle = new CofferLifecycle({ dayLengthMs: DAY_MS, cacheTtlMs: 0, now: clock.now });
  const context: CofferContext = {
    coffer: options.coffer ?? 'expiring-1250000000',
    store,
    layout: upstreamLayout(options.prefix ?? 'pre/'),
    keys,
    minPartSize: 5 * MiB,
    maxPartSize: 5 * 1024 ** 3,
    expiry: async (created) => lifecycle.isExpired(created, await lifecycle.lifetimeMs(context)),
  };
  const objects = new ObjectService({ now: clock.now, cacheTtlMs: 3_600_000 });
  const multipart = new MultipartService({ now: clock.now, randomBytes });
  return { store, context, lifecycle, clock, objects, multipart };
}

async function put(objects: ObjectService, context: CofferContext, key: string, data: Buffer): Promise<void> {
  const prepared = await objects.preparePut(context, key, data.length);
  await objects.put(prepared, Readable.from([data]));
}

async function read(objects: ObjectService, context: CofferContext, key: string): Promise<Buffer> {
  const head = await objects.head(context, key);
  const out: Buffer[] = [];
  try {
    for await (const chunk of objects.read(context, key, head)) out.push(chunk);
  } finally {
    head.dataKey.dispose();
  }
  return Buffer.concat(out);
}

const codeOf = async (promise: Promise<unknown>): Promise<string | undefined> =>
  promise.then(
    () => undefined,
    (error: unknown) => (error instanceof GatewayError ? error.code : error instanceof IntegrityError ? `integrity:${error.reason}` : String(error)),
  );

describe('PutCofferLifecycle: bucket rules', () => {
  test("adds the coffer's rules scoped to its areas and keeps the operator's and other coffers' rules as they were", async () => {
    const { store, context, lifecycle } = setup();
    const lifecycleStore = store as LifecycleMemoryStore;
    const operator: LifecycleRule = { id: 'operator-logs', prefix: 'logs/', enabled: true, expirationDays: 7, raw: { ID: 'operator-logs', Transitions: [{ Days: 1 }] } };
    const other: LifecycleRule = { id: 'coffer-gateway:other-1250000000:manifests', prefix: 'other/m/', enabled: true, expirationDays: 3 };
    lifecycleStore.rules = [operator, other];
    await lifecycle.put(context, { days: 30, form: 'json' });
    expect(lifecycleStore.rules.slice(0, 2)).toEqual([operator, other]);
    const ours = lifecycleStore.rules.slice(2).map(({ id, prefix, expirationDays, abortIncompleteUploadDays }) => ({ id, prefix, expirationDays, abortIncompleteUploadDays }));
    expect(ours).toEqual([
      { id: 'coffer-gateway:expiring-1250000000:manifests', prefix: 'pre/m/', expirationDays: 30, abortIncompleteUploadDays: undefined },
      { id: 'coffer-gateway:expiring-1250000000:data', prefix: 'pre/d/', expirationDays: 60, abortIncompleteUploadDays: 30 },
      { id: 'coffer-gateway:expiring-1250000000:uploads', prefix: 'pre/u/', expirationDays: 31, abortIncompleteUploadDays: undefined },
      { id: 'coffer-gateway:expiring-1250000000:parts', prefix: 'pre/p/', expirationDays: 31, abortIncompleteUploadDays: undefined },
      { id: 'coffer-gateway:expiring-1250000000:staged', prefix: 'pre/s/', expirationDays: 31, abortIncompleteUploadDays: undefined },
    ]);
    // A new configuration replaces the coffer's rules, and only them.
    await lifecycle.put(context, { days: 2, form: 'json' });
    expect(lifecycleStore.rules).toHaveLength(7);
    expect(lifecycleStore.rules.slice(0, 2)).toEqual([operator, other]);
    expect(lifecycleStore.rules.find((r) => r.id === 'coffer-gateway:expiring-1250000000:manifests')?.expirationDays).toBe(2);
    expect(await lifecycle.get(context)).toMatchObject({ days: 2, form: 'json' });
    expect(await lifecycle.upstreamRulesMatch(context, 2)).toBe(true);
  });

  test('re-merges when a concurrent change of the bucket configuration dropped the rules just written', async () => {
    const { store, context, lifecycle } = setup();
    const lifecycleStore = store as LifecycleMemoryStore;
    const original = lifecycleStore.putLifecycleRules.bind(lifecycleStore);
    let first = true;
    lifecycleStore.putLifecycleRules = async (rules) => {
      await original(rules);
      if (first) {
        first = false;
        lifecycleStore.rules = [{ id: 'someone-else', prefix: 'x/', enabled: true, expirationDays: 1 }]; // another writer's whole-set PUT landed after ours
      }
    };
    await lifecycle.put(context, { days: 5, form: 'json' });
    expect(lifecycleStore.rules.map((r) => r.id)).toEqual(['someone-else', ...['manifests', 'data', 'uploads', 'parts', 'staged'].map((a) => `coffer-gateway:expiring-1250000000:${a}`)]);
  });

  test('an upstream without lifecycle support: NotImplemented, and nothing is recorded', async () => {
    const plain = setup({ store: new MemoryUploadStore(5 * MiB) });
    expect(await codeOf(plain.lifecycle.put(plain.context, { days: 1, form: 'json' }))).toBe('NotImplemented');
    expect([...plain.store.objects.keys()]).toEqual([]);

    const refusing = setup();
    (refusing.store as LifecycleMemoryStore).getLifecycleRules = async () => {
      throw new GatewayError('BadGateway', 'The upstream object store answered NotImplemented (HTTP 501).', { reason: 'upstream-NotImplemented' });
    };
    expect(await codeOf(refusing.lifecycle.put(refusing.context, { days: 1, form: 'json' }))).toBe('NotImplemented');
    expect([...refusing.store.objects.keys()]).toEqual([]);

    const denied = setup();
    (denied.store as LifecycleMemoryStore).putLifecycleRules = async () => {
      throw new GatewayError('BadGateway', 'The upstream object store answered AccessDenied (HTTP 403).', { reason: 'upstream-AccessDenied' });
    };
    const error = await denied.lifecycle.put(denied.context, { days: 1, form: 'json' }).catch((e: unknown) => e as GatewayError);
    expect(error).toMatchObject({ code: 'BadGateway', reason: 'upstream-lifecycle-denied' });
    expect((error as GatewayError).message).toMatch(/PutLifecycleConfiguration/);
    expect([...denied.store.objects.keys()]).toEqual([]);
  });
});

describe('the lifecycle record is authenticated', () => {
  test('altered, or copied from another coffer: IntegrityError, never "no lifecycle"', async () => {
    const a = setup();
    await put(a.objects, a.context, 'first', Buffer.from('x')); // the coffer key exists
    await a.lifecycle.put(a.context, { days: 3, form: 'xml', ruleId: 'r1' });
    expect(await a.lifecycle.get(a.context)).toMatchObject({ days: 3, form: 'xml', ruleId: 'r1' });
    const entry = a.store.objects.get('pre/k/lifecycle');
    if (entry === undefined) throw new Error('no lifecycle record');
    const original = Buffer.from(entry.data);
    entry.data.writeUInt8(entry.data.readUInt8(entry.data.length - 20) ^ 1, entry.data.length - 20);
    expect(await codeOf(a.lifecycle.get(a.context))).toBe('integrity:coffer-record-rejected');
    // Reads of the coffer's objects fail too (the expiry cannot be judged), rather than showing expired objects.
    expect(await codeOf(read(a.objects, a.context, 'first'))).toBe('integrity:coffer-record-rejected');
    entry.data = original;
    expect(await a.lifecycle.get(a.context)).toMatchObject({ days: 3 });

    // The same bucket, the same keyring, another coffer: its own record does not open as this coffer's.
    const b = setup({ store: a.store, coffer: 'neighbour-1250000000', prefix: 'nb/' });
    await put(b.objects, b.context, 'x', Buffer.from('y'));
    await b.lifecycle.put(b.context, { days: 9, form: 'json' });
    a.store.objects.set('pre/k/lifecycle', a.store.objects.get('nb/k/lifecycle') as typeof entry);
    expect(await codeOf(a.lifecycle.get(a.context))).toBe('integrity:coffer-record-rejected');
  });
});

describe('expired objects are gone to the gateway at once', () => {
  test('404 on reads, absent from listings, the key writable again; live objects unchanged', async () => {
    const { context, lifecycle, clock, objects } = setup();
    await put(objects, context, 'old', Buffer.from('old bytes'));
    clock.advance(4_000);
    await put(objects, context, 'young', Buffer.from('young bytes'));
    await lifecycle.put(context, { days: 1, form: 'json' });
    expect((await read(objects, context, 'old')).toString()).toBe('old bytes'); // cached manifest, not expired yet

    clock.advance(DAY_MS - 4_000); // "old" is exactly one day old, "young" is not
    expect(await codeOf(read(objects, context, 'old'))).toBe('NoSuchKey');
    expect((await read(objects, context, 'young')).toString()).toBe('young bytes');
    expect((await objects.list(context)).objects.map((o) => o.key)).toEqual(['young']);
    // Write-once applies to live objects only.
    expect(await codeOf(put(objects, context, 'young', Buffer.from('again')))).toBe('ObjectAlreadyExists');
    await put(objects, context, 'old', Buffer.from('new bytes'));
    expect((await read(objects, context, 'old')).toString()).toBe('new bytes');
    expect((await objects.list(context)).objects.map((o) => o.key)).toEqual(['old', 'young']);
  });

  test('a multipart upload completes over an expired object the upstream has not removed yet', async () => {
    const { context, lifecycle, clock, objects, multipart, store } = setup();
    await put(objects, context, 'k', Buffer.from('first'));
    await lifecycle.put(context, { days: 1, form: 'json' });
    clock.advance(DAY_MS);
    // Both uploads passed the check before the expired manifest was found at Complete.
    const record = await multipart.initiate(context, 'k');
    const data = randomBytes(1000);
    const prepared = await multipart.prepareUploadPart(context, 'k', record.uploadId, 1, data.length);
    const etag = await multipart.uploadPart(prepared, Readable.from([data]));
    await multipart.complete(context, 'k', record.uploadId, [{ partNumber: 1, etag }]);
    expect((await read(objects, context, 'k')).equals(data)).toBe(true);
    // The expired object's data object was removed with its manifest.
    expect([...store.objects.keys()].filter((k) => k.startsWith('pre/d/k/'))).toEqual([`pre/d/k/${record.uploadId}`]);
  });

  test("the creation time is the manifest's sealed one: a bucket writer cannot age an object by touching it", async () => {
    const { context, lifecycle, clock, objects, store } = setup();
    await lifecycle.put(context, { days: 1, form: 'json' });
    await put(objects, context, 'k', Buffer.from('kept'));
    // Re-writing the manifest's bytes (new upstream Last-Modified, same content) changes nothing.
    const entry = store.objects.get('pre/m/k');
    if (entry === undefined) throw new Error('no manifest');
    entry.lastModified = new Date(0);
    clock.advance(DAY_MS - 1);
    expect((await read(new ObjectService({ now: clock.now }), context, 'k')).toString()).toBe('kept');
    clock.advance(1);
    expect(await codeOf(read(new ObjectService({ now: clock.now }), context, 'k'))).toBe('NoSuchKey');
  });
});
