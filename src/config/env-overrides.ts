/**
 * Environment overrides, applied on top of the file (or the embedded preset) before validation.
 *
 * - `COFFER__<SEGMENT>__<SEGMENT>…=value` sets one configuration path. Segments match field names
 *   case-insensitively with `_`/`-` ignored (`REQUEST_IDLE_TIMEOUT_MS` → `requestIdleTimeoutMs`);
 *   a map key (a coffer name) is lower-cased with `_` read as `-` (`DEMO_1250000000` →
 *   `demo-1250000000`) unless it matches an existing key; array elements are addressed by index
 *   (`AUTH__ACCESS_KEYS__0__SECRET_KEY_FILE`, at most one past the end). The value is parsed as JSON
 *   when it parses (numbers, booleans, objects, arrays), else taken as a string; a field that only
 *   takes strings always gets the raw string. `null` removes the key (for every field). Paths are resolved against
 *   the schema, so an unknown path is an error; shorter paths apply first.
 * - Named variables: `PORT` → server.port, `COFFER_DEMO_SECRET_ID` → demo.secretId,
 *   `COFFER_DEMO_SECRET_KEY` → demo.secretKey. Empty values are ignored. If the same path is also set
 *   through `COFFER__…` with a different value, that is an error (ambiguous).
 * Other environment variables are ignored. Values are never echoed in problems (they may be secrets).
 */
import type { z } from 'zod';

export type ConfigPath = readonly (string | number)[];

export interface EnvOverrideResult {
  readonly problems: string[];
  /** Configuration path (joined by formatPathKey) → name of the variable that set it. */
  readonly origins: Map<string, string>;
}

export const ENV_PREFIX = 'COFFER__';

/** The named variables (besides `COFFER_CONFIG`, which names the file). */
export const NAMED_ENV_VARIABLES: Readonly<Record<string, ConfigPath>> = {
  PORT: ['server', 'port'],
  COFFER_DEMO_SECRET_ID: ['demo', 'secretId'],
  COFFER_DEMO_SECRET_KEY: ['demo', 'secretKey'],
};

export function pathKey(path: ConfigPath): string {
  return path.map(String).join('\u0000');
}

// ---------------------------------------------------------------------------------------------
// A small walker over zod 4 schema definitions (only the constructs the config schema uses).
// ---------------------------------------------------------------------------------------------

interface Def {
  readonly type: string;
  readonly innerType?: z.ZodType;
  readonly in?: z.ZodType;
  readonly out?: z.ZodType;
  readonly shape?: Record<string, z.ZodType>;
  readonly valueType?: z.ZodType;
  readonly element?: z.ZodType;
  readonly options?: readonly z.ZodType[];
  readonly values?: readonly unknown[];
  readonly entries?: Record<string, unknown>;
}

const defOf = (schema: z.ZodType): Def => (schema as unknown as { _zod: { def: Def } })._zod.def;

const WRAPPERS = new Set(['optional', 'nullable', 'default', 'prefault', 'readonly', 'catch', 'nonoptional']);

/** Strips wrappers and pipes (following the input side) down to the structural schema. */
export function unwrapSchema(schema: z.ZodType): z.ZodType {
  let current = schema;
  for (let i = 0; i < 64; i++) {
    const def = defOf(current);
    if (WRAPPERS.has(def.type) && def.innerType !== undefined) current = def.innerType;
    else if (def.type === 'pipe' && def.in !== undefined) current = def.in;
    else return current;
  }
  return current;
}

export type SchemaNode =
  | { readonly kind: 'object'; readonly shapes: readonly Record<string, z.ZodType>[] }
  | { readonly kind: 'record'; readonly value: z.ZodType }
  | { readonly kind: 'array'; readonly element: z.ZodType }
  | { readonly kind: 'leaf'; readonly stringOnly: boolean };

