/**
 * The gateway as a library: `createCofferGateway(config)` builds every stage once from the same
 * configuration object the YAML holds (validated by the same schema) and hands back a request handler
 * that mounts in Express (or any `(req, res)` listener) plus `attach(server)` for the listener hooks.
 * It opens no port: the caller owns the server (`serve` builds an Express app on it the same way).
 */
import { randomBytes } from 'node:crypto';
import type { Server } from 'node:http';
import { readFileSync } from 'node:fs';
import { cofferDependencyCheck, watchDependencies } from '../server/admin/dependency-checks';
import { createAuthenticate } from '../auth/authenticate';
import { createCosAuthenticator } from '../auth/cos-authenticator';
import { InMemoryCredentialStore, type CredentialConfig } from '../auth/credential-store';
import { createJwtAuthenticator } from '../auth/jwt-authenticator';
import { createJwtKeyResolver } from '../auth/jwt-key-source';
import type { GatewayConfig } from '../config';
import { EmbeddedUpstream } from '../embedded-upstream';
import { S3UpstreamStore } from '../upstream/s3-upstream-store';
import { createEgress } from '../egress';
import { createCdcsHandler } from '../cdcs/cdcs-handler';
import { createCofferRegistry, type CofferDefinition } from './coffer-registry';
import { DataKeyCache } from '../keys/data-key-cache';
import { createLocalKeyrings } from '../keys/local-keyring';
import { createLogger, type Logger } from '../observability/logger';
import { countingKeyProvider } from '../observability/counting-key-provider';
import { trackingUploadStore } from '../observability/tracking-upload-store';
import { createMetrics, type GatewayMetrics } from '../observability/metrics';
import { createGatewayFrontEnd, type GatewayFrontEnd } from '../server/gateway-server';
import { parseConfig } from '../config/load-config';
import { MultipartService } from '../store/multipart-service';
import { ObjectService } from '../store/object-service';
import { derivedPartsInFlight, memoryLimit, PartsInFlight } from '../store/parts-in-flight';
import { createUpstreamCoffer, type UpstreamCofferDeps } from './upstream-coffer';


export interface CofferGateway {
  /** Express-compatible `(req, res, next)`: answers every request it is given (mount it last, at the root). */
  readonly handler: GatewayFrontEnd['handler'];
  /** Installs the listener hooks on a server before it listens (see GatewayFrontEnd.attach). */
  attach(server: Server): void;
  /** Stops accepting on attached servers, drains for `server.shutdownGraceMs`, resets the rest, then releases every resource (egress, STS clients, keyrings, the embedded upstream). */
  close(): Promise<void>;
  /** Requests in progress. */
  inFlight(): number;
  readonly metrics: GatewayMetrics;
  /** `secretKeyGenerated`: the gateway made the SecretKey up (none was configured), so only it can tell the user. */
  readonly demoCredentials?: { secretId: string; secretKey: string; coffer: string; secretKeyGenerated: boolean };
  /** With `egress.enabled`: the CA certificate file HTTPS-proxy clients must trust (NODE_EXTRA_CA_CERTS). */
  readonly egressCaFile?: string;
  /** Resolves once every coffer's role, upstream and key provider answered from this process. */
  readonly dependenciesChecked: Promise<void>;
  /** Resolves once every coffer's start-up check finished its first attempt, passed or not. */
  readonly dependenciesAttempted: Promise<void>;
  /** Why the gateway is not ready (a failing dependency check), or undefined when it is. */
  notReadyReason(): string | undefined;
  readonly log: Logger;
}

export interface CofferGatewayOptions {
  /** Default: a pino logger at `logging.level`. */
  readonly log?: Logger;
  /** Reads every `...File` field of the configuration. Default: `fs.readFileSync(path, 'utf8')`. */
  readonly readFile?: (path: string) => string;
}

const EMBEDDED_MIN_PART_SIZE = 5 * 1024 * 1024;
const EMBEDDED_MAX_PART_SIZE = 5 * 1024 ** 3;

function generatedSecret(length: number): string {
  return randomBytes(length).toString('base64url').replace(/[-_]/g, 'x').slice(0, length);
}

/**
 * Validates `config` (the object a configuration file holds; the same schema and problem messages as
 * the file, no environment overrides) and builds the gateway. Throws ConfigError listing every problem.
 */
export async function createCofferGateway(config: unknown, options: CofferGatewayOptions = {}): Promise<CofferGateway> {
  return buildCofferGateway(parseConfig(config, options.readFile === undefined ? {} : { readFile: options.readFile }), options);
}

