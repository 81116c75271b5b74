/**
 * Wires CONNECT interception from the configuration: the CA (configured files, reloaded when they
 * change, or the local one created on first start), the bounded leaf-certificate cache, and the
 * CONNECT handler with its metrics and logs. With `egress.enabled` false the handler still answers
 * every CONNECT (403, logged and counted): ./connect-handling.ts, which a gateway without egress loads
 * instead of this file and its X.509 stack (src/app/configured-modules.ts).
 */
import { X509Certificate } from 'node:crypto';
import { dirname, join, resolve } from 'node:path';
import type { GatewayConfig } from '../config/schema';
import { startTlsReloader } from '../server/tls-reloader';
import { caProblem } from './ca-checks';
import { createCertificateAuthority, ensureLocalCertificateAuthority, type CertificateAuthority } from './certificate-authority';
import { connectHandlerOptions, createRefusingEgress, type Egress, type EgressDeps } from './connect-handling';
import { createConnectInterceptor } from './connect-interceptor';
import { LeafCertificateCache } from './leaf-certificate-cache';

export type { Egress } from './connect-handling';

/** CONNECT interception as configured; with `egress.enabled` false, the refusing handler alone. */
export async function createEgress(config: GatewayConfig, deps: EgressDeps): Promise<Egress> {
  const egress = config.egress;
  const handlerOptions = connectHandlerOptions(config, deps);
  if (!egress.enabled) return createRefusingEgress(config, deps);

  let authority: CertificateAuthority;
  let caCertFile: string;
  if (egress.ca !== undefined) {
    authority = createCertificateAuthority(egress.ca);
    caCertFile = resolve(egress.ca.certFile);
  } else {
    // Next to the keyring by default (./data/egress-ca), so a gateway's local secrets stay together.
    const directory = egress.localCaDirectory ?? join(dirname(config.keyring.directory), 'egress-ca');
    const local = await ensureLocalCertificateAuthority(directory, config.server.virtualHostSuffixes);
    authority = local.authority;
    caCertFile = resolve(local.certFile);
    // The path only: the key's location is the directory's business, its content is never logged.
    deps.log.info({ caCertFile, created: local.created }, local.created ? 'egress CA created' : 'egress CA loaded');
  }
  deps.metrics.egressCaNotAfter.set(Math.floor(authority.notAfter.getTime() / 1000));
  const certificates = new LeafCertificateCache({
    issue: (dnsName, validityMs) => authority.issue(dnsName, validityMs),
    validityMs: egress.leafValiditySeconds * 1000,
    maxEntries: egress.certificateCacheEntries,
    issuancePerMinute: egress.issuancePerMinute,
    onIssued: () => deps.metrics.egressCertificatesIssued.inc(),
  });

  // A configured CA (a mounted Secret that cert-manager renews) is reloaded like the listener's TLS
  // files: content-compared, debounced, checked before use; a bad pair keeps the current CA.
  const ca = egress.ca;
  const reloader =
    ca === undefined
      ? undefined
      : startTlsReloader({
          certFile: ca.certFile,
          keyFile: ca.keyFile,
          current: { cert: ca.certPem, key: ca.keyPem },
          intervalMs: ca.reloadIntervalMs,
          apply: (pair) => {
            const problem = caProblem(pair.cert, pair.key);
            if (problem !== undefined) throw new Error(problem);
            authority = createCertificateAuthority({ certPem: pair.cert, keyPem: pair.key });
            // Leaves of the previous CA are not handed out again; the next CONNECT per name gets a new one.
            certificates.clear();
            deps.metrics.egressCaNotAfter.set(Math.floor(new X509Certificate(pair.cert).validToDate.getTime() / 1000));
          },
          onReload: (result) => deps.metrics.egressCaReloads.inc({ result }),
          log: deps.log,
        });
  return { onConnect: createConnectInterceptor({ ...handlerOptions, certificates }), caCertFile, stop: () => reloader?.stop() };
}