export function describeSchema(schema: z.ZodType): SchemaNode {
  const inner = unwrapSchema(schema);
  const def = defOf(inner);
  switch (def.type) {
    case 'object':
      return { kind: 'object', shapes: [def.shape ?? {}] };
    case 'record':
      return def.valueType === undefined ? { kind: 'leaf', stringOnly: false } : { kind: 'record', value: def.valueType };
    case 'array':
      return def.element === undefined ? { kind: 'leaf', stringOnly: false } : { kind: 'array', element: def.element };
    case 'union': {
      const nodes = (def.options ?? []).map(describeSchema);
      const shapes = nodes.flatMap((n) => (n.kind === 'object' ? n.shapes : []));
      if (shapes.length === nodes.length && shapes.length > 0) return { kind: 'object', shapes };
      return { kind: 'leaf', stringOnly: nodes.every((n) => n.kind === 'leaf' && n.stringOnly) };
    }
    case 'string':
      return { kind: 'leaf', stringOnly: true };
    case 'enum':
      return { kind: 'leaf', stringOnly: Object.values(def.entries ?? {}).every((v) => typeof v === 'string') };
    case 'literal':
      return { kind: 'leaf', stringOnly: (def.values ?? []).every((v) => typeof v === 'string') };
    default:
      return { kind: 'leaf', stringOnly: false };
  }
}

const normalize = (segment: string) => segment.toLowerCase().replace(/[_-]/g, '');

/** Field names of an object node (all options of a discriminated union). */
export function fieldNames(node: SchemaNode): string[] {
  return node.kind === 'object' ? [...new Set(node.shapes.flatMap((s) => Object.keys(s)))] : [];
}

function fieldSchema(node: SchemaNode & { kind: 'object' }, name: string): z.ZodType | undefined {
  for (const shape of node.shapes) {
    const found = shape[name];
    if (found !== undefined) return found;
  }
  return undefined;
}

/** The schema at an exact configuration path, or undefined. */
export function schemaAt(root: z.ZodType, path: ConfigPath): z.ZodType | undefined {
  let current: z.ZodType | undefined = root;
  for (const segment of path) {
    if (current === undefined) return undefined;
    const node = describeSchema(current);
    if (node.kind === 'object') current = fieldSchema(node, String(segment));
    else if (node.kind === 'record') current = node.value;
    else if (node.kind === 'array') current = node.element;
    else return undefined;
  }
  return current;
}

// ---------------------------------------------------------------------------------------------

const isPlainObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

function compareNatural(a: string, b: string): number {
  return a.localeCompare(b, 'en', { numeric: true });
}

interface Assignment {
  readonly variable: string;
  readonly path: ConfigPath;
  readonly value: unknown;
}

function parseValue(raw: string, stringOnly: boolean): unknown {
  if (raw.trim() === 'null') return null;
  if (stringOnly) return raw;
  try {
    return JSON.parse(raw) as unknown;
  } catch {
    return raw;
  }
}

/**
 * Resolves `COFFER__A__B…` segments to a configuration path against the schema and the current raw
 * configuration (for existing map keys). Returns a problem string instead when it cannot.
 */
function resolveSegments(schema: z.ZodType, raw: Record<string, unknown>, variable: string, segments: readonly string[]): { path: ConfigPath; stringOnly: boolean } | string {
  const path: (string | number)[] = [];
  let current: z.ZodType = schema;
  let value: unknown = raw;
  for (const segment of segments) {
    const where = path.length === 0 ? 'the configuration root' : path.join('.');
    if (segment === '') return `${variable}: empty path segment (use "__" only between names)`;
    const node = describeSchema(current);
    let next: z.ZodType | undefined;
    let key: string | number;
    if (node.kind === 'object') {
      const name = fieldNames(node).find((field) => normalize(field) === normalize(segment));
      if (name === undefined) return `${variable}: unknown setting "${segment.toLowerCase()}" in ${where}`;
      key = name;
      next = fieldSchema(node, name);
    } else if (node.kind === 'record') {
      const existing = isPlainObject(value) ? Object.keys(value).find((k) => normalize(k) === normalize(segment)) : undefined;
      key = existing ?? segment.toLowerCase().replace(/_/g, '-');
      next = node.value;
    } else if (node.kind === 'array') {
      if (!/^\d{1,6}$/.test(segment)) return `${variable}: ${where} is a list; expected an index, got "${segment.toLowerCase()}"`;
      key = Number(segment);
      next = node.element;
    } else {
      return `${variable}: ${where} is a single value and has no "${segment.toLowerCase()}"`;
    }
    path.push(key);
    current = next ?? current;
    value = isPlainObject(value) || Array.isArray(value) ? (value as Record<string | number, unknown>)[key] : undefined;
  }
  const leaf = describeSchema(current);
  return { path, stringOnly: leaf.kind === 'leaf' && leaf.stringOnly };
}

