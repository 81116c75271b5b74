/** One coffer of `coffers` (upstream, role, kms) and the checks across its parts; resolved regions. */
import { z } from 'zod';
import { bool, problem, whenValid, type ConfigIo } from './building-blocks';
import { AWS_KMS_KEY_ID, kmsSchema } from './coffer-kms';
import { corsSchema } from './coffer-cors';
import { roleSchema } from './coffer-role';
import { upstreamSchema } from './coffer-upstream';

export function cofferSchema(io: ConfigIo) {
  return z
    .strictObject({
      /** Where the ciphertext is stored. */
      upstream: upstreamSchema(io),
      /** Credentials used for this coffer's upstream and KMS calls. Default: { type: static }. */
      role: roleSchema().prefault({ type: 'static' }),
      /** Key-encryption key protecting the per-object data keys. */
      kms: kmsSchema(),
      /** Write-once (default, CDCS's contract): a key is created once and never deleted by clients.
       * false: overwrite and DeleteObject are allowed (what S3 tools such as restic and rclone sync need). */
      writeOnce: bool().default(true),
      /** Which browser pages may call this coffer (CORS). Default: none. */
      cors: corsSchema([]),
    })
    .superRefine((coffer, ctx) => {
      if (coffer.kms.type !== 'aws-kms') return;
      const arnRegion = AWS_KMS_KEY_ID.exec(coffer.kms.keyId)?.[1];
      if (coffer.kms.region === undefined && arnRegion === undefined) {
        problem(ctx, 'required unless kms.keyId is an ARN', ['kms', 'region']);
      } else if (coffer.kms.region !== undefined && arnRegion !== undefined && arnRegion !== coffer.kms.region) {
        problem(ctx, 'does not match the region of the kms.keyId ARN', ['kms', 'region']);
      }
    }, whenValid('kms'))
    .transform((coffer) => ({
      ...coffer,
      // Resolved defaults, so the runtime never guesses: STS region = upstream region, KMS region from the ARN.
      role: coffer.role.type === 'sts' ? { ...coffer.role, region: coffer.role.region ?? coffer.upstream.region } : coffer.role,
      kms: coffer.kms.type === 'aws-kms' ? { ...coffer.kms, region: (coffer.kms.region ?? AWS_KMS_KEY_ID.exec(coffer.kms.keyId)?.[1]) as string } : coffer.kms,
    }));
}
