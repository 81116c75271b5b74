/**
 * Maps verified JWT claims to grants. Matching is exact string equality only (no patterns, no
 * prefixes), every condition of a rule must hold, and the grants of all matching rules are combined.
 */
import type { JWTPayload } from 'jose';
import { type Grant, validateGrants } from './principal';

export interface JwtGrantRule {
  /** Exact `sub`, e.g. `system:serviceaccount:<namespace>:<name>`. */
  readonly subject?: string;
  /**
   * Claim path → exact string value. A path is a top-level claim name or a dotted path into nested
   * objects; claim names may themselves contain dots (Kubernetes' `kubernetes.io`), so
   * `kubernetes.io.namespace` resolves to `payload["kubernetes.io"]["namespace"]`.
   */
  readonly claims?: Readonly<Record<string, string>>;
  readonly grants: readonly Grant[];
}

/** The `sub` of a Kubernetes service-account token. */
export function serviceAccountSubject(namespace: string, name: string): string {
  return `system:serviceaccount:${namespace}:${name}`;
}

/**
 * Validates rules at start-up. A rule with no condition at all would grant to every token the issuer
 * ever signs (for the Kubernetes API server: every pod in the cluster), so it is refused.
 */
export function compileGrantRules(rules: readonly JwtGrantRule[]): readonly JwtGrantRule[] {
  return Object.freeze(
    rules.map((rule, index) => {
      const where = `jwt.rules[${index}]`;
      const claims = rule.claims ?? {};
      if (rule.subject === undefined && Object.keys(claims).length === 0) {
        throw new Error(`${where} needs a subject or at least one claim condition`);
      }
      if (rule.subject !== undefined && (typeof rule.subject !== 'string' || rule.subject === '')) {
        throw new Error(`${where}.subject must be a non-empty string`);
      }
      for (const [path, value] of Object.entries(claims)) {
        if (path === '' || typeof value !== 'string') throw new Error(`${where}.claims must map claim paths to strings`);
      }
      const compiled: JwtGrantRule = { claims: Object.freeze({ ...claims }), grants: validateGrants(rule.grants, where) };
      return Object.freeze(rule.subject === undefined ? compiled : { ...compiled, subject: rule.subject });
    }),
  );
}

/** Union of the grants of every rule the payload satisfies (empty when none does). */
export function grantsForClaims(payload: JWTPayload, rules: readonly JwtGrantRule[]): Grant[] {
  const grants: Grant[] = [];
  for (const rule of rules) {
    if (rule.subject !== undefined && payload.sub !== rule.subject) continue;
    const claims = rule.claims ?? {};
    if (Object.entries(claims).every(([path, expected]) => claimMatches(payload, path, expected))) grants.push(...rule.grants);
  }
  return grants;
}

/**
 * True when the path resolves to at least one value and every value it resolves to is the expected
 * string. Requiring all readings to agree means a token carrying both `{"a.b": "x"}` and
 * `{"a": {"b": "y"}}` matches neither `x` nor `y`.
 */
export function claimMatches(payload: unknown, path: string, expected: string): boolean {
  const values = resolveClaim(payload, path);
  return values.length > 0 && values.every((value) => value === expected);
}

function resolveClaim(node: unknown, path: string): unknown[] {
  if (typeof node !== 'object' || node === null || Array.isArray(node)) return [];
  const found: unknown[] = [];
  // Own properties only: a claim path such as `__proto__.x` or `constructor` must not reach the prototype.
  if (Object.prototype.hasOwnProperty.call(node, path)) found.push((node as Record<string, unknown>)[path]);
  for (let dot = path.indexOf('.'); dot !== -1; dot = path.indexOf('.', dot + 1)) {
    const head = path.slice(0, dot);
    if (Object.prototype.hasOwnProperty.call(node, head)) {
      found.push(...resolveClaim((node as Record<string, unknown>)[head], path.slice(dot + 1)));
    }
  }
  return found;
}
