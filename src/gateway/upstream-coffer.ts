/**
 * One configured coffer: its S3 upstream, its role (static credentials or STS AssumeRole per
 * session) and its key-encryption key (AWS KMS with the role's credentials, or the local keyring).
 */
import { defaultProvider } from '@aws-sdk/credential-provider-node';
import type { CofferConfig, GatewayConfig } from '../config';
import { createAwsKmsKeyProvider } from '../keys/aws-kms-key-provider';
import type { KeyProvider } from '../keys/key-provider';
import { awsCredentialProvider, type AwsCredentialIdentityProvider } from '../roles/aws-credential-provider';
import type { RoleProvider } from '../roles/role-provider';
import { createStsRoleProvider, type StsRoleProviderOptions } from '../roles/sts-role-provider';
import { S3UpstreamStore } from '../upstream/s3-upstream-store';
import type { CofferDefinition } from './coffer-registry';

export interface UpstreamCofferDeps {
  readonly localKeys: (keyId: string) => KeyProvider;
  /** Metrics and log hooks of the STS role provider (role.type sts). */
  readonly roleEvents?: Pick<StsRoleProviderOptions, 'onAssumeRole' | 'onLookup' | 'onRefreshFailure'>;
}

export function createUpstreamCoffer(name: string, coffer: CofferConfig, config: GatewayConfig, deps: UpstreamCofferDeps): CofferDefinition {
  const upstreamCredentials = coffer.upstream.credentials;
  // The gateway's own credentials: configured for this upstream, else the AWS default chain (IRSA, instance role, env).
  const base: AwsCredentialIdentityProvider =
    upstreamCredentials !== undefined
      ? async () => ({ accessKeyId: upstreamCredentials.accessKeyId, secretAccessKey: upstreamCredentials.secretAccessKey })
      : defaultProvider();
  const role = coffer.role;
  const roles: RoleProvider =
    role.type === 'sts'
      ? createStsRoleProvider({
          roles: { [name]: { roleArn: role.roleArn, ...(role.externalId === undefined ? {} : { externalId: role.externalId }), durationSeconds: role.durationSeconds } },
          sts: { region: role.region ?? coffer.upstream.region, ...(role.endpoint === undefined ? {} : { endpoint: role.endpoint }), credentials: base, requestTimeoutMs: config.sts.requestTimeoutMs },
          retry: { maxAttempts: config.sts.maxAttempts },
          refreshWindowMs: config.roles.refreshBeforeExpirySeconds * 1000,
          ...deps.roleEvents,
        })
      : { credentialsFor: async () => base() };
  const credentialsFor = (sessionName: string): AwsCredentialIdentityProvider => awsCredentialProvider(roles, { coffer: name, sessionName: role.type === 'sts' ? sessionName : role.type });
  const kms = coffer.kms;
  return {
    name,
    location: coffer.upstream.region,
    prefix: coffer.upstream.prefix,
    minPartSize: coffer.upstream.minPartSize,
    maxPartSize: coffer.upstream.maxPartSize,
    storeFor: (sessionName) =>
      new S3UpstreamStore({ endpoint: coffer.upstream.endpoint, region: coffer.upstream.region, bucket: coffer.upstream.bucket, forcePathStyle: coffer.upstream.forcePathStyle, credentials: credentialsFor(sessionName) }),
    keysFor: (sessionName) =>
      kms.type === 'local'
        ? deps.localKeys(kms.keyId)
        : createAwsKmsKeyProvider({
            keyId: kms.keyId,
            kms: { region: kms.region ?? coffer.upstream.region, ...(kms.endpoint === undefined ? {} : { endpoint: kms.endpoint }), credentials: credentialsFor(sessionName), requestTimeoutMs: config.kms.requestTimeoutMs },
            retry: { maxAttempts: config.kms.maxAttempts },
          }),
  };
}
