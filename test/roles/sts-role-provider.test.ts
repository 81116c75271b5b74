/**
 * STS AssumeRole role provider through the real @aws-sdk/client-sts against the strict STS test server.
 * Time is an injected clock shared by the provider and the server; retries sleep through an injected no-op.
 */
import { GatewayError } from '../../src/errors/gateway-error';
import { awsCredentialProvider } from '../../src/roles/aws-credential-provider';
import type { RoleCredentials } from '../../src/roles/role-provider';
import { createStaticRoleProvider } from '../../src/roles/static-role-provider';
import { createStsRoleProvider, sanitizeSessionName, type RefreshFailureEvent, type RoleConfig, type StsRoleProvider, type StsRoleProviderOptions } from '../../src/roles/sts-role-provider';
import { CONNECTION_RESET, TestCredentialStore, startStsTestServer, type StsTestServer } from '../support/sts-test-server';

const REGION = 'ap-guangzhou-1';
const BASE = { accessKeyId: 'AKIDGATEWAYBASE01', secretAccessKey: 'base-secret-never-logged' };
const ROLE_A = 'arn:aws:iam::111122223333:role/coffer-a';
const ROLE_B = 'arn:aws:iam::111122223333:role/gateway/coffer-b';
const ROLES: Record<string, RoleConfig> = {
  a: { roleArn: ROLE_A, externalId: 'ext-for-coffer-a', durationSeconds: 3600 },
  b: { roleArn: ROLE_B, durationSeconds: 900 },
  'a-no-external-id': { roleArn: ROLE_A, durationSeconds: 3600 },
  'a-wrong-external-id': { roleArn: ROLE_A, externalId: 'guessed', durationSeconds: 3600 },
  'a-too-long': { roleArn: ROLE_A, externalId: 'ext-for-coffer-a', durationSeconds: 7200 },
  unknown: { roleArn: 'arn:aws:iam::111122223333:role/does-not-exist', durationSeconds: 900 },
};
const REQ = { coffer: 'a', sessionName: 'alice' };

let clock: number;
let sts: StsTestServer;
const providers: StsRoleProvider[] = [];

beforeEach(async () => {
  clock = Date.UTC(2026, 10, 24, 12, 0, 0);
  const store = new TestCredentialStore();
  store.addUser(BASE.accessKeyId, BASE.secretAccessKey);
  sts = await startStsTestServer({
    store,
    region: REGION,
    now: () => clock,
    roles: [{ roleArn: ROLE_A, externalId: 'ext-for-coffer-a', maxSessionDurationSeconds: 3600 }, { roleArn: ROLE_B }],
  });
});

afterEach(async () => {
  for (const p of providers.splice(0)) p.destroy();
  await sts.close();
});

function provider(options: Partial<StsRoleProviderOptions> = {}): StsRoleProvider {
  const p = createStsRoleProvider({
    roles: ROLES,
    sts: { region: REGION, endpoint: sts.endpoint, credentials: BASE },
    now: () => clock,
    sleep: async () => undefined,
    ...options,
  });
  providers.push(p);
  return p;
}

async function failure(promise: Promise<unknown>): Promise<GatewayError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(GatewayError);
    expect((error as GatewayError).code).toBe('AssumeRoleFailed');
    expect((error as GatewayError).status).toBe(409);
    return error as GatewayError;
  }
  throw new Error('expected AssumeRoleFailed');
}

/** Lets queued I/O run until `condition` holds (bounded by iterations, not by a time budget). */
async function settle(condition: () => boolean | Promise<boolean>): Promise<void> {
  for (let i = 0; i < 500 && !(await condition()); i++) await new Promise((r) => setTimeout(r, 5));
  expect(await condition()).toBe(true);
}

const MIN = 60_000;