/** Writes `value` at `path` inside `raw`, creating containers; returns a problem when it cannot. */
function assign(raw: Record<string, unknown>, assignment: Assignment): string | undefined {
  const { path, value, variable } = assignment;
  let container: Record<string | number, unknown> = raw;
  for (let i = 0; i < path.length; i++) {
    const key = path[i] as string | number;
    const last = i === path.length - 1;
    if (Array.isArray(container) && typeof key === 'number' && key > container.length) {
      return `${variable}: index ${key} is beyond the end of ${path.slice(0, i).join('.')} (length ${container.length})`;
    }
    if (last) {
      if (value === null) {
        if (Array.isArray(container)) container.splice(key as number, 1);
        else delete container[key];
      } else {
        container[key] = value;
      }
      return undefined;
    }
    const nextKey = path[i + 1];
    let child = container[key];
    if (child === undefined || child === null) {
      child = typeof nextKey === 'number' ? [] : {};
      container[key] = child;
    } else if (typeof nextKey === 'number' ? !Array.isArray(child) : !isPlainObject(child)) {
      return `${variable}: cannot set ${path.join('.')} because ${path.slice(0, i + 1).join('.')} is not a ${typeof nextKey === 'number' ? 'list' : 'mapping'}`;
    }
    container = child as Record<string | number, unknown>;
  }
  return undefined;
}

/**
 * Applies the environment to `raw` (mutated in place). Problems name the variable, never its value.
 */
export function applyEnvOverrides(schema: z.ZodType, raw: Record<string, unknown>, env: NodeJS.ProcessEnv): EnvOverrideResult {
  const problems: string[] = [];
  const origins = new Map<string, string>();
  const setValues = new Map<string, { variable: string; raw: string }>();

  const generic = Object.keys(env)
    .filter((name) => name.startsWith(ENV_PREFIX) && env[name] !== undefined)
    .map((name) => ({ name, segments: name.slice(ENV_PREFIX.length).split('__') }))
    .sort((a, b) => a.segments.length - b.segments.length || compareNatural(a.name, b.name));

  for (const { name, segments } of generic) {
    const resolved = resolveSegments(schema, raw, name, segments);
    if (typeof resolved === 'string') {
      problems.push(resolved);
      continue;
    }
    const value = env[name] as string;
    const complaint = assign(raw, { variable: name, path: resolved.path, value: parseValue(value, resolved.stringOnly) });
    if (complaint !== undefined) problems.push(complaint);
    else {
      origins.set(pathKey(resolved.path), name);
      setValues.set(pathKey(resolved.path), { variable: name, raw: value });
    }
  }

  for (const [name, path] of Object.entries(NAMED_ENV_VARIABLES)) {
    const value = env[name];
    if (value === undefined || value === '') continue;
    const key = pathKey(path);
    const earlier = setValues.get(key);
    if (earlier !== undefined && earlier.raw.trim() !== value.trim()) {
      problems.push(`${name} and ${earlier.variable} both set ${path.join('.')} to different values; set only one`);
      continue;
    }
    const stringOnly = name !== 'PORT';
    // PORT must be a decimal port; anything else is left as a string for the schema to reject.
    const parsed = stringOnly ? value : /^\s*\d{1,5}\s*$/.test(value) ? Number(value) : value;
    const complaint = assign(raw, { variable: name, path, value: parsed });
    if (complaint !== undefined) problems.push(complaint);
    else origins.set(key, name);
  }
  return { problems, origins };
}
