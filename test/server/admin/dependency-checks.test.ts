/**
 * Readiness from dependencies: each coffer's role, upstream listing and key provider must answer once
 * before the replica is Ready; failures are named (no secret) and retried with a doubling delay.
 * Plain-object fakes only; the whole gateway is covered in test/app/serve.test.ts.
 */
import { randomBytes } from 'node:crypto';
import { classDependencyCheck, cofferDependencyCheck, READINESS_SESSION, watchDependencies, type DependencyCheck } from '../../../src/server/admin/dependency-checks';
import type { CofferDefinition } from '../../../src/app/coffer-registry';
import type { KeyProvider } from '../../../src/keys/key-provider';
import type { UploadStore } from '../../../src/store/ports';

function flakyCheck(name: string, failures: number): DependencyCheck & { attempts: number } {
  const check = {
    name,
    attempts: 0,
    run: async () => {
      check.attempts += 1;
      if (check.attempts <= failures) throw new Error(`down (attempt ${check.attempts})`);
    },
  };
  return check;
}

describe('watchDependencies', () => {
  test('not ready, naming the failing check, while any check has not passed', async () => {
    const upstream = flakyCheck('coffer a-1: upstream', Number.POSITIVE_INFINITY);
    const kms = flakyCheck('coffer b-2: key provider', 0);
    const watch = watchDependencies([upstream, kms], { retryMs: 60_000 });
    expect(watch.notReadyReason()).toMatch(/^coffer a-1: upstream: checking \(and 1 more\)$/);
    await watch.attempted;
    expect(watch.notReadyReason()).toBe('coffer a-1: upstream: down (attempt 1)');
    watch.stop();
  });

  test('retried until passed, the delay doubling up to the cap; then ready', async () => {
    const upstream = flakyCheck('coffer a-1: upstream', 4);
    const kms = flakyCheck('coffer b-2: key provider', 0);
    const delays: number[] = [];
    const watch = watchDependencies([upstream, kms], { retryMs: 1, maxRetryMs: 4, onFailure: (_check, _reason, retryInMs) => delays.push(retryInMs) });
    await watch.passed;
    expect(watch.notReadyReason()).toBeUndefined();
    expect(upstream.attempts).toBe(5);
    expect(kms.attempts).toBe(1);
    expect(delays).toEqual([1, 2, 4, 4]);
  });

  test('a check that passed is never run again (readiness does not follow later outages)', async () => {
    const check = flakyCheck('coffer a-1', 0);
    const watch = watchDependencies([check], { retryMs: 1 });
    await watch.passed;
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(check.attempts).toBe(1);
    expect(watch.notReadyReason()).toBeUndefined();
  });

  test('stop() ends the retries and settles `passed`; the replica stays not ready', async () => {
    const check = flakyCheck('coffer a-1', Number.POSITIVE_INFINITY);
    const watch = watchDependencies([check], { retryMs: 60_000 });
    await new Promise((resolve) => setImmediate(resolve));
    watch.stop();
    await watch.passed;
    expect(check.attempts).toBe(1);
    expect(watch.notReadyReason()).toMatch(/^coffer a-1: down/);
  });

  test('`attempted` settles after every first attempt, passed or failed; `passed` only when all passed', async () => {
    const down = flakyCheck('coffer a-1', Number.POSITIVE_INFINITY);
    const up = flakyCheck('coffer b-2', 0);
    const watch = watchDependencies([down, up], { retryMs: 60_000 });
    let passed = false;
    void watch.passed.then(() => (passed = true));
    await watch.attempted;
    expect([down.attempts, up.attempts, passed]).toEqual([1, 1, false]);
    watch.stop();
  });

  test('no coffers: ready at once', async () => {
    const watch = watchDependencies([]);
    await watch.passed;
    expect(watch.notReadyReason()).toBeUndefined();
  });
});

