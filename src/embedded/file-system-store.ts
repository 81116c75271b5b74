/**
 * The embedded upstream: an UploadStore on a local directory, for `npm start` with no external
 * service. It keeps the S3 semantics the gateway relies on — and is as strict as S3 where it
 * matters: a write becomes visible atomically (temp file + rename) only after exactly
 * Content-Length bytes arrived, so an aborted or short body leaves the previous version intact;
 * re-uploading a part replaces it; Complete enforces the minimum part size, ETags and order; an
 * unknown upload is NoSuchUpload. Data is streamed to and from disk, never held in memory.
 *
 * Layout: `<dir>/objects/<hex(key) in 240-character directory segments>.o` (+ `.e` holding the ETag),
 * `<dir>/uploads/<id>/<NNNNN>` parts. Keys are hex-encoded so any UTF-8 key maps to safe file names
 * (split because a file name holds at most 255 bytes; S3 keys reach 1024).
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, promises as fs } from 'node:fs';
import { join, sep } from 'node:path';
import { Readable, Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ObjectBody, ObjectListing, StoredObject, StoredPart, StreamedBody, UploadStore } from '../upload/ports';

export class UpstreamNotFoundError extends Error {
  override readonly name = 'UpstreamNotFoundError';
  constructor(readonly kind: 'NoSuchKey' | 'NoSuchUpload') {
    super(kind);
  }
}

/** An S3-style client error of the embedded store (EntityTooSmall, InvalidPart, …). */
export class EmbeddedStoreError extends Error {
  override readonly name = 'EmbeddedStoreError';
  constructor(readonly code: string, message: string) {
    super(message);
  }
}

const encodeKey = (key: string): string => Buffer.from(key, 'utf8').toString('hex');
const decodeKey = (name: string): string => Buffer.from(name, 'hex').toString('utf8');
const SEGMENT = 240;
function keySegments(key: string): string[] {
  const hex = encodeKey(key);
  const segments: string[] = [];
  for (let at = 0; at < hex.length; at += SEGMENT) segments.push(hex.slice(at, at + SEGMENT));
  return segments.length === 0 ? [''] : segments;
}

/** Counts and hashes bytes on their way to disk; fails on more or fewer than expected. */
class LengthGuard extends Transform {
  readonly md5 = createHash('md5');
  private seen = 0;
  constructor(private readonly expected: number) {
    super();
  }
  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.seen += chunk.length;
    if (this.seen > this.expected) {
      callback(new EmbeddedStoreError('IncompleteBody', 'more bytes than Content-Length'));
      return;
    }
    this.md5.update(chunk);
    callback(null, chunk);
  }
  override _flush(callback: TransformCallback): void {
    callback(this.seen === this.expected ? null : new EmbeddedStoreError('IncompleteBody', `body ended after ${this.seen} of ${this.expected} bytes`));
  }
}

export class FileSystemStore implements UploadStore {
  private readonly objects: string;
  private readonly uploads: string;
  private readonly temp: string;

  constructor(directory: string, private readonly minPartSize = 5 * 1024 * 1024) {
    this.objects = join(directory, 'objects');
    this.uploads = join(directory, 'uploads');
    this.temp = join(directory, 'tmp');
  }

  async init(): Promise<this> {
    await Promise.all([this.objects, this.uploads, this.temp].map((d) => fs.mkdir(d, { recursive: true, mode: 0o700 })));
    return this;
  }

  /** Streams the body to a temp file; renames it into place only when exactly contentLength bytes arrived. */
  private async receive(target: string, upload: StreamedBody | { body: Buffer }, targetDirectory?: string): Promise<{ etag: string; size: number }> {
    const temp = join(this.temp, randomBytes(12).toString('hex'));
    const isBuffer = Buffer.isBuffer(upload.body);
    const length = isBuffer ? (upload.body as Buffer).length : (upload as StreamedBody).contentLength;
    const guard = new LengthGuard(length);
    try {
      if (isBuffer) {
        guard.end(upload.body);
        await pipeline(guard, createWriteStream(temp, { mode: 0o600 }));
      } else {
        const streamed = upload as StreamedBody;
        await pipeline(streamed.body, guard, createWriteStream(temp, { mode: 0o600 }), { signal: streamed.signal });
      }
      // Only after the whole body arrived (the stream is consumed from the first await on, so an early
      // client error cannot go unhandled).
      if (targetDirectory !== undefined) await fs.mkdir(targetDirectory, { recursive: true, mode: 0o700 });
      await fs.rename(temp, target);
      return { etag: `"${guard.md5.digest('hex')}"`, size: length };
    } catch (error) {
      await fs.rm(temp, { force: true });
      throw error;
    }
  }

