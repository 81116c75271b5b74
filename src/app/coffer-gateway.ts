/**
 * The gateway as a library: `createCofferGateway(config)` builds every stage once from the same
 * configuration object the YAML holds (validated by the same schema) and hands back a request handler
 * that mounts in Express (or any `(req, res)` listener) plus `attach(server)` for the listener hooks.
 * It opens no port: the caller owns the server (`serve` builds an Express app on it the same way).
 */
import { randomBytes } from 'node:crypto';
import type { Server } from 'node:http';
import { cofferDependencyCheck, watchDependencies } from '../server/admin/dependency-checks';
import { createAuthenticate } from '../auth/authenticate';
import { createCosAuthenticator } from '../auth/cos-authenticator';
import { InMemoryCredentialStore, type CredentialConfig } from '../auth/credential-store';
import { createConfiguredJwtAuthenticator } from './jwt-authentication';
import type { CofferConfig, GatewayConfig } from '../config';
import { parseCofferConfig } from '../config/schema';
import { EmbeddedUpstream } from '../embedded-upstream';
import { createEgress } from '../egress';
import { createCdcsDialect } from '../cdcs/cdcs-dialect';
import { createOperationHandler } from '../operations/run-operation';
import { createRequestObserver } from '../observability/request-observer';
import { createCofferRegistry, type CofferDefinition } from './coffer-registry';
import { DataKeyCache } from '../keys/data-key-cache';
import { createLocalKeyrings } from '../keys/local-keyring';
import { createLogger, type Logger } from '../observability/logger';
import { countingKeyProvider } from '../observability/counting-key-provider';
import { trackingUploadStore } from '../observability/tracking-upload-store';
import { createMetrics, type GatewayMetrics } from '../observability/metrics';
import { createGatewayFrontEnd, type GatewayFrontEnd } from '../server/gateway-server';
import { createBrowserCors } from '../server/browser-cors';
import { parseOriginPattern, type OriginPattern } from '../http/origin-pattern';
import { parseConfig } from '../config/load-config';
import { MultipartService } from '../store/multipart-service';
import { ObjectService } from '../store/object-service';
import { createUpstreamCoffer, type UpstreamCofferDeps } from './upstream-coffer';
import { Closers } from './closers';


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

/** Each served coffer's CORS origins (`coffers.<name>.cors`, `demo.cors`), already validated by the schema. */
function allowedOriginsByCoffer(config: GatewayConfig): Map<string, OriginPattern[]> {
  const patterns = (origins: readonly string[]): OriginPattern[] => origins.flatMap((text) => parseOriginPattern(text) ?? []);
  const byCoffer = new Map(Object.entries(config.coffers).map(([name, coffer]) => [name, patterns(coffer.cors.allowedOrigins)]));
  if (config.demo.enabled) byCoffer.set(config.demo.coffer, patterns(config.demo.cors.allowedOrigins));
  return byCoffer;
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
  // What has been opened so far: undone in reverse if a later step fails (a JWKS that cannot be read),
  // so a failed build leaves no directory lock, timer or client behind — and by close(), the same list.
  const closers = new Closers();
  try {
    return await buildOrThrow(config, options, closers);
  } catch (error) {
    await closers.closeAll().catch(() => undefined);
    throw error;
  }
}

