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
 */
import { X509Certificate, createPrivateKey, createPublicKey, type JsonWebKey, type KeyObject } from 'node:crypto';
import { isIP } from 'node:net';
import { z } from 'zod';
import { caProblem } from '../egress/ca-checks';
import { cofferClassesSchema } from './coffer-classes-schema';

export const KiB = 1024;
export const MiB = 1024 * KiB;
export const GiB = 1024 * MiB;

/** What secrets are replaced with by `redactConfig`. */
export const REDACTED = '[redacted]';
/** Names of the parsed-configuration fields that hold secret values (redacted by `redactConfig`). */
export const SECRET_FIELD_NAMES: ReadonlySet<string> = new Set(['secretKey', 'secretAccessKey', 'keyPem']);

export const DEMO_DEFAULT_COFFER = 'demo-1250000000';

/** How the schema reads `...File` fields; `loadConfig` passes `fs.readFileSync` or a test double. */
export interface ConfigIo {
  readonly readFile: (path: string) => string;
}

// ---------------------------------------------------------------------------------------------
// Building blocks
// ---------------------------------------------------------------------------------------------

type Ctx = z.RefinementCtx;

function problem(ctx: Ctx, message: string, path?: PropertyKey[]): void {
  ctx.addIssue({ code: 'custom', message, ...(path === undefined ? {} : { path }) });
}

/**
 * Gate for cross-field checks: run them even when other parts of the configuration are wrong (so all
 * problems surface at once), but only when the fields they read are themselves valid — otherwise the
 * check would report noise about values that already have a problem. Unknown keys and problems found
 * by other root cross-checks do not block.
 */
type IssueLike = { readonly path?: readonly PropertyKey[] | undefined; readonly code?: string | undefined; readonly params?: unknown };
const CROSS_CHECK = { crossCheck: true } as const;
const isCrossCheck = (issue: IssueLike) => (issue.params as { crossCheck?: unknown } | undefined)?.crossCheck === true;

/** A problem found by a root cross-check; other root cross-checks are not blocked by it. */
function crossProblem(ctx: Ctx, message: string, path: PropertyKey[]): void {
  ctx.addIssue({ code: 'custom', message, path, params: CROSS_CHECK });
}
function whenValid(...prefixes: (string | readonly string[])[]): { when: (payload: { issues: readonly IssueLike[] }) => boolean } {
  const lists = prefixes.map((p) => (typeof p === 'string' ? [p] : p));
  return {
    when: (payload) =>
      !payload.issues.some((issue) => {
        const path = issue.path ?? [];
        if (isCrossCheck(issue)) return false;
        if (path.length === 0) return issue.code !== 'unrecognized_keys';
        return lists.some((prefix) => prefix.every((segment, i) => path[i] === segment));
      }),
  };
}

const int = (min: number, max: number) =>
  z.int().min(min, `must be at least ${min}`).max(max, `must be at most ${max}`);

const bool = () => z.boolean();

function formatBytes(n: number): string {
  if (n % GiB === 0) return `${n / GiB} GiB`;
  if (n % MiB === 0) return `${n / MiB} MiB`;
  if (n % KiB === 0) return `${n / KiB} KiB`;
  return `${n} bytes`;
}

const BYTE_UNITS: Record<string, number> = { '': 1, b: 1, kib: KiB, mib: MiB, gib: GiB };

/** A size in bytes: an integer, or a string with an IEC unit such as `"5MiB"` or `"1.5 GiB"`. */
/**
 * JSON Schema for fields whose zod form is a transform (JSON Schema cannot express a transform, so
 * `z.toJSONSchema` would emit `{}` for them). Read by src/config/json-schema.ts.
 */
export const jsonSchemaOverrides = z.registry<{ readonly jsonSchema: Readonly<Record<string, unknown>> }>();

function byteSize(min: number, max: number) {
  const schema = z
    .unknown()
    .transform((value, ctx) => {
      if (typeof value === 'number') return value;
      if (typeof value === 'string') {
        const match = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(value);
        const unit = match === null ? undefined : BYTE_UNITS[(match[2] ?? '').toLowerCase()];
        if (match !== null && unit !== undefined) {
          const bytes = Number(match[1]) * unit;
          if (Number.isSafeInteger(bytes)) return bytes;
        }
      }
      problem(ctx, 'expected a whole number of bytes or a size such as "5MiB" (units B, KiB, MiB, GiB)');
      return z.NEVER;
    })
    .pipe(
      z
        .int()
        .min(min, `must be at least ${formatBytes(min)}`)
        .max(max, `must be at most ${formatBytes(max)}`),
    );
  jsonSchemaOverrides.add(schema, {
    jsonSchema: {
      anyOf: [
        { type: 'integer', minimum: min, maximum: max },
        { type: 'string', pattern: '^\\s*\\d+(?:\\.\\d+)?\\s*(?:[bB]|[kKmMgG][iI][bB])?\\s*$' },
      ],
    },
  });
  return schema;
}

const HOSTNAME = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

/** True for `localhost`, 127.0.0.0/8 and ::1 (with or without URL brackets). */
export function isLoopbackHost(host: string): boolean {
  const h = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  if (h.toLowerCase() === 'localhost') return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  if (isIP(h) === 6) return h === '::1' || /^::ffff:127\./i.test(h);
  return false;
}

const listenHost = () =>
  z.string().refine((h) => isIP(h) !== 0 || HOSTNAME.test(h), 'must be an IP address or a host name');

interface UrlRules {
  /** Only the origin is kept; a path other than `/` is refused. */
  readonly originOnly?: boolean;
  /** Plain http is accepted only for loopback hosts (tests, sidecars). */
  readonly httpsUnlessLoopback?: boolean;
}

