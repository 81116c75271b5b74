/**
 * `coffer-gateway doctor`: passes on a good configuration (static keys and an STS role), and names each
 * broken dependency on its own line with exit code 1 — wrong upstream credentials, an unreachable
 * endpoint, a KMS key that refuses the role, STS refusing the role, a bucket that cannot be written, a
 * minimum part size the upstream does not honour — without printing a secret or leaving a probe behind.
 */
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { probeKey, type DoctorReport } from '../../src/cli/doctor-command';
import { createLocalKeyring } from '../../src/keys/local-keyring';
import { upstreamLayout } from '../../src/store/upstream-layout';
import { startS3TestProxy, type S3TestProxy } from '../support/s3-test-proxy';
import { KMS_COFFER, LOCAL_COFFER, ROLE_ARN, ensureCliBuilt, runInProcess, runProcess, snapshotUpstream, startCliFixture, type CliFixture, type CofferOverrides } from './cli-fixture';

let fixture: CliFixture;
let readOnly: S3TestProxy;
let resigning: S3TestProxy;

beforeAll(async () => {
  ensureCliBuilt();
  fixture = await startCliFixture();
  readOnly = await startS3TestProxy({ target: fixture.upstream.endpoint, region: 'us-east-1', denyWrites: true });
  resigning = await startS3TestProxy({ target: fixture.upstream.endpoint, region: 'us-east-1', resignWith: fixture.upstreamKeys });
  // The local coffer's key exists, as it would once the gateway ran.
  await createLocalKeyring({ directory: join(fixture.directory, 'keyring'), keyId: 'v1', create: true }).generateDataKey({});
}, 120_000);

afterAll(async () => {
  await readOnly?.close();
  await resigning?.close();
  await fixture?.close();
});

/** The checks of one coffer from a text report: name → [symbol, detail]. */
function checksOf(report: string, coffer: string): Map<string, [string, string]> {
  const lines = report.split('\n');
  const start = lines.indexOf(`coffer ${coffer}`);
  expect(start).toBeGreaterThanOrEqual(0);
  const out = new Map<string, [string, string]>();
  for (const line of lines.slice(start + 1)) {
    const match = /^ {2}(✓|✗|–) ([^:]+): (.*)$/.exec(line);
    if (match === null) break;
    out.set(match[2] as string, [match[1] as string, match[3] as string]);
  }
  return out;
}

const doctor = (coffers: Record<string, CofferOverrides | null>, name: string, args: string[] = []) => runInProcess(['doctor', '-c', fixture.writeConfig(name, coffers), ...args]);

async function expectNoProbeLeft(): Promise<void> {
  const left = [...(await snapshotUpstream(fixture.store, '')).keys()];
  expect(left).toEqual([]);
}

