/**
 * Loads the gateway configuration: file (YAML or JSON) or the embedded preset → environment
 * overrides → one validation pass over the whole tree (secret files are read during it) → deep freeze.
 * Every problem is collected and thrown at once as a ConfigError; none quotes a configured value.
 */
import { readFileSync } from 'node:fs';
import { LineCounter, parseDocument } from 'yaml';
import type { z } from 'zod';
import { ConfigError } from './config-error';
import { applyEnvOverrides, describeSchema, fieldNames, pathKey, schemaAt, type ConfigPath } from './env-overrides';
import { createConfigSchema, REDACTED, SECRET_FIELD_NAMES, UNSUPPORTED_FIELDS, type GatewayConfig } from './schema';

export interface LoadConfigOptions {
  /** Configuration file (YAML or JSON). Default: env `COFFER_CONFIG`; none → the embedded preset. */
  readonly file?: string;
  /** Environment to read overrides from. Default: `process.env`. */
  readonly env?: NodeJS.ProcessEnv;
  /** Reads the configuration file and every `...File` field. Default: `fs.readFileSync(path, 'utf8')`. */
  readonly readFile?: (path: string) => string;
}

/**
 * Used when no configuration file is given (`npm start`): the embedded upstream and the demo coffer
 * (local keyring, built-in or `COFFER_DEMO_*` credentials) on 127.0.0.1, and CONNECT interception with
 * a local CA created next to the keyring (./data/egress-ca).
 */
export const EMBEDDED_PRESET: Readonly<Record<string, unknown>> = Object.freeze({
  // The official SDK 3.0.0 signs `/<Key>` without the coffer; the demo key is bound to the demo coffer by its grant.
  auth: Object.freeze({ cos: Object.freeze({ acceptKeyOnlyPath: true }) }),
  embeddedUpstream: Object.freeze({ enabled: true }),
  demo: Object.freeze({ enabled: true }),
  // The gateway as the SDK's https Proxy works out of the box: a local CA is created on first start.
  egress: Object.freeze({ enabled: true }),
});

const defaultReadFile = (path: string): string => readFileSync(path, 'utf8');

function errorCode(error: unknown): string {
  const code = typeof error === 'object' && error !== null ? (error as { code?: unknown }).code : undefined;
  return typeof code === 'string' && /^[A-Z0-9_]{1,40}$/.test(code) ? code : 'read error';
}

/** Reads and parses the file; problems quote neither file content nor parser messages (which can). */
function readConfigFile(file: string, readFile: (path: string) => string, problems: string[]): Record<string, unknown> | undefined {
  const where = `config file ${JSON.stringify(file)}`;
  let text: string;
  try {
    text = readFile(file);
  } catch (error) {
    problems.push(`${where}: cannot read (${errorCode(error)})`);
    return undefined;
  }
  const lineCounter = new LineCounter();
  const document = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  if (document.errors.length > 0) {
    for (const error of document.errors) {
      const { line, col } = lineCounter.linePos(error.pos[0]);
      problems.push(`${where}: YAML/JSON syntax error ${error.code} at line ${line}, column ${col}`);
    }
    return undefined;
  }
  let value: unknown;
  try {
    value = document.toJS({ maxAliasCount: 100 });
  } catch {
    problems.push(`${where}: cannot be converted to plain data (alias or tag problem)`);
    return undefined;
  }
  if (value === null || value === undefined) return {};
  if (typeof value !== 'object' || Array.isArray(value)) {
    problems.push(`${where}: the top level must be a mapping of settings`);
    return undefined;
  }
  return value as Record<string, unknown>;
}

/** `coffers.demo-1250000000.upstream.bucket`, `auth.accessKeys[0].secretKey`, `…claims["a/b"]`. */
export function formatPath(path: readonly PropertyKey[]): string {
  if (path.length === 0) return '(root)';
  let out = '';
  for (const segment of path) {
    if (typeof segment === 'number') out += `[${segment}]`;
    else if (/^[A-Za-z0-9_-]+$/.test(String(segment))) out += out === '' ? String(segment) : `.${String(segment)}`;
    else out += `[${JSON.stringify(String(segment))}]`;
  }
  return out;
}

function typeName(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'list';
  if (typeof value === 'object') return 'mapping';
  return typeof value;
}

const EXPECTED_NAMES: Record<string, string> = { object: 'a mapping', array: 'a list', record: 'a mapping', int: 'an integer' };

/**
 * Default messages for issues whose schema gave none. Built from the issue kind and bounds only:
 * zod issues carry the rejected input, which must never reach a message.
 */
function defaultMessage(issue: z.core.$ZodRawIssue): string | undefined {
  switch (issue.code) {
    case 'invalid_type':
      if (issue.input === undefined) return 'required';
      return `expected ${EXPECTED_NAMES[issue.expected] ?? issue.expected}, got ${typeName(issue.input)}`;
    case 'too_small':
      if (issue.origin === 'array') return `must have at least ${String(issue.minimum)} item(s)`;
      if (issue.origin === 'string') return `must be at least ${String(issue.minimum)} character(s)`;
      return `must be at least ${String(issue.minimum)}`;
    case 'too_big':
      if (issue.origin === 'array') return `must have at most ${String(issue.maximum)} item(s)`;
      if (issue.origin === 'string') return `must be at most ${String(issue.maximum)} character(s)`;
      return `must be at most ${String(issue.maximum)}`;
    case 'invalid_value':
      return `must be ${issue.values.map((v) => JSON.stringify(v)).join(' or ')}`;
    case 'invalid_union':
      return 'matches none of the allowed forms';
    case 'invalid_key':
      return 'is not a valid name';
    case 'invalid_format':
      return `is not a valid ${issue.format}`;
    default:
      return 'is not valid';
  }
}

