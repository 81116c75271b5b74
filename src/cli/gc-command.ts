/**
 * `coffer-gateway gc`: removes orphaned data objects (docs/FORMAT.md §8). A data object
 * `d/<K>/<objectId>` is written before the manifest `m/<K>` that makes it readable, so a crash or a
 * lost connection between the two — a PutObject's data PUT and its manifest create, or an upstream
 * Complete and the manifest — leaves a data object that nothing reads or lists, but that is stored
 * (and paid for) forever. So does an AbortMultipartUpload that arrives after an upstream Complete had
 * already succeeded.
 *
 * A data object is LIVE if `m/<K>` exists and its object id is `<objectId>`, or if the upload record
 * `u/<K>/<objectId>` exists (an upload in progress, or a Complete still to be retried). Otherwise it is
 * an ORPHAN. Only the object id of the manifest matters, read without its MAC/AEAD (parseSealedManifest): gc makes
 * no KMS call and works without access to the keys. A manifest that exists but cannot be decoded keeps
 * every data object of its key and is reported as an error.
 *
 * Only the data area `<prefix>d/` is listed, and only keys that parse as `d/<K>/<32 hex digits>` (split
 * at the last `/`: user keys may contain `/` and hex-looking segments) are ever deleted; anything else
 * there is reported and kept. Manifests, upload records, part records, staged parts and the doctor's
 * probe area are never listed, so never deleted.
 *
 * Races with a concurrent writer, and why --min-age makes them safe:
 * - The checks run in the order manifest → upload record → manifest again. Complete writes the
 *   manifest before it removes the upload record, so once the record is seen absent, any Complete of
 *   that upload has already written its manifest, and the second manifest read sees it.
 * - Right before a batch is deleted, every candidate is checked again the same way; what remains is
 *   the window between that re-check and the DeleteObjects call (one round trip).
 * - A PutObject writes its data object and then, with no upload record, its manifest: during that
 *   moment its data object looks exactly like an orphan. Only orphans older than --min-age (default
 *   24 h; the object's LastModified) are deleted, so a PutObject is safe unless more than min-age
 *   passes between the start of its data PUT (S3 may date an object by the start of its upload) and its
 *   manifest create — far beyond any request timeout.
 * - Not covered by the age: an AbortMultipartUpload racing a Complete of the same upload that has
 *   already completed upstream (on S3 the data object is dated by the upload's initiation, so it can be
 *   old). Between the abort removing the upload record and the Complete writing the manifest, the data
 *   object is unreferenced; a gc deleting it exactly then leaves a manifest without data. A client that
 *   aborts an upload it is completing has asked for it to be gone; the window is one Complete's last
 *   round trip, and the re-check shrinks it further.
 * `--min-age 0` drops the age guard and is only safe when no gateway is writing to the coffer.
 */
import { parseSealedManifest } from '../format/manifest';
import { isNotFound, type UploadStore } from '../store/ports';
import { readSmallObject } from '../store/read-small-object';
import { UPLOAD_ID_PATTERN, upstreamLayout, type UpstreamLayout } from '../store/upstream-layout';
import { boundedMap } from '../util/bounded-map';
import { CONFIG_HELP, CONFIG_OPTION, HELP_OPTION, UsageError, parseCommandArgs } from './args';
import { CliError, describeError, loadCliConfig, openClasses, openCoffer } from './cli-coffer';
import type { CofferConfig, GatewayConfig } from '../config';
import { cofferClassesOf, listGenerationPrefixes, type CofferClass } from '../app/coffer-classes';
import { EXIT_FAILURE, EXIT_OK, type CliIo } from './cli-io';
import { createProgress } from './progress';

