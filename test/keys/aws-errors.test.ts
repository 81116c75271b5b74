/** Retry classification and the retry loop, with plain-object fakes (no network). */
import { GatewayError } from '../../src/errors/gateway-error';
import { createAwsKmsKeyProvider, type KmsApi } from '../../src/keys/aws-kms-key-provider';
import { backoffDelayMs, classifyAwsError, withAwsRetry } from '../../src/util/aws-errors';

const sdkError = (name: string, status?: number): Error => Object.assign(new Error(`${name} from service`), { name, $metadata: status === undefined ? {} : { httpStatusCode: status } });

describe('classifyAwsError', () => {
  it.each([
    [sdkError('ThrottlingException', 400), 'throttled', true],
    [sdkError('Throttling', 400), 'throttled', true],
    [sdkError('KMSInternalException', 500), 'unavailable', true],
    [sdkError('DependencyTimeoutException', 503), 'timeout', true],
    [sdkError('KeyUnavailableException', 500), 'key-unavailable', true],
    [sdkError('SomethingNew', 502), 'unavailable', true],
    [sdkError('SomethingNew', 429), 'throttled', true],
    [sdkError('SomethingNew', 400), 'rejected', false],
    [sdkError('AccessDeniedException', 400), 'access-denied', false],
    [sdkError('AccessDenied', 403), 'access-denied', false],
    [sdkError('DisabledException', 400), 'key-disabled', false],
    [sdkError('NotFoundException', 400), 'key-not-found', false],
    [sdkError('KMSInvalidStateException', 400), 'invalid-state', false],
    [sdkError('InvalidCiphertextException', 400), 'invalid-ciphertext', false],
    [sdkError('ExpiredTokenException', 400), 'expired-token', false],
    [sdkError('ExpiredToken', 403), 'expired-token', false],
    [sdkError('ValidationError', 400), 'invalid-request', false],
    [Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' }), 'unavailable', true],
    [Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }), 'unavailable', true],
    [Object.assign(new Error('x'), { name: 'TimeoutError', code: 'ETIMEDOUT' }), 'timeout', true],
    [new Error('AWS SDK error wrapper for Error: connect ECONNREFUSED 127.0.0.1:1'), 'unavailable', true],
    [new Error('AWS SDK error wrapper for TimeoutError: socket hang up'), 'unavailable', true],
    [new Error('something else entirely'), 'rejected', false],
    ['a string', 'rejected', false],
  ])('%s → %s (retryable %s)', (error, reason, retryable) => {
    expect(classifyAwsError(error)).toEqual({ reason, retryable });
  });
});

describe('withAwsRetry', () => {
  const policy = { maxAttempts: 4, baseDelayMs: 100, maxDelayMs: 250, deadlineMs: 60_000 };

  it('stops at the first non-retryable error', async () => {
    let calls = 0;
    const error = await withAwsRetry(
      async () => {
        calls++;
        throw sdkError('AccessDeniedException', 400);
      },
      policy,
      ({ classification, attempts }) => new GatewayError('KMSFailed', `after ${attempts}`, { reason: classification.reason }),
      { sleep: async () => undefined },
    ).catch((e: unknown) => e as GatewayError);
    expect(calls).toBe(1);
    expect(error.reason).toBe('access-denied');
    expect(error.message).toBe('after 1');
  });

  it('passes GatewayErrors (e.g. from a credential provider) through untouched, without retrying', async () => {
    let calls = 0;
    const original = new GatewayError('AssumeRoleFailed', 'role', { reason: 'throttled' });
    const error = await withAwsRetry(
      async () => {
        calls++;
        throw original;
      },
      policy,
      () => new GatewayError('KMSFailed'),
      { sleep: async () => undefined },
    ).catch((e: unknown) => e);
    expect(error).toBe(original);
    expect(calls).toBe(1);
  });

  it('the overall deadline cancels the attempt in flight: its signal fires and the failure is reason timeout', async () => {
    let seenSignal: AbortSignal | undefined;
    let calls = 0;
    // The operation never settles on its own: without the deadline this test could only end by Jest's timeout.
    const error = await withAwsRetry(
      (_attempt, signal) => {
        calls++;
        seenSignal = signal;
        return new Promise<never>(() => undefined);
      },
      { ...policy, deadlineMs: 50 },
      ({ classification, attempts, error: cause }) => new GatewayError('KMSFailed', `after ${attempts}: ${(cause as Error).name}`, { reason: classification.reason }),
      { sleep: async () => undefined },
    ).catch((e: unknown) => e as GatewayError);
    expect(error.reason).toBe('timeout');
    expect(error.message).toBe('after 1: DeadlineExceeded');
    expect(calls).toBe(1);
    expect(seenSignal?.aborted).toBe(true);
  });

  it('a backoff sleep that would end past the deadline is not taken: the last failure is reported', async () => {
    let clock = 0;
    let calls = 0;
    const sleeps: number[] = [];
    const error = await withAwsRetry(
      async () => {
        calls++;
        throw sdkError('ThrottlingException', 400);
      },
      { maxAttempts: 10, baseDelayMs: 100, maxDelayMs: 100, deadlineMs: 250 },
      ({ classification, attempts }) => new GatewayError('KMSFailed', `after ${attempts}`, { reason: classification.reason }),
      {
        // Every sleep is 99 ms on the injected clock: after two sleeps (198 ms) a third would end at 297 ≥ 250.
        sleep: async (ms) => {
          sleeps.push(ms);
          clock += ms;
        },
        random: () => 0.999,
        now: () => clock,
      },
    ).catch((e: unknown) => e as GatewayError);
    expect(sleeps).toEqual([99, 99]);
    expect(calls).toBe(3);
    expect(error.reason).toBe('throttled');
    expect(error.message).toBe('after 3');
  });

  it('full-jitter backoff is capped exponentially', () => {
    expect([1, 2, 3, 4].map((n) => backoffDelayMs(policy, n, () => 0.999))).toEqual([99, 199, 249, 249]);
    expect(backoffDelayMs(policy, 3, () => 0)).toBe(0);
  });
});

