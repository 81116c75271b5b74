/**
 * A strict in-process AWS KMS (JSON 1.1 protocol, "TrentService") on 127.0.0.1, for exercising the real
 * @aws-sdk/client-kms. Implements GenerateDataKey, GenerateDataKeyWithoutPlaintext, Decrypt, Encrypt,
 * ReEncrypt and DescribeKey for symmetric keys.
 *
 * Strictness that matters for the gateway:
 *  - every request must be SigV4-signed by a known identity of the shared TestCredentialStore (session
 *    credentials issued by the STS test server work and expire: ExpiredTokenException);
 *  - keys must exist, be enabled and not pending deletion; a key may restrict which principals use it;
 *  - ciphertext blobs are opaque but authenticated (AES-256-GCM under the key's secret) and bound to their
 *    key and the exact EncryptionContext: any other context → InvalidCiphertextException; a KeyId on
 *    Decrypt naming a different key → IncorrectKeyException;
 *  - input validation mirrors the service (KeySpec/NumberOfBytes, lengths, types).
 * Scripted failures (throttling, access denied, internal errors, latency, resets) and a call log make
 * retry behaviour observable.
 */
import { createCipheriv, createDecipheriv, randomBytes, randomUUID } from 'node:crypto';
import type http from 'node:http';
import { CONNECTION_RESET, FailureScript, TEST_ACCOUNT_ID, TestCredentialStore, TestHttpServer, seededRandom, verifySigV4, type FailureRule, type TestIdentity } from './sts-test-server';

export type KmsOperation = 'GenerateDataKey' | 'GenerateDataKeyWithoutPlaintext' | 'Decrypt' | 'Encrypt' | 'ReEncrypt' | 'DescribeKey';
const OPERATIONS: ReadonlySet<string> = new Set<KmsOperation>(['GenerateDataKey', 'GenerateDataKeyWithoutPlaintext', 'Decrypt', 'Encrypt', 'ReEncrypt', 'DescribeKey']);

/** HTTP status per KMS error type (AWS answers most client errors with 400). */
const KMS_ERROR_STATUS: Readonly<Record<string, number>> = {
  KMSInternalException: 500,
  KeyUnavailableException: 500,
  DependencyTimeoutException: 503,
  ServiceUnavailableException: 503,
  DryRunOperationException: 412,
};

export type KeyState = 'Enabled' | 'Disabled' | 'PendingDeletion';

export interface TestKmsKey {
  readonly keyId: string;
  readonly arn: string;
  state: KeyState;
  readonly keyUsage: 'ENCRYPT_DECRYPT' | 'SIGN_VERIFY';
  /** When set, only these principals (user ARNs, or role ARNs for assumed-role sessions) may use the key. */
  allowedPrincipals: readonly string[] | undefined;
  readonly createdAt: number;
  readonly description: string;
  /** @internal the key's secret; never leaves the server. */
  readonly secret: Buffer;
}

export interface CreateKeyOptions {
  readonly alias?: string;
  readonly state?: KeyState;
  readonly allowedPrincipals?: readonly string[];
  readonly keyUsage?: 'ENCRYPT_DECRYPT' | 'SIGN_VERIFY';
  readonly description?: string;
}

export interface KmsCall {
  readonly operation: string;
  readonly status: number;
  readonly errorType?: string;
  readonly accessKeyId?: string;
  readonly keyArn?: string;
  /** The KeyId the request named (Decrypt: KeyId; ReEncrypt: SourceKeyId), as sent. */
  readonly requestedKeyId?: string;
  readonly encryptionContext?: Readonly<Record<string, string>>;
}

export interface KmsTestServerOptions {
  readonly store?: TestCredentialStore;
  readonly region?: string;
  /** Clock for credential expiry; default Date.now. */
  readonly now?: () => number;
  /** Seed of the PRNG used for probabilistic scripted failures. */
  readonly seed?: number;
}

class KmsError extends Error {
  constructor(
    readonly type: string,
    message?: string,
  ) {
    super(message ?? '');
  }
}

