/**
 * `coffer-gateway gc` against a real gateway and the embedded upstream: objects written through the
 * gateway (PutObject, multipart, keys with slashes and hex-looking segments) survive and stay readable
 * byte-exact; orphaned data objects planted directly in the upstream are deleted once older than
 * --min-age and kept while younger; an open upload's data object is kept; a dry run deletes nothing
 * and reports the same orphans; nothing outside `d/` is ever touched; no KMS call is made.
 */
import { randomBytes } from 'node:crypto';
import { parseSealedManifest } from '../../src/format/manifest';
import { classifyDataObject, parseDuration, parseDataObject } from '../../src/cli/gc-command';
import type { UploadStore } from '../../src/store/ports';
import { upstreamLayout } from '../../src/store/upstream-layout';
import { KMS_COFFER, LOCAL_COFFER, MiB, PREFIXES, ensureCliBuilt, readUpstream, runInProcess, runProcess, snapshotUpstream, startCliFixture, startFixtureGateway, type CliFixture, type FixtureGateway } from './cli-fixture';
import { sha256 } from '../support/digests';

const HEX_KEY = 'a/0123456789abcdef0123456789abcdef';
const HEX_KEY_B = `${HEX_KEY}/b`;
const layout = upstreamLayout(PREFIXES[LOCAL_COFFER]);
const kmsLayout = upstreamLayout(PREFIXES[KMS_COFFER]);

let fixture: CliFixture;
let gateway: FixtureGateway;
/** Objects written through the gateway: `<coffer>/<key>` → plaintext. */
const objects = new Map<string, Buffer>();

const gc = (args: string[]) => runInProcess(['gc', '-c', fixture.configFile, ...args]);
const newId = (): string => randomBytes(16).toString('hex');

/** The upstream key of an object's data object, from the object id its manifest names. */
async function dataKeyOf(coffer: string, key: string): Promise<string> {
  const l = upstreamLayout(PREFIXES[coffer]);
  return l.data(key, parseSealedManifest(await readUpstream(fixture.store, l.manifest(key))).objectId.toString('hex'));
}

async function exists(upstreamKey: string): Promise<boolean> {
  return (await fixture.store.headObject(upstreamKey)) !== undefined;
}

/** Everything under a coffer's prefix: key → sha256 of the bytes. */
async function everything(coffer: string): Promise<Map<string, string>> {
  const snapshot = await snapshotUpstream(fixture.store, PREFIXES[coffer] as string);
  return new Map([...snapshot].map(([k, v]) => [k, sha256(v.bytes)]));
}

/** Plants an orphan: a copy of `source`'s data object under a new random id of `key`. */
async function plantOrphan(source: string, key: string): Promise<{ upstreamKey: string; id: string; size: number }> {
  const bytes = await readUpstream(fixture.store, await dataKeyOf(LOCAL_COFFER, source));
  const id = newId();
  const upstreamKey = layout.data(key, id);
  await fixture.store.putObject(upstreamKey, { body: bytes });
  return { upstreamKey, id, size: bytes.length };
}

async function expectEverythingReadable(): Promise<void> {
  for (const [id, data] of objects) {
    const [coffer, ...rest] = id.split('/');
    expect({ id, sha: sha256(await gateway.download(coffer as string, rest.join('/'))) }).toEqual({ id, sha: sha256(data) });
  }
}

/** Orphan lines of a run: `<verb> "<key>" id <id>`. */
function orphanLines(output: string, verb: 'deleted' | 'would delete' | 'young, kept'): string[] {
  return output
    .split('\n')
    .filter((line) => line.startsWith(`${verb} `))
    .map((line) => line.replace(/, \d+ bytes, age .*$/, '').replace(/^\S+(?: \S+)? +/, ''))
    .sort();
}
const line = (key: string, id: string): string => `${JSON.stringify(key)} id ${id}`;

beforeAll(async () => {
  ensureCliBuilt();
  fixture = await startCliFixture();
  gateway = await startFixtureGateway(fixture);
  const writes: Array<[string, string, Buffer, 'put' | 'upload']> = [
    [LOCAL_COFFER, 'put/single.bin', randomBytes(1000), 'put'],
    [LOCAL_COFFER, 'multi/big.bin', randomBytes(2 * MiB + 7), 'upload'],
    [LOCAL_COFFER, HEX_KEY, randomBytes(333), 'put'],
    [LOCAL_COFFER, HEX_KEY_B, randomBytes(1500), 'upload'],
    [KMS_COFFER, 'k/one.bin', randomBytes(777), 'put'],
  ];
  for (const [coffer, key, data, how] of writes) {
    await (how === 'put' ? gateway.put(coffer, key, data) : gateway.upload(coffer, key, data));
    objects.set(`${coffer}/${key}`, data);
  }
}, 180_000);

