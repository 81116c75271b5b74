/**
 * Builds, once at start-up, what each configured coffer needs (store, layout, key provider, limits)
 * and resolves a coffer's context per request. Role credentials are per session (the principal), so
 * stores and KMS clients that use them are created per (coffer, session) and cached.
 */
import type { Principal } from '../auth/principal';
import { GatewayError } from '../errors/gateway-error';
import { cachingKeyProvider, DataKeyCache } from '../keys/data-key-cache';
import type { KeyProvider } from '../keys/key-provider';
import type { CofferContext } from '../store/coffer-context';
import type { CofferLifecycle } from '../store/coffer-lifecycle';
import type { UploadStore } from '../store/ports';
import { upstreamLayout } from '../store/upstream-layout';
import type { CofferDirectory } from '../cdcs/cdcs-operations';
import type { CofferResolver } from '../operations/run-operation';
import type { CofferClasses, CreatedCoffer } from './coffer-classes';

export interface CofferDefinition {
  readonly name: string;
  /** Region reported by GetService (the upstream's). */
  readonly location?: string;
  readonly prefix?: string;
  readonly minPartSize: number;
  readonly maxPartSize: number;
  /** The store for one session (role credentials differ per session); called once per (coffer, session). */
  readonly storeFor: (sessionName: string) => UploadStore;
  /** The key provider for one session (an AWS KMS client signs with the session's role credentials). */
  readonly keysFor: (sessionName: string) => KeyProvider;
  /**
   * Resolves the session's role credentials (the role provider caches them), failing with
   * AssumeRoleFailed. Absent when the coffer signs with fixed keys that cannot fail.
   */
  readonly assumeRole?: (sessionName: string) => Promise<void>;
  /** false: the coffer allows overwrite and delete (CofferContext.writeOnce). Default true. */
  readonly writeOnce?: boolean;
}

/**
 * `cache` undefined: no data-key cache (kms.dataKeyCache* = 0); every unwrap goes to the key provider.
 * `classes`: coffers created at run time (app/coffer-classes.ts); a name no configured coffer has is
 * looked up there.
 */
export function createCofferRegistry(
  definitions: readonly CofferDefinition[],
  cache: DataKeyCache | undefined,
  options: {
    maxSessions?: number;
    decorateKeys?: (keys: KeyProvider) => KeyProvider;
    decorateStore?: (store: UploadStore) => UploadStore;
    lifecycle?: CofferLifecycle;
    classes?: CofferClasses;
    startedAt?: Date;
    onRejectedRegistration?: (coffer: string, error: unknown) => void;
  } = {},
): CofferResolver & CofferDirectory & { names(): string[]; contextOfCreated(created: CreatedCoffer, principal: Principal): CofferContext } {
  const byName = new Map(definitions.map((d) => [d.name, d]));
  const contexts = new Map<string, CofferContext>();
  const startedAt = options.startedAt ?? new Date(0);
  // A created coffer's contexts are per generation: one deleted and created again starts afresh.
  const contextOf = (coffer: string, definition: CofferDefinition, generation: string, principal: Principal): CofferContext => {
    const cacheKey = `${coffer}\u0000${generation}\u0000${principal.sessionName}`;
    let context = contexts.get(cacheKey);
    if (context === undefined) {
      const lifecycle = options.lifecycle;
      const inner = (options.decorateKeys ?? ((k: KeyProvider) => k))(definition.keysFor(principal.sessionName));
      // `built` is referred to by its own expiry check (called later, never during construction).
      const built: CofferContext = {
        coffer,
        store: (options.decorateStore ?? ((s: UploadStore) => s))(definition.storeFor(principal.sessionName)),
        layout: upstreamLayout(definition.prefix ?? ''),
        // One cache for all coffers, scoped per coffer: a wrapped key is only ever unwrapped in its own coffer's scope.
        keys: cache === undefined ? inner : cachingKeyProvider(inner, { maxAgeMs: 0, maxEntries: 0, cache, scope: `${coffer}:${inner.name}` }),
        minPartSize: definition.minPartSize,
        maxPartSize: definition.maxPartSize,
        ...(definition.assumeRole === undefined ? {} : { assumeRole: definition.assumeRole.bind(definition, principal.sessionName) }),
        ...(lifecycle === undefined ? {} : { expiry: async (created: string) => lifecycle.isExpired(created, await lifecycle.lifetimeMs(built)) }),
        ...(definition.writeOnce === false ? { writeOnce: false } : {}),
      };
      context = built;
      if (contexts.size >= (options.maxSessions ?? 1000)) contexts.delete(contexts.keys().next().value as string);
      contexts.set(cacheKey, context);
    }
    return context;
  };
  return {
    names: () => [...byName.keys()],
    list: async (principal) => [
      // A configured coffer's CreationDate is when this gateway started (the configuration creates it).
      ...definitions.map((d) => ({ name: d.name, location: d.location ?? '', created: startedAt, configured: true })),
      ...(options.classes === undefined
        ? []
        : (await options.classes.list(principal.sessionName, options.onRejectedRegistration ?? (() => undefined))).map((c) => ({
            name: c.registration.coffer,
            location: c.definition.location ?? '',
            created: new Date(c.registration.created),
            configured: false,
          }))),
    ],
    isConfigured: (coffer) => byName.has(coffer),
    async contextFor(coffer: string, principal: Principal): Promise<CofferContext> {
      const definition = byName.get(coffer);
      if (definition !== undefined) return contextOf(coffer, definition, '', principal);
      const created = await options.classes?.lookup(coffer, principal.sessionName);
      if (created === undefined) throw new GatewayError('NoSuchCoffer');
      return contextOf(coffer, created.definition, created.registration.generation, principal);
    },
    contextOfCreated: (created, principal) => contextOf(created.registration.coffer, created.definition, created.registration.generation, principal),
  };
}