const BLOB_MAGIC = Buffer.from([0x01, 0x4b, 0x54, 0x53]); // version 1, "KTS"
const UUID_LENGTH = 36;
const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Server-internal context encoding: JSON of the sorted pairs (injective, independent of the gateway's). */
function contextAad(context: Readonly<Record<string, string>>): Buffer {
  const pairs = Object.entries(context).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return Buffer.from(JSON.stringify(pairs), 'utf8');
}

function isStringMap(value: unknown): value is Record<string, string> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && Object.values(value).every((v) => typeof v === 'string');
}

export class KmsTestServer {
  readonly store: TestCredentialStore;
  readonly region: string;
  readonly calls: KmsCall[] = [];
  readonly script: FailureScript;
  endpoint = '';
  private readonly keys = new Map<string, TestKmsKey>();
  private readonly aliases = new Map<string, string>();
  private readonly now: () => number;
  private readonly http: TestHttpServer;

  constructor(options: KmsTestServerOptions = {}) {
    this.store = options.store ?? new TestCredentialStore();
    this.region = options.region ?? 'us-east-1';
    this.now = options.now ?? Date.now;
    this.script = new FailureScript(seededRandom(options.seed ?? 1));
    this.http = new TestHttpServer((req, body, res) => this.handle(req, body, res));
  }

  async start(): Promise<this> {
    this.endpoint = await this.http.listen();
    return this;
  }

  close(): Promise<void> {
    return this.http.close();
  }

  // --- administration (what the console/CLI would do) ---

  createKey(options: CreateKeyOptions = {}): TestKmsKey {
    const keyId = randomUUID();
    const key: TestKmsKey = {
      keyId,
      arn: `arn:aws:kms:${this.region}:${TEST_ACCOUNT_ID}:key/${keyId}`,
      state: options.state ?? 'Enabled',
      keyUsage: options.keyUsage ?? 'ENCRYPT_DECRYPT',
      allowedPrincipals: options.allowedPrincipals,
      createdAt: this.now(),
      description: options.description ?? '',
      secret: randomBytes(32),
    };
    this.keys.set(keyId, key);
    if (options.alias !== undefined) this.createAlias(options.alias, keyId);
    return key;
  }

  createAlias(alias: string, keyId: string): void {
    if (!/^alias\/[a-zA-Z0-9/_-]+$/.test(alias) || alias.startsWith('alias/aws/')) throw new Error(`bad alias ${alias}`);
    this.aliases.set(alias, keyId);
  }

  setKeyState(keyId: string, state: KeyState): void {
    const key = this.keys.get(keyId);
    if (!key) throw new Error(`no key ${keyId}`);
    key.state = state;
  }

  /** Adds a scripted failure/latency rule (see FailureRule). */
  addFailure(rule: FailureRule): void {
    this.script.add(rule);
  }

  failNext(times: number, error: string, operation?: KmsOperation): void {
    this.script.add({ error, times, ...(operation === undefined ? {} : { operation }) });
  }

  failWithProbability(probability: number, error: string, operation?: KmsOperation): void {
    this.script.add({ error, probability, ...(operation === undefined ? {} : { operation }) });
  }

  callCount(operation?: KmsOperation): number {
    return operation === undefined ? this.calls.length : this.calls.filter((c) => c.operation === operation).length;
  }

  // --- protocol ---

  private resolveKey(keyId: string): TestKmsKey {
    const arnPrefix = `arn:aws:kms:${this.region}:${TEST_ACCOUNT_ID}:`;
    let id: string | undefined;
    if (keyId.startsWith('alias/')) {
      id = this.aliases.get(keyId);
      if (id === undefined) throw new KmsError('NotFoundException', `Alias ${arnPrefix}${keyId} is not found.`);
    } else if (keyId.startsWith('arn:')) {
      if (keyId.startsWith(`${arnPrefix}alias/`)) {
        id = this.aliases.get(keyId.slice(arnPrefix.length));
        if (id === undefined) throw new KmsError('NotFoundException', `Alias ${keyId} is not found.`);
      } else if (keyId.startsWith(`${arnPrefix}key/`)) {
        id = keyId.slice(`${arnPrefix}key/`.length);
        if (!UUID_PATTERN.test(id)) throw new KmsError('NotFoundException', `Invalid arn ${keyId}`);
      } else {
        throw new KmsError('NotFoundException', `Invalid arn ${keyId}`);
      }
    } else if (UUID_PATTERN.test(keyId)) {
      id = keyId;
    } else {
      throw new KmsError('NotFoundException', `Invalid keyId '${keyId}'`);
    }
    const key = this.keys.get(id);
    if (!key) throw new KmsError('NotFoundException', `Key '${arnPrefix}key/${id}' does not exist`);
    return key;
  }

