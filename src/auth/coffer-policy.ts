/**
 * The CDCS access policy language (version 2.0; shared reference cdcs-api.md, "Policy language"),
 * parsed, validated and evaluated (pure).
 *
 * A policy is a list of statements: principal (`{"qcs": ["qcs::cam::uin/<owner>:uin/<uin>", …]}`),
 * effect (`allow` | `deny`), action (`name/cdcs:<API>`, with `*` as a wildcard: `name/cdcs:*`,
 * `name/cdcs:Get*`, `*`), resource (`qcs:<project>:cdcs:<region>:uid/<APPID>:<coffer>/<path>`, `*` a
 * wildcard in the path: `…:<coffer>/*`, `…:<coffer>/logs/*`) and an optional condition (`ip_equal`,
 * `ip_not_equal` on `qcs:ip`; `date_*` on `qcs:current_time`). Element names are accepted capitalised
 * (the Put/GetCofferPolicy pages) and lower-case (the language page).
 *
 * Everything the gateway would not act on is refused (MalformedPolicy), never ignored: an unknown
 * element, action, condition operator or key, a resource of another coffer, an empty list.
 * Evaluation is CAM's: a matching deny wins over everything, then a matching allow; nothing
 * matching is "no opinion" (the configured grants decide).
 */
import { BlockList, isIP } from 'node:net';
import { GatewayError } from '../errors/gateway-error';

/** The CDCS API names a policy may name (`name/cdcs:<API>`); HEAD Object is `CheckObject`. */
export const POLICY_API_NAMES = [
  'GetService',
  'GetCoffer',
  'PutCoffer',
  'DeleteCoffer',
  'GetObject',
  'CheckObject',
  'PutObject',
  'InitiateMultipartUpload',
  'UploadPart',
  'ListParts',
  'CompleteMultipartUpload',
  'AbortMultipartUpload',
  'ListMultipartUploads',
  'PutCofferLifecycle',
  'GetCofferLifecycle',
  'PutCofferPolicy',
  'GetCofferPolicy',
  'DeleteCofferPolicy',
] as const;

export type PolicyApiName = (typeof POLICY_API_NAMES)[number];

/** The largest policy accepted (S3 and COS bucket policies: 20 KB). */
export const MAX_POLICY_BYTES = 20 * 1024;
const MAX_STATEMENTS = 100;
const MAX_LIST = 100;

const DATE_OPERATORS = ['date_not_equal', 'date_greater_than', 'date_greater_than_equal', 'date_less_than', 'date_less_than_equal'] as const;
type DateOperator = (typeof DATE_OPERATORS)[number];

export type PolicyCondition = { readonly operator: 'ip_equal' | 'ip_not_equal'; readonly ranges: BlockList } | { readonly operator: DateOperator; readonly times: readonly number[] };

export interface PolicyStatement {
  readonly principals: readonly string[];
  readonly effect: 'allow' | 'deny';
  /** Action patterns, `name/cdcs:` stripped (`*` wildcards). */
  readonly actions: readonly string[];
  /** Path patterns inside the coffer (after `<coffer>/`; `*` wildcards). */
  readonly resources: readonly string[];
  readonly conditions: readonly PolicyCondition[];
}

export interface CofferPolicy {
  readonly statements: readonly PolicyStatement[];
  /** The policy as given (GetCofferPolicy answers it). */
  readonly text: string;
}

export interface PolicyRequest {
  /** Every principal the caller is (from configuration: access key or JWT rules → qcs principals). */
  readonly principals: readonly string[];
  readonly action: PolicyApiName;
  /** The object key, or undefined for a coffer operation (matched as the empty path). */
  readonly key: string | undefined;
  /** The client's address (`qcs:ip`). */
  readonly sourceIp?: string;
  readonly now: Date;
}

export type PolicyDecision = 'allow' | 'deny' | 'none';

const malformed = (message: string): GatewayError => new GatewayError('MalformedPolicy', message);

export const PRINCIPAL = /^qcs::cam::(?:uin\/[0-9]{1,20}:(?:uin|roleName|groupId)\/[A-Za-z0-9_.@+=,-]{1,128}|anonymous(?::anonymous)?)$/;

function record(value: unknown): Record<string, unknown> | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
}