/** An http(s) URL from configuration. Credentials, query and fragment are refused (never echoed). */
function httpUrl(rules: UrlRules = {}) {
  return z.string().transform((value, ctx) => {
    let url: URL;
    try {
      url = new URL(value);
    } catch {
      problem(ctx, 'must be an absolute http:// or https:// URL');
      return z.NEVER;
    }
    const issues: string[] = [];
    if (url.protocol !== 'http:' && url.protocol !== 'https:') issues.push('must use http:// or https://');
    if (url.username !== '' || url.password !== '') issues.push('must not contain credentials (user:password@)');
    if (url.search !== '' || url.hash !== '' || value.includes('?') || value.includes('#')) issues.push('must not have a query or fragment');
    if (rules.originOnly === true && url.pathname !== '/') issues.push('must not have a path (use upstream.prefix for a key prefix)');
    if (rules.httpsUnlessLoopback === true && url.protocol === 'http:' && !isLoopbackHost(url.hostname)) {
      issues.push('must use https:// (plain http is accepted only for loopback hosts)');
    }
    for (const message of issues) problem(ctx, message);
    if (issues.length > 0) return z.NEVER;
    return rules.originOnly === true ? url.origin : url.href;
  });
}

const region = () =>
  z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/, 'must be a region name such as "us-east-1" (letters, digits, "-", "_")');

/** CDCS coffer names: `<name>-<APPID>`, lowercase letters, digits and hyphens, e.g. `demo-1250000000`. */
export const COFFER_NAME = /^[a-z0-9](?:[a-z0-9-]{0,48}[a-z0-9])?-[0-9]{1,20}$/;
const cofferName = () =>
  z
    .string()
    .regex(COFFER_NAME, 'must be a coffer name "<name>-<APPID>": lowercase letters, digits and hyphens, ending in "-" and the numeric APPID (e.g. "demo-1250000000")');

/** S3 bucket naming rules (general purpose buckets). */
function s3Bucket() {
  return z.string().superRefine((bucket, ctx) => {
    if (bucket.length < 3 || bucket.length > 63) problem(ctx, 'must be 3 to 63 characters long');
    if (!/^[a-z0-9][a-z0-9.-]*[a-z0-9]$/.test(bucket)) {
      problem(ctx, 'may contain only lowercase letters, digits, "." and "-", and must start and end with a letter or digit');
    }
    if (/\.\.|\.-|-\./.test(bucket)) problem(ctx, 'must not contain "..", ".-" or "-."');
    if (/^\d{1,3}(?:\.\d{1,3}){3}$/.test(bucket)) problem(ctx, 'must not be formatted as an IP address');
    if (/^(?:xn--|sthree-|amzn-s3-demo-)/.test(bucket)) problem(ctx, 'must not start with "xn--", "sthree-" or "amzn-s3-demo-"');
    if (/(?:-s3alias|--ol-s3|\.mrap|--x-s3|--table-s3)$/.test(bucket)) problem(ctx, 'must not end with a reserved S3 suffix');
  });
}

/** Upstream key prefix: `""` means none; otherwise relative, `/`-terminated, no empty, `.` or `..` segments. */
function keyPrefix() {
  return z.string().transform((prefix, ctx) => {
    if (prefix === '') return undefined;
    const issues: string[] = [];
    if (prefix.startsWith('/')) issues.push('must not start with "/"');
    if (!prefix.endsWith('/')) issues.push('must end with "/"');
    if (/[\u0000-\u001f\u007f]/.test(prefix)) issues.push('must not contain control characters');
    const segments = prefix.replace(/^\/+/, '').replace(/\/$/, '').split('/');
    if (segments.some((s) => s === '')) issues.push('must not contain "//"');
    if (segments.some((s) => s === '.' || s === '..')) issues.push('must not contain "." or ".." segments');
    if (Buffer.byteLength(prefix, 'utf8') > 512) issues.push('must be at most 512 bytes (object keys are limited to 1024 bytes)');
    for (const message of issues) problem(ctx, message);
    return issues.length > 0 ? z.NEVER : prefix;
  });
}

/** An inline secret (SecretKey, secret access key). Never echoed. */
const inlineSecret = (minLength: number) =>
  z
    .string()
    .min(minLength, `must be at least ${minLength} characters`)
    .max(1024, 'must be at most 1024 characters')
    .regex(/^\S+$/, 'must not contain whitespace');

interface FileContent {
  readonly path: string;
  readonly content: string;
}

function errorCode(error: unknown): string {
  const code = typeof error === 'object' && error !== null ? (error as { code?: unknown }).code : undefined;
  return typeof code === 'string' && /^[A-Z0-9_]{1,40}$/.test(code) ? code : 'read error';
}

function readOrReport(io: ConfigIo, path: string, ctx: Ctx): string | undefined {
  try {
    return io.readFile(path);
  } catch (error) {
    // Only the error code: a message may quote the path in odd ways, never the content, but be strict.
    problem(ctx, `cannot read file ${JSON.stringify(path)} (${errorCode(error)})`);
    return undefined;
  }
}

/** A file holding one secret token (trimmed). Content is never echoed. */
function secretFile(io: ConfigIo, minBytes = 1) {
  return z
    .string()
    .min(1, 'must be a file path')
    .transform((path, ctx): FileContent => {
      const raw = readOrReport(io, path, ctx);
      if (raw === undefined) return z.NEVER;
      const content = raw.trim();
      const where = `file ${JSON.stringify(path)}`;
      if (content === '') problem(ctx, `${where} is empty`);
      else if (/\s/.test(content)) problem(ctx, `${where} must hold a single value without inner whitespace or line breaks`);
      else if (Buffer.byteLength(content, 'utf8') < minBytes) problem(ctx, `the secret in ${where} is too short (at least ${minBytes} bytes)`);
      else return { path, content };
      return z.NEVER;
    });
}

