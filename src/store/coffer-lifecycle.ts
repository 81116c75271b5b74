/**
 * Coffer lifecycle (expiry): PutCofferLifecycle / GetCofferLifecycle, and how long a coffer's objects
 * live, for the read, list and write-once paths.
 *
 * Two things are written, both upstream, so every replica sees them:
 * - the bucket lifecycle rules that make the upstream's own engine remove expired objects
 *   (lifecycle-rules.ts), merged by rule ID into the rules the bucket already has;
 * - the coffer's lifecycle record `k/lifecycle` (docs/FORMAT.md §8.7), sealed under the coffer key.
 *   This is what the gateway enforces: an object whose sealed completion time (`created`) lies more
 *   than N days back is gone — 404 on reads, absent from listings, and its key writable again — at
 *   once, whenever the upstream gets round to deleting it. A writer of the bucket can neither forge
 *   the record nor an object's `created`; the bucket's rules themselves are not authenticated (a
 *   bucket writer can remove anything anyway).
 * A replica trusts a record it has read for `cacheTtlMs` (README: a changed configuration applies on
 * every replica within that time; at once on the replica that took the PUT).
 */
import { GatewayError, isGatewayError } from '../errors/gateway-error';
import { openCofferRecord, sealCofferRecord } from '../format/coffer-record';
import { IntegrityError } from '../format/integrity-error';
import { cofferKey } from './coffer-key';
import type { CofferContext } from './coffer-context';
import { cofferLifecycleRules, hasCofferRules, mergeCofferRules } from './lifecycle-rules';
import { isNotFound, type LifecycleRule } from './ports';
import { readSmallObject } from './read-small-object';

/** CDCS: Expiration.Days is 1..3650. */
export const MAX_LIFECYCLE_DAYS = 3650;

export type LifecycleForm = 'json' | 'xml';

/** A coffer's lifecycle configuration, as PutCofferLifecycle accepts it (cdcs/lifecycle-document.ts parses both forms). */
export interface LifecycleDocument {
  /** Objects expire this many days after they were uploaded (completed). */
  readonly days: number;
  /** The form the configuration was put in; GetCofferLifecycle answers in it. */
  readonly form: LifecycleForm;
  /** The rule ID of the XML form (echoed back), if the client gave one. */
  readonly ruleId?: string;
}

export interface CofferLifecycleOptions {
  /** Length of a lifecycle "day" of the upstreams' engines: 86 400 000; Ceph with `rgw lc debug interval = S` counts S seconds. */
  readonly dayLengthMs: number;
  /** How long a replica trusts a lifecycle record it has read. */
  readonly cacheTtlMs: number;
  readonly now?: () => number;
}

export interface StoredLifecycle extends LifecycleDocument {
  /** When the configuration was put (ISO-8601). */
  readonly updated: string;
}

/** Concurrent PutCofferLifecycle calls of coffers sharing a bucket each rewrite the whole configuration: re-merge when ours did not stick. */
const RULE_WRITE_ATTEMPTS = 3;

function lifecycleUnsupported(error: unknown): GatewayError | undefined {
  if (!isGatewayError(error)) return undefined;
  if (error.reason === 'upstream-NotImplemented' || error.reason === 'upstream-MethodNotAllowed') {
    return new GatewayError('NotImplemented', "The coffer's upstream object store does not support bucket lifecycle rules, so the coffer cannot have a lifecycle configuration.", { reason: 'upstream-lifecycle-unsupported', cause: error });
  }
  if (error.reason === 'upstream-AccessDenied') {
    return new GatewayError('BadGateway', "The coffer's upstream refused the gateway's lifecycle request (AccessDenied): its credentials need s3:GetLifecycleConfiguration and s3:PutLifecycleConfiguration on the bucket.", {
      reason: 'upstream-lifecycle-denied',
      cause: error,
    });
  }
  return undefined;
}

function decodeStored(value: Record<string, unknown>): StoredLifecycle {
  const { days, form, ruleId, updated } = value;
  if (typeof days !== 'number' || !Number.isInteger(days) || days < 1 || days > MAX_LIFECYCLE_DAYS || (form !== 'json' && form !== 'xml') || typeof updated !== 'string' || (ruleId !== undefined && typeof ruleId !== 'string')) {
    throw new IntegrityError('coffer-record-rejected', 'the coffer lifecycle record is malformed');
  }
  return { days, form: form as LifecycleForm, updated, ...(ruleId === undefined ? {} : { ruleId: ruleId as string }) };
}

export class CofferLifecycle {
  private readonly now: () => number;
  private readonly cached = new Map<string, { readonly lifetimeMs: number | undefined; readonly until: number }>();

