/**
 * What every gateway's CONNECT handling shares, with CONNECT interception enabled or not: the handler's
 * rules, timeouts, metrics and log, and the answer when `egress.enabled` is false (every CONNECT is
 * refused with 403, logged and counted). Kept apart from ./index.ts, the enabled egress, because that
 * one loads the CA's X.509 stack, which a gateway without egress never needs (src/app/configured-modules.ts).
 */
import type { GatewayConfig } from '../config/schema';
import type { Logger } from '../observability/logger';
import type { GatewayMetrics } from '../observability/metrics';
import { createConnectInterceptor, type ConnectHandler, type ConnectInterceptorOptions } from './connect-interceptor';

export interface Egress {
  readonly onConnect: ConnectHandler;
  /** Absolute path of the CA certificate clients must trust (configured or created), when enabled. */
  readonly caCertFile?: string;
  /** Stops watching the CA files. */
  stop(): void;
}

export interface EgressDeps {
  readonly isServedCoffer: (coffer: string) => boolean;
  readonly metrics: GatewayMetrics;
  readonly log: Logger;
}

/** The CONNECT handler's options from the configuration, without certificates (those only the enabled egress has). */
export function connectHandlerOptions(config: GatewayConfig, deps: EgressDeps): Omit<ConnectInterceptorOptions, 'certificates'> {
  return {
    rules: { virtualHostSuffixes: config.server.virtualHostSuffixes, isServedCoffer: deps.isServedCoffer },
    handshakeTimeoutMs: config.egress.handshakeTimeoutMs,
    log: deps.log,
    onConnect: (result: string) => deps.metrics.connects.inc({ result }),
    onHandshake: (result: string) => deps.metrics.egressHandshakes.inc({ result }),
  };
}

/** `egress.enabled` false: the handler still answers every CONNECT (403, logged and counted). */
export function createRefusingEgress(config: GatewayConfig, deps: EgressDeps): Egress {
  return { onConnect: createConnectInterceptor(connectHandlerOptions(config, deps)), stop: () => undefined };
}
