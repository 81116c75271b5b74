/**
 * `coffer-gateway decrypt`: objects written through the gateway by the official COS SDK (multipart,
 * several parts) are recovered byte-exact without the gateway — from the upstream bucket and from
 * downloaded files — and tampered data never yields an unverified byte.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { upstreamLayout } from '../../src/store/upstream-layout';
import { KMS_COFFER, LOCAL_COFFER, MiB, PREFIXES, dataObjectKey, ensureCliBuilt, readUpstream, runInProcess, runProcess, startCliFixture, startFixtureGateway, type CliFixture, type FixtureGateway } from './cli-fixture';
import { sha256 } from '../support/digests';

let fixture: CliFixture;
let gateway: FixtureGateway;
const objects = new Map<string, Buffer>();
let out = 0;
const outFile = (): string => join(fixture.directory, `out-${(out += 1)}.bin`);

/** Downloads an object's two upstream objects, as an operator with bucket access would. */
async function download(coffer: string, key: string): Promise<{ manifestFile: string; dataFile: string; manifest: Buffer; data: Buffer }> {
  const manifest = await readUpstream(fixture.store, upstreamLayout(PREFIXES[coffer]).manifest(key));
  const data = await readUpstream(fixture.store, await dataObjectKey(fixture.store, coffer, key));
  const manifestFile = join(fixture.directory, `m-${randomBytes(4).toString('hex')}`);
  const dataFile = join(fixture.directory, `d-${randomBytes(4).toString('hex')}`);
  writeFileSync(manifestFile, manifest);
  writeFileSync(dataFile, data);
  return { manifestFile, dataFile, manifest, data };
}

beforeAll(async () => {
  ensureCliBuilt();
  fixture = await startCliFixture();
  gateway = await startFixtureGateway(fixture);
  for (const [coffer, key, size] of [
    [KMS_COFFER, 'backups/db.bin', 3 * MiB + 12345],
    [KMS_COFFER, 'backups/large.bin', 7 * MiB + 1],
    [LOCAL_COFFER, 'notes/today.txt', 2 * MiB + 7],
  ] as const) {
    const data = randomBytes(size);
    const etag = await gateway.upload(coffer, key, data);
    expect(etag).toMatch(new RegExp(`-${Math.ceil(size / MiB)}"$`));
    objects.set(`${coffer}/${key}`, data);
  }
}, 180_000);

afterAll(async () => {
  await gateway?.stop();
  await fixture?.close();
});

const data = (coffer: string, key: string): Buffer => objects.get(`${coffer}/${key}`) as Buffer;

