/** The `lifecycle` section (issue 16: PutCofferLifecycle / GetCofferLifecycle). */
import { z } from 'zod';
import { int } from './building-blocks';

export function lifecycleSchema() {
  return z
    .strictObject({
      /**
       * Length in seconds of a lifecycle "day" as the upstreams' lifecycle engines count it. 86400 for
       * AWS S3 and production Ceph; a Ceph RGW run with `rgw lc debug interval = S` counts S seconds
       * (tests). The gateway hides an object N of these after its completion, as the upstream does.
       */
      dayLengthSeconds: int(1, 86_400).default(86_400),
      /** How long a replica trusts a coffer's lifecycle record it has read: a changed configuration
       * applies on every replica within this time (at once on the replica that took the PUT). */
      cacheSeconds: int(0, 3_600).default(30),
    })
    .prefault({});
}