export const GC_HELP = `Usage: coffer-gateway gc -c <config> --coffer <name> [--prefix <p>] [--min-age <duration>] [--dry-run]
       coffer-gateway gc -c <config> --class <class> [--prefix <p>] [--min-age <duration>] [--dry-run]

Deletes orphaned data objects: ciphertext in the upstream bucket that no manifest refers to and no open
upload owns, left behind when a write was interrupted between storing its data and creating its
manifest (a crash, a lost connection, an abort after the upstream had completed the upload). Orphans
are never read or listed; they only cost storage. Objects, open uploads and all bookkeeping are kept,
and no KMS call is made.

Options:
${CONFIG_HELP}
      --coffer <name>       The coffer, as configured under \`coffers\`, or one created in a coffer class
                            (every generation prefix <base><coffer>/<generation>/ of the name).
      --class <class>       Every coffer created in this class (\`cofferClasses\`): every generation
                            prefix under the class's base prefix, current or left by a deletion.
      --prefix <p>          Only data objects of keys starting with <p>. Default: all.
      --min-age <duration>  Delete only orphans older than this: seconds, or a number with s, m, h, d
                            or w (e.g. 90m, 24h, 7d). Default: 24h. A PutObject in flight has its data
                            object before its manifest, so young orphans are kept; 0 deletes orphans of
                            any age and is only safe while no gateway writes to the coffer.
      --dry-run             Report what would be deleted; delete nothing.
      --concurrency <n>     Data objects checked at once (1..64). Default: 8.
  -h, --help                Show this help.

Prints one line per orphan (key, object id, size, age) and a summary. A progress bar is drawn on stderr
when stderr is a terminal. Exit code 0 only if nothing failed.
`;

const OPTIONS = {
  ...CONFIG_OPTION,
  ...HELP_OPTION,
  coffer: { type: 'string' },
  class: { type: 'string' },
  prefix: { type: 'string' },
  'min-age': { type: 'string' },
  'dry-run': { type: 'boolean' },
  concurrency: { type: 'string' },
} as const;

const UNITS: Readonly<Record<string, number>> = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };
const DEFAULT_MIN_AGE = '24h';
/** DeleteObjects takes at most 1000 keys. */
const DELETE_BATCH = 1000;

/** `90m`, `24h`, `7d`, `1h30m`, or plain seconds (`3600`, `0`) → milliseconds. */
export function parseDuration(text: string): number | undefined {
  const trimmed = text.trim();
  if (/^\d+(?:\.\d+)?$/.test(trimmed)) return Math.round(Number(trimmed) * 1000);
  if (!/^(?:\d+(?:\.\d+)?[smhdw])+$/.test(trimmed)) return undefined;
  let total = 0;
  for (const [, amount, unit] of trimmed.matchAll(/(\d+(?:\.\d+)?)([smhdw])/g)) total += Number(amount) * (UNITS[unit as string] as number);
  return Math.round(total);
}

/** An age for people: `3d 4h`, `2h 5m`, `42s`. */
export function formatAge(ms: number): string {
  const seconds = Math.max(0, Math.floor(ms / 1000));
  const d = Math.floor(seconds / 86_400);
  const h = Math.floor((seconds % 86_400) / 3_600);
  const m = Math.floor((seconds % 3_600) / 60);
  const s = seconds % 60;
  if (d > 0) return `${d}d ${h}h`;
  if (h > 0) return `${h}h ${m}m`;
  if (m > 0) return `${m}m ${s}s`;
  return `${s}s`;
}

/** `<prefix>d/<K>/<objectId>` → K and objectId, split at the LAST `/`; undefined unless the id is 32 hex digits and K is not empty. */
export function parseDataObject(dataArea: string, upstreamKey: string): { key: string; objectId: string } | undefined {
  if (!upstreamKey.startsWith(dataArea)) return undefined;
  const rest = upstreamKey.slice(dataArea.length);
  const slash = rest.lastIndexOf('/');
  if (slash < 1) return undefined;
  const objectId = rest.slice(slash + 1);
  if (!UPLOAD_ID_PATTERN.test(objectId)) return undefined;
  return { key: rest.slice(0, slash), objectId };
}

/** A data object that cannot be classified (its manifest is unreadable, an upstream call failed): kept, reported, counted as an error. */
export class GcFailure extends Error {}

export type DataObjectStatus = { kind: 'live' } | { kind: 'open-upload' } | { kind: 'orphan'; reason: 'no manifest' | 'the manifest names another object' };

/** The object id (hex) of the stored manifest of `key`, or undefined when there is none. */
async function manifestObjectId(store: UploadStore, layout: UpstreamLayout, key: string): Promise<string | undefined> {
  let bytes: Buffer;
  try {
    bytes = await readSmallObject((await store.getObject(layout.manifest(key))).body);
  } catch (error) {
    if (isNotFound(error)) return undefined;
    throw error;
  }
  try {
    return parseSealedManifest(bytes).objectId.toString('hex');
  } catch (error) {
    throw new GcFailure(`its manifest exists but cannot be decoded (${(error as Error).message}); the key's data objects are kept`);
  }
}

