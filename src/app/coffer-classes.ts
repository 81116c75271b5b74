/**
 * Coffers created at run time (PUT Coffer) within the configured coffer classes
 * (config `cofferClasses`, README "Creating and deleting coffers", docs/FORMAT.md §8.8).
 *
 * A created coffer exists iff its registration record exists in its class's upstream bucket:
 *   <base prefix>_registry/k/coffer-key   the class key (a coffer key record, §8.6, for the pseudo-coffer `_class.<class>`)
 *   <base prefix>_registry/r/<coffer>     the registration, sealed under the class key and bound to the coffer name
 * `_registry/` cannot be a coffer's prefix (coffer names start with a letter or digit). Because the
 * record is sealed, a writer of the bucket who cannot use the class's KMS key cannot plant a coffer,
 * and a record copied to another name or another class does not open. It is created with
 * If-None-Match: * so of two replicas creating one coffer, exactly one wins.
 *
 * A created coffer's data lives under `<base prefix><coffer>/<generation>/` with a random generation
 * per creation, so a coffer deleted and created again never sees what the old one left behind.
 *
 * Every replica resolves a name it does not know by reading the registration, and trusts the answer
 * (either way) for `cacheTtlMs`: a coffer created on one replica is served by the others within that
 * time, and a deleted one stops being served within it.
 */
import { randomBytes } from 'node:crypto';
import type { Principal } from '../auth/principal';
import type { CofferConfig, GatewayConfig } from '../config';
import { cofferNamePattern } from '../config/schema/coffer-classes';
import { COFFER_NAME } from '../config/schema';
import { GatewayError } from '../errors/gateway-error';
import { openCofferRecord, sealCofferRecord } from '../format/coffer-record';
import { IntegrityError } from '../format/integrity-error';
import type { CofferContext } from '../store/coffer-context';
import { cofferKey } from '../store/coffer-key';
import { findCofferRules } from '../store/lifecycle-rules';
import { isNotFound, isPreconditionFailed, type UploadStore } from '../store/ports';
import { readSmallObject } from '../store/read-small-object';
import { upstreamLayout, type UpstreamLayout } from '../store/upstream-layout';
import { createUpstreamCoffer, type UpstreamCoffer, type UpstreamCofferDeps } from './upstream-coffer';

/** The prefix, under a class's base prefix, of its registry; no coffer name can start with "_". */
export const REGISTRY_SEGMENT = '_registry/';
/** How long a replica trusts a registration it read, or its absence (README). */
export const DEFAULT_REGISTRY_CACHE_MS = 5000;
const MAX_LISTED = 10_000;
/** A generation: 16 hex digits, random per creation. */
export const GENERATION = /^[0-9a-f]{16}$/;

/** Where a created coffer's state lives: `<base prefix><coffer>/<generation>/` (docs/FORMAT.md §8.8). */
export function generationPrefix(cofferClass: CofferClass, coffer: string, generation: string): string {
  return `${cofferClass.coffer.upstream.prefix ?? ''}${coffer}/${generation}/`;
}

/**
 * Every generation prefix under the class's base prefix — current, and left by a deletion that did
 * not finish — of the coffer names the class admits (all of them, or only `coffer`), found by listing
 * alone: no registration is read, so no key is needed (the command line's gc).
 */
