/**
 * RoleProvider that assumes one IAM role per coffer with STS AssumeRole.
 *
 * Caching: credentials are cached per (roleArn, externalId, sessionName) and refreshed inside a window
 * before they expire. Why this shape:
 *  - one refresh in flight per entry: when 1000 requests hit an entry that needs refreshing, STS sees one
 *    AssumeRole call, not 1000 (STS throttles at a few hundred calls/s per account);
 *  - refresh early and in the background: while the cached credentials still have more than
 *    `minRemainingMs` of life, callers get them immediately and never wait on STS;
 *  - STS outage tolerance: if a refresh fails while the cached credentials are unexpired, callers keep
 *    getting them (counted in `stats().staleServes`, reported through `onRefreshFailure`), and the next
 *    refresh attempt waits `refreshRetryMs` so a down STS is not hammered by every request;
 *  - a cold start (nothing cached, or expired) with STS down fails closed with AssumeRoleFailed.
 */
import { awsClientConfig, type AwsClientOptions } from '../util/aws-client-config';
import { AssumeRoleCommand, STSClient, type STSClientConfig } from '@aws-sdk/client-sts';
import { GatewayError } from '../errors/gateway-error';
import { DEFAULT_RETRY_POLICY, describeAwsError, withAwsRetry, type RetryHooks, type RetryPolicy } from '../util/aws-errors';
import type { RoleCredentials, RoleProvider, RoleRequest } from './role-provider';

export interface RoleConfig {
  readonly roleArn: string;
  /** Required by roles whose trust policy demands sts:ExternalId (confused-deputy protection). */
  readonly externalId?: string;
  /** 900..43200 and at most the role's MaxSessionDuration (STS enforces both). */
  readonly durationSeconds: number;
}

/** The one STS call we make; a narrow port so unit tests can pass a plain object. */
export interface StsApi {
  assumeRole(
    input: {
      RoleArn: string;
      RoleSessionName: string;
      DurationSeconds: number;
      ExternalId?: string;
    },
    options?: { readonly abortSignal?: AbortSignal },
  ): Promise<{
    Credentials?: { AccessKeyId?: string; SecretAccessKey?: string; SessionToken?: string; Expiration?: Date };
  }>;
}

export interface StsClientOptions extends AwsClientOptions {
  /** The gateway's own (base) credentials, allowed to assume the coffer roles. */
  readonly credentials: NonNullable<STSClientConfig['credentials']>;
}

/** The STS SDK client, built like every AWS client here (util/aws-client-config). */
export function createStsClient(options: StsClientOptions): STSClient {
  return new STSClient(awsClientConfig(options));
}

export function sdkStsApi(client: STSClient): StsApi {
  return { assumeRole: (input, options) => client.send(new AssumeRoleCommand(input), { ...options }) };
}

const SESSION_NAME_MAX = 64;
const SESSION_NAME_MIN = 2;

/**
 * Makes any string a valid RoleSessionName ([\w+=,.@-]{2,64}): other characters (per code point) become
 * '-', long names are cut at 64, short ones padded with '-'. Deterministic, so it can be a cache key.
 */
export function sanitizeSessionName(name: string): string {
  const cleaned = Array.from(name, (ch) => (/^[\w+=,.@-]$/.test(ch) ? ch : '-')).join('');
  return cleaned.slice(0, SESSION_NAME_MAX).padEnd(SESSION_NAME_MIN, '-');
}

export interface RefreshFailureEvent {
  readonly coffer: string;
  readonly roleArn: string;
  readonly reason: string;
  /** True when unexpired cached credentials remain and keep being served. */
  readonly servingCached: boolean;
}

/** One AssumeRole operation (its retries included) finished. No credentials in it. */
export interface AssumeRoleEvent {
  readonly coffer: string;
  readonly result: 'ok' | 'error';
  /** The failure's classification (throttled, access-denied, …) when result is error. */
  readonly reason?: string;
}

/**
 * How one `credentialsFor` call was served: `hit` from the cache without waiting, `miss` after waiting
 * for AssumeRole (whether it then succeeded or not), `stale` from the cache after the entry's latest
 * refresh failed (the STS-outage tolerance at work; the credentials are still unexpired).
 */
export type CredentialLookupOutcome = 'hit' | 'miss' | 'stale';

