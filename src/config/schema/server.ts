/** The `server` section: the CDCS API listener (timeouts, limits, TLS) and the admin listener. */
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { z } from 'zod';
import { HOSTNAME, bool, certificateKeyFiles, int, listenHost, problem, whenValid, type ConfigIo } from './building-blocks';

export function serverSchema(io: ConfigIo) {
  // The data-plane certificate: the key must match the certificate.
  const tls = certificateKeyFiles(io, (certPem, keyPem) => {
    const mismatch = { message: 'does not match the certificate in certFile', field: 'keyFile' } as const;
    try {
      return new X509Certificate(certPem).checkPrivateKey(createPrivateKey(keyPem)) ? undefined : mismatch;
    } catch {
      return mismatch;
    }
  });

  return z
    .strictObject({
      /** Address the CDCS API listens on. Use 0.0.0.0 (or ::) in containers. */
      host: listenHost().default('127.0.0.1'),
      /** Port of the CDCS API; 0 picks a free port. The `PORT` environment variable overrides it. */
      port: int(0, 65535).default(8080),
      /** Address of the admin listener (health, readiness, metrics). Keep it off the public network. */
      adminHost: listenHost().default('127.0.0.1'),
      /** Port of the admin listener; 0 picks a free port. */
      adminPort: int(0, 65535).default(9090),
      /**
       * Per-read idle timeout for request bodies (like nginx `client_body_timeout`): a body that sends
       * nothing for this long is aborted with 400 RequestTimeout and the upstream request destroyed.
       */
      requestIdleTimeoutMs: int(1000, 3_600_000).default(60_000),
      /**
       * Minimum request-body rate (like Apache mod_reqtimeout `MinRate`): the time a body keeps the
       * gateway waiting may not exceed minBodyRateGraceMs plus 1 s per this many bytes received, else
       * 400 RequestTimeout and the connection is closed. Cuts a client dripping a body just inside
       * requestIdleTimeoutMs. Time the gateway itself holds the body back (slow upstream) is not
       * counted. 0 disables it.
       */
      minBodyRateBytesPerSecond: int(0, 1_000_000_000).default(500),
      /** Waiting allowed before minBodyRateBytesPerSecond applies (mod_reqtimeout's `body=20`). */
      minBodyRateGraceMs: int(0, 3_600_000).default(20_000),
      /**
       * Write-side idle timeout (like nginx `send_timeout`): when a client reads nothing of a pending
       * answer for this long — a GET it stopped consuming, an answer it never collects — the connection
       * is reset and the upstream read feeding it released. Only counts while output is waiting, so
       * a slow upstream or a long Complete never trips it.
       */
      responseIdleTimeoutMs: int(1000, 3_600_000).default(60_000),
      /**
       * A CompleteMultipartUpload still assembling after this long (staged parts being copied, a large
       * upstream Complete) is answered 200 at once and kept alive with a space every this many ms, the
       * result or an <Error> following in the body — as S3 and COS do — so idle-timeouts of clients and
       * load balancers do not cut it. Keep it well under the shortest idle timeout in front of the gateway.
       */
      completeKeepAliveMs: int(10, 600_000).default(10_000),
      /** Time allowed to receive the complete request headers (Node `headersTimeout`; Slowloris guard). */
      headersTimeoutMs: int(1000, 600_000).default(20_000),
      /**
       * Whole-request timeout (Node `requestTimeout`); 0 disables it. Keep 0 unless you bound part
       * sizes: a whole-request limit kills slow 5 GiB parts, the idle timeout guards stalls instead.
       */
      requestTimeoutMs: int(0, 86_400_000).default(0),
      /** Idle time before a keep-alive connection is closed (Node `keepAliveTimeout`). Keep it above a
       * fronting load balancer's idle timeout only if the balancer reuses connections. */
      keepAliveTimeoutMs: int(0, 600_000).default(5_000),
      /**
       * Concurrent connections on the API listener. At the cap a new connection takes the slot of the
       * connection that has waited longest without a request in progress (idle keep-alive, or still
       * sending its headers); when every slot carries a request, the newcomer's request is answered
       * 503 SlowDown with Retry-After and Connection: close (up to 256 such connections at a time
       * beyond the cap; past that they are dropped).
       */
      maxConnections: int(1, 1_000_000).default(1024),
      /**
       * Part bodies (UploadPart, PutObject) received at once; beyond it a request is answered 503
       * SlowDown with Retry-After before its body (before 100 Continue). Unset: derived from the memory
       * limit (cgroup memory.max, else the host's memory) — docs/operations/sizing.md has the formula.
       */
      maxPartsInFlight: int(1, 1_000_000).optional(),
      /** Largest request header block in bytes (Node `maxHeaderSize`); larger → 431. */
      maxHeaderBytes: int(1024, 1_048_576).default(16_384),
      /**
       * Accept absolute-form request targets (`PUT http://host/<Coffer>/<Key>`), which the official
       * SDK sends when configured with `Proxy`. The scheme and authority of such a target are never
       * used to choose an upstream.
       */
      acceptAbsoluteForm: bool().default(true),
      /**
       * Host suffixes that make a request virtual-hosted: a request whose host is
       * `<coffer>.<suffix>` addresses that coffer, and its whole path is the key. Always recognised,
       * without configuration: `<coffer>.cos.<region>.myqcloud.com`, `<coffer>.cos.<region>.tencentcos.cn`
       * and `<coffer>.cdcs.<region>.myqcloud.com`. Example: `["cdcs.example.internal"]`.
       */
      virtualHostSuffixes: z
        .array(
          z
            .string()
            .transform((suffix) => suffix.toLowerCase())
            .refine((suffix) => HOSTNAME.test(suffix) && suffix.includes('.'), 'must be a host name with at least two labels, such as "cdcs.example.internal"'),
        )
        .default([]),
      /** On SIGTERM: stop accepting, report not-ready, let in-flight requests finish for this long,
       * then reset the rest. */
      shutdownGraceMs: int(0, 3_600_000).default(30_000),
      /** Serve the CDCS API over TLS. Absent: plain HTTP (terminate TLS in front of the gateway). */
      tls: tls.optional(),
    })
    .superRefine(
      (server, ctx) => {
        if (server.requestTimeoutMs !== 0 && server.headersTimeoutMs > server.requestTimeoutMs) {
          problem(ctx, 'must not exceed server.requestTimeoutMs when that is set (Node refuses it)', ['headersTimeoutMs']);
        }
        const wildcard = (h: string) => h === '0.0.0.0' || h === '::';
        const overlap = server.host === server.adminHost || wildcard(server.host) || wildcard(server.adminHost);
        if (server.port !== 0 && server.port === server.adminPort && overlap) {
          problem(ctx, 'must differ from server.port', ['adminPort']);
        }
      },
      whenValid('requestTimeoutMs', 'headersTimeoutMs', 'host', 'port', 'adminHost', 'adminPort'),
    );
}
