/**
 * Building blocks of the configuration schema: field types (sizes, URLs, names, secrets, files read
 * through `ConfigIo`) and the problem-reporting helpers every section and the root use. Nothing here
 * knows a section.
 */
import { X509Certificate, createPrivateKey, createPublicKey } from 'node:crypto';
import { isIP } from 'node:net';
import { z } from 'zod';

export const KiB = 1024;
export const MiB = 1024 * KiB;
export const GiB = 1024 * MiB;

/** How the schema reads `...File` fields; `loadConfig` passes `fs.readFileSync` or a test double. */
export interface ConfigIo {
  readonly readFile: (path: string) => string;
}

type Ctx = z.RefinementCtx;

export function problem(ctx: Ctx, message: string, path?: PropertyKey[]): void {
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
export function crossProblem(ctx: Ctx, message: string, path: PropertyKey[]): void {
  ctx.addIssue({ code: 'custom', message, path, params: CROSS_CHECK });
}
export function whenValid(...prefixes: (string | readonly string[])[]): { when: (payload: { issues: readonly IssueLike[] }) => boolean } {
  const lists = prefixes.map((p) => (typeof p === 'string' ? [p] : p));
  return {
    when: (payload) =>
      !payload.issues.some((issue) => {
        const path = issue.path ?? [];
        if (isCrossCheck(issue)) return false;
        if (path.length === 0) return issue.code !== 'unrecognized_keys';
        // A problem on the watched value or on anything containing it (`auth` when the check reads
        // `auth.accessKeys`: the section may not even be an object) means the check cannot run.
        return lists.some((prefix) => prefix.every((segment, i) => i >= path.length || path[i] === segment));
      }),
  };
}

export const int = (min: number, max: number) => z.int().min(min, `must be at least ${min}`).max(max, `must be at most ${max}`);

export const bool = () => z.boolean();

function formatBytes(n: number): string {
  if (n % GiB === 0) return `${n / GiB} GiB`;
  if (n % MiB === 0) return `${n / MiB} MiB`;
  if (n % KiB === 0) return `${n / KiB} KiB`;
  return `${n} bytes`;
}

const BYTE_UNITS: Record<string, number> = { '': 1, b: 1, kib: KiB, mib: MiB, gib: GiB };

/**
 * JSON Schema for fields whose zod form is a transform (JSON Schema cannot express a transform, so
 * `z.toJSONSchema` would emit `{}` for them). Read by src/config/json-schema.ts.
 */
export const jsonSchemaOverrides = z.registry<{ readonly jsonSchema: Readonly<Record<string, unknown>> }>();

/** A size in bytes: an integer, or a string with an IEC unit such as `"5MiB"` or `"1.5 GiB"`. */
export function byteSize(min: number, max: number) {
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

export const HOSTNAME = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

/** True for `localhost`, 127.0.0.0/8 and ::1 (with or without URL brackets). */
export function isLoopbackHost(host: string): boolean {
  const h = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  if (h.toLowerCase() === 'localhost') return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  if (isIP(h) === 6) return h === '::1' || /^::ffff:127\./i.test(h);
  return false;
}

export const listenHost = () => z.string().refine((h) => isIP(h) !== 0 || HOSTNAME.test(h), 'must be an IP address or a host name');

interface UrlRules {
  /** Only the origin is kept; a path other than `/` is refused. */
  readonly originOnly?: boolean;
  /** Plain http is accepted only for loopback hosts (tests, sidecars). */
  readonly httpsUnlessLoopback?: boolean;
}

/** An http(s) URL from configuration. Credentials, query and fragment are refused (never echoed). */
export function httpUrl(rules: UrlRules = {}) {
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

export const region = () => z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/, 'must be a region name such as "us-east-1" (letters, digits, "-", "_")');

/** CDCS coffer names: `<name>-<APPID>`, lowercase letters, digits and hyphens, e.g. `demo-1250000000`. */
export const COFFER_NAME = /^[a-z0-9](?:[a-z0-9-]{0,48}[a-z0-9])?-[0-9]{1,20}$/;
export const cofferName = () => z.string().regex(COFFER_NAME, 'must be a coffer name "<name>-<APPID>": lowercase letters, digits and hyphens, ending in "-" and the numeric APPID (e.g. "demo-1250000000")');

/** S3 bucket naming rules (general purpose buckets). */
export function s3Bucket() {
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
export function keyPrefix() {
  return z.string().transform((prefix, ctx) => {
    if (prefix === '') return undefined;
    const issues: string[] = [];
    if (prefix.startsWith('/')) issues.push('must not start with "/"');
    if (!prefix.endsWith('/')) issues.push('must end with "/"');
    // eslint-disable-next-line no-control-regex -- control characters are what this refuses
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
export const inlineSecret = (minLength: number) => z.string().min(minLength, `must be at least ${minLength} characters`).max(1024, 'must be at most 1024 characters').regex(/^\S+$/, 'must not contain whitespace');

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
export function secretFile(io: ConfigIo, minBytes = 1) {
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
export function textFile(io: ConfigIo, check: (content: string) => string | undefined) {
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

export const checkCertificate = (pem: string): string | undefined => {
  if (!pem.includes('-----BEGIN CERTIFICATE-----')) return 'is not a PEM certificate';
  try {
    new X509Certificate(pem);
    return undefined;
  } catch {
    return 'is not a valid PEM certificate';
  }
};

export const checkPrivateKey = (pem: string): string | undefined => {
  try {
    createPrivateKey(pem);
    return undefined;
  } catch {
    return 'is not an unencrypted PEM private key';
  }
};

export const checkPublicKey = (pem: string): string | undefined => {
  if (/PRIVATE KEY-----/.test(pem)) return 'holds a private key; mount only the public key';
  try {
    createPublicKey(pem);
    return undefined;
  } catch {
    return 'is not a PEM public key or certificate';
  }
};

/** Both sides of a `value` XOR `valueFile` pair; reports at the right path. */
export function exactlyOne(ctx: Ctx, value: object, inline: string, file: string): void {
  const record = value as Record<string, unknown>;
  const hasInline = record[inline] !== undefined;
  const hasFile = record[file] !== undefined;
  if (hasInline && hasFile) problem(ctx, `set only one of ${inline} and ${file}`, [file]);
  if (!hasInline && !hasFile) problem(ctx, `required (set ${inline} or ${file})`, [inline]);
}

/**
 * A certificate and its private key given as files and reloaded when they change (server.tls,
 * egress.ca): both files read and checked at load; `pairProblem` says what is wrong with the pair, if
 * anything, and on which field. `reloadIntervalMs`: how often the files are compared with what is in
 * use (file-system events are seen at once; this is the safety net). A changed pair is used once it
 * checks out; a bad one keeps the current pair.
 */
export function certificateKeyFiles(io: ConfigIo, pairProblem: (certPem: string, keyPem: string) => { readonly message: string; readonly field: 'certFile' | 'keyFile' } | undefined) {
  return z
    .strictObject({
      /** PEM certificate (chain). */
      certFile: textFile(io, checkCertificate),
      /** Its unencrypted PEM private key. A secret. */
      keyFile: textFile(io, checkPrivateKey),
      reloadIntervalMs: int(1000, 3_600_000).default(10_000),
    })
    .superRefine(
      (value, ctx) => {
        const complaint = pairProblem(value.certFile.content, value.keyFile.content);
        if (complaint !== undefined) problem(ctx, complaint.message, [complaint.field]);
      },
      whenValid('certFile', 'keyFile'),
    )
    .transform(({ certFile, keyFile, reloadIntervalMs }) => ({
      reloadIntervalMs,
      certFile: certFile.path,
      keyFile: keyFile.path,
      /** The certificate (chain) read from certFile. */
      certPem: certFile.content,
      /** The private key read from keyFile (secret; redacted by redactConfig). */
      keyPem: keyFile.content,
    }));
}
