/**
 * The gateway as a library: `createCofferGateway(config)` builds every stage once from the same
 * configuration object the YAML holds (validated by the same schema) and hands back a request handler
 * that mounts in Express (or any `(req, res)` listener) plus `attach(server)` for the listener hooks.
 * It opens no port: the caller owns the server (`serve` builds an Express app on it the same way).
 */
import { randomBytes } from 'node:crypto';
import type { Server } from 'node:http';
import { classDependencyCheck, cofferDependencyCheck, watchDependencies } from '../server/admin/dependency-checks';
import { createAuthenticate } from '../auth/authenticate';
import { createCosAuthenticator } from '../auth/cos-authenticator';
import { InMemoryCredentialStore, type CredentialConfig } from '../auth/credential-store';
import type { CofferConfig, GatewayConfig } from '../config';
import { parseCofferConfig } from '../config/schema';
import { EmbeddedUpstream } from '../embedded-upstream';
import { createRefusingEgress } from '../egress/connect-handling';
import { configuredModules, loadConfiguredModules } from './configured-modules';
import { createCdcsDialect } from '../cdcs/cdcs-dialect';
import { createOperationHandler, type PipelineOptions } from '../operations/run-operation';
import { createSigV4Authenticator } from '../auth/sigv4-authenticator';
import { createS3Dialect } from '../s3/s3-dialect';
import { createDialectSwitch } from './dialect-switch';
import type { CdcsOperationsDependencies, CofferCreation } from '../cdcs/cdcs-operations';
import { GatewayError } from '../errors/gateway-error';
import { createRequestObserver } from '../observability/request-observer';
import { createCofferRegistry, type CofferDefinition } from './coffer-registry';
import { CofferLifecycle } from '../store/coffer-lifecycle';
import { CofferPolicies } from '../store/coffer-policies';
import { policyPrincipalsOf } from '../auth/coffer-policy';
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
import { derivedPartsInFlight, memoryLimit, PartsInFlight } from '../store/parts-in-flight';
import { createUpstreamCoffer, type UpstreamCofferDeps } from './upstream-coffer';
import { Closers } from './closers';
import { classCollisions, CofferClasses, cofferClassesOf } from './coffer-classes';
import { parseCofferPolicy } from '../auth/coffer-policy';
import { ConfigError } from '../config/config-error';

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
  // The optional modules this configuration uses (egress CA, JWT, AWS KMS, STS), loaded now so no
  // request waits for one; those it does not use are never loaded.
  loadConfiguredModules(config);
  const metrics = createMetrics();
  const now = Date.now;

  const credentials: CredentialConfig[] = config.auth.accessKeys.map((key) => ({
    secretId: key.secretId,
    secretKey: key.secretKey,
    grants: key.grants,
    ...(key.keyOnlyPathCoffer === undefined ? {} : { keyOnlyPathCoffer: key.keyOnlyPathCoffer }),
  }));
  const definitions: CofferDefinition[] = [];
  const localKeyrings = createLocalKeyrings(config.keyring);
  closers.add(() => localKeyrings.dispose());
  const localKeys = (keyId: string) => localKeyrings.forKeyId(keyId);

  let demoCredentials: CofferGateway['demoCredentials'];
  let embedded: EmbeddedUpstream | undefined;
  let demoCoffer: CofferConfig | undefined;
  let scratchCoffer: CofferConfig | undefined;
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
    // The scratch coffer, built the same way: the same embedded bucket under its own prefix (no demo
    // layout key starts with it), overwrite and delete allowed.
    scratchCoffer = parseCofferConfig({
      upstream: { endpoint: embedded.endpoint, bucket: 'coffer-demo', prefix: 'scratch/', forcePathStyle: true, minPartSize: EMBEDDED_MIN_PART_SIZE, maxPartSize: EMBEDDED_MAX_PART_SIZE, credentials: upstreamKeys },
      role: { type: 'static' },
      kms: { type: 'local', keyId: 'demo' },
      writeOnce: false,
    });
    demoCredentials = {
      secretId: config.demo.secretId ?? `AKID${generatedSecret(32)}`,
      secretKey: config.demo.secretKey ?? generatedSecret(32),
      coffer: config.demo.coffer,
      secretKeyGenerated: config.demo.secretKey === undefined,
    };
    // Both demo coffers; the README's path-style COS SDK example signs /<Key> only, accepted for the demo coffer alone.
    credentials.push({
      secretId: demoCredentials.secretId,
      secretKey: demoCredentials.secretKey,
      grants: [
        { coffer: config.demo.coffer, actions: ['*'] },
        { coffer: config.demo.scratchCoffer, actions: ['*'] },
      ],
      keyOnlyPathCoffer: config.demo.coffer,
    });
  }
  // Metrics and logs come in through hooks, so src/roles, src/keys and src/auth stay free of prom-client.
  const roleEvents: UpstreamCofferDeps['roleEvents'] = {
    onAssumeRole: ({ coffer, result }) => metrics.assumeRoleCalls.inc({ coffer, result }),
    onLookup: ({ coffer, outcome }) => metrics.roleCredentialLookups.inc({ coffer, outcome }),
    onRefreshFailure: ({ coffer, reason, servingCached }) => log.warn({ coffer, reason, servingCached }, servingCached ? 'STS AssumeRole failed; serving the cached credentials until they expire' : 'STS AssumeRole failed'),
  };
  const upstreamCoffers = [
    ...(demoCoffer === undefined ? [] : [createUpstreamCoffer(config.demo.coffer, demoCoffer, config, { localKeys, roleEvents }, { location: 'local' })]),
    ...(scratchCoffer === undefined ? [] : [createUpstreamCoffer(config.demo.scratchCoffer, scratchCoffer, config, { localKeys, roleEvents }, { location: 'local' })]),
    ...Object.entries(config.coffers).map(([name, coffer]) => createUpstreamCoffer(name, coffer, config, { localKeys, roleEvents })),
  ];
  definitions.push(...upstreamCoffers);
  closers.add(() => upstreamCoffers.forEach((coffer) => coffer.destroy())); // STS clients and their sockets

  const servedCoffers: ReadonlySet<string> = new Set(definitions.map((definition) => definition.name));
  // Coffer classes: coffers created at run time (app/coffer-classes.ts); their names never collide with configured ones.
  const classList = cofferClassesOf(config);
  const collisions = classCollisions(classList, [...servedCoffers]);
  if (collisions.length > 0) throw new ConfigError(collisions);
  const classes = new CofferClasses(classList, { config, deps: { localKeys, roleEvents } });
  closers.add(() => classes.destroy());
  // A name some class admits may be a coffer (created on any replica): the conservative answer for key-only signatures and egress.
  const mayBeCoffer = (name: string): boolean => servedCoffers.has(name) || classes.admits(name);
  const jwt = config.auth.jwt;
  // One store of access keys for both dialects: a SecretId is an S3 access key id, its SecretKey the secret.
  const credentialStore = new InMemoryCredentialStore(credentials);
  const authenticate = createAuthenticate({
    cos: createCosAuthenticator({
      credentials: credentialStore,
      now,
      skewSeconds: config.auth.cos.maxClockSkewSeconds,
      maxValiditySeconds: config.auth.cos.maxSignatureValiditySeconds,
      acceptKeyOnlyPath: config.auth.cos.acceptKeyOnlyPath,
      isCoffer: mayBeCoffer,
    }),
    jwt: jwt === undefined ? undefined : await configuredModules.jwtAuthentication().createConfiguredJwtAuthenticator(jwt, { now, metrics, log }),
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
  // Coffer lifecycle: the expiry each coffer's reads, listings and write-once checks apply (store/coffer-lifecycle.ts).
  const lifecycle = new CofferLifecycle({ dayLengthMs: config.lifecycle.dayLengthSeconds * 1000, cacheTtlMs: config.lifecycle.cacheSeconds * 1000 });
  // Coffer policies: authorization = configured grants + the coffer's sealed policy (store/coffer-policies.ts).
  const policies = new CofferPolicies({ cacheTtlMs: config.policies.cacheSeconds * 1000 });
  const registry = createCofferRegistry(definitions, dataKeyCache, {
    lifecycle,
    classes,
    startedAt: new Date(),
    onRejectedRegistration: (coffer, error) => log.error({ coffer, err: error instanceof Error ? error.message : String(error) }, 'a coffer registration failed its integrity check; coffer not listed'),
    decorateKeys: (keys) => countingKeyProvider(keys, { calls: metrics.keyProviderCalls, seconds: metrics.keyProviderSeconds }),
    decorateStore: (store) => trackingUploadStore(store, { readStreams: metrics.upstreamReadStreams, requestSeconds: metrics.upstreamRequestSeconds }),
  });
  // One store core for both dialects (one manifest cache, one listing-summary cache).
  // The cap on part bodies in flight, shared by UploadPart and PutObject of both dialects (docs/operations/sizing.md).
  const partsInFlight = partsInFlightCap(config.server.maxPartsInFlight, log);
  const service = new MultipartService({ now: Date.now, randomBytes, partsInFlight });
  const objects = new ObjectService({ partsInFlight });
  // Both dialects: GetService / ListBuckets also list coffers whose policy allows the caller
  // something; PUT Coffer / CreateBucket and DELETE Coffer / DeleteBucket within the coffer classes.
  const policyListing: NonNullable<CdcsOperationsDependencies['policyListing']> = {
    principalsOf: (principal) => policyPrincipalsOf(principal, config.policies.principals),
    mayUse: async (coffer, principal, principals) => {
      const context = await registry.contextFor(coffer, principal);
      await context.assumeRole?.();
      return policies.mayAllow(context, principals);
    },
  };
  const creation: CofferCreation | undefined = classes.enabled
    ? {
        classOf: (coffer: string) => classes.classOf(coffer),
        create: async (coffer: string, principal: Parameters<typeof registry.contextFor>[1], creatorPrincipals: readonly string[]) => {
          const created = await classes.create(classes.classOf(coffer), coffer, principal, async (fresh) => {
            if (creatorPrincipals.length === 0) return;
            // The creator's principals may do everything in their coffer (as a COS bucket's owner may).
            const appId = /-([0-9]+)$/.exec(coffer)?.[1] as string;
            const text = JSON.stringify({ version: '2.0', Statement: [{ Principal: { qcs: creatorPrincipals }, Effect: 'allow', Action: ['name/cdcs:*'], Resource: [`qcs::cdcs::uid/${appId}:${coffer}/*`] }] });
            await policies.put(registry.contextOfCreated(fresh, principal), parseCofferPolicy(Buffer.from(text, 'utf8'), coffer));
          });
          return { generation: created.registration.generation };
        },
        remove: async (context, principal) => {
          const created = await classes.lookup(context.coffer, principal.sessionName);
          if (created === undefined) throw new GatewayError('NoSuchCoffer');
          await classes.remove(created, principal.sessionName);
          policies.forget(context.coffer);
          lifecycle.forget(context.coffer);
        },
      }
    : undefined;
  const dialect = createCdcsDialect({
    server: config.server,
    authenticate,
    coffers: registry,
    service,
    objects,
    lifecycle,
    policies,
    policyListing,
    metrics,
    ...(creation === undefined ? {} : { creation }),
  });
  // One pipeline for both dialects: grants + coffer policies, the kept-alive Complete.
  const pipelineOptions: PipelineOptions = {
    coffers: registry,
    policies: { principalsOf: (principal) => policyPrincipalsOf(principal, config.policies.principals), decide: (context, request) => policies.decide(context, request) },
    keepAliveMs: config.server.completeKeepAliveMs,
    onKeptAlive: () => metrics.completeKeepAlives.inc(),
  };
  // The S3 dialect on the same listener, coffers, access keys and store (src/app/dialect-switch.ts picks per request).
  const s3Dialect = createS3Dialect({
    server: config.server,
    authenticator: createSigV4Authenticator({ credentials: credentialStore, now, skewSeconds: config.auth.cos.maxClockSkewSeconds, region: config.s3.region }),
    region: config.s3.region,
    coffers: registry,
    service,
    objects,
    policyListing,
    ...(creation === undefined ? {} : { creation }),
    ...(pipelineOptions.policies === undefined ? {} : { policyAuthority: pipelineOptions.policies }),
    metrics,
  });
  const dialects = createDialectSwitch(
    { router: dialect.router, handle: createOperationHandler(dialect, pipelineOptions), renderError: dialect.renderError },
    { router: s3Dialect.router, handle: createOperationHandler(s3Dialect, pipelineOptions), renderError: s3Dialect.renderError },
  );
  // Every answered request, once: the audit line and the request metrics (src/observability/request-observer.ts).
  const onAnswered = createRequestObserver({
    log,
    metrics,
    coffers: servedCoffers,
    objectData: {
      in: new Set([dialect.operations, s3Dialect.operations].flatMap((table) => Object.entries(table).flatMap(([name, entry]) => (entry.body?.objectData === true ? [name] : [])))),
      out: new Set([dialect.operations, s3Dialect.operations].flatMap((table) => Object.entries(table).flatMap(([name, entry]) => (entry.objectDataOut === true ? [name] : [])))),
    },
  });
  const egressDeps = { isServedCoffer: mayBeCoffer, metrics, log };
  const egress = config.egress.enabled ? await configuredModules.egress().createEgress(config, egressDeps) : createRefusingEgress(config, egressDeps);
  closers.add(() => egress.stop());
  const cors = createBrowserCors(allowedOriginsByCoffer(config));
  const frontEnd = createGatewayFrontEnd({
    server: config.server,
    router: dialects.router,
    handle: dialects.handle,
    renderError: dialects.renderError,
    onAnswered,
    logger: log,
    onResponseIdleTimeout: () => metrics.responseIdleTimeouts.inc(),
    onConnect: egress.onConnect,
    onConnectionShed: (how) => metrics.connectionsShed.inc({ how }),
    cors,
  });
  // A check still in flight at close (a first data-key round trip creates the keyring's key file)
  // must end before the keyring and the upstream behind it close — nothing may write to the data
  // directory after close() resolved — but must not hold up the drain: stopped first, settled after it.
  let checksInFlight: Promise<void> = Promise.resolve();
  closers.add(() => checksInFlight);
  closers.add(() => frontEnd.close(config.server.shutdownGraceMs));
  const dependencies = watchDependencies(
    [
      ...definitions.map((definition) => cofferDependencyCheck(definition)),
      // Every coffer created in a class depends on the class's role, bucket and KMS key.
      ...classes.all.map((cofferClass) => classDependencyCheck(cofferClass.name, classes.classUpstream(cofferClass).upstream, classes.registryPrefix(cofferClass))),
    ],
    {
      onFailure: (check, reason, retryInMs) => log.warn({ check, reason, retryInMs }, 'dependency check failed; not ready'),
      onPassed: (check) => log.info({ check }, 'dependency check passed'),
    },
  );
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
