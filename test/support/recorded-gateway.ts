/**
 * A real gateway whose coffers live on one embedded upstream behind a recording proxy
 * (s3-test-proxy.ts), so a test can count every upstream request a client request caused — e.g. to
 * prove that a refused request touched nothing. Coffers use the local keyring; nothing leaves loopback.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../src/config';
import { EmbeddedUpstream } from '../../src/embedded-upstream';
import { createLogger } from '../../src/observability/logger';
import { startGateway, type RunningGateway } from '../../src/app/serve';
import { startS3TestProxy, type S3TestProxy } from './s3-test-proxy';

export interface RecordedGatewayOptions {
  /** Coffer names; each gets its own key prefix in the one upstream bucket. */
  readonly coffers: readonly string[];
  readonly accessKeys: ReadonlyArray<{ readonly secretId: string; readonly secretKey: string; readonly grants: ReadonlyArray<{ readonly coffer: string; readonly actions: readonly string[] }> }>;
  readonly acceptKeyOnlyPath?: boolean;
  /** `auth.jwt` of the configuration (bearer tokens), when a test needs it. */
  readonly jwt?: Record<string, unknown>;
  /** `cofferClasses`: name → pattern and creators; each class's coffers live on the same recorded upstream under `class-<name>/`. */
  readonly cofferClasses?: Readonly<Record<string, { readonly pattern: string; readonly creators?: readonly string[] }>>;
  /** Further top-level sections of the configuration (e.g. `s3`, `policies`). */
  readonly config?: Record<string, unknown>;
}

export interface RecordedGateway {
  readonly gateway: RunningGateway;
  readonly port: number;
  /** Every upstream request, in order (see S3TestProxy). */
  readonly proxy: S3TestProxy;
  stop(): Promise<void>;
}

/** The upstream's own keys (a test that damages stored data writes to the upstream directly with them). */
export const UPSTREAM_KEYS = { accessKeyId: 'AKIDRECORDEDUPSTREAM', secretAccessKey: 'recorded-upstream-secret-0123456789' };
const MiB = 1024 * 1024;

/** A coffer (or a class's coffers) on the recorded upstream, under its own prefix. */
function recordedCoffer(endpoint: string, prefix: string): Record<string, unknown> {
  return { upstream: { endpoint, bucket: 'recorded', prefix, credentials: UPSTREAM_KEYS, minPartSize: MiB }, role: { type: 'static' }, kms: { type: 'local', keyId: 'recorded' } };
}

export async function startRecordedGateway(options: RecordedGatewayOptions): Promise<RecordedGateway> {
  const directory = mkdtempSync(join(tmpdir(), 'coffer-recorded-'));
  const embedded = await EmbeddedUpstream.start({ directory: join(directory, 'upstream'), bucket: 'recorded', ...UPSTREAM_KEYS, minPartSize: MiB });
  const proxy = await startS3TestProxy({ target: embedded.endpoint, region: 'us-east-1' });
  const file = join(directory, 'config.json');
  writeFileSync(
    file,
    JSON.stringify({
      server: { port: 0, adminPort: 0 },
      demo: { enabled: false },
      keyring: { directory: join(directory, 'keyring') },
      auth: { cos: { acceptKeyOnlyPath: options.acceptKeyOnlyPath ?? false }, accessKeys: options.accessKeys, ...(options.jwt === undefined ? {} : { jwt: options.jwt }) },
      coffers: Object.fromEntries(options.coffers.map((coffer, index) => [coffer, recordedCoffer(proxy.endpoint, `coffer-${index}/`)])),
      cofferClasses: Object.fromEntries(Object.entries(options.cofferClasses ?? {}).map(([name, c]) => [name, { pattern: c.pattern, creators: c.creators ?? [], coffer: recordedCoffer(proxy.endpoint, `class-${name}/`) }])),
      ...options.config,
    }),
  );
  const gateway = await startGateway(loadConfig({ file, env: {} }), { log: createLogger('silent') });
  // The readiness checks list each coffer's upstream once at start; let them finish so that every
  // request the proxy records from here on was caused by a test's request.
  await gateway.dependenciesChecked;
  return {
    gateway,
    port: gateway.port,
    proxy,
    stop: async () => {
      await gateway.stop();
      await proxy.close();
      await embedded.close();
      rmSync(directory, { recursive: true, force: true });
    },
  };
}
