/**
 * The command line and coffers created at run time (PUT Coffer within `cofferClasses`): coffers are
 * created with the official COS SDK's putBucket through a real gateway, objects written into them,
 * and then decrypt, rewrap, gc and doctor run — as child processes and in-process — against the same
 * upstream: decrypt recovers a created coffer's object byte-exact; rewrap --class rotates every
 * created coffer's objects and coffer key and the class key, so a gateway configured with only the
 * new key (the old one disabled in KMS) still serves, lists and writes them; gc collects orphans in
 * every generation prefix without a KMS call; doctor checks each class's bucket, KMS key and
 * registrations. A tampered registration is refused by all of them.
 */
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { decodeCofferKeyRecord } from '../../src/format/coffer-key';
import { parseSealedManifest } from '../../src/format/manifest';
import { upstreamLayout } from '../../src/store/upstream-layout';
import type { DoctorReport } from '../../src/cli/doctor-command';
import type { TestKmsKey } from '../support/kms-test-server';
import { sha256 } from '../support/digests';
import { KMS_COFFER, LOCAL_COFFER, MiB, ensureCliBuilt, readUpstream, runInProcess, runProcess, snapshotUpstream, startCliFixture, startFixtureGateway, type CliFixture, type FixtureGateway } from './cli-fixture';

const Region = 'ap-guangzhou';
/** Two classes: one keyed by AWS KMS, one by the local keyring; each in its own base prefix of the fixture bucket. */
const KMS_BASE = 'classes/kms/';
const LOCAL_BASE = 'classes/local/';
const KMS_ALPHA = 'kteam-alpha-1250000000';
const KMS_BETA = 'kteam-beta-1250000000';
const LOCAL_ALPHA = 'lteam-alpha-1250000000';
/** A name the local class admits but nobody created. */
const NEVER_CREATED = 'lteam-never-1250000000';

let fixture: CliFixture;
let gateway: FixtureGateway;
let configFile: string;
/** `<coffer>/<key>` → plaintext, for every object written through the gateway. */
const objects = new Map<string, Buffer>();

function classesConfig(name: string, kms: Record<string, unknown> = {}, upstream: Record<string, unknown> = {}): string {
  return fixture.writeConfig(
    name,
    { [KMS_COFFER]: null, [LOCAL_COFFER]: null },
    {
      cofferClasses: {
        kteam: { pattern: 'kteam-*-1250000000', coffer: fixture.cofferSettings(KMS_COFFER, { upstream: { prefix: KMS_BASE, ...upstream }, kms }) },
        lteam: { pattern: 'lteam-*-1250000000', coffer: fixture.cofferSettings(LOCAL_COFFER, { upstream: { prefix: LOCAL_BASE, ...upstream } }) },
      },
    },
  );
}

/** A created coffer's generation prefix, read from the upstream listing (`<base><coffer>/<16 hex>/`). */
async function generationPrefix(base: string, coffer: string): Promise<string> {
  const listing = await fixture.store.listObjects(`${base}${coffer}/`, { delimiter: '/' });
  const current = listing.commonPrefixes.filter((p) => /\/[0-9a-f]{16}\/$/.test(p));
  expect(current).toHaveLength(1);
  return current[0] as string;
}

/** Key id of every manifest's envelope under a layout prefix. */
async function envelopeKeys(prefix: string): Promise<string[]> {
  return [...(await snapshotUpstream(fixture.store, upstreamLayout(prefix).manifestPrefix())).values()].map(({ bytes }) => parseSealedManifest(bytes).envelope.keyId);
}

const recordKeyId = async (upstreamKey: string): Promise<string> => decodeCofferKeyRecord(await readUpstream(fixture.store, upstreamKey)).keyId;

async function expectReadsEverything(through: FixtureGateway, coffers: readonly string[]): Promise<void> {
  for (const [id, data] of objects) {
    const [coffer, ...rest] = id.split('/');
    if (!coffers.includes(coffer as string)) continue;
    expect({ id, sha: sha256(await through.download(coffer as string, rest.join('/'))) }).toEqual({ id, sha: sha256(data) });
  }
}