async function buildOrThrow(config: GatewayConfig, options: { log?: Logger }, closers: Closers): Promise<CofferGateway> {
  const log = options.log ?? createLogger(config.logging.level);
  const metrics = createMetrics();
  const now = Date.now;

  const credentials: CredentialConfig[] = config.auth.accessKeys.map((key) => ({ secretId: key.secretId, secretKey: key.secretKey, grants: key.grants }));
  const definitions: CofferDefinition[] = [];
  const localKeyrings = createLocalKeyrings(config.keyring);
  closers.add(() => localKeyrings.dispose());
  const localKeys = (keyId: string) => localKeyrings.forKeyId(keyId);

  let demoCredentials: CofferGateway['demoCredentials'];
  let embedded: EmbeddedUpstream | undefined;
  let demoCoffer: CofferConfig | undefined;
  if (config.demo.enabled) {
    // The embedded upstream is a real (loopback) S3 endpoint, so the demo coffer takes exactly the
    // code path a production coffer takes: S3 store, SigV4, the same S3 rules.
    const upstreamKeys = { accessKeyId: `EMBEDDED${generatedSecret(16)}`, secretAccessKey: generatedSecret(40) };
    embedded = await EmbeddedUpstream.start({ directory: config.embeddedUpstream.directory, bucket: 'coffer-demo', ...upstreamKeys, minPartSize: EMBEDDED_MIN_PART_SIZE, maxPartSize: EMBEDDED_MAX_PART_SIZE });
    closers.add(() => embedded?.close());
    // Built below by createUpstreamCoffer like every configured coffer: an S3 upstream (this one on
    // loopback), static credentials, the local keyring — validated by the same coffer schema.
    demoCoffer = parseCofferConfig({
      upstream: { endpoint: embedded.endpoint, bucket: 'coffer-demo', forcePathStyle: true, minPartSize: EMBEDDED_MIN_PART_SIZE, maxPartSize: EMBEDDED_MAX_PART_SIZE, credentials: upstreamKeys },
      role: { type: 'static' },
      kms: { type: 'local', keyId: 'demo' },
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
  const upstreamCoffers = [
    ...(demoCoffer === undefined ? [] : [createUpstreamCoffer(config.demo.coffer, demoCoffer, config, { localKeys, roleEvents }, { location: 'local' })]),
    ...Object.entries(config.coffers).map(([name, coffer]) => createUpstreamCoffer(name, coffer, config, { localKeys, roleEvents })),
  ];
  definitions.push(...upstreamCoffers);
  closers.add(() => upstreamCoffers.forEach((coffer) => coffer.destroy())); // STS clients and their sockets

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
    jwt: jwt === undefined ? undefined : await createConfiguredJwtAuthenticator(jwt, { now, metrics, log }),
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
  const dialect = createCdcsDialect({
    server: config.server,
    authenticate,
    coffers: registry,
    service: new MultipartService(),
    objects: new ObjectService(),
    startedAt: new Date(),
    metrics,
  });
  const handle = createOperationHandler(dialect, { coffers: registry, keepAliveMs: config.server.completeKeepAliveMs, onKeptAlive: () => metrics.completeKeepAlives.inc() });
  // Every answered request, once: the audit line and the request metrics (src/observability/request-observer.ts).
  const onAnswered = createRequestObserver({
    log,
    metrics,
    coffers: servedCoffers,
    objectData: {
      in: new Set(Object.entries(dialect.operations).flatMap(([name, entry]) => (entry.body?.objectData === true ? [name] : []))),
      out: new Set(Object.entries(dialect.operations).flatMap(([name, entry]) => (entry.objectDataOut === true ? [name] : []))),
    },
  });
  const egress = await createEgress(config, { isServedCoffer: (coffer) => servedCoffers.has(coffer), metrics, log });
  closers.add(() => egress.stop());
  const cors = createBrowserCors(allowedOriginsByCoffer(config));
  const frontEnd = createGatewayFrontEnd({ server: config.server, router: dialect.router, handle, renderError: dialect.renderError, onAnswered, logger: log, onResponseIdleTimeout: () => metrics.responseIdleTimeouts.inc(), onConnect: egress.onConnect, onConnectionShed: (how) => metrics.connectionsShed.inc({ how }), cors });
  // A check still in flight at close (a first data-key round trip creates the keyring's key file)
  // must end before the keyring and the upstream behind it close — nothing may write to the data
  // directory after close() resolved — but must not hold up the drain: stopped first, settled after it.
  let checksInFlight: Promise<void> = Promise.resolve();
  closers.add(() => checksInFlight);
  closers.add(() => frontEnd.close(config.server.shutdownGraceMs));
  const dependencies = watchDependencies(definitions.map(cofferDependencyCheck), {
    onFailure: (check, reason, retryInMs) => log.warn({ check, reason, retryInMs }, 'dependency check failed; not ready'),
    onPassed: (check) => log.info({ check }, 'dependency check passed'),
  });
  checksInFlight = dependencies.passed; // resolves once stopped and no attempt is running
  closers.add(() => dependencies.stop());
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
    close: () => closers.closeAll(),
  };
}