test('a good configuration passes every check (child process), prints no secret and leaves nothing upstream', async () => {
  const result = await runProcess(['doctor', '-c', fixture.configFile]);
  const report = result.stdout.toString();
  expect(result.code).toBe(0);
  expect(report).toMatch(/^✓ configuration: valid \(2 coffers\)$/m);
  const kms = checksOf(report, KMS_COFFER);
  expect([...kms.keys()]).toEqual(['credentials', 'key provider', 'upstream read', 'upstream write', 'upstream part size']);
  expect([...kms.values()].every(([symbol]) => symbol === '✓')).toBe(true);
  expect(kms.get('key provider')?.[1]).toBe(`KMS key ${fixture.key.arn}: GenerateDataKey and Decrypt with the coffer's encryption context`);
  expect(kms.get('upstream write')?.[1]).toMatch(new RegExp(`^bucket coffer-cli at ${fixture.upstream.endpoint}: wrote, read back and deleted coffers/kms/doctor/[0-9a-f]{24}$`));
  expect(kms.get('upstream part size')?.[1]).toContain('a 5242880-byte part followed by a 1-byte part completes');
  const local = checksOf(report, LOCAL_COFFER);
  expect(local.get('key provider')).toEqual(['✓', expect.stringMatching(/^local keyring key v1: data key generated and unwrapped with the coffer's encryption context; \d+ of 4294967296 wraps used \(/)]);
  expect(report).toMatch(/^all 10 checks passed$/m);
  for (const secret of [fixture.upstreamKeys.secretAccessKey, fixture.upstreamKeys.accessKeyId]) {
    expect(report).not.toContain(secret);
    expect(result.stderr).not.toContain(secret);
  }
  // The encryption context the KMS check used is the coffer's: {coffer, key}.
  const generate = fixture.kms.calls.filter((c) => c.operation === 'GenerateDataKey').at(-1);
  expect(generate?.encryptionContext).toEqual({ coffer: KMS_COFFER, key: expect.stringMatching(/^doctor\/[0-9a-f]{24}$/) });
  await expectNoProbeLeft();
});

test('--json, --coffer and --quick', async () => {
  const result = await runInProcess(['doctor', '-c', fixture.configFile, '--coffer', LOCAL_COFFER, '--quick', '--json']);
  expect(result.code).toBe(0);
  const report = JSON.parse(result.stdout.toString()) as DoctorReport;
  expect(report.ok).toBe(true);
  expect(report.configuration).toEqual({ ok: true, problems: [], coffers: 2, classes: 0 });
  expect(report.coffers.map((c) => [c.coffer, c.checks.map((k) => [k.check, k.status])])).toEqual([
    [
      LOCAL_COFFER,
      [
        ['credentials', 'pass'],
        ['key provider', 'pass'],
        ['upstream read', 'pass'],
        ['upstream write', 'pass'],
      ],
    ],
  ]);
  const unknown = await runInProcess(['doctor', '-c', fixture.configFile, '--coffer', 'nope-1250000000']);
  expect(unknown.code).toBe(1);
  expect(unknown.stdout.toString()).toContain('✗ coffer: nope-1250000000 is not configured');
});

test('an STS role: assumed, and its session credentials used for KMS and the upstream', async () => {
  const before = fixture.kms.calls.length;
  const proxied = resigning.requests.length;
  const result = await doctor({ [KMS_COFFER]: { role: { type: 'sts', roleArn: ROLE_ARN, endpoint: fixture.sts.endpoint }, upstream: { endpoint: resigning.endpoint } } }, 'sts-good', ['--quick']);
  const report = result.stdout.toString();
  expect(result.code).toBe(0);
  expect(checksOf(report, KMS_COFFER).get('credentials')).toEqual(['✓', expect.stringMatching(new RegExp(`^assumed ${ROLE_ARN} through STS ${fixture.sts.endpoint}, valid until \\d{4}-`))]);
  const issued = fixture.sts.issued.at(-1);
  expect(issued?.roleSessionName).toBe('coffer-gateway-doctor');
  expect(fixture.kms.calls.slice(before).every((c) => c.accessKeyId === issued?.accessKeyId)).toBe(true);
  expect(report).not.toContain(issued?.secretAccessKey);
  expect(report).not.toContain(issued?.sessionToken);
  expect(resigning.requests.slice(proxied).map((r) => r.method)).toEqual(['GET', 'PUT', 'GET', 'POST']);
});

test('STS refusing the role: credentials ✗, the checks that need them skipped, exit 1', async () => {
  const result = await doctor({ [KMS_COFFER]: { role: { type: 'sts', roleArn: 'arn:aws:iam::111122223333:role/not-allowed', endpoint: fixture.sts.endpoint } } }, 'sts-denied');
  expect(result.code).toBe(1);
  const checks = checksOf(result.stdout.toString(), KMS_COFFER);
  expect(checks.get('credentials')).toEqual(['✗', expect.stringMatching(/^cannot assume arn:aws:iam::111122223333:role\/not-allowed: AssumeRoleFailed: STS AssumeRole failed after 1 attempt: AccessDenied/)]);
  expect(checks.get('key provider')?.[0]).toBe('–');
  expect(checks.get('upstream')?.[0]).toBe('–');
  expect(result.stdout.toString()).toMatch(/^1 of 1 checks failed$/m);
});

test('a KMS key that refuses the role: key provider ✗, everything else ✓, exit 1', async () => {
  const guarded = fixture.kms.createKey({ allowedPrincipals: ['arn:aws:iam::111122223333:user/someone-else'] });
  const result = await doctor({ [KMS_COFFER]: { kms: { keyId: guarded.arn } } }, 'kms-denied', ['--quick']);
  expect(result.code).toBe(1);
  const checks = checksOf(result.stdout.toString(), KMS_COFFER);
  expect(checks.get('key provider')).toEqual(['✗', `KMS key ${guarded.arn}: GenerateDataKey failed: KMSFailed: KMS GenerateDataKey failed after 1 attempt: AccessDeniedException, HTTP 400. (access-denied)`]);
  expect([...checks].filter(([, [symbol]]) => symbol !== '✓').map(([name]) => name)).toEqual(['key provider']);
});

test("wrong upstream credentials: upstream read ✗ with the upstream's code, the keyring still ✓", async () => {
  const result = await doctor({ [LOCAL_COFFER]: { upstream: { credentials: { accessKeyId: fixture.upstreamKeys.accessKeyId, secretAccessKey: 'not-the-right-secret-0123' } } } }, 'wrong-creds');
  expect(result.code).toBe(1);
  const checks = checksOf(result.stdout.toString(), LOCAL_COFFER);
  expect(checks.get('key provider')?.[0]).toBe('✓');
  expect(checks.get('upstream read')).toEqual(['✗', expect.stringContaining('cannot list bucket coffer-cli at ') as string]);
  expect(checks.get('upstream read')?.[1]).toContain('SignatureDoesNotMatch (HTTP 403)');
  expect(checks.get('upstream write')).toEqual(['–', 'skipped: the bucket cannot be read']);
  expect(result.stdout.toString()).not.toContain('not-the-right-secret-0123');
});

test('an unreachable upstream endpoint: upstream read ✗ (ECONNREFUSED)', async () => {
  const closed = await new Promise<number>((resolve) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
  const result = await doctor({ [LOCAL_COFFER]: { upstream: { endpoint: `http://127.0.0.1:${closed}` } } }, 'unreachable');
  expect(result.code).toBe(1);
  expect(checksOf(result.stdout.toString(), LOCAL_COFFER).get('upstream read')).toEqual(['✗', expect.stringContaining('could not be reached (ECONNREFUSED)') as string]);
});

test('a bucket that can be read but not written: upstream write ✗ (AccessDenied), part-size check skipped', async () => {
  const result = await doctor({ [LOCAL_COFFER]: { upstream: { endpoint: readOnly.endpoint } } }, 'read-only');
  expect(result.code).toBe(1);
  const checks = checksOf(result.stdout.toString(), LOCAL_COFFER);
  expect(checks.get('upstream read')?.[0]).toBe('✓');
  expect(checks.get('upstream write')).toEqual(['✗', expect.stringMatching(/^cannot write coffers\/local\/doctor\/[0-9a-f]{24} to bucket coffer-cli at .*AccessDenied \(HTTP 403\)/)]);
  expect(checks.get('upstream part size')).toEqual(['–', 'skipped: the bucket cannot be written']);
  expect(checks.has('upstream delete')).toBe(false); // nothing was written, so nothing to delete
});

test('upstream.minPartSize below what the upstream enforces: upstream part size ✗, probe cleaned up', async () => {
  const result = await doctor({ [LOCAL_COFFER]: { upstream: { minPartSize: '1MiB' } } }, 'part-size');
  expect(result.code).toBe(1);
  expect(checksOf(result.stdout.toString(), LOCAL_COFFER).get('upstream part size')).toEqual([
    '✗',
    expect.stringContaining("the upstream refused a 1048576-byte part before the last (upstream.minPartSize is below the upstream's minimum): BadGateway") as string,
  ]);
  await expectNoProbeLeft();
});

test('a local key that does not exist: ✓ when the gateway would create it, ✗ when keyring.create is off; nothing created', async () => {
  const lazily = await doctor({ [LOCAL_COFFER]: { kms: { keyId: 'not-yet' } } }, 'key-later', ['--quick']);
  expect(checksOf(lazily.stdout.toString(), LOCAL_COFFER).get('key provider')?.[1]).toMatch(/^local key not-yet does not exist yet in .*; the gateway creates it on first use/);
  expect(existsSync(join(fixture.directory, 'keyring', 'not-yet.key'))).toBe(false);
  const config = fixture.writeConfig('key-missing', { [LOCAL_COFFER]: { kms: { keyId: 'not-yet' } } }, { keyring: { directory: join(fixture.directory, 'keyring'), create: false } });
  const strict = await runInProcess(['doctor', '-c', config, '--quick']);
  expect(strict.code).toBe(1);
  expect(checksOf(strict.stdout.toString(), LOCAL_COFFER).get('key provider')?.[0]).toBe('✗');
});

test('an invalid configuration: every problem listed, exit 1', async () => {
  const file = fixture.writeConfig('invalid', { [LOCAL_COFFER]: { upstream: { bucket: 'No_Such Bucket', minPartSize: 'lots' } } }, { logging: { level: 'chatty' } });
  const result = await runProcess(['doctor', '-c', file]);
  expect(result.code).toBe(1);
  const report = result.stdout.toString();
  expect(report).toMatch(/^✗ configuration: 3 problems$/m);
  expect(report).toContain(`coffers.${LOCAL_COFFER}.upstream.bucket`);
  expect(report).toContain(`coffers.${LOCAL_COFFER}.upstream.minPartSize`);
  expect(report).toContain('logging.level');
});

test('the probe can never fall into an area of the layout', () => {
  for (const prefix of ['', 'coffers/x/']) {
    const layout = upstreamLayout(prefix);
    const probe = probeKey(prefix, 'abc');
    for (const area of [layout.manifestPrefix(), layout.dataPrefix(''), layout.uploadRecordPrefix(), layout.partRecordPrefix(''), layout.stagedPrefix('')]) {
      expect(probe.startsWith(area.replace(/\/+$/, '/'))).toBe(false);
    }
  }
});