describe('assume and cache', () => {
  it('assumes the coffer role with RoleArn, sanitised session name, duration and ExternalId, then caches', async () => {
    const p = provider();
    const first = await p.credentialsFor(REQ);
    const second = await p.credentialsFor(REQ);
    expect(sts.callCount()).toBe(1);
    const issued = sts.issued[0]!;
    expect(first).toEqual({
      accessKeyId: issued.accessKeyId,
      secretAccessKey: issued.secretAccessKey,
      sessionToken: issued.sessionToken,
      expiration: issued.expiration,
    });
    expect(second).toEqual(first);
    expect(first.expiration!.getTime()).toBe(clock + 3600_000);
    expect(sts.calls[0]).toMatchObject({ action: 'AssumeRole', status: 200, roleArn: ROLE_A, roleSessionName: 'alice', durationSeconds: 3600, externalId: 'ext-for-coffer-a' });
    expect(p.stats()).toMatchObject({ assumeRoleCalls: 1, hits: 1 });
  });

  it('refuses credentials that are already expired by the local clock (clock ahead of STS by more than the duration)', async () => {
    // The provider's clock runs 2 h ahead of the STS server's; a 1 h session arrives expired.
    const p = provider({ now: () => clock + 2 * 3600_000 });
    const error = await failure(p.credentialsFor(REQ));
    expect(error.reason).toBe('expired-on-arrival');
    expect(sts.callCount()).toBe(1);
  });

  it('caches per (role, external id, session name)', async () => {
    const p = provider();
    await p.credentialsFor(REQ);
    await p.credentialsFor({ coffer: 'a', sessionName: 'bob' });
    await p.credentialsFor({ coffer: 'b', sessionName: 'alice' });
    await p.credentialsFor({ coffer: 'a', sessionName: 'bob' });
    expect(sts.callCount()).toBe(3);
  });

  it('session names are sanitised to what STS accepts', async () => {
    const p = provider();
    await p.credentialsFor({ coffer: 'b', sessionName: 'user name/with:odd chars ä😀 and a very long tail that goes on and on and on' });
    await p.credentialsFor({ coffer: 'b', sessionName: 'x' });
    expect(sts.calls.map((c) => c.status)).toEqual([200, 200]);
    expect(sts.calls[0]!.roleSessionName).toBe('user-name-with-odd-chars----and-a-very-long-tail-that-goes-on-an');
    expect(sts.calls[1]!.roleSessionName).toBe('x-');
  });

  it('sanitizeSessionName', () => {
    expect(sanitizeSessionName('')).toBe('--');
    expect(sanitizeSessionName('ok+=,.@-_Z9')).toBe('ok+=,.@-_Z9');
    expect(sanitizeSessionName('😀')).toBe('--');
    expect(sanitizeSessionName('a'.repeat(100))).toHaveLength(64);
    expect(sanitizeSessionName('a\nb')).toBe('a-b');
  });

  it('unknown coffer → AssumeRoleFailed unknown-coffer without calling STS', async () => {
    expect((await failure(provider().credentialsFor({ coffer: 'nope', sessionName: 's' }))).reason).toBe('unknown-coffer');
    expect((await failure(provider().credentialsFor({ coffer: 'constructor', sessionName: 's' }))).reason).toBe('unknown-coffer');
    expect(sts.callCount()).toBe(0);
  });
});