beforeAll(async () => {
  ensureCliBuilt();
  fixture = await startCliFixture();
  configFile = classesConfig('classes');
  gateway = await startFixtureGateway(fixture, configFile);
  for (const coffer of [KMS_ALPHA, KMS_BETA, LOCAL_ALPHA]) await gateway.cos.putBucket({ Bucket: coffer, Region });
  for (const [coffer, key, size] of [
    [KMS_ALPHA, 'backups/db.bin', 2 * MiB + 77],
    [KMS_ALPHA, 'notes/a.txt', 100],
    [KMS_BETA, 'one.bin', 5000],
    [LOCAL_ALPHA, 'local/big.bin', 2 * MiB + 5],
    [LOCAL_ALPHA, 'local/small.txt', 10],
  ] as const) {
    const data = randomBytes(size);
    if (size > MiB) await gateway.upload(coffer, key, data);
    else await gateway.put(coffer, key, data);
    objects.set(`${coffer}/${key}`, data);
  }
}, 180_000);

afterAll(async () => {
  await gateway?.stop();
  await fixture?.close();
});

describe('decrypt', () => {
  test('a multipart object of a created coffer, from its generation prefix, byte-exact (child process)', async () => {
    const result = await runProcess(['decrypt', '-c', configFile, '--coffer', KMS_ALPHA, '--key', 'backups/db.bin']);
    expect(result.stderr).toMatch(/backups\/db\.bin: 2097229 bytes verified, ETag "[0-9a-f]{32}-3"/);
    expect(result.code).toBe(0);
    expect(sha256(result.stdout)).toBe(sha256(objects.get(`${KMS_ALPHA}/backups/db.bin`) as Buffer));
    const local = await runInProcess(['decrypt', '-c', configFile, '--coffer', LOCAL_ALPHA, '--key', 'local/small.txt']);
    expect(local.code).toBe(0);
    expect(local.stdout.equals(objects.get(`${LOCAL_ALPHA}/local/small.txt`) as Buffer)).toBe(true);
  });

  test('offline, from the two downloaded objects, with the class upstream unreachable: no registration needed, byte-exact', async () => {
    const prefix = await generationPrefix(KMS_BASE, KMS_ALPHA);
    const layout = upstreamLayout(prefix);
    const manifest = await readUpstream(fixture.store, layout.manifest('backups/db.bin'));
    const dataKey = layout.data('backups/db.bin', parseSealedManifest(manifest).objectId.toString('hex'));
    const manifestFile = join(fixture.directory, 'created-manifest.bin');
    const dataFile = join(fixture.directory, 'created-data.bin');
    writeFileSync(manifestFile, manifest);
    writeFileSync(dataFile, await readUpstream(fixture.store, dataKey));
    const offline = classesConfig('classes-offline', {}, { endpoint: 'http://127.0.0.1:1' });
    const args = ['decrypt', '-c', offline, '--coffer', KMS_ALPHA, '--key', 'backups/db.bin', '--manifest-file', manifestFile, '--data-file', dataFile];
    const result = await runProcess(args);
    expect(result.stderr).toMatch(/backups\/db\.bin: 2097229 bytes verified/);
    expect(result.code).toBe(0);
    expect(sha256(result.stdout)).toBe(sha256(objects.get(`${KMS_ALPHA}/backups/db.bin`) as Buffer));
    // The data key is bound to the coffer's name: the same files under another created coffer's name do not open.
    const other = await runInProcess(['decrypt', '-c', offline, '--coffer', KMS_BETA, '--key', 'backups/db.bin', '--manifest-file', manifestFile, '--data-file', dataFile]);
    expect(other.code).toBe(1);
    expect(other.stdout.length).toBe(0);
  });

  test('a name a class admits but nobody created: exit 1, says so; a configured coffer still works', async () => {
    const result = await runInProcess(['decrypt', '-c', configFile, '--coffer', NEVER_CREATED, '--key', 'x']);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`Coffer "${NEVER_CREATED}" does not exist: coffer class lteam admits the name, but no registration of it exists`);
    const unknown = await runInProcess(['decrypt', '-c', configFile, '--coffer', 'other-1250000000', '--key', 'x']);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('Coffer "other-1250000000" is not configured. No coffer class admits its name either.');
  });
});

