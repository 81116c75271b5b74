/** `coffer-gateway serve`: runs the gateway until SIGTERM/SIGINT (what `npm start` and the image run). */
import { loadConfig } from '../config';
import { startGateway } from '../serve';
import { CONFIG_OPTION, HELP_OPTION, parseCommandArgs } from './args';
import type { CliIo } from './cli-io';

export const SERVE_HELP = `Usage: coffer-gateway serve [options]

Runs the gateway: the data plane on server.port, health and metrics on server.adminPort.

Options:
  -c, --config <file>   Configuration file (YAML or JSON). Default: $COFFER_CONFIG; without one, the
                        embedded default: a local upstream in ./data/upstream, a local keyring in
                        ./data/keyring and the demo coffer on 127.0.0.1:8080 ($PORT overrides).
  -h, --help            Show this help.

Environment: PORT, COFFER_CONFIG, COFFER_DEMO_SECRET_ID, COFFER_DEMO_SECRET_KEY, COFFER__<PATH>=<value>.
`;

/** Resolves once the gateway listens; the process then runs until a signal ends it. */
export async function serveCommand(args: readonly string[], io: CliIo): Promise<number | 'running'> {
  const values = parseCommandArgs('serve', args, { ...CONFIG_OPTION, ...HELP_OPTION });
  if (values.help === true) {
    io.stdout.write(SERVE_HELP);
    return 0;
  }
  const config = loadConfig({ file: values.config, env: io.env });
  const gateway = await startGateway(config);
  if (gateway.demoCredentials !== undefined) {
    // Printed once, to the terminal, on purpose: the demo needs them and they are new on every start
    // unless COFFER_DEMO_SECRET_ID / COFFER_DEMO_SECRET_KEY are set. Never written to the JSON log.
    const { secretId, secretKey, coffer } = gateway.demoCredentials;
    io.stderr.write(
      `\ncoffer-gateway demo: coffer ${coffer} at http://${config.server.host}:${gateway.port}\n` +
        `  SecretId:  ${secretId}\n  SecretKey: ${secretKey}\n` +
        `  (set COFFER_DEMO_SECRET_ID and COFFER_DEMO_SECRET_KEY to keep them across restarts)\n\n`,
    );
  }
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
