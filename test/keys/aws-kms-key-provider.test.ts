/**
 * The AWS KMS provider driven through the real @aws-sdk/client-kms against the strict KMS test server.
 * No test waits on a retry timer: sleeps are injected and recorded.
 */
import { GatewayError } from '../../src/errors/gateway-error';
import { createAwsKmsKeyProvider, type AwsKmsKeyProvider, type KmsClientOptions } from '../../src/keys/aws-kms-key-provider';
import type { RetryPolicy } from '../../src/util/aws-errors';
import { awsCredentialProvider } from '../../src/roles/aws-credential-provider';
import { createStaticRoleProvider } from '../../src/roles/static-role-provider';
import { createStsRoleProvider } from '../../src/roles/sts-role-provider';
import { createUpstreamCoffer } from '../../src/app/upstream-coffer';
import { load } from '../config/helpers';
import { startKmsTestServer, type KmsTestServer, type TestKmsKey } from '../support/kms-test-server';
import { CONNECTION_RESET, TestCredentialStore, seededRandom, startStsTestServer, type StsTestServer } from '../support/sts-test-server';

const REGION = 'eu-west-1';
const BASE = { accessKeyId: 'AKIDGATEWAY0000001', secretAccessKey: 'gateway-base-secret-do-not-log' };
const CONTEXT = { coffer: 'photos', key: 'albums/2026/summer.jpg' } as const;

let store: TestCredentialStore;
let kms: KmsTestServer;
let key: TestKmsKey;
const providers: AwsKmsKeyProvider[] = [];
let sleeps: number[];
/** Shared fake clock of both test servers (credential expiry) and the STS role provider. */
let clock: number;

beforeEach(async () => {
  clock = Date.now();
  store = new TestCredentialStore();
  store.addUser(BASE.accessKeyId, BASE.secretAccessKey);
  kms = await startKmsTestServer({ store, region: REGION, seed: 7, now: () => clock });
  key = kms.createKey({ alias: 'alias/coffer-photos' });
  sleeps = [];
});

afterEach(async () => {
  for (const p of providers.splice(0)) p.destroy();
  await kms.close();
});

function provider(options: { keyId?: string; previousKeyIds?: string[]; retry?: Partial<RetryPolicy>; kms?: Partial<KmsClientOptions> } = {}): AwsKmsKeyProvider {
  const p = createAwsKmsKeyProvider({
    keyId: options.keyId ?? key.arn,
    ...(options.previousKeyIds === undefined ? {} : { previousKeyIds: options.previousKeyIds }),
    kms: { region: REGION, endpoint: kms.endpoint, credentials: BASE, ...options.kms },
    ...(options.retry ? { retry: options.retry } : {}),
    sleep: async (ms) => {
      sleeps.push(ms);
    },
    random: seededRandom(99),
  });
  providers.push(p);
  return p;
}

async function failure(promise: Promise<unknown>): Promise<GatewayError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(GatewayError);
    return error as GatewayError;
  }
  throw new Error('expected a failure');
}