describe('gc', () => {
  test('orphans in the current generation and in a generation a deletion left behind are deleted, without a KMS call; live objects and every other area are kept', async () => {
    const current = await generationPrefix(LOCAL_BASE, LOCAL_ALPHA);
    const layout = upstreamLayout(current);
    const live = await readUpstream(fixture.store, layout.manifest('local/small.txt'));
    const liveData = layout.data('local/small.txt', parseSealedManifest(live).objectId.toString('hex'));
    const orphan = layout.data('local/small.txt', randomBytes(16).toString('hex'));
    await fixture.store.putObject(orphan, { body: await readUpstream(fixture.store, liveData) });
    // What an interrupted DeleteCoffer leaves: a generation no registration names, its manifest and data.
    const abandoned = upstreamLayout(`${LOCAL_BASE}${LOCAL_ALPHA}/0123456789abcdef/`);
    const abandonedOrphan = abandoned.data('old.bin', randomBytes(16).toString('hex'));
    await fixture.store.putObject(abandonedOrphan, { body: Buffer.from('old ciphertext') });
    const before = await snapshotUpstream(fixture.store, 'classes/');
    const kmsCalls = fixture.kms.calls.length;

    const dry = await runProcess(['gc', '-c', configFile, '--class', 'lteam', '--min-age', '0', '--dry-run']);
    expect(dry.code).toBe(0);
    expect(dry.stdout.toString()).toContain(`gc dry run, coffer ${LOCAL_ALPHA} (class lteam, generation ${current.split('/').at(-2)}): 3 data objects, 2 live, 1 orphans: 1 would be deleted`);
    expect(dry.stdout.toString()).toContain(`gc dry run, coffer ${LOCAL_ALPHA} (class lteam, generation 0123456789abcdef): 1 data objects, 0 live, 1 orphans: 1 would be deleted`);
    expect(dry.stdout.toString()).toContain('gc dry run, class lteam: 2 generation prefixes of 1 coffers, 0 errors.');
    expect([...(await snapshotUpstream(fixture.store, 'classes/')).keys()]).toEqual([...before.keys()]);

    const result = await runProcess(['gc', '-c', configFile, '--coffer', LOCAL_ALPHA, '--min-age', '0']);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const after = await snapshotUpstream(fixture.store, 'classes/');
    expect([...before.keys()].filter((k) => !after.has(k)).sort()).toEqual([orphan, abandonedOrphan].sort());
    expect(after.size).toBe(before.size - 2);
    // gc needs no key: generations are found by listing, live objects by each generation's own manifests.
    expect(fixture.kms.calls.length).toBe(kmsCalls);
    await expectReadsEverything(gateway, [LOCAL_ALPHA]);
    // The KMS class, nothing to collect: nothing deleted, still no KMS call.
    const kms = await runInProcess(['gc', '-c', configFile, '--class', 'kteam', '--min-age', '0']);
    expect(kms.code).toBe(0);
    expect(kms.stdout.toString()).toContain('class kteam: 2 generation prefixes of 2 coffers, 0 errors.');
    expect(await snapshotUpstream(fixture.store, 'classes/')).toEqual(after);
    expect(fixture.kms.calls.length).toBe(kmsCalls);
  });

  test("refuses a class whose base prefix lies inside a configured coffer's data area (nothing deleted)", async () => {
    const overlapping = fixture.writeConfig(
      'gc-overlap',
      { [LOCAL_COFFER]: { upstream: { prefix: 'classes/' } } },
      { cofferClasses: { lteam: { pattern: 'lteam-*-1250000000', coffer: fixture.cofferSettings(LOCAL_COFFER, { upstream: { prefix: 'classes/d/' } }) } } },
    );
    const result = await runInProcess(['gc', '-c', overlapping, '--coffer', LOCAL_COFFER, '--min-age', '0']);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('coffer class lteam\'s base prefix "classes/d/" lies inside the data area "classes/d/"');
    const usage = await runInProcess(['gc', '-c', configFile, '--coffer', LOCAL_ALPHA, '--class', 'lteam']);
    expect(usage.code).toBe(2);
  });
});

