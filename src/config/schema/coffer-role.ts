/** `coffers.<name>.role`: the credentials of the coffer's upstream and KMS calls (static, or STS AssumeRole). */
import { z } from 'zod';
import { httpUrl, int, region } from './building-blocks';

const EXTERNAL_ID_RULE = 'must be 2 to 1224 characters of letters, digits or "+=,.@:/-_"';
const ROLE_ARN = /^arn:[a-z][a-z0-9-]{0,31}:iam::(?:\d{12})?:role\/(?:[\w+=,.@-]+\/)*[\w+=,.@-]{1,64}$/;

export function roleSchema() {
  return z.discriminatedUnion(
    'type',
    [
      /** Use the upstream credentials as they are. */
      z.strictObject({ type: z.literal('static') }),
      /** Assume a role with STS AssumeRole (base credentials: upstream.credentials or the default chain). */
      z.strictObject({
        type: z.literal('sts'),
        /** Role to assume, e.g. arn:aws:iam::123456789012:role/coffer-demo. */
        roleArn: z.string().regex(ROLE_ARN, 'must be a role ARN such as "arn:aws:iam::123456789012:role/name"'),
        /** ExternalId required by the role's trust policy. */
        // Length apart from the pattern: RE2 (Helm's schema validator) refuses repeat counts above 1000.
        externalId: z
          .string()
          .min(2, EXTERNAL_ID_RULE)
          .max(1224, EXTERNAL_ID_RULE)
          .regex(/^[\w+=,.@:/-]+$/, EXTERNAL_ID_RULE)
          .optional(),
        /** RoleSessionName (shows up in CloudTrail). */
        sessionName: z
          .string()
          .regex(/^[\w+=,.@-]{2,64}$/, 'must be 2 to 64 characters of letters, digits or "+=,.@-_"')
          .default('coffer-gateway'),
        /** Lifetime of the assumed credentials (900 to 43200 seconds). */
        durationSeconds: int(900, 43_200).default(3_600),
        /** STS endpoint (e.g. MinIO or LocalStack). Default: the AWS regional endpoint. */
        endpoint: httpUrl({ originOnly: true }).optional(),
        /** STS region. Default: upstream.region. */
        region: region().optional(),
      }),
    ],
    { error: 'type must be "static" or "sts"' },
  );
}