/** Builds the gateway from an already validated configuration (`loadConfig`'s result). */
export async function buildCofferGateway(config: GatewayConfig, options: { log?: Logger } = {}): Promise<CofferGateway> {
  // What has been opened so far, undone in reverse if a later step fails (a JWKS that cannot be read):
  // a failed build leaves no directory lock, timer or client behind.
  const undo: Array<() => unknown> = [];
  try {
    return await buildOrThrow(config, options, undo);
  } catch (error) {
    for (const step of undo.reverse()) await Promise.resolve(step()).catch(() => undefined);
    throw error;
  }
}

async function buildOrThrow(config: GatewayConfig, options: { log?: Logger }, undo: Array<() => unknown>): Promise<CofferGateway> {
  const log = options.log ?? createLogger(config.logging.level);
  const metrics = createMetrics();
  const now = Date.now;

  const credentials: CredentialConfig[] = config.auth.accessKeys.map((key) => ({ secretId: key.secretId, secretKey: key.secretKey, grants: key.grants }));
  const definitions: CofferDefinition[] = [];
  const localKeyrings = createLocalKeyrings(config.keyring);
  undo.push(() => localKeyrings.dispose());
  const localKeys = (keyId: string) => localKeyrings.forKeyId(keyId);

  let demoCredentials: CofferGateway['demoCredentials'];
  let embedded: EmbeddedUpstream | undefined;
  if (config.demo.enabled) {
    // The embedded upstream is a real (loopback) S3 endpoint, so the demo coffer takes exactly the
    // code path a production coffer takes: S3 store, SigV4, the same S3 rules.
    const upstreamKeys = { accessKeyId: `EMBEDDED${generatedSecret(16)}`, secretAccessKey: generatedSecret(40) };
    embedded = await EmbeddedUpstream.start({ directory: config.embeddedUpstream.directory, bucket: 'coffer-demo', ...upstreamKeys, minPartSize: EMBEDDED_MIN_PART_SIZE, maxPartSize: EMBEDDED_MAX_PART_SIZE });
    undo.push(() => embedded?.close());
    const store = new S3UpstreamStore({ endpoint: embedded.endpoint, region: 'us-east-1', bucket: 'coffer-demo', forcePathStyle: true, credentials: async () => upstreamKeys });
    definitions.push({
      name: config.demo.coffer,
      location: 'local',
      minPartSize: EMBEDDED_MIN_PART_SIZE,
      maxPartSize: EMBEDDED_MAX_PART_SIZE,
      storeFor: () => store,
      keysFor: () => localKeys('demo'),
    });
    demoCredentials = {
      secretId: config.demo.secretId ?? `AKID${generatedSecret(32)}`,
      secretKey: config.demo.secretKey ?? generatedSecret(32),
      coffer: config.demo.coffer,
      secretKeyGenerated: config.demo.secretKey === undefined,
    };
    credentials.push({ secretId: demoCredentials.secretId, secretKey: demoCredentials.secretKey, grants: [{ coffer: config.demo.coffer, actions: ['*'] }] });
  }
  // Metrics and logs come in through hooks, so src/roles, src/keys and src/auth stay free of prom-client.
  const roleEvents: UpstreamCofferDeps['roleEvents'] = {
    onAssumeRole: ({ coffer, result }) => metrics.assumeRoleCalls.inc({ coffer, result }),
    onLookup: ({ coffer, outcome }) => metrics.roleCredentialLookups.inc({ coffer, outcome }),
    onRefreshFailure: ({ coffer, reason, servingCached }) =>
      log.warn({ coffer, reason, servingCached }, servingCached ? 'STS AssumeRole failed; serving the cached credentials until they expire' : 'STS AssumeRole failed'),
  };
  const upstreamCoffers = Object.entries(config.coffers).map(([name, coffer]) => createUpstreamCoffer(name, coffer, config, { localKeys, roleEvents }));
  definitions.push(...upstreamCoffers);
  const closeCoffers = (): void => upstreamCoffers.forEach((coffer) => coffer.destroy()); // STS clients and their sockets
  undo.push(closeCoffers);

  const servedCoffers: ReadonlySet<string> = new Set(definitions.map((definition) => definition.name));
  const jwt = config.auth.jwt;
  const authenticate = createAuthenticate({
    cos: createCosAuthenticator({
      credentials: new InMemoryCredentialStore(credentials),
      now,
      skewSeconds: config.auth.cos.maxClockSkewSeconds,
      maxValiditySeconds: config.auth.cos.maxSignatureValiditySeconds,
      acceptKeyOnlyPath: config.auth.cos.acceptKeyOnlyPath,
      isCoffer: (name) => servedCoffers.has(name),
    }),
    jwt:
      jwt === undefined
        ? undefined
        : createJwtAuthenticator({
            keys: await createJwtKeyResolver(
              jwt.jwks !== undefined
                ? {
                    kind: 'jwks-url',
                    url: jwt.jwks.url,
                    ...(jwt.jwks.caPem === undefined ? {} : { ca: jwt.jwks.caPem }),
                    // Projected service-account tokens rotate: read the file on every fetch.
                    ...(jwt.jwks.tokenFile === undefined ? {} : { bearerToken: () => readFileSync(jwt.jwks?.tokenFile as string, 'utf8').trim() }),
                    maxAgeMs: jwt.jwks.cacheMaxAgeSeconds * 1000,
                    cooldownMs: jwt.jwks.cooldownSeconds * 1000,
                    timeoutMs: jwt.jwks.timeoutMs,
                  }
                : {
                    kind: 'static',
                    keys: [
                      ...(jwt.keys ?? []).map((jwk) => ({ jwk: jwk as never })),
                      ...(jwt.publicKeyPems ?? []).map((pem) => ({ pem, alg: jwt.algorithms[0] as string })),
                    ],
                  },
              {
                now,
                onJwksEvent: (event) => {
                  if (event.type === 'refreshed') metrics.jwksFetches.inc({ result: 'ok' });
                  if (event.type === 'refresh-failed') {
                    metrics.jwksFetches.inc({ result: 'error' });
                    log.warn({ reason: event.reason }, 'JWKS fetch failed; the previous key set stays in use');
                  }
                },
              },
            ),
            algorithms: jwt.algorithms,
            issuer: jwt.issuer,
            audience: jwt.audiences,
            clockToleranceSeconds: jwt.clockToleranceSeconds,
            rules: jwt.rules,
            now,
          }),
  });

  // Either setting at 0 disables the cache (documented in the schema): every unwrap then goes to KMS.
  const cacheEnabled = config.kms.dataKeyCacheMaxAgeSeconds > 0 && config.kms.dataKeyCacheMaxEntries > 0;
  const dataKeyCache = cacheEnabled
    ? new DataKeyCache({
        maxAgeMs: config.kms.dataKeyCacheMaxAgeSeconds * 1000,
        maxEntries: config.kms.dataKeyCacheMaxEntries,
        onLookup: (result) => metrics.dataKeyCacheLookups.inc({ result }),
      })
    : undefined;
  const registry = createCofferRegistry(definitions, dataKeyCache, {
    decorateKeys: (keys) => countingKeyProvider(keys, metrics.keyProviderCalls),
    decorateStore: (store) => trackingUploadStore(store, metrics.upstreamReadStreams),
  });
  const partsInFlight = partsInFlightCap(config.server.maxPartsInFlight, log);
  const handle = createCdcsHandler({
    authenticate,
    coffers: registry,
    service: new MultipartService({ now: Date.now, randomBytes, partsInFlight }),
    objects: new ObjectService({ partsInFlight }),
    startedAt: new Date(),
    metrics,
    log,
    completeKeepAliveMs: config.server.completeKeepAliveMs,
  });
  const egress = await createEgress(config, { isServedCoffer: (coffer) => servedCoffers.has(coffer), metrics, log });
  undo.push(() => egress.stop());
  const frontEnd = createGatewayFrontEnd({ server: config.server, handle, logger: log, onResponseIdleTimeout: () => metrics.responseIdleTimeouts.inc(), onConnect: egress.onConnect, onConnectionShed: (how) => metrics.connectionsShed.inc({ how }) });
  const dependencies = watchDependencies(definitions.map(cofferDependencyCheck), {
    onFailure: (check, reason, retryInMs) => log.warn({ check, reason, retryInMs }, 'dependency check failed; not ready'),
    onPassed: (check) => log.info({ check }, 'dependency check passed'),
  });
  undo.push(() => dependencies.stop());
  log.debug({ coffers: registry.names() }, 'coffer-gateway built');
  return {
    handler: frontEnd.handler,
    attach: (server) => frontEnd.attach(server),
    inFlight: () => frontEnd.inFlight(),
    metrics,
    log,
    demoCredentials,
    ...(egress.caCertFile === undefined ? {} : { egressCaFile: egress.caCertFile }),
    dependenciesChecked: dependencies.passed,
    dependenciesAttempted: dependencies.attempted,
    notReadyReason: () => dependencies.notReadyReason(),
    close: async () => {
      dependencies.stop();
      egress.stop();
      await frontEnd.close(config.server.shutdownGraceMs);
      await embedded?.close();
      closeCoffers();
      localKeyrings.dispose();
    },
  };
}

/** The cap on part bodies in flight: configured, or derived from the memory limit (logged either way). */
function partsInFlightCap(configured: number | undefined, log: Logger): PartsInFlight {
  if (configured !== undefined) {
    log.info({ maxPartsInFlight: configured, source: 'configured' }, 'parts in flight capped');
    return new PartsInFlight(configured);
  }
  const limit = memoryLimit();
  const cap = derivedPartsInFlight(limit.bytes);
  log.info({ maxPartsInFlight: cap, source: limit.source, memoryLimitBytes: limit.bytes }, 'parts in flight capped');
  return new PartsInFlight(cap);
}