describe('refresh', () => {
  it('refreshes inside the window before expiry, serving the cached credentials meanwhile', async () => {
    const p = provider({ refreshWindowMs: 10 * MIN });
    const old = await p.credentialsFor(REQ);
    clock += 49 * MIN; // 11 min left: outside the window
    expect(await p.credentialsFor(REQ)).toEqual(old);
    expect(sts.callCount()).toBe(1);
    clock += 2 * MIN; // 9 min left: inside the window → background refresh, old ones served now
    expect(await p.credentialsFor(REQ)).toEqual(old);
    await settle(async () => (await p.credentialsFor(REQ)).accessKeyId !== old.accessKeyId);
    const fresh = await p.credentialsFor(REQ);
    expect(fresh.accessKeyId).toBe(sts.issued[1]!.accessKeyId);
    expect(fresh.expiration!.getTime()).toBe(clock + 3600_000);
    expect(sts.callCount()).toBe(2);
  });

  it('caps the window at half the lifetime (900 s credentials refresh after 450 s)', async () => {
    const p = provider({ refreshWindowMs: 10 * MIN, minRemainingMs: 0 });
    const old = await p.credentialsFor({ coffer: 'b', sessionName: 's' });
    clock += 449_000;
    await p.credentialsFor({ coffer: 'b', sessionName: 's' });
    expect(sts.callCount()).toBe(1);
    clock += 1_000;
    await p.credentialsFor({ coffer: 'b', sessionName: 's' });
    await settle(async () => (await p.credentialsFor({ coffer: 'b', sessionName: 's' })).accessKeyId !== old.accessKeyId);
    expect(sts.callCount()).toBe(2);
  });

  it('1000 concurrent callers when credentials have expired → one AssumeRole call, all get the new credentials', async () => {
    const p = provider();
    await p.credentialsFor(REQ);
    clock += 3600_000; // expired
    sts.script.add({ operation: 'AssumeRole', latencyMs: 50, times: 1 }); // keep the refresh in flight a while
    const results = await Promise.all(Array.from({ length: 1000 }, () => p.credentialsFor(REQ)));
    expect(sts.callCount()).toBe(2);
    const fresh = sts.issued[1]!;
    expect(results.every((r) => r.accessKeyId === fresh.accessKeyId)).toBe(true);
  });

  it('1000 concurrent callers inside the refresh window → one AssumeRole call, nobody waits', async () => {
    const p = provider({ refreshWindowMs: 10 * MIN });
    const old = await p.credentialsFor(REQ);
    clock += 55 * MIN;
    sts.script.add({ operation: 'AssumeRole', latencyMs: 50, times: 1 });
    const results = await Promise.all(Array.from({ length: 1000 }, () => p.credentialsFor(REQ)));
    expect(results.every((r) => r.accessKeyId === old.accessKeyId)).toBe(true);
    await settle(() => p.stats().assumeRoleCalls === 2 && sts.callCount() === 2);
    await settle(async () => (await p.credentialsFor(REQ)).accessKeyId === sts.issued[1]!.accessKeyId);
    expect(sts.callCount()).toBe(2);
  });

  it('close to expiry (< minRemaining), callers wait for the single refresh', async () => {
    const p = provider({ refreshWindowMs: 10 * MIN, minRemainingMs: MIN });
    await p.credentialsFor(REQ);
    clock += 59.5 * MIN; // 30 s left
    const results = await Promise.all(Array.from({ length: 50 }, () => p.credentialsFor(REQ)));
    expect(sts.callCount()).toBe(2);
    expect(results.every((r) => r.accessKeyId === sts.issued[1]!.accessKeyId)).toBe(true);
  });
});

