/**
 * Thrown by `loadConfig` when the configuration cannot be used. `problems` lists every problem found
 * in one pass (file, environment, secret files and schema), each prefixed with the configuration
 * path it concerns, e.g. `coffers.demo-1250000000.upstream.bucket: required`.
 *
 * No problem text ever contains a configured value of a secret field or the content of a file; the
 * error deliberately carries no `cause` (a zod issue keeps the rejected input, which may be a secret).
 */
export class ConfigError extends Error {
  readonly problems: readonly string[];

  constructor(problems: readonly string[], source?: string) {
    const where = source === undefined ? 'configuration' : `configuration (file ${JSON.stringify(source)})`;
    const count = problems.length === 1 ? '1 problem' : `${problems.length} problems`;
    super(`Invalid ${where}, ${count}:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
    this.problems = Object.freeze([...problems]);
  }
}

export function isConfigError(value: unknown): value is ConfigError {
  return value instanceof ConfigError;
}