describe('round trip', () => {
  it('GenerateDataKey (AES_256) then Decrypt with the same context gives the same 32-byte key', async () => {
    const p = provider();
    const dataKey = await p.generateDataKey(CONTEXT);
    expect(dataKey.plaintext).toHaveLength(32);
    expect(dataKey.wrapped.length).toBeGreaterThan(32);
    expect(dataKey.keyId).toBe(key.arn);
    // Context given in a different property order: KMS treats it as a map.
    const plaintext = await p.decryptDataKey(dataKey.wrapped, { key: CONTEXT.key, coffer: CONTEXT.coffer });
    expect(plaintext.equals(dataKey.plaintext)).toBe(true);
    expect(kms.calls.map((c) => [c.operation, c.status])).toEqual([
      ['GenerateDataKey', 200],
      ['Decrypt', 200],
    ]);
    expect(kms.calls[0]!.encryptionContext).toEqual(CONTEXT);
    expect(kms.calls[1]!.encryptionContext).toEqual(CONTEXT);
  });

  it('works with an alias as the configured key id', async () => {
    const p = provider({ keyId: 'alias/coffer-photos' });
    const dataKey = await p.generateDataKey(CONTEXT);
    expect(dataKey.keyId).toBe(key.arn);
    expect((await p.decryptDataKey(dataKey.wrapped, CONTEXT)).equals(dataKey.plaintext)).toBe(true);
  });

  it('a different, missing or extended context is rejected (invalid-ciphertext) with no retry', async () => {
    const p = provider();
    const dataKey = await p.generateDataKey(CONTEXT);
    for (const context of [{ ...CONTEXT, coffer: 'videos' }, {}, { ...CONTEXT, extra: 'x' }]) {
      const before = kms.callCount('Decrypt');
      const error = await failure(p.decryptDataKey(dataKey.wrapped, context));
      expect(error.code).toBe('KMSFailed');
      expect(error.status).toBe(409);
      expect(error.reason).toBe('invalid-ciphertext');
      expect(kms.callCount('Decrypt') - before).toBe(1);
    }
    expect(sleeps).toEqual([]);
  });

  it('a wrapped key sealed under another KMS key is refused because Decrypt names the key (incorrect-key)', async () => {
    const other = kms.createKey();
    const foreign = await provider({ keyId: other.arn }).generateDataKey(CONTEXT);
    const error = await failure(provider().decryptDataKey(foreign.wrapped, CONTEXT));
    expect(error.reason).toBe('incorrect-key');
    expect(kms.calls.at(-1)!.errorType).toBe('IncorrectKeyException');
  });

  it('garbage ciphertext → invalid-ciphertext', async () => {
    const error = await failure(provider().decryptDataKey(Buffer.from('not a kms blob at all, just bytes'), CONTEXT));
    expect(error.reason).toBe('invalid-ciphertext');
  });
});

describe('envelope key id and rotation (rewrap)', () => {
  it("Decrypt names the envelope's key only when configured as a previous key; otherwise the coffer's key", async () => {
    const next = kms.createKey({ alias: 'alias/coffer-photos-2026' });
    const underNext = await provider({ keyId: next.arn }).generateDataKey(CONTEXT);
    // Configured for the old key and trusting the new one: reading an object already rewrapped to it.
    const trusting = provider({ previousKeyIds: [next.arn] });
    expect((await trusting.decryptDataKey(underNext.wrapped, CONTEXT, underNext.keyId)).equals(underNext.plaintext)).toBe(true);
    expect(kms.calls.at(-1)).toMatchObject({ operation: 'Decrypt', status: 200, requestedKeyId: next.arn, keyArn: next.arn });
    // A key the configuration does not list is never named, whatever the envelope says: KMS refuses the blob.
    const p = provider();
    expect((await failure(p.decryptDataKey(underNext.wrapped, CONTEXT, underNext.keyId))).reason).toBe('incorrect-key');
    expect(kms.calls.at(-1)).toMatchObject({ operation: 'Decrypt', requestedKeyId: key.arn });
    expect((await failure(p.decryptDataKey(underNext.wrapped, CONTEXT))).reason).toBe('incorrect-key');
    // An envelope naming the wrong (trusted) key is refused too.
    const underOld = await p.generateDataKey(CONTEXT);
    expect((await failure(trusting.decryptDataKey(underOld.wrapped, CONTEXT, next.arn))).reason).toBe('incorrect-key');
  });

  it('rewrapDataKey re-seals with ReEncrypt under the same context; the result names the new key ARN', async () => {
    const next = kms.createKey({ alias: 'alias/coffer-photos-2026' });
    const p = provider({ previousKeyIds: [next.arn] });
    const dataKey = await p.generateDataKey(CONTEXT);
    const rewrapped = await p.rewrapDataKey(dataKey.wrapped, CONTEXT, dataKey.keyId, 'alias/coffer-photos-2026');
    expect(rewrapped.keyId).toBe(next.arn);
    expect(kms.calls.at(-1)).toMatchObject({ operation: 'ReEncrypt', status: 200, requestedKeyId: key.arn, keyArn: next.arn });
    expect((await p.decryptDataKey(rewrapped.wrapped, CONTEXT, rewrapped.keyId)).equals(dataKey.plaintext)).toBe(true);
    // Bound to the same context: another one does not open it.
    expect((await failure(p.decryptDataKey(rewrapped.wrapped, { ...CONTEXT, key: 'other' }, rewrapped.keyId))).reason).toBe('invalid-ciphertext');
    // The source key named must be the blob's.
    expect((await failure(p.rewrapDataKey(dataKey.wrapped, CONTEXT, next.arn, next.arn))).reason).toBe('incorrect-key');
  });

  it('resolveKeyId turns an alias into the key ARN and refuses disabled or unknown keys', async () => {
    const next = kms.createKey({ alias: 'alias/coffer-photos-2026' });
    const p = provider();
    expect(await p.resolveKeyId('alias/coffer-photos-2026')).toBe(next.arn);
    expect(await p.resolveKeyId(next.keyId)).toBe(next.arn);
    kms.setKeyState(next.keyId, 'Disabled');
    expect((await failure(p.resolveKeyId(next.arn))).reason).toBe('key-not-enabled');
    expect((await failure(p.resolveKeyId('alias/nope'))).code).toBe('KMSFailed');
  });
});

