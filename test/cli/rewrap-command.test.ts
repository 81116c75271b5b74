/**
 * `coffer-gateway rewrap`: key rotation over objects written through the gateway by the COS SDK.
 * Only manifests change (data objects compared byte for byte and by ETag), a dry run changes nothing,
 * a second run skips everything, a failed or killed run is finished by the next, and the gateway keeps
 * reading every object byte-exact — unwrapping under the key each envelope names.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig } from '../../src/config';
import { openCoffer } from '../../src/cli/cli-coffer';
import { ObjectFailure, rewrapManifest } from '../../src/cli/rewrap-command';
import { parseSealedManifest, replaceEnvelope, sealManifestV1 } from '../../src/format/manifest';
import { createLocalKeyring } from '../../src/keys/local-keyring';
import { buildObject } from '../support/object-builder';
import type { UploadStore } from '../../src/store/ports';
import { upstreamLayout } from '../../src/store/upstream-layout';
import { KMS_COFFER, LOCAL_COFFER, MiB, PREFIXES, ensureCliBuilt, readUpstream, runInProcess, runProcess, snapshotUpstream, startCliFixture, startFixtureGateway, type CliFixture, type FixtureGateway } from './cli-fixture';
import type { TestKmsKey } from '../support/kms-test-server';
import { sha256 } from '../support/digests';

let fixture: CliFixture;
let gateway: FixtureGateway;
const objects = new Map<string, Buffer>();
const KMS_KEYS = ['logs/2026/01.log', 'logs/2026/02.log', 'photos/a.jpg', 'photos/b.jpg', 'photos/c.jpg', 'big/archive.tar', 'small/one-byte'];
const LOCAL_KEYS = ['notes/a.txt', 'notes/b.txt'];

/** Key id of every manifest's envelope in a coffer. */
async function envelopeKeys(coffer: string): Promise<Map<string, string>> {
  const layout = upstreamLayout(PREFIXES[coffer]);
  const out = new Map<string, string>();
  for (const [upstreamKey, { bytes }] of await snapshotUpstream(fixture.store, layout.manifestPrefix())) {
    out.set(layout.keyOfManifest(upstreamKey) as string, parseSealedManifest(bytes).envelope.keyId);
  }
  return out;
}

/** Upstream objects outside the manifests (data objects): must never change. */
async function dataObjects(coffer: string): Promise<Map<string, { etag: string; sha: string }>> {
  const snapshot = await snapshotUpstream(fixture.store, `${PREFIXES[coffer]}d/`);
  return new Map([...snapshot].map(([key, { etag, bytes }]) => [key, { etag, sha: sha256(bytes) }]));
}

async function manifests(coffer: string): Promise<Map<string, { etag: string; sha: string }>> {
  const snapshot = await snapshotUpstream(fixture.store, `${PREFIXES[coffer]}m/`);
  return new Map([...snapshot].map(([key, { etag, bytes }]) => [key, { etag, sha: sha256(bytes) }]));
}

async function expectGatewayReadsEverything(through: FixtureGateway): Promise<void> {
  for (const [id, data] of objects) {
    const [coffer, ...rest] = id.split('/');
    expect(sha256(await through.download(coffer as string, rest.join('/')))).toBe(sha256(data));
  }
}

/** The configuration the rewrap runs and the reading gateway use; the KMS tests switch it to one that trusts their new keys. */
let configFile: string;
const rewrap = (args: string[]) => runInProcess(['rewrap', '-c', configFile, ...args]);

beforeAll(async () => {
  ensureCliBuilt();
  fixture = await startCliFixture();
  configFile = fixture.configFile;
  gateway = await startFixtureGateway(fixture);
  const sizes: Record<string, number> = { 'big/archive.tar': 3 * MiB + 5, 'small/one-byte': 1 };
  for (const [coffer, keys] of [
    [KMS_COFFER, KMS_KEYS],
    [LOCAL_COFFER, LOCAL_KEYS],
  ] as const) {
    for (const key of keys) {
      const data = randomBytes(sizes[key] ?? 1000 + key.length);
      await gateway.upload(coffer, key, data);
      objects.set(`${coffer}/${key}`, data);
    }
  }
}, 180_000);

afterAll(async () => {
  await gateway?.stop();
  await fixture?.close();
});