export interface StsRoleProviderOptions extends RetryHooks {
  readonly roles: Readonly<Record<string, RoleConfig>> | ((coffer: string) => RoleConfig | undefined);
  readonly sts: StsApi | StsClientOptions;
  readonly retry?: Partial<RetryPolicy>;
  /** Refresh this long before expiry (capped at half the credentials' lifetime). Default 10 min. */
  readonly refreshWindowMs?: number;
  /** Inside the refresh window, callers wait for the refresh only when less than this remains. Default 60 s. */
  readonly minRemainingMs?: number;
  /** After a failed refresh, do not try again for this long while cached credentials are valid. Default 5 s. */
  readonly refreshRetryMs?: number;
  /** Bound on cached (role, session name) entries. Default 10 000. */
  readonly maxEntries?: number;
  /** Injected clock (ms since epoch), compared with the STS Expiration; also the retry deadline's clock. */
  readonly now?: () => number;
  /** Called (never throws into the caller) when a refresh fails; the gateway wires metrics here. */
  readonly onRefreshFailure?: (event: RefreshFailureEvent) => void;
  /** Called after every AssumeRole operation; the gateway counts them by result. Never throws into the caller. */
  readonly onAssumeRole?: (event: AssumeRoleEvent) => void;
  /** Called once per `credentialsFor` call with how it was served. Never throws into the caller. */
  readonly onLookup?: (event: { readonly coffer: string; readonly outcome: CredentialLookupOutcome }) => void;
}

export interface StsRoleProviderStats {
  /** AssumeRole operations started (each may make several attempts on the wire). */
  readonly assumeRoleCalls: number;
  readonly refreshFailures: number;
  /** Credentials served from cache after the latest refresh of their entry failed. */
  readonly staleServes: number;
  readonly hits: number;
  readonly entries: number;
}

export interface StsRoleProvider extends RoleProvider {
  stats(): StsRoleProviderStats;
  /** Closes the SDK client when this provider built it. */
  destroy(): void;
}

interface CachedCredentials extends RoleCredentials {
  readonly expiration: Date;
}

interface Entry {
  credentials: CachedCredentials | undefined;
  issuedAt: number;
  refresh: Promise<CachedCredentials> | undefined;
  retryNotBefore: number;
  lastRefreshFailed: boolean;
}

function isStsApi(value: StsApi | StsClientOptions): value is StsApi {
  return typeof (value as StsApi).assumeRole === 'function';
}

