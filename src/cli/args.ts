/**
 * Command-line parsing shared by the commands: node:util parseArgs in strict mode, with its errors
 * turned into usage errors (exit code 2) that name the command's --help.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';

export class UsageError extends Error {
  override readonly name = 'UsageError';
}

type Options = NonNullable<ParseArgsConfig['options']>;

export function parseCommandArgs<T extends Options>(command: string, args: readonly string[], options: T) {
  try {
    return parseArgs({ args: [...args], options, strict: true as const, allowPositionals: false as const }).values;
  } catch (error) {
    // parseArgs messages name the option, never a value that could be a secret.
    const message = (error as Error).message.replace(/\. To specify a positional argument.*$/s, '.');
    throw new UsageError(`${message}\nRun \`coffer-gateway ${command} --help\` for the options.`);
  }
}

/** `--name` is required. */
export function required<T>(value: T | undefined, name: string, command: string): T {
  if (value === undefined || value === '') throw new UsageError(`--${name} is required.\nRun \`coffer-gateway ${command} --help\` for the options.`);
  return value;
}

/** Common to every command that reads the configuration. */
export const CONFIG_OPTION = { config: { type: 'string', short: 'c' } } as const;
export const HELP_OPTION = { help: { type: 'boolean', short: 'h' } } as const;

export const CONFIG_HELP = `  -c, --config <file>   Configuration file (YAML or JSON), the gateway's own. Default: $COFFER_CONFIG.
                        Environment overrides (COFFER__<PATH>=<value>) apply as for serve.`;