describe('AWS KMS coffer', () => {
  let next: TestKmsKey;
  let third: TestKmsKey;
  beforeAll(async () => {
    next = fixture.kms.createKey({ alias: 'alias/coffer-cli-2026', description: 'second key' });
    third = fixture.kms.createKey({ alias: 'alias/coffer-cli-third' });
    // A rotation starts by trusting the new keys: reads (and rewrap's sources) unwrap only under configured keys.
    configFile = fixture.writeConfig('config-rotating', { [KMS_COFFER]: { kms: { previousKeyIds: [next.arn, third.arn] } }, [LOCAL_COFFER]: null });
    await gateway.stop();
    gateway = await startFixtureGateway(fixture, configFile);
  });

  test('--dry-run reports every object and changes nothing (no wrapping KMS call, no upstream write)', async () => {
    const before = await snapshotUpstream(fixture.store, PREFIXES[KMS_COFFER] as string);
    const calls = fixture.kms.calls.length;
    const result = await rewrap(['--coffer', KMS_COFFER, '--to-key', 'alias/coffer-cli-2026', '--dry-run']);
    expect(result.code).toBe(0);
    const out = result.stdout.toString();
    for (const key of KMS_KEYS) expect(out).toContain(`would rewrap ${key}: ${fixture.key.arn} -> ${next.arn}`);
    expect(out).toContain(`${KMS_KEYS.length} objects, ${KMS_KEYS.length} would be rewrapped, 0 already under the target key, 0 failed. Nothing was changed.`);
    expect(fixture.kms.calls.slice(calls).map((c) => c.operation)).toEqual(['DescribeKey']);
    const after = await snapshotUpstream(fixture.store, PREFIXES[KMS_COFFER] as string);
    expect([...after].map(([k, v]) => [k, v.etag, sha256(v.bytes)])).toEqual([...before].map(([k, v]) => [k, v.etag, sha256(v.bytes)]));
  });

  test('--prefix as a child process: only those manifests change; data objects are untouched', async () => {
    const data = await dataObjects(KMS_COFFER);
    const before = await manifests(KMS_COFFER);
    const result = await runProcess(['rewrap', '-c', configFile, '--coffer', KMS_COFFER, '--prefix', 'logs/', '--to-key', next.keyId]);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout.toString()).toContain(`rewrap, coffer ${KMS_COFFER} (prefix "logs/"), to ${next.arn}: 2 objects, 2 rewrapped, 0 already under the target key, 0 failed.`);
    const keys = await envelopeKeys(KMS_COFFER);
    for (const key of KMS_KEYS) expect(keys.get(key)).toBe(key.startsWith('logs/') ? next.arn : fixture.key.arn);
    const after = await manifests(KMS_COFFER);
    for (const [key, value] of after) {
      if (key.includes('/m/logs/')) expect(value.sha).not.toBe(before.get(key)?.sha);
      else expect(value).toEqual(before.get(key));
    }
    expect(await dataObjects(KMS_COFFER)).toEqual(data);
  });

  test('a run with failures exits 1 and names them; the rerun finishes only those; a third run skips all', async () => {
    const data = await dataObjects(KMS_COFFER);
    fixture.kms.failNext(2, 'AccessDeniedException', 'ReEncrypt');
    const first = await rewrap(['--coffer', KMS_COFFER, '--to-key', 'alias/coffer-cli-2026', '--concurrency', '1']);
    expect(first.code).toBe(1);
    expect(first.stderr.match(/^✗ .+: KMSFailed: KMS ReEncrypt failed after 1 attempt: AccessDeniedException/gm)).toHaveLength(2);
    expect(first.stdout.toString()).toContain(`${KMS_KEYS.length} objects, ${KMS_KEYS.length - 4} rewrapped, 2 already under the target key, 2 failed.`);
    expect([...(await envelopeKeys(KMS_COFFER)).values()].filter((k) => k === next.arn)).toHaveLength(KMS_KEYS.length - 2);

    const reEncrypts = fixture.kms.callCount('ReEncrypt');
    const second = await rewrap(['--coffer', KMS_COFFER, '--to-key', 'alias/coffer-cli-2026']);
    expect(second.code).toBe(0);
    expect(second.stdout.toString()).toContain(`${KMS_KEYS.length} objects, 2 rewrapped, ${KMS_KEYS.length - 2} already under the target key, 0 failed.`);
    expect(fixture.kms.callCount('ReEncrypt') - reEncrypts).toBe(2);

    const settled = await manifests(KMS_COFFER);
    const third = await rewrap(['--coffer', KMS_COFFER, '--to-key', next.arn]);
    expect(third.code).toBe(0);
    expect(third.stdout.toString()).toContain(`${KMS_KEYS.length} objects, 0 rewrapped, ${KMS_KEYS.length} already under the target key, 0 failed.`);
    expect(fixture.kms.callCount('ReEncrypt') - reEncrypts).toBe(2);
    expect(await manifests(KMS_COFFER)).toEqual(settled);
    expect([...(await envelopeKeys(KMS_COFFER)).values()].every((k) => k === next.arn)).toBe(true);
    expect(await dataObjects(KMS_COFFER)).toEqual(data);
  });

  test('the gateway still reads every object byte-exact, unwrapping under the new key (config names the old one and trusts the new)', async () => {
    const before = fixture.kms.calls.length;
    await expectGatewayReadsEverything(gateway);
    const decrypts = fixture.kms.calls.slice(before).filter((c) => c.operation === 'Decrypt');
    expect(decrypts.length).toBeGreaterThanOrEqual(KMS_KEYS.length);
    expect(decrypts.every((c) => c.status === 200 && c.requestedKeyId === next.arn && c.keyArn === next.arn)).toBe(true);
    // A gateway whose configuration does not list the new key never unwraps under it: KMS refuses.
    const strict = await startFixtureGateway(fixture);
    try {
      await expect(strict.download(KMS_COFFER, KMS_KEYS[0] as string)).rejects.toMatchObject({ code: 'KMSFailed' });
      expect(fixture.kms.calls.filter((c) => c.operation === 'Decrypt').at(-1)).toMatchObject({ requestedKeyId: fixture.key.arn });
    } finally {
      await strict.stop();
    }
    // A gateway configured with the new key reads them too, and new objects are sealed under it.
    const config = fixture.writeConfig('config-next', { [KMS_COFFER]: { kms: { keyId: 'alias/coffer-cli-2026' } }, [LOCAL_COFFER]: null });
    const renewed = await startFixtureGateway(fixture, config);
    try {
      await expectGatewayReadsEverything(renewed);
      const fresh = randomBytes(1234);
      await renewed.upload(KMS_COFFER, 'after/rotation.bin', fresh);
      objects.set(`${KMS_COFFER}/after/rotation.bin`, fresh);
      expect((await envelopeKeys(KMS_COFFER)).get('after/rotation.bin')).toBe(next.arn);
    } finally {
      await renewed.stop();
    }
  });

  test('killed mid-run (SIGKILL) as a child process: every object stays readable, and the rerun finishes the rest', async () => {
    const data = await dataObjects(KMS_COFFER);
    const total = objects.size - LOCAL_KEYS.length;
    fixture.kms.addFailure({ operation: 'ReEncrypt', latencyMs: 150 });
    let pid = 0;
    const running = runProcess(['rewrap', '-c', configFile, '--coffer', KMS_COFFER, '--to-key', 'alias/coffer-cli-third', '--concurrency', '1'], { onSpawn: (p) => (pid = p) });
    const doneBefore = (): number => fixture.kms.calls.filter((c) => c.operation === 'ReEncrypt' && c.keyArn === third.arn && c.status === 200).length;
    const deadline = Date.now() + 30_000;
    while (doneBefore() < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    process.kill(pid, 'SIGKILL');
    const killed = await running;
    fixture.kms.script.clear();
    expect(killed.code).toBe(128);
    const keys = [...(await envelopeKeys(KMS_COFFER)).values()];
    const moved = keys.filter((k) => k === third.arn).length;
    expect(moved).toBeGreaterThanOrEqual(2);
    expect(moved).toBeLessThan(total);
    await expectGatewayReadsEverything(gateway);

    const rerun = await runProcess(['rewrap', '-c', configFile, '--coffer', KMS_COFFER, '--to-key', third.arn]);
    expect(rerun.code).toBe(0);
    expect(rerun.stdout.toString()).toContain(`${total} objects, ${total - moved} rewrapped, ${moved} already under the target key, 0 failed.`);
    expect([...(await envelopeKeys(KMS_COFFER)).values()].every((k) => k === third.arn)).toBe(true);
    await expectGatewayReadsEverything(gateway);
    expect(await dataObjects(KMS_COFFER)).toEqual(data);
  });

  test('a target key that cannot be used stops the run before any object (exit 1)', async () => {
    const disabled = fixture.kms.createKey({ state: 'Disabled' });
    const before = await manifests(KMS_COFFER);
    const result = await rewrap(['--coffer', KMS_COFFER, '--to-key', disabled.arn]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`the target key ${disabled.arn} cannot be used`);
    expect(await manifests(KMS_COFFER)).toEqual(before);
  });
});

