/**
 * KeyProvider backed by AWS KMS (or anything speaking its JSON 1.1 protocol). Data keys are made with
 * GenerateDataKey (AES_256) and unsealed with Decrypt, both bound to the encryption context.
 *
 * Credentials come from an injected SDK credential provider — in the gateway, the coffer's assumed role —
 * so one instance serves one (coffer role, KMS key) pair.
 */
import { awsClientConfig, type AwsClientOptions } from '../util/aws-client-config';
import { DecryptCommand, DescribeKeyCommand, GenerateDataKeyCommand, KMSClient, ReEncryptCommand, type KMSClientConfig } from '@aws-sdk/client-kms';
import { GatewayError } from '../errors/gateway-error';
import { DEFAULT_RETRY_POLICY, describeAwsError, withAwsRetry, type RetryHooks, type RetryOutcomeError, type RetryPolicy } from '../util/aws-errors';
import { DATA_KEY_BYTES, type DataKey, type EncryptionContext, type KeyProvider, type KeyRewrapper, type RewrappedKey } from './key-provider';

/** Per-call options: the retry loop's deadline signal, which cancels the SDK request. */
export interface KmsCallOptions {
  readonly abortSignal?: AbortSignal;
}

/**
 * The KMS calls we make; a narrow port so unit tests can pass a plain object. The gateway needs the
 * first two; key rotation (`coffer-gateway rewrap`) also ReEncrypt and DescribeKey, optional here so a
 * fake for the data path need not implement them.
 */
export interface KmsApi {
  generateDataKey(
    input: {
      KeyId: string;
      KeySpec: 'AES_256';
      EncryptionContext: Record<string, string>;
    },
    options?: KmsCallOptions,
  ): Promise<{ CiphertextBlob?: Uint8Array; Plaintext?: Uint8Array; KeyId?: string }>;
  decrypt(
    input: {
      KeyId: string;
      CiphertextBlob: Uint8Array;
      EncryptionContext: Record<string, string>;
    },
    options?: KmsCallOptions,
  ): Promise<{ Plaintext?: Uint8Array; KeyId?: string }>;
  reEncrypt?(
    input: {
      CiphertextBlob: Uint8Array;
      SourceKeyId: string;
      SourceEncryptionContext: Record<string, string>;
      DestinationKeyId: string;
      DestinationEncryptionContext: Record<string, string>;
    },
    options?: KmsCallOptions,
  ): Promise<{ CiphertextBlob?: Uint8Array; KeyId?: string }>;
  describeKey?(input: { KeyId: string }, options?: KmsCallOptions): Promise<{ KeyMetadata?: { Arn?: string; Enabled?: boolean; KeyState?: string } }>;
}

export type AwsCredentialsInput = NonNullable<KMSClientConfig['credentials']>;

export interface KmsClientOptions extends AwsClientOptions {
  readonly credentials: AwsCredentialsInput;
}

/** The KMS SDK client, built like every AWS client here (util/aws-client-config). */
export function createKmsClient(options: KmsClientOptions): KMSClient {
  return new KMSClient(awsClientConfig(options));
}

export function sdkKmsApi(client: KMSClient): KmsApi {
  return {
    generateDataKey: (input, options) => client.send(new GenerateDataKeyCommand(input), { ...options }),
    decrypt: (input, options) => client.send(new DecryptCommand(input), { ...options }),
    reEncrypt: (input, options) => client.send(new ReEncryptCommand(input), { ...options }),
    describeKey: (input, options) => client.send(new DescribeKeyCommand(input), { ...options }),
  };
}

export interface AwsKmsKeyProviderOptions extends RetryHooks {
  /** Key id, key ARN, alias name or alias ARN of the coffer's KMS key. */
  readonly keyId: string;
  /**
   * ARNs of earlier keys this coffer's objects may still be sealed under (key rotation). A stored
   * envelope naming one of these is unwrapped under it; an envelope naming anything else is unwrapped
   * under `keyId`, so KMS refuses a blob sealed under a key nobody configured.
   */
  readonly previousKeyIds?: readonly string[];
  /** Either a ready KmsApi (tests, shared clients) or the options to build an SDK client from. */
  readonly kms: KmsApi | KmsClientOptions;
  readonly retry?: Partial<RetryPolicy>;
}

export interface AwsKmsKeyProvider extends KeyProvider, KeyRewrapper {
  readonly name: 'aws-kms';
  /** Closes the SDK client's sockets when this provider built it. */
  destroy(): void;
}

function isKmsApi(value: KmsApi | KmsClientOptions): value is KmsApi {
  return typeof (value as KmsApi).generateDataKey === 'function';
}

/** Copies SDK output into a Buffer we own and wipes the SDK's array (best effort). */
function takeKey(bytes: Uint8Array | undefined): Buffer | undefined {
  if (!bytes) return undefined;
  const copy = Buffer.from(bytes);
  bytes.fill(0);
  return copy;
}

