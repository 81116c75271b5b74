/**
 * One configured coffer: its S3 upstream, its role (static credentials or STS AssumeRole per
 * session) and its key-encryption key (AWS KMS with the role's credentials, or the local keyring).
 * The command line (decrypt, rewrap, doctor) builds its coffers here too, so a recovery or rotation
 * tool never succeeds where the gateway would fail, or the other way round.
 */
import { defaultProvider } from '@aws-sdk/credential-provider-node';
import type { CofferConfig, GatewayConfig } from '../config';
import { GatewayError, isGatewayError } from '../errors/gateway-error';
import type { KeyProvider, KeyRewrapper } from '../keys/key-provider';
import { awsCredentialProvider, type AwsCredentialIdentityProvider } from '../roles/aws-credential-provider';
import type { RoleProvider } from '../roles/role-provider';
import type { StsRoleProviderOptions } from '../roles/sts-role-provider';
import { S3UpstreamStore } from '../upstream/s3-upstream-store';
import type { CofferDefinition } from './coffer-registry';
import { configuredModules } from './configured-modules';

/** A key provider that can also rewrap (AWS KMS and the local keyring both can) and close its client. */
export type CofferKeys = KeyProvider & KeyRewrapper & { destroy?(): void };

export interface UpstreamCofferDeps {
  readonly localKeys: (keyId: string) => CofferKeys;
  /** Metrics and log hooks of the STS role provider (role.type sts). */
  readonly roleEvents?: Pick<StsRoleProviderOptions, 'onAssumeRole' | 'onLookup' | 'onRefreshFailure'>;
}

export interface UpstreamCoffer extends CofferDefinition {
  readonly config: CofferConfig;
  /** The credentials the store and the KMS client sign with for one session (STS role, static or default chain). */
  readonly credentialsFor: (sessionName: string) => AwsCredentialIdentityProvider;
  /** A new store per call; the caller closes it with destroy(). */
  readonly storeFor: (sessionName: string) => S3UpstreamStore;
  readonly keysFor: (sessionName: string) => CofferKeys;
  /** Closes the STS client, if any (the command line exits after one run). */
  readonly destroy: () => void;
}

/** `location`: what GetService reports for the coffer (default: the upstream's region). */
export function createUpstreamCoffer(name: string, coffer: CofferConfig, config: GatewayConfig, deps: UpstreamCofferDeps, options: { readonly location?: string } = {}): UpstreamCoffer {
  const upstreamCredentials = coffer.upstream.credentials;
  // The gateway's own credentials: configured for this upstream, else the AWS default chain (IRSA, instance role, env).
  const base: AwsCredentialIdentityProvider = upstreamCredentials !== undefined ? async () => ({ accessKeyId: upstreamCredentials.accessKeyId, secretAccessKey: upstreamCredentials.secretAccessKey }) : defaultProvider();
  const role = coffer.role;
  const sts =
    role.type === 'sts'
      ? configuredModules.stsRoles().createStsRoleProvider({
          roles: { [name]: { roleArn: role.roleArn, ...(role.externalId === undefined ? {} : { externalId: role.externalId }), durationSeconds: role.durationSeconds } },
          sts: { region: role.region ?? coffer.upstream.region, ...(role.endpoint === undefined ? {} : { endpoint: role.endpoint }), credentials: base, requestTimeoutMs: config.sts.requestTimeoutMs },
          retry: { maxAttempts: config.sts.maxAttempts, deadlineMs: config.sts.deadlineMs },
          refreshWindowMs: config.roles.refreshBeforeExpirySeconds * 1000,
          ...deps.roleEvents,
        })
      : undefined;
  const roles: RoleProvider = sts ?? { credentialsFor: async () => base() };
  const credentialsFor = (sessionName: string): AwsCredentialIdentityProvider => awsCredentialProvider(roles, { coffer: name, sessionName: role.type === 'sts' ? sessionName : role.type });
  const kms = coffer.kms;
  // Loaded with the coffer (at start for configured ones), so no request waits for the KMS client to load.
  if (kms.type === 'aws-kms') configuredModules.awsKms();
  return {
    name,
    location: options.location ?? coffer.upstream.region,
    config: coffer,
    credentialsFor,
    assumeRole: async (sessionName) => {
      try {
        await credentialsFor(sessionName)();
      } catch (error) {
        if (isGatewayError(error)) throw error;
        // The AWS default chain (no role, no configured keys) found nothing: the same answer as a refused role.
        throw new GatewayError('AssumeRoleFailed', 'No credentials are available for this coffer.', { reason: 'no-credentials' });
      }
    },
    destroy: () => sts?.destroy(),
    prefix: coffer.upstream.prefix,
    writeOnce: coffer.writeOnce,
    minPartSize: coffer.upstream.minPartSize,
    maxPartSize: coffer.upstream.maxPartSize,
    storeFor: (sessionName) =>
      new S3UpstreamStore({
        endpoint: coffer.upstream.endpoint,
        region: coffer.upstream.region,
        bucket: coffer.upstream.bucket,
        forcePathStyle: coffer.upstream.forcePathStyle,
        credentials: credentialsFor(sessionName),
        idleTimeoutMs: coffer.upstream.idleTimeoutMs,
        requestTimeoutMs: coffer.upstream.requestTimeoutMs,
        connectTimeoutMs: coffer.upstream.connectTimeoutMs,
      }),
    keysFor: (sessionName) =>
      kms.type === 'local'
        ? deps.localKeys(kms.keyId)
        : configuredModules.awsKms().createAwsKmsKeyProvider({
            keyId: kms.keyId,
            previousKeyIds: kms.previousKeyIds,
            kms: { region: kms.region ?? coffer.upstream.region, ...(kms.endpoint === undefined ? {} : { endpoint: kms.endpoint }), credentials: credentialsFor(sessionName), requestTimeoutMs: config.kms.requestTimeoutMs },
            retry: { maxAttempts: config.kms.maxAttempts, deadlineMs: config.kms.deadlineMs },
          }),
  };
}