  private authorize(key: TestKmsKey, identity: TestIdentity, operation: string): void {
    if (key.allowedPrincipals !== undefined && !key.allowedPrincipals.includes(TestCredentialStore.principalOf(identity))) {
      throw new KmsError('AccessDeniedException', `User: ${identity.principalArn} is not authorized to perform: kms:${operation} on resource: ${key.arn} because no resource-based policy allows the kms:${operation} action`);
    }
  }

  private usable(key: TestKmsKey, operation: string, identity: TestIdentity): void {
    this.authorize(key, identity, operation);
    if (key.state === 'Disabled') throw new KmsError('DisabledException', `${key.arn} is disabled.`);
    if (key.state === 'PendingDeletion') throw new KmsError('KMSInvalidStateException', `${key.arn} is pending deletion.`);
    if (key.keyUsage !== 'ENCRYPT_DECRYPT') {
      throw new KmsError('InvalidKeyUsageException', `${key.arn} key usage is ${key.keyUsage} which is not valid for ${operation}.`);
    }
  }

  private seal(key: TestKmsKey, plaintext: Buffer, context: Readonly<Record<string, string>>): Buffer {
    const nonce = randomBytes(12);
    const header = Buffer.concat([BLOB_MAGIC, Buffer.from(key.keyId, 'ascii')]);
    const cipher = createCipheriv('aes-256-gcm', key.secret, nonce);
    cipher.setAAD(Buffer.concat([header, contextAad(context)]));
    const sealed = Buffer.concat([cipher.update(plaintext), cipher.final()]);
    return Buffer.concat([header, nonce, sealed, cipher.getAuthTag()]);
  }

  /** Finds the key a blob claims; throws InvalidCiphertextException for anything not made by us. */
  private blobKey(blob: Buffer): TestKmsKey {
    if (blob.length < BLOB_MAGIC.length + UUID_LENGTH + 12 + 16 + 1 || !blob.subarray(0, 4).equals(BLOB_MAGIC)) {
      throw new KmsError('InvalidCiphertextException');
    }
    const key = this.keys.get(blob.subarray(4, 4 + UUID_LENGTH).toString('latin1'));
    if (!key) throw new KmsError('InvalidCiphertextException');
    return key;
  }

  private unseal(key: TestKmsKey, blob: Buffer, context: Readonly<Record<string, string>>): Buffer {
    const headerLength = BLOB_MAGIC.length + UUID_LENGTH;
    const nonce = blob.subarray(headerLength, headerLength + 12);
    const tag = blob.subarray(blob.length - 16);
    const decipher = createDecipheriv('aes-256-gcm', key.secret, nonce);
    decipher.setAAD(Buffer.concat([blob.subarray(0, headerLength), contextAad(context)]));
    decipher.setAuthTag(tag);
    try {
      return Buffer.concat([decipher.update(blob.subarray(headerLength + 12, blob.length - 16)), decipher.final()]);
    } catch {
      throw new KmsError('InvalidCiphertextException');
    }
  }