export async function listGenerationPrefixes(store: UploadStore, cofferClass: CofferClass, coffer?: string): Promise<Array<{ readonly coffer: string; readonly generation: string; readonly prefix: string }>> {
  const base = cofferClass.coffer.upstream.prefix ?? '';
  const children = async (prefix: string): Promise<string[]> => {
    const found: string[] = [];
    let token: string | undefined;
    do {
      const page = await store.listObjects(prefix, { delimiter: '/', maxKeys: 1000, ...(token === undefined ? {} : { continuationToken: token }) });
      found.push(...page.commonPrefixes.map((p) => p.slice(prefix.length, -1)));
      token = page.isTruncated ? page.nextContinuationToken : undefined;
    } while (token !== undefined);
    return found;
  };
  const names = coffer === undefined ? await children(base) : [coffer];
  const out: Array<{ coffer: string; generation: string; prefix: string }> = [];
  // `_registry` and anything else no coffer of this class could be named is not a coffer's.
  for (const name of names.filter((n) => COFFER_NAME.test(n) && cofferClass.pattern.test(n))) {
    for (const generation of (await children(`${base}${name}/`)).filter((g) => GENERATION.test(g))) out.push({ coffer: name, generation, prefix: generationPrefix(cofferClass, name, generation) });
  }
  return out;
}

export interface CofferClass {
  readonly name: string;
  readonly pattern: RegExp;
  readonly coffer: CofferConfig;
  readonly creators: readonly string[];
}

/** What a registration says (sealed). */
export interface Registration {
  readonly coffer: string;
  readonly class: string;
  /** Random per creation: the coffer's data lives under `<base prefix><coffer>/<generation>/`. */
  readonly generation: string;
  readonly created: string;
  readonly creator: string;
}

export interface CreatedCoffer {
  readonly registration: Registration;
  readonly definition: UpstreamCoffer;
}

export function cofferClassesOf(config: GatewayConfig): CofferClass[] {
  return Object.entries(config.cofferClasses).map(([name, c]) => ({ name, pattern: cofferNamePattern(c.pattern), coffer: c.coffer as CofferConfig, creators: c.creators }));
}

/** Configuration problems: a configured coffer (or the demo coffer) whose name a class would also admit. */
export function classCollisions(classes: readonly CofferClass[], configured: readonly string[]): string[] {
  return configured.flatMap((name) => classes.filter((c) => c.pattern.test(name)).map((c) => `cofferClasses.${c.name}.pattern: admits "${name}", a configured coffer; configured and created coffer names must never collide`));
}

export class CofferClasses {
  private readonly classes: readonly CofferClass[];
  private readonly basePrefix = (c: CofferClass): string => c.coffer.upstream.prefix ?? '';
  private readonly classCoffers = new Map<string, UpstreamCoffer>();
  private readonly classContexts = new Map<string, CofferContext>();
  private readonly resolved = new Map<string, { readonly created: CreatedCoffer | undefined; readonly until: number }>();
  /** One definition per (coffer, generation), reused across cache refreshes and listings (each holds clients). */
  private readonly known = new Map<string, CreatedCoffer>();
  private readonly now: () => number;

  constructor(
    classes: readonly CofferClass[],
    private readonly build: { readonly config: GatewayConfig; readonly deps: UpstreamCofferDeps },
    private readonly options: { readonly cacheTtlMs?: number; readonly now?: () => number } = {},
  ) {
    this.classes = classes;
    this.now = options.now ?? Date.now;
  }

  get enabled(): boolean {
    return this.classes.length > 0;
  }

  /** Every configured class (the command line's --class, readiness). */
  get all(): readonly CofferClass[] {
    return this.classes;
  }

  /**
   * The class's own pseudo-coffer `_class.<class>`: the upstream coffer its registry and class key
   * are read and written with (one per class, shared with the registry's own lookups), and the
   * layout under `<base prefix>_registry/` (the class key record is its `k/coffer-key`).
   */
  classUpstream(cofferClass: CofferClass): { readonly name: string; readonly upstream: UpstreamCoffer; readonly layout: UpstreamLayout } {
    let upstream = this.classCoffers.get(cofferClass.name);
    if (upstream === undefined) {
      upstream = createUpstreamCoffer(`_class.${cofferClass.name}`, cofferClass.coffer, this.build.config, this.build.deps);
      this.classCoffers.set(cofferClass.name, upstream);
    }
    return { name: `_class.${cofferClass.name}`, upstream, layout: upstreamLayout(this.registryPrefix(cofferClass)) };
  }

