/**
 * `coffer-gateway rewrap`: key rotation. For every manifest under a prefix, the data key is re-sealed
 * under another master key (AWS KMS ReEncrypt — the plaintext key never leaves KMS — or, for the local
 * keyring, unwrap + wrap) and the manifest is written back with only its envelope replaced
 * (docs/FORMAT.md §6: the envelope is outside the MAC). Data objects are never read or written.
 *
 * Resumable and idempotent: a manifest whose envelope already names the target key is skipped, and
 * each manifest is replaced by one atomic PUT, so a run that crashed or failed half-way leaves every
 * manifest either as it was or rewrapped — both readable, because readers unwrap under the key the
 * envelope names — and a rerun finishes the rest.
 *
 * Before a manifest is written, the new envelope must open it: the new wrapped key is unwrapped and the
 * manifest's MAC verified under it. Against a concurrent writer the manifest is re-read and compared
 * byte for byte immediately before the PUT, and read back after it. Conditional writes (If-Match) are
 * not used: S3-compatible stores that do not implement them on PUT (the embedded upstream, older Ceph
 * RGW and MinIO, many others) ignore the header and write unconditionally, so the guard would only
 * seem to be there. What remains is the window of one round trip, and the only other writer of a
 * manifest is another rewrap (coffers are write-once): whichever envelope lands last wraps the same
 * data key for the same object, so a lost race costs a redundant rewrap, never data.
 */
import { openManifest, parseSealedManifest, replaceEnvelope } from '../format/manifest';
import { cofferKeyContext, decodeCofferKeyRecord, encodeCofferKeyRecord } from '../format/coffer-key';
import { IntegrityError } from '../format/integrity-error';
import { GatewayError } from '../errors/gateway-error';
import { isValidLocalKeyId } from '../keys/local-keyring';
import { encryptionContext } from '../store/coffer-context';
import { isNotFound, type UploadStore } from '../store/ports';
import { CONFIG_HELP, CONFIG_OPTION, HELP_OPTION, UsageError, parseCommandArgs, required } from './args';
import { CliError, describeError, loadCliConfig, openAnyCoffer, openClasses, type OpenedCoffer } from './cli-coffer';
import { EXIT_FAILURE, EXIT_OK, type CliIo } from './cli-io';
import { createProgress } from './progress';

export const REWRAP_HELP = `Usage: coffer-gateway rewrap -c <config> --coffer <name> --to-key <key id> [--prefix <p>] [--dry-run]
       coffer-gateway rewrap -c <config> --class <class> --to-key <key id> [--prefix <p>] [--dry-run]

Key rotation: rewraps the data key of every object under the prefix to another key-encryption key and
writes each manifest back with only its key envelope replaced, and rewraps the coffer key (which seals
listing summaries) the same way. Data objects are not touched. Only the key-encryption key rotates:
data keys stay the same, so an old envelope someone kept still opens under the old key until that key
is disabled. Objects
already under the target key are skipped, so an interrupted or failed run is finished by running it
again. First add the new key's ARN to the coffer's kms.previousKeyIds (the gateway unwraps only under
configured keys); afterwards set kms.keyId to the new key, so new objects use it too, and keep the old
key in kms.previousKeyIds until a run reports nothing left under it.

Coffers created at run time (PUT Coffer) use their class's key: --class rotates every coffer created
in the class (each one's objects and coffer key, under its current generation) and then the class key
(<base prefix>_registry/k/coffer-key, which seals the registrations). Trust the new key in the class's
coffer.kms.previousKeyIds first and set its coffer.kms.keyId afterwards, as for a configured coffer.

Options:
${CONFIG_HELP}
      --coffer <name>       The coffer, as configured under \`coffers\`, or one created in a coffer class.
      --class <class>       Every coffer created in this class (\`cofferClasses\`), and the class key.
      --to-key <key id>     The new key: a KMS key id, key ARN, alias or alias ARN (kms.type aws-kms;
                            the role needs kms:ReEncryptFrom on the old and kms:ReEncryptTo and
                            kms:Decrypt on the new key), or a keyring key id (kms.type local).
      --prefix <p>          Only objects whose keys start with <p>. Default: all.
      --dry-run             Report what would change; write nothing and make no KMS calls that wrap.
      --concurrency <n>     Manifests processed at once (1..64). Default: 4.
  -h, --help                Show this help.

A progress bar is drawn on stderr when stderr is a terminal; a summary is printed at the end.
Exit code 0 only if no object failed.
`;