/** `Statement` or `statement`, never both. */
function field(value: Record<string, unknown>, name: string, where: string): unknown {
  const lower = name.toLowerCase();
  if (Object.hasOwn(value, name) && Object.hasOwn(value, lower) && name !== lower) throw malformed(`${where} has both "${name}" and "${lower}".`);
  return Object.hasOwn(value, name) ? value[name] : value[lower];
}

function onlyFields(value: Record<string, unknown>, allowed: readonly string[], where: string): void {
  const names = new Set(allowed.flatMap((name) => [name, name.toLowerCase()]));
  const extra = Object.keys(value).find((name) => !names.has(name));
  if (extra !== undefined) throw malformed(`${where} has an element the gateway does not support: ${JSON.stringify(extra.slice(0, 64))}.`);
}

/** A string or a non-empty list of strings. */
function strings(value: unknown, where: string): string[] {
  const list = typeof value === 'string' ? [value] : value;
  if (!Array.isArray(list) || list.length === 0 || list.length > MAX_LIST || !list.every((item) => typeof item === 'string' && item.length > 0 && item.length <= 1024)) {
    throw malformed(`${where} must be a non-empty string or list of at most ${MAX_LIST} non-empty strings.`);
  }
  return list as string[];
}

/** `*` matches any run of characters (none included); nothing else is special. */
export function wildcardMatches(pattern: string, value: string): boolean {
  const pieces = pattern.split('*');
  if (pieces.length === 1) return pattern === value;
  const first = pieces[0] as string;
  const last = pieces[pieces.length - 1] as string;
  if (!value.startsWith(first) || value.length < first.length + last.length || !value.endsWith(last)) return false;
  let at = first.length;
  const end = value.length - last.length;
  for (const middle of pieces.slice(1, -1)) {
    const found = value.indexOf(middle, at);
    if (found === -1 || found + middle.length > end) return false;
    at = found + middle.length;
  }
  return true;
}

function parseAction(raw: string, where: string): string {
  if (raw === '*') return '*';
  const match = /^name\/cdcs:(.+)$/.exec(raw);
  if (match === null) throw malformed(`${where}: ${JSON.stringify(raw.slice(0, 64))} is not "name/cdcs:<API>" (function sets "permid/…" are not supported).`);
  const pattern = match[1] as string;
  if (!POLICY_API_NAMES.some((name) => wildcardMatches(pattern, name))) throw malformed(`${where}: ${JSON.stringify(raw.slice(0, 64))} names no CDCS API.`);
  return pattern;
}

function parseResource(raw: string, coffer: string, where: string): string {
  if (raw === '*') return '*';
  const appId = /-([0-9]+)$/.exec(coffer)?.[1];
  const match = /^qcs:[^:]*:cdcs:[a-z0-9-]*:uid\/([0-9]+):([^/]+)\/(.*)$/.exec(raw);
  if (match === null) throw malformed(`${where}: ${JSON.stringify(raw.slice(0, 64))} is not "qcs::cdcs:<region>:uid/<APPID>:<coffer>/<path>".`);
  if (match[1] !== appId || match[2] !== coffer) throw malformed(`${where}: ${JSON.stringify(raw.slice(0, 64))} names another coffer; a coffer's policy governs that coffer only.`);
  return match[3] as string;
}