describe('aws-kms provider with a fake KmsApi', () => {
  const fake = (overrides: Partial<KmsApi>): KmsApi => ({
    generateDataKey: async () => ({ CiphertextBlob: new Uint8Array(64).fill(7), Plaintext: new Uint8Array(32).fill(1), KeyId: 'arn:k' }),
    decrypt: async () => ({ Plaintext: new Uint8Array(32).fill(1), KeyId: 'arn:k' }),
    ...overrides,
  });

  it('rejects a plaintext that is not 32 bytes (invalid-response) and wipes it', async () => {
    const short = new Uint8Array(16).fill(9);
    const p = createAwsKmsKeyProvider({ keyId: 'k', kms: fake({ decrypt: async () => ({ Plaintext: short }) }) });
    const error = (await p.decryptDataKey(Buffer.alloc(10), {}).catch((e: unknown) => e)) as GatewayError;
    expect(error.reason).toBe('invalid-response');
    expect(short.every((b) => b === 0)).toBe(true);
  });

  it('copies the SDK plaintext into a caller-owned Buffer and zeroes the SDK array', async () => {
    const sdkPlaintext = new Uint8Array(32).fill(5);
    const p = createAwsKmsKeyProvider({
      keyId: 'k',
      kms: fake({ generateDataKey: async () => ({ CiphertextBlob: new Uint8Array(8).fill(1), Plaintext: sdkPlaintext, KeyId: 'arn:k' }) }),
    });
    const dataKey = await p.generateDataKey({ a: 'b' });
    expect(dataKey.plaintext.equals(Buffer.alloc(32, 5))).toBe(true);
    expect(sdkPlaintext.every((b) => b === 0)).toBe(true);
  });

  it('sends KeyId, KeySpec AES_256 and a copy of the context', async () => {
    const seen: unknown[] = [];
    const p = createAwsKmsKeyProvider({
      keyId: 'alias/x',
      kms: fake({
        generateDataKey: async (input) => {
          seen.push(input);
          return { CiphertextBlob: new Uint8Array(8).fill(1), Plaintext: new Uint8Array(32), KeyId: 'arn:x' };
        },
        decrypt: async (input) => {
          seen.push({ ...input, CiphertextBlob: Buffer.from(input.CiphertextBlob).toString('hex') });
          return { Plaintext: new Uint8Array(32) };
        },
      }),
    });
    await p.generateDataKey({ c: '1' });
    await p.decryptDataKey(Buffer.from('abcd', 'hex'), { c: '1' });
    expect(seen).toEqual([
      { KeyId: 'alias/x', KeySpec: 'AES_256', EncryptionContext: { c: '1' } },
      { KeyId: 'alias/x', CiphertextBlob: 'abcd', EncryptionContext: { c: '1' } },
    ]);
  });
});
