/**
 * Coffers are write-once (cdcs-api.md): an object key is created at most once. Two mechanisms, both
 * needed:
 * - a check before any byte is accepted (`assertWritable`), so a client that would lose the race
 *   anyway is refused before it sends gigabytes — and before `Expect: 100-continue` is answered;
 * - an atomic create of the manifest (`commitManifest`, S3 `If-None-Match: *`), which is what
 *   decides a race between two uploads that both passed the check, on any number of replicas.
 */
import { GatewayError } from '../errors/gateway-error';
import { peekManifest, sealManifest, type KeyEnvelope, type ObjectManifest } from '../format/manifest';
import type { CofferContext } from './coffer-context';
import { isNotFound, isPreconditionFailed } from './ports';
import { readSmallObject } from './read-small-object';

/** An existing object or an open upload of the same key → 409 ObjectAlreadyExists. */
export async function assertWritable(context: CofferContext, key: string): Promise<void> {
  const [existing, open] = await Promise.all([
    context.store.headObject(context.layout.manifest(key)),
    context.store.listObjects(context.layout.uploadRecordsOf(key), { delimiter: '/', maxKeys: 1 }),
  ]);
  if (existing !== undefined) throw new GatewayError('ObjectAlreadyExists', 'An object with this key exists; coffers are write-once.');
  if (open.objects.length > 0) throw new GatewayError('ObjectAlreadyExists', 'An upload of this key is in progress; coffers are write-once.');
}

/**
 * Seals and creates the manifest — the step that makes the object exist. A 412 means another upload
 * created the key first (→ ObjectAlreadyExists), unless the stored manifest names our object id (128
 * random bits, one per upload): then it is ours, written by a retried request whose first attempt landed.
 */
export async function commitManifest(context: CofferContext, key: string, manifest: ObjectManifest, envelope: KeyEnvelope, dataKey: Buffer): Promise<void> {
  const sealed = sealManifest(manifest, envelope, dataKey);
  try {
    await context.store.putObject(context.layout.manifest(key), { body: sealed }, { createOnly: true });
  } catch (error) {
    if (!isPreconditionFailed(error)) throw error;
    if (await storedManifestIsFor(context, key, manifest.objectId)) return;
    throw new GatewayError('ObjectAlreadyExists', 'Another upload created this key first; coffers are write-once.', { reason: 'lost-create-race' });
  }
}

async function storedManifestIsFor(context: CofferContext, key: string, objectId: Buffer): Promise<boolean> {
  return (await readStoredManifest(context, key))?.objectId.equals(objectId) === true;
}

/**
 * The stored manifest of `key` decoded WITHOUT its MAC (see peekManifest): only to recognise an
 * upload's own manifest by its object id. Undefined when absent or not decodable.
 */
export async function readStoredManifest(context: CofferContext, key: string): Promise<ObjectManifest | undefined> {
  let bytes: Buffer;
  try {
    bytes = await readSmallObject((await context.store.getObject(context.layout.manifest(key))).body);
  } catch (error) {
    if (isNotFound(error)) return undefined;
    throw error;
  }
  try {
    return peekManifest(bytes);
  } catch {
    return undefined;
  }
}