/** A file whose content is checked by `check` (returns a problem or undefined); content kept as is. */
function textFile(io: ConfigIo, check: (content: string) => string | undefined) {
  return z
    .string()
    .min(1, 'must be a file path')
    .transform((path, ctx): FileContent => {
      const content = readOrReport(io, path, ctx);
      if (content === undefined) return z.NEVER;
      const complaint = content.trim() === '' ? 'is empty' : check(content);
      if (complaint !== undefined) {
        problem(ctx, `file ${JSON.stringify(path)} ${complaint}`);
        return z.NEVER;
      }
      return { path, content };
    });
}

const checkCertificate = (pem: string): string | undefined => {
  if (!pem.includes('-----BEGIN CERTIFICATE-----')) return 'is not a PEM certificate';
  try {
    new X509Certificate(pem);
    return undefined;
  } catch {
    return 'is not a valid PEM certificate';
  }
};

const checkPrivateKey = (pem: string): string | undefined => {
  try {
    createPrivateKey(pem);
    return undefined;
  } catch {
    return 'is not an unencrypted PEM private key';
  }
};

const checkPublicKey = (pem: string): string | undefined => {
  if (/PRIVATE KEY-----/.test(pem)) return 'holds a private key; mount only the public key';
  try {
    createPublicKey(pem);
    return undefined;
  } catch {
    return 'is not a PEM public key or certificate';
  }
};

/** Both sides of a `value` XOR `valueFile` pair; reports at the right path. */
function exactlyOne(ctx: Ctx, value: object, inline: string, file: string): void {
  const record = value as Record<string, unknown>;
  const hasInline = record[inline] !== undefined;
  const hasFile = record[file] !== undefined;
  if (hasInline && hasFile) problem(ctx, `set only one of ${inline} and ${file}`, [file]);
  if (!hasInline && !hasFile) problem(ctx, `required (set ${inline} or ${file})`, [inline]);
}

// ---------------------------------------------------------------------------------------------
// Sections
// ---------------------------------------------------------------------------------------------

function serverSchema(io: ConfigIo) {
  const tls = z
    .strictObject({
      /** PEM certificate chain served to clients. */
      certFile: textFile(io, checkCertificate),
      /** PEM private key of the certificate (unencrypted). A secret. */
      keyFile: textFile(io, checkPrivateKey),
      /**
       * How often the two files are compared with what is served. Changes are also picked up at once
       * through file-system events (including Kubernetes' `..data` symlink swap); this period is the
       * safety net. A changed pair is served once it parses and matches; a bad one keeps the current
       * certificate (warning + `coffer_gateway_tls_reloads_total{result="failure"}`).
       */
      reloadIntervalMs: int(1000, 3_600_000).default(10_000),
    })
    .superRefine((value, ctx) => {
      try {
        if (!new X509Certificate(value.certFile.content).checkPrivateKey(createPrivateKey(value.keyFile.content))) {
          problem(ctx, 'does not match the certificate in certFile', ['keyFile']);
        }
      } catch {
        problem(ctx, 'does not match the certificate in certFile', ['keyFile']);
      }
    }, whenValid('certFile', 'keyFile'))
    .transform(({ certFile, keyFile, reloadIntervalMs }) => ({
      reloadIntervalMs,
      certFile: certFile.path,
      keyFile: keyFile.path,
      /** The certificate chain read from certFile. */
      certPem: certFile.content,
      /** The private key read from keyFile (secret; redacted by redactConfig). */
      keyPem: keyFile.content,
    }));

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
        .array(z.string().transform((suffix) => suffix.toLowerCase()).refine((suffix) => HOSTNAME.test(suffix) && suffix.includes('.'), 'must be a host name with at least two labels, such as "cdcs.example.internal"'))
        .default([]),
      /** On SIGTERM: stop accepting, report not-ready, let in-flight requests finish for this long,
       * then reset the rest. */
      shutdownGraceMs: int(0, 3_600_000).default(30_000),
      /** Serve the CDCS API over TLS. Absent: plain HTTP (terminate TLS in front of the gateway). */
      tls: tls.optional(),
    })
    .superRefine((server, ctx) => {
      if (server.requestTimeoutMs !== 0 && server.headersTimeoutMs > server.requestTimeoutMs) {
        problem(ctx, 'must not exceed server.requestTimeoutMs when that is set (Node refuses it)', ['headersTimeoutMs']);
      }
      const wildcard = (h: string) => h === '0.0.0.0' || h === '::';
      const overlap = server.host === server.adminHost || wildcard(server.host) || wildcard(server.adminHost);
      if (server.port !== 0 && server.port === server.adminPort && overlap) {
        problem(ctx, 'must differ from server.port', ['adminPort']);
      }
    }, whenValid('requestTimeoutMs', 'headersTimeoutMs', 'host', 'port', 'adminHost', 'adminPort'));
}

