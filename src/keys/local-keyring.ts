/**
 * The embedded default key provider: master keys are files on local disk and data keys are wrapped with
 * AES-256-GCM. Meant for single-node deployments and tests; production should use AWS KMS.
 *
 * Wrapped-key blob (documented format, byte for byte):
 *   "CGK1" (43 47 4B 31) ‖ u8 keyIdLength ‖ keyId (UTF-8, 1..255 bytes, [A-Za-z0-9._-])
 *   ‖ nonce (12) ‖ encrypted data key (32) ‖ GCM tag (16)
 * AAD = "CGK1" ‖ u8 keyIdLength ‖ keyId ‖ canonicalContext(context)
 *
 * The header is inside the AAD so a blob cannot be re-labelled to another key id; the context is inside
 * it so a data key unwraps only for the (coffer, object) it was made for.
 */
import { createCipheriv, createDecipheriv, randomBytes as cryptoRandomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { GatewayError } from '../errors/gateway-error';
import { canonicalContext } from './encryption-context';
import { DATA_KEY_BYTES, type DataKey, type EncryptionContext, type KeyProvider, type KeyRewrapper, type RewrappedKey } from './key-provider';

export { canonicalContext } from './encryption-context';

export const KEY_BLOB_MAGIC: Buffer = Buffer.from('CGK1', 'ascii');
export const KEY_BLOB_NONCE_BYTES = 12;
export const KEY_BLOB_TAG_BYTES = 16;
export const MASTER_KEY_BYTES = 32;
const KEY_ID_PATTERN = /^[A-Za-z0-9._-]{1,255}$/;

function kmsFailed(reason: string, message: string): GatewayError {
  return new GatewayError('KMSFailed', message, { reason });
}

/** Key ids are ASCII by construction, so the UTF-8 length equals the string length (1..255). */
export function isValidLocalKeyId(keyId: string): boolean {
  return KEY_ID_PATTERN.test(keyId);
}

function header(keyId: string): Buffer {
  if (!isValidLocalKeyId(keyId)) throw kmsFailed('invalid-key-id', 'The local key id is not valid.');
  const id = Buffer.from(keyId, 'utf8');
  return Buffer.concat([KEY_BLOB_MAGIC, Buffer.of(id.length), id]);
}

/** The AAD of a blob: header ‖ canonical context. Exported for test vectors. */
export function keyBlobAad(keyId: string, context: EncryptionContext): Buffer {
  return Buffer.concat([header(keyId), canonicalContext(context)]);
}

export interface WrapInput {
  readonly masterKey: Buffer;
  readonly keyId: string;
  readonly dataKey: Buffer;
  readonly context: EncryptionContext;
  /** Only for test vectors: production must use a fresh random nonce per wrap (the default). */
  readonly nonce?: Buffer;
}

/** Pure wrap: seals a 32-byte data key under a 32-byte master key. */
export function wrapDataKey(input: WrapInput): Buffer {
  if (input.masterKey.length !== MASTER_KEY_BYTES) throw kmsFailed('invalid-key-material', 'The master key must be 32 bytes.');
  if (input.dataKey.length !== DATA_KEY_BYTES) throw kmsFailed('invalid-request', 'The data key must be 32 bytes.');
  const nonce = input.nonce ?? cryptoRandomBytes(KEY_BLOB_NONCE_BYTES);
  if (nonce.length !== KEY_BLOB_NONCE_BYTES) throw kmsFailed('invalid-request', 'The nonce must be 12 bytes.');
  const head = header(input.keyId);
  const cipher = createCipheriv('aes-256-gcm', input.masterKey, nonce, { authTagLength: KEY_BLOB_TAG_BYTES });
  cipher.setAAD(Buffer.concat([head, canonicalContext(input.context)]));
  const encrypted = Buffer.concat([cipher.update(input.dataKey), cipher.final()]);
  return Buffer.concat([head, nonce, encrypted, cipher.getAuthTag()]);
}

export interface ParsedKeyBlob {
  readonly keyId: string;
  readonly nonce: Buffer;
  readonly encryptedKey: Buffer;
  readonly tag: Buffer;
}

/** Splits a blob into its fields; checks only structure (authenticity is checked by unwrapDataKey). */
export function parseKeyBlob(wrapped: Buffer): ParsedKeyBlob {
  const malformed = (): GatewayError => kmsFailed('invalid-ciphertext', 'The wrapped data key is malformed.');
  if (wrapped.length < KEY_BLOB_MAGIC.length + 1 || !wrapped.subarray(0, 4).equals(KEY_BLOB_MAGIC)) throw malformed();
  const idLength = wrapped[4] ?? 0;
  const expected = 5 + idLength + KEY_BLOB_NONCE_BYTES + DATA_KEY_BYTES + KEY_BLOB_TAG_BYTES;
  if (idLength === 0 || wrapped.length !== expected) throw malformed();
  const keyId = wrapped.subarray(5, 5 + idLength).toString('utf8');
  if (!isValidLocalKeyId(keyId) || Buffer.byteLength(keyId) !== idLength) throw malformed();
  let offset = 5 + idLength;
  const nonce = wrapped.subarray(offset, (offset += KEY_BLOB_NONCE_BYTES));
  const encryptedKey = wrapped.subarray(offset, (offset += DATA_KEY_BYTES));
  const tag = wrapped.subarray(offset, offset + KEY_BLOB_TAG_BYTES);
  return { keyId, nonce, encryptedKey, tag };
}

export interface UnwrapInput {
  readonly masterKey: Buffer;
  readonly wrapped: Buffer;
  readonly context: EncryptionContext;
}

/**
 * Pure unwrap. Wrong context, wrong master key and any tampering all surface as the same
 * `invalid-ciphertext` failure — like KMS, we do not tell an attacker which of them it was.
 */
export function unwrapDataKey(input: UnwrapInput): Buffer {
  const blob = parseKeyBlob(input.wrapped);
  if (input.masterKey.length !== MASTER_KEY_BYTES) throw kmsFailed('invalid-key-material', 'The master key must be 32 bytes.');
  const decipher = createDecipheriv('aes-256-gcm', input.masterKey, blob.nonce, { authTagLength: KEY_BLOB_TAG_BYTES });
  decipher.setAAD(keyBlobAad(blob.keyId, input.context));
  decipher.setAuthTag(blob.tag);
  const plaintext = decipher.update(blob.encryptedKey);
  try {
    decipher.final();
  } catch {
    plaintext.fill(0);
    throw kmsFailed('invalid-ciphertext', 'The wrapped data key does not match its key or encryption context.');
  }
  return plaintext;
}

export interface LocalKeyringOptions {
  /** Directory holding `<keyId>.key` files (base64 of 32 random bytes). Created 0700 when `create` is set. */
  readonly directory: string;
  /** Key id new data keys are wrapped under. Older ids stay usable for unwrapping while their file exists. */
  readonly keyId: string;
  /** Create the directory and the current key file on first use if missing (never for unwrap-only ids). */
  readonly create?: boolean;
  /** Injected for deterministic tests; defaults to node:crypto randomBytes. */
  readonly randomBytes?: (size: number) => Buffer;
  /** Wraps allowed per master key (default 2^32, the bound for random 96-bit GCM nonces); lower only in tests. */
  readonly wrapLimit?: number;
}

/**
 * Random 96-bit GCM nonces under one key: NIST SP 800-38D §8.3 bounds the invocations to 2^32, so the
 * chance of a repeated nonce (which would expose the GCM authentication key) stays below 2^-32.
 */
export const WRAP_LIMIT = 2 ** 32;
/** Wraps reserved (and counted) per line of `<keyId>.wraps`. */
export const WRAP_BLOCK = 1024;

export interface LocalKeyring extends KeyProvider, KeyRewrapper {
  readonly name: 'local';
  /** Zeroes the master keys held in memory and forgets them (they are re-read on next use). */
  dispose(): void;
  /** Wraps counted under `keyId` so far (an upper bound: whole reserved blocks, FORMAT §9). */
  wrapCount(keyId: string): Promise<number>;
}

function errnoCode(error: unknown): string | undefined {
  const code = typeof error === 'object' && error !== null ? (error as { code?: unknown }).code : undefined;
  return typeof code === 'string' ? code : undefined;
}

export function createLocalKeyring(options: LocalKeyringOptions): LocalKeyring {
  if (!isValidLocalKeyId(options.keyId)) throw kmsFailed('invalid-key-id', 'The local key id is not valid.');
  const random = options.randomBytes ?? cryptoRandomBytes;
  // One promise per key id: concurrent first uses read (or create) the file once.
  const loaded = new Map<string, Promise<Buffer>>();

  const fileFor = (keyId: string): string => path.join(options.directory, `${keyId}.key`);
  const wrapsFileFor = (keyId: string): string => path.join(options.directory, `${keyId}.wraps`);
  const wrapLimit = options.wrapLimit ?? WRAP_LIMIT;
  /** Per key id: wraps left in the block this process reserved, and the reservation in flight. */
  const blocks = new Map<string, { left: number; reserving: Promise<void> | undefined }>();

  async function wrapCount(keyId: string): Promise<number> {
    let text: string;
    try {
      text = await fs.readFile(wrapsFileFor(keyId), 'utf8');
    } catch (error) {
      if (errnoCode(error) === 'ENOENT') return 0;
      throw kmsFailed('unavailable', `The wrap count of '${keyId}' cannot be read (${errnoCode(error) ?? 'error'}).`);
    }
    return text.split('\n').reduce((sum, line) => sum + (Number(line.trim()) || 0), 0);
  }

  /**
   * Counts one wrap under `keyId` before it happens. Blocks of WRAP_BLOCK are reserved by appending a
   * line to `<keyId>.wraps` (O_APPEND: gateways sharing the directory never lose each other's counts);
   * a restart abandons the rest of its block, so the count only ever errs high. At the limit: refused.
   */
  async function countWrap(keyId: string): Promise<void> {
    let block = blocks.get(keyId);
    if (block === undefined) {
      block = { left: 0, reserving: undefined };
      blocks.set(keyId, block);
    }
    while (block.left === 0) {
      if (block.reserving === undefined) {
        const reserving = (async () => {
          const used = await wrapCount(keyId);
          if (used + WRAP_BLOCK > wrapLimit) {
            throw kmsFailed('wrap-limit', `The local key '${keyId}' has wrapped ${used} data keys, the limit for random GCM nonces under one key; rotate to a new keyring key id (docs/FORMAT.md §9).`);
          }
          try {
            await fs.appendFile(wrapsFileFor(keyId), `${WRAP_BLOCK}\n`, { mode: 0o600 });
          } catch (error) {
            throw kmsFailed('unavailable', `The wrap count of '${keyId}' cannot be written (${errnoCode(error) ?? 'error'}).`);
          }
          (block as { left: number }).left += WRAP_BLOCK;
        })();
        block.reserving = reserving;
        reserving.then(
          () => ((block as { reserving: unknown }).reserving = undefined),
          () => ((block as { reserving: unknown }).reserving = undefined),
        );
      }
      await block.reserving;
    }
    block.left -= 1;
  }

  async function readKeyFile(keyId: string): Promise<Buffer | undefined> {
    const file = fileFor(keyId);
    let handle: fs.FileHandle;
    try {
      handle = await fs.open(file, 'r');
    } catch (error) {
      if (errnoCode(error) === 'ENOENT') return undefined;
      throw kmsFailed('unavailable', `The local key file for '${keyId}' cannot be opened (${errnoCode(error) ?? 'error'}).`);
    }
    try {
      const stat = await handle.stat();
      // Like ssh with private keys: refuse keys other users could read, so a misconfigured volume is noticed.
      if ((stat.mode & 0o077) !== 0) {
        throw kmsFailed('insecure-key-file', `The local key file for '${keyId}' is accessible to group or others.`);
      }
      const text = (await handle.readFile('utf8')).trim();
      const key = Buffer.from(text, 'base64');
      if (key.length !== MASTER_KEY_BYTES || key.toString('base64') !== text) {
        key.fill(0);
        throw kmsFailed('invalid-key-material', `The local key file for '${keyId}' does not hold 32 base64-encoded bytes.`);
      }
      return key;
    } finally {
      await handle.close();
    }
  }

  async function createKeyFile(keyId: string): Promise<void> {
    await fs.mkdir(options.directory, { recursive: true, mode: 0o700 });
    const file = fileFor(keyId);
    // Write to a private temp file, then link(2) it into place: link fails with EEXIST instead of
    // overwriting, so two gateways starting at once agree on one key and nobody reads a half-written file.
    const temp = path.join(options.directory, `.${keyId}.${process.pid}.${random(6).toString('hex')}.tmp`);
    const material = random(MASTER_KEY_BYTES);
    try {
      const handle = await fs.open(temp, 'wx', 0o600);
      try {
        await handle.writeFile(`${material.toString('base64')}\n`);
        await handle.sync();
      } finally {
        await handle.close();
      }
      try {
        await fs.link(temp, file);
      } catch (error) {
        if (errnoCode(error) !== 'EEXIST') throw error;
      }
    } finally {
      material.fill(0);
      await fs.rm(temp, { force: true });
    }
  }

  async function load(keyId: string, create: boolean): Promise<Buffer> {
    let key = await readKeyFile(keyId);
    if (!key && create) {
      try {
        await createKeyFile(keyId);
      } catch (error) {
        if (error instanceof GatewayError) throw error;
        throw kmsFailed('unavailable', `The local key file for '${keyId}' cannot be created (${errnoCode(error) ?? 'error'}).`);
      }
      key = await readKeyFile(keyId);
    }
    if (!key) throw kmsFailed('key-not-found', `The local key '${keyId}' does not exist.`);
    return key;
  }

  function masterKey(keyId: string, create: boolean): Promise<Buffer> {
    let pending = loaded.get(keyId);
    if (!pending) {
      pending = load(keyId, create);
      loaded.set(keyId, pending);
      // Failures are not cached: the file may appear later (or the disk may come back).
      pending.catch(() => {
        if (loaded.get(keyId) === pending) loaded.delete(keyId);
      });
    }
    return pending;
  }

  const keyring: LocalKeyring = {
    name: 'local',
    async generateDataKey(context: EncryptionContext): Promise<DataKey> {
      const master = await masterKey(options.keyId, options.create === true);
      await countWrap(options.keyId);
      const plaintext = random(DATA_KEY_BYTES);
      const wrapped = wrapDataKey({ masterKey: master, keyId: options.keyId, dataKey: plaintext, context, nonce: random(KEY_BLOB_NONCE_BYTES) });
      return { plaintext, wrapped, keyId: options.keyId };
    },
    async decryptDataKey(wrapped: Buffer, context: EncryptionContext, keyId?: string): Promise<Buffer> {
      const blob = parseKeyBlob(wrapped);
      // The master key is chosen by the id inside the blob (authenticated as AAD), whatever this
      // keyring's current id is, so objects rewrapped to another key stay readable. An envelope that
      // names another key than its blob is inconsistent: refused like KMS's IncorrectKeyException.
      if (keyId !== undefined && keyId !== blob.keyId) throw kmsFailed('incorrect-key', 'The wrapped data key was not sealed under the key its envelope names.');
      // Unwrapping never creates a key: an unknown id means the blob is foreign or the key file was lost.
      const master = await masterKey(blob.keyId, false);
      return unwrapDataKey({ masterKey: master, wrapped, context });
    },
    async resolveKeyId(keyId: string): Promise<string> {
      if (!isValidLocalKeyId(keyId)) throw kmsFailed('invalid-key-id', 'The local key id is not valid.');
      // A rotation target is created like the configured key would be (keyring.create), so the key
      // exists — and is readable — before anything is sealed under it.
      await masterKey(keyId, options.create === true);
      return keyId;
    },
    async rewrapDataKey(wrapped: Buffer, context: EncryptionContext, fromKeyId: string, toKeyId: string): Promise<RewrappedKey> {
      const target = await keyring.resolveKeyId(toKeyId);
      const plaintext = await keyring.decryptDataKey(wrapped, context, fromKeyId);
      try {
        await countWrap(target);
        return { wrapped: wrapDataKey({ masterKey: await masterKey(target, false), keyId: target, dataKey: plaintext, context, nonce: random(KEY_BLOB_NONCE_BYTES) }), keyId: target };
      } finally {
        plaintext.fill(0);
      }
    },
    dispose(): void {
      for (const pending of loaded.values())
        pending.then(
          (key) => key.fill(0),
          () => undefined,
        );
      loaded.clear();
    },
    wrapCount,
  };
  return keyring;
}

/** The local keyrings of one process: one per configured key id, all on the same directory. */
export interface LocalKeyrings {
  forKeyId(keyId: string): LocalKeyring;
  /** Zeroes every master key held in memory. */
  dispose(): void;
}

export function createLocalKeyrings(options: { readonly directory: string; readonly create: boolean }): LocalKeyrings {
  const byId = new Map<string, LocalKeyring>();
  return {
    forKeyId(keyId: string): LocalKeyring {
      let keyring = byId.get(keyId);
      if (keyring === undefined) {
        keyring = createLocalKeyring({ directory: options.directory, keyId, create: options.create });
        byId.set(keyId, keyring);
      }
      return keyring;
    },
    dispose(): void {
      for (const keyring of byId.values()) keyring.dispose();
    },
  };
}