describe('retry policy', () => {
  it('100 % throttling → KMSFailed throttled after exactly maxAttempts, with bounded jittered backoff and no real waiting', async () => {
    kms.failWithProbability(1, 'ThrottlingException');
    const error = await failure(provider().generateDataKey(CONTEXT));
    expect(error.code).toBe('KMSFailed');
    expect(error.reason).toBe('throttled');
    expect(kms.callCount('GenerateDataKey')).toBe(5); // DEFAULT_RETRY_POLICY.maxAttempts
    expect(kms.calls.every((c) => c.status === 400 && c.errorType === 'ThrottlingException')).toBe(true);
    expect(sleeps).toHaveLength(4);
    // Full jitter: attempt n sleeps in [0, min(400, 25 * 2^(n-1))).
    sleeps.forEach((ms, i) => {
      expect(ms).toBeGreaterThanOrEqual(0);
      expect(ms).toBeLessThan(Math.min(400, 25 * 2 ** i));
    });
    expect(new Set(sleeps).size).toBeGreaterThan(1);
  });

  it('honours a configured budget (maxAttempts 3 → 3 calls)', async () => {
    kms.failWithProbability(1, 'ThrottlingException', 'Decrypt');
    const p = provider({ retry: { maxAttempts: 3 } });
    const dataKey = await p.generateDataKey(CONTEXT);
    const error = await failure(p.decryptDataKey(dataKey.wrapped, CONTEXT));
    expect(error.reason).toBe('throttled');
    expect(kms.callCount('Decrypt')).toBe(3);
    expect(sleeps).toHaveLength(2);
  });

  it.each([
    ['AccessDeniedException', 'access-denied'],
    ['DisabledException', 'key-disabled'],
    ['NotFoundException', 'key-not-found'],
    ['KMSInvalidStateException', 'invalid-state'],
    ['InvalidCiphertextException', 'invalid-ciphertext'],
    ['ExpiredTokenException', 'expired-token'],
    ['UnrecognizedClientException', 'invalid-credentials'],
  ])('%s is never retried → reason %s after exactly 1 attempt', async (type, reason) => {
    kms.failWithProbability(1, type);
    const error = await failure(provider().generateDataKey(CONTEXT));
    expect(error.code).toBe('KMSFailed');
    expect(error.reason).toBe(reason);
    expect(kms.callCount()).toBe(1);
    expect(sleeps).toEqual([]);
  });

  it.each([
    ['ThrottlingException', 'throttled'],
    ['KMSInternalException', 'unavailable'],
    ['DependencyTimeoutException', 'timeout'],
    ['KeyUnavailableException', 'key-unavailable'],
    ['ServiceUnavailableException', 'unavailable'],
  ])('%s is transient: two failures then success → 3 calls, no error', async (type) => {
    kms.failNext(2, type);
    const dataKey = await provider().generateDataKey(CONTEXT);
    expect(dataKey.plaintext).toHaveLength(32);
    expect(kms.calls.map((c) => c.errorType ?? c.status)).toEqual([type, type, 200]);
  });

  it('statuses match AWS: 500 for KMSInternalException, 400 for throttling/access denied', async () => {
    kms.failNext(1, 'KMSInternalException');
    kms.failNext(1, 'ThrottlingException');
    await provider().generateDataKey(CONTEXT);
    expect(kms.calls.map((c) => c.status)).toEqual([500, 400, 200]);
  });

  it('a dropped connection is a network error and is retried', async () => {
    kms.failNext(1, CONNECTION_RESET);
    const dataKey = await provider().generateDataKey(CONTEXT);
    expect(dataKey.plaintext).toHaveLength(32);
    expect(kms.callCount('GenerateDataKey')).toBe(2);
  });

  it('KMS unreachable → KMSFailed unavailable after the budget', async () => {
    await kms.close();
    const error = await failure(provider({ retry: { maxAttempts: 2 } }).generateDataKey(CONTEXT));
    expect(error.reason).toBe('unavailable');
    expect(sleeps).toHaveLength(1);
  });

  it('a response slower than the request timeout counts as a transient timeout', async () => {
    kms.addFailure({ latencyMs: 3_000 });
    const p = provider({ retry: { maxAttempts: 2 }, kms: { requestTimeoutMs: 150 } });
    const error = await failure(p.generateDataKey(CONTEXT));
    expect(error.reason).toBe('timeout');
    expect(sleeps).toHaveLength(1);
  });

  it('~30 % throttling → at least 99 % of 200 operations succeed, failures only "throttled"', async () => {
    kms.failWithProbability(0.3, 'ThrottlingException');
    const p = provider();
    let ok = 0;
    const reasons: string[] = [];
    const record = (error: unknown): void => {
      reasons.push(error instanceof GatewayError ? (error.reason ?? '?') : String(error));
    };
    const generated: Array<{ wrapped: Buffer; plaintext: Buffer; n: number }> = [];
    // 100 GenerateDataKey, 10 at a time …
    for (let batch = 0; batch < 100; batch += 10) {
      await Promise.all(
        Array.from({ length: 10 }, async (_, j) => {
          const n = batch + j;
          try {
            const dk = await p.generateDataKey({ ...CONTEXT, n: String(n) });
            generated.push({ wrapped: dk.wrapped, plaintext: dk.plaintext, n });
            ok++;
          } catch (error) {
            record(error);
          }
        }),
      );
    }
    // … then 100 Decrypt of those keys (round-robin), 10 at a time.
    expect(generated.length).toBeGreaterThan(0);
    for (let batch = 0; batch < 100; batch += 10) {
      await Promise.all(
        Array.from({ length: 10 }, async (_, j) => {
          const source = generated[(batch + j) % generated.length]!;
          try {
            const plaintext = await p.decryptDataKey(source.wrapped, { ...CONTEXT, n: String(source.n) });
            if (plaintext.equals(source.plaintext)) ok++;
            else reasons.push('wrong-key');
          } catch (error) {
            record(error);
          }
        }),
      );
    }
    expect(ok + reasons.length).toBe(200);
    expect(ok).toBeGreaterThanOrEqual(198);
    expect(reasons.filter((r) => r !== 'throttled')).toEqual([]);
    // The double really throttled about 30 % of the wire calls.
    const throttled = kms.calls.filter((c) => c.errorType === 'ThrottlingException').length;
    expect(throttled / kms.calls.length).toBeGreaterThan(0.2);
    expect(throttled / kms.calls.length).toBeLessThan(0.4);
  });
});

