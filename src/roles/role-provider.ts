/**
 * The roles port: how the gateway obtains the AWS credentials it acts with for one coffer (for KMS calls
 * and, later, the upstream). Stages depend on this interface only, so tests pass plain objects and the
 * embedded default (static credentials) and STS AssumeRole are interchangeable.
 */

export interface RoleCredentials {
  readonly accessKeyId: string;
  /** Secret: never log it, never put it in an error message. */
  readonly secretAccessKey: string;
  /** Secret: never log it. Present for temporary (assumed-role) credentials. */
  readonly sessionToken?: string;
  /** Absent for long-term credentials. */
  readonly expiration?: Date;
}

export interface RoleRequest {
  readonly coffer: string;
  /** Becomes the STS RoleSessionName (sanitised), so CloudTrail shows who the gateway acted for. */
  readonly sessionName: string;
}

export interface RoleProvider {
  /** Fails only with GatewayError('AssumeRoleFailed', …, { reason }). */
  credentialsFor(request: RoleRequest): Promise<RoleCredentials>;
}