afterAll(async () => {
  await gateway?.stop();
  await fixture?.close();
});

test('parsing: split at the last "/", only 32 lowercase hex digits are an object id; durations', () => {
  const id = newId();
  expect(parseDataObject('p/d/', `p/d/${HEX_KEY_B}/${id}`)).toEqual({ key: HEX_KEY_B, objectId: id });
  expect(parseDataObject('p/d/', `p/d/${HEX_KEY}`)).toEqual({ key: 'a', objectId: '0123456789abcdef0123456789abcdef' });
  for (const bad of ['p/d/stray', `p/d/${id}`, `p/d//${id}`, `p/d/k/${id.toUpperCase()}`, `p/d/k/${id}0`, `p/m/k/${id}`]) expect(parseDataObject('p/d/', bad)).toBeUndefined();
  expect([parseDuration('90m'), parseDuration('24h'), parseDuration('7d'), parseDuration('3600'), parseDuration('0'), parseDuration('1h30m')]).toEqual([5_400_000, 86_400_000, 604_800_000, 3_600_000, 0, 5_400_000]);
  for (const bad of ['', '-1', '5x', 'h', '1.5.2h', '24 h']) expect(parseDuration(bad)).toBeUndefined();
});

test('only live objects (PutObject, multipart, hex-looking keys with slashes): --min-age 0 deletes nothing, no KMS call, everything reads back', async () => {
  const before = await everything(LOCAL_COFFER);
  const result = await gc(['--coffer', LOCAL_COFFER, '--min-age', '0']);
  expect(result.stderr).toBe('');
  expect(result.code).toBe(0);
  expect(result.stdout.toString()).toBe(`gc, coffer ${LOCAL_COFFER}: 4 data objects, 4 live, 0 orphans: 0 deleted (0 bytes reclaimed), 0 younger than 0 kept, 0 errors.\n`);
  expect(await everything(LOCAL_COFFER)).toEqual(before);

  const kmsCalls = fixture.kms.calls.length;
  const kmsBefore = await everything(KMS_COFFER);
  const orphan = kmsLayout.data('k/one.bin', newId());
  await fixture.store.putObject(orphan, { body: await readUpstream(fixture.store, await dataKeyOf(KMS_COFFER, 'k/one.bin')) });
  const kms = await gc(['--coffer', KMS_COFFER, '--min-age', '0']);
  expect(kms.code).toBe(0);
  expect(kms.stdout.toString()).toContain(`2 data objects, 1 live, 1 orphans: 1 deleted`);
  expect(await everything(KMS_COFFER)).toEqual(kmsBefore);
  expect(fixture.kms.calls.length).toBe(kmsCalls);
  await expectEverythingReadable();
});