function egressSchema(io: ConfigIo) {
  const ca = z
    .strictObject({
      /** PEM CA certificate (optionally followed by its intermediates), e.g. a cert-manager Secret's `tls.crt`. */
      certFile: textFile(io, checkCertificate),
      /** Its unencrypted PEM private key (ECDSA P-256/P-384 or RSA ≥ 2048), e.g. `tls.key`. A secret. */
      keyFile: textFile(io, checkPrivateKey),
      /**
       * How often the two files are compared with the CA in use (changes are also seen at once through
       * file-system events, as for server.tls). A renewed CA that checks out is used for new leaves;
       * a bad one keeps the current CA (`coffer_gateway_egress_ca_reloads_total{result="failure"}`).
       */
      reloadIntervalMs: int(1000, 3_600_000).default(10_000),
    })
    .superRefine((value, ctx) => {
      const complaint = caProblem(value.certFile.content, value.keyFile.content);
      if (complaint !== undefined) problem(ctx, complaint, ['certFile']);
    }, whenValid('certFile', 'keyFile'))
    .transform(({ certFile, keyFile, reloadIntervalMs }) => ({
      reloadIntervalMs,
      certFile: certFile.path,
      keyFile: keyFile.path,
      /** The CA certificate (chain) read from certFile. */
      certPem: certFile.content,
      /** The CA private key read from keyFile (secret; redacted by redactConfig). */
      keyPem: keyFile.content,
    }));
  return z
    .strictObject({
      /** Intercept CONNECT to coffer endpoints. When false, every CONNECT is answered 403. */
      enabled: bool().default(false),
      /** The CA that issues the leaf certificates (files, e.g. a mounted Kubernetes Secret). Clients must trust it. */
      ca: ca.optional(),
      /**
       * Without `ca`: a local CA is created in this directory on first start (`ca.pem`, and
       * `ca-key.pem` with mode 0600), name-constrained to the coffer endpoint domains, and reused
       * afterwards. Default: `egress-ca` next to `keyring.directory` (`./data/egress-ca`).
       */
      localCaDirectory: z.string().min(1, 'must not be empty').optional(),
      /** Lifetime of a leaf certificate (never beyond the CA's); a cached one is replaced after half of it. */
      leafValiditySeconds: int(600, 604_800).default(86_400),
      /** Most leaf certificates (one per host name) kept in memory. */
      certificateCacheEntries: int(1, 100_000).default(1_000),
      /** Leaf certificates issued per minute at most (a minute's worth may be issued at once); beyond it a CONNECT is answered 503. */
      issuancePerMinute: int(1, 100_000).default(60),
      /** Time allowed for the TLS handshake inside an intercepted tunnel. */
      handshakeTimeoutMs: int(1000, 120_000).default(10_000),
    })
    .superRefine((egress, ctx) => {
      if (egress.ca !== undefined && egress.localCaDirectory !== undefined) problem(ctx, 'set only one of ca and localCaDirectory', ['localCaDirectory']);
    }, whenValid('ca', 'localCaDirectory'));
}

const ACTIONS = ['read', 'write', 'list', 'manage', '*'] as const;

function grantSchema() {
  return z.strictObject({
    /** A coffer name from `coffers` (or the demo coffer), or "*" for every coffer. */
    coffer: z
      .string()
      .refine((c) => c === '*' || COFFER_NAME.test(c), 'must be a coffer name such as "demo-1250000000" or "*"'),
    /** Allowed actions: read (GET/HEAD), write (PUT, multipart), list (ListParts, ListMultipartUploads), manage
     * (PutCofferLifecycle / GetCofferLifecycle: expiry removes data, so it is not part of write), or "*". */
    actions: z.array(z.enum(ACTIONS, { error: `must be one of ${ACTIONS.join(', ')}` })).min(1, 'must list at least one action'),
  });
}

function accessKeySchema(io: ConfigIo) {
  return z
    .strictObject({
      /** The SecretId clients sign with (`q-ak`). Unique across all access keys. */
      secretId: z.string().regex(/^[A-Za-z0-9._-]{3,128}$/, 'must be 3 to 128 letters, digits, ".", "_" or "-"'),
      /** The SecretKey, inline (at least 16 characters). Prefer secretKeyFile. A secret. */
      secretKey: inlineSecret(16).optional(),
      /** File holding the SecretKey (e.g. a mounted Kubernetes Secret); read at load time, trimmed. */
      secretKeyFile: secretFile(io, 16).optional(),
      /** What requests signed with this key may do. */
      grants: z.array(grantSchema()).min(1, 'must list at least one grant'),
    })
    .superRefine((key, ctx) => exactlyOne(ctx, key, 'secretKey', 'secretKeyFile'), whenValid('secretKey', 'secretKeyFile'))
    .transform(({ secretKey, secretKeyFile, ...rest }) => ({
      ...rest,
      /** The SecretKey, inline or read from secretKeyFile. */
      secretKey: (secretKey ?? secretKeyFile?.content) as string,
      secretKeyFile: secretKeyFile?.path,
    }));
}

/**
 * JWT verification is asymmetric only. The gateway verifies tokens somebody else issues (the Kubernetes
 * API server, an identity provider): with an HMAC algorithm the verification key would also be a signing
 * key, so the gateway — and anyone who can read its Secret mount — could mint tokens for any subject.
 * Public keys also rule out algorithm-confusion attacks (an HS256 token "signed" with a published RSA
 * key). The authenticator refuses HS* as well (src/auth/jwt-authenticator.ts); the schema says so first.
 */
const ASYMMETRIC_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519'] as const;
export type JwtAlgorithm = (typeof ASYMMETRIC_ALGORITHMS)[number];
const UNSUPPORTED_SYMMETRIC = 'only asymmetric algorithms are accepted (a shared HMAC secret would let the gateway mint tokens, too)';

/**
 * Fields that existed once, or that people look for, and are refused with an explanation instead of a
 * bare "unknown key" (dotted path of the object + key → message). load-config.ts uses it.
 */
export const UNSUPPORTED_FIELDS: ReadonlyMap<string, string> = new Map([
  ['auth.jwt.hmacSecretFile', `is not supported: ${UNSUPPORTED_SYMMETRIC}; use jwks, keys or publicKeyFiles`],
]);

/** Which algorithms a public key can verify, by Node key type. */
function algorithmsForKey(key: KeyObject): readonly string[] {
  switch (key.asymmetricKeyType) {
    case 'rsa':
      return ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512'];
    case 'rsa-pss':
      return ['PS256', 'PS384', 'PS512'];
    case 'ec':
      return ['ES256', 'ES384', 'ES512'];
    case 'ed25519':
      return ['EdDSA', 'Ed25519'];
    case 'ed448':
      return ['EdDSA'];
    default:
      return [];
  }
}

const PRIVATE_JWK_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];

