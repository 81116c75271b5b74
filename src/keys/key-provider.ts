/**
 * The keys port: everything above this line (upload/download stages, the data-key cache) sees data keys
 * only through this interface, so unit tests can hand in a plain object and the embedded default
 * (`local`) and AWS KMS (`aws-kms`) stay interchangeable.
 */

/**
 * Non-secret name/value pairs bound to a wrapped data key (AAD for the local keyring, the KMS
 * EncryptionContext for AWS). Unwrapping succeeds only with exactly the same pairs (order irrelevant).
 */
export type EncryptionContext = Readonly<Record<string, string>>;

export interface DataKey {
  /**
   * 32-byte AES-256 key, a fresh buffer. The store wraps it at once in a DataKeyMaterial
   * (data-key-material.ts), which zeroes it on dispose. Never log it or put it in an error message.
   */
  plaintext: Buffer;
  /** The data key sealed under the master key; non-secret, stored next to the ciphertext. */
  wrapped: Buffer;
  /** Identifier of the master key that sealed it (KMS key ARN, or the local keyring's key id). */
  keyId: string;
}

export interface KeyProvider {
  readonly name: 'aws-kms' | 'local';
  /** Creates a fresh random data key sealed under the provider's current master key and bound to `context`. */
  generateDataKey(context: EncryptionContext): Promise<DataKey>;
  /**
   * Unseals `wrapped` (as produced by generateDataKey) if `context` matches; the result is a fresh buffer the
   * caller owns. Failures are GatewayError('KMSFailed') with a reason such as `invalid-ciphertext`.
   *
   * `keyId` is the master key the envelope says sealed `wrapped` (the manifest's or upload record's
   * `keyId`). Pass it: after a rewrap (key rotation) objects are sealed under a key other than the one
   * the coffer is configured with, and a provider that assumed its configured key would refuse them.
   * Absent: the provider's configured key.
   */
  decryptDataKey(wrapped: Buffer, context: EncryptionContext, keyId?: string): Promise<Buffer>;
}

export interface RewrappedKey {
  readonly wrapped: Buffer;
  /** The master key that now seals it, as envelopes record it (KMS: the key ARN). */
  readonly keyId: string;
}

/**
 * Key rotation (`coffer-gateway rewrap`): re-seal an existing wrapped data key under another master key
 * with the same encryption context. Only the command line uses it; the data path never rewraps.
 */
export interface KeyRewrapper {
  /** The canonical id envelopes record for `keyId` (KMS: the key ARN); fails if the key is unusable. */
  resolveKeyId(keyId: string): Promise<string>;
  rewrapDataKey(wrapped: Buffer, context: EncryptionContext, fromKeyId: string, toKeyId: string): Promise<RewrappedKey>;
}

/** Length in bytes of every data key this gateway uses (AES-256). */
export const DATA_KEY_BYTES = 32;
