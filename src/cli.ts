#!/usr/bin/env node
/**
 * coffer-gateway command line. `serve` runs the gateway (what `npm start` runs).
 */
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig } from './config';
import { startGateway } from './serve';

const HELP = `Usage: coffer-gateway <command> [options]

Commands:
  serve        Run the gateway (data plane on server.port, health and metrics on server.adminPort).

Options for serve:
  -c, --config <file>   Configuration file (YAML or JSON). Default: $COFFER_CONFIG; without one, the
                        embedded default: a local upstream in ./data/upstream, a local keyring in
                        ./data/keyring and the demo coffer on 127.0.0.1:8080 ($PORT overrides).
  -h, --help            Show this help.

Environment: PORT, COFFER_CONFIG, COFFER_DEMO_SECRET_ID, COFFER_DEMO_SECRET_KEY, COFFER__<PATH>=<value>.
`;

async function serve(args: string[]): Promise<void> {
  const { values } = parseArgs({ args, options: { config: { type: 'string', short: 'c' }, help: { type: 'boolean', short: 'h' } }, strict: true });
  if (values.help === true) {
    process.stdout.write(HELP);
    return;
  }
  const config = loadConfig({ file: values.config });
  const gateway = await startGateway(config);
  if (gateway.demoCredentials !== undefined) {
    // Printed once, to the terminal, on purpose: the demo needs them and they are new on every start
    // unless COFFER_DEMO_SECRET_ID / COFFER_DEMO_SECRET_KEY are set. Never written to the JSON log.
    const { secretId, secretKey, coffer } = gateway.demoCredentials;
    process.stderr.write(
      `\ncoffer-gateway demo: coffer ${coffer} at http://${config.server.host}:${gateway.port}\n` +
        `  SecretId:  ${secretId}\n  SecretKey: ${secretKey}\n` +
        `  (set COFFER_DEMO_SECRET_ID and COFFER_DEMO_SECRET_KEY to keep them across restarts)\n\n`,
    );
  }
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    process.stderr.write(`${signal}: draining for up to ${config.server.shutdownGraceMs} ms\n`);
    gateway.stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  if (command === 'serve') return serve(rest);
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(HELP);
    return;
  }
  process.stderr.write(`Unknown command ${JSON.stringify(command)}.\n\n${HELP}`);
  process.exitCode = 2;
}

main(process.argv.slice(2)).catch((error: unknown) => {
  if (error instanceof ConfigError) process.stderr.write(`${error.message}\n`);
  else process.stderr.write(`coffer-gateway failed to start: ${(error as Error)?.message ?? String(error)}\n`);
  process.exit(1);
});