describe('cofferDependencyCheck', () => {
  const keyring = (): KeyProvider & { contexts: Record<string, string>[] } => {
    const plaintext = randomBytes(32);
    const provider = {
      name: 'local' as const,
      contexts: [] as Record<string, string>[],
      generateDataKey: async (context: Record<string, string>) => {
        provider.contexts.push({ ...context });
        return { plaintext: Buffer.from(plaintext), wrapped: Buffer.from('wrapped'), keyId: 'k1' };
      },
      decryptDataKey: async () => Buffer.from(plaintext),
    };
    return provider;
  };
  const definition = (overrides: Partial<CofferDefinition> & { listed?: string[]; sessions?: string[] } = {}): CofferDefinition => {
    const store = {
      listObjects: async (prefix: string) => {
        overrides.listed?.push(prefix);
        return { objects: [], commonPrefixes: [], isTruncated: false };
      },
    } as unknown as UploadStore;
    return {
      name: 'archive-1250000000',
      prefix: 'tenant/',
      minPartSize: 5 << 20,
      maxPartSize: 5 << 30,
      storeFor: (session) => {
        overrides.sessions?.push(session);
        return store;
      },
      keysFor: () => keyring(),
      ...overrides,
    };
  };

  test('passes when the role, the upstream listing and a data key round trip all work; lists only the coffer prefix', async () => {
    const listed: string[] = [];
    const sessions: string[] = [];
    const keys = keyring();
    await cofferDependencyCheck(definition({ listed, sessions, keysFor: () => keys, assumeRole: async () => undefined })).run();
    expect(listed).toEqual(['tenant/m/']);
    expect(sessions).toEqual([READINESS_SESSION]);
    // The probe's encryption context names the coffer and a key no stored object can have.
    expect(keys.contexts).toEqual([{ coffer: 'archive-1250000000', key: expect.stringMatching(/^\.coffer-gateway-readiness\/[0-9a-f]{16}$/) }]);
  });

  test('retries reuse the one store and key provider (no new S3 or KMS client per attempt)', async () => {
    const sessions: string[] = [];
    let failures = 2;
    let keyProviders = 0;
    const check = cofferDependencyCheck(
      definition({
        sessions,
        storeFor: (session) => {
          sessions.push(session);
          return { listObjects: async () => (failures-- > 0 ? Promise.reject(new Error('down')) : { objects: [], commonPrefixes: [], isTruncated: false }) } as unknown as UploadStore;
        },
        keysFor: () => {
          keyProviders += 1;
          return keyring();
        },
      }),
    );
    await expect(check.run()).rejects.toThrow(/^upstream: Error: down$/);
    await expect(check.run()).rejects.toThrow(/^upstream: Error: down$/);
    await check.run();
    expect([sessions.length, keyProviders]).toEqual([1, 1]);
  });

  test.each([
    ['role', { assumeRole: async () => Promise.reject(Object.assign(new Error('AccessDenied for sts:AssumeRole'), { name: 'GatewayError' })) }, /^role: GatewayError: AccessDenied for sts:AssumeRole$/],
    [
      'upstream',
      { storeFor: () => ({ listObjects: async () => Promise.reject(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' })) }) as unknown as UploadStore },
      /^upstream: Error ECONNREFUSED: connect ECONNREFUSED/,
    ],
    ['key provider', { keysFor: () => ({ ...keyring(), decryptDataKey: async () => randomBytes(32) }) }, /^key provider: Error: the unwrapped data key differs from the generated one$/],
    ['key provider', { keysFor: () => ({ ...keyring(), generateDataKey: async () => Promise.reject(new Error('KMS key alias/x not found')) }) }, /^key provider: Error: KMS key alias\/x not found$/],
  ])('names the failing step: %s', async (_step, override, message) => {
    await expect(cofferDependencyCheck(definition(override as Partial<CofferDefinition>)).run()).rejects.toThrow(message);
  });

  test('a coffer class is checked through its pseudo-coffer: named by the class, its registry listed, the class key context used', async () => {
    const listed: string[] = [];
    const keys = keyring();
    const check = classDependencyCheck('team', definition({ name: '_class.team', prefix: 'created/', listed, keysFor: () => keys }), 'created/_registry/');
    expect(check.name).toBe('coffer class team');
    await check.run();
    expect(listed).toEqual(['created/_registry/']);
    expect(keys.contexts).toEqual([{ coffer: '_class.team', key: expect.stringMatching(/^\.coffer-gateway-readiness\//) }]);
  });
});
