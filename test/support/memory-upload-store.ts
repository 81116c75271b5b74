/**
 * A strict in-memory UploadStore for unit tests of the upload logic. Strict where S3 is: a body that
 * is shorter or longer than its Content-Length, or that errors, stores nothing and leaves the
 * previous version intact; Complete enforces EntityTooSmall / InvalidPart / InvalidPartOrder;
 * unknown uploads are NoSuchUpload. It also counts requests and bytes written, per kind.
 */
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import type { ObjectBody, ObjectListing, StoredObject, StoredPart, StreamedBody, UploadStore } from '../../src/store/ports';
import { UpstreamNotFoundError, UpstreamPreconditionFailedError } from '../../src/upstream/upstream-store';

/** The real store's not-found error, so the service's mapping is exercised as in production. */
class NotFound extends UpstreamNotFoundError {}

export class UpstreamClientError extends Error {
  constructor(readonly code: string) {
    super(code);
  }
}

interface Entry {
  data: Buffer;
  etag: string;
  lastModified: Date;
}

export class MemoryUploadStore implements UploadStore {
  readonly objects = new Map<string, Entry>();
  readonly uploads = new Map<string, { key: string; parts: Map<number, Entry> }>();
  readonly stats = { requests: 0, bytesWritten: 0, partBytes: 0, objectBytes: 0, byOperation: new Map<string, number>() };
  private counter = 0;
  /** Hook to fail or observe requests (e.g. make uploadPart throw). */
  beforeRequest: ((operation: string, key: string) => void) | undefined;

  constructor(readonly minPartSize = 5 * 1024 * 1024) {}

  private count(operation: string, key: string): void {
    this.stats.requests += 1;
    this.stats.byOperation.set(operation, (this.stats.byOperation.get(operation) ?? 0) + 1);
    this.beforeRequest?.(operation, key);
  }