  private async handle(req: http.IncomingMessage, body: Buffer, res: http.ServerResponse): Promise<void> {
    const requestId = randomUUID();
    const target = req.headers['x-amz-target'];
    const operation = typeof target === 'string' && target.startsWith('TrentService.') ? target.slice('TrentService.'.length) : '?';
    const log: { -readonly [K in keyof KmsCall]: KmsCall[K] } = { operation, status: 0 };
    const reply = (status: number, payload: unknown): void => {
      const text = JSON.stringify(payload);
      res.writeHead(status, {
        'content-type': 'application/x-amz-json-1.1',
        'x-amzn-requestid': requestId,
        'content-length': Buffer.byteLength(text),
      });
      res.end(text);
      log.status = status;
      this.calls.push({ ...log });
    };
    const replyError = (error: KmsError): void => {
      log.errorType = error.type;
      reply(KMS_ERROR_STATUS[error.type] ?? 400, error.message === '' ? { __type: error.type } : { __type: error.type, message: error.message });
    };

    try {
      if (req.method !== 'POST' || req.url !== '/') throw new KmsError('UnknownOperationException');
      if (req.headers['content-type'] !== 'application/x-amz-json-1.1') {
        throw new KmsError('SerializationException', 'Content-Type must be application/x-amz-json-1.1');
      }
      if (!OPERATIONS.has(operation)) throw new KmsError('UnknownOperationException');

      const auth = verifySigV4(req, body, { store: this.store, region: this.region, service: 'kms', now: this.now });
      if (!auth.ok) {
        const type = {
          missing: 'MissingAuthenticationTokenException',
          incomplete: 'IncompleteSignatureException',
          'unknown-key': 'UnrecognizedClientException',
          'bad-token': 'UnrecognizedClientException',
          'expired-token': 'ExpiredTokenException',
          scope: 'InvalidSignatureException',
          skew: 'InvalidSignatureException',
          payload: 'InvalidSignatureException',
          signature: 'InvalidSignatureException',
        }[auth.failure];
        throw new KmsError(type, auth.message);
      }
      log.accessKeyId = auth.identity.accessKeyId;

      let input: unknown;
      try {
        input = JSON.parse(body.toString('utf8'));
      } catch {
        throw new KmsError('SerializationException', 'Malformed JSON body.');
      }
      if (typeof input !== 'object' || input === null || Array.isArray(input)) throw new KmsError('SerializationException', 'Body must be a JSON object.');
      const fields = input as Record<string, unknown>;
      const ctx = fields.EncryptionContext;
      if (ctx !== undefined && isStringMap(ctx)) log.encryptionContext = { ...ctx };

      const outcome = this.script.next(operation);
      await this.http.delay(outcome.latencyMs);
      if (outcome.error === CONNECTION_RESET) {
        log.errorType = CONNECTION_RESET;
        this.calls.push({ ...log });
        req.socket.destroy();
        return;
      }
      if (outcome.error !== undefined) {
        throw new KmsError(outcome.error, outcome.message ?? (outcome.error === 'ThrottlingException' ? 'Rate exceeded' : 'Scripted failure'));
      }
      if (res.destroyed || req.socket.destroyed) {
        // The client gave up during the scripted latency; log it like a dropped response.
        log.errorType = 'ClientGone';
        this.calls.push({ ...log });
        return;
      }
      const output = this.dispatch(operation, fields, auth.identity, log);
      reply(200, output);
    } catch (error) {
      if (error instanceof KmsError) replyError(error);
      else replyError(new KmsError('KMSInternalException', 'Unexpected test-server failure.'));
    }
  }

