/** A grant (`auth.accessKeys[].grants[]`, `auth.jwt.rules[].grants[]`): a coffer and the actions allowed on it. */
import { z } from 'zod';
import { COFFER_NAME } from './building-blocks';

const ACTIONS = ['read', 'write', 'list', 'manage', '*'] as const;

export function grantSchema() {
  return z.strictObject({
    /** A coffer name from `coffers` (or the demo coffer), or "*" for every coffer. */
    coffer: z.string().refine((c) => c === '*' || COFFER_NAME.test(c), 'must be a coffer name such as "demo-1250000000" or "*"'),
    /** Allowed actions: read (GET/HEAD), write (PUT, multipart), list (ListParts, ListMultipartUploads), manage
     * (PutCofferLifecycle / GetCofferLifecycle: expiry removes data, so it is not part of write), or "*". */
    actions: z.array(z.enum(ACTIONS, { error: `must be one of ${ACTIONS.join(', ')}` })).min(1, 'must list at least one action'),
  });
}