describe('the shipped retry budget (configuration defaults, wired as the gateway wires them)', () => {
  /** The coffer's key provider built by createUpstreamCoffer from a configuration that sets no kms.* option but `kmsOptions`. */
  function shippedProvider(kmsOptions: Record<string, number> = {}): AwsKmsKeyProvider {
    const config = load({
      coffers: {
        'photos-1250000000': {
          upstream: { endpoint: 'http://127.0.0.1:9', bucket: 'coffer-photos', region: REGION, credentials: { accessKeyId: BASE.accessKeyId, secretAccessKey: BASE.secretAccessKey } },
          kms: { type: 'aws-kms', keyId: key.arn, endpoint: kms.endpoint },
        },
      },
      ...(Object.keys(kmsOptions).length === 0 ? {} : { kms: kmsOptions }),
      auth: { accessKeys: [{ secretId: 'AKIDbudget', secretKey: 'budget-secret-key-0123456789', grants: [{ coffer: '*', actions: ['*'] }] }] },
    });
    const coffer = createUpstreamCoffer('photos-1250000000', config.coffers['photos-1250000000']!, config, {
      localKeys: () => {
        throw new Error('no local keys here');
      },
    });
    const keys = coffer.keysFor('budget-test') as AwsKmsKeyProvider;
    providers.push(keys);
    return keys;
  }

  it('30 % throttling → at least 99 % of 1,000 operations (500 GenerateDataKey + 500 Decrypt) succeed at the defaults', async () => {
    kms.failWithProbability(0.3, 'ThrottlingException');
    const p = shippedProvider();
    const OPERATIONS = 500;
    const CONCURRENCY = 25;
    let ok = 0;
    const reasons: string[] = [];
    const generated: Array<{ wrapped: Buffer; plaintext: Buffer; n: number }> = [];
    const inBatches = async (run: (n: number) => Promise<void>): Promise<void> => {
      for (let batch = 0; batch < OPERATIONS; batch += CONCURRENCY) {
        await Promise.all(Array.from({ length: CONCURRENCY }, (_, j) => run(batch + j)));
      }
    };
    const record = (error: unknown): void => {
      reasons.push(error instanceof GatewayError ? (error.reason ?? '?') : String(error));
    };
    await inBatches(async (n) => {
      try {
        const dk = await p.generateDataKey({ ...CONTEXT, n: String(n) });
        generated.push({ wrapped: dk.wrapped, plaintext: dk.plaintext, n });
        ok++;
      } catch (error) {
        record(error);
      }
    });
    await inBatches(async (n) => {
      const source = generated[n % generated.length]!;
      try {
        const plaintext = await p.decryptDataKey(source.wrapped, { ...CONTEXT, n: String(source.n) });
        if (plaintext.equals(source.plaintext)) ok++;
        else reasons.push('wrong-key');
      } catch (error) {
        record(error);
      }
    });
    expect(ok + reasons.length).toBe(2 * OPERATIONS);
    // ≥ 99 %: at most 10 failures in 1,000 (five attempts: expected ≈ 2.4; three attempts: ≈ 27).
    expect(ok).toBeGreaterThanOrEqual(990);
    expect(reasons.filter((r) => r !== 'throttled')).toEqual([]);
    const throttled = kms.calls.filter((c) => c.errorType === 'ThrottlingException').length;
    expect(kms.calls.length).toBeGreaterThanOrEqual(1_000);
    expect(throttled / kms.calls.length).toBeGreaterThan(0.25);
    expect(throttled / kms.calls.length).toBeLessThan(0.35);
  });

  it('100 % throttling → KMSFailed throttled after exactly the default 5 attempts', async () => {
    kms.failWithProbability(1, 'ThrottlingException');
    const error = await failure(shippedProvider().generateDataKey(CONTEXT));
    expect(error.code).toBe('KMSFailed');
    expect(error.reason).toBe('throttled');
    expect(kms.callCount('GenerateDataKey')).toBe(5);
  });

  it('a KMS that never answers is cut by the overall deadline (kms.deadlineMs), not after attempts × timeout', async () => {
    // Each attempt would hang for 60 s; the per-attempt timeout alone (5 s × 5 attempts) would hold the
    // caller 25 s. A short configured deadline must end it after the first attempt with reason timeout.
    kms.addFailure({ latencyMs: 60_000 });
    const p = shippedProvider({ deadlineMs: 300 });
    const error = await failure(p.generateDataKey(CONTEXT));
    expect(error.code).toBe('KMSFailed');
    expect(error.reason).toBe('timeout');
    expect(error.message).toContain('after 1 attempt: DeadlineExceeded');
  });
});