describe('as a child process (node dist/src/cli.js)', () => {
  test('online: a multipart object from the upstream bucket to a file, byte-exact, no .partial left', async () => {
    const file = outFile();
    const result = await runProcess(['decrypt', '-c', fixture.configFile, '--coffer', KMS_COFFER, '--key', 'backups/large.bin', '-o', file]);
    expect(result.stderr).toMatch(/backups\/large\.bin: 7340033 bytes verified, ETag "[0-9a-f]{32}-8"/);
    expect(result.code).toBe(0);
    expect(sha256(readFileSync(file))).toBe(sha256(data(KMS_COFFER, 'backups/large.bin')));
    expect(existsSync(`${file}.partial`)).toBe(false);
  });

  test('online to stdout (a pipe): exactly the plaintext', async () => {
    const result = await runProcess(['decrypt', '-c', fixture.configFile, '--coffer', KMS_COFFER, '--key', 'backups/db.bin']);
    expect(result.code).toBe(0);
    expect(sha256(result.stdout)).toBe(sha256(data(KMS_COFFER, 'backups/db.bin')));
  });

  test('--help, and usage errors exit 2', async () => {
    const help = await runProcess(['decrypt', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout.toString()).toContain('--manifest-file');
    const missing = await runProcess(['decrypt', '-c', fixture.configFile, '--coffer', KMS_COFFER]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('--key is required');
  });
});

describe('in process', () => {
  test('offline from the downloaded manifest and data object, for both key providers', async () => {
    for (const [coffer, key] of [
      [KMS_COFFER, 'backups/db.bin'],
      [LOCAL_COFFER, 'notes/today.txt'],
    ] as const) {
      const files = await download(coffer, key);
      const file = outFile();
      const result = await runInProcess(['decrypt', '-c', fixture.configFile, '--coffer', coffer, '--key', key, '--manifest-file', files.manifestFile, '--data-file', files.dataFile, '-o', file]);
      expect(result.stderr).toContain('bytes verified');
      expect(result.code).toBe(0);
      expect(sha256(readFileSync(file))).toBe(sha256(data(coffer, key)));
    }
  });

  test('offline needs the exact object key: the key is the KMS encryption context', async () => {
    const files = await download(KMS_COFFER, 'backups/db.bin');
    const result = await runInProcess(['decrypt', '-c', fixture.configFile, '--coffer', KMS_COFFER, '--key', 'backups/other.bin', '--manifest-file', files.manifestFile, '--data-file', files.dataFile]);
    expect(result.code).toBe(1);
    // The wrapped key does not unwrap under another name: the envelope is rejected as not this object's.
    expect(result.stderr).toContain('envelope-rejected');
    expect(result.stdout.length).toBe(0);
  });

  test('--range across a part boundary', async () => {
    const result = await runInProcess(['decrypt', '-c', fixture.configFile, '--coffer', KMS_COFFER, '--key', 'backups/db.bin', '--range', `${MiB - 10}-${2 * MiB + 10}`, '-o', '-']);
    expect(result.code).toBe(0);
    expect(result.stdout.equals(data(KMS_COFFER, 'backups/db.bin').subarray(MiB - 10, 2 * MiB + 11))).toBe(true);
  });

  test('a flipped bit in a later part: exit 1, the file is never created and .partial holds only a verified prefix', async () => {
    const key = 'backups/large.bin';
    const plaintext = data(KMS_COFFER, key);
    const files = await download(KMS_COFFER, key);
    const tampered = Buffer.from(files.data);
    // Inside part 5's ciphertext (parts are 1 MiB of plaintext, 100-byte headers, 16-byte tags per 64 KiB).
    const at = 4 * (MiB + 100 + 16 * 16) + 100 + 70_000;
    tampered[at] = (tampered[at] as number) ^ 0x01;
    writeFileSync(files.dataFile, tampered);
    const file = outFile();
    const result = await runInProcess(['decrypt', '-c', fixture.configFile, '--coffer', KMS_COFFER, '--key', key, '--manifest-file', files.manifestFile, '--data-file', files.dataFile, '-o', file]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/integrity check failed \(segment-authentication-failed\)/);
    expect(existsSync(file)).toBe(false);
    const partial = readFileSync(`${file}.partial`);
    expect(partial.length).toBeGreaterThan(0);
    expect(partial.length).toBeLessThan(4 * MiB + 70_000);
    expect(partial.equals(plaintext.subarray(0, partial.length))).toBe(true);
    expect(result.stderr).toContain(`${partial.length} bytes) verified and written before the failure`);
  });

  test('tampered data in the upstream bucket, to stdout: exit 1 and stdout is a strict verified prefix', async () => {
    const key = 'backups/db.bin';
    const plaintext = data(KMS_COFFER, key);
    const upstreamKey = await dataObjectKey(fixture.store, KMS_COFFER, key);
    const original = await readUpstream(fixture.store, upstreamKey);
    const tampered = Buffer.from(original);
    const at = 2 * (MiB + 100 + 16 * 16) + 100 + 5;
    tampered[at] = (tampered[at] as number) ^ 0x80;
    await fixture.store.putObject(upstreamKey, { body: tampered });
    try {
      const result = await runInProcess(['decrypt', '-c', fixture.configFile, '--coffer', KMS_COFFER, '--key', key]);
      expect(result.code).toBe(1);
      expect(result.stdout.length).toBe(2 * MiB);
      expect(result.stdout.equals(plaintext.subarray(0, 2 * MiB))).toBe(true);
      expect(result.stderr).toContain('stdout received only verified bytes');
    } finally {
      await fixture.store.putObject(upstreamKey, { body: original });
    }
  });

  test('a truncated data object or an altered manifest: exit 1, nothing written at all', async () => {
    const key = 'notes/today.txt';
    const files = await download(LOCAL_COFFER, key);
    writeFileSync(files.dataFile, files.data.subarray(0, files.data.length - 1));
    const truncated = outFile();
    const first = await runInProcess(['decrypt', '-c', fixture.configFile, '--coffer', LOCAL_COFFER, '--key', key, '--manifest-file', files.manifestFile, '--data-file', files.dataFile, '-o', truncated]);
    expect(first.code).toBe(1);
    expect(first.stderr).toContain('length-mismatch');
    expect(existsSync(truncated) || existsSync(`${truncated}.partial`)).toBe(false);

    writeFileSync(files.dataFile, files.data);
    const manifest = Buffer.from(files.manifest);
    manifest[manifest.length - 40] = (manifest[manifest.length - 40] as number) ^ 0x01; // inside the MAC-covered body
    writeFileSync(files.manifestFile, manifest);
    const altered = outFile();
    const second = await runInProcess(['decrypt', '-c', fixture.configFile, '--coffer', LOCAL_COFFER, '--key', key, '--manifest-file', files.manifestFile, '--data-file', files.dataFile, '-o', altered]);
    expect(second.code).toBe(1);
    expect(second.stderr).toMatch(/integrity check failed \((manifest-authentication-failed|malformed)\)/);
    expect(existsSync(altered) || existsSync(`${altered}.partial`)).toBe(false);
  });

  test('KMS refusing the data key: exit 1 with the reason, nothing written', async () => {
    fixture.kms.failNext(1, 'AccessDeniedException', 'Decrypt');
    const file = outFile();
    const result = await runInProcess(['decrypt', '-c', fixture.configFile, '--coffer', KMS_COFFER, '--key', 'backups/db.bin', '-o', file]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/KMSFailed: KMS Decrypt failed after 1 attempt: AccessDeniedException/);
    expect(existsSync(file) || existsSync(`${file}.partial`)).toBe(false);
  });

  test('operator errors: unknown object, unknown coffer, existing output, half an offline pair', async () => {
    const missing = await runInProcess(['decrypt', '-c', fixture.configFile, '--coffer', KMS_COFFER, '--key', 'nope.bin']);
    expect(missing).toMatchObject({ code: 1 });
    expect(missing.stderr).toContain('no object "nope.bin" in coffer kms-1250000000: there is no manifest coffers/kms/m/nope.bin');
    const coffer = await runInProcess(['decrypt', '-c', fixture.configFile, '--coffer', 'other-1250000000', '--key', 'x']);
    expect(coffer.code).toBe(1);
    expect(coffer.stderr).toContain('Configured coffers: kms-1250000000, local-1250000000');
    const file = outFile();
    writeFileSync(file, 'keep me');
    const exists = await runInProcess(['decrypt', '-c', fixture.configFile, '--coffer', KMS_COFFER, '--key', 'backups/db.bin', '-o', file]);
    expect(exists.code).toBe(1);
    expect(readFileSync(file, 'utf8')).toBe('keep me');
    const forced = await runInProcess(['decrypt', '-c', fixture.configFile, '--coffer', KMS_COFFER, '--key', 'backups/db.bin', '-o', file, '--force']);
    expect(forced.code).toBe(0);
    expect(sha256(readFileSync(file))).toBe(sha256(data(KMS_COFFER, 'backups/db.bin')));
    const half = await runInProcess(['decrypt', '-c', fixture.configFile, '--coffer', KMS_COFFER, '--key', 'x', '--manifest-file', file]);
    expect(half.code).toBe(2);
  });
});