function jwkSchema() {
  return z.record(z.string(), z.unknown()).superRefine((jwk, ctx) => {
    if (PRIVATE_JWK_MEMBERS.some((m) => m in jwk)) {
      problem(ctx, 'must be a public key (private or symmetric key members such as "d" or "k" are refused)');
      return;
    }
    if (!['RSA', 'EC', 'OKP'].includes(String(jwk['kty']))) {
      problem(ctx, 'kty must be RSA, EC or OKP', ['kty']);
      return;
    }
    try {
      createPublicKey({ key: jwk as JsonWebKey, format: 'jwk' });
    } catch {
      problem(ctx, 'is not a valid public JWK');
    }
  });
}

function jwtSchema(io: ConfigIo) {
  const jwks = z
    .strictObject({
      /** JWKS document URL, e.g. https://kubernetes.default.svc/openid/v1/jwks. https only (http for loopback). */
      url: httpUrl({ httpsUnlessLoopback: true }),
      /** PEM CA bundle to verify the JWKS server (e.g. the service-account ca.crt). Default: system CAs. */
      caFile: textFile(io, checkCertificate).optional(),
      /** Bearer token file sent to the JWKS server (e.g. a projected service-account token). Checked
       * at load time; re-read on every fetch because it rotates. */
      tokenFile: secretFile(io).optional(),
      /** How long fetched keys are used before a refetch; cached keys keep working while the JWKS endpoint is down. */
      cacheMaxAgeSeconds: int(1, 86_400).default(600),
      /** Minimum time between two fetches, so tokens with unknown `kid`s cannot cause a fetch storm. */
      cooldownSeconds: int(0, 3_600).default(30),
      /** Timeout of one JWKS fetch. */
      timeoutMs: int(100, 60_000).default(5_000),
    })
    .transform(({ caFile, tokenFile, ...rest }) => ({
      ...rest,
      caFile: caFile?.path,
      /** The CA bundle read from caFile. */
      caPem: caFile?.content,
      tokenFile: tokenFile?.path,
    }));

  const rule = z
    .strictObject({
      /** Required `sub` claim, e.g. system:serviceaccount:<namespace>:<name>. */
      subject: z.string().min(1, 'must not be empty').optional(),
      /** Further required claims: claim name → exact string value (top-level string claims). */
      claims: z.record(z.string().min(1, 'claim names must not be empty'), z.string()).optional(),
      /** What a token matching this rule may do. */
      grants: z.array(grantSchema()).min(1, 'must list at least one grant'),
    })
    .superRefine((r, ctx) => {
      if (r.subject === undefined && (r.claims === undefined || Object.keys(r.claims).length === 0)) {
        problem(ctx, 'needs subject, claims or both (a rule matching every token is refused)');
      }
    }, whenValid('subject', 'claims'));

  return z
    .strictObject({
      /** Required `iss` claim. */
      issuer: z.string().min(1, 'must not be empty'),
      /** Accepted `aud` values; a token must carry at least one. */
      audiences: z.array(z.string().min(1, 'must not be empty')).min(1, 'must list at least one audience'),
      /**
       * Allow-list of signature algorithms: asymmetric only (see ASYMMETRIC_ALGORITHMS for why).
       * "none" and HS256/384/512 are refused.
       */
      algorithms: z
        .array(
          z.enum(ASYMMETRIC_ALGORITHMS, {
            error: (issue) =>
              typeof issue.input === 'string' && /^HS(256|384|512)$/.test(issue.input)
                ? `${issue.input} is not supported: ${UNSUPPORTED_SYMMETRIC}`
                : `must be one of ${ASYMMETRIC_ALGORITHMS.join(', ')} ("none" is never accepted)`,
          }),
        )
        .min(1, 'must list at least one algorithm'),
      /** Leeway for exp/nbf/iat checks. */
      clockToleranceSeconds: int(0, 300).default(30),
      /** Key source 1 of 3: a JWKS endpoint. */
      jwks: jwks.optional(),
      /** Key source 2 of 3: inline public JWKs. */
      keys: z.array(jwkSchema()).min(1, 'must list at least one key').optional(),
      /** Key source 3 of 3: PEM public key (SPKI) or certificate files. */
      publicKeyFiles: z.array(textFile(io, checkPublicKey)).min(1, 'must list at least one file').optional(),
      /** Which tokens get which grants; a token matching several rules gets the union. */
      rules: z.array(rule).min(1, 'must list at least one rule (without rules no token is authorized)'),
    })
    .superRefine((jwt, ctx) => {
      const sources = (['jwks', 'keys', 'publicKeyFiles'] as const).filter((s) => jwt[s] !== undefined);
      if (sources.length !== 1) {
        problem(ctx, sources.length === 0 ? 'set exactly one key source: jwks, keys or publicKeyFiles' : `set exactly one key source, not ${sources.join(' and ')}`);
        return;
      }
      const checkKey = (key: KeyObject, path: PropertyKey[]) => {
        if (!algorithmsForKey(key).some((alg) => jwt.algorithms.includes(alg as JwtAlgorithm))) {
          problem(ctx, 'cannot verify any of auth.jwt.algorithms (key type and algorithms do not match)', path);
        }
      };
      jwt.keys?.forEach((jwk, i) => checkKey(createPublicKey({ key: jwk as JsonWebKey, format: 'jwk' }), ['keys', i]));
      jwt.publicKeyFiles?.forEach((file, i) => checkKey(createPublicKey(file.content), ['publicKeyFiles', i]));
    }, whenValid('jwks', 'keys', 'publicKeyFiles', 'algorithms'))
    .transform(({ publicKeyFiles, ...rest }) => ({
      ...rest,
      /** The configured key source. */
      keySource: (rest.jwks !== undefined ? 'jwks' : rest.keys !== undefined ? 'keys' : 'publicKeyFiles') as 'jwks' | 'keys' | 'publicKeyFiles',
      publicKeyFiles: publicKeyFiles?.map((f) => f.path),
      /** PEM contents of publicKeyFiles, same order. */
      publicKeyPems: publicKeyFiles?.map((f) => f.content),
    }));
}