  /** `<base prefix>_registry/`: where a class's class key and registrations live. */
  registryPrefix(cofferClass: CofferClass): string {
    return `${this.basePrefix(cofferClass)}${REGISTRY_SEGMENT}`;
  }

  /** Whether some class admits the name (the authenticator's and the egress's "could this be a coffer"). */
  admits(name: string): boolean {
    return this.classes.some((c) => c.pattern.test(name));
  }

  /** The one class admitting `name`; InvalidCofferName when none or several do. */
  classOf(name: string): CofferClass {
    if (!COFFER_NAME.test(name)) throw new GatewayError('InvalidCofferName', 'A coffer name is "<name>-<APPID>": lowercase letters, digits and hyphens, ending in "-" and the numeric APPID.');
    const matching = this.classes.filter((c) => c.pattern.test(name));
    if (matching.length === 0) throw new GatewayError('InvalidCofferName', 'No coffer class of this gateway admits this name.', { reason: 'no-class' });
    if (matching.length > 1) throw new GatewayError('InvalidCofferName', 'More than one coffer class admits this name; the operator must make the class patterns disjoint.', { reason: 'ambiguous-class' });
    return matching[0] as CofferClass;
  }

  /** The created coffer named `name`, or undefined (cached either way for cacheTtlMs). Throws IntegrityError for a registration that does not open. */
  async lookup(name: string, sessionName: string): Promise<CreatedCoffer | undefined> {
    const now = this.now();
    const hit = this.resolved.get(name);
    if (hit !== undefined && hit.until > now) return hit.created;
    if (!COFFER_NAME.test(name)) return undefined;
    const matching = this.classes.filter((c) => c.pattern.test(name));
    if (matching.length !== 1) return undefined;
    const cofferClass = matching[0] as CofferClass;
    const registration = await this.readRegistration(cofferClass, name, sessionName);
    const created = registration === undefined ? undefined : this.createdCoffer(cofferClass, registration);
    this.remember(name, created);
    return created;
  }

  /**
   * Every created coffer of every class (GetService), or of the classes `only` keeps (the command
   * line's per-class runs); a registration that does not open is skipped and reported.
   */
  async list(sessionName: string, onRejected: (coffer: string, error: unknown) => void, only: (cofferClass: CofferClass) => boolean = () => true): Promise<CreatedCoffer[]> {
    const found: CreatedCoffer[] = [];
    for (const cofferClass of this.classes.filter(only)) {
      const context = this.classContext(cofferClass, sessionName);
      const recordPrefix = this.recordKey(cofferClass, '');
      let token: string | undefined;
      do {
        const page = await context.store.listObjects(recordPrefix, { ...(token === undefined ? {} : { continuationToken: token }), maxKeys: 1000 });
        for (const object of page.objects) {
          const name = object.key.slice(recordPrefix.length);
          // A key no coffer of this class could have is not a registration (nothing to open or report).
          if (!COFFER_NAME.test(name) || !cofferClass.pattern.test(name)) continue;
          try {
            const registration = await this.readRegistration(cofferClass, name, sessionName);
            if (registration !== undefined) found.push(this.createdCoffer(cofferClass, registration));
          } catch (error) {
            onRejected(name, error);
          }
        }
        token = page.isTruncated ? page.nextContinuationToken : undefined;
      } while (token !== undefined && found.length < MAX_LISTED);
    }
    return found;
  }