test('--dry-run reports the orphans and deletes nothing; the real run deletes exactly those, and only those', async () => {
  // A PutObject whose manifest never landed (deleted directly in the upstream) …
  const lost = randomBytes(4321);
  await gateway.put(LOCAL_COFFER, 'orphan/no-manifest.bin', lost);
  const lostData = await dataKeyOf(LOCAL_COFFER, 'orphan/no-manifest.bin');
  await fixture.store.deleteObjects([layout.manifest('orphan/no-manifest.bin')]);
  const lostId = parseDataObject(`${PREFIXES[LOCAL_COFFER]}d/`, lostData)?.objectId as string;
  // … and data objects of keys whose manifest names another object, among them the hex-looking keys.
  const planted = [await plantOrphan('put/single.bin', 'put/single.bin'), await plantOrphan(HEX_KEY, HEX_KEY), await plantOrphan(HEX_KEY_B, HEX_KEY_B), await plantOrphan('multi/big.bin', 'multi/big.bin')];
  const expected = [line('orphan/no-manifest.bin', lostId), line('put/single.bin', planted[0]!.id), line(HEX_KEY, planted[1]!.id), line(HEX_KEY_B, planted[2]!.id), line('multi/big.bin', planted[3]!.id)].sort();
  const orphanBytes = (await fixture.store.headObject(lostData))!.size + planted.reduce((sum, p) => sum + p.size, 0);

  const before = await everything(LOCAL_COFFER);
  const dry = await gc(['--coffer', LOCAL_COFFER, '--min-age', '0', '--dry-run']);
  expect(dry.stderr).toBe('');
  expect(dry.code).toBe(0);
  expect(orphanLines(dry.stdout.toString(), 'would delete')).toEqual(expected);
  expect(dry.stdout.toString()).toContain(`gc dry run, coffer ${LOCAL_COFFER}: 9 data objects, 4 live, 5 orphans: 5 would be deleted (${orphanBytes} bytes would be reclaimed), 0 younger than 0 kept, 0 errors. Nothing was deleted.\n`);
  expect(await everything(LOCAL_COFFER)).toEqual(before);

  const real = await gc(['--coffer', LOCAL_COFFER, '--min-age', '0']);
  expect(real.stderr).toBe('');
  expect(real.code).toBe(0);
  expect(orphanLines(real.stdout.toString(), 'deleted')).toEqual(expected);
  expect(real.stdout.toString()).toContain(`: 9 data objects, 4 live, 5 orphans: 5 deleted (${orphanBytes} bytes reclaimed), 0 younger than 0 kept, 0 errors.\n`);
  const after = await everything(LOCAL_COFFER);
  const removed = [...before.keys()].filter((k) => !after.has(k)).sort();
  expect(removed).toEqual([lostData, ...planted.map((p) => p.upstreamKey)].sort());
  expect([...after.keys()].every((k) => before.has(k))).toBe(true);
  await expectEverythingReadable();
});

test('--min-age: an orphan older than it is deleted, a younger one is kept (also with the default 24h) until --min-age 0', async () => {
  const old = await plantOrphan('put/single.bin', 'aging/x');
  await new Promise((r) => setTimeout(r, 1500));
  const young = await plantOrphan('put/single.bin', 'aging/y');
  const first = await gc(['--coffer', LOCAL_COFFER, '--min-age', '1']);
  expect(first.code).toBe(0);
  expect(orphanLines(first.stdout.toString(), 'deleted')).toEqual([line('aging/x', old.id)]);
  expect(orphanLines(first.stdout.toString(), 'young, kept')).toEqual([line('aging/y', young.id)]);
  expect(first.stdout.toString()).toMatch(/young, kept {2}"aging\/y" id [0-9a-f]{32}, 1\d{3} bytes, age \ds \(no manifest\)\n/);
  expect(first.stdout.toString()).toContain(': 6 data objects, 4 live, 2 orphans: 1 deleted');
  expect(first.stdout.toString()).toContain(', 1 younger than 1 kept, 0 errors.');
  expect(await exists(old.upstreamKey)).toBe(false);
  expect(await exists(young.upstreamKey)).toBe(true);

  const byDefault = await gc(['--coffer', LOCAL_COFFER]);
  expect(byDefault.code).toBe(0);
  expect(byDefault.stdout.toString()).toContain('0 deleted (0 bytes reclaimed), 1 younger than 24h kept');
  const large = await gc(['--coffer', LOCAL_COFFER, '--min-age', '7d']);
  expect(orphanLines(large.stdout.toString(), 'young, kept')).toEqual([line('aging/y', young.id)]);
  expect(await exists(young.upstreamKey)).toBe(true);

  const last = await gc(['--coffer', LOCAL_COFFER, '--min-age', '0']);
  expect(orphanLines(last.stdout.toString(), 'deleted')).toEqual([line('aging/y', young.id)]);
  expect(await exists(young.upstreamKey)).toBe(false);
});

