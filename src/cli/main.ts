/**
 * The command dispatcher: `coffer-gateway <command> [options]`. Each command is its own module and
 * returns its exit code; this file only picks the command and turns thrown errors into exit codes
 * (usage errors 2, everything else 1), so every command fails the same way.
 */
import { ConfigError } from '../config';
import { UsageError } from './args';
import { describeError } from './cli-coffer';
import { EXIT_FAILURE, EXIT_USAGE, type CliIo } from './cli-io';
import { decryptCommand } from './decrypt-command';
import { doctorCommand } from './doctor-command';
import { gcCommand } from './gc-command';
import { rewrapCommand } from './rewrap-command';
import { serveCommand } from './serve-command';

interface Command {
  readonly summary: string;
  readonly run: (args: readonly string[], io: CliIo) => Promise<number | 'running'>;
}

const COMMANDS: Readonly<Record<string, Command>> = {
  serve: { summary: 'Run the gateway (data plane on server.port, health and metrics on server.adminPort).', run: serveCommand },
  decrypt: { summary: 'Recover an object without a running gateway: from the upstream bucket, or from downloaded files.', run: decryptCommand },
  rewrap: { summary: "Key rotation: rewrap every object's data key under another KMS / keyring key (manifests only).", run: rewrapCommand },
  doctor: { summary: 'Check the configuration and, per coffer, the role, the key provider and the upstream bucket.', run: doctorCommand },
  gc: { summary: 'Delete orphaned data objects (written, but no manifest or open upload refers to them).', run: gcCommand },
};

export const HELP = `Usage: coffer-gateway <command> [options]

Commands:
${Object.entries(COMMANDS)
  .map(([name, command]) => `  ${name.padEnd(10)} ${command.summary}`)
  .join('\n')}

Run \`coffer-gateway <command> --help\` for a command's options.
Exit codes: 0 success, 1 failure (a check, an object, the configuration), 2 usage error.
`;

export async function runCli(argv: readonly string[], io: CliIo): Promise<number | 'running'> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    // `help <command>` is `<command> --help`.
    const topic = name === 'help' && rest[0] !== undefined ? COMMANDS[rest[0]] : undefined;
    if (topic !== undefined) return topic.run(['--help'], io);
    io.stdout.write(HELP);
    return 0;
  }
  const command = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (command === undefined) {
    io.stderr.write(`Unknown command ${JSON.stringify(name)}.\n\n${HELP}`);
    return EXIT_USAGE;
  }
  try {
    return await command.run(rest, io);
  } catch (error) {
    if (error instanceof UsageError) {
      io.stderr.write(`coffer-gateway ${name}: ${error.message}\n`);
      return EXIT_USAGE;
    }
    if (name === 'serve') {
      // Exactly what serve always printed.
      if (error instanceof ConfigError) io.stderr.write(`${error.message}\n`);
      else io.stderr.write(`coffer-gateway failed to start: ${(error as Error)?.message ?? String(error)}\n`);
      return EXIT_FAILURE;
    }
    io.stderr.write(`coffer-gateway ${name}: ${describeError(error)}\n`);
    return EXIT_FAILURE;
  }
}
