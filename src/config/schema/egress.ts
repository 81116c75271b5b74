/** The `egress` section: the gateway as the HTTPS proxy of clients (CONNECT interception, its CA). */
import { z } from 'zod';
import { caProblem } from '../../egress/ca-checks';
import { bool, certificateKeyFiles, int, problem, whenValid, type ConfigIo } from './building-blocks';

export function egressSchema(io: ConfigIo) {
  // The egress CA (e.g. a cert-manager Secret's tls.crt / tls.key): a CA whose key matches, of a supported type.
  const ca = certificateKeyFiles(io, (certPem, keyPem) => {
    const complaint = caProblem(certPem, keyPem);
    return complaint === undefined ? undefined : { message: complaint, field: 'certFile' };
  });
  return z
    .strictObject({
      /** Intercept CONNECT to coffer endpoints. When false, every CONNECT is answered 403. */
      enabled: bool().default(false),
      /** The CA that issues the leaf certificates (files, e.g. a mounted Kubernetes Secret). Clients must trust it. */
      ca: ca.optional(),
      /**
       * Without `ca`: a local CA is created in this directory on first start (`ca.pem`, and
       * `ca-key.pem` with mode 0600), name-constrained to the coffer endpoint domains, and reused
       * afterwards. Default: `egress-ca` next to `keyring.directory` (`./data/egress-ca`).
       */
      localCaDirectory: z.string().min(1, 'must not be empty').optional(),
      /** Lifetime of a leaf certificate (never beyond the CA's); a cached one is replaced after half of it. */
      leafValiditySeconds: int(600, 604_800).default(86_400),
      /** Most leaf certificates (one per host name) kept in memory. */
      certificateCacheEntries: int(1, 100_000).default(1_000),
      /** Leaf certificates issued per minute at most (a minute's worth may be issued at once); beyond it a CONNECT is answered 503. */
      issuancePerMinute: int(1, 100_000).default(60),
      /** Time allowed for the TLS handshake inside an intercepted tunnel. */
      handshakeTimeoutMs: int(1000, 120_000).default(10_000),
    })
    .superRefine(
      (egress, ctx) => {
        if (egress.ca !== undefined && egress.localCaDirectory !== undefined) problem(ctx, 'set only one of ca and localCaDirectory', ['localCaDirectory']);
      },
      whenValid('ca', 'localCaDirectory'),
    );
}
