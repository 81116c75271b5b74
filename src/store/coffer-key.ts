/**
 * Finds (or, for writers, creates) the coffer key (FORMAT §8.6) and unwraps it. The stored record is
 * immutable once created, so its envelope is cached per coffer; the unwrap goes through the key
 * provider, whose data-key cache makes it one KMS call per coffer while the entry lives.
 */
import { GatewayError } from '../errors/gateway-error';
import { IntegrityError } from '../format/integrity-error';
import { cofferKeyContext, decodeCofferKeyRecord, encodeCofferKeyRecord } from '../format/coffer-key';
import type { KeyEnvelope } from '../format/manifest';
import type { CofferContext } from './coffer-context';
import { isNotFound, isPreconditionFailed } from './ports';
import { readSmallObject } from './read-small-object';

/** Per coffer context (the registry keeps one per coffer and session), so nothing leaks between stores. */
const envelopes = new WeakMap<CofferContext, KeyEnvelope>();

async function readEnvelope(context: CofferContext): Promise<KeyEnvelope | undefined> {
  try {
    return decodeCofferKeyRecord(await readSmallObject((await context.store.getObject(context.layout.cofferKey())).body, 64 * 1024));
  } catch (error) {
    if (isNotFound(error)) return undefined;
    throw error;
  }
}

/**
 * The coffer key's plaintext (caller zeroes it), or undefined when the coffer has none yet and
 * `create` is false (readers: only v2 manifests need it, and they exist only after it was created).
 */
export async function cofferKey(context: CofferContext, options: { create: boolean }): Promise<Buffer | undefined> {
  let envelope = envelopes.get(context) ?? (await readEnvelope(context));
  if (envelope === undefined) {
    if (!options.create) return undefined;
    const generated = await context.keys.generateDataKey(cofferKeyContext(context.coffer));
    generated.plaintext.fill(0); // the stored record decides, below: ours or the one another replica created first
    const mine: KeyEnvelope = { provider: context.keys.name, keyId: generated.keyId, wrappedKey: generated.wrapped, context: cofferKeyContext(context.coffer) };
    try {
      await context.store.putObject(context.layout.cofferKey(), { body: encodeCofferKeyRecord(mine) }, { createOnly: true });
      envelope = mine;
    } catch (error) {
      if (!isPreconditionFailed(error)) throw error;
      envelope = await readEnvelope(context);
      if (envelope === undefined) throw error;
    }
  }
  let plaintext: Buffer;
  try {
    plaintext = await context.keys.decryptDataKey(envelope.wrappedKey, cofferKeyContext(context.coffer), envelope.keyId);
  } catch (error) {
    if (error instanceof GatewayError && error.code === 'KMSFailed' && error.reason === 'invalid-ciphertext') {
      throw new IntegrityError('coffer-key-rejected', 'the coffer key record does not unwrap for this coffer');
    }
    throw error;
  }
  envelopes.set(context, envelope);
  return plaintext;
}
