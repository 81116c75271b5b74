/** The `s3` section: the S3 dialect's own settings (issue 15). */
import { z } from 'zod';

/** The AWS region name form SigV4 credential scopes carry (as src/auth/sigv4-signature.ts reads them). */
export const S3_REGION = /^[a-z0-9-]{1,64}$/;

export function s3Schema() {
  return z
    .strictObject({
      /**
       * The region of this gateway as S3 clients see it: a SigV4 credential scope must name it (another
       * region is 400 AuthorizationHeaderMalformed naming this one, as S3 answers), GetBucketLocation
       * and HeadBucket report it, and CreateBucket accepts it as LocationConstraint. The default is
       * what the README's client commands use.
       */
      region: z.string().regex(S3_REGION, 'must be a region name: lowercase letters, digits and "-"').default('us-east-1'),
    })
    .prefault({});
}
