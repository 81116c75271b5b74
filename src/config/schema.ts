/**
 * The one configuration schema of the gateway (zod 4). Every object is strict: an unknown key is an
 * error at every level. Field comments are the reference documentation (README, Helm values,
 * docs/config.example.yaml); keep them in sync.
 *
 * `...File` fields name files that are read while the configuration loads (through the injected
 * `ConfigIo`), so a missing or unreadable file is reported together with every other problem. The
 * parsed configuration carries the file content next to the path (`secretKey`, `certPem`/`keyPem`,
 * …); the runtime never needs to read those files again, except the JWKS bearer token file, which
 * rotates (Kubernetes projected tokens) and is re-read on every JWKS fetch, and the TLS certificate
 * and key, which are watched and reloaded when they change (src/server/tls-reloader.ts).
 *
 * Messages written here never include a configured value: several fields hold secrets.
 *
 * This file is the stable entry: importers use it, never the files under schema/. Where things live:
 * - A field type or helper not tied to one section (sizes, URLs, names, secret/text files, `problem`,
 *   `whenValid`) → schema/building-blocks.ts.
 * - A section built by its own function → schema/<section>.ts (server, egress, auth, lifecycle,
 *   policies, coffer); a part of a section → schema/<section>-<part>.ts (auth-grants, auth-jwt,
 *   coffer-upstream, coffer-role, coffer-kms, coffer-cors). A new field goes into the file of its section; a new
 *   section gets its own file and one line in root.ts.
 * - The top-level object, the small top-level sections written inline in it (keyring,
 *   embeddedUpstream, demo, kms, sts, roles, logging), checks across sections (root superRefine with
 *   `whenValid` + `crossProblem`) and the exported types → schema/root.ts.
 * - Anything used outside src/config/schema/ is re-exported below, by name (the helpers stay private).
 */
export { GiB, KiB, MiB, COFFER_NAME, isLoopbackHost, jsonSchemaOverrides, type ConfigIo } from './schema/building-blocks';
export { UNSUPPORTED_FIELDS, type JwtAlgorithm } from './schema/auth-jwt';
export {
  DEMO_DEFAULT_COFFER,
  DEMO_SCRATCH_COFFER,
  LOG_LEVELS,
  REDACTED,
  SECRET_FIELD_NAMES,
  createConfigSchema,
  parseCofferConfig,
  type AccessKeyConfig,
  type AuthConfig,
  type CofferConfig,
  type CofferKmsConfig,
  type ConfigSchema,
  type DeepReadonly,
  type EgressConfig,
  type GatewayConfig,
  type GatewayConfigInput,
  type GrantAction,
  type GrantConfig,
  type JwtConfig,
  type JwtRuleConfig,
  type RoleConfig,
  type ServerConfig,
  type UpstreamConfig,
} from './schema/root';