export function createAwsKmsKeyProvider(options: AwsKmsKeyProviderOptions): AwsKmsKeyProvider {
  const previous = new Set(options.previousKeyIds ?? []);
  /** The key to name to KMS for a blob whose envelope names `recorded`: it, if configured as a previous key; else the coffer's key. */
  const acceptedKeyId = (recorded: string | undefined): string => (recorded !== undefined && previous.has(recorded) ? recorded : options.keyId);
  const client = isKmsApi(options.kms) ? undefined : createKmsClient(options.kms);
  const api = client ? sdkKmsApi(client) : (options.kms as KmsApi);
  const policy: RetryPolicy = { ...DEFAULT_RETRY_POLICY, ...options.retry };
  const hooks: RetryHooks = {
    ...(options.sleep ? { sleep: options.sleep } : {}),
    ...(options.random ? { random: options.random } : {}),
    ...(options.now ? { now: options.now } : {}),
  };

  const failure =
    (operation: string) =>
    ({ error, classification, attempts }: RetryOutcomeError): GatewayError =>
      new GatewayError('KMSFailed', `KMS ${operation} failed after ${attempts} attempt${attempts === 1 ? '' : 's'}: ${describeAwsError(error)}.`, { reason: classification.reason });

  const invalidResponse = (operation: string): GatewayError => new GatewayError('KMSFailed', `KMS ${operation} returned an unusable response.`, { reason: 'invalid-response' });

  return {
    name: 'aws-kms',
    async generateDataKey(context: EncryptionContext): Promise<DataKey> {
      const output = await withAwsRetry((_, abortSignal) => api.generateDataKey({ KeyId: options.keyId, KeySpec: 'AES_256', EncryptionContext: { ...context } }, { abortSignal }), policy, failure('GenerateDataKey'), hooks);
      const plaintext = takeKey(output.Plaintext);
      if (!plaintext || plaintext.length !== DATA_KEY_BYTES || !output.CiphertextBlob || output.CiphertextBlob.length === 0) {
        plaintext?.fill(0);
        throw invalidResponse('GenerateDataKey');
      }
      return { plaintext, wrapped: Buffer.from(output.CiphertextBlob), keyId: output.KeyId ?? options.keyId };
    },
    async decryptDataKey(wrapped: Buffer, context: EncryptionContext, keyId?: string): Promise<Buffer> {
      // KeyId is always passed, so KMS refuses a blob sealed under any other key than the one named
      // (IncorrectKeyException). The envelope's key id is outside the manifest MAC, so it is honoured
      // only when configuration lists it (kms.previousKeyIds): otherwise anyone able to write the bucket
      // could point an object at a KMS key of their own that the gateway's role may use, and forge it.
      // The encryption context still binds every wrapped key to its coffer and object key.
      const output = await withAwsRetry((_, abortSignal) => api.decrypt({ KeyId: acceptedKeyId(keyId), CiphertextBlob: wrapped, EncryptionContext: { ...context } }, { abortSignal }), policy, failure('Decrypt'), hooks);
      const plaintext = takeKey(output.Plaintext);
      if (!plaintext || plaintext.length !== DATA_KEY_BYTES) {
        plaintext?.fill(0);
        throw invalidResponse('Decrypt');
      }
      return plaintext;
    },
    async resolveKeyId(keyId: string): Promise<string> {
      const describeKey = api.describeKey;
      if (describeKey === undefined) throw invalidResponse('DescribeKey');
      const output = await withAwsRetry((_, abortSignal) => describeKey({ KeyId: keyId }, { abortSignal }), policy, failure('DescribeKey'), hooks);
      const metadata = output.KeyMetadata;
      if (metadata?.Arn === undefined || metadata.Arn === '') throw invalidResponse('DescribeKey');
      if (metadata.Enabled === false || (metadata.KeyState !== undefined && metadata.KeyState !== 'Enabled')) {
        throw new GatewayError('KMSFailed', `KMS key ${metadata.Arn} is not enabled (${metadata.KeyState ?? 'disabled'}).`, { reason: 'key-not-enabled' });
      }
      // Envelopes record the ARN GenerateDataKey/ReEncrypt answer with, so that is what "already under the target key" compares.
      return metadata.Arn;
    },
    async rewrapDataKey(wrapped: Buffer, context: EncryptionContext, fromKeyId: string, toKeyId: string): Promise<RewrappedKey> {
      const reEncrypt = api.reEncrypt;
      if (reEncrypt === undefined) throw invalidResponse('ReEncrypt');
      // ReEncrypt: the plaintext data key never leaves KMS. Same context on both sides: a rewrap
      // changes the key-encryption key, never what the data key is bound to.
      const output = await withAwsRetry(
        (_, abortSignal) => reEncrypt({ CiphertextBlob: wrapped, SourceKeyId: acceptedKeyId(fromKeyId), SourceEncryptionContext: { ...context }, DestinationKeyId: toKeyId, DestinationEncryptionContext: { ...context } }, { abortSignal }),
        policy,
        failure('ReEncrypt'),
        hooks,
      );
      if (!output.CiphertextBlob || output.CiphertextBlob.length === 0) throw invalidResponse('ReEncrypt');
      return { wrapped: Buffer.from(output.CiphertextBlob), keyId: output.KeyId ?? toKeyId };
    },
    destroy(): void {
      client?.destroy();
    },
  };
}