describe('STS failures', () => {
  it('STS down while cached credentials are valid → no errors, cached ones served, hook + counters, bounded retries', async () => {
    const events: RefreshFailureEvent[] = [];
    const p = provider({ refreshWindowMs: 10 * MIN, refreshRetryMs: MIN, retry: { maxAttempts: 2 }, onRefreshFailure: (e) => events.push(e) });
    const cached = await p.credentialsFor(REQ);
    sts.failAlways('ServiceUnavailable');
    clock += 55 * MIN; // 5 min left
    for (let i = 0; i < 20; i++) expect(await p.credentialsFor(REQ)).toEqual(cached);
    await settle(() => p.stats().refreshFailures === 1);
    for (let i = 0; i < 20; i++) expect(await p.credentialsFor(REQ)).toEqual(cached);
    // One refresh operation of 2 attempts; no further attempts inside refreshRetryMs.
    expect(sts.callCount()).toBe(1 + 2);
    expect(events).toEqual([{ coffer: 'a', roleArn: ROLE_A, reason: 'unavailable', servingCached: true }]);
    expect(p.stats().staleServes).toBeGreaterThanOrEqual(20);

    // Even with 10 s left (callers now wait for refreshes) the still-valid credentials keep being served.
    clock += 4 * MIN + 50_000;
    expect(await p.credentialsFor(REQ)).toEqual(cached);
    expect(sts.callCount()).toBe(1 + 4);

    // Past expiry the provider fails closed …
    clock += 11_000;
    expect((await failure(p.credentialsFor(REQ))).reason).toBe('unavailable');
    // … and recovers when STS does.
    sts.script.clear();
    expect((await p.credentialsFor(REQ)).accessKeyId).toBe(sts.issued[1]!.accessKeyId);
  });

  it('metrics hooks: every lookup is a hit, miss or stale serve, every AssumeRole an ok or an error', async () => {
    const assumed: Array<[string, string, string | undefined]> = [];
    const lookups: string[] = [];
    const p = provider({
      refreshWindowMs: 10 * MIN,
      refreshRetryMs: MIN,
      retry: { maxAttempts: 1 },
      onAssumeRole: (e) => assumed.push([e.coffer, e.result, e.reason]),
      onLookup: (e) => lookups.push(`${e.coffer}:${e.outcome}`),
    });
    const cached = await p.credentialsFor(REQ); // cold: waits for AssumeRole
    await p.credentialsFor(REQ); // fresh
    expect(lookups).toEqual(['a:miss', 'a:hit']);
    expect(assumed).toEqual([['a', 'ok', undefined]]);

    sts.failAlways('ServiceUnavailable');
    clock += 55 * MIN; // inside the refresh window: background refresh, cached ones served meanwhile
    expect(await p.credentialsFor(REQ)).toEqual(cached);
    await settle(() => assumed.length === 2);
    expect(assumed[1]).toEqual(['a', 'error', 'unavailable']);
    expect(await p.credentialsFor(REQ)).toEqual(cached); // after the failed refresh: stale
    expect(lookups.slice(2)).toEqual(['a:hit', 'a:stale']);

    // A hook that throws never fails the caller.
    const q = provider({
      onLookup: () => {
        throw new Error('hook');
      },
      onAssumeRole: () => {
        throw new Error('hook');
      },
    });
    sts.script.clear();
    expect((await q.credentialsFor({ coffer: 'b', sessionName: 's' })).accessKeyId).toBe(sts.issued[1]!.accessKeyId);
  });

  it('cold start with STS unreachable fails closed (unavailable)', async () => {
    await sts.close();
    const p = provider({ retry: { maxAttempts: 2 } });
    expect((await failure(p.credentialsFor(REQ))).reason).toBe('unavailable');
  });

  it('AccessDenied (unknown role) → access-denied after exactly one attempt', async () => {
    const error = await failure(provider().credentialsFor({ coffer: 'unknown', sessionName: 's' }));
    expect(error.reason).toBe('access-denied');
    expect(sts.calls.map((c) => [c.status, c.errorCode])).toEqual([[403, 'AccessDenied']]);
  });

  it('ExternalId is enforced: missing or wrong → access-denied (no retry); right → ok', async () => {
    const p = provider();
    expect((await failure(p.credentialsFor({ coffer: 'a-no-external-id', sessionName: 's' }))).reason).toBe('access-denied');
    expect((await failure(p.credentialsFor({ coffer: 'a-wrong-external-id', sessionName: 's' }))).reason).toBe('access-denied');
    expect(sts.calls.map((c) => c.errorCode)).toEqual(['AccessDenied', 'AccessDenied']);
    await p.credentialsFor({ coffer: 'a', sessionName: 's' });
    expect(sts.calls.at(-1)!.status).toBe(200);
  });

  it('DurationSeconds above the role maximum → invalid-request (ValidationError, no retry)', async () => {
    expect((await failure(provider().credentialsFor({ coffer: 'a-too-long', sessionName: 's' }))).reason).toBe('invalid-request');
    expect(sts.calls.map((c) => c.errorCode)).toEqual(['ValidationError']);
  });

  it('throttling is retried: two Throttling responses then success', async () => {
    sts.failNext(2, 'Throttling');
    const creds = await provider().credentialsFor(REQ);
    expect(creds.accessKeyId).toBe(sts.issued[0]!.accessKeyId);
    expect(sts.calls.map((c) => c.errorCode ?? c.status)).toEqual(['Throttling', 'Throttling', 200]);
  });

  it('100 % throttling → throttled after exactly maxAttempts', async () => {
    sts.failAlways('Throttling');
    expect((await failure(provider({ retry: { maxAttempts: 3 } }).credentialsFor(REQ))).reason).toBe('throttled');
    expect(sts.callCount()).toBe(3);
  });

  it('an STS that never answers is cut by the overall deadline (reason timeout), not after attempts × per-attempt timeout', async () => {
    // Each attempt would hang 60 s; without the deadline this test could only end by Jest's timeout.
    sts.script.add({ operation: 'AssumeRole', latencyMs: 60_000 });
    const error = await failure(provider({ retry: { deadlineMs: 300 } }).credentialsFor(REQ));
    expect(error.reason).toBe('timeout');
    expect(error.message).toContain('after 1 attempt: DeadlineExceeded');
  });

  it('a reset connection and a 500 are transient', async () => {
    sts.failNext(1, CONNECTION_RESET);
    sts.failNext(1, 'InternalFailure');
    await provider().credentialsFor(REQ);
    expect(sts.calls.map((c) => c.errorCode ?? c.status)).toEqual([CONNECTION_RESET, 'InternalFailure', 200]);
  });

  it('base credentials STS does not know → invalid-credentials, no retry', async () => {
    const p = provider({ sts: { region: REGION, endpoint: sts.endpoint, credentials: { accessKeyId: 'AKIDNOPE', secretAccessKey: 'x' } } });
    expect((await failure(p.credentialsFor(REQ))).reason).toBe('invalid-credentials');
    expect(sts.calls.map((c) => c.errorCode)).toEqual(['InvalidClientTokenId']);
  });

  it('error messages carry no secrets', async () => {
    const p = provider({ sts: { region: REGION, endpoint: sts.endpoint, credentials: { ...BASE, secretAccessKey: 'wrong-secret-value' } } });
    const error = await failure(p.credentialsFor(REQ));
    expect(error.reason).toBe('invalid-credentials');
    expect(`${error.message} ${JSON.stringify(error)}`).not.toMatch(/wrong-secret-value|base-secret-never-logged/);
  });
});

