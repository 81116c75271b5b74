/** `coffer-gateway serve`: runs the gateway until SIGTERM/SIGINT (what `npm start` and the image run). */
import { loadConfig } from '../config';
import { startGateway } from '../app/serve';
import { CONFIG_OPTION, HELP_OPTION, UsageError, parseCommandArgs } from './args';
import { isClusterPrimary, parseWorkerCount, superviseWorkers } from './cluster';
import type { CliIo } from './cli-io';

export const SERVE_HELP = `Usage: coffer-gateway serve [options]

Runs the gateway: the data plane on server.port, health and metrics on server.adminPort.

Options:
  -c, --config <file>   Configuration file (YAML or JSON). Default: $COFFER_CONFIG; without one, the
                        embedded default: a local upstream in ./data/upstream, a local keyring in
                        ./data/keyring and the demo coffer on 127.0.0.1:8080 ($PORT overrides).
  -w, --workers <n>     Run n gateway processes on the same ports (node:cluster); "auto": one per CPU
                        this container may use. Default: one process (its crypto already uses every CPU).
  -h, --help            Show this help.

Environment: PORT, COFFER_CONFIG, COFFER_DEMO_SECRET_ID, COFFER_DEMO_SECRET_KEY, COFFER__<PATH>=<value>.
`;

/**
 * What `serve` prints about the demo coffer, once, to the terminal (never to the JSON log). The
 * SecretKey only when the gateway generated it: one from COFFER_DEMO_SECRET_KEY or the configuration
 * is already known to whoever set it, and printing it would copy a secret into terminal scrollback
 * and CI logs for nothing.
 */
export function demoBanner(demo: { readonly secretId: string; readonly secretKey: string; readonly coffer: string; readonly secretKeyGenerated: boolean }, url: string, egressCaFile?: string): string {
  const secretKey = demo.secretKeyGenerated ? `${demo.secretKey}\n  (generated: set COFFER_DEMO_SECRET_ID and COFFER_DEMO_SECRET_KEY to keep them across restarts)` : '(as configured; not printed)';
  // The certificate's path (public); the CA key next to it is never printed.
  const proxy = egressCaFile === undefined ? '' : `  HTTPS proxy: Proxy ${url} with NODE_EXTRA_CA_CERTS=${egressCaFile}\n`;
  return `\ncoffer-gateway demo: coffer ${demo.coffer} at ${url}\n  SecretId:  ${demo.secretId}\n  SecretKey: ${secretKey}\n${proxy}\n`;
}

/** Resolves once the gateway listens; the process then runs until a signal ends it. */
export async function serveCommand(args: readonly string[], io: CliIo): Promise<number | 'running'> {
  const values = parseCommandArgs('serve', args, { ...CONFIG_OPTION, ...HELP_OPTION, workers: { type: 'string', short: 'w' } });
  if (values.help === true) {
    io.stdout.write(SERVE_HELP);
    return 0;
  }
  const config = loadConfig({ file: values.config, env: io.env });
  const workers = parseWorkerCount(values.workers);
  if (isClusterPrimary(workers)) {
    // The demo's embedded upstream and generated keys would differ per worker.
    if (config.demo.enabled) throw new UsageError('serve: --workers needs configured coffers; the demo (embedded upstream, generated keys) runs as one process.');
    return superviseWorkers(workers, io);
  }
  const gateway = await startGateway(config, { releaseStartUpGarbage: true });
  if (gateway.demoCredentials !== undefined) io.stderr.write(demoBanner(gateway.demoCredentials, `http://${config.server.host}:${gateway.port}`, gateway.egressCaFile));
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    io.stderr.write(`${signal}: draining for up to ${config.server.shutdownGraceMs} ms\n`);
    gateway.stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  return 'running';
}