export function createStsRoleProvider(options: StsRoleProviderOptions): StsRoleProvider {
  const client = isStsApi(options.sts) ? undefined : createStsClient(options.sts);
  const api = client ? sdkStsApi(client) : (options.sts as StsApi);
  const policy: RetryPolicy = { ...DEFAULT_RETRY_POLICY, ...options.retry };
  const hooks: RetryHooks = {
    ...(options.sleep ? { sleep: options.sleep } : {}),
    ...(options.random ? { random: options.random } : {}),
    ...(options.now ? { now: options.now } : {}),
  };
  const now = options.now ?? Date.now;
  const refreshWindowMs = options.refreshWindowMs ?? 10 * 60_000;
  const minRemainingMs = options.minRemainingMs ?? 60_000;
  const refreshRetryMs = options.refreshRetryMs ?? 5_000;
  const maxEntries = options.maxEntries ?? 10_000;
  const roleFor =
    typeof options.roles === 'function' ? options.roles : (coffer: string): RoleConfig | undefined => (Object.prototype.hasOwnProperty.call(options.roles, coffer) ? (options.roles as Record<string, RoleConfig>)[coffer] : undefined);

  const entries = new Map<string, Entry>();
  const counters = { assumeRoleCalls: 0, refreshFailures: 0, staleServes: 0, hits: 0 };
  /** Hooks feed metrics and logs; a faulty one must never turn into a request failure. */
  const safely = <T>(hook: ((event: T) => void) | undefined, event: T): void => {
    try {
      hook?.(event);
    } catch {
      // ignored on purpose
    }
  };

  async function assume(role: RoleConfig, sessionName: string): Promise<CachedCredentials> {
    counters.assumeRoleCalls++;
    const output = await withAwsRetry(
      (_, abortSignal) =>
        api.assumeRole(
          {
            RoleArn: role.roleArn,
            RoleSessionName: sessionName,
            DurationSeconds: role.durationSeconds,
            ...(role.externalId === undefined ? {} : { ExternalId: role.externalId }),
          },
          { abortSignal },
        ),
      policy,
      ({ error, classification, attempts }) => new GatewayError('AssumeRoleFailed', `STS AssumeRole failed after ${attempts} attempt${attempts === 1 ? '' : 's'}: ${describeAwsError(error)}.`, { reason: classification.reason }),
      hooks,
    );
    const c = output.Credentials;
    if (!c?.AccessKeyId || !c.SecretAccessKey || !c.SessionToken || !(c.Expiration instanceof Date) || Number.isNaN(c.Expiration.getTime())) {
      throw new GatewayError('AssumeRoleFailed', 'STS AssumeRole returned incomplete credentials.', { reason: 'invalid-response' });
    }
    // Expired on arrival means this host's clock is ahead of STS by more than the session duration:
    // signing with them would fail upstream with a misleading ExpiredToken, so say what is wrong here.
    if (c.Expiration.getTime() <= now()) {
      throw new GatewayError('AssumeRoleFailed', "STS AssumeRole returned credentials that have already expired by this host's clock (clock skew?).", { reason: 'expired-on-arrival' });
    }
    return { accessKeyId: c.AccessKeyId, secretAccessKey: c.SecretAccessKey, sessionToken: c.SessionToken, expiration: c.Expiration };
  }

  function refreshAt(entry: Entry, credentials: CachedCredentials): number {
    const expires = credentials.expiration.getTime();
    const lifetime = Math.max(0, expires - entry.issuedAt);
    return expires - Math.min(refreshWindowMs, lifetime / 2);
  }

  function startRefresh(entry: Entry, coffer: string, role: RoleConfig, sessionName: string): Promise<CachedCredentials> {
    const started = now();
    const refresh = assume(role, sessionName).then(
      (credentials) => {
        entry.credentials = credentials;
        entry.issuedAt = started;
        entry.refresh = undefined;
        entry.lastRefreshFailed = false;
        safely(options.onAssumeRole, { coffer, result: 'ok' });
        return credentials;
      },
      (error: unknown) => {
        entry.refresh = undefined;
        entry.lastRefreshFailed = true;
        entry.retryNotBefore = now() + refreshRetryMs;
        counters.refreshFailures++;
        const servingCached = entry.credentials !== undefined && now() < entry.credentials.expiration.getTime();
        const reason = error instanceof GatewayError ? (error.reason ?? 'unknown') : 'unknown';
        safely(options.onAssumeRole, { coffer, result: 'error', reason });
        safely(options.onRefreshFailure, { coffer, roleArn: role.roleArn, reason, servingCached });
        throw error;
      },
    );
    // Background refreshes may have no awaiting caller; their failure is handled above.
    refresh.catch(() => undefined);
    entry.refresh = refresh;
    return refresh;
  }

  function entryFor(cacheKey: string): Entry {
    let entry = entries.get(cacheKey);
    if (!entry) {
      entry = { credentials: undefined, issuedAt: 0, refresh: undefined, retryNotBefore: 0, lastRefreshFailed: false };
      entries.set(cacheKey, entry);
      if (entries.size > maxEntries) {
        for (const [key, candidate] of entries) {
          if (candidate !== entry && !candidate.refresh) {
            entries.delete(key);
            break;
          }
        }
      }
    }
    return entry;
  }

  const serveCached = (entry: Entry, coffer: string, credentials: CachedCredentials): RoleCredentials => {
    if (entry.lastRefreshFailed) counters.staleServes++;
    safely(options.onLookup, { coffer, outcome: entry.lastRefreshFailed ? 'stale' : 'hit' });
    return { ...credentials };
  };

  /** Waits for the entry's refresh; the caller had no usable cached credentials, so this is a miss. */
  const waitFor = async (pending: Promise<CachedCredentials>, coffer: string): Promise<RoleCredentials> => {
    safely(options.onLookup, { coffer, outcome: 'miss' });
    return { ...(await pending) };
  };

  return {
    async credentialsFor(request: RoleRequest): Promise<RoleCredentials> {
      const role = roleFor(request.coffer);
      if (!role) throw new GatewayError('AssumeRoleFailed', 'No role is configured for this coffer.', { reason: 'unknown-coffer' });
      const sessionName = sanitizeSessionName(request.sessionName);
      const cacheKey = JSON.stringify([role.roleArn, role.externalId ?? null, sessionName]);
      const entry = entryFor(cacheKey);
      const t = now();
      const cached = entry.credentials;

      if (cached && t < refreshAt(entry, cached)) {
        counters.hits++;
        safely(options.onLookup, { coffer: request.coffer, outcome: 'hit' });
        return { ...cached };
      }
      if (cached && t < cached.expiration.getTime()) {
        // Inside the refresh window with valid credentials.
        if (!entry.refresh && t >= entry.retryNotBefore) startRefresh(entry, request.coffer, role, sessionName);
        const pending = entry.refresh;
        if (!pending || cached.expiration.getTime() - t > minRemainingMs) return serveCached(entry, request.coffer, cached);
        // Counted once the refresh settled: a waiter that ends up on the cached credentials is a stale serve.
        let refreshed: CachedCredentials;
        try {
          refreshed = await pending;
        } catch (error) {
          if (now() < cached.expiration.getTime()) return serveCached(entry, request.coffer, cached);
          safely(options.onLookup, { coffer: request.coffer, outcome: 'miss' });
          throw error;
        }
        safely(options.onLookup, { coffer: request.coffer, outcome: 'miss' });
        return { ...refreshed };
      }
      // Nothing cached or expired: everyone waits for the one refresh.
      return waitFor(entry.refresh ?? startRefresh(entry, request.coffer, role, sessionName), request.coffer);
    },
    stats(): StsRoleProviderStats {
      return { ...counters, entries: entries.size };
    },
    destroy(): void {
      client?.destroy();
    },
  };
}