describe('concurrent writers', () => {
  /** A store that lets a test change the manifest between rewrap's reads and writes. */
  function interceptingStore(inner: UploadStore, hooks: { onGet?: (key: string, count: number) => Promise<void>; onPut?: (key: string) => Promise<void> }): UploadStore {
    const gets = new Map<string, number>();
    return Object.assign(Object.create(inner) as UploadStore, {
      getObject: async (key: string, range?: { start: number; endExclusive: number }) => {
        const count = (gets.get(key) ?? 0) + 1;
        gets.set(key, count);
        await hooks.onGet?.(key, count);
        return inner.getObject(key, range);
      },
      putObject: async (key: string, upload: { body: Buffer }) => {
        const result = await inner.putObject(key, upload);
        await hooks.onPut?.(key);
        return result;
      },
    });
  }

  test('a manifest changed between the read and the write is not overwritten; one replaced right after is reported', async () => {
    const config = loadConfig({ file: fixture.configFile, env: {} });
    const opened = openCoffer(config, LOCAL_COFFER, 'test');
    try {
      const key = 'notes/a.txt';
      const upstreamKey = opened.layout.manifest(key);
      const original = await readUpstream(fixture.store, upstreamKey);
      const envelope = parseSealedManifest(original).envelope;
      // Another writer's version: the same manifest, its data key rewrapped elsewhere.
      const other = await opened.keys.rewrapDataKey(envelope.wrappedKey, { coffer: LOCAL_COFFER, key }, envelope.keyId, 'concurrent');
      const theirs = replaceEnvelope(original, { ...envelope, keyId: other.keyId, wrappedKey: other.wrapped });

      const changedBeforeWrite = interceptingStore(opened.store(), {
        onGet: async (k, count) => {
          if (k === upstreamKey && count === 2) await fixture.store.putObject(upstreamKey, { body: theirs });
        },
      });
      await expect(rewrapManifest(opened, changedBeforeWrite, key, 'v9', false)).rejects.toThrow(new ObjectFailure('the manifest changed while it was being rewrapped; run again'));
      expect((await readUpstream(fixture.store, upstreamKey)).equals(theirs)).toBe(true);

      const replacedAfterWrite = interceptingStore(opened.store(), {
        onPut: async (k) => {
          if (k === upstreamKey) await fixture.store.putObject(upstreamKey, { body: original });
        },
      });
      await expect(rewrapManifest(opened, replacedAfterWrite, key, 'v9', false)).rejects.toThrow(/replaced by another writer right after the rewrap/);

      // The run that did it anyway: a rerun skips what the other writer already finished.
      const finishedByOther = interceptingStore(opened.store(), {
        onGet: async (k, count) => {
          if (k !== upstreamKey || count !== 2) return;
          const current = await readUpstream(fixture.store, upstreamKey);
          const env = parseSealedManifest(current).envelope;
          const done = await opened.keys.rewrapDataKey(env.wrappedKey, { coffer: LOCAL_COFFER, key }, env.keyId, 'v9');
          await fixture.store.putObject(upstreamKey, { body: replaceEnvelope(current, { ...env, keyId: done.keyId, wrappedKey: done.wrapped }) });
        },
      });
      expect(await rewrapManifest(opened, finishedByOther, key, 'v9', false)).toEqual({ kind: 'skipped' });
      expect(await rewrapManifest(opened, opened.store(), key, 'v1', false)).toEqual({ kind: 'rewrapped' });
      expect(parseSealedManifest(await readUpstream(fixture.store, upstreamKey)).envelope.keyId).toBe('v1');
    } finally {
      opened.close();
    }
  });
});

