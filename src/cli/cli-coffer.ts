/**
 * How commands reach a coffer: the configuration loaded like `serve` loads it, and the coffer's store,
 * role and keys from createUpstreamCoffer — the gateway's own construction path. A coffer created at
 * run time (PUT Coffer, a configured `cofferClasses` entry) is found the way the gateway finds it: its
 * sealed registration read and opened by CofferClasses (app/coffer-classes.ts), which also defines its
 * per-generation prefix; a class's own registry and class key are reached through the same object.
 */
import { ConfigError, loadConfig, type CofferConfig, type GatewayConfig } from '../config';
import { CofferClasses, cofferClassesOf, type CofferClass, type CreatedCoffer, type Registration } from '../app/coffer-classes';
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
  /** For a created coffer: its registration (class, generation); undefined for a configured one. */
  readonly created?: Registration;
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
export interface CliCofferOptions {
  /** Keys this run may unwrap under beyond the configuration (rewrap's target, to verify what it wrote). */
  readonly trustKeyIds?: readonly string[];
}

/** `settings`, also unwrapping under `trustKeyIds` (AWS KMS; the keyring unwraps under any key id it holds). */
function trusting(settings: CofferConfig, trustKeyIds: readonly string[] | undefined): CofferConfig {
  if (settings.kms.type !== 'aws-kms' || trustKeyIds === undefined) return settings;
  return { ...settings, kms: { ...settings.kms, previousKeyIds: [...settings.kms.previousKeyIds, ...trustKeyIds] } };
}

/** An OpenedCoffer over an upstream coffer someone else owns (`release` closes what this one opened besides). */
function openedFrom(name: string, coffer: UpstreamCoffer, layout: UpstreamLayout, sessionName: string, release: () => void, created?: Registration): OpenedCoffer {
  const keys = coffer.keysFor(sessionName);
  let store: S3UpstreamStore | undefined;
  return {
    name,
    ...(created === undefined ? {} : { created }),
    coffer,
    keys,
    layout,
    store: () => (store ??= coffer.storeFor(sessionName)),
    context: (over) => ({ coffer: name, store: over, layout, keys, minPartSize: coffer.minPartSize, maxPartSize: coffer.maxPartSize }),
    close: () => {
      store?.destroy();
      keys.destroy?.();
      release();
    },
  };
}

export function openCoffer(config: GatewayConfig, name: string, sessionName: string, options: CliCofferOptions = {}): OpenedCoffer {
  const configured = config.coffers[name];
  if (configured === undefined) {
    const configured = Object.keys(config.coffers);
    const demo = config.demo.enabled && config.demo.coffer === name ? ' It is the demo coffer of the embedded default, whose upstream only the running gateway can open.' : '';
    throw new CliError(
      `Coffer ${JSON.stringify(name)} is not configured.${demo}${Object.keys(config.cofferClasses).length === 0 ? '' : ' No coffer class admits its name either.'} Configured coffers: ${configured.length === 0 ? '(none)' : configured.join(', ')}.`,
    );
  }
  const keyrings = createLocalKeyrings(config.keyring);
  const coffer = createUpstreamCoffer(name, trusting(configured, options.trustKeyIds), config, { localKeys: (keyId) => keyrings.forKeyId(keyId) });
  return openedFrom(name, coffer, upstreamLayout(coffer.prefix ?? ''), sessionName, () => {
    coffer.destroy();
    keyrings.dispose();
  });
}

/**
 * A configured coffer, or a created one: a name no configured coffer has but a coffer class admits is
 * looked up in its class's registry (the registration must open under the class key; a tampered one
 * fails with an integrity error), and opened under its current generation.
 */
