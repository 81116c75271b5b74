/**
 * Prometheus metrics (prom-client) on a registry of our own, so tests can create several gateways
 * in one process. Names follow Prometheus conventions: `_total` counters, `_bytes`, `_seconds`.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';

export interface GatewayMetrics {
  readonly registry: Registry;
  readonly requests: Counter<'operation' | 'code' | 'status' | 'coffer'>;
  readonly bytesIn: Counter<'operation' | 'coffer'>;
  readonly bytesOut: Counter<'operation' | 'coffer'>;
  readonly requestSeconds: Histogram<'operation' | 'code' | 'status' | 'coffer'>;
  readonly partSeconds: Histogram<'storage'>;
  readonly inFlightParts: Gauge;
  readonly upstreamErrors: Counter<'code'>;
  readonly integrityFailures: Counter<'reason'>;
  /** Upstream bytes written a second time at Complete (staged parts copied, plus filler). */
  readonly completeCopiedBytes: Counter;
  /** Completes that outlasted server.completeKeepAliveMs and were answered 200 early, kept alive with whitespace. */
  readonly completeKeepAlives: Counter;
  readonly keyProviderCalls: Counter<'provider' | 'operation' | 'result'>;
  /** Time of each call that reached KMS or the keyring (retries inside one call included). */
  readonly keyProviderSeconds: Histogram<'provider' | 'operation' | 'result'>;
  /** Time of each upstream store call by operation (a GET until its body starts; a streamed PUT until the upstream answered). */
  readonly upstreamRequestSeconds: Histogram<'operation' | 'result'>;
  /** Data-key cache lookups (each part upload and read of an upload or object looks up its data key). */
  readonly dataKeyCacheLookups: Counter<'result'>;
  /** STS AssumeRole operations (retries included) by coffer and result. */
  readonly assumeRoleCalls: Counter<'coffer' | 'result'>;
  /** Role-credential lookups by coffer and outcome (hit, miss, stale). */
  readonly roleCredentialLookups: Counter<'coffer' | 'outcome'>;
  /** JWKS fetches (not cooldown-skipped attempts) by result. */
  readonly jwksFetches: Counter<'result'>;
  /** TLS certificate reloads by result (success, failure). */
  readonly tlsReloads: Counter<'result'>;
  /** notAfter of the certificate currently served, unix seconds. */
  readonly tlsCertificateNotAfter: Gauge;
  /** Connections reset because the client stopped reading a response for server.responseIdleTimeoutMs. */
  readonly responseIdleTimeouts: Counter;
  /** At server.maxConnections: waiting connections closed for a newcomer, newcomers answered 503 SlowDown. */
  readonly connectionsShed: Counter<'how'>;
  /** Upstream GET bodies currently open. */
  readonly upstreamReadStreams: Gauge;
  /** CONNECT requests by result: intercepted, or why refused (src/egress/connect-target.ts). */
  readonly connects: Counter<'result'>;
  /** TLS handshakes inside intercepted CONNECT tunnels by result (ok, sni_mismatch, failed, timeout). */
  readonly egressHandshakes: Counter<'result'>;
  /** Leaf certificates issued by the egress CA. */
  readonly egressCertificatesIssued: Counter;
  /** Reloads of a configured egress CA after its files changed, by result (success, failure). */
  readonly egressCaReloads: Counter<'result'>;
  /** notAfter of the egress CA certificate in use, unix seconds. */
  readonly egressCaNotAfter: Gauge;
}

/** The package version, for coffer_gateway_build_info; `unknown` if package.json is not where it ships. */
function packageVersion(): string {
  // From dist/src/observability (the build) or src/observability (ts-jest): the package root is two or three up.
  for (const candidate of ['../../../package.json', '../../package.json']) {
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports -- a path known only at run time (build or ts-jest)
      const manifest = require(candidate) as { name?: unknown; version?: unknown };
      if (manifest.name === 'coffer-gateway' && typeof manifest.version === 'string') return manifest.version;
    } catch {
      // not at this location
    }
  }
  return 'unknown';
}

/**
 * prom-client's default collectors, those its collectDefaultMetrics() runs, each called here alone so
 * that one is left out: `gc` (nodejs_gc_duration_seconds). It observes every collection through a 'gc'
 * PerformanceObserver, and Node builds each collection's entry with deprecated accessors (DEP0152),
 * ~6 KB that land in the old generation. The gateway collects its young generation every 4 MiB it
 * streams (docs/development/benchmarks.md "Memory and the young generation"): that was ~1.7 MB of
 * old-generation garbage per GiB moved, which only a full collection frees — and none comes during a
 * long upload (a 5 GiB part ended ~8 MB higher in RSS). GC time still shows in process_cpu_seconds_total.
 */