function authSchema(io: ConfigIo) {
  return z.strictObject({
    /** COS-style HMAC signatures (`Authorization: q-sign-algorithm=sha1&…` or presigned query). */
    cos: z
      .strictObject({
        /** Allowed clock difference: a request is accepted while now ∈ [start − skew, end + skew]. */
        maxClockSkewSeconds: int(0, 3_600).default(900),
        /** Longest accepted signature window (end − start), e.g. for presigned URLs. Default 7 days. */
        maxSignatureValiditySeconds: int(1, 31_536_000).default(604_800),
        /**
         * For path-style requests, also accept signatures over `/<Key>` without the coffer (what the
         * official SDK signs with `Domain: 'host:port/{Bucket}'`), only from an access key whose grants
         * name exactly one coffer (the key then binds the coffer), never for a key whose first segment
         * is a coffer the access key reaches, never to list with a GetService signature. Virtual-hosted
         * requests need no setting (the signed host names the coffer). docs/ARCHITECTURE.md.
         */
        acceptKeyOnlyPath: bool().default(false),
      })
      .prefault({}),
    /** SecretId/SecretKey pairs and what each may do. */
    accessKeys: z.array(accessKeySchema(io)).default([]),
    /** Bearer JWTs (e.g. Kubernetes service-account tokens). Absent: JWTs are refused. */
    jwt: jwtSchema(io).optional(),
  });
}

function upstreamSchema(io: ConfigIo) {
  const credentials = z
    .strictObject({
      /** Access key id for the upstream (and for calling STS/KMS). */
      accessKeyId: z.string().regex(/^[A-Za-z0-9+/=._-]{3,128}$/, 'must be 3 to 128 letters, digits or "+/=._-"'),
      /** Secret access key, inline. Prefer secretAccessKeyFile. A secret. */
      secretAccessKey: inlineSecret(8).optional(),
      /** File holding the secret access key; read at load time, trimmed. */
      secretAccessKeyFile: secretFile(io, 8).optional(),
    })
    .superRefine((c, ctx) => exactlyOne(ctx, c, 'secretAccessKey', 'secretAccessKeyFile'), whenValid('secretAccessKey', 'secretAccessKeyFile'))
    .transform(({ secretAccessKey, secretAccessKeyFile, ...rest }) => ({
      ...rest,
      secretAccessKey: (secretAccessKey ?? secretAccessKeyFile?.content) as string,
      secretAccessKeyFile: secretAccessKeyFile?.path,
    }));

  return z
    .strictObject({
      /** S3-compatible endpoint (origin only, http/https). Taken from configuration only, never from requests. */
      endpoint: httpUrl({ originOnly: true }),
      /** Region used for SigV4 signing. */
      region: region().default('us-east-1'),
      /** Upstream bucket (S3 naming rules). */
      bucket: s3Bucket(),
      /** Key prefix inside the bucket, e.g. "coffers/demo/"; must end with "/", no leading "/". */
      prefix: keyPrefix().optional(),
      /** Path-style URLs (http://endpoint/bucket/key); MinIO and Ceph need this. */
      forcePathStyle: bool().default(true),
      /** The upstream's minimum size of a non-last part, in bytes or e.g. "5MiB" (≥ 1 MiB). */
      minPartSize: byteSize(MiB, 5 * GiB).default(5 * MiB),
      /** The upstream's maximum part size (ciphertext bytes); parts whose ciphertext would exceed it
       * are refused with EntityTooLarge. */
      maxPartSize: byteSize(MiB, 5 * GiB).default(5 * GiB),
      /**
       * No byte either way on an upstream connection for this long → the request is destroyed and the
       * client gets 504 GatewayTimeout (a part's previous version stays). Per read/write, not per
       * request, so slow multi-GiB parts are fine.
       */
      idleTimeoutMs: int(1000, 3_600_000).default(120_000),
      /** A control-plane call (list, head, complete, small puts) until its response headers. */
      requestTimeoutMs: int(1000, 3_600_000).default(30_000),
      /** TCP (and TLS) connect to the upstream. */
      connectTimeoutMs: int(100, 600_000).default(10_000),
      /** Static credentials. Absent: the AWS default credential chain (env, web identity, instance role). */
      credentials: credentials.optional(),
    })
    .superRefine((u, ctx) => {
      if (u.minPartSize > u.maxPartSize) problem(ctx, 'must not exceed maxPartSize', ['minPartSize']);
    }, whenValid('minPartSize', 'maxPartSize'));
}

const EXTERNAL_ID_RULE = 'must be 2 to 1224 characters of letters, digits or "+=,.@:/-_"';
const ROLE_ARN = /^arn:[a-z][a-z0-9-]{0,31}:iam::(?:\d{12})?:role\/(?:[\w+=,.@-]+\/)*[\w+=,.@-]{1,64}$/;
const KMS_KEY = '(?:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|mrk-[0-9a-fA-F]{32})';
const KMS_ALIAS = 'alias/[A-Za-z0-9/_-]{1,250}';
const AWS_KMS_KEY_ID = new RegExp(`^(?:${KMS_KEY}|${KMS_ALIAS}|arn:aws[a-z-]*:kms:([a-z0-9-]+):\\d{12}:(?:key/${KMS_KEY}|${KMS_ALIAS}))$`);

