/**
 * Coffer policies: PutCofferPolicy / GetCofferPolicy / DeleteCofferPolicy, and the policy decision the
 * pipeline makes for every coffer request (src/operations/run-operation.ts).
 *
 * The policy lives upstream so every replica sees it, as the coffer record `k/policy`
 * (docs/FORMAT.md §8.7) sealed under the coffer key: a writer of the bucket cannot write a policy
 * that grants them access, alter one, or move one from another coffer — a record that does not open
 * fails the coffer's requests with IntegrityCheckFailed rather than being read as "no policy". A
 * replica trusts a policy it has read for `cacheTtlMs` (README: a change applies at once on the
 * replica that took it, within that time on the others).
 */
import { evaluatePolicy, parseCofferPolicy, policyMayAllow, type CofferPolicy, type PolicyApiName, type PolicyDecision } from '../auth/coffer-policy';
import { openCofferRecord, sealCofferRecord } from '../format/coffer-record';
import { IntegrityError } from '../format/integrity-error';
import { cofferKey } from './coffer-key';
import type { CofferContext } from './coffer-context';
import { isNotFound } from './ports';
import { readSmallObject } from './read-small-object';

export interface CofferPoliciesOptions {
  readonly cacheTtlMs: number;
  readonly now?: () => number;
}

export class CofferPolicies {
  private readonly now: () => number;
  private readonly cached = new Map<string, { readonly policy: CofferPolicy | undefined; readonly until: number }>();

  constructor(private readonly options: CofferPoliciesOptions) {
    this.now = options.now ?? Date.now;
  }

  /** Stores a policy already parsed and validated for this coffer (replacing the old one). */
  async put(context: CofferContext, policy: CofferPolicy): Promise<void> {
    const key = (await cofferKey(context, { create: true })) as Buffer;
    let sealed: Buffer;
    try {
      sealed = sealCofferRecord(key, 'policy', context.coffer, { text: policy.text, updated: new Date(this.now()).toISOString() });
    } finally {
      key.fill(0);
    }
    await context.store.putObject(context.layout.cofferRecord('policy'), { body: sealed });
    this.cached.delete(context.coffer);
  }

  /** Removes the policy; none is not an error (CDCS answers 200 either way). */
  async delete(context: CofferContext): Promise<void> {
    await context.store.deleteObjects([context.layout.cofferRecord('policy')]);
    this.cached.delete(context.coffer);
  }

  /** The coffer's policy, authenticated, read from the bucket (no cache: GetCofferPolicy). */
  async get(context: CofferContext): Promise<CofferPolicy | undefined> {
    let stored: Buffer;
    try {
      stored = await readSmallObject((await context.store.getObject(context.layout.cofferRecord('policy'))).body, 64 * 1024);
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
    const key = await cofferKey(context, { create: false });
    if (key === undefined) throw new IntegrityError('coffer-record-rejected', 'a coffer policy record exists but the coffer key record does not');
    let text: unknown;
    try {
      text = openCofferRecord(key, 'policy', context.coffer, stored)['text'];
    } finally {
      key.fill(0);
    }
    if (typeof text !== 'string') throw new IntegrityError('coffer-record-rejected', 'the coffer policy record is malformed');
    // Sealed by the gateway after validation; parsed again so the rules of this version apply.
    return parseCofferPolicy(Buffer.from(text, 'utf8'), context.coffer);
  }

  /** Whether the coffer's policy allows these principals anything (GetService). */
  async mayAllow(context: CofferContext, principals: readonly string[]): Promise<boolean> {
    return policyMayAllow(await this.cachedPolicy(context), principals);
  }

  private async cachedPolicy(context: CofferContext): Promise<CofferPolicy | undefined> {
    const now = this.now();
    let hit = this.cached.get(context.coffer);
    if (hit === undefined || hit.until <= now) {
      hit = { policy: await this.get(context), until: now + this.options.cacheTtlMs };
      this.cached.set(context.coffer, hit);
    }
    return hit.policy;
  }

  /** Drops what this replica cached for the coffer (it was deleted: a coffer created again under its name starts without). */
  forget(coffer: string): void {
    this.cached.delete(coffer);
  }

  /** The policy's decision for one request (the policy cached per coffer for cacheTtlMs). */
  async decide(context: CofferContext, request: { readonly principals: readonly string[]; readonly action: PolicyApiName; readonly key: string | undefined; readonly sourceIp?: string }): Promise<PolicyDecision> {
    const policy = await this.cachedPolicy(context);
    return evaluatePolicy(policy, { ...request, now: new Date(this.now()) });
  }
}