  /**
   * PUT Coffer's write: the creator's policy first (under the new generation, invisible until the
   * registration exists), then the registration with If-None-Match: * — CofferAlreadyExists when
   * another request (on any replica) created the name first.
   */
  async create(cofferClass: CofferClass, name: string, principal: Principal, beforeRegistration: (created: CreatedCoffer) => Promise<void>): Promise<CreatedCoffer> {
    const registration: Registration = { coffer: name, class: cofferClass.name, generation: randomBytes(8).toString('hex'), created: new Date(this.now()).toISOString(), creator: principal.id };
    // Not in `known` until the registration is written: a lost race must not replace the winner's definition.
    const created = this.defineCreated(cofferClass, registration);
    await beforeRegistration(created);
    const context = this.classContext(cofferClass, principal.sessionName);
    const key = (await cofferKey(context, { create: true })) as Buffer;
    let sealed: Buffer;
    try {
      sealed = sealCofferRecord(key, 'registration', name, { ...registration });
    } finally {
      key.fill(0);
    }
    try {
      await context.store.putObject(this.recordKey(cofferClass, name), { body: sealed }, { createOnly: true });
    } catch (error) {
      // Lost (or failed): what beforeRegistration wrote under the unused generation goes, best effort.
      const store = created.definition.storeFor(principal.sessionName);
      await purgePrefix(store, created.definition.prefix ?? '').catch(() => undefined);
      store.destroy();
      created.definition.destroy();
      if (isPreconditionFailed(error)) throw new GatewayError('CofferAlreadyExists', 'A coffer of this name exists (created by another request).');
      throw error;
    }
    this.known.get(name)?.definition.destroy();
    this.known.set(name, created);
    this.remember(name, created);
    return created;
  }

  /**
   * DELETE Coffer's write, after the caller checked the coffer is empty: the registration first (from
   * then on no replica resolves the coffer once its cache expires), then the coffer's lifecycle rules
   * in the bucket, then everything left under its generation prefix (expired objects the upstream
   * has not removed yet, its records). A crash part-way leaves only unreachable bytes under a
   * generation no registration names.
   */
  async remove(created: CreatedCoffer, sessionName: string): Promise<void> {
    const cofferClass = this.classes.find((c) => c.name === created.registration.class);
    if (cofferClass === undefined) throw new GatewayError('InternalError', 'The coffer class of a created coffer is gone.');
    const classContext = this.classContext(cofferClass, sessionName);
    // The caller checked the generation it had cached; if the name has since been deleted and created
    // again (on another replica), this registration is not that coffer's: leave it.
    const current = await this.readRegistration(cofferClass, created.registration.coffer, sessionName);
    if (current?.generation !== created.registration.generation) {
      this.resolved.delete(created.registration.coffer);
      throw new GatewayError('NoSuchCoffer', 'The coffer was deleted (and perhaps created again) meanwhile.', { reason: 'registration-changed' });
    }
    await classContext.store.deleteObjects([this.recordKey(cofferClass, created.registration.coffer)]);
    this.resolved.delete(created.registration.coffer);
    const store = created.definition.storeFor(sessionName);
    try {
      await removeCofferRules(store, created.registration.coffer);
      await purgePrefix(store, created.definition.prefix ?? '');
    } finally {
      store.destroy();
    }
  }

  private remember(name: string, created: CreatedCoffer | undefined): void {
    if (this.resolved.size >= MAX_LISTED) this.resolved.delete(this.resolved.keys().next().value as string);
    this.resolved.set(name, { created, until: this.now() + (this.options.cacheTtlMs ?? DEFAULT_REGISTRY_CACHE_MS) });
  }

  private recordKey(cofferClass: CofferClass, name: string): string {
    return `${this.basePrefix(cofferClass)}${REGISTRY_SEGMENT}r/${name}`;
  }

  private createdCoffer(cofferClass: CofferClass, registration: Registration): CreatedCoffer {
    const previous = this.known.get(registration.coffer);
    if (previous !== undefined && previous.registration.generation === registration.generation && previous.registration.class === registration.class) return previous;
    previous?.definition.destroy();
    const created = this.defineCreated(cofferClass, registration);
    if (this.known.size >= MAX_LISTED) this.known.delete(this.known.keys().next().value as string);
    this.known.set(registration.coffer, created);
    return created;
  }

