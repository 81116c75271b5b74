/** The `policies` section (issue 16: PutCofferPolicy / GetCofferPolicy / DeleteCofferPolicy). */
import { z } from 'zod';
import { int, problem } from './building-blocks';

const QCS_PRINCIPAL = /^qcs::cam::(?:uin\/[0-9]{1,20}:(?:uin|roleName|groupId)\/[A-Za-z0-9_.@+=,-]{1,128}|anonymous(?::anonymous)?)$/;

export function policiesSchema() {
  const mapping = z
    .strictObject({
      /** The SecretId of a configured access key. */
      accessKey: z.string().min(1).optional(),
      /** The `sub` claim of accepted JWTs. */
      jwtSubject: z.string().min(1).optional(),
      /** The principal a coffer policy names it by, e.g. "qcs::cam::uin/100000000001:uin/100000000011". */
      principal: z.string().regex(QCS_PRINCIPAL, 'must be a principal such as "qcs::cam::uin/100000000001:uin/100000000011"'),
    })
    .superRefine((m, ctx) => {
      if ((m.accessKey === undefined) === (m.jwtSubject === undefined)) problem(ctx, 'set exactly one of accessKey and jwtSubject', ['accessKey']);
    });
  return z
    .strictObject({
      /** How long a replica trusts a coffer policy it has read: a change applies on every replica within this time. */
      cacheSeconds: int(0, 3_600).default(30),
      /** Which qcs principal each access key or JWT subject is, so coffer policies can name it. A caller
       * mapped to none gets only its configured grants (and any policy deny naming "*"). */
      principals: z.array(mapping).default([]),
    })
    .prefault({});
}
