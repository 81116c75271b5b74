/** Settings shared by the gateway's AWS service clients (KMS, STS). */
export interface AwsClientOptions {
  readonly region: string;
  /** e.g. a VPC endpoint or a test server; defaults to the regional AWS endpoint. */
  readonly endpoint?: string;
  /** Deadline per attempt (SDK `requestTimeout`, made to throw); a timeout counts as a transient failure. */
  readonly requestTimeoutMs?: number;
  readonly connectionTimeoutMs?: number;
}

/** SDK client configuration with SDK-level retries switched off: retries are ours (see util/aws-errors). */
export function awsClientConfig<C>(options: AwsClientOptions & { readonly credentials: C }) {
  return {
    region: options.region,
    ...(options.endpoint === undefined ? {} : { endpoint: options.endpoint }),
    credentials: options.credentials,
    maxAttempts: 1,
    requestHandler: {
      requestTimeout: options.requestTimeoutMs ?? 5_000,
      connectionTimeout: options.connectionTimeoutMs ?? 2_000,
      // Without this the SDK only *warns* when requestTimeout passes and keeps waiting.
      throwOnRequestTimeout: true,
    },
  };
}