function roleSchema() {
  return z.discriminatedUnion(
    'type',
    [
      /** Use the upstream credentials as they are. */
      z.strictObject({ type: z.literal('static') }),
      /** Assume a role with STS AssumeRole (base credentials: upstream.credentials or the default chain). */
      z.strictObject({
        type: z.literal('sts'),
        /** Role to assume, e.g. arn:aws:iam::123456789012:role/coffer-demo. */
        roleArn: z.string().regex(ROLE_ARN, 'must be a role ARN such as "arn:aws:iam::123456789012:role/name"'),
        /** ExternalId required by the role's trust policy. */
        // Length apart from the pattern: RE2 (Helm's schema validator) refuses repeat counts above 1000.
        externalId: z.string().min(2, EXTERNAL_ID_RULE).max(1224, EXTERNAL_ID_RULE).regex(/^[\w+=,.@:/-]+$/, EXTERNAL_ID_RULE).optional(),
        /** RoleSessionName (shows up in CloudTrail). */
        sessionName: z.string().regex(/^[\w+=,.@-]{2,64}$/, 'must be 2 to 64 characters of letters, digits or "+=,.@-_"').default('coffer-gateway'),
        /** Lifetime of the assumed credentials (900 to 43200 seconds). */
        durationSeconds: int(900, 43_200).default(3_600),
        /** STS endpoint (e.g. MinIO or LocalStack). Default: the AWS regional endpoint. */
        endpoint: httpUrl({ originOnly: true }).optional(),
        /** STS region. Default: upstream.region. */
        region: region().optional(),
      }),
    ],
    { error: 'type must be "static" or "sts"' },
  );
}

function kmsSchema() {
  return z.discriminatedUnion(
    'type',
    [
      /** A key from the local keyring (see `keyring`). */
      z.strictObject({
        type: z.literal('local'),
        /** Name of the key in the keyring directory. */
        keyId: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/, 'must be 1 to 128 letters, digits, ".", "_" or "-", starting with a letter or digit'),
      }),
      /** AWS KMS (or a compatible service such as LocalStack). */
      z.strictObject({
        type: z.literal('aws-kms'),
        /** Key id, key ARN, alias name ("alias/…") or alias ARN. */
        keyId: z
          .string()
          .regex(AWS_KMS_KEY_ID, 'must be a KMS key id, key ARN, "alias/<name>" or alias ARN')
          .refine((id) => !/(?:^|:)alias\/aws\//.test(id), 'must not be an AWS managed key (alias/aws/…)'),
        /** KMS endpoint override. Default: the AWS regional endpoint. */
        endpoint: httpUrl({ originOnly: true }).optional(),
        /** KMS region; required unless keyId is an ARN (then taken from it). */
        region: region().optional(),
        /**
         * Key ARNs of earlier keys this coffer's objects may still be sealed under, during and after a
         * rotation (`coffer-gateway rewrap`). Reads unwrap under the key a stored object names only if it
         * is `keyId` or listed here: the name is not authenticated, and honouring any key would let
         * whoever can write the bucket point objects at a key of their own.
         */
        previousKeyIds: z.array(z.string().regex(/^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key\/[A-Za-z0-9-]+$/, 'must be a KMS key ARN (as recorded in object envelopes)')).max(100).default([]),
      }),
    ],
    { error: 'type must be "local" or "aws-kms"' },
  );
}

function cofferSchema(io: ConfigIo) {
  return z
    .strictObject({
      /** Where the ciphertext is stored. */
      upstream: upstreamSchema(io),
      /** Credentials used for this coffer's upstream and KMS calls. Default: { type: static }. */
      role: roleSchema().prefault({ type: 'static' }),
      /** Key-encryption key protecting the per-object data keys. */
      kms: kmsSchema(),
    })
    .superRefine((coffer, ctx) => {
      if (coffer.kms.type !== 'aws-kms') return;
      const arnRegion = AWS_KMS_KEY_ID.exec(coffer.kms.keyId)?.[1];
      if (coffer.kms.region === undefined && arnRegion === undefined) {
        problem(ctx, 'required unless kms.keyId is an ARN', ['kms', 'region']);
      } else if (coffer.kms.region !== undefined && arnRegion !== undefined && arnRegion !== coffer.kms.region) {
        problem(ctx, 'does not match the region of the kms.keyId ARN', ['kms', 'region']);
      }
    }, whenValid('kms'))
    .transform((coffer) => ({
      ...coffer,
      // Resolved defaults, so the runtime never guesses: STS region = upstream region, KMS region from the ARN.
      role: coffer.role.type === 'sts' ? { ...coffer.role, region: coffer.role.region ?? coffer.upstream.region } : coffer.role,
      kms:
        coffer.kms.type === 'aws-kms'
          ? { ...coffer.kms, region: (coffer.kms.region ?? AWS_KMS_KEY_ID.exec(coffer.kms.keyId)?.[1]) as string }
          : coffer.kms,
    }));
}

// ---------------------------------------------------------------------------------------------
// Coffer lifecycle (issue 16: PutCofferLifecycle / GetCofferLifecycle)
// ---------------------------------------------------------------------------------------------

function lifecycleSchema() {
  return z
    .strictObject({
      /**
       * Length in seconds of a lifecycle "day" as the upstreams' lifecycle engines count it. 86400 for
       * AWS S3 and production Ceph; a Ceph RGW run with `rgw lc debug interval = S` counts S seconds
       * (tests). The gateway hides an object N of these after its completion, as the upstream does.
       */
      dayLengthSeconds: int(1, 86_400).default(86_400),
      /** How long a replica trusts a coffer's lifecycle record it has read: a changed configuration
       * applies on every replica within this time (at once on the replica that took the PUT). */
      cacheSeconds: int(0, 3_600).default(30),
    })
    .prefault({});
}

// ---------------------------------------------------------------------------------------------
// Coffer policies (issue 16: PutCofferPolicy / GetCofferPolicy / DeleteCofferPolicy)
// ---------------------------------------------------------------------------------------------

const QCS_PRINCIPAL = /^qcs::cam::(?:uin\/[0-9]{1,20}:(?:uin|roleName|groupId)\/[A-Za-z0-9_.@+=,-]{1,128}|anonymous(?::anonymous)?)$/;

