/**
 * The root of the configuration schema: the top-level object wiring every section, the small top-level
 * sections written inline (keyring, embeddedUpstream, demo, kms, sts, roles, logging), the checks across
 * sections (superRefine + `whenValid` + `crossProblem`), and the exported configuration types.
 */
import { z } from 'zod';
import { LOOPBACK_ORIGINS } from '../../http/origin-pattern';
import { corsSchema } from './coffer-cors';
import { bool, cofferName, crossProblem, inlineSecret, int, whenValid, type ConfigIo } from './building-blocks';
import { authSchema } from './auth';
import { cofferSchema } from './coffer';
import { egressSchema } from './egress';
import { lifecycleSchema } from './lifecycle';
import { policiesSchema } from './policies';
import { cofferClassesSchema } from './coffer-classes';
import { serverSchema } from './server';
import { s3Schema } from './s3';

/** What secrets are replaced with by `redactConfig`. */
export const REDACTED = '[redacted]';
/** Names of the parsed-configuration fields that hold secret values (redacted by `redactConfig`). */
export const SECRET_FIELD_NAMES: ReadonlySet<string> = new Set(['secretKey', 'secretAccessKey', 'keyPem']);

export const DEMO_DEFAULT_COFFER = 'demo-1250000000';
export const DEMO_SCRATCH_COFFER = 'scratch-1250000000';

export const LOG_LEVELS = ['silent', 'error', 'warn', 'info', 'debug', 'trace'] as const;

/**
 * Builds the schema. `io` reads the `...File` fields during parsing, so read failures are reported
 * with every other problem.
 */