const OPTIONS = {
  ...CONFIG_OPTION,
  ...HELP_OPTION,
  coffer: { type: 'string' },
  class: { type: 'string' },
  'to-key': { type: 'string' },
  prefix: { type: 'string' },
  'dry-run': { type: 'boolean' },
  concurrency: { type: 'string' },
} as const;

export type RewrapOutcome = { kind: 'rewrapped' } | { kind: 'skipped' } | { kind: 'would-rewrap'; from: string } | { kind: 'gone' } | { kind: 'failed'; reason: string };

/** Raised for a manifest that cannot be rewrapped; reported and counted, the run goes on. */
export class ObjectFailure extends Error {}

async function readManifest(store: UploadStore, upstreamKey: string): Promise<Buffer | undefined> {
  let object;
  try {
    object = await store.getObject(upstreamKey);
  } catch (error) {
    if (isNotFound(error)) return undefined;
    throw error;
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of object.body) {
    size += (chunk as Buffer).length;
    // A manifest is at most ~700 KB (16 KiB envelope, 64 KiB attributes, 10000 × 68-byte parts).
    if (size > 4 * 1024 * 1024) {
      object.body.destroy();
      throw new ObjectFailure('the manifest object is larger than any manifest can be');
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

/** Rewraps one object's manifest (or says what it would do); exported for the concurrency tests. */
export async function rewrapManifest(opened: OpenedCoffer, store: UploadStore, key: string, target: string, dryRun: boolean): Promise<RewrapOutcome> {
  const upstreamKey = opened.layout.manifest(key);
  const original = await readManifest(store, upstreamKey);
  if (original === undefined) return { kind: 'gone' };
  const envelope = parseSealedManifest(original).envelope;
  if (envelope.provider !== opened.keys.name) {
    throw new ObjectFailure(`its data key is sealed by ${envelope.provider}, but the coffer uses ${opened.keys.name}`);
  }
  // Rebuilt from the names, never taken from the envelope (docs/FORMAT.md §6).
  const context = encryptionContext(opened.name, key);
  // "Already done" only when the envelope's wrapped key really opens this manifest under the target:
  // the keyId is outside every MAC, so a rewritten keyId alone must not make rewrap skip an object.
  if (envelope.keyId === target) {
    if (await opensUnder(opened, original, key, envelope.wrappedKey, target)) return { kind: 'skipped' };
    throw new ObjectFailure('its envelope names the target key but does not open the manifest under it (altered envelope)');
  }
  if (dryRun) return { kind: 'would-rewrap', from: envelope.keyId };

  const next = await opened.keys.rewrapDataKey(envelope.wrappedKey, context, envelope.keyId, target);
  // The new envelope must open this very manifest before it may replace the old one.
  if (!(await opensUnder(opened, original, key, next.wrapped, next.keyId))) throw new ObjectFailure('the rewrapped data key does not open the manifest');
  const updated = replaceEnvelope(original, { provider: envelope.provider, keyId: next.keyId, wrappedKey: next.wrapped, context });

  const current = await readManifest(store, upstreamKey);
  if (current === undefined) return { kind: 'gone' };
  if (!current.equals(original)) {
    const theirs = parseSealedManifest(current).envelope;
    if (theirs.keyId === target && (await opensUnder(opened, current, key, theirs.wrappedKey, target))) return { kind: 'skipped' };
    throw new ObjectFailure('the manifest changed while it was being rewrapped; run again');
  }
  await store.putObject(upstreamKey, { body: updated });
  const after = await readManifest(store, upstreamKey);
  if (after === undefined || !after.equals(updated)) throw new ObjectFailure('the manifest was replaced by another writer right after the rewrap; run again to check it');
  return { kind: 'rewrapped' };
}

/**
 * Rewraps the coffer key record (`k/coffer-key`, context {coffer}) like a manifest's envelope: skipped
 * only when its wrapped key really unwraps under the target; otherwise re-sealed, checked to unwrap to
 * the same key, and written back. Absent (a coffer with no v2 write yet): nothing to do.
 */
export async function rewrapCofferKey(opened: OpenedCoffer, store: UploadStore, target: string, dryRun: boolean): Promise<RewrapOutcome> {
  const upstreamKey = opened.layout.cofferKey();
  const original = await readManifest(store, upstreamKey);
  if (original === undefined) return { kind: 'gone' };
  const envelope = decodeCofferKeyRecord(original);
  const context = cofferKeyContext(opened.name);
  const unwrap = async (wrapped: Buffer, keyId: string): Promise<Buffer | undefined> => {
    try {
      return await opened.keys.decryptDataKey(wrapped, context, keyId);
    } catch (error) {
      if (error instanceof GatewayError && error.reason === 'invalid-ciphertext') return undefined;
      throw error;
    }
  };
  if (envelope.keyId === target) {
    const current = await unwrap(envelope.wrappedKey, target);
    if (current === undefined) throw new ObjectFailure('the coffer key record names the target key but does not unwrap under it (altered)');
    current.fill(0);
    return { kind: 'skipped' };
  }
  if (dryRun) return { kind: 'would-rewrap', from: envelope.keyId };
  const next = await opened.keys.rewrapDataKey(envelope.wrappedKey, context, envelope.keyId, target);
  const [before, after] = [await unwrap(envelope.wrappedKey, envelope.keyId), await unwrap(next.wrapped, next.keyId)];
  try {
    if (before === undefined || after === undefined || !before.equals(after)) throw new ObjectFailure('the rewrapped coffer key does not unwrap to the same key');
  } finally {
    before?.fill(0);
    after?.fill(0);
  }
  const current = await readManifest(store, upstreamKey);
  if (current === undefined || !current.equals(original)) throw new ObjectFailure('the coffer key record changed while it was being rewrapped; run again');
  await store.putObject(upstreamKey, { body: encodeCofferKeyRecord({ ...envelope, keyId: next.keyId, wrappedKey: next.wrapped, context }) });
  return { kind: 'rewrapped' };
}

/** Whether `wrapped`, unwrapped under `keyId` for this coffer and key, authenticates `manifest` (v1 MAC or v2 AEAD). */
async function opensUnder(opened: OpenedCoffer, manifest: Buffer, key: string, wrapped: Buffer, keyId: string): Promise<boolean> {
  let dataKey: Buffer;
  try {
    dataKey = await opened.keys.decryptDataKey(wrapped, encryptionContext(opened.name, key), keyId);
  } catch (error) {
    if (error instanceof GatewayError && error.reason === 'invalid-ciphertext') return false;
    throw error;
  }
  try {
    openManifest(manifest, dataKey, { coffer: opened.name, key });
    return true;
  } catch (error) {
    if (error instanceof IntegrityError) return false;
    throw error;
  } finally {
    dataKey.fill(0);
  }
}

async function resolveTarget(opened: OpenedCoffer, toKey: string, dryRun: boolean): Promise<string> {
  if (opened.keys.name === 'local') {
    if (!isValidLocalKeyId(toKey)) throw new UsageError('--to-key is not a valid keyring key id (letters, digits, ".", "_", "-").');
    // A dry run must not create the key file (keyring.create would).
    return dryRun ? toKey : opened.keys.resolveKeyId(toKey);
  }
  // Envelopes record key ARNs (what KMS answers with); an alias or key id is resolved to compare.
  return opened.keys.resolveKeyId(toKey);
}

interface RewrapCounts {
  listed: number;
  rewrapped: number;
  skipped: number;
  wouldRewrap: number;
  gone: number;
  failed: number;
}

interface RewrapRun {
  readonly target: string;
  readonly dryRun: boolean;
  readonly prefix: string;
  readonly concurrency: number;
  readonly io: CliIo;
}

/** Writes a line below the progress bar (which is cleared first). */
type Report = (stream: 'stdout' | 'stderr', line: string) => void;

/**
 * One coffer, configured or created: every manifest under the prefix (a bounded pool fed page by
 * page), then its coffer key record. Prints the coffer's summary line; returns its counts.
 */
async function rewrapOneCoffer(opened: OpenedCoffer, run: RewrapRun): Promise<RewrapCounts> {
  const { target, dryRun, prefix, concurrency, io } = run;
  const store = opened.store();
  const counts: RewrapCounts = { listed: 0, rewrapped: 0, skipped: 0, wouldRewrap: 0, gone: 0, failed: 0 };
  const progress = createProgress(io.stderr, { label: dryRun ? 'rewrap (dry run)' : 'rewrap', unit: 'objects' });
  const report: Report = (stream, line) => {
    progress.done();
    io[stream].write(`${line}\n`);
  };

  const handle = async (key: string): Promise<void> => {
    let outcome: RewrapOutcome;
    try {
      outcome = await rewrapManifest(opened, store, key, target, dryRun);
    } catch (error) {
      outcome = { kind: 'failed', reason: error instanceof ObjectFailure ? error.message : describeError(error) };
    }
    switch (outcome.kind) {
      case 'rewrapped':
        counts.rewrapped += 1;
        break;
      case 'skipped':
        counts.skipped += 1;
        break;
      case 'gone':
        counts.gone += 1;
        break;
      case 'would-rewrap':
        counts.wouldRewrap += 1;
        report('stdout', `would rewrap ${key}: ${outcome.from} -> ${target}`);
        break;
      case 'failed':
        counts.failed += 1;
        report('stderr', `✗ ${key}: ${outcome.reason}`);
        break;
    }
    progress.advance(1);
  };

  // A bounded pool fed page by page: memory stays flat however many objects the prefix holds.
  const running = new Set<Promise<void>>();
  try {
    let token: string | undefined;
    do {
      const page = await store.listObjects(opened.layout.manifestPrefix(prefix), { continuationToken: token, maxKeys: 1000 });
      counts.listed += page.objects.length;
      progress.total = counts.listed;
      for (const object of page.objects) {
        const key = opened.layout.keyOfManifest(object.key);
        if (key === undefined) continue;
        const task = handle(key).finally(() => running.delete(task));
        running.add(task);
        if (running.size >= concurrency) await Promise.race(running);
      }
      token = page.isTruncated ? page.nextContinuationToken : undefined;
    } while (token !== undefined);
  } finally {
    // Also when the listing failed: no manifest write may still be in flight when the clients close.
    await Promise.all(running);
    progress.done();
  }

  // The coffer key (FORMAT §8.6) is wrapped under the key-encryption key too: rotate it with the objects,
  // or the coffer could neither list nor write once the old key is retired. Not limited by --prefix.
  if (!(await rewrapRecordKey(opened, run, report, 'the coffer key'))) counts.failed += 1;

  const scope = `coffer ${opened.name}${opened.created === undefined ? '' : ` (class ${opened.created.class}, generation ${opened.created.generation})`}${prefix === '' ? '' : ` (prefix ${JSON.stringify(prefix)})`}`;
  const gone = counts.gone === 0 ? '' : `, ${counts.gone} gone before they were read`;
  if (dryRun) {
    io.stdout.write(`rewrap dry run, ${scope}, to ${target}: ${counts.listed} objects, ${counts.wouldRewrap} would be rewrapped, ${counts.skipped} already under the target key, ${counts.failed} failed${gone}. Nothing was changed.\n`);
  } else {
    io.stdout.write(`rewrap, ${scope}, to ${target}: ${counts.listed} objects, ${counts.rewrapped} rewrapped, ${counts.skipped} already under the target key, ${counts.failed} failed${gone}.\n`);
  }
  return counts;
}

/** A coffer key record (a coffer's, or a class's class key): rewrapped, reported; false when it failed. */
async function rewrapRecordKey(opened: OpenedCoffer, run: RewrapRun, report: Report, what: string): Promise<boolean> {
  let outcome: RewrapOutcome;
  try {
    outcome = await rewrapCofferKey(opened, opened.store(), run.target, run.dryRun);
  } catch (error) {
    outcome = { kind: 'failed', reason: error instanceof ObjectFailure ? error.message : describeError(error) };
  }
  if (outcome.kind === 'failed') report('stderr', `✗ ${what} (${opened.layout.cofferKey()}): ${outcome.reason}`);
  else if (outcome.kind === 'would-rewrap') report('stdout', `would rewrap ${what}: ${outcome.from} -> ${run.target}`);
  else if (outcome.kind === 'rewrapped') report('stdout', `rewrapped ${what} to ${run.target}`);
  return outcome.kind !== 'failed';
}

/** The target key, resolved with the keys of the coffer (or class) being rotated; a key that cannot be used is the operator's error. */
async function targetKey(opened: OpenedCoffer, toKey: string, dryRun: boolean): Promise<string> {
  try {
    return await resolveTarget(opened, toKey, dryRun);
  } catch (error) {
    if (error instanceof GatewayError) throw new CliError(`the target key ${toKey} cannot be used: ${describeError(error)}`);
    throw error;
  } finally {
    opened.close();
  }
}

export async function rewrapCommand(args: readonly string[], io: CliIo): Promise<number> {
  const values = parseCommandArgs('rewrap', args, OPTIONS);
  if (values.help === true) {
    io.stdout.write(REWRAP_HELP);
    return EXIT_OK;
  }
  if ((values.coffer === undefined) === (values.class === undefined)) throw new UsageError('give either --coffer or --class.\nRun `coffer-gateway rewrap --help` for the options.');
  const toKey = required(values['to-key'], 'to-key', 'rewrap');
  const dryRun = values['dry-run'] === true;
  const prefix = values.prefix ?? '';
  const concurrency = values.concurrency === undefined ? 4 : Number(values.concurrency);
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 64) throw new UsageError('--concurrency must be an integer from 1 to 64.');
  const config = loadCliConfig(values.config, io);
  const retry = (failed: number): void => {
    if (!dryRun && failed > 0) io.stdout.write('Run the same command again to retry the failed objects; rewrapped ones are skipped.\n');
  };

  if (values.coffer !== undefined) {
    const cofferName = values.coffer;
    const target = await targetKey(await openAnyCoffer(config, cofferName, SESSION), toKey, dryRun);
    // Reads trust only configured keys (kms.previousKeyIds); this run must also unwrap under its target to verify each rewrite.
    const opened = await openAnyCoffer(config, cofferName, SESSION, { trustKeyIds: [target] });
    try {
      const counts = await rewrapOneCoffer(opened, { target, dryRun, prefix, concurrency, io });
      retry(counts.failed);
      return counts.failed === 0 ? EXIT_OK : EXIT_FAILURE;
    } finally {
      opened.close();
    }
  }

  // --class: every coffer created in the class (each one's objects and coffer key), then the class key.
  const className = values.class as string;
  const resolving = openClasses(config, SESSION);
  let target: string;
  try {
    target = await targetKey(resolving.openRegistry(resolving.cofferClass(className)), toKey, dryRun);
  } finally {
    resolving.close();
  }
  const classes = openClasses(config, SESSION, { trustKeyIds: [target] });
  try {
    const cofferClass = classes.cofferClass(className);
    const run: RewrapRun = { target, dryRun, prefix, concurrency, io };
    const report: Report = (stream, line) => io[stream].write(`${line}\n`);
    const total: RewrapCounts = { listed: 0, rewrapped: 0, skipped: 0, wouldRewrap: 0, gone: 0, failed: 0 };
    const { created, rejected } = await classes.list(cofferClass);
    // A registration that does not open names no coffer this run may touch: reported, counted, left alone.
    for (const { coffer, error } of rejected) report('stderr', `✗ coffer ${coffer}: its registration was refused, not rewrapped: ${describeError(error)}`);
    for (const one of created) {
      const opened = classes.open(one);
      try {
        const counts = await rewrapOneCoffer(opened, run);
        for (const field of Object.keys(total) as Array<keyof RewrapCounts>) total[field] += counts[field];
      } catch (error) {
        // The coffer's listing failed: the others still rotate (a rerun finishes this one).
        total.failed += 1;
        report('stderr', `✗ coffer ${one.registration.coffer}: ${describeError(error)}`);
      } finally {
        opened.close();
      }
    }
    // The class key seals every registration: retiring the old key without it would lose the class's coffers.
    const registry = classes.openRegistry(cofferClass);
    let classKeyOk: boolean;
    try {
      classKeyOk = await rewrapRecordKey(registry, run, report, `the class key of ${cofferClass.name}`);
    } finally {
      registry.close();
    }
    const failed = total.failed + rejected.length + (classKeyOk ? 0 : 1);
    const done = dryRun ? `${total.wouldRewrap} would be rewrapped` : `${total.rewrapped} rewrapped`;
    io.stdout.write(
      `rewrap${dryRun ? ' dry run' : ''}, class ${cofferClass.name}, to ${target}: ${created.length} coffers (${rejected.length} refused), ${total.listed} objects, ${done}, ${total.skipped} already under the target key, ${failed} failed.${dryRun ? ' Nothing was changed.' : ''}\n`,
    );
    retry(failed);
    return failed === 0 ? EXIT_OK : EXIT_FAILURE;
  } finally {
    classes.close();
  }
}

const SESSION = 'coffer-gateway-rewrap';