async function exists(store: UploadStore, upstreamKey: string): Promise<boolean> {
  return (await store.headObject(upstreamKey)) !== undefined;
}

/**
 * Live or orphan. Manifest, then upload record, then manifest again: Complete writes the manifest
 * before it removes the record, so a record seen absent means any Complete already wrote its manifest.
 */
export async function classifyDataObject(store: UploadStore, layout: UpstreamLayout, key: string, objectId: string): Promise<DataObjectStatus> {
  if ((await manifestObjectId(store, layout, key)) === objectId) return { kind: 'live' };
  if (await exists(store, layout.uploadRecord(key, objectId))) return { kind: 'open-upload' };
  const current = await manifestObjectId(store, layout, key);
  if (current === objectId) return { kind: 'live' };
  return { kind: 'orphan', reason: current === undefined ? 'no manifest' : 'the manifest names another object' };
}

interface Candidate {
  readonly upstreamKey: string;
  readonly key: string;
  readonly objectId: string;
  readonly size: number;
  readonly ageMs: number;
}

interface GcRun {
  readonly dryRun: boolean;
  readonly prefix: string;
  readonly minAgeMs: number;
  readonly minAgeText: string;
  readonly concurrency: number;
  readonly io: CliIo;
  readonly now: number;
}

/**
 * Refuses when another coffer's area — a configured coffer's prefix, or a coffer class's base prefix
 * (its created coffers and registry) — lies inside `dataArea` of the same bucket: gc would take its
 * objects for orphans.
 */
function refuseOverlaps(config: GatewayConfig, where: { readonly bucket: string; readonly endpoint: string }, dataArea: string, self: string | undefined): void {
  const areas = [
    ...Object.entries(config.coffers)
      .filter(([name]) => name !== self)
      .map(([name, c]) => ({ what: `coffer ${name}'s prefix`, upstream: c.upstream })),
    ...Object.entries(config.cofferClasses).map(([name, c]) => ({ what: `coffer class ${name}'s base prefix`, upstream: (c.coffer as CofferConfig).upstream })),
  ];
  for (const { what, upstream } of areas) {
    if (upstream.bucket !== where.bucket || upstream.endpoint !== where.endpoint) continue;
    if ((upstream.prefix ?? '').startsWith(dataArea)) {
      throw new CliError(`${what} ${JSON.stringify(upstream.prefix ?? '')} lies inside the data area ${JSON.stringify(dataArea)}; gc would take its objects for orphans. Nothing was deleted.`);
    }
  }
}

