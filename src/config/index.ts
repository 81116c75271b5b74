/** Public surface of the configuration module. */
export { ConfigError, isConfigError } from './config-error';
export { EMBEDDED_PRESET, deepFreeze, formatPath, loadConfig, parseConfig, redactConfig, type LoadConfigOptions } from './load-config';
export { ENV_PREFIX, NAMED_ENV_VARIABLES } from './env-overrides';
export * from './schema';
