/** `coffers.<name>.upstream`: the S3-compatible store holding the coffer's ciphertext, and its credentials. */
import { z } from 'zod';
import { GiB, MiB, bool, byteSize, exactlyOne, httpUrl, inlineSecret, int, keyPrefix, problem, region, s3Bucket, secretFile, whenValid, type ConfigIo } from './building-blocks';

export function upstreamSchema(io: ConfigIo) {
  const credentials = z
    .strictObject({
      /** Access key id for the upstream (and for calling STS/KMS). */
      accessKeyId: z.string().regex(/^[A-Za-z0-9+/=._-]{3,128}$/, 'must be 3 to 128 letters, digits or "+/=._-"'),
      /** Secret access key, inline. Prefer secretAccessKeyFile. A secret. */
      secretAccessKey: inlineSecret(8).optional(),
      /** File holding the secret access key; read at load time, trimmed. */
      secretAccessKeyFile: secretFile(io, 8).optional(),
    })
    .superRefine((c, ctx) => exactlyOne(ctx, c, 'secretAccessKey', 'secretAccessKeyFile'), whenValid('secretAccessKey', 'secretAccessKeyFile'))
    .transform(({ secretAccessKey, secretAccessKeyFile, ...rest }) => ({
      ...rest,
      secretAccessKey: (secretAccessKey ?? secretAccessKeyFile?.content) as string,
      secretAccessKeyFile: secretAccessKeyFile?.path,
    }));

  return z
    .strictObject({
      /** S3-compatible endpoint (origin only, http/https). Taken from configuration only, never from requests. */
      endpoint: httpUrl({ originOnly: true }),
      /** Region used for SigV4 signing. */
      region: region().default('us-east-1'),
      /** Upstream bucket (S3 naming rules). */
      bucket: s3Bucket(),
      /** Key prefix inside the bucket, e.g. "coffers/demo/"; must end with "/", no leading "/". */
      prefix: keyPrefix().optional(),
      /** Path-style URLs (http://endpoint/bucket/key); MinIO and Ceph need this. */
      forcePathStyle: bool().default(true),
      /** The upstream's minimum size of a non-last part, in bytes or e.g. "5MiB" (≥ 1 MiB). */
      minPartSize: byteSize(MiB, 5 * GiB).default(5 * MiB),
      /** The upstream's maximum part size (ciphertext bytes); parts whose ciphertext would exceed it
       * are refused with EntityTooLarge. */
      maxPartSize: byteSize(MiB, 5 * GiB).default(5 * GiB),
      /**
       * No byte either way on an upstream connection for this long → the request is destroyed and the
       * client gets 504 GatewayTimeout (a part's previous version stays). Per read/write, not per
       * request, so slow multi-GiB parts are fine.
       */
      idleTimeoutMs: int(1000, 3_600_000).default(120_000),
      /** A control-plane call (list, head, complete, small puts) until its response headers. */
      requestTimeoutMs: int(1000, 3_600_000).default(30_000),
      /** TCP (and TLS) connect to the upstream. */
      connectTimeoutMs: int(100, 600_000).default(10_000),
      /** Static credentials. Absent: the AWS default credential chain (env, web identity, instance role). */
      credentials: credentials.optional(),
    })
    .superRefine(
      (u, ctx) => {
        if (u.minPartSize > u.maxPartSize) problem(ctx, 'must not exceed maxPartSize', ['minPartSize']);
      },
      whenValid('minPartSize', 'maxPartSize'),
    );
}
