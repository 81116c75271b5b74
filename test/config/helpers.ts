import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { ConfigError, loadConfig, type GatewayConfig } from '../../src/config';

export const CONFIG_PATH = '/etc/coffer-gateway/config.yaml';
export const INLINE_SECRET = 'inline-Secret-Value-0123456789abcdef';
export const FIXTURES = join(__dirname, 'fixtures');
export const fixture = (name: string): string => readFileSync(join(FIXTURES, name), 'utf8');

/** A readFile double over an in-memory map; unknown paths fail like fs does (ENOENT). */
export function fakeFs(files: Record<string, string>): (path: string) => string {
  return (path: string) => {
    const content = files[path];
    if (content === undefined) {
      throw Object.assign(new Error(`ENOENT: no such file or directory, open '${path}'`), { code: 'ENOENT' });
    }
    return content;
  };
}

/** Smallest valid file configuration: one coffer, one access key. */
export function baseConfig(): Record<string, any> {
  return {
    coffers: {
      'demo-1250000000': {
        upstream: { endpoint: 'http://127.0.0.1:9000', bucket: 'coffer-demo' },
        kms: { type: 'local', keyId: 'demo' },
      },
    },
    auth: {
      accessKeys: [{ secretId: 'AKIDtest', secretKey: INLINE_SECRET, grants: [{ coffer: 'demo-1250000000', actions: ['*'] }] }],
    },
  };
}

export interface LoadOptions {
  readonly env?: NodeJS.ProcessEnv;
  readonly files?: Record<string, string>;
  /** Raw file text instead of the YAML rendering of `config`. */
  readonly text?: string;
}

/** Loads `config` as the YAML file CONFIG_PATH. */
export function load(config: unknown, options: LoadOptions = {}): GatewayConfig {
  const text = options.text ?? stringify(config);
  return loadConfig({ file: CONFIG_PATH, env: options.env ?? {}, readFile: fakeFs({ ...options.files, [CONFIG_PATH]: text }) });
}

/** The problems of a load that must fail. */
export function problemsOf(run: () => unknown): readonly string[] {
  try {
    run();
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  throw new Error('expected a ConfigError, but the configuration loaded');
}