  private objectPath(key: string): string {
    return `${join(this.objects, ...keySegments(key))}.o`;
  }

  private etagPath(key: string): string {
    return `${join(this.objects, ...keySegments(key))}.e`;
  }

  async putObject(key: string, upload: StreamedBody | { body: Buffer }): Promise<{ etag: string }> {
    const { etag } = await this.receive(this.objectPath(key), upload, join(this.objects, ...keySegments(key).slice(0, -1)));
    await fs.writeFile(this.etagPath(key), etag);
    return { etag };
  }

  async headObject(key: string): Promise<StoredObject | undefined> {
    try {
      const stat = await fs.stat(this.objectPath(key));
      return { key, size: stat.size, etag: await fs.readFile(this.etagPath(key), 'utf8'), lastModified: stat.mtime };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
  }

  async getObject(key: string, range?: { start: number; endExclusive: number }): Promise<ObjectBody> {
    const path = this.objectPath(key);
    let handle: fs.FileHandle;
    try {
      handle = await fs.open(path, 'r');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw new UpstreamNotFoundError('NoSuchKey');
      throw error;
    }
    const stat = await handle.stat();
    const start = range?.start ?? 0;
    const end = Math.min(range?.endExclusive ?? stat.size, stat.size);
    if (start > end || (range !== undefined && start >= stat.size && stat.size > 0)) {
      await handle.close();
      throw new EmbeddedStoreError('InvalidRange', 'range not satisfiable');
    }
    // Reading from the opened handle keeps the bytes consistent even if the key is replaced meanwhile.
    let body: Readable;
    if (end > start) {
      body = createReadStream('', { fd: handle, start, end: end - 1, autoClose: true });
    } else {
      await handle.close();
      body = Readable.from([]);
    }
    return { body, size: end - start, totalSize: stat.size, lastModified: stat.mtime };
  }

  async listObjects(prefix: string, options: { startAfter?: string; delimiter?: string; maxKeys?: number; continuationToken?: string } = {}): Promise<ObjectListing> {
    const names = (await fs.readdir(this.objects, { recursive: true }))
      .filter((n) => n.endsWith('.o'))
      .map((n) => decodeKey(n.slice(0, -2).split(sep).join('')))
      .sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    const after = options.continuationToken ?? options.startAfter ?? '';
    const maxKeys = options.maxKeys ?? 1000;
    const objects: StoredObject[] = [];
    const prefixes: string[] = [];
    let last = '';
    let isTruncated = false;
    for (const key of names) {
      if (!key.startsWith(prefix) || Buffer.compare(Buffer.from(key), Buffer.from(after)) <= 0) continue;
      const rest = key.slice(prefix.length);
      const cut = options.delimiter ? rest.indexOf(options.delimiter) : -1;
      const commonPrefix = cut >= 0 ? prefix + rest.slice(0, cut + (options.delimiter as string).length) : undefined;
      if (commonPrefix !== undefined && prefixes[prefixes.length - 1] === commonPrefix) {
        last = key;
        continue;
      }
      if (objects.length + prefixes.length >= maxKeys) {
        isTruncated = true;
        break;
      }
      if (commonPrefix !== undefined) prefixes.push(commonPrefix);
      else {
        const head = await this.headObject(key);
        if (head !== undefined) objects.push(head);
      }
      last = key;
    }
    return { objects, commonPrefixes: prefixes, isTruncated, nextContinuationToken: isTruncated ? last : undefined };
  }

  async deleteObjects(keys: readonly string[]): Promise<void> {
    await Promise.all(keys.flatMap((key) => [fs.rm(this.objectPath(key), { force: true }), fs.rm(this.etagPath(key), { force: true })]));
  }

  private uploadPath(uploadId: string): string {
    if (!/^[0-9a-f]{32}$/.test(uploadId)) throw new UpstreamNotFoundError('NoSuchUpload');
    return join(this.uploads, uploadId);
  }

  private async uploadKey(uploadId: string): Promise<string> {
    try {
      return decodeKey(await fs.readFile(join(this.uploadPath(uploadId), 'key'), 'utf8'));
    } catch {
      throw new UpstreamNotFoundError('NoSuchUpload');
    }
  }

  async createMultipartUpload(key: string): Promise<{ uploadId: string }> {
    const uploadId = randomBytes(16).toString('hex');
    await fs.mkdir(this.uploadPath(uploadId), { mode: 0o700 });
    await fs.writeFile(join(this.uploadPath(uploadId), 'key'), encodeKey(key));
    return { uploadId };
  }

  async uploadPart(key: string, uploadId: string, partNumber: number, upload: StreamedBody): Promise<{ etag: string }> {
    if ((await this.uploadKey(uploadId)) !== key) throw new UpstreamNotFoundError('NoSuchUpload');
    const target = join(this.uploadPath(uploadId), String(partNumber).padStart(5, '0'));
    const { etag } = await this.receive(target, upload);
    await fs.writeFile(`${target}.etag`, etag);
    return { etag };
  }

  async listParts(key: string, uploadId: string): Promise<StoredPart[]> {
    if ((await this.uploadKey(uploadId)) !== key) throw new UpstreamNotFoundError('NoSuchUpload');
    const directory = this.uploadPath(uploadId);
    const names = (await fs.readdir(directory)).filter((n) => /^\d{5}$/.test(n)).sort();
    return Promise.all(
      names.map(async (name) => {
        const stat = await fs.stat(join(directory, name));
        return { partNumber: Number(name), size: stat.size, etag: await fs.readFile(join(directory, `${name}.etag`), 'utf8'), lastModified: stat.mtime };
      }),
    );
  }

  async completeMultipartUpload(key: string, uploadId: string, parts: ReadonlyArray<{ partNumber: number; etag: string }>): Promise<{ etag: string }> {
    const stored = new Map((await this.listParts(key, uploadId)).map((p) => [p.partNumber, p]));
    const md5s: Buffer[] = [];
    parts.forEach((part, index) => {
      if (index > 0 && part.partNumber <= (parts[index - 1] as { partNumber: number }).partNumber) throw new EmbeddedStoreError('InvalidPartOrder', 'parts not ascending');
      const found = stored.get(part.partNumber);
      if (found === undefined || found.etag.replace(/"/g, '') !== part.etag.replace(/"/g, '')) throw new EmbeddedStoreError('InvalidPart', `part ${part.partNumber} unknown or ETag mismatch`);
      if (index < parts.length - 1 && found.size < this.minPartSize) throw new EmbeddedStoreError('EntityTooSmall', `part ${part.partNumber} is below the minimum part size`);
      md5s.push(Buffer.from(found.etag.replace(/"/g, ''), 'hex'));
    });
    const temp = join(this.temp, randomBytes(12).toString('hex'));
    const directory = this.uploadPath(uploadId);
    try {
      const out = createWriteStream(temp, { mode: 0o600 });
      for (const part of parts) {
        await pipeline(createReadStream(join(directory, String(part.partNumber).padStart(5, '0'))), out, { end: false });
      }
      await new Promise<void>((resolve, reject) => out.end((error?: Error | null) => (error ? reject(error) : resolve())));
      await fs.mkdir(join(this.objects, ...keySegments(key).slice(0, -1)), { recursive: true, mode: 0o700 });
      await fs.rename(temp, this.objectPath(key));
    } catch (error) {
      await fs.rm(temp, { force: true });
      throw error;
    }
    const etag = `"${createHash('md5').update(Buffer.concat(md5s)).digest('hex')}-${parts.length}"`;
    await fs.writeFile(this.etagPath(key), etag);
    await fs.rm(directory, { recursive: true, force: true });
    return { etag };
  }

  async abortMultipartUpload(key: string, uploadId: string): Promise<void> {
    if ((await this.uploadKey(uploadId)) !== key) throw new UpstreamNotFoundError('NoSuchUpload');
    await fs.rm(this.uploadPath(uploadId), { recursive: true, force: true });
  }
}
