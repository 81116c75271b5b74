/**
 * Adapts a RoleProvider to the AWS SDK v3 credential-provider shape, so an SDK client (the KMS client in
 * particular) signs with the coffer's assumed-role credentials.
 */
import type { RoleProvider, RoleRequest } from './role-provider';

/** Structurally identical to @smithy/types AwsCredentialIdentity (not a direct dependency of ours). */
export interface AwsCredentialIdentity {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken?: string;
  readonly expiration?: Date;
}

export type AwsCredentialIdentityProvider = () => Promise<AwsCredentialIdentity>;

/**
 * The SDK memoises what this returns and calls it again when fewer than 5 minutes of validity remain;
 * the RoleProvider's own cache and single-flight refresh make those extra calls cheap.
 */
export function awsCredentialProvider(roles: RoleProvider, request: RoleRequest): AwsCredentialIdentityProvider {
  const fixed: RoleRequest = { coffer: request.coffer, sessionName: request.sessionName };
  return async () => {
    const credentials = await roles.credentialsFor(fixed);
    return {
      accessKeyId: credentials.accessKeyId,
      secretAccessKey: credentials.secretAccessKey,
      ...(credentials.sessionToken === undefined ? {} : { sessionToken: credentials.sessionToken }),
      ...(credentials.expiration === undefined ? {} : { expiration: credentials.expiration }),
    };
  };
}
