/**
 * SecretId → SecretKey + grants. The COS authenticator depends only on `CredentialStore`, so tests
 * pass a plain object and a later store (a secrets manager, a file watched for rotation) can replace
 * the in-memory one without touching verification.
 */
import { type Grant, validateGrants } from './principal';

export interface CosCredential {
  readonly secretId: string;
  /** Non-enumerable on records made here, so JSON.stringify / console.log of a record omit it. */
  readonly secretKey: string;
  readonly grants: readonly Grant[];
  /** The one coffer key-only (`/<Key>`) path-style COS signatures of this key may address (see cos-authenticator.ts). */
  readonly keyOnlyPathCoffer?: string;
}

export interface CredentialStore {
  /** undefined for an unknown SecretId. Async so a remote store fits the same interface. */
  lookup(secretId: string): Promise<CosCredential | undefined>;
}

/** Configuration shape, already loaded and parsed by the config stage. */
export interface CredentialConfig {
  readonly secretId: string;
  readonly secretKey: string;
  readonly grants: readonly Grant[];
  readonly keyOnlyPathCoffer?: string;
}

const SECRET_ID = /^[A-Za-z0-9_.-]{1,128}$/;

/**
 * Builds a frozen credential whose secretKey cannot leak through logging or serialisation by accident
 * (a config dump, an error that carries the record, a debug print of the store).
 */
function toCredential(config: CredentialConfig, where: string): CosCredential {
  const record = { secretId: config.secretId, grants: validateGrants(config.grants, where), ...(config.keyOnlyPathCoffer === undefined ? {} : { keyOnlyPathCoffer: config.keyOnlyPathCoffer }) };
  Object.defineProperty(record, 'secretKey', { value: config.secretKey, enumerable: false });
  return Object.freeze(record) as CosCredential;
}

export class InMemoryCredentialStore implements CredentialStore {
  readonly #credentials = new Map<string, CosCredential>();

  /** Throws (at start-up) on a malformed entry or a repeated SecretId, never printing a SecretKey. */
  constructor(entries: readonly CredentialConfig[]) {
    entries.forEach((entry, index) => {
      const where = `credentials[${index}]`;
      if (typeof entry.secretId !== 'string' || !SECRET_ID.test(entry.secretId)) {
        throw new Error(`${where}.secretId must match ${SECRET_ID.source}`);
      }
      if (typeof entry.secretKey !== 'string' || entry.secretKey.length < 16) {
        throw new Error(`${where}.secretKey must be a string of at least 16 characters`);
      }
      if (this.#credentials.has(entry.secretId)) throw new Error(`${where}.secretId is configured twice`);
      this.#credentials.set(entry.secretId, toCredential(entry, where));
    });
  }

  async lookup(secretId: string): Promise<CosCredential | undefined> {
    return this.#credentials.get(secretId);
  }

  get size(): number {
    return this.#credentials.size;
  }
}