test('an open upload keeps its data object (upload record present); after Complete the object reads back; after an Abort it is an orphan', async () => {
  const Bucket = LOCAL_COFFER;
  const Region = 'ap-guangzhou';
  const Key = 'open/upload.bin';
  const body = randomBytes(1234);
  const init = await gateway.cos.multipartInit({ Bucket, Region, Key });
  const uploadId = init.UploadId as string;
  const part = await gateway.cos.multipartUpload({ Bucket, Region, Key, UploadId: uploadId, PartNumber: 1, Body: body });
  // As if the upstream Complete had succeeded and the gateway crashed before the manifest.
  const dataKey = layout.data(Key, uploadId);
  await fixture.store.putObject(dataKey, { body: randomBytes(100) });
  expect(await exists(layout.uploadRecord(Key, uploadId))).toBe(true);

  const result = await gc(['--coffer', LOCAL_COFFER, '--min-age', '0']);
  expect(result.code).toBe(0);
  expect(result.stdout.toString()).toContain(': 5 data objects, 5 live (1 of open uploads), 0 orphans: 0 deleted');
  expect(await exists(dataKey)).toBe(true);

  await gateway.cos.multipartComplete({ Bucket, Region, Key, UploadId: uploadId, Parts: [{ PartNumber: 1, ETag: part.ETag }] });
  objects.set(`${LOCAL_COFFER}/${Key}`, body);
  const after = await gc(['--coffer', LOCAL_COFFER, '--min-age', '0']);
  expect(after.stdout.toString()).toContain(': 5 data objects, 5 live, 0 orphans');
  await expectEverythingReadable();

  // An Abort that arrives after the upstream had completed: the record goes, the data object stays.
  const aborted = 'open/aborted.bin';
  const second = await gateway.cos.multipartInit({ Bucket, Region, Key: aborted });
  await gateway.cos.multipartUpload({ Bucket, Region, Key: aborted, UploadId: second.UploadId, PartNumber: 1, Body: randomBytes(50) });
  const abortedData = layout.data(aborted, second.UploadId as string);
  await fixture.store.putObject(abortedData, { body: randomBytes(100) });
  await gateway.cos.multipartAbort({ Bucket, Region, Key: aborted, UploadId: second.UploadId });
  expect(await exists(abortedData)).toBe(true);
  const cleaned = await gc(['--coffer', LOCAL_COFFER, '--min-age', '0']);
  expect(orphanLines(cleaned.stdout.toString(), 'deleted')).toEqual([line(aborted, second.UploadId as string)]);
  expect(await exists(abortedData)).toBe(false);
  await expectEverythingReadable();
});

test('names that do not parse are reported and kept; nothing outside d/ is touched; --prefix limits the run to those keys', async () => {
  const prefix = PREFIXES[LOCAL_COFFER] as string;
  const id = newId();
  const strays = [`${prefix}d/stray`, `${prefix}d/k/not-an-id`, `${prefix}d/k/${id.toUpperCase()}`, `${prefix}d/${id}`];
  // Outside the data area, with names that would parse as data objects: never listed, never deleted.
  const outside = [`${prefix}doctor/${id}`, `${prefix}p/${id}/00001/x`, `${prefix}s/${id}/00001/x`, `${prefix}u/zz/${id}`, `${prefix}dd/k/${id}`];
  for (const key of [...strays, ...outside]) await fixture.store.putObject(key, { body: Buffer.from('x') });
  const p1 = await plantOrphan('put/single.bin', 'p1/file');
  const p2 = await plantOrphan('put/single.bin', 'p2/file');
  // Key "pa" with a --prefix reaching into its id: listed by d/pa/<…>, but not a key under the prefix.
  const pa = await plantOrphan('put/single.bin', 'pa');

  const scoped = await gc(['--coffer', LOCAL_COFFER, '--min-age', '0', '--prefix', 'p1/']);
  expect(scoped.code).toBe(0);
  expect(orphanLines(scoped.stdout.toString(), 'deleted')).toEqual([line('p1/file', p1.id)]);
  expect(scoped.stdout.toString()).toContain(`gc, coffer ${LOCAL_COFFER} (prefix "p1/"): 1 data objects, 0 live, 1 orphans: 1 deleted`);
  const intoId = await gc(['--coffer', LOCAL_COFFER, '--min-age', '0', '--prefix', `pa/${pa.id.slice(0, 4)}`]);
  expect(intoId.stdout.toString()).toContain(': 0 data objects, 0 live, 0 orphans');
  expect(await exists(pa.upstreamKey)).toBe(true);

  const before = await everything(LOCAL_COFFER);
  const all = await gc(['--coffer', LOCAL_COFFER, '--min-age', '0']);
  expect(all.code).toBe(0);
  for (const stray of strays) expect(all.stdout.toString()).toContain(`unrecognised ${JSON.stringify(stray)}: not d/<key>/<32 hex digits>, kept\n`);
  expect(orphanLines(all.stdout.toString(), 'deleted')).toEqual([line('p2/file', p2.id), line('pa', pa.id)].sort());
  expect(all.stdout.toString()).toContain(', 4 unrecognised names kept, 0 errors.');
  const after = await everything(LOCAL_COFFER);
  expect([...before.keys()].filter((k) => !after.has(k)).sort()).toEqual([p2.upstreamKey, pa.upstreamKey].sort());
  for (const key of [...strays, ...outside]) expect(await exists(key)).toBe(true);
  await fixture.store.deleteObjects([...strays, ...outside]);
  await expectEverythingReadable();
});