describe('local keyring coffer', () => {
  test('rewraps to a new keyring key (created, as keyring.create says) and the gateway reads everything', async () => {
    const data = await dataObjects(LOCAL_COFFER);
    const dry = await rewrap(['--coffer', LOCAL_COFFER, '--to-key', 'v2', '--dry-run']);
    expect(dry.code).toBe(0);
    expect(existsSync(join(fixture.directory, 'keyring', 'v2.key'))).toBe(false);
    const result = await rewrap(['--coffer', LOCAL_COFFER, '--to-key', 'v2']);
    expect(result.code).toBe(0);
    expect(result.stdout.toString()).toContain(`${LOCAL_KEYS.length} objects, ${LOCAL_KEYS.length} rewrapped`);
    expect(existsSync(join(fixture.directory, 'keyring', 'v2.key'))).toBe(true);
    expect([...(await envelopeKeys(LOCAL_COFFER)).values()]).toEqual(LOCAL_KEYS.map(() => 'v2'));
    expect(await dataObjects(LOCAL_COFFER)).toEqual(data);
    await expectGatewayReadsEverything(gateway);
    const bad = await rewrap(['--coffer', LOCAL_COFFER, '--to-key', '../etc']);
    expect(bad.code).toBe(2);
  });

  test('a format 1 object is read, rewrapped (it stays format 1) and decrypted; a forged "already done" keyId is a failure, never a skip; the coffer key is rewrapped too', async () => {
    const layout = upstreamLayout(PREFIXES[LOCAL_COFFER]);
    const key = 'legacy/format-1.bin';
    // An object as the previous release wrote it: a v1 manifest (clear body, MAC) under the keyring key 'v2'.
    const keyring = createLocalKeyring({ directory: join(fixture.directory, 'keyring'), keyId: 'v2' });
    const dataKey = await keyring.generateDataKey({ coffer: LOCAL_COFFER, key });
    const built = await buildObject({ partSizes: [70000, 1234], dataKey: dataKey.plaintext });
    await fixture.store.putObject(layout.data(key, built.manifest.objectId.toString('hex')), { body: built.data });
    await fixture.store.putObject(layout.manifest(key), { body: sealManifestV1(built.manifest, { provider: 'local', keyId: 'v2', wrappedKey: dataKey.wrapped, context: { coffer: LOCAL_COFFER, key } }, dataKey.plaintext) });
    objects.set(`${LOCAL_COFFER}/${key}`, built.plaintext);
    await expectGatewayReadsEverything(gateway);

    // An envelope that claims the target key without being sealed under it: reported, not skipped.
    const forgedKey = layout.manifest(LOCAL_KEYS[0] as string);
    const original = await readUpstream(fixture.store, forgedKey);
    await fixture.store.putObject(forgedKey, { body: replaceEnvelope(original, { ...parseSealedManifest(original).envelope, keyId: 'v3' }) });
    const forged = await rewrap(['--coffer', LOCAL_COFFER, '--to-key', 'v3']);
    expect(forged.code).toBe(1);
    expect(forged.stderr.toString()).toContain(LOCAL_KEYS[0] as string);
    expect(forged.stdout.toString()).toContain('0 already under the target key');
    await fixture.store.putObject(forgedKey, { body: original });

    const result = await rewrap(['--coffer', LOCAL_COFFER, '--to-key', 'v3']);
    expect(result.code).toBe(0);
    expect(result.stdout.toString()).toMatch(/already under the target key/);
    expect([...(await envelopeKeys(LOCAL_COFFER)).values()].every((id) => id === 'v3')).toBe(true);
    expect(parseSealedManifest(await readUpstream(fixture.store, layout.manifest(key))).version).toBe(1);
    const cofferKeyRecord = JSON.parse((await readUpstream(fixture.store, layout.cofferKey())).toString('utf8')) as { envelope: { keyId: string } };
    expect(cofferKeyRecord.envelope.keyId).toBe('v3');
    await expectGatewayReadsEverything(gateway);
    const again = await rewrap(['--coffer', LOCAL_COFFER, '--to-key', 'v3']);
    expect(again.stdout.toString()).toContain(`${LOCAL_KEYS.length + 1} already under the target key`);

    const out = join(fixture.directory, 'format-1.out');
    const decrypted = await runInProcess(['decrypt', '-c', configFile, '--coffer', LOCAL_COFFER, '--key', key, '-o', out]);
    expect(decrypted.code).toBe(0);
    expect(sha256(readFileSync(out))).toBe(sha256(built.plaintext));
  });

  test('--help', async () => {
    const help = await runProcess(['rewrap', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout.toString()).toContain('--to-key <key id>');
  });
});
