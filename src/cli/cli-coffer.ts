/**
 * How commands reach a configured coffer: the configuration loaded like `serve` loads it, and the
 * coffer's store, role and keys from createUpstreamCoffer — the gateway's own construction path.
 */
import { ConfigError, loadConfig, type GatewayConfig } from '../config';
import { GatewayError } from '../errors/gateway-error';
import { IntegrityError } from '../format/integrity-error';
import { createUpstreamCoffer, type CofferKeys, type UpstreamCoffer } from '../app/upstream-coffer';
import { createLocalKeyrings } from '../keys/local-keyring';
import type { CofferContext } from '../store/coffer-context';
import type { UploadStore } from '../store/ports';
import { upstreamLayout, type UpstreamLayout } from '../store/upstream-layout';
import { UpstreamNotFoundError } from '../upstream/upstream-store';
import type { S3UpstreamStore } from '../upstream/s3-upstream-store';
import type { CliIo } from './cli-io';

/** A failure to report as is (exit code 1); the message is written for the operator. */
export class CliError extends Error {
  override readonly name = 'CliError';
}

export function loadCliConfig(file: string | undefined, io: CliIo): GatewayConfig {
  return loadConfig({ file, env: io.env });
}

export interface OpenedCoffer {
  readonly name: string;
  readonly coffer: UpstreamCoffer;
  readonly keys: CofferKeys;
  readonly layout: UpstreamLayout;
  /** The coffer's upstream store, created on first use (offline decryption never needs it). */
  store(): S3UpstreamStore;
  /** What MultipartService needs, over the given store. */
  context(store: UploadStore): CofferContext;
  /** Closes every client this opened. */
  close(): void;
}

/**
 * `sessionName` becomes the STS RoleSessionName for roles, so CloudTrail shows which command acted.
 * The demo coffer of the embedded default is refused: its upstream lives inside the gateway process
 * (a loopback server with per-start credentials) and only that process may open its directory.
 */
export function openCoffer(config: GatewayConfig, name: string, sessionName: string, options: { trustKeyIds?: readonly string[] } = {}): OpenedCoffer {
  const configured = config.coffers[name];
  // `trustKeyIds`: keys this run may unwrap under beyond the configuration (rewrap's target, to verify what it wrote).
  const settings = configured?.kms.type === 'aws-kms' && options.trustKeyIds !== undefined ? { ...configured, kms: { ...configured.kms, previousKeyIds: [...configured.kms.previousKeyIds, ...options.trustKeyIds] } } : configured;
  if (settings === undefined) {
    const configured = Object.keys(config.coffers);
    const demo = config.demo.enabled && config.demo.coffer === name ? ' It is the demo coffer of the embedded default, whose upstream only the running gateway can open.' : '';
    throw new CliError(`Coffer ${JSON.stringify(name)} is not configured.${demo} Configured coffers: ${configured.length === 0 ? '(none)' : configured.join(', ')}.`);
  }
  const keyrings = createLocalKeyrings(config.keyring);
  const coffer = createUpstreamCoffer(name, settings, config, { localKeys: (keyId) => keyrings.forKeyId(keyId) });
  const keys = coffer.keysFor(sessionName);
  const layout = upstreamLayout(coffer.prefix ?? '');
  let store: S3UpstreamStore | undefined;
  return {
    name,
    coffer,
    keys,
    layout,
    store: () => (store ??= coffer.storeFor(sessionName)),
    context: (over) => ({ coffer: name, store: over, layout, keys, minPartSize: coffer.minPartSize, maxPartSize: coffer.maxPartSize }),
    close: () => {
      store?.destroy();
      keys.destroy?.();
      coffer.destroy();
      keyrings.dispose();
    },
  };
}

/** One line for the operator: what failed and why, never a secret (error messages are written to be shown). */
export function describeError(error: unknown): string {
  if (error instanceof IntegrityError) return `integrity check failed (${error.reason}): ${error.message}`;
  if (error instanceof GatewayError) return `${error.code}: ${error.message}${error.reason === undefined || error.message.includes(error.reason) ? '' : ` (${error.reason})`}`;
  if (error instanceof UpstreamNotFoundError) return error.message;
  if (error instanceof ConfigError || error instanceof CliError) return error.message;
  if (error instanceof Error) return error.message;
  return String(error);
}
