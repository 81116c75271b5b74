/** `coffers.<name>.kms`: the key-encryption key of the coffer (local keyring or AWS KMS). */
import { z } from 'zod';
import { httpUrl, region } from './building-blocks';

const KMS_KEY = '(?:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|mrk-[0-9a-fA-F]{32})';
const KMS_ALIAS = 'alias/[A-Za-z0-9/_-]{1,250}';
export const AWS_KMS_KEY_ID = new RegExp(`^(?:${KMS_KEY}|${KMS_ALIAS}|arn:aws[a-z-]*:kms:([a-z0-9-]+):\\d{12}:(?:key/${KMS_KEY}|${KMS_ALIAS}))$`);

export function kmsSchema() {
  return z.discriminatedUnion(
    'type',
    [
      /** A key from the local keyring (see `keyring`). */
      z.strictObject({
        type: z.literal('local'),
        /** Name of the key in the keyring directory. */
        keyId: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/, 'must be 1 to 128 letters, digits, ".", "_" or "-", starting with a letter or digit'),
      }),
      /** AWS KMS (or a compatible service such as LocalStack). */
      z.strictObject({
        type: z.literal('aws-kms'),
        /** Key id, key ARN, alias name ("alias/…") or alias ARN. */
        keyId: z
          .string()
          .regex(AWS_KMS_KEY_ID, 'must be a KMS key id, key ARN, "alias/<name>" or alias ARN')
          .refine((id) => !/(?:^|:)alias\/aws\//.test(id), 'must not be an AWS managed key (alias/aws/…)'),
        /** KMS endpoint override. Default: the AWS regional endpoint. */
        endpoint: httpUrl({ originOnly: true }).optional(),
        /** KMS region; required unless keyId is an ARN (then taken from it). */
        region: region().optional(),
        /**
         * Key ARNs of earlier keys this coffer's objects may still be sealed under, during and after a
         * rotation (`coffer-gateway rewrap`). Reads unwrap under the key a stored object names only if it
         * is `keyId` or listed here: the name is not authenticated, and honouring any key would let
         * whoever can write the bucket point objects at a key of their own.
         */
        previousKeyIds: z
          .array(z.string().regex(/^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key\/[A-Za-z0-9-]+$/, 'must be a KMS key ARN (as recorded in object envelopes)'))
          .max(100)
          .default([]),
      }),
    ],
    { error: 'type must be "local" or "aws-kms"' },
  );
}