export function createConfigSchema(io: ConfigIo) {
  return z
    .strictObject({
      /** The CDCS API listener and the admin listener. */
      server: serverSchema(io).prefault({}),
      /** How clients authenticate and what they may do. */
      auth: authSchema(io).prefault({}),
      /** Coffers served by the gateway: coffer name ("<name>-<APPID>") → settings. */
      coffers: z.record(cofferName(), cofferSchema(io)).default({}),
      /** Local keyring for `kms.type: local` (and the demo coffer). */
      keyring: z
        .strictObject({
          /** Directory holding the local key-encryption keys (mode 0700). */
          directory: z.string().min(1, 'must not be empty').default('./data/keyring'),
          /** Create the directory and missing keys on first use. Disable in production to fail on a missing key. */
          create: bool().default(true),
        })
        .prefault({}),
      /** A built-in S3-compatible store on the local disk, used by the demo coffer. Enabled by default
       * only when no configuration file is given. */
      embeddedUpstream: z
        .strictObject({
          enabled: bool().default(false),
          /** Directory of the stored (encrypted) objects. */
          directory: z.string().min(1, 'must not be empty').default('./data/upstream'),
        })
        .prefault({}),
      /** The demo coffer: embedded upstream + local keyring + one access key with all actions on it.
       * Enabled by default only when no configuration file is given. */
      demo: z
        .strictObject({
          enabled: bool().default(false),
          /** Name of the demo coffer; must not also appear in `coffers`. */
          coffer: cofferName().default(DEMO_DEFAULT_COFFER),
          /** A second demo coffer on the embedded upstream that allows overwrite and delete (writeOnce
           * false), for S3 tools that delete (restic locks and prune, rclone sync); the demo key reaches both. */
          scratchCoffer: cofferName().default(DEMO_SCRATCH_COFFER),
          /** SecretId of the demo access key (env COFFER_DEMO_SECRET_ID); generated at start when unset. */
          secretId: z
            .string()
            .regex(/^[A-Za-z0-9._-]{3,128}$/, 'must be 3 to 128 letters, digits, ".", "_" or "-"')
            .optional(),
          /** SecretKey of the demo access key (env COFFER_DEMO_SECRET_KEY). When neither is set, a fresh
           * random pair is generated at start and printed once. A secret. */
          secretKey: inlineSecret(16).optional(),
          /** Which browser pages may call the demo coffer (CORS). Default: pages served from this
           * machine (localhost, 127.0.0.1, [::1]) on any port, so the browser example works as is. */
          cors: corsSchema(LOOPBACK_ORIGINS),
        })
        .prefault({}),
      /** KMS client behaviour (all coffers). */
      kms: z
        .strictObject({
          /** Attempts per KMS call; only throttling and transient errors are retried. Five meets
           * "30 % throttling → ≥ 99 % success" (0.3^5 ≈ 0.24 % failures; three would fail ≈ 2.7 %). */
          maxAttempts: int(1, 10).default(5),
          /** Timeout of one KMS attempt. */
          requestTimeoutMs: int(100, 120_000).default(5_000),
          /** Overall deadline of one KMS call, retries and backoff included: past it the attempt in
           * flight is cancelled and the request answered 409 KMSFailed (reason timeout). */
          deadlineMs: int(100, 600_000).default(10_000),
          /** How long a data key may be reused from memory; 0 disables the cache. */
          dataKeyCacheMaxAgeSeconds: int(0, 86_400).default(300),
          /** Most data keys held in memory; 0 disables the cache. */
          dataKeyCacheMaxEntries: int(0, 1_000_000).default(1_000),
        })
        .prefault({}),
      /** STS client behaviour (all coffers with role.type sts). */
      sts: z
        .strictObject({
          /** Attempts per AssumeRole call; only throttling and transient errors are retried. */
          maxAttempts: int(1, 10).default(5),
          /** Timeout of one STS attempt. */
          requestTimeoutMs: int(100, 120_000).default(5_000),
          /** Overall deadline of one AssumeRole call, retries and backoff included: past it the attempt
           * in flight is cancelled and the request answered 409 AssumeRoleFailed (reason timeout). */
          deadlineMs: int(100, 600_000).default(10_000),
        })
        .prefault({}),
      /** Role credential cache. */
      roles: z
        .strictObject({
          /** Refresh assumed-role credentials this long before they expire (single-flight). */
          refreshBeforeExpirySeconds: int(0, 3_600).default(300),
        })
        .prefault({}),
      /**
       * The gateway as the HTTPS proxy of clients that keep the real endpoint names (the official SDK
       * with `Proxy` on https): `CONNECT <coffer endpoint>:443` for a coffer served here is answered
       * 200 and TLS is terminated with a leaf certificate for exactly that name, issued by this CA;
       * every other CONNECT is answered 403. Enabled by default only when no configuration file is given.
       */
      egress: egressSchema(io).prefault({}),
      /** Coffer lifecycle (expiry): how the upstreams count days, how long replicas cache a coffer's configuration. */
      lifecycle: lifecycleSchema(),
      /** Coffer policies: who each caller is to a policy, how long replicas cache a coffer's policy. */
      policies: policiesSchema(),
      cofferClasses: cofferClassesSchema(cofferSchema(io)),
      /** The S3 dialect (SigV4 clients): the gateway's region. */
      s3: s3Schema(),
      logging: z
        .strictObject({
          /** Log level. */
          level: z.enum(LOG_LEVELS, { error: `must be one of ${LOG_LEVELS.join(', ')}` }).default('info'),
        })
        .prefault({}),
    })
    .superRefine(
      (config, ctx) => {
        if (!config.demo.enabled) return;
        if (!config.embeddedUpstream.enabled) crossProblem(ctx, 'requires embeddedUpstream.enabled', ['demo', 'enabled']);
        if (Object.hasOwn(config.coffers, config.demo.coffer)) crossProblem(ctx, 'is also configured in coffers', ['demo', 'coffer']);
        if (Object.hasOwn(config.coffers, config.demo.scratchCoffer)) crossProblem(ctx, 'is also configured in coffers', ['demo', 'scratchCoffer']);
        if (config.demo.scratchCoffer === config.demo.coffer) crossProblem(ctx, 'must differ from demo.coffer', ['demo', 'scratchCoffer']);
        if ((config.demo.secretId === undefined) !== (config.demo.secretKey === undefined)) {
          crossProblem(ctx, 'set both demo.secretId and demo.secretKey (COFFER_DEMO_SECRET_ID / COFFER_DEMO_SECRET_KEY), or neither to have them generated at start', ['demo', 'secretKey']);
        }
      },
      whenValid('demo', 'embeddedUpstream', 'coffers', ['server', 'host']),
    )
    .superRefine(
      (config, ctx) => {
        const known = new Set(Object.keys(config.coffers));
        if (config.demo.enabled) known.add(config.demo.coffer).add(config.demo.scratchCoffer);
        const checkGrants = (grants: readonly { coffer: string }[], path: PropertyKey[]) =>
          grants.forEach((grant, i) => {
            if (grant.coffer !== '*' && !known.has(grant.coffer)) crossProblem(ctx, 'is not a configured coffer', [...path, i, 'coffer']);
          });
        config.auth.accessKeys.forEach((key, i) => checkGrants(key.grants, ['auth', 'accessKeys', i, 'grants']));
        config.auth.accessKeys.forEach((key, i) => {
          // The key-only coffer must be one the key's grants reach; it binds the coffer only then.
          if (key.keyOnlyPathCoffer !== undefined && !key.grants.some((grant) => grant.coffer === key.keyOnlyPathCoffer || grant.coffer === '*')) {
            crossProblem(ctx, "is not a coffer this key's grants name", ['auth', 'accessKeys', i, 'keyOnlyPathCoffer']);
          }
        });
        config.auth.jwt?.rules.forEach((rule, i) => checkGrants(rule.grants, ['auth', 'jwt', 'rules', i, 'grants']));
      },
      whenValid('coffers', 'demo', 'auth'),
    )
    .superRefine(
      (config, ctx) => {
        const seen = new Set<string>();
        if (config.demo.enabled && config.demo.secretId !== undefined) seen.add(config.demo.secretId);
        config.auth.accessKeys.forEach((key, i) => {
          if (seen.has(key.secretId)) crossProblem(ctx, 'is used by another access key (or the demo key)', ['auth', 'accessKeys', i, 'secretId']);
          seen.add(key.secretId);
        });
      },
      whenValid(['auth', 'accessKeys'], 'demo'),
    )
    .superRefine(
      (config, ctx) => {
        if (Object.keys(config.coffers).length === 0 && !config.demo.enabled) {
          crossProblem(ctx, 'no coffer is configured (and the demo coffer is disabled)', ['coffers']);
        }
        if (config.auth.accessKeys.length === 0 && config.auth.jwt === undefined && !config.demo.enabled) {
          crossProblem(ctx, 'no access key, JWT issuer or demo key is configured, so no request could be authorized', ['auth']);
        }
      },
      whenValid('coffers', 'auth', 'demo'),
    )
    .superRefine(
      (config, ctx) => {
        // A mapping of a SecretId no key has would silently map nobody (a typo must not pass).
        const keys = new Set(config.auth.accessKeys.map((key) => key.secretId));
        if (config.demo.enabled && config.demo.secretId !== undefined) keys.add(config.demo.secretId);
        config.policies.principals.forEach((mapping, i) => {
          if (mapping.accessKey !== undefined && !keys.has(mapping.accessKey)) crossProblem(ctx, 'is not the SecretId of a configured access key', ['policies', 'principals', i, 'accessKey']);
        });
      },
      whenValid('policies', ['auth', 'accessKeys'], 'demo'),
    )
    .superRefine(
      (config, ctx) => {
        for (const [name, coffer] of Object.entries(config.coffers)) {
          if (coffer.role.type === 'sts' && config.roles.refreshBeforeExpirySeconds >= coffer.role.durationSeconds) {
            crossProblem(ctx, `must be shorter than coffers.${name}.role.durationSeconds`, ['roles', 'refreshBeforeExpirySeconds']);
          }
        }
      },
      whenValid('coffers', 'roles'),
    );
}

