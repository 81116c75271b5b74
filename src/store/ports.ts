/**
 * The narrow view of the upstream store the upload and read logic needs: the methods and types of
 * src/upstream's UpstreamStore, minus what it does not use (object metadata), so unit tests can hand
 * in a plain in-memory fake.
 */
import type { StreamedUpload, UpstreamBody, UpstreamLifecycleRule, UpstreamListing, UpstreamObject, UpstreamPart } from '../upstream/upstream-store';

export { isUpstreamNotFound as isNotFound, isUpstreamPreconditionFailed as isPreconditionFailed } from '../upstream/upstream-store';

export type StoredObject = UpstreamObject;
export type StoredPart = UpstreamPart;
export type ObjectListing = UpstreamListing;
export type StreamedBody = Omit<StreamedUpload, 'contentMd5'>;
export type LifecycleRule = UpstreamLifecycleRule;
export type ObjectBody = Pick<UpstreamBody, 'body' | 'size' | 'totalSize' | 'lastModified'>;

export interface UploadStore {
  createMultipartUpload(key: string): Promise<{ uploadId: string }>;
  uploadPart(key: string, uploadId: string, partNumber: number, upload: StreamedBody): Promise<{ etag: string }>;
  listParts(key: string, uploadId: string): Promise<StoredPart[]>;
  completeMultipartUpload(key: string, uploadId: string, parts: ReadonlyArray<{ partNumber: number; etag: string }>): Promise<{ etag: string }>;
  abortMultipartUpload(key: string, uploadId: string): Promise<void>;
  putObject(key: string, upload: StreamedBody | { body: Buffer }, options?: { createOnly?: boolean }): Promise<{ etag: string }>;
  getObject(key: string, range?: { start: number; endExclusive: number }): Promise<ObjectBody>;
  headObject(key: string): Promise<StoredObject | undefined>;
  listObjects(prefix: string, options?: { startAfter?: string; delimiter?: string; maxKeys?: number; continuationToken?: string }): Promise<ObjectListing>;
  deleteObjects(keys: readonly string[]): Promise<void>;
  /** The bucket's lifecycle rules (PutCofferLifecycle merges the coffer's into them); absent: the store has no lifecycle engine. */
  getLifecycleRules?(): Promise<LifecycleRule[]>;
  putLifecycleRules?(rules: readonly LifecycleRule[]): Promise<void>;
}
