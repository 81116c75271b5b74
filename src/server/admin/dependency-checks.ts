/**
 * Readiness from the dependencies a coffer cannot work without. A replica turns Ready only once every
 * configured coffer has, from this replica, (1) obtained its role credentials, (2) listed its upstream
 * bucket, and (3) generated and unwrapped a data key with its key provider — and so has every coffer
 * class (its role, its bucket's registry, its KMS key under the class key's context), which every
 * coffer created in the class depends on. Until then `/readyz` says
 * which coffer and which check fails, and the checks are retried with exponential backoff — so an
 * install whose upstream or KMS key does not exist (a placeholder, a typo, a missing IAM grant) never
 * looks healthy.
 *
 * Once passed, readiness no longer follows the dependencies: an outage of the upstream or of KMS hits
 * every replica alike, and taking them all out of the Service would turn a partial outage (reads
 * served from cached data keys and manifests, clear 409/503 errors for the rest) into a total one.
 * Those failures are visible in the request metrics and alerts instead.
 */
import { randomBytes } from 'node:crypto';
import type { CofferDefinition } from '../../app/coffer-registry';
import { encryptionContext } from '../../store/coffer-context';
import { upstreamLayout } from '../../store/upstream-layout';
import type { Readiness } from './admin-server';

/** One named check; throws (with a message that carries no secret) when the dependency is not usable. */
export interface DependencyCheck {
  readonly name: string;
  readonly run: () => Promise<void>;
}

/** The role session the checks run under (role credentials are per session). */
export const READINESS_SESSION = 'coffer-gateway-readiness';

/**
 * Role, upstream listing and key provider of one coffer, in that order (each needs the one before).
 * `name` and `listPrefix` default to the coffer's (`coffer <name>`, its manifests).
 */
export function cofferDependencyCheck(definition: CofferDefinition, options: { readonly name?: string; readonly listPrefix?: string } = {}): DependencyCheck {
  // Built once and reused by every retry: a check retried every 30 s while a dependency is down must not
  // create a new S3 or KMS client (with its sockets) per attempt.
  let clients: { store: ReturnType<CofferDefinition['storeFor']>; keys: ReturnType<CofferDefinition['keysFor']> } | undefined;
  const listPrefix = options.listPrefix ?? upstreamLayout(definition.prefix ?? '').manifestPrefix();
  return {
    name: options.name ?? `coffer ${definition.name}`,
    run: async () => {
      await step('role', () => definition.assumeRole?.(READINESS_SESSION));
      clients ??= { store: definition.storeFor(READINESS_SESSION), keys: definition.keysFor(READINESS_SESSION) };
      const { store, keys } = clients;
      await step('upstream', () => store.listObjects(listPrefix, { maxKeys: 1 }));
      // A context no object can have: the probe key never names a stored object.
      const context = encryptionContext(definition.name, `.coffer-gateway-readiness/${randomBytes(8).toString('hex')}`);
      await step('key provider', async () => {
        const dataKey = await keys.generateDataKey(context);
        try {
          const unwrapped = await keys.decryptDataKey(dataKey.wrapped, context, dataKey.keyId);
          const same = unwrapped.equals(dataKey.plaintext);
          unwrapped.fill(0);
          if (!same) throw new Error('the unwrapped data key differs from the generated one');
        } finally {
          dataKey.plaintext.fill(0);
        }
      });
    },
  };
}

/**
 * A coffer class (app/coffer-classes.ts): checked through its pseudo-coffer `_class.<class>` — the
 * one the registry reads registrations with — listing its registry and round-tripping a data key under
 * the class key's encryption context `{coffer: "_class.<class>"}`.
 */
export function classDependencyCheck(className: string, classCoffer: CofferDefinition, registryPrefix: string): DependencyCheck {
  return cofferDependencyCheck(classCoffer, { name: `coffer class ${className}`, listPrefix: registryPrefix });
}

async function step(name: string, run: () => Promise<unknown> | undefined): Promise<void> {
  try {
    await run();
  } catch (error) {
    throw new Error(`${name}: ${reasonOf(error)}`, { cause: error });
  }
}

/** Error name and message only: SDK errors carry no credentials there (never the request or its headers). */
function reasonOf(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    const name = typeof code === 'string' && code !== error.name ? `${error.name} ${code}` : error.name;
    return `${name}: ${error.message}`.slice(0, 300);
  }
  return String(error).slice(0, 300);
}

export interface DependencyWatchOptions {
  /** First retry delay; doubles after each failure up to `maxRetryMs`. */
  readonly retryMs?: number;
  readonly maxRetryMs?: number;
  /** Called once per failed attempt of a check (for the log). */
  readonly onFailure?: (check: string, reason: string, retryInMs: number) => void;
  readonly onPassed?: (check: string) => void;
}

export interface DependencyWatch extends Readiness {
  /** Resolves once every check has passed, or the watch was stopped (never rejects). */
  readonly passed: Promise<void>;
  /**
   * Resolves once every check has finished its first attempt, passed or failed (never rejects):
   * from then on a check runs again only after a failure and its backoff delay.
   */
  readonly attempted: Promise<void>;
  stop(): void;
}

/** Runs every check concurrently, retrying each until it passes once. */
export function watchDependencies(checks: readonly DependencyCheck[], options: DependencyWatchOptions = {}): DependencyWatch {
  const retryMs = options.retryMs ?? 1000;
  const maxRetryMs = options.maxRetryMs ?? 30_000;
  const pending = new Map<string, string>(checks.map((check) => [check.name, 'checking']));
  /** Waiting retries, each with the attempt it would run (run at once on stop, which then resolves). */
  const timers = new Map<NodeJS.Timeout, () => void>();
  let stopped = false;

  const firstAttempts: Promise<void>[] = [];
  const runUntilPassed = (check: DependencyCheck): Promise<void> =>
    new Promise((resolve) => {
      let delay = retryMs;
      let attempted: () => void = () => undefined;
      firstAttempts.push(new Promise<void>((done) => (attempted = done)));
      const attempt = (): void => {
        if (stopped) {
          attempted();
          return resolve();
        }
        check.run().then(
          () => {
            pending.delete(check.name);
            options.onPassed?.(check.name);
            attempted();
            resolve();
          },
          (error: unknown) => {
            attempted();
            const reason = error instanceof Error ? error.message : String(error);
            pending.set(check.name, reason);
            options.onFailure?.(check.name, reason, delay);
            if (stopped) return resolve();
            const timer = setTimeout(() => {
              timers.delete(timer);
              attempt();
            }, delay);
            timer.unref();
            timers.set(timer, attempt);
            delay = Math.min(delay * 2, maxRetryMs);
          },
        );
      };
      attempt();
    });

  const passed = Promise.all(checks.map(runUntilPassed)).then(() => undefined);
  const attempted = Promise.all(firstAttempts).then(() => undefined);
  return {
    passed,
    attempted,
    notReadyReason: () => {
      const [first] = pending;
      if (first === undefined) return undefined;
      const [name, reason] = first;
      const more = pending.size > 1 ? ` (and ${pending.size - 1} more)` : '';
      return `${name}: ${reason}${more}`;
    },
    stop: () => {
      stopped = true;
      for (const [timer, attempt] of timers) {
        clearTimeout(timer);
        attempt();
      }
      timers.clear();
    },
  };
}
