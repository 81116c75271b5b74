/**
 * Coffers are write-once (cdcs-api.md): an object key is created at most once. Two mechanisms, both
 * needed:
 * - a check before any byte is accepted (`assertWritable`), so a client that would lose the race
 *   anyway is refused before it sends gigabytes — and before `Expect: 100-continue` is answered;
 * - an atomic create of the manifest (`commitManifest`, S3 `If-None-Match: *`), which is what
 *   decides a race between two uploads that both passed the check, on any number of replicas; what
 *   a 412 found is verified before it decides anything (`classifyStoredManifest`).
 */
import { GatewayError } from '../errors/gateway-error';
import { IntegrityError } from '../format/integrity-error';
import { openListingSummary, sealListingSummary } from '../format/listing-summary';
import { MANIFEST_V1, objectEtag, openManifest, parseSealedManifest, peekManifestV1, sealManifest, type KeyEnvelope, type ObjectManifest } from '../format/manifest';
import { isExpiredIn } from './coffer-lifecycle';
import { cofferKey } from './coffer-key';
import { unwrapEnvelope } from './unwrap-envelope';
import { isMutable, type CofferContext } from './coffer-context';
import { isNotFound, isPreconditionFailed } from './ports';
import { readSmallObject } from './read-small-object';

/** An existing live object or an open upload of the same key → 409 ObjectAlreadyExists. An expired object does not count (lifecycle); nothing to check in a coffer that allows overwrite. */
export async function assertWritable(context: CofferContext, key: string): Promise<void> {
  if (isMutable(context)) return;
  const [existing, open] = await Promise.all([context.store.headObject(context.layout.manifest(key)), context.store.listObjects(context.layout.uploadRecordsOf(key), { delimiter: '/', maxKeys: 1 })]);
  if (existing !== undefined && !(await storedManifestExpired(context, key))) throw new GatewayError('ObjectAlreadyExists', 'An object with this key exists; coffers are write-once.');
  if (open.objects.length > 0) throw new GatewayError('ObjectAlreadyExists', 'An upload of this key is in progress; coffers are write-once.');
}

/**
 * Seals and creates the manifest — the step that makes the object exist. The listing summary is sealed
 * under the coffer key (created on the coffer's first write). A 412 means the key already holds a
 * manifest: see {@link classifyStoredManifest} for what each kind of stored manifest means.
 *
 * In a coffer that allows overwrite the manifest is written unconditionally: the last Complete or
 * PutObject wins, as in S3. The replaced object's data object is then named by no manifest and is
 * removed by `coffer-gateway gc` after its minimum age — not here, because a GET that read the old
 * manifest a moment ago may still be streaming that data object.
 */
export async function commitManifest(context: CofferContext, key: string, manifest: ObjectManifest, envelope: KeyEnvelope, dataKey: Buffer): Promise<void> {
  const listingKey = (await cofferKey(context, { create: true })) as Buffer;
  let sealed: Buffer;
  try {
    const summary = sealListingSummary(listingKey, context.coffer, key, manifest.objectId, { size: manifest.plaintextSize, etag: objectEtag(manifest), created: manifest.attributes.created });
    sealed = sealManifest(manifest, envelope, dataKey, { coffer: context.coffer, key }, summary);
  } finally {
    listingKey.fill(0);
  }
  for (let attempt = 1; ; attempt += 1) {
    try {
      await context.store.putObject(context.layout.manifest(key), { body: sealed }, { createOnly: !isMutable(context) });
      return;
    } catch (error) {
      if (!isPreconditionFailed(error)) throw error;
      const stored = await classifyStoredManifest(context, key, manifest.objectId, dataKey);
      if (stored.kind === 'ours') return;
      if (stored.kind === 'absent') throw error; // created and gone again (expired): report the upstream's answer
      // Write-once holds for live objects only: an expired object the upstream has not removed yet is
      // removed here (its manifest, then its data object) and the create is tried again.
      if (attempt < EXPIRED_REPLACE_ATTEMPTS && (await isExpiredIn(context, stored.manifest.attributes.created))) {
        await context.store.deleteObjects([context.layout.manifest(key)]);
        await context.store.deleteObjects([context.layout.data(key, stored.manifest.objectId.toString('hex'))]).catch(() => undefined);
        continue;
      }
      throw new GatewayError('ObjectAlreadyExists', 'Another upload created this key first; coffers are write-once.', { reason: 'lost-create-race' });
    }
  }
}