export type ConfigSchema = ReturnType<typeof createConfigSchema>;

export type DeepReadonly<T> = T extends readonly (infer U)[] ? readonly DeepReadonly<U>[] : T extends object ? { readonly [K in keyof T]: DeepReadonly<T[K]> } : T;

/** The validated, deep-frozen configuration. */
export type GatewayConfig = DeepReadonly<z.output<ConfigSchema>>;
export type ServerConfig = GatewayConfig['server'];
export type AuthConfig = GatewayConfig['auth'];
export type AccessKeyConfig = AuthConfig['accessKeys'][number];
export type JwtConfig = NonNullable<AuthConfig['jwt']>;
export type JwtRuleConfig = JwtConfig['rules'][number];
export type GrantConfig = AccessKeyConfig['grants'][number];
export type GrantAction = GrantConfig['actions'][number];
export type CofferConfig = GatewayConfig['coffers'][string];
export type UpstreamConfig = CofferConfig['upstream'];
export type RoleConfig = CofferConfig['role'];
export type CofferKmsConfig = CofferConfig['kms'];
export type EgressConfig = GatewayConfig['egress'];
/** The raw input shape (before defaults and file reading), e.g. for typed test fixtures. */
export type GatewayConfigInput = z.input<ConfigSchema>;

/**
 * One coffer's configuration built by the program rather than read from a file (the embedded demo
 * coffer), validated and defaulted by the same coffer schema as configured coffers. It reads no files.
 */
export function parseCofferConfig(raw: z.input<ReturnType<typeof cofferSchema>>): CofferConfig {
  return cofferSchema({
    readFile: () => {
      throw new Error('a program-built coffer reads no files');
    },
  }).parse(raw);
}