/** Collects the orphans of one coffer layout (a configured coffer's, or one generation of a created coffer's); prints its summary line; returns its error count. */
async function collectLayout(store: UploadStore, layout: UpstreamLayout, scopeName: string, run: GcRun): Promise<number> {
  const { dryRun, prefix, minAgeMs, minAgeText, concurrency, io, now } = run;
  const dataArea = layout.areas().data;
  const counts = { seen: 0, live: 0, open: 0, orphans: 0, deleted: 0, wouldDelete: 0, young: 0, bytes: 0, unrecognised: 0, revived: 0, errors: 0 };
  const progress = createProgress(io.stderr, { label: dryRun ? 'gc (dry run)' : 'gc', unit: 'objects' });
  const report = (stream: 'stdout' | 'stderr', line: string): void => {
    progress.done();
    io[stream].write(`${line}\n`);
  };
  const describe = (c: Candidate): string => `${JSON.stringify(c.key)} id ${c.objectId}, ${c.size} bytes, age ${formatAge(c.ageMs)}`;
  const fail = (what: string, error: unknown): void => {
    counts.errors += 1;
    report('stderr', `✗ ${what}: ${error instanceof GcFailure ? error.message : describeError(error)}`);
  };

  /** Re-checks a batch of old orphans right before deleting them, then deletes those still orphaned. */
  const deleteBatch = async (batch: readonly Candidate[]): Promise<void> => {
    const confirmed: Candidate[] = [];
    await boundedMap(batch, concurrency, async (candidate) => {
      try {
        const status = await classifyDataObject(store, layout, candidate.key, candidate.objectId);
        if (status.kind === 'orphan') confirmed.push(candidate);
        else {
          counts.revived += 1;
          report('stdout', `kept         ${describe(candidate)}: ${status.kind === 'live' ? 'its manifest appeared' : 'an upload of it is open'} during the run`);
        }
      } catch (error) {
        fail(`${JSON.stringify(candidate.key)} id ${candidate.objectId}`, error);
      }
    });
    if (confirmed.length === 0) return;
    // Never anything but a parsed data object of this coffer.
    const keys = confirmed.map((c) => layout.data(c.key, c.objectId));
    if (keys.some((k, i) => k !== confirmed[i]?.upstreamKey || parseDataObject(dataArea, k) === undefined)) throw new Error('internal error: a deletion candidate is not a data object');
    try {
      await store.deleteObjects(keys);
    } catch (error) {
      for (const candidate of confirmed) fail(`${JSON.stringify(candidate.key)} id ${candidate.objectId} (not deleted)`, error);
      return;
    }
    for (const candidate of confirmed) {
      counts.deleted += 1;
      counts.bytes += candidate.size;
      report('stdout', `deleted      ${describe(candidate)}`);
    }
  };

  const pending: Candidate[] = [];
  const handle = async (candidate: Candidate): Promise<void> => {
    try {
      const status = await classifyDataObject(store, layout, candidate.key, candidate.objectId);
      if (status.kind === 'live') counts.live += 1;
      else if (status.kind === 'open-upload') {
        counts.live += 1;
        counts.open += 1;
      } else {
        counts.orphans += 1;
        if (minAgeMs > 0 && candidate.ageMs < minAgeMs) {
          counts.young += 1;
          report('stdout', `young, kept  ${describe(candidate)} (${status.reason})`);
        } else if (dryRun) {
          counts.wouldDelete += 1;
          counts.bytes += candidate.size;
          report('stdout', `would delete ${describe(candidate)} (${status.reason})`);
        } else {
          pending.push(candidate);
        }
      }
    } catch (error) {
      fail(`${JSON.stringify(candidate.key)} id ${candidate.objectId}`, error);
    }
    progress.advance(1);
  };

  const running = new Set<Promise<void>>();
  try {
    let token: string | undefined;
    do {
      const page = await store.listObjects(`${dataArea}${prefix}`, { continuationToken: token, maxKeys: 1000 });
      for (const object of page.objects) {
        const parsed = parseDataObject(dataArea, object.key);
        if (parsed === undefined) {
          counts.seen += 1;
          counts.unrecognised += 1;
          report('stdout', `unrecognised ${JSON.stringify(object.key)}: not d/<key>/<32 hex digits>, kept`);
          continue;
        }
        // `d/<p>…` also lists d/<K>/<id> of a shorter K when <p> reaches into the id (K = "a", p = "a/01").
        if (!parsed.key.startsWith(prefix)) continue;
        counts.seen += 1;
        progress.total = counts.seen;
        const task = handle({ upstreamKey: object.key, ...parsed, size: object.size, ageMs: now - object.lastModified.getTime() }).finally(() => running.delete(task));
        running.add(task);
        if (running.size >= concurrency) await Promise.race(running);
      }
      if (pending.length >= DELETE_BATCH) await deleteBatch(pending.splice(0, DELETE_BATCH));
      token = page.isTruncated ? page.nextContinuationToken : undefined;
    } while (token !== undefined);
    await Promise.all(running);
    while (pending.length > 0) await deleteBatch(pending.splice(0, DELETE_BATCH));
  } finally {
    // Also when the listing failed: no upstream call may still be in flight when the clients close.
    await Promise.all(running);
    progress.done();
  }

  const scope = `${scopeName}${prefix === '' ? '' : ` (prefix ${JSON.stringify(prefix)})`}`;
  const live = `${counts.live} live${counts.open === 0 ? '' : ` (${counts.open} of open uploads)`}`;
  const young = `${counts.young} younger than ${minAgeText} kept`;
  const extra = [counts.unrecognised === 0 ? '' : `, ${counts.unrecognised} unrecognised names kept`, counts.revived === 0 ? '' : `, ${counts.revived} kept because they became live during the run`].join('');
  if (dryRun) {
    io.stdout.write(
      `gc dry run, ${scope}: ${counts.seen} data objects, ${live}, ${counts.orphans} orphans: ${counts.wouldDelete} would be deleted (${counts.bytes} bytes would be reclaimed), ${young}${extra}, ${counts.errors} errors. Nothing was deleted.\n`,
    );
  } else {
    io.stdout.write(`gc, ${scope}: ${counts.seen} data objects, ${live}, ${counts.orphans} orphans: ${counts.deleted} deleted (${counts.bytes} bytes reclaimed), ${young}${extra}, ${counts.errors} errors.\n`);
  }
  return counts.errors;
}