test("a manifest that cannot be decoded keeps its key's data objects and fails the run (exit 1)", async () => {
  const manifestKey = layout.manifest('put/single.bin');
  const original = await readUpstream(fixture.store, manifestKey);
  const live = await dataKeyOf(LOCAL_COFFER, 'put/single.bin');
  try {
    await fixture.store.putObject(manifestKey, { body: Buffer.from('not a manifest') });
    const result = await gc(['--coffer', LOCAL_COFFER, '--min-age', '0']);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^✗ "put\/single\.bin" id [0-9a-f]{32}: its manifest exists but cannot be decoded \(.+\); the key's data objects are kept\n$/);
    expect(result.stdout.toString()).toContain(': 5 data objects, 4 live, 0 orphans: 0 deleted (0 bytes reclaimed), 0 younger than 0 kept, 1 errors.');
    expect(await exists(live)).toBe(true);
  } finally {
    await fixture.store.putObject(manifestKey, { body: original });
  }
  await expectEverythingReadable();
});

test('classification reads manifest, upload record, manifest again: a Complete that finishes between the reads is live, not an orphan', async () => {
  const key = 'race/completed.bin';
  const data = randomBytes(600);
  await gateway.put(LOCAL_COFFER, key, data);
  objects.set(`${LOCAL_COFFER}/${key}`, data);
  const manifestKey = layout.manifest(key);
  const manifest = await readUpstream(fixture.store, manifestKey);
  const id = parseSealedManifest(manifest).objectId.toString('hex');
  await fixture.store.deleteObjects([manifestKey]);
  // The upload record is gone by the time it is read, because the Complete just wrote the manifest and removed it.
  const store = Object.assign(Object.create(fixture.store) as UploadStore, {
    headObject: async (upstreamKey: string) => {
      if (upstreamKey === layout.uploadRecord(key, id)) await fixture.store.putObject(manifestKey, { body: manifest });
      return fixture.store.headObject(upstreamKey);
    },
  });
  expect(await classifyDataObject(store, layout, key, id)).toEqual({ kind: 'live' });
  expect(await classifyDataObject(fixture.store, layout, key, newId())).toEqual({ kind: 'orphan', reason: 'the manifest names another object' });
  await expectEverythingReadable();
});

test('usage errors exit 2, an unknown coffer 1; --help and `help gc` (child process) exit 0', async () => {
  const cases: string[][] = [
    ['gc', '-c', fixture.configFile],
    ['gc', '-c', fixture.configFile, '--coffer', LOCAL_COFFER, '--min-age', 'soon'],
    ['gc', '-c', fixture.configFile, '--coffer', LOCAL_COFFER, '--min-age', '-5'],
    ['gc', '-c', fixture.configFile, '--coffer', LOCAL_COFFER, '--concurrency', '0'],
    ['gc', '-c', fixture.configFile, '--coffer', LOCAL_COFFER, '--frobnicate'],
    ['gc', '-c', fixture.configFile, '--coffer', LOCAL_COFFER, 'positional'],
  ];
  for (const args of cases) {
    const result = await runInProcess(args);
    expect({ args, code: result.code }).toEqual({ args, code: 2 });
    expect(result.stderr).toMatch(/^coffer-gateway gc: /);
  }
  const unknown = await gc(['--coffer', 'nope-1250000000']);
  expect(unknown.code).toBe(1);
  expect(unknown.stderr).toContain('Coffer "nope-1250000000" is not configured.');

  const help = await runProcess(['gc', '--help']);
  expect(help.code).toBe(0);
  expect(help.stderr).toBe('');
  expect(help.stdout.toString()).toMatch(/^Usage: coffer-gateway gc -c <config> --coffer <name>/);
  for (const option of ['--min-age <duration>', '--dry-run', '--prefix <p>', '-h, --help']) expect(help.stdout.toString()).toContain(option);
  expect((await runInProcess(['help', 'gc'])).stdout.toString()).toBe(help.stdout.toString());
  expect((await runInProcess(['--help'])).stdout.toString()).toMatch(/^ {2}gc +Delete orphaned data objects/m);
});