describe('static provider and SDK adapter', () => {
  const fixed: RoleCredentials = { accessKeyId: 'AKIDSTATIC', secretAccessKey: 'static-secret' };

  it('static provider serves configured credentials per coffer and refuses others', async () => {
    const p = createStaticRoleProvider({ c1: fixed });
    expect(await p.credentialsFor({ coffer: 'c1', sessionName: 'x' })).toEqual(fixed);
    const error = (await p.credentialsFor({ coffer: 'c2', sessionName: 'x' }).catch((e: unknown) => e)) as GatewayError;
    expect(error).toBeInstanceOf(GatewayError);
    expect(error.code).toBe('AssumeRoleFailed');
    expect(error.reason).toBe('unknown-coffer');
  });

  it('awsCredentialProvider maps RoleCredentials to the SDK identity shape', async () => {
    const expiration = new Date(clock + 1000);
    const roles = createStaticRoleProvider({ c1: { ...fixed, sessionToken: 'tok', expiration } });
    expect(await awsCredentialProvider(roles, { coffer: 'c1', sessionName: 's' })()).toEqual({ ...fixed, sessionToken: 'tok', expiration });
    expect(await awsCredentialProvider(createStaticRoleProvider({ c1: fixed }), { coffer: 'c1', sessionName: 's' })()).toEqual(fixed);
  });
});
