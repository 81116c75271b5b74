/**
 * `coffer-gateway serve`: the gateway built from a frozen configuration (src/app/coffer-gateway.ts),
 * mounted in an Express 5 app exactly as a user would mount it, on the data-plane listener; the admin
 * listener beside it; TLS certificate reloading; a graceful drain on stop.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createAdminServer } from '../server/admin/admin-server';
import { buildCofferGateway, type CofferGateway } from './coffer-gateway';
import { Closers } from './closers';
import type { GatewayConfig } from '../config';
import { createGatewayListener } from '../server/gateway-server';
import { startTlsReloader } from '../server/tls-reloader';
import type { Logger } from '../observability/logger';
import type { GatewayMetrics } from '../observability/metrics';
import { releaseStartUpGarbage } from '../util/garbage-collection';

/**
 * Express 5's application, as far as `serve` uses it. Typed here rather than through @types/express:
 * the image compiles src/ with TypeScript and Node's types only (docker/toolchain).
 */
interface ExpressApp {
  (req: IncomingMessage, res: ServerResponse): void;
  use(handler: CofferGateway['handler']): void;
  disable(setting: string): void;
}
// eslint-disable-next-line @typescript-eslint/no-require-imports -- typed above, not through @types/express (see ExpressApp)
const express = require('express') as () => ExpressApp;

export interface RunningGateway {
  readonly port: number;
  readonly adminPort: number;
  /** `secretKeyGenerated`: the gateway made the SecretKey up (none was configured), so only it can tell the user. */
  readonly demoCredentials?: CofferGateway['demoCredentials'];
  readonly metrics: GatewayMetrics;
  /** With `egress.enabled`: the CA certificate file HTTPS-proxy clients must trust (NODE_EXTRA_CA_CERTS). */
  readonly egressCaFile?: string;
  /**
   * Resolves once every coffer's role, upstream and key provider answered from this process; until
   * then /readyz is 503 and names what fails (src/server/admin/dependency-checks.ts).
   */
  readonly dependenciesChecked: Promise<void>;
  /** Resolves once every coffer's start-up check finished its first attempt, passed or not. */
  readonly dependenciesAttempted: Promise<void>;
  /** Readiness false, drain for up to the grace period, reset the rest, close both listeners. */
  stop(): Promise<void>;
}

export interface StartOptions {
  readonly log?: Logger;
  /**
   * The process is the gateway's own (`coffer-gateway serve`): collect start-up's garbage and give its
   * pages back before the listeners accept (src/util/garbage-collection.ts, ~8 MB of idle RSS). Off for
   * a library caller, whose heap is not the gateway's to collect.
   */
  readonly releaseStartUpGarbage?: boolean;
}

export async function startGateway(config: GatewayConfig, options: StartOptions = {}): Promise<RunningGateway> {
  // What start-up opens, undone in reverse by a failed start (a port in use: no listener, directory
  // lock or timer left behind) and by stop() alike. The admin listener goes first so it closes last:
  // /readyz answers 503 (not a refused connection) for the whole drain.
  const closers = new Closers();
  let admin: ReturnType<typeof createAdminServer> | undefined;
  closers.add(() => admin?.close());
  try {
    const gateway = await buildCofferGateway(config, options);
    closers.add(() => gateway.close());
    return await listen(config, gateway, closers, (created) => (admin = created), options.releaseStartUpGarbage === true);
  } catch (error) {
    await closers.closeAll().catch(() => undefined);
    throw error;
  }
}

async function listen(config: GatewayConfig, gateway: CofferGateway, closers: Closers, adminCreated: (admin: ReturnType<typeof createAdminServer>) => void, releaseGarbage: boolean): Promise<RunningGateway> {
  const { log, metrics } = gateway;
  const app = express();
  app.disable('x-powered-by');
  app.use(gateway.handler);
  const data = createGatewayListener(config.server, app);
  gateway.attach(data.server);
  let state: string | undefined = 'starting';
  const admin = createAdminServer({ registry: metrics.registry, readiness: { notReadyReason: () => state ?? gateway.notReadyReason() } });
  adminCreated(admin);
  const tls = config.server.tls;
  const tlsReloader =
    tls === undefined
      ? undefined
      : startTlsReloader({
          certFile: tls.certFile,
          keyFile: tls.keyFile,
          current: { cert: tls.certPem, key: tls.keyPem },
          apply: (pair) => data.setSecureContext(pair),
          intervalMs: tls.reloadIntervalMs,
          onReload: (result) => metrics.tlsReloads.inc({ result }),
          onCertificate: (notAfter) => metrics.tlsCertificateNotAfter.set(notAfter),
          log,
        });
  closers.add(() => tlsReloader?.stop());
  // Newest first on stop: readiness turns false before anything else closes.
  closers.add(() => {
    state = 'draining';
  });
  // Before the listener accepts, so no request waits for it.
  if (releaseGarbage) releaseStartUpGarbage();
  const { port } = await data.listen();
  const adminPort = await admin.listen(config.server.adminHost, config.server.adminPort);
  state = undefined;
  log.info({ port, adminPort }, 'coffer-gateway listening');
  return {
    port,
    adminPort,
    demoCredentials: gateway.demoCredentials,
    metrics,
    ...(gateway.egressCaFile === undefined ? {} : { egressCaFile: gateway.egressCaFile }),
    dependenciesChecked: gateway.dependenciesChecked,
    dependenciesAttempted: gateway.dependenciesAttempted,
    // Readiness false, TLS reload off, the gateway drained and released (its own closers), the admin listener last.
    stop: () => closers.closeAll(),
  };
}