/** Creates tried while an expired manifest holds the key (each attempt removes the one it found). */
const EXPIRED_REPLACE_ATTEMPTS = 3;

/**
 * Whether the manifest stored at `key` belongs to an expired object, judged by its authenticated
 * completion time: the listing summary (v2, sealed under the coffer key, no data-key unwrap) or the
 * v1 manifest's own field. A manifest that cannot be judged counts as live (the key stays refused).
 */
async function storedManifestExpired(context: CofferContext, key: string): Promise<boolean> {
  if (context.expiry === undefined) return false;
  let bytes: Buffer;
  try {
    bytes = await readSmallObject((await context.store.getObject(context.layout.manifest(key))).body);
  } catch (error) {
    if (isNotFound(error)) return true; // gone since the HEAD: expired and removed
    throw error;
  }
  let created: string;
  try {
    const sealed = parseSealedManifest(bytes);
    if (sealed.version === MANIFEST_V1) created = peekManifestV1(bytes).attributes.created;
    else {
      const listingKey = await cofferKey(context, { create: false });
      if (listingKey === undefined) return false;
      try {
        created = openListingSummary(listingKey, context.coffer, key, sealed.objectId, sealed.summary).created;
      } finally {
        listingKey.fill(0);
      }
    }
  } catch (error) {
    if (error instanceof IntegrityError) return false;
    throw error;
  }
  return isExpiredIn(context, created);
}

export type StoredManifestKind = { readonly kind: 'absent' } | { readonly kind: 'ours'; readonly manifest: ObjectManifest } | { readonly kind: 'theirs'; readonly manifest: ObjectManifest };

/**
 * What the manifest stored at `key` is, to an upload with object id `objectId` and data key `dataKey`:
 * - `ours`: it opens under our data key and names our object id — our own earlier attempt (a retry);
 * - `theirs`: it opens under the data key its own envelope wraps (unwrapped for this coffer and key):
 *   another upload won the key;
 * - anything else (planted, altered, undecodable) is an IntegrityError: the key is blocked by a
 *   manifest nobody can read. Never a 200 for it (the object could never be read) and never
 *   ObjectAlreadyExists (no object exists); the caller keeps its upload so a retry can complete once
 *   the bucket is repaired.
 * The object id in the clear is never trusted on its own (FORMAT §8, finding 4 of issue 11).
 */
export async function classifyStoredManifest(context: CofferContext, key: string, objectId: Buffer, dataKey: Buffer): Promise<StoredManifestKind> {
  let bytes: Buffer;
  try {
    bytes = await readSmallObject((await context.store.getObject(context.layout.manifest(key))).body);
  } catch (error) {
    if (isNotFound(error)) return { kind: 'absent' };
    throw error;
  }
  const place = { coffer: context.coffer, key };
  let sealed;
  try {
    sealed = parseSealedManifest(bytes);
  } catch (error) {
    throw new IntegrityError('manifest-conflict', `the key holds a manifest that does not parse: ${(error as Error).message}`);
  }
  if (sealed.objectId.equals(objectId)) {
    try {
      return { kind: 'ours', manifest: openManifest(bytes, dataKey, place) };
    } catch {
      throw new IntegrityError('manifest-conflict', 'the key holds a manifest naming this upload that fails authentication');
    }
  }
  const theirKey = await unwrapEnvelope(context, key, sealed.envelope).catch((error: unknown) => {
    if (error instanceof IntegrityError) throw new IntegrityError('manifest-conflict', 'the key holds a manifest whose data key does not unwrap for it');
    throw error;
  });
  try {
    return { kind: 'theirs', manifest: openManifest(bytes, theirKey.bytes, place) };
  } catch {
    throw new IntegrityError('manifest-conflict', 'the key holds a manifest that fails authentication');
  } finally {
    theirKey.dispose();
  }
}
