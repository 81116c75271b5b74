/**
 * The upstream lifecycle rules that carry out a coffer's expiry (pure). Expiry runs on the upstream's
 * own lifecycle engine: a coffer rule of N days becomes one bucket rule per area of the coffer's
 * layout (docs/FORMAT.md §8), each scoped to that area's prefix and identified by
 * `coffer-gateway:<coffer>:<area>`, so a coffer's rules can be found, replaced and never confused
 * with another coffer's or the operator's:
 *
 * | area | rule |
 * |---|---|
 * | `m/` manifests | expire after N days — the object is gone |
 * | `d/` data objects | expire after 2N days; incomplete upstream multipart uploads aborted N days after initiation |
 * | `u/` `p/` `s/` upload and part records, staged parts | expire after N + 1 days |
 * | `k/` coffer key and coffer records | never |
 *
 * Why 2N for data: the gateway hides an object N days after its completion (the manifest's sealed
 * `created`); an upstream counts a data object's age from its own creation, which for a multipart
 * object is no earlier than the upload's initiation. Uploads are aborted upstream N days after
 * initiation, so every completed object's data object is at most N days older than its manifest, and
 * 2N days never removes ciphertext of an object the gateway still shows. Records of uploads outlive
 * the upstream upload they describe by a day. (An open CDCS upload therefore has N days to complete.)
 */
import type { LifecycleRule } from './ports';
import type { UpstreamLayout } from './upstream-layout';

const RULE_ID_PREFIX = 'coffer-gateway:';

/** The ID prefix of every rule the gateway writes for `coffer`. */
export function cofferRulePrefix(coffer: string): string {
  return `${RULE_ID_PREFIX}${coffer}:`;
}

/** The bucket rules for a coffer whose objects expire `days` days after they were uploaded. */
export function cofferLifecycleRules(coffer: string, layout: UpstreamLayout, days: number): LifecycleRule[] {
  const areas = layout.areas();
  const id = (area: string): string => `${cofferRulePrefix(coffer)}${area}`;
  return [
    { id: id('manifests'), prefix: areas.manifests, enabled: true, expirationDays: days },
    { id: id('data'), prefix: areas.data, enabled: true, expirationDays: 2 * days, abortIncompleteUploadDays: days },
    { id: id('uploads'), prefix: areas.uploads, enabled: true, expirationDays: days + 1 },
    { id: id('parts'), prefix: areas.parts, enabled: true, expirationDays: days + 1 },
    { id: id('staged'), prefix: areas.staged, enabled: true, expirationDays: days + 1 },
  ];
}

/** The coffer's rules among the bucket's. */
export function findCofferRules(rules: readonly LifecycleRule[], coffer: string): LifecycleRule[] {
  return rules.filter((rule) => rule.id?.startsWith(cofferRulePrefix(coffer)) === true);
}

/**
 * The bucket's rules with the coffer's replaced by `ours`: every other rule — another coffer's, the
 * operator's — is kept exactly as read (`raw`), in its place.
 */
export function mergeCofferRules(existing: readonly LifecycleRule[], coffer: string, ours: readonly LifecycleRule[]): LifecycleRule[] {
  const prefix = cofferRulePrefix(coffer);
  return [...existing.filter((rule) => rule.id?.startsWith(prefix) !== true), ...ours];
}

/** Whether the bucket holds exactly the coffer's rules for `days` (as written by cofferLifecycleRules). */
export function hasCofferRules(rules: readonly LifecycleRule[], coffer: string, layout: UpstreamLayout, days: number): boolean {
  const found = findCofferRules(rules, coffer);
  const wanted = cofferLifecycleRules(coffer, layout, days);
  return (
    found.length === wanted.length &&
    wanted.every((want) => found.some((rule) => rule.id === want.id && rule.prefix === want.prefix && rule.enabled && rule.expirationDays === want.expirationDays && rule.abortIncompleteUploadDays === want.abortIncompleteUploadDays))
  );
}