  private dispatch(operation: string, input: Record<string, unknown>, identity: TestIdentity, log: { keyArn?: string; requestedKeyId?: string }): unknown {
    const str = (name: string, required: boolean): string | undefined => {
      const value = input[name];
      if (value === undefined || value === null) {
        if (required) throw new KmsError('ValidationException', `1 validation error detected: Value null at '${name.charAt(0).toLowerCase()}${name.slice(1)}' failed to satisfy constraint: Member must not be null`);
        return undefined;
      }
      if (typeof value !== 'string') throw new KmsError('SerializationException', `${name} must be a string.`);
      if (value.length < 1 || value.length > 2048) {
        throw new KmsError('ValidationException', `1 validation error detected: Value at '${name}' failed to satisfy constraint: Member must have length between 1 and 2048`);
      }
      return value;
    };
    const blob = (name: string, max: number, required: boolean): Buffer | undefined => {
      const value = input[name];
      if (value === undefined || value === null) {
        if (required) throw new KmsError('ValidationException', `1 validation error detected: Value null at '${name.charAt(0).toLowerCase()}${name.slice(1)}' failed to satisfy constraint: Member must not be null`);
        return undefined;
      }
      if (typeof value !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(value) || value.length % 4 !== 0) {
        throw new KmsError('SerializationException', `${name} must be base64.`);
      }
      const bytes = Buffer.from(value, 'base64');
      if (bytes.length < 1 || bytes.length > max) {
        throw new KmsError('ValidationException', `1 validation error detected: Value at '${name}' failed to satisfy constraint: Member must have length between 1 and ${max}`);
      }
      return bytes;
    };
    const context = (name: string): Record<string, string> => {
      const value = input[name];
      if (value === undefined || value === null) return {};
      if (!isStringMap(value)) throw new KmsError('SerializationException', `${name} must be a map of strings.`);
      return value;
    };
    const algorithm = (name: string): void => {
      const value = input[name];
      if (value !== undefined && value !== 'SYMMETRIC_DEFAULT') {
        throw new KmsError(
          'ValidationException',
          `1 validation error detected: Value '${String(value)}' at '${name}' failed to satisfy constraint: Member must satisfy enum value set: [SYMMETRIC_DEFAULT, RSAES_OAEP_SHA_1, RSAES_OAEP_SHA_256, SM2PKE]`,
        );
      }
    };
    const grantTokens = (): void => {
      const value = input.GrantTokens;
      if (value !== undefined && (!Array.isArray(value) || value.length > 10 || value.some((t) => typeof t !== 'string'))) {
        throw new KmsError('ValidationException', "1 validation error detected: Value at 'grantTokens' failed to satisfy constraint: Member must have length less than or equal to 10");
      }
    };
    const dryRun = (): void => {
      if (input.DryRun === true) throw new KmsError('DryRunOperationException', 'The request would have succeeded, but the DryRun option is set.');
    };

    switch (operation) {
      case 'GenerateDataKey':
      case 'GenerateDataKeyWithoutPlaintext': {
        const key = this.resolveKey(str('KeyId', true) as string);
        log.keyArn = key.arn;
        const spec = input.KeySpec;
        const bytes = input.NumberOfBytes;
        if (spec !== undefined && spec !== 'AES_256' && spec !== 'AES_128') {
          throw new KmsError('ValidationException', `1 validation error detected: Value '${String(spec)}' at 'keySpec' failed to satisfy constraint: Member must satisfy enum value set: [AES_256, AES_128]`);
        }
        if (bytes !== undefined && (typeof bytes !== 'number' || !Number.isInteger(bytes))) throw new KmsError('SerializationException', 'NumberOfBytes must be an integer.');
        if (typeof bytes === 'number' && (bytes < 1 || bytes > 1024)) {
          throw new KmsError(
            'ValidationException',
            `1 validation error detected: Value '${bytes}' at 'numberOfBytes' failed to satisfy constraint: Member must have value ${bytes < 1 ? 'greater than or equal to 1' : 'less than or equal to 1024'}`,
          );
        }
        if ((spec === undefined) === (bytes === undefined)) throw new KmsError('ValidationException', 'Please specify either number of bytes or key spec.');
        const encryptionContext = context('EncryptionContext');
        grantTokens();
        this.usable(key, operation, identity);
        dryRun();
        const length = spec === 'AES_256' ? 32 : spec === 'AES_128' ? 16 : (bytes as number);
        const plaintext = randomBytes(length);
        const out: Record<string, unknown> = { CiphertextBlob: this.seal(key, plaintext, encryptionContext).toString('base64'), KeyId: key.arn };
        if (operation === 'GenerateDataKey') out.Plaintext = plaintext.toString('base64');
        return out;
      }
      case 'Encrypt': {
        const key = this.resolveKey(str('KeyId', true) as string);
        log.keyArn = key.arn;
        const plaintext = blob('Plaintext', 4096, true) as Buffer;
        const encryptionContext = context('EncryptionContext');
        algorithm('EncryptionAlgorithm');
        grantTokens();
        this.usable(key, operation, identity);
        dryRun();
        return { CiphertextBlob: this.seal(key, plaintext, encryptionContext).toString('base64'), KeyId: key.arn, EncryptionAlgorithm: 'SYMMETRIC_DEFAULT' };
      }
      case 'Decrypt': {
        const ciphertext = blob('CiphertextBlob', 6144, true) as Buffer;
        const requested = str('KeyId', false);
        if (requested !== undefined) log.requestedKeyId = requested;
        const encryptionContext = context('EncryptionContext');
        algorithm('EncryptionAlgorithm');
        grantTokens();
        const key = this.blobKey(ciphertext);
        log.keyArn = key.arn;
        if (requested !== undefined && this.resolveKey(requested).keyId !== key.keyId) {
          throw new KmsError('IncorrectKeyException', 'The key ID in the request does not identify a CMK that can perform this operation.');
        }
        this.usable(key, operation, identity);
        dryRun();
        const plaintext = this.unseal(key, ciphertext, encryptionContext);
        return { KeyId: key.arn, Plaintext: plaintext.toString('base64'), EncryptionAlgorithm: 'SYMMETRIC_DEFAULT' };
      }
      case 'ReEncrypt': {
        const ciphertext = blob('CiphertextBlob', 6144, true) as Buffer;
        const destination = this.resolveKey(str('DestinationKeyId', true) as string);
        const sourceRequested = str('SourceKeyId', false);
        if (sourceRequested !== undefined) log.requestedKeyId = sourceRequested;
        const sourceContext = context('SourceEncryptionContext');
        const destinationContext = context('DestinationEncryptionContext');
        algorithm('SourceEncryptionAlgorithm');
        algorithm('DestinationEncryptionAlgorithm');
        grantTokens();
        const source = this.blobKey(ciphertext);
        log.keyArn = destination.arn;
        if (sourceRequested !== undefined && this.resolveKey(sourceRequested).keyId !== source.keyId) {
          throw new KmsError('IncorrectKeyException', 'The key ID in the request does not identify a CMK that can perform this operation.');
        }
        // ReEncrypt needs kms:ReEncryptFrom on the source and kms:ReEncryptTo on the destination.
        this.usable(source, 'ReEncryptFrom', identity);
        this.usable(destination, 'ReEncryptTo', identity);
        dryRun();
        const plaintext = this.unseal(source, ciphertext, sourceContext);
        return {
          CiphertextBlob: this.seal(destination, plaintext, destinationContext).toString('base64'),
          SourceKeyId: source.arn,
          KeyId: destination.arn,
          SourceEncryptionAlgorithm: 'SYMMETRIC_DEFAULT',
          DestinationEncryptionAlgorithm: 'SYMMETRIC_DEFAULT',
        };
      }
      case 'DescribeKey': {
        const key = this.resolveKey(str('KeyId', true) as string);
        log.keyArn = key.arn;
        grantTokens();
        this.authorize(key, identity, operation);
        return {
          KeyMetadata: {
            AWSAccountId: TEST_ACCOUNT_ID,
            KeyId: key.keyId,
            Arn: key.arn,
            CreationDate: key.createdAt / 1000,
            Enabled: key.state === 'Enabled',
            Description: key.description,
            KeyUsage: key.keyUsage,
            KeyState: key.state,
            Origin: 'AWS_KMS',
            KeyManager: 'CUSTOMER',
            CustomerMasterKeySpec: 'SYMMETRIC_DEFAULT',
            KeySpec: 'SYMMETRIC_DEFAULT',
            EncryptionAlgorithms: ['SYMMETRIC_DEFAULT'],
            MultiRegion: false,
          },
        };
      }
      default:
        throw new KmsError('UnknownOperationException');
    }
  }
}

export async function startKmsTestServer(options: KmsTestServerOptions = {}): Promise<KmsTestServer> {
  return new KmsTestServer(options).start();
}