function parseCondition(value: unknown, where: string): PolicyCondition[] {
  const operators = record(value);
  if (operators === undefined || Object.keys(operators).length === 0) throw malformed(`${where} must be an object of operators.`);
  return Object.entries(operators).map(([rawOperator, keys]): PolicyCondition => {
    const operator = rawOperator.trim();
    const entries = Object.entries(record(keys) ?? {}).map(([key, v]) => [key.trim(), v] as const);
    if (entries.length !== 1) throw malformed(`${where}.${operator} must name exactly one condition key.`);
    const [key, raw] = entries[0] as readonly [string, unknown];
    const values = strings(raw, `${where}.${operator}.${key}`);
    if (operator === 'ip_equal' || operator === 'ip_not_equal') {
      if (key !== 'qcs:ip') throw malformed(`${where}.${operator}: the key must be qcs:ip.`);
      const ranges = new BlockList();
      for (const item of values) {
        const [address, bits] = item.split('/') as [string, string?];
        const family = isIP(address);
        const prefix = bits === undefined ? (family === 6 ? 128 : 32) : /^[0-9]{1,3}$/.test(bits) ? Number(bits) : -1;
        if (family === 0 || prefix < 0 || prefix > (family === 6 ? 128 : 32)) throw malformed(`${where}.${operator}: ${JSON.stringify(item.slice(0, 64))} is not an IP address or CIDR range.`);
        ranges.addSubnet(address, prefix, family === 6 ? 'ipv6' : 'ipv4');
      }
      return { operator, ranges };
    }
    if ((DATE_OPERATORS as readonly string[]).includes(operator)) {
      if (key !== 'qcs:current_time') throw malformed(`${where}.${operator}: the key must be qcs:current_time.`);
      const times = values.map((item) => {
        const time = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?Z$/.test(item) ? Date.parse(item) : Number.NaN;
        if (!Number.isFinite(time)) throw malformed(`${where}.${operator}: ${JSON.stringify(item.slice(0, 64))} is not an ISO-8601 UTC time.`);
        return time;
      });
      return { operator: operator as DateOperator, times };
    }
    throw malformed(`${where}: the condition operator ${JSON.stringify(operator.slice(0, 64))} is not supported.`);
  });
}

/** Parses and validates a policy for `coffer` (`<name>-<APPID>`). */
export function parseCofferPolicy(body: Buffer, coffer: string): CofferPolicy {
  if (body.length > MAX_POLICY_BYTES) throw new GatewayError('EntityTooLarge', `A coffer policy may hold at most ${MAX_POLICY_BYTES} bytes.`);
  let value: unknown;
  const text = body.toString('utf8');
  try {
    value = JSON.parse(text);
  } catch {
    throw malformed('The policy is not valid JSON.');
  }
  const top = record(value);
  if (top === undefined) throw malformed('The policy must be a JSON object.');
  onlyFields(top, ['Statement', 'Version'], 'The policy');
  if (field(top, 'Version', 'The policy') !== '2.0') throw malformed('The policy version must be "2.0".');
  const rawStatements = field(top, 'Statement', 'The policy');
  if (!Array.isArray(rawStatements) || rawStatements.length === 0 || rawStatements.length > MAX_STATEMENTS) throw malformed(`The policy must have 1 to ${MAX_STATEMENTS} statements.`);
  const statements = rawStatements.map((raw: unknown, index): PolicyStatement => {
    const where = `Statement[${index}]`;
    const statement = record(raw);
    if (statement === undefined) throw malformed(`${where} must be an object.`);
    onlyFields(statement, ['Principal', 'Effect', 'Action', 'Resource', 'Condition'], where);
    const principal = record(field(statement, 'Principal', where));
    if (principal === undefined || Object.keys(principal).length !== 1 || !Object.hasOwn(principal, 'qcs')) throw malformed(`${where}.Principal must be {"qcs": [...]}.`);
    const principals = strings(principal['qcs'], `${where}.Principal.qcs`);
    for (const p of principals) if (p !== '*' && !PRINCIPAL.test(p)) throw malformed(`${where}.Principal: ${JSON.stringify(p.slice(0, 64))} is not a qcs::cam:: principal.`);
    const effect = field(statement, 'Effect', where);
    if (effect !== 'allow' && effect !== 'deny') throw malformed(`${where}.Effect must be "allow" or "deny".`);
    const actions = strings(field(statement, 'Action', where), `${where}.Action`).map((a) => parseAction(a, `${where}.Action`));
    const resources = strings(field(statement, 'Resource', where), `${where}.Resource`).map((r) => parseResource(r, coffer, `${where}.Resource`));
    const condition = field(statement, 'Condition', where);
    return { principals, effect, actions, resources, conditions: condition === undefined ? [] : parseCondition(condition, `${where}.Condition`) };
  });
  return { statements, text };
}

/**
 * Whether a condition holds. Without a known client address an IP condition cannot be judged; it is
 * taken the way that refuses: an allow does not apply, a deny does (fail closed both ways).
 */