export const NODE_PROCESS_COLLECTORS = [
  'processCpuTotal',
  'processStartTime',
  'osMemoryHeap',
  'processOpenFileDescriptors',
  'processMaxFileDescriptors',
  'eventLoopLag',
  'processResources',
  'processHandles',
  'processRequests',
  'heapSizeAndUsed',
  'heapSpacesSizeAndUsed',
  'version',
] as const;

/** Registers Node's process metrics (NODE_PROCESS_COLLECTORS) with the options collectDefaultMetrics() would pass. */
function collectNodeProcessMetrics(registry: Registry): void {
  for (const name of NODE_PROCESS_COLLECTORS) {
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- one collector of prom-client's, by the name its collectDefaultMetrics uses
    const collect = require(`prom-client/lib/metrics/${name}`) as (registry: Registry, config: { eventLoopMonitoringPrecision: number }) => void;
    collect(registry, { eventLoopMonitoringPrecision: 10 });
  }
}

export function createMetrics(options: { defaultMetrics?: boolean } = {}): GatewayMetrics {
  const registry = new Registry();
  // Node's process metrics under their usual names (process_cpu_seconds_total, nodejs_heap_size_used_bytes,
  // …), so stock Node.js dashboards and alerts work unchanged (all but the GC histogram, see above).
  if (options.defaultMetrics ?? true) collectNodeProcessMetrics(registry);
  new Gauge({ name: 'coffer_gateway_build_info', help: 'Always 1; labels say which build runs (version, Node.js version).', labelNames: ['version', 'nodejs'], registers: [registry] })
    .labels({ version: packageVersion(), nodejs: process.versions.node })
    .set(1);
  return {
    registry,
    requests: new Counter({
      name: 'coffer_gateway_requests_total',
      help: 'Answered requests (refusals before routing included: operation Unknown) by operation, result code (OK or the error code), HTTP status (0: reset before a status line) and coffer (a configured coffer, - for none, other for any unserved name).',
      labelNames: ['operation', 'code', 'status', 'coffer'],
      registers: [registry],
    }),
    bytesIn: new Counter({
      name: 'coffer_gateway_plaintext_bytes_in_total',
      help: 'Plaintext object bytes received from clients (successful PutObject and UploadPart), by operation and coffer.',
      labelNames: ['operation', 'coffer'],
      registers: [registry],
    }),
    bytesOut: new Counter({
      name: 'coffer_gateway_plaintext_bytes_out_total',
      help: 'Verified plaintext object bytes sent to clients (completed GetObject answers), by operation and coffer.',
      labelNames: ['operation', 'coffer'],
      registers: [registry],
    }),
    requestSeconds: new Histogram({
      name: 'coffer_gateway_request_duration_seconds',
      help: 'Time from request headers to the end of the response, by operation, code, status and coffer (as requests_total).',
      labelNames: ['operation', 'code', 'status', 'coffer'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
      registers: [registry],
    }),
    partSeconds: new Histogram({
      name: 'coffer_gateway_part_upload_duration_seconds',
      help: 'UploadPart body time (encrypt and forward) by storage (direct or staged).',
      labelNames: ['storage'],
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800],
      registers: [registry],
    }),
    inFlightParts: new Gauge({ name: 'coffer_gateway_parts_in_flight', help: 'Part uploads currently streaming.', registers: [registry] }),
    upstreamErrors: new Counter({ name: 'coffer_gateway_upstream_errors_total', help: 'Failed upstream requests by mapped error code.', labelNames: ['code'], registers: [registry] }),
    keyProviderCalls: new Counter({
      name: 'coffer_gateway_key_provider_calls_total',
      help: 'Calls that reached KMS or the local keyring (data-key cache misses and generations).',
      labelNames: ['provider', 'operation', 'result'],
      registers: [registry],
    }),
    keyProviderSeconds: new Histogram({
      name: 'coffer_gateway_key_provider_duration_seconds',
      help: 'Time of calls that reached KMS or the local keyring, by provider, operation and result (bounded retries included).',
      labelNames: ['provider', 'operation', 'result'],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
    upstreamRequestSeconds: new Histogram({
      name: 'coffer_gateway_upstream_request_duration_seconds',
      help: 'Time of upstream store calls by operation and result: a GET until its body starts, a streamed part or object PUT until the upstream answered (so it includes the body).',
      labelNames: ['operation', 'result'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
      registers: [registry],
    }),
    completeKeepAlives: new Counter({
      name: 'coffer_gateway_complete_kept_alive_total',
      help: 'CompleteMultipartUpload answers committed to 200 early and kept alive with whitespace (assembly outlasted server.completeKeepAliveMs).',
      registers: [registry],
    }),
    completeCopiedBytes: new Counter({ name: 'coffer_gateway_complete_copied_bytes_total', help: 'Upstream bytes written a second time at Complete: staged parts copied into upstream parts, plus filler.', registers: [registry] }),
    integrityFailures: new Counter({ name: 'coffer_gateway_integrity_failures_total', help: 'Stored data that failed authentication, by reason.', labelNames: ['reason'], registers: [registry] }),
    dataKeyCacheLookups: new Counter({
      name: 'coffer_gateway_data_key_cache_lookups_total',
      help: 'Data-key cache lookups by result (hit, miss; an expired entry is a miss). Misses become key-provider Decrypt calls.',
      labelNames: ['result'],
      registers: [registry],
    }),
    assumeRoleCalls: new Counter({ name: 'coffer_gateway_sts_assume_role_total', help: 'STS AssumeRole operations (retries included) by coffer and result (ok, error).', labelNames: ['coffer', 'result'], registers: [registry] }),
    roleCredentialLookups: new Counter({
      name: 'coffer_gateway_role_credentials_total',
      help: 'Assumed-role credential lookups by coffer and outcome: hit (cached), miss (waited for AssumeRole), stale (cached credentials served after a failed refresh).',
      labelNames: ['coffer', 'outcome'],
      registers: [registry],
    }),
    jwksFetches: new Counter({ name: 'coffer_gateway_jwks_fetches_total', help: 'JWKS fetches by result (ok, error); a failed fetch keeps the previous key set.', labelNames: ['result'], registers: [registry] }),
    tlsReloads: new Counter({
      name: 'coffer_gateway_tls_reloads_total',
      help: 'Reloads of the data-plane TLS certificate after its files changed, by result (success, failure: the previous certificate stays).',
      labelNames: ['result'],
      registers: [registry],
    }),
    tlsCertificateNotAfter: new Gauge({ name: 'coffer_gateway_tls_certificate_not_after_seconds', help: 'Expiry (notAfter, unix seconds) of the data-plane TLS certificate being served.', registers: [registry] }),
    responseIdleTimeouts: new Counter({ name: 'coffer_gateway_response_idle_timeouts_total', help: 'Connections reset because the client read nothing of a pending response for server.responseIdleTimeoutMs.', registers: [registry] }),
    connectionsShed: new Counter({
      name: 'coffer_gateway_connections_shed_total',
      help: 'At server.maxConnections: how=waiting-closed (a connection without a request closed for a newcomer), how=newcomer-refused (answered 503 SlowDown).',
      labelNames: ['how'],
      registers: [registry],
    }),
    upstreamReadStreams: new Gauge({ name: 'coffer_gateway_upstream_read_streams_open', help: 'Upstream GET bodies currently open; a value that stays up without traffic is a leak.', registers: [registry] }),
    connects: new Counter({
      name: 'coffer_gateway_connect_total',
      help: 'CONNECT requests by result: intercepted (TLS terminated for a coffer endpoint), or refused_* / failed_issuance (answered 403, 400 or 503; no tunnel is ever opened).',
      labelNames: ['result'],
      registers: [registry],
    }),
    egressHandshakes: new Counter({
      name: 'coffer_gateway_egress_tls_handshakes_total',
      help: 'TLS handshakes inside intercepted CONNECT tunnels by result (ok, sni_mismatch, failed: e.g. a client that does not trust the egress CA, timeout).',
      labelNames: ['result'],
      registers: [registry],
    }),
    egressCertificatesIssued: new Counter({ name: 'coffer_gateway_egress_certificates_issued_total', help: 'Leaf certificates issued by the egress CA (cache misses and renewals).', registers: [registry] }),
    egressCaReloads: new Counter({
      name: 'coffer_gateway_egress_ca_reloads_total',
      help: 'Reloads of the configured egress CA after its files changed, by result (success, failure: the previous CA stays).',
      labelNames: ['result'],
      registers: [registry],
    }),
    egressCaNotAfter: new Gauge({ name: 'coffer_gateway_egress_ca_not_after_seconds', help: 'Expiry (notAfter, unix seconds) of the egress CA certificate in use; leaf certificates never outlive it.', registers: [registry] }),
  };
}