describe('doctor', () => {
  test('checks each class: credentials, the class KMS key with the class key context, the bucket, and the registrations', async () => {
    const result = await runProcess(['doctor', '-c', configFile, '--quick']);
    const report = result.stdout.toString();
    expect(report).toMatch(/^✓ configuration: valid \(2 coffers, 2 coffer classes\)$/m);
    expect(report).toContain('coffer class kteam\n');
    expect(result.code).toBe(0);
    const json = await runInProcess(['doctor', '-c', configFile, '--class', 'kteam', '--json']);
    expect(json.code).toBe(0);
    const parsed = JSON.parse(json.stdout.toString()) as DoctorReport;
    expect(parsed.coffers).toEqual([]);
    expect(parsed.classes.map((c) => [c.class, c.checks.map((k) => [k.check, k.status])])).toEqual([
      [
        'kteam',
        [
          ['credentials', 'pass'],
          ['key provider', 'pass'],
          ['upstream read', 'pass'],
          ['upstream write', 'pass'],
          ['upstream part size', 'pass'],
          ['registrations', 'pass'],
        ],
      ],
    ]);
    const checks = new Map(parsed.classes[0]?.checks.map((c) => [c.check, c.detail]));
    expect(checks.get('registrations')).toBe('2 created coffers; every registration opens under the class key');
    expect(checks.get('upstream read')).toBe(`bucket coffer-cli at ${fixture.upstream.endpoint}: listed ${KMS_BASE}_registry/r/`);
    expect(checks.get('upstream write')).toMatch(new RegExp(`wrote, read back and deleted ${KMS_BASE}doctor/[0-9a-f]{24}$`));
    const generate = fixture.kms.calls.filter((c) => c.operation === 'GenerateDataKey').at(-1);
    expect(generate?.encryptionContext).toEqual({ coffer: '_class.kteam', key: expect.stringMatching(/^doctor\/[0-9a-f]{24}$/) });
    // A class KMS key that refuses the role: the class's key provider fails, exit 1.
    const guarded = fixture.kms.createKey({ allowedPrincipals: ['arn:aws:iam::111122223333:user/someone-else'] });
    const denied = await runInProcess(['doctor', '-c', classesConfig('doctor-denied', { keyId: guarded.arn }), '--class', 'kteam', '--quick', '--json']);
    expect(denied.code).toBe(1);
    const deniedChecks = (JSON.parse(denied.stdout.toString()) as DoctorReport).classes[0]?.checks ?? [];
    expect(deniedChecks.find((c) => c.check === 'key provider')).toMatchObject({ status: 'fail', detail: expect.stringContaining(`KMS key ${guarded.arn}: GenerateDataKey failed`) });
    const unknown = await runInProcess(['doctor', '-c', configFile, '--class', 'nope']);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('No coffer class "nope" is configured. Configured classes: kteam, lteam.');
  });
});