  private async receive(upload: StreamedBody | { body: Buffer }): Promise<Buffer> {
    if (Buffer.isBuffer(upload.body)) return upload.body;
    const streamed = upload as StreamedBody;
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of streamed.body) {
      size += (chunk as Buffer).length;
      if (size > streamed.contentLength) throw new UpstreamClientError('IncompleteBody');
      chunks.push(chunk as Buffer);
    }
    if (size !== streamed.contentLength) throw new UpstreamClientError('IncompleteBody');
    return Buffer.concat(chunks);
  }

  private entry(data: Buffer): Entry {
    return { data, etag: `"${createHash('md5').update(data).digest('hex')}"`, lastModified: new Date() };
  }

  async createMultipartUpload(key: string): Promise<{ uploadId: string }> {
    this.count('createMultipartUpload', key);
    const uploadId = `up-${(this.counter += 1)}`;
    this.uploads.set(uploadId, { key, parts: new Map() });
    return { uploadId };
  }

  async uploadPart(key: string, uploadId: string, partNumber: number, upload: StreamedBody): Promise<{ etag: string }> {
    this.count('uploadPart', key);
    const data = await this.receive(upload);
    const target = this.uploads.get(uploadId);
    if (target === undefined || target.key !== key) throw new NotFound('NoSuchUpload');
    const entry = this.entry(data);
    target.parts.set(partNumber, entry);
    this.stats.bytesWritten += data.length;
    this.stats.partBytes += data.length;
    return { etag: entry.etag };
  }

  async listParts(key: string, uploadId: string): Promise<StoredPart[]> {
    this.count('listParts', key);
    const target = this.uploads.get(uploadId);
    if (target === undefined || target.key !== key) throw new NotFound('NoSuchUpload');
    return [...target.parts.entries()].sort(([a], [b]) => a - b).map(([partNumber, e]) => ({ partNumber, size: e.data.length, etag: e.etag, lastModified: e.lastModified }));
  }

  async completeMultipartUpload(key: string, uploadId: string, parts: ReadonlyArray<{ partNumber: number; etag: string }>): Promise<{ etag: string }> {
    this.count('completeMultipartUpload', key);
    const target = this.uploads.get(uploadId);
    if (target === undefined || target.key !== key) throw new NotFound('NoSuchUpload');
    const pieces: Buffer[] = [];
    parts.forEach((part, index) => {
      if (index > 0 && part.partNumber <= (parts[index - 1] as { partNumber: number }).partNumber) throw new UpstreamClientError('InvalidPartOrder');
      const stored = target.parts.get(part.partNumber);
      if (stored === undefined || stored.etag.replace(/"/g, '') !== part.etag.replace(/"/g, '')) throw new UpstreamClientError('InvalidPart');
      if (index < parts.length - 1 && stored.data.length < this.minPartSize) throw new UpstreamClientError('EntityTooSmall');
      pieces.push(stored.data);
    });
    const data = Buffer.concat(pieces);
    this.objects.set(key, this.entry(data));
    this.uploads.delete(uploadId);
    return { etag: '"multipart"' };
  }

  async abortMultipartUpload(key: string, uploadId: string): Promise<void> {
    this.count('abortMultipartUpload', key);
    if (!this.uploads.delete(uploadId)) throw new NotFound('NoSuchUpload');
  }

  async putObject(key: string, upload: StreamedBody | { body: Buffer }, options: { createOnly?: boolean } = {}): Promise<{ etag: string }> {
    this.count('putObject', key);
    const data = await this.receive(upload);
    if (options.createOnly === true && this.objects.has(key)) throw new UpstreamPreconditionFailedError();
    const entry = this.entry(data);
    this.objects.set(key, entry);
    this.stats.bytesWritten += data.length;
    this.stats.objectBytes += data.length;
    return { etag: entry.etag };
  }

  async getObject(key: string, range?: { start: number; endExclusive: number }): Promise<ObjectBody> {
    this.count('getObject', key);
    const entry = this.objects.get(key);
    if (entry === undefined) throw new NotFound('NoSuchKey');
    const slice = range === undefined ? entry.data : entry.data.subarray(range.start, Math.min(range.endExclusive, entry.data.length));
    const chunks: Buffer[] = [];
    for (let at = 0; at < slice.length; at += 65536) chunks.push(slice.subarray(at, at + 65536));
    return { body: Readable.from(chunks), size: slice.length, totalSize: entry.data.length, lastModified: entry.lastModified };
  }

  async headObject(key: string): Promise<StoredObject | undefined> {
    this.count('headObject', key);
    const entry = this.objects.get(key);
    return entry === undefined ? undefined : { key, size: entry.data.length, etag: entry.etag, lastModified: entry.lastModified };
  }

  async listObjects(prefix: string, options: { startAfter?: string; delimiter?: string; maxKeys?: number; continuationToken?: string } = {}): Promise<ObjectListing> {
    this.count('listObjects', prefix);
    const after = options.continuationToken ?? options.startAfter ?? '';
    const maxKeys = options.maxKeys ?? 1000;
    const objects: StoredObject[] = [];
    const prefixes = new Set<string>();
    let last = '';
    let isTruncated = false;
    for (const key of [...this.objects.keys()].sort()) {
      if (!key.startsWith(prefix) || key <= after) continue;
      const rolled = options.delimiter ? key.slice(prefix.length).indexOf(options.delimiter) : -1;
      // Like S3, a common prefix is one entry however many keys it rolls up, and a page never splits it.
      if (rolled >= 0 && prefixes.has(prefix + key.slice(prefix.length).slice(0, rolled + (options.delimiter as string).length))) {
        last = key;
        continue;
      }
      if (objects.length + prefixes.size >= maxKeys) {
        isTruncated = true;
        break;
      }
      const rest = key.slice(prefix.length);
      const cut = options.delimiter ? rest.indexOf(options.delimiter) : -1;
      if (cut >= 0) prefixes.add(prefix + rest.slice(0, cut + (options.delimiter as string).length));
      else objects.push({ key, size: (this.objects.get(key) as Entry).data.length, etag: (this.objects.get(key) as Entry).etag, lastModified: (this.objects.get(key) as Entry).lastModified });
      last = key;
    }
    return { objects, commonPrefixes: [...prefixes], isTruncated, nextContinuationToken: isTruncated ? last : undefined };
  }

  async deleteObjects(keys: readonly string[]): Promise<void> {
    this.count('deleteObjects', keys[0] ?? '');
    for (const key of keys) this.objects.delete(key);
  }
}
