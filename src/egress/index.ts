/**
 * Wires CONNECT interception from the configuration: the CA (configured files or the local one created
 * on first start), the bounded leaf-certificate cache, and the CONNECT handler with its metrics and logs.
 * With `egress.enabled` false the handler still answers every CONNECT (403, logged and counted).
 */
import { dirname, join, resolve } from 'node:path';
import type { GatewayConfig } from '../config/schema';
import type { Logger } from '../observability/logger';
import type { GatewayMetrics } from '../observability/metrics';
import { ensureLocalCertificateAuthority, loadCertificateAuthority, type CertificateAuthority } from './certificate-authority';
import { createConnectInterceptor, type ConnectHandler } from './connect-interceptor';
import { LeafCertificateCache } from './leaf-certificate-cache';

export interface Egress {
  readonly onConnect: ConnectHandler;
  /** Absolute path of the CA certificate clients must trust (configured or created), when enabled. */
  readonly caCertFile?: string;
}

export async function createEgress(config: GatewayConfig, deps: { readonly isServedCoffer: (coffer: string) => boolean; readonly metrics: GatewayMetrics; readonly log: Logger }): Promise<Egress> {
  const egress = config.egress;
  const rules = { virtualHostSuffixes: config.server.virtualHostSuffixes, isServedCoffer: deps.isServedCoffer };
  const handlerOptions = {
    rules,
    handshakeTimeoutMs: egress.handshakeTimeoutMs,
    log: deps.log,
    onConnect: (result: string) => deps.metrics.connects.inc({ result }),
    onHandshake: (result: string) => deps.metrics.egressHandshakes.inc({ result }),
  };
  if (!egress.enabled) return { onConnect: createConnectInterceptor(handlerOptions) };

  let authority: CertificateAuthority;
  let caCertFile: string;
  if (egress.ca !== undefined) {
    authority = await loadCertificateAuthority(egress.ca);
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
  const certificates = new LeafCertificateCache({
    issue: (dnsName, validityMs) => authority.issue(dnsName, validityMs),
    validityMs: egress.leafValiditySeconds * 1000,
    maxEntries: egress.certificateCacheEntries,
    issuancePerMinute: egress.issuancePerMinute,
    onIssued: () => deps.metrics.egressCertificatesIssued.inc(),
  });
  return { onConnect: createConnectInterceptor({ ...handlerOptions, certificates }), caCertFile };
}
