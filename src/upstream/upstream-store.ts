/**
 * The upstream port: everything the gateway asks of the S3-compatible bucket that holds a coffer's
 * ciphertext and bookkeeping objects (docs/FORMAT.md §8). One instance talks to one bucket.
 *
 * Keys are FULL upstream keys (the caller has already applied the coffer prefix); they are opaque
 * byte strings to this layer — never normalised, never parsed as URLs.
 *
 * ETags are returned exactly as the upstream sends them (S3 quotes them: `"<hex>"`, `"<hex>-N"`), and
 * `completeMultipartUpload` expects the part ETags in that same form.
 *
 * Errors:
 * - a missing object / upload / bucket → {@link UpstreamNotFoundError} (kind tells which);
 * - anything else is a `GatewayError`: upstream 5xx and network failures → `BadGateway`; upstream
 *   `SlowDown` or 503 → `ServiceUnavailable`; a timeout → `GatewayTimeout`; an upstream 4xx that means a
 *   gateway bug or misconfiguration (403, 400, …) → `BadGateway`; `reason` is always `upstream-<Code>`
 *   (or `upstream-<errno>` / `upstream-idle-timeout`). Messages never carry credentials or URLs.
 * - a streamed body that fails on the caller's side (too short, too long, aborted, errored) rejects
 *   with `GatewayError('IncompleteBody')` — and the upstream request has been destroyed, not ended.
 */
import type { Readable } from 'node:stream';

export interface UpstreamObject {
  key: string;
  size: number;
  etag: string;
  lastModified: Date;
}

export interface UpstreamPart {
  partNumber: number;
  size: number;
  etag: string;
  lastModified: Date;
}

export interface UpstreamListing {
  objects: UpstreamObject[];
  commonPrefixes: string[];
  nextContinuationToken?: string;
  isTruncated: boolean;
}

export interface UpstreamBody {
  body: Readable;
  /** Bytes in this response (the range length for a ranged GET). */
  size: number;
  /** Size of the whole object. */
  totalSize: number;
  etag: string;
  lastModified: Date;
  metadata: Record<string, string>;
}

export interface StreamedUpload {
  /** Exactly `contentLength` bytes; anything else destroys the upstream request. */
  body: Readable;
  contentLength: number;
  /** Base64 MD5 of the body, sent as Content-MD5 (the upstream rejects a mismatch and stores nothing). */
  contentMd5?: string;
  /** Aborting destroys the upstream request; the previous version of the object/part stays intact. */
  signal?: AbortSignal;
  /**
   * Called with each body chunk once the upstream connection has taken it (its write completed), so
   * the producer may reuse the chunk's memory (the part encryptor's shared output blocks). Optional
   * both ways: a producer that passes none gets nothing called, a store that never calls it costs the
   * producer fresh memory, never correctness.
   */
  release?: (chunk: Buffer) => void;
}

/**
 * One rule of the bucket's lifecycle configuration, as far as the gateway needs to see it. `raw` is the
 * rule exactly as the upstream sent it (rules the gateway did not write are written back unchanged).
 */
export interface UpstreamLifecycleRule {
  readonly id?: string;
  readonly prefix?: string;
  readonly enabled: boolean;
  readonly expirationDays?: number;
  readonly abortIncompleteUploadDays?: number;
  readonly raw?: unknown;
}

export interface UpstreamStore {
  createMultipartUpload(key: string, options?: { metadata?: Record<string, string> }): Promise<{ uploadId: string }>;
  uploadPart(key: string, uploadId: string, partNumber: number, upload: StreamedUpload): Promise<{ etag: string }>;
  /** All parts, every page. */
  listParts(key: string, uploadId: string): Promise<UpstreamPart[]>;
  completeMultipartUpload(key: string, uploadId: string, parts: ReadonlyArray<{ partNumber: number; etag: string }>): Promise<{ etag: string }>;
  abortMultipartUpload(key: string, uploadId: string): Promise<void>;
  /**
   * `createOnly` (buffered bodies only) sends `If-None-Match: *`: the upstream stores the object only if
   * the key does not exist and otherwise answers 412 → {@link UpstreamPreconditionFailedError}. AWS S3
   * and Ceph RGW honour it; this is what makes manifests, and so coffers, write-once under races.
   */
  putObject(key: string, upload: StreamedUpload | { body: Buffer }, options?: { metadata?: Record<string, string>; createOnly?: boolean }): Promise<{ etag: string }>;
  /** NoSuchKey → UpstreamNotFoundError. `range` must be non-empty and inside the object. */
  getObject(key: string, range?: { start: number; endExclusive: number }): Promise<UpstreamBody>;
  /** undefined when the object does not exist. */
  headObject(key: string): Promise<(UpstreamObject & { metadata: Record<string, string> }) | undefined>;
  listObjects(prefix: string, options?: { startAfter?: string; delimiter?: string; maxKeys?: number; continuationToken?: string }): Promise<UpstreamListing>;
  /** Batches of 1000; keys that do not exist count as deleted. */
  deleteObjects(keys: readonly string[]): Promise<void>;
  /** The bucket's lifecycle rules; [] when it has none. Unsupported → BadGateway `upstream-NotImplemented`. */
  getLifecycleRules(): Promise<UpstreamLifecycleRule[]>;
  /** Replaces the bucket's whole lifecycle configuration (S3 has no per-rule update). */
  putLifecycleRules(rules: readonly UpstreamLifecycleRule[]): Promise<void>;
}

export type UpstreamNotFoundKind = 'NoSuchKey' | 'NoSuchUpload' | 'NoSuchBucket';

export class UpstreamNotFoundError extends Error {
  override readonly name = 'UpstreamNotFoundError';
  readonly kind: UpstreamNotFoundKind;

  constructor(kind: UpstreamNotFoundKind, message?: string) {
    super(message ?? `The upstream answered ${kind}.`);
    this.kind = kind;
  }
}

/** A conditional upstream write whose precondition did not hold (HTTP 412). */
export class UpstreamPreconditionFailedError extends Error {
  override readonly name = 'UpstreamPreconditionFailedError';
  constructor() {
    super('The upstream object store answered PreconditionFailed (HTTP 412).');
  }
}

export function isUpstreamPreconditionFailed(error: unknown): error is UpstreamPreconditionFailedError {
  return error instanceof UpstreamPreconditionFailedError;
}

export function isUpstreamNotFound(error: unknown, kind?: UpstreamNotFoundKind): error is UpstreamNotFoundError {
  return error instanceof UpstreamNotFoundError && (kind === undefined || error.kind === kind);
}