describe('keys and credentials', () => {
  it.each([
    ['Disabled', 'key-disabled', 'DisabledException'],
    ['PendingDeletion', 'invalid-state', 'KMSInvalidStateException'],
  ] as const)('key state %s → %s (1 attempt)', async (state, reason, type) => {
    kms.setKeyState(key.keyId, state);
    const error = await failure(provider().generateDataKey(CONTEXT));
    expect(error.reason).toBe(reason);
    expect(kms.calls.map((c) => c.errorType)).toEqual([type]);
  });

  it('unknown key and unknown alias → key-not-found', async () => {
    expect((await failure(provider({ keyId: '00000000-0000-4000-8000-000000000000' }).generateDataKey(CONTEXT))).reason).toBe('key-not-found');
    expect((await failure(provider({ keyId: 'alias/nope' }).generateDataKey(CONTEXT))).reason).toBe('key-not-found');
    expect(kms.callCount()).toBe(2);
  });

  it('a key policy that does not name the caller → access-denied without retry', async () => {
    const restricted = kms.createKey({ allowedPrincipals: ['arn:aws:iam::111122223333:role/someone-else'] });
    const error = await failure(provider({ keyId: restricted.arn }).generateDataKey(CONTEXT));
    expect(error.reason).toBe('access-denied');
    expect(kms.callCount()).toBe(1);
  });

  it('unknown access key and wrong secret are refused by the server (invalid-credentials, no retry)', async () => {
    const unknown = await failure(provider({ kms: { credentials: { accessKeyId: 'AKIDUNKNOWN', secretAccessKey: 'x' } } }).generateDataKey(CONTEXT));
    expect(unknown.reason).toBe('invalid-credentials');
    const badSecret = await failure(provider({ kms: { credentials: { ...BASE, secretAccessKey: 'wrong' } } }).generateDataKey(CONTEXT));
    expect(badSecret.reason).toBe('invalid-credentials');
    expect(kms.calls.map((c) => c.errorType)).toEqual(['UnrecognizedClientException', 'InvalidSignatureException']);
  });

  it('error messages carry no key material and no secrets', async () => {
    const p = provider();
    const dataKey = await p.generateDataKey(CONTEXT);
    const error = await failure(p.decryptDataKey(dataKey.wrapped, { coffer: 'x' }));
    const text = `${error.message} ${JSON.stringify(error)} ${String(error.stack)}`;
    for (const secret of [dataKey.plaintext.toString('base64'), dataKey.plaintext.toString('hex'), BASE.secretAccessKey]) {
      expect(text).not.toContain(secret);
    }
  });
});