  constructor(private readonly options: CofferLifecycleOptions) {
    this.now = options.now ?? Date.now;
  }

  /** PutCofferLifecycle: the upstream rules first (an upstream without lifecycle support stores nothing), then the sealed record. */
  async put(context: CofferContext, document: LifecycleDocument): Promise<void> {
    const store = context.store;
    if (store.getLifecycleRules === undefined || store.putLifecycleRules === undefined) {
      throw new GatewayError('NotImplemented', "The coffer's upstream object store does not support bucket lifecycle rules, so the coffer cannot have a lifecycle configuration.", { reason: 'upstream-lifecycle-unsupported' });
    }
    const ours = cofferLifecycleRules(context.coffer, context.layout, document.days);
    try {
      for (let attempt = 1; ; attempt += 1) {
        const existing: LifecycleRule[] = await store.getLifecycleRules();
        if (attempt > 1 && hasCofferRules(existing, context.coffer, context.layout, document.days)) break;
        await store.putLifecycleRules(mergeCofferRules(existing, context.coffer, ours));
        const written = await store.getLifecycleRules();
        if (hasCofferRules(written, context.coffer, context.layout, document.days)) break;
        if (attempt === RULE_WRITE_ATTEMPTS)
          throw new GatewayError('ServiceUnavailable', "The coffer's lifecycle rules were overwritten by a concurrent change of the bucket's lifecycle configuration; retry.", { reason: 'lifecycle-rules-contended' });
      }
    } catch (error) {
      throw lifecycleUnsupported(error) ?? error;
    }
    const key = (await cofferKey(context, { create: true })) as Buffer;
    let sealed: Buffer;
    try {
      sealed = sealCofferRecord(key, 'lifecycle', context.coffer, { days: document.days, form: document.form, ...(document.ruleId === undefined ? {} : { ruleId: document.ruleId }), updated: new Date(this.now()).toISOString() });
    } finally {
      key.fill(0);
    }
    await store.putObject(context.layout.cofferRecord('lifecycle'), { body: sealed });
    // This replica applies the new configuration at once; the others within cacheTtlMs.
    this.cached.delete(context.coffer);
  }

  /** The coffer's configuration (authenticated), or undefined when it has none. */
  async get(context: CofferContext): Promise<StoredLifecycle | undefined> {
    let stored: Buffer;
    try {
      stored = await readSmallObject((await context.store.getObject(context.layout.cofferRecord('lifecycle'))).body, 64 * 1024);
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
    const key = await cofferKey(context, { create: false });
    if (key === undefined) throw new IntegrityError('coffer-record-rejected', 'a coffer lifecycle record exists but the coffer key record does not');
    try {
      return decodeStored(openCofferRecord(key, 'lifecycle', context.coffer, stored));
    } finally {
      key.fill(0);
    }
  }

  /** Whether the bucket still holds the coffer's rules for `days` (GetCofferLifecycle reads them back). */
  async upstreamRulesMatch(context: CofferContext, days: number): Promise<boolean> {
    if (context.store.getLifecycleRules === undefined) return false;
    try {
      return hasCofferRules(await context.store.getLifecycleRules(), context.coffer, context.layout, days);
    } catch (error) {
      throw lifecycleUnsupported(error) ?? error;
    }
  }

  /** How long the coffer's objects live, in ms; undefined: forever (no configuration). Cached per coffer for cacheTtlMs. */
  async lifetimeMs(context: CofferContext): Promise<number | undefined> {
    const now = this.now();
    const hit = this.cached.get(context.coffer);
    if (hit !== undefined && hit.until > now) return hit.lifetimeMs;
    const stored = await this.get(context);
    const lifetimeMs = stored === undefined ? undefined : stored.days * this.options.dayLengthMs;
    this.cached.set(context.coffer, { lifetimeMs, until: now + this.options.cacheTtlMs });
    return lifetimeMs;
  }

  /** Drops what this replica cached for the coffer (it was deleted: a coffer created again under its name starts without). */
  forget(coffer: string): void {
    this.cached.delete(coffer);
  }

  /** Whether an object completed at `created` (ISO-8601, sealed) has expired under `lifetimeMs`. */
  isExpired(created: string, lifetimeMs: number | undefined): boolean {
    if (lifetimeMs === undefined) return false;
    const completed = Date.parse(created);
    return Number.isFinite(completed) && this.now() >= completed + lifetimeMs;
  }
}

/**
 * The expiry test the read, list and write-once paths use: false when the coffer has no lifecycle
 * (or the context was built without one, as the command line's are).
 */
export async function isExpiredIn(context: CofferContext, created: string): Promise<boolean> {
  return (await context.expiry?.(created)) ?? false;
}