/**
 * Created coffers: every generation prefix of the class (or of one coffer name), found by listing —
 * the current generation and any a deletion left behind — each collected as its own layout. No
 * registration is read, so gc still needs no key: within a generation, "live" is decided by that
 * generation's manifests and upload records alone, exactly as for a configured coffer.
 */
async function collectClass(config: GatewayConfig, cofferClass: CofferClass, coffer: string | undefined, run: GcRun): Promise<number> {
  const classes = openClasses(config, SESSION);
  const store = classes.classes.classUpstream(cofferClass).upstream.storeFor(SESSION);
  try {
    const upstream = cofferClass.coffer.upstream;
    const generations = await listGenerationPrefixes(store, cofferClass, coffer);
    if (coffer !== undefined && generations.length === 0) throw new CliError(`coffer ${coffer} (class ${cofferClass.name}) has nothing under ${JSON.stringify(`${upstream.prefix ?? ''}${coffer}/`)}; nothing to collect.`);
    for (const g of generations) refuseOverlaps(config, upstream, upstreamLayout(g.prefix).areas().data, undefined);
    let errors = 0;
    for (const g of generations) errors += await collectLayout(store, upstreamLayout(g.prefix), `coffer ${g.coffer} (class ${cofferClass.name}, generation ${g.generation})`, run);
    if (coffer === undefined) run.io.stdout.write(`gc${run.dryRun ? ' dry run' : ''}, class ${cofferClass.name}: ${generations.length} generation prefixes of ${new Set(generations.map((g) => g.coffer)).size} coffers, ${errors} errors.\n`);
    return errors;
  } finally {
    store.destroy();
    classes.close();
  }
}

export async function gcCommand(args: readonly string[], io: CliIo): Promise<number> {
  const values = parseCommandArgs('gc', args, OPTIONS);
  if (values.help === true) {
    io.stdout.write(GC_HELP);
    return EXIT_OK;
  }
  if ((values.coffer === undefined) === (values.class === undefined)) throw new UsageError('give either --coffer or --class.\nRun `coffer-gateway gc --help` for the options.');
  const dryRun = values['dry-run'] === true;
  const prefix = values.prefix ?? '';
  const minAgeText = values['min-age'] ?? DEFAULT_MIN_AGE;
  const minAgeMs = parseDuration(minAgeText);
  if (minAgeMs === undefined || !Number.isFinite(minAgeMs)) throw new UsageError(`--min-age must be a duration: seconds, or e.g. 90m, 24h, 7d (got ${JSON.stringify(minAgeText)}).`);
  const concurrency = values.concurrency === undefined ? 8 : Number(values.concurrency);
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 64) throw new UsageError('--concurrency must be an integer from 1 to 64.');

  const config = loadCliConfig(values.config, io);
  const run: GcRun = { dryRun, prefix, minAgeMs, minAgeText, concurrency, io, now: Date.now() };
  let errors: number;
  if (values.class !== undefined) {
    const classes = openClasses(config, SESSION);
    let cofferClass: CofferClass;
    try {
      cofferClass = classes.cofferClass(values.class);
    } finally {
      classes.close();
    }
    errors = await collectClass(config, cofferClass, undefined, run);
  } else {
    const cofferName = values.coffer as string;
    const cofferClass = config.coffers[cofferName] === undefined ? cofferClassesOf(config).find((c) => c.pattern.test(cofferName)) : undefined;
    if (cofferClass !== undefined) {
      errors = await collectClass(config, cofferClass, cofferName, run);
    } else {
      const opened = openCoffer(config, cofferName, SESSION);
      try {
        refuseOverlaps(config, opened.coffer.config.upstream, opened.layout.areas().data, cofferName);
        errors = await collectLayout(opened.store(), opened.layout, `coffer ${cofferName}`, run);
      } finally {
        opened.close();
      }
    }
  }
  return errors === 0 ? EXIT_OK : EXIT_FAILURE;
}

const SESSION = 'coffer-gateway-gc';
