import { GatewayError } from '../errors/gateway-error';
import { IntegrityError } from '../format/integrity-error';
import type { KeyEnvelope } from '../format/manifest';
import { DataKeyMaterial } from '../keys/data-key-material';
import { encryptionContext, type CofferContext } from './coffer-context';

/**
 * Unwraps a stored envelope's data key for `key` in this coffer. The encryption context is rebuilt
 * from the coffer and key being served, never taken from the envelope (FORMAT §6). A wrapped key the
 * key service rejects as not matching (KMS InvalidCiphertextException, a keyring AEAD failure) is a
 * record moved from another key or replaced: stored data that fails authentication, reported as such.
 * Other key-service failures (denied, throttled, unreachable) stay KMSFailed. The caller owns (and
 * disposes) the returned material.
 */
export async function unwrapEnvelope(context: CofferContext, key: string, envelope: KeyEnvelope): Promise<DataKeyMaterial> {
  try {
    return new DataKeyMaterial(await context.keys.decryptDataKey(envelope.wrappedKey, encryptionContext(context.coffer, key), envelope.keyId));
  } catch (error) {
    if (error instanceof GatewayError && error.code === 'KMSFailed' && error.reason === 'invalid-ciphertext') {
      throw new IntegrityError('envelope-rejected', 'a stored wrapped data key does not unwrap for this coffer and key');
    }
    throw error;
  }
}