  private defineCreated(cofferClass: CofferClass, registration: Registration): CreatedCoffer {
    const prefix = generationPrefix(cofferClass, registration.coffer, registration.generation);
    const coffer: CofferConfig = { ...cofferClass.coffer, upstream: { ...cofferClass.coffer.upstream, prefix } };
    return { registration, definition: createUpstreamCoffer(registration.coffer, coffer, this.build.config, this.build.deps) };
  }

  /** The class's own context: its registry prefix, its class key (KMS context `{coffer: "_class.<class>"}`). */
  private classContext(cofferClass: CofferClass, sessionName: string): CofferContext {
    const cacheKey = `${cofferClass.name}\u0000${sessionName}`;
    let context = this.classContexts.get(cacheKey);
    if (context === undefined) {
      const { name, upstream, layout } = this.classUpstream(cofferClass);
      context = {
        coffer: name,
        store: upstream.storeFor(sessionName),
        layout,
        keys: upstream.keysFor(sessionName),
        minPartSize: upstream.minPartSize,
        maxPartSize: upstream.maxPartSize,
      };
      if (this.classContexts.size >= 1000) this.classContexts.delete(this.classContexts.keys().next().value as string);
      this.classContexts.set(cacheKey, context);
    }
    return context;
  }

  private async readRegistration(cofferClass: CofferClass, name: string, sessionName: string): Promise<Registration | undefined> {
    const context = this.classContext(cofferClass, sessionName);
    let stored: Buffer;
    try {
      stored = await readSmallObject((await context.store.getObject(this.recordKey(cofferClass, name))).body, 64 * 1024);
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
    const key = await cofferKey(context, { create: false });
    if (key === undefined) throw new IntegrityError('coffer-record-rejected', 'a coffer registration exists but its class key record does not');
    let value: Record<string, unknown>;
    try {
      value = openCofferRecord(key, 'registration', name, stored);
    } finally {
      key.fill(0);
    }
    const { coffer, generation, created, creator } = value;
    if (coffer !== name || value['class'] !== cofferClass.name || typeof generation !== 'string' || !GENERATION.test(generation) || typeof created !== 'string' || typeof creator !== 'string') {
      throw new IntegrityError('coffer-record-rejected', 'the coffer registration is malformed or names another coffer class');
    }
    return { coffer: name, class: cofferClass.name, generation, created, creator };
  }

  /** Closes the class coffers' STS clients and the registry stores (a command-line run must leave no client open). */
  destroy(): void {
    for (const context of this.classContexts.values()) (context.store as Partial<{ destroy(): void }>).destroy?.();
    this.classContexts.clear();
    for (const upstream of this.classCoffers.values()) upstream.destroy();
    for (const created of this.known.values()) created.definition.destroy();
  }
}

/** Deletes every object under `prefix` (a created coffer's generation prefix, never a shared one). */
async function purgePrefix(store: UploadStore, prefix: string): Promise<void> {
  if (prefix === '') throw new GatewayError('InternalError', 'Refusing to purge an empty prefix.');
  for (;;) {
    // Deleting changes what follows: each round lists from the start again.
    const page = await store.listObjects(prefix, { maxKeys: 1000 });
    if (page.objects.length === 0) return;
    await store.deleteObjects(page.objects.map((o) => o.key));
  }
}

/** Removes the coffer's rules (by rule ID) from the bucket's lifecycle configuration, leaving every other rule. */
async function removeCofferRules(store: UploadStore, coffer: string): Promise<void> {
  if (store.getLifecycleRules === undefined || store.putLifecycleRules === undefined) return;
  let rules;
  try {
    rules = await store.getLifecycleRules();
  } catch {
    return; // an upstream without lifecycle support has no rules of ours
  }
  const ours = findCofferRules(rules, coffer);
  if (ours.length === 0) return;
  await store.putLifecycleRules(rules.filter((rule) => !ours.includes(rule)));
}