function conditionHolds(condition: PolicyCondition, request: PolicyRequest, effect: 'allow' | 'deny'): boolean {
  switch (condition.operator) {
    case 'ip_equal':
    case 'ip_not_equal': {
      if (request.sourceIp === undefined || isIP(request.sourceIp) === 0) return effect === 'deny';
      const address = request.sourceIp.startsWith('::ffff:') && isIP(request.sourceIp.slice(7)) === 4 ? request.sourceIp.slice(7) : request.sourceIp;
      const inside = condition.ranges.check(address, isIP(address) === 6 ? 'ipv6' : 'ipv4');
      return condition.operator === 'ip_equal' ? inside : !inside;
    }
    case 'date_not_equal':
      return condition.times.every((t) => request.now.getTime() !== t);
    case 'date_greater_than':
      return condition.times.some((t) => request.now.getTime() > t);
    case 'date_greater_than_equal':
      return condition.times.some((t) => request.now.getTime() >= t);
    case 'date_less_than':
      return condition.times.some((t) => request.now.getTime() < t);
    case 'date_less_than_equal':
      return condition.times.some((t) => request.now.getTime() <= t);
  }
}

function statementMatches(statement: PolicyStatement, request: PolicyRequest): boolean {
  return (
    statement.principals.some((p) => p === '*' || request.principals.includes(p)) &&
    statement.actions.some((pattern) => wildcardMatches(pattern, request.action)) &&
    statement.resources.some((pattern) => wildcardMatches(pattern, request.key ?? '')) &&
    statement.conditions.every((condition) => conditionHolds(condition, request, statement.effect))
  );
}

/**
 * Operations of either dialect named by the CDCS API a policy speaks of. The S3 dialect acts on the
 * same coffers, so a policy must govern it too: a deny written for GetCoffer also stops an S3 listing.
 * Deleting (S3 DeleteObject/DeleteObjects, in coffers that allow it) is governed as PutObject — both
 * replace what a key holds; CDCS has no delete API of its own.
 */
const POLICY_ALIASES: Readonly<Record<string, PolicyApiName>> = {
  HeadObject: 'CheckObject',
  ListObjects: 'GetCoffer',
  ListObjectsV2: 'GetCoffer',
  HeadBucket: 'GetCoffer',
  GetBucketLocation: 'GetCoffer',
  ListBuckets: 'GetService',
  CreateBucket: 'PutCoffer',
  DeleteBucket: 'DeleteCoffer',
  CreateMultipartUpload: 'InitiateMultipartUpload',
  DeleteObject: 'PutObject',
  DeleteObjects: 'PutObject',
  GetObjectTagging: 'GetObject',
};

/** The CDCS API name a policy uses for a gateway operation of either dialect (HEAD Object is CheckObject); undefined: policies do not govern it. */
export function policyActionOf(operationName: string): PolicyApiName | undefined {
  const name = POLICY_ALIASES[operationName] ?? operationName;
  return (POLICY_API_NAMES as readonly string[]).includes(name) ? (name as PolicyApiName) : undefined;
}

/** Configuration: which qcs principal an access key (by SecretId) or a JWT (by `sub`) is, for policies. */
export interface PolicyPrincipalMapping {
  readonly accessKey?: string;
  readonly jwtSubject?: string;
  readonly principal: string;
}

/** The qcs principals an authenticated caller is (none when configuration maps it to none). */
export function policyPrincipalsOf(caller: { readonly method: 'cos-signature' | 'sigv4' | 'jwt'; readonly id: string }, mappings: readonly PolicyPrincipalMapping[]): string[] {
  // COS and SigV4 signatures are made with the same access keys: both map by SecretId.
  return mappings.filter((m) => (caller.method === 'jwt' ? m.jwtSubject === caller.id : m.accessKey === caller.id)).map((m) => m.principal);
}

/** Whether some allow statement names one of `principals` (or `*`): GetService lists such a coffer as one the caller may use. */
export function policyMayAllow(policy: CofferPolicy | undefined, principals: readonly string[]): boolean {
  return policy?.statements.some((s) => s.effect === 'allow' && s.principals.some((p) => p === '*' || principals.includes(p))) === true;
}

/** CAM evaluation: an explicit deny wins; then an allow; otherwise no opinion. */
export function evaluatePolicy(policy: CofferPolicy | undefined, request: PolicyRequest): PolicyDecision {
  if (policy === undefined) return 'none';
  const matching = policy.statements.filter((statement) => statementMatches(statement, request));
  if (matching.some((statement) => statement.effect === 'deny')) return 'deny';
  return matching.length > 0 ? 'allow' : 'none';
}
