/**
 * The narrow view of the upstream store the upload and read logic needs (a structural subset of
 * src/upstream's UpstreamStore), so unit tests can hand in a plain in-memory fake.
 */
import type { Readable } from 'node:stream';

export interface StoredObject {
  readonly key: string;
  readonly size: number;
  readonly etag: string;
  readonly lastModified: Date;
}

export interface StoredPart {
  readonly partNumber: number;
  readonly size: number;
  readonly etag: string;
  readonly lastModified: Date;
}

export interface ObjectListing {
  readonly objects: StoredObject[];
  readonly commonPrefixes: string[];
  readonly nextContinuationToken?: string;
  readonly isTruncated: boolean;
}

export interface StreamedBody {
  readonly body: Readable;
  readonly contentLength: number;
  readonly signal?: AbortSignal;
}

export interface ObjectBody {
  readonly body: Readable;
  readonly size: number;
  readonly totalSize: number;
  readonly lastModified: Date;
}

export interface UploadStore {
  createMultipartUpload(key: string): Promise<{ uploadId: string }>;
  uploadPart(key: string, uploadId: string, partNumber: number, upload: StreamedBody): Promise<{ etag: string }>;
  listParts(key: string, uploadId: string): Promise<StoredPart[]>;
  completeMultipartUpload(key: string, uploadId: string, parts: ReadonlyArray<{ partNumber: number; etag: string }>): Promise<{ etag: string }>;
  abortMultipartUpload(key: string, uploadId: string): Promise<void>;
  putObject(key: string, upload: StreamedBody | { body: Buffer }): Promise<{ etag: string }>;
  getObject(key: string, range?: { start: number; endExclusive: number }): Promise<ObjectBody>;
  headObject(key: string): Promise<StoredObject | undefined>;
  listObjects(prefix: string, options?: { startAfter?: string; delimiter?: string; maxKeys?: number; continuationToken?: string }): Promise<ObjectListing>;
  deleteObjects(keys: readonly string[]): Promise<void>;
}

/** Raised by a store for a missing key or upload; the service maps it to the CDCS error. */
export function isNotFound(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const kind = (error as { kind?: unknown }).kind;
  return error.name === 'UpstreamNotFoundError' || kind === 'NoSuchKey' || kind === 'NoSuchUpload';
}