describe('rewrap', () => {
  let next: TestKmsKey;
  beforeAll(() => {
    next = fixture.kms.createKey({ alias: 'alias/kteam-2026' });
  });

  test('--class rotates every created coffer (objects and coffer key) and the class key; a gateway knowing only the new key (the old one disabled) serves, lists and writes them', async () => {
    const rotating = classesConfig('classes-rotating', { previousKeyIds: [next.arn] });
    const alpha = await generationPrefix(KMS_BASE, KMS_ALPHA);
    const beta = await generationPrefix(KMS_BASE, KMS_BETA);
    const dataBefore = await snapshotUpstream(fixture.store, `${alpha}d/`);

    const dry = await runInProcess(['rewrap', '-c', rotating, '--class', 'kteam', '--to-key', 'alias/kteam-2026', '--dry-run']);
    expect(dry.code).toBe(0);
    expect(dry.stdout.toString()).toContain(`would rewrap the class key of kteam: ${fixture.key.arn} -> ${next.arn}`);
    expect(dry.stdout.toString()).toContain(`rewrap dry run, class kteam, to ${next.arn}: 2 coffers (0 refused), 3 objects, 3 would be rewrapped, 0 already under the target key, 0 failed. Nothing was changed.`);
    expect(await recordKeyId(`${KMS_BASE}_registry/k/coffer-key`)).toBe(fixture.key.arn);

    const result = await runProcess(['rewrap', '-c', rotating, '--class', 'kteam', '--to-key', 'alias/kteam-2026']);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const out = result.stdout.toString();
    expect(out).toContain(`rewrap, coffer ${KMS_ALPHA} (class kteam, generation ${alpha.split('/').at(-2)}), to ${next.arn}: 2 objects, 2 rewrapped, 0 already under the target key, 0 failed.`);
    expect(out).toContain(`rewrapped the class key of kteam to ${next.arn}`);
    expect(out).toContain(`rewrap, class kteam, to ${next.arn}: 2 coffers (0 refused), 3 objects, 3 rewrapped, 0 already under the target key, 0 failed.`);
    for (const prefix of [alpha, beta]) {
      expect(await envelopeKeys(prefix)).toEqual((await envelopeKeys(prefix)).map(() => next.arn));
      expect(await recordKeyId(`${prefix}k/coffer-key`)).toBe(next.arn);
    }
    expect(await recordKeyId(`${KMS_BASE}_registry/k/coffer-key`)).toBe(next.arn);
    expect(await snapshotUpstream(fixture.store, `${alpha}d/`)).toEqual(dataBefore);

    const again = await runInProcess(['rewrap', '-c', rotating, '--class', 'kteam', '--to-key', next.arn]);
    expect(again.code).toBe(0);
    expect(again.stdout.toString()).toContain('3 objects, 0 rewrapped, 3 already under the target key, 0 failed.');

    // The rotation is complete: the old key disabled, the configuration names only the new one.
    fixture.kms.setKeyState(fixture.key.keyId, 'Disabled');
    const renewed = await startFixtureGateway(fixture, classesConfig('classes-renewed', { keyId: next.arn }));
    try {
      await expectReadsEverything(renewed, [KMS_ALPHA, KMS_BETA]);
      const listed = await renewed.cos.getBucket({ Bucket: KMS_ALPHA, Region });
      expect(listed.Contents.map((c: { Key: string }) => c.Key).sort()).toEqual(['backups/db.bin', 'notes/a.txt']);
      const fresh = randomBytes(321);
      await renewed.put(KMS_BETA, 'after/rotation.bin', fresh);
      expect(sha256(await renewed.download(KMS_BETA, 'after/rotation.bin'))).toBe(sha256(fresh));
      const service = await renewed.cos.getService({});
      expect(service.Buckets.map((b: { Name: string }) => b.Name)).toEqual(expect.arrayContaining([KMS_ALPHA, KMS_BETA, LOCAL_ALPHA]));
    } finally {
      await renewed.stop();
      fixture.kms.setKeyState(fixture.key.keyId, 'Enabled');
    }
  });

  test('--coffer rotates one created coffer of the keyring class (its objects and coffer key, not the class key)', async () => {
    const prefix = await generationPrefix(LOCAL_BASE, LOCAL_ALPHA);
    const result = await runProcess(['rewrap', '-c', configFile, '--coffer', LOCAL_ALPHA, '--to-key', 'v2']);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout.toString()).toContain(`: 2 objects, 2 rewrapped, 0 already under the target key, 0 failed.`);
    expect(await envelopeKeys(prefix)).toEqual(['v2', 'v2']);
    expect(await recordKeyId(`${prefix}k/coffer-key`)).toBe('v2');
    expect(await recordKeyId(`${LOCAL_BASE}_registry/k/coffer-key`)).toBe('v1');
    await expectReadsEverything(gateway, [LOCAL_ALPHA]);
  });
});

describe('a tampered registration', () => {
  test('is refused by decrypt, counted as a failure by rewrap --class, and fails the registrations check of doctor', async () => {
    const planted = `${LOCAL_BASE}_registry/r/lteam-planted-1250000000`;
    // A registration copied from another coffer: it is bound to its own name, so it does not open here.
    const copied = await readUpstream(fixture.store, `${LOCAL_BASE}_registry/r/${LOCAL_ALPHA}`);
    await fixture.store.putObject(planted, { body: copied });
    try {
      const decrypt = await runInProcess(['decrypt', '-c', configFile, '--coffer', 'lteam-planted-1250000000', '--key', 'x']);
      expect(decrypt.code).toBe(1);
      expect(decrypt.stderr).toContain('integrity check failed (coffer-record-rejected)');
      const rewrap = await runInProcess(['rewrap', '-c', configFile, '--class', 'lteam', '--to-key', 'v2']);
      expect(rewrap.code).toBe(1);
      expect(rewrap.stderr).toContain('✗ coffer lteam-planted-1250000000: its registration was refused, not rewrapped');
      expect(rewrap.stdout.toString()).toContain('1 coffers (1 refused)');
      const doctor = await runInProcess(['doctor', '-c', configFile, '--class', 'lteam', '--quick', '--json']);
      expect(doctor.code).toBe(1);
      const registrations = (JSON.parse(doctor.stdout.toString()) as DoctorReport).classes[0]?.checks.find((c) => c.check === 'registrations');
      expect(registrations).toMatchObject({ status: 'fail', detail: expect.stringContaining('1 of 2 registrations under classes/local/_registry/r/ do not open under the class key (first: lteam-planted-1250000000)') });
    } finally {
      await fixture.store.deleteObjects([planted]);
    }
  });
});