describe('with STS-issued (assumed-role) credentials', () => {
  let sts: StsTestServer;
  const ROLE = 'arn:aws:iam::111122223333:role/coffer-photos';

  beforeEach(async () => {
    sts = await startStsTestServer({ store, region: REGION, now: () => clock, roles: [{ roleArn: ROLE, externalId: 'coffer-photos-ext' }] });
  });
  afterEach(async () => {
    await sts.close();
  });

  it('the coffer role may use its key; the gateway base identity may not', async () => {
    const restricted = kms.createKey({ allowedPrincipals: [ROLE] });
    const roles = createStsRoleProvider({
      roles: { photos: { roleArn: ROLE, externalId: 'coffer-photos-ext', durationSeconds: 900 } },
      sts: { region: REGION, endpoint: sts.endpoint, credentials: BASE },
      now: () => clock,
    });
    try {
      const asRole = provider({ keyId: restricted.arn, kms: { credentials: awsCredentialProvider(roles, { coffer: 'photos', sessionName: 'upload-1' }) } });
      const dataKey = await asRole.generateDataKey(CONTEXT);
      expect((await asRole.decryptDataKey(dataKey.wrapped, CONTEXT)).equals(dataKey.plaintext)).toBe(true);
      expect(kms.calls.every((c) => c.accessKeyId === sts.issued[0]!.accessKeyId)).toBe(true);
      expect(sts.callCount()).toBe(1);

      const asBase = provider({ keyId: restricted.arn });
      expect((await failure(asBase.decryptDataKey(dataKey.wrapped, CONTEXT))).reason).toBe('access-denied');
    } finally {
      roles.destroy();
    }
  });

  it('a role that cannot be assumed surfaces as AssumeRoleFailed (not KMSFailed), with no KMS traffic', async () => {
    const roles = createStsRoleProvider({
      roles: { photos: { roleArn: ROLE, durationSeconds: 900 } }, // ExternalId missing → AccessDenied
      sts: { region: REGION, endpoint: sts.endpoint, credentials: BASE },
      now: () => clock,
    });
    try {
      const p = provider({ kms: { credentials: awsCredentialProvider(roles, { coffer: 'photos', sessionName: 's' }) } });
      const error = await failure(p.generateDataKey(CONTEXT));
      expect(error.code).toBe('AssumeRoleFailed');
      expect(error.reason).toBe('access-denied');
      expect(kms.callCount()).toBe(0);
      expect(sts.callCount()).toBe(1);
    } finally {
      roles.destroy();
    }
  });

  it('session credentials that have expired (server clock) → ExpiredTokenException → expired-token, 1 attempt', async () => {
    const roles = createStsRoleProvider({
      roles: { photos: { roleArn: ROLE, externalId: 'coffer-photos-ext', durationSeconds: 900 } },
      sts: { region: REGION, endpoint: sts.endpoint, credentials: BASE },
      now: () => clock,
    });
    try {
      const issued = await roles.credentialsFor({ coffer: 'photos', sessionName: 's' });
      // Keep presenting the same credentials, as a component with a broken cache would.
      const pinned = createStaticRoleProvider({ photos: issued });
      const p = provider({ kms: { credentials: awsCredentialProvider(pinned, { coffer: 'photos', sessionName: 's' }) } });
      await p.generateDataKey(CONTEXT);
      clock += 901_000; // past the 900 s session, as seen by both test servers
      const error = await failure(p.generateDataKey(CONTEXT));
      expect(error.reason).toBe('expired-token');
      expect(kms.calls.map((c) => c.errorType ?? c.status)).toEqual([200, 'ExpiredTokenException']);

      // Through the STS role provider (same clock), the credentials are renewed instead.
      const fresh = provider({ kms: { credentials: awsCredentialProvider(roles, { coffer: 'photos', sessionName: 's' }) } });
      await fresh.generateDataKey(CONTEXT);
      expect(sts.callCount()).toBe(2);
      expect(kms.calls.at(-1)!.accessKeyId).toBe(sts.issued[1]!.accessKeyId);
    } finally {
      roles.destroy();
    }
  });
});
