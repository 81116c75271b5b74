/** The `auth` section: COS-style signatures, access keys (SecretId/SecretKey and their grants), and `auth.jwt`. */
import { z } from 'zod';
import { bool, cofferName, exactlyOne, inlineSecret, int, secretFile, whenValid, type ConfigIo } from './building-blocks';
import { grantSchema } from './auth-grants';
import { jwtSchema } from './auth-jwt';

function accessKeySchema(io: ConfigIo) {
  return z
    .strictObject({
      /** The SecretId clients sign with (`q-ak`). Unique across all access keys. */
      secretId: z.string().regex(/^[A-Za-z0-9._-]{3,128}$/, 'must be 3 to 128 letters, digits, ".", "_" or "-"'),
      /** The SecretKey, inline (at least 16 characters). Prefer secretKeyFile. A secret. */
      secretKey: inlineSecret(16).optional(),
      /** File holding the SecretKey (e.g. a mounted Kubernetes Secret); read at load time, trimmed. */
      secretKeyFile: secretFile(io, 16).optional(),
      /** What requests signed with this key may do. */
      grants: z.array(grantSchema()).min(1, 'must list at least one grant'),
      /** With auth.cos.acceptKeyOnlyPath: the one coffer for which this key's path-style COS signatures
       * may cover `/<Key>` only (cos-nodejs-sdk-v5 3.x with Domain "host/{Bucket}"), even when its
       * grants reach more coffers. Default: only when the grants name exactly one coffer. */
      keyOnlyPathCoffer: cofferName().optional(),
    })
    .superRefine((key, ctx) => exactlyOne(ctx, key, 'secretKey', 'secretKeyFile'), whenValid('secretKey', 'secretKeyFile'))
    .transform(({ secretKey, secretKeyFile, ...rest }) => ({
      ...rest,
      /** The SecretKey, inline or read from secretKeyFile. */
      secretKey: (secretKey ?? secretKeyFile?.content) as string,
      secretKeyFile: secretKeyFile?.path,
    }));
}

export function authSchema(io: ConfigIo) {
  return z.strictObject({
    /** COS-style HMAC signatures (`Authorization: q-sign-algorithm=sha1&…` or presigned query). */
    cos: z
      .strictObject({
        /** Allowed clock difference: a request is accepted while now ∈ [start − skew, end + skew]. */
        maxClockSkewSeconds: int(0, 3_600).default(900),
        /** Longest accepted signature window (end − start), e.g. for presigned URLs. Default 7 days. */
        maxSignatureValiditySeconds: int(1, 31_536_000).default(604_800),
        /**
         * For path-style requests, also accept signatures over `/<Key>` without the coffer (what the
         * official SDK signs with `Domain: 'host:port/{Bucket}'`), only from an access key whose grants
         * name exactly one coffer (the key then binds the coffer), never for a key whose first segment
         * is a coffer the access key reaches, never to list with a GetService signature. Virtual-hosted
         * requests need no setting (the signed host names the coffer). docs/ARCHITECTURE.md.
         */
        acceptKeyOnlyPath: bool().default(false),
      })
      .prefault({}),
    /** SecretId/SecretKey pairs and what each may do. */
    accessKeys: z.array(accessKeySchema(io)).default([]),
    /** Bearer JWTs (e.g. Kubernetes service-account tokens). Absent: JWTs are refused. */
    jwt: jwtSchema(io).optional(),
  });
}
