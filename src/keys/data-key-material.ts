/**
 * A plaintext data key held as a material object (as the AWS Encryption SDK and MinIO do): the one
 * owner of the key bytes, which zeroes them on `dispose()` and refuses every use afterwards. Stages
 * hand the object around — a prepared part, an object's head — instead of a raw Buffer with a
 * "caller must zero" comment, and whoever ends the key's use (the operation's `release`, a service's
 * `finally`) disposes it; a second dispose is harmless, a use after it throws instead of encrypting
 * under a zeroed key.
 *
 * `bytes` is for the crypto calls that need the key for the length of one synchronous call (key
 * derivation, a cipher's construction); do not keep the reference. Zeroing is best effort: the
 * garbage collector or a crypto library may already hold a copy.
 */
import { inspect } from 'node:util';
import { GatewayError } from '../errors/gateway-error';

export class DataKeyMaterial {
  #bytes: Buffer | undefined;

  /** Takes ownership of `bytes` (a fresh buffer from the key provider): they are zeroed on dispose. */
  constructor(bytes: Buffer) {
    this.#bytes = bytes;
  }

  /** The key bytes; throws once disposed. */
  get bytes(): Buffer {
    if (this.#bytes === undefined) throw new GatewayError('InternalError', 'A data key was used after it was disposed.');
    return this.#bytes;
  }

  get disposed(): boolean {
    return this.#bytes === undefined;
  }

  /** Zeroes the key bytes and refuses every later use. Idempotent. */
  dispose(): void {
    this.#bytes?.fill(0);
    this.#bytes = undefined;
  }

  /** Never serialised, whatever logs or errors it ends up in. */
  toJSON(): string {
    return '[data key]';
  }

  [inspect.custom](): string {
    return `DataKeyMaterial(${this.disposed ? 'disposed' : 'live'})`;
  }
}