export async function openAnyCoffer(config: GatewayConfig, name: string, sessionName: string, options: CliCofferOptions = {}): Promise<OpenedCoffer> {
  if (config.coffers[name] !== undefined || !cofferClassesOf(config).some((c) => c.pattern.test(name))) return openCoffer(config, name, sessionName, options);
  const classes = openClasses(config, sessionName, options);
  try {
    const cofferClass = classes.classes.classOf(name);
    const created = await classes.classes.lookup(name, sessionName);
    if (created === undefined) throw new CliError(`Coffer ${JSON.stringify(name)} does not exist: coffer class ${cofferClass.name} admits the name, but no registration of it exists (it was never created, or was deleted).`);
    return classes.open(created, () => classes.close());
  } catch (error) {
    classes.close();
    throw error;
  }
}

/**
 * Offline use (decrypt from downloaded files): the coffer's key provider without any upstream call.
 * A created coffer's objects are sealed with its class's KMS key under its own name as the encryption
 * context and AEAD binding, never its generation, so the class's key provider opens them without the
 * registration; the layout only maps the two downloaded files.
 */
export function openCofferOffline(config: GatewayConfig, name: string, sessionName: string): OpenedCoffer {
  if (config.coffers[name] !== undefined || !cofferClassesOf(config).some((c) => c.pattern.test(name))) return openCoffer(config, name, sessionName);
  const classes = openClasses(config, sessionName);
  try {
    const cofferClass = classes.classes.classOf(name);
    return openedFrom(name, classes.classes.classUpstream(cofferClass).upstream, upstreamLayout(`${cofferClass.coffer.upstream.prefix ?? ''}${name}/`), sessionName, () => classes.close());
  } catch (error) {
    classes.close();
    throw error;
  }
}

/** The coffer classes of a configuration, opened for one command-line run. */
export interface OpenedClasses {
  readonly classes: CofferClasses;
  /** The class named `name`; CliError naming the configured ones otherwise. */
  cofferClass(name: string): CofferClass;
  /** The class's pseudo-coffer `_class.<class>`: its registry under `<base prefix>_registry/`, whose `k/coffer-key` is the class key. */
  openRegistry(cofferClass: CofferClass): OpenedCoffer;
  /** Every created coffer of the class; registrations that do not open are returned apart, with why. */
  list(cofferClass: CofferClass): Promise<{ readonly created: CreatedCoffer[]; readonly rejected: Array<{ readonly coffer: string; readonly error: unknown }> }>;
  /** A created coffer, under its generation; `release` runs when it is closed. */
  open(created: CreatedCoffer, release?: () => void): OpenedCoffer;
  close(): void;
}

export function openClasses(config: GatewayConfig, sessionName: string, options: CliCofferOptions = {}): OpenedClasses {
  const keyrings = createLocalKeyrings(config.keyring);
  const trusted: GatewayConfig = { ...config, cofferClasses: Object.fromEntries(Object.entries(config.cofferClasses).map(([name, c]) => [name, { ...c, coffer: trusting(c.coffer as CofferConfig, options.trustKeyIds) }])) };
  const classes = new CofferClasses(cofferClassesOf(trusted), { config: trusted, deps: { localKeys: (keyId) => keyrings.forKeyId(keyId) } }, { cacheTtlMs: 0 });
  return {
    classes,
    cofferClass: (name) => {
      const found = classes.all.find((c) => c.name === name);
      if (found === undefined) {
        const names = classes.all.map((c) => c.name);
        throw new CliError(`No coffer class ${JSON.stringify(name)} is configured. Configured classes: ${names.length === 0 ? '(none)' : names.join(', ')}.`);
      }
      return found;
    },
    openRegistry: (cofferClass) => {
      const { name, upstream, layout } = classes.classUpstream(cofferClass);
      return openedFrom(name, upstream, layout, sessionName, () => undefined);
    },
    list: async (cofferClass) => {
      const rejected: Array<{ coffer: string; error: unknown }> = [];
      const created = await classes.list(
        sessionName,
        (coffer, error) => rejected.push({ coffer, error }),
        (c) => c.name === cofferClass.name,
      );
      return { created, rejected };
    },
    open: (created, release = () => undefined) => openedFrom(created.registration.coffer, created.definition, upstreamLayout(created.definition.prefix ?? ''), sessionName, release, created.registration),
    close: () => {
      classes.destroy();
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