function policiesSchema() {
  const mapping = z
    .strictObject({
      /** The SecretId of a configured access key. */
      accessKey: z.string().min(1).optional(),
      /** The `sub` claim of accepted JWTs. */
      jwtSubject: z.string().min(1).optional(),
      /** The principal a coffer policy names it by, e.g. "qcs::cam::uin/100000000001:uin/100000000011". */
      principal: z.string().regex(QCS_PRINCIPAL, 'must be a principal such as "qcs::cam::uin/100000000001:uin/100000000011"'),
    })
    .superRefine((m, ctx) => {
      if ((m.accessKey === undefined) === (m.jwtSubject === undefined)) problem(ctx, 'set exactly one of accessKey and jwtSubject', ['accessKey']);
    });
  return z
    .strictObject({
      /** How long a replica trusts a coffer policy it has read: a change applies on every replica within this time. */
      cacheSeconds: int(0, 3_600).default(30),
      /** Which qcs principal each access key or JWT subject is, so coffer policies can name it. A caller
       * mapped to none gets only its configured grants (and any policy deny naming "*"). */
      principals: z.array(mapping).default([]),
    })
    .prefault({});
}

// ---------------------------------------------------------------------------------------------
// Root
// ---------------------------------------------------------------------------------------------

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
          /** SecretId of the demo access key (env COFFER_DEMO_SECRET_ID); generated at start when unset. */
          secretId: z.string().regex(/^[A-Za-z0-9._-]{3,128}$/, 'must be 3 to 128 letters, digits, ".", "_" or "-"').optional(),
          /** SecretKey of the demo access key (env COFFER_DEMO_SECRET_KEY). When neither is set, a fresh
           * random pair is generated at start and printed once. A secret. */
          secretKey: inlineSecret(16).optional(),
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
      logging: z
        .strictObject({
          /** Log level. */
          level: z.enum(LOG_LEVELS, { error: `must be one of ${LOG_LEVELS.join(', ')}` }).default('info'),
        })
        .prefault({}),
    })
    .superRefine((config, ctx) => {
      if (!config.demo.enabled) return;
      if (!config.embeddedUpstream.enabled) crossProblem(ctx, 'requires embeddedUpstream.enabled', ['demo', 'enabled']);
      if (Object.hasOwn(config.coffers, config.demo.coffer)) crossProblem(ctx, 'is also configured in coffers', ['demo', 'coffer']);
      if ((config.demo.secretId === undefined) !== (config.demo.secretKey === undefined)) {
        crossProblem(ctx, 'set both demo.secretId and demo.secretKey (COFFER_DEMO_SECRET_ID / COFFER_DEMO_SECRET_KEY), or neither to have them generated at start', ['demo', 'secretKey']);
      }
    }, whenValid('demo', 'embeddedUpstream', 'coffers', ['server', 'host']))
    .superRefine((config, ctx) => {
      const known = new Set(Object.keys(config.coffers));
      if (config.demo.enabled) known.add(config.demo.coffer);
      const checkGrants = (grants: readonly { coffer: string }[], path: PropertyKey[]) =>
        grants.forEach((grant, i) => {
          if (grant.coffer !== '*' && !known.has(grant.coffer)) crossProblem(ctx, 'is not a configured coffer', [...path, i, 'coffer']);
        });
      config.auth.accessKeys.forEach((key, i) => checkGrants(key.grants, ['auth', 'accessKeys', i, 'grants']));
      config.auth.jwt?.rules.forEach((rule, i) => checkGrants(rule.grants, ['auth', 'jwt', 'rules', i, 'grants']));
    }, whenValid('coffers', 'demo', 'auth'))
    .superRefine((config, ctx) => {
      const seen = new Set<string>();
      if (config.demo.enabled && config.demo.secretId !== undefined) seen.add(config.demo.secretId);
      config.auth.accessKeys.forEach((key, i) => {
        if (seen.has(key.secretId)) crossProblem(ctx, 'is used by another access key (or the demo key)', ['auth', 'accessKeys', i, 'secretId']);
        seen.add(key.secretId);
      });
    }, whenValid(['auth', 'accessKeys'], 'demo'))
    .superRefine((config, ctx) => {
      if (Object.keys(config.coffers).length === 0 && !config.demo.enabled) {
        crossProblem(ctx, 'no coffer is configured (and the demo coffer is disabled)', ['coffers']);
      }
      if (config.auth.accessKeys.length === 0 && config.auth.jwt === undefined && !config.demo.enabled) {
        crossProblem(ctx, 'no access key, JWT issuer or demo key is configured, so no request could be authorized', ['auth']);
      }
    }, whenValid('coffers', 'auth', 'demo'))
    .superRefine((config, ctx) => {
      // A mapping of a SecretId no key has would silently map nobody (a typo must not pass).
      const keys = new Set(config.auth.accessKeys.map((key) => key.secretId));
      if (config.demo.enabled && config.demo.secretId !== undefined) keys.add(config.demo.secretId);
      config.policies.principals.forEach((mapping, i) => {
        if (mapping.accessKey !== undefined && !keys.has(mapping.accessKey)) crossProblem(ctx, 'is not the SecretId of a configured access key', ['policies', 'principals', i, 'accessKey']);
      });
    }, whenValid('policies', ['auth', 'accessKeys'], 'demo'))
    .superRefine((config, ctx) => {
      for (const [name, coffer] of Object.entries(config.coffers)) {
        if (coffer.role.type === 'sts' && config.roles.refreshBeforeExpirySeconds >= coffer.role.durationSeconds) {
          crossProblem(ctx, `must be shorter than coffers.${name}.role.durationSeconds`, ['roles', 'refreshBeforeExpirySeconds']);
        }
      }
    }, whenValid('coffers', 'roles'));
}

export type ConfigSchema = ReturnType<typeof createConfigSchema>;

export type DeepReadonly<T> = T extends readonly (infer U)[]
  ? readonly DeepReadonly<U>[]
  : T extends object
    ? { readonly [K in keyof T]: DeepReadonly<T[K]> }
    : T;

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
  return cofferSchema({ readFile: () => { throw new Error('a program-built coffer reads no files'); } }).parse(raw);
}