/** Levenshtein distance, for "did you mean" hints on unknown keys. */
function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let previous = row[0] as number;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const current = row[j] as number;
      row[j] = Math.min(current + 1, (row[j - 1] as number) + 1, previous + (a[i - 1] === b[j - 1] ? 0 : 1));
      previous = current;
    }
  }
  return row[b.length] as number;
}

function suggestion(schema: z.ZodType, objectPath: readonly PropertyKey[], key: string): string {
  const at = schemaAt(
    schema,
    objectPath.filter((s): s is string | number => typeof s !== 'symbol'),
  );
  if (at === undefined) return '';
  const names = fieldNames(describeSchema(at));
  // Valid in another variant of a discriminated union (e.g. roleArn with type static).
  if (names.includes(key)) return ' (not valid for this type)';
  const lower = key.toLowerCase();
  const score = (name: string): number => {
    const candidate = name.toLowerCase();
    if (candidate === lower) return 0;
    if (lower.length >= 4 && (candidate.startsWith(lower) || lower.startsWith(candidate))) return 1;
    return distance(candidate, lower);
  };
  const best = names
    .map((name) => ({ name, d: score(name) }))
    .filter((c) => c.d <= Math.max(2, Math.floor(key.length / 4)))
    .sort((a, b) => a.d - b.d)[0];
  return best === undefined ? '' : ` (did you mean "${best.name}"?)`;
}

function originNote(origins: Map<string, string>, path: readonly PropertyKey[]): string {
  for (let n = path.length; n > 0; n--) {
    const origin = origins.get(pathKey(path.slice(0, n).map((s) => (typeof s === 'number' ? s : String(s)))));
    if (origin !== undefined) return ` (from ${origin})`;
  }
  return '';
}

function formatIssues(issues: readonly z.core.$ZodIssue[], schema: z.ZodType, origins: Map<string, string>): string[] {
  const out: string[] = [];
  for (const issue of issues) {
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) {
        const path = [...issue.path, key];
        // A field that is refused on purpose gets its reason, not a bare "unknown key".
        const unsupported = UNSUPPORTED_FIELDS.get(path.filter((s) => typeof s === 'string').join('.'));
        out.push(`${formatPath(path)}: ${unsupported ?? `unknown key${suggestion(schema, issue.path, key)}`}${originNote(origins, path)}`);
      }
    } else if (issue.code === 'invalid_key') {
      const inner = issue.issues[0]?.message ?? 'is not a valid name';
      out.push(`${formatPath(issue.path)}: invalid name, ${inner}${originNote(origins, issue.path)}`);
    } else {
      out.push(`${formatPath(issue.path)}: ${issue.message}${originNote(origins, issue.path)}`);
    }
  }
  return out;
}

/**
 * Loads, validates and deep-freezes the configuration. Throws ConfigError listing every problem.
 */
export function loadConfig(options: LoadConfigOptions = {}): GatewayConfig {
  const env = options.env ?? process.env;
  const readFile = options.readFile ?? defaultReadFile;
  const file = options.file !== undefined && options.file !== '' ? options.file : env['COFFER_CONFIG'] || undefined;
  const problems: string[] = [];

  const fromFile = file === undefined ? (structuredClone(EMBEDDED_PRESET) as Record<string, unknown>) : readConfigFile(file, readFile, problems);
  const raw = fromFile ?? {};
  const schema = createConfigSchema({ readFile });
  const overrides = applyEnvOverrides(schema, raw, env);
  problems.push(...overrides.problems);

  // A file that cannot be read or parsed would only add noise ("required" everywhere); stop here.
  if (fromFile === undefined) throw new ConfigError(problems, file);

  const result = schema.safeParse(raw, { error: defaultMessage });
  if (!result.success) problems.push(...formatIssues(result.error.issues, schema, overrides.origins));
  if (problems.length > 0 || !result.success) throw new ConfigError([...new Set(problems)], file);
  return deepFreeze(result.data) as GatewayConfig;
}

/**
 * Validates a configuration given as an object (what a configuration file holds; for
 * `createCofferGateway`): the same schema and problem messages as `loadConfig`, secret files read
 * through `readFile`, no environment overrides. Returns it deep-frozen; throws ConfigError.
 */
export function parseConfig(raw: unknown, options: { readonly readFile?: (path: string) => string } = {}): GatewayConfig {
  const schema = createConfigSchema({ readFile: options.readFile ?? defaultReadFile });
  const result = schema.safeParse(raw, { error: defaultMessage });
  if (!result.success) throw new ConfigError([...new Set(formatIssues(result.error.issues, schema, new Map()))]);
  return deepFreeze(result.data) as GatewayConfig;
}

/** Freezes an object graph in place and returns it. */
export function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}

function redact(value: unknown, key: string | undefined): unknown {
  if (key !== undefined && SECRET_FIELD_NAMES.has(key) && value !== undefined && value !== null) return REDACTED;
  if (Array.isArray(value)) return value.map((item) => redact(item, undefined));
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, redact(v, k)]));
  }
  return value;
}

/**
 * A deep-frozen copy that is safe to log: SecretKeys, secret access keys, the JWT HMAC secret and
 * the TLS private key become "[redacted]". File paths stay (they are not secret).
 */
export function redactConfig(config: GatewayConfig): GatewayConfig {
  return deepFreeze(redact(config, undefined)) as GatewayConfig;
}

export type { ConfigPath };
