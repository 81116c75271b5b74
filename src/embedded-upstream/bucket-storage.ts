/**
 * Disk storage of the embedded upstream's one bucket, with S3's visibility rules:
 * - every object or part is streamed into a temp file and *renamed* into place only after its whole
 *   body arrived and its digests checked; a short or aborted body leaves nothing and the previous
 *   version intact;
 * - a key never becomes a file name (keys may hold any UTF-8 and be 1024 bytes): a file is named by
 *   the SHA-256 of its key, and the key, size, ETag and metadata sit in a trailer at the end of the
 *   file (`data ‖ JSON ‖ uint32 length ‖ "CEU1"`), so one rename publishes data and metadata at once;
 * - an in-memory index (rebuilt from the trailers at start) answers listings in UTF-8 key order.
 *
 * Layout under `<root>`: `objects/<h0h1>/<sha256(key)>.obj`, `uploads/<uploadId>/upload.json`,
 * `uploads/<uploadId>/<NNNNN>.part`, `tmp/` (emptied at start). One process owns the directory.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream, promises as fs } from 'node:fs';
import { join } from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { compareUtf8 } from '../upstream/s3-encoding';
import { s3Errors } from './s3-error';

export interface ObjectInfo {
  readonly key: string;
  readonly size: number;
  /** Quoted, as S3 sends it. */
  readonly etag: string;
  readonly lastModified: Date;
  readonly metadata: Readonly<Record<string, string>>;
}

export interface PartInfo {
  readonly partNumber: number;
  readonly size: number;
  readonly etag: string;
  readonly lastModified: Date;
}

interface Trailer {
  v: 1;
  key?: string;
  partNumber?: number;
  size: number;
  etag: string;
  lastModified: string;
  metadata?: Record<string, string>;
}

interface Upload {
  readonly uploadId: string;
  readonly key: string;
  readonly metadata: Record<string, string>;
  readonly initiated: Date;
  readonly parts: Map<number, PartInfo>;
}

/** A body received into a temp file, digests checked, not yet visible. */
export interface ReceivedBody {
  readonly tempPath: string;
  readonly size: number;
  readonly md5: Buffer;
}

export interface ReceiveChecks {
  readonly contentLength: number;
  /** Base64 Content-MD5 from the request, already validated as 16 bytes. */
  readonly contentMd5?: Buffer;
  /** Hex SHA-256 the client signed. */
  readonly sha256Hex?: string;
  /** Called with the running byte count (tests observe streaming with it). */
  readonly onProgress?: (bytes: number) => void;
}

export interface ListResult {
  readonly objects: ObjectInfo[];
  readonly commonPrefixes: string[];
  readonly isTruncated: boolean;
  /** Where the next page starts (a key or a common prefix), when truncated. */
  readonly next?: { readonly after: string; readonly isPrefix: boolean };
}

const MAGIC = Buffer.from('CEU1');
const UPLOAD_ID = /^[0-9a-f]{32}$/;

/** Serialises async sections per name (object key or upload id). */
class Locks {
  private readonly tails = new Map<string, Promise<void>>();

  async run<T>(name: string, section: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(name) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((resolve) => (release = resolve));
    const tail = previous.then(() => mine);
    this.tails.set(name, tail);
    await previous;
    try {
      return await section();
    } finally {
      release();
      if (this.tails.get(name) === tail) this.tails.delete(name);
    }
  }
}

export class BucketStorage {
  private readonly objects = new Map<string, ObjectInfo>();
  private readonly sortedKeys: string[] = [];
  private readonly uploads = new Map<string, Upload>();
  private readonly keyLocks = new Locks();
  private readonly uploadLocks = new Locks();
  private readonly objectsDir: string;
  private readonly uploadsDir: string;
  private readonly tmpDir: string;

  private constructor(readonly root: string) {
    this.objectsDir = join(root, 'objects');
    this.uploadsDir = join(root, 'uploads');
    this.tmpDir = join(root, 'tmp');
  }

  static async open(root: string): Promise<BucketStorage> {
    const storage = new BucketStorage(root);
    await storage.load();
    return storage;
  }

  private async load(): Promise<void> {
    await fs.rm(this.tmpDir, { recursive: true, force: true });
    for (const dir of [this.objectsDir, this.uploadsDir, this.tmpDir]) await fs.mkdir(dir, { recursive: true });
    for (const fan of await fs.readdir(this.objectsDir)) {
      for (const name of await fs.readdir(join(this.objectsDir, fan)).catch(() => [] as string[])) {
        if (!name.endsWith('.obj')) continue;
        const trailer = await readTrailerOfPath(join(this.objectsDir, fan, name)).catch(() => undefined);
        if (trailer?.key !== undefined) this.index(infoFromTrailer(trailer.key, trailer));
      }
    }
    for (const uploadId of await fs.readdir(this.uploadsDir)) {
      if (!UPLOAD_ID.test(uploadId)) continue;
      const dir = join(this.uploadsDir, uploadId);
      const record = await fs
        .readFile(join(dir, 'upload.json'), 'utf8')
        .then((text) => JSON.parse(text) as { key: string; metadata: Record<string, string>; initiated: string })
        .catch(() => undefined);
      if (record === undefined) continue;
      const upload: Upload = { uploadId, key: record.key, metadata: record.metadata, initiated: new Date(record.initiated), parts: new Map() };
      for (const name of await fs.readdir(dir)) {
        if (!/^\d{5}\.part$/.test(name)) continue;
        const trailer = await readTrailerOfPath(join(dir, name)).catch(() => undefined);
        if (trailer?.partNumber !== undefined) upload.parts.set(trailer.partNumber, { partNumber: trailer.partNumber, size: trailer.size, etag: trailer.etag, lastModified: new Date(trailer.lastModified) });
      }
      this.uploads.set(uploadId, upload);
    }
  }

  // ---------------------------------------------------------------- receiving bodies

  /**
   * Streams `source` into a temp file, counting and hashing. Throws (and removes the temp file) when
   * the body is shorter or longer than declared, the connection dies, or a digest does not match.
   */
  async receive(source: Readable, checks: ReceiveChecks): Promise<ReceivedBody> {
    const tempPath = join(this.tmpDir, randomBytes(16).toString('hex'));
    const md5 = createHash('md5');
    const sha256 = checks.sha256Hex === undefined ? undefined : createHash('sha256');
    let size = 0;
    const meter = new Transform({
      transform(chunk: Buffer, _encoding, callback) {
        size += chunk.length;
        if (size > checks.contentLength) {
          callback(s3Errors.incompleteBody());
          return;
        }
        md5.update(chunk);
        sha256?.update(chunk);
        checks.onProgress?.(size);
        callback(null, chunk);
      },
    });
    try {
      await pipeline(source, meter, createWriteStream(tempPath, { flags: 'wx' }));
      if (size !== checks.contentLength) throw s3Errors.incompleteBody();
      const digest = md5.digest();
      if (checks.contentMd5 !== undefined && !digest.equals(checks.contentMd5)) throw s3Errors.badDigest();
      if (sha256 !== undefined && sha256.digest('hex') !== checks.sha256Hex) throw s3Errors.sha256Mismatch();
      return { tempPath, size, md5: digest };
    } catch (error) {
      await fs.rm(tempPath, { force: true });
      throw error;
    }
  }

  /** Drops a received body that will not be committed. */
  async discard(received: ReceivedBody): Promise<void> {
    await fs.rm(received.tempPath, { force: true });
  }

  // ---------------------------------------------------------------- objects

  head(key: string): ObjectInfo | undefined {
    return this.objects.get(key);
  }

  /**
   * Publishes a received body as `key`. With `createOnly` (S3 `If-None-Match: *`) the existence check and
   * the rename happen under the key's lock, so of two concurrent creates exactly one wins; the loser's
   * body is discarded and it gets `undefined`.
   */
  async putObject(key: string, received: ReceivedBody, metadata: Record<string, string>, options: { createOnly?: boolean } = {}): Promise<ObjectInfo | undefined> {
    const info: ObjectInfo = { key, size: received.size, etag: `"${received.md5.toString('hex')}"`, lastModified: new Date(), metadata };
    await appendTrailer(received.tempPath, { v: 1, key, size: info.size, etag: info.etag, lastModified: info.lastModified.toISOString(), metadata });
    const published = await this.publish(info, received.tempPath, options.createOnly === true);
    if (!published) await fs.rm(received.tempPath, { force: true });
    return published ? info : undefined;
  }

  /** Opens the current version; the trailer is read from the open file, so a concurrent replace cannot tear it. */
  async openObject(key: string): Promise<{ handle: fs.FileHandle; info: ObjectInfo } | undefined> {
    if (!this.objects.has(key)) return undefined;
    let handle: fs.FileHandle;
    try {
      handle = await fs.open(this.objectPath(key), 'r');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
    try {
      const trailer = await readTrailer(handle);
      if (trailer.key !== key) throw new Error('object file does not belong to its key');
      return { handle, info: infoFromTrailer(key, trailer) };
    } catch (error) {
      await handle.close();
      throw error;
    }
  }

  async deleteObject(key: string): Promise<void> {
    await this.keyLocks.run(key, async () => {
      await fs.rm(this.objectPath(key), { force: true });
      this.unindex(key);
    });
  }

  /** ListObjectsV2 over the index: keys > `after` under `prefix`, rolled up at `delimiter`. */
  list(options: { prefix: string; delimiter?: string; after?: string; afterIsPrefix?: boolean; maxKeys: number }): ListResult {
    const { prefix, delimiter, maxKeys } = options;
    const objects: ObjectInfo[] = [];
    const commonPrefixes: string[] = [];
    let lastPrefix = options.afterIsPrefix === true ? options.after : undefined;
    let position = this.firstIndexAfter(options.after !== undefined && compareUtf8(options.after, prefix) >= 0 ? options.after : undefined, prefix);
    let last: { after: string; isPrefix: boolean } | undefined;
    for (; position < this.sortedKeys.length; position++) {
      const key = this.sortedKeys[position] as string;
      if (!key.startsWith(prefix)) {
        if (compareUtf8(key, prefix) > 0) break;
        continue;
      }
      let rolled: string | undefined;
      if (delimiter !== undefined && delimiter !== '') {
        const at = key.indexOf(delimiter, prefix.length);
        if (at >= 0) rolled = key.slice(0, at + delimiter.length);
      }
      if (rolled !== undefined && rolled === lastPrefix) continue;
      if (objects.length + commonPrefixes.length >= maxKeys) return { objects, commonPrefixes, isTruncated: true, ...(last === undefined ? {} : { next: last }) };
      if (rolled !== undefined) {
        commonPrefixes.push(rolled);
        lastPrefix = rolled;
        last = { after: rolled, isPrefix: true };
      } else {
        objects.push(this.objects.get(key) as ObjectInfo);
        last = { after: key, isPrefix: false };
      }
    }
    return { objects, commonPrefixes, isTruncated: false };
  }

  // ---------------------------------------------------------------- multipart

  async createUpload(key: string, metadata: Record<string, string>): Promise<string> {
    const uploadId = randomBytes(16).toString('hex');
    const dir = join(this.uploadsDir, uploadId);
    await fs.mkdir(dir);
    const initiated = new Date();
    const temp = join(this.tmpDir, `${uploadId}.json`);
    await fs.writeFile(temp, JSON.stringify({ key, metadata, initiated: initiated.toISOString() }));
    await fs.rename(temp, join(dir, 'upload.json'));
    this.uploads.set(uploadId, { uploadId, key, metadata, initiated, parts: new Map() });
    return uploadId;
  }

  /** The upload, when it exists for this key (S3 answers NoSuchUpload for another key's upload id). */
  private upload(uploadId: string, key: string): Upload {
    const upload = UPLOAD_ID.test(uploadId) ? this.uploads.get(uploadId) : undefined;
    if (upload === undefined || upload.key !== key) throw s3Errors.noSuchUpload();
    return upload;
  }

  assertUpload(uploadId: string, key: string): void {
    this.upload(uploadId, key);
  }

  /** Publishes a received part; a re-upload of the same number replaces the previous one atomically. */
  async putPart(uploadId: string, key: string, partNumber: number, received: ReceivedBody): Promise<PartInfo> {
    return this.uploadLocks.run(uploadId, async () => {
      let upload: Upload;
      try {
        upload = this.upload(uploadId, key);
      } catch (error) {
        await this.discard(received);
        throw error;
      }
      const info: PartInfo = { partNumber, size: received.size, etag: `"${received.md5.toString('hex')}"`, lastModified: new Date() };
      await appendTrailer(received.tempPath, { v: 1, partNumber, size: info.size, etag: info.etag, lastModified: info.lastModified.toISOString() });
      await fs.rename(received.tempPath, this.partPath(uploadId, partNumber));
      upload.parts.set(partNumber, info);
      return info;
    });
  }

  listParts(uploadId: string, key: string): PartInfo[] {
    return [...this.upload(uploadId, key).parts.values()].sort((a, b) => a.partNumber - b.partNumber);
  }

  /**
   * Validates the part list (S3 rules) and concatenates the part files into the object by streaming.
   * ETag: MD5 of the concatenated binary part MD5s, then `-N`.
   */
  async completeUpload(uploadId: string, key: string, requested: ReadonlyArray<{ partNumber: number; etag: string }>, minPartSize: number): Promise<ObjectInfo> {
    return this.uploadLocks.run(uploadId, async () => {
      const upload = this.upload(uploadId, key);
      if (requested.length === 0) throw s3Errors.malformedXML();
      const chosen: PartInfo[] = [];
      for (let i = 0; i < requested.length; i++) {
        const want = requested[i] as { partNumber: number; etag: string };
        if (i > 0 && want.partNumber <= (requested[i - 1] as { partNumber: number }).partNumber) throw s3Errors.invalidPartOrder();
        const part = upload.parts.get(want.partNumber);
        if (part === undefined || normaliseEtag(part.etag) !== normaliseEtag(want.etag)) throw s3Errors.invalidPart();
        chosen.push(part);
      }
      for (let i = 0; i < chosen.length - 1; i++) if ((chosen[i] as PartInfo).size < minPartSize) throw s3Errors.entityTooSmall();

      const tempPath = join(this.tmpDir, randomBytes(16).toString('hex'));
      const etagHash = createHash('md5');
      let size = 0;
      try {
        const out = createWriteStream(tempPath, { flags: 'wx' });
        const outDone = new Promise<void>((resolve, reject) => {
          out.on('finish', resolve);
          out.on('error', reject);
        });
        outDone.catch(() => undefined); // awaited below; a write error must not be an unhandled rejection meanwhile
        for (const part of chosen) {
          etagHash.update(Buffer.from(normaliseEtag(part.etag), 'hex'));
          if (part.size === 0) continue;
          const handle = await fs.open(this.partPath(uploadId, part.partNumber), 'r');
          await pipeline(handle.createReadStream({ start: 0, end: part.size - 1 }), out, { end: false });
          size += part.size;
        }
        const lastModified = new Date();
        const info: ObjectInfo = { key, size, etag: `"${etagHash.digest('hex')}-${chosen.length}"`, lastModified, metadata: upload.metadata };
        out.end(encodeTrailer({ v: 1, key, size, etag: info.etag, lastModified: lastModified.toISOString(), metadata: upload.metadata }));
        await outDone;
        await this.publish(info, tempPath);
        this.uploads.delete(uploadId);
        await fs.rm(join(this.uploadsDir, uploadId), { recursive: true, force: true });
        return info;
      } catch (error) {
        await fs.rm(tempPath, { force: true });
        throw error;
      }
    });
  }

  async abortUpload(uploadId: string, key: string): Promise<void> {
    await this.uploadLocks.run(uploadId, async () => {
      this.upload(uploadId, key);
      this.uploads.delete(uploadId);
      await fs.rm(join(this.uploadsDir, uploadId), { recursive: true, force: true });
    });
  }

  // ---------------------------------------------------------------- internals

  private objectPath(key: string): string {
    const hash = createHash('sha256').update(key, 'utf8').digest('hex');
    return join(this.objectsDir, hash.slice(0, 2), `${hash}.obj`);
  }

  private partPath(uploadId: string, partNumber: number): string {
    return join(this.uploadsDir, uploadId, `${String(partNumber).padStart(5, '0')}.part`);
  }

  private async publish(info: ObjectInfo, tempPath: string, createOnly = false): Promise<boolean> {
    const target = this.objectPath(info.key);
    return this.keyLocks.run(info.key, async () => {
      if (createOnly && this.objects.has(info.key)) return false;
      await fs.mkdir(join(target, '..'), { recursive: true });
      await fs.rename(tempPath, target);
      this.index(info);
      return true;
    });
  }

  private index(info: ObjectInfo): void {
    if (!this.objects.has(info.key)) {
      const at = this.firstIndexAtOrAfter(info.key);
      this.sortedKeys.splice(at, 0, info.key);
    }
    this.objects.set(info.key, info);
  }

  private unindex(key: string): void {
    if (!this.objects.delete(key)) return;
    const at = this.firstIndexAtOrAfter(key);
    if (this.sortedKeys[at] === key) this.sortedKeys.splice(at, 1);
  }

  private firstIndexAtOrAfter(key: string): number {
    let low = 0;
    let high = this.sortedKeys.length;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if (compareUtf8(this.sortedKeys[mid] as string, key) < 0) low = mid + 1;
      else high = mid;
    }
    return low;
  }

  /** First position holding a key > `after` (when given) and >= `prefix`. */
  private firstIndexAfter(after: string | undefined, prefix: string): number {
    if (after === undefined) return this.firstIndexAtOrAfter(prefix);
    let at = this.firstIndexAtOrAfter(after);
    if (this.sortedKeys[at] === after) at++;
    return at;
  }
}

export function normaliseEtag(etag: string): string {
  return etag.trim().replace(/^"|"$/g, '').toLowerCase();
}

function infoFromTrailer(key: string, trailer: Trailer): ObjectInfo {
  return { key, size: trailer.size, etag: trailer.etag, lastModified: new Date(trailer.lastModified), metadata: trailer.metadata ?? {} };
}

function encodeTrailer(trailer: Trailer): Buffer {
  const json = Buffer.from(JSON.stringify(trailer), 'utf8');
  const length = Buffer.alloc(4);
  length.writeUInt32BE(json.length);
  return Buffer.concat([json, length, MAGIC]);
}

async function appendTrailer(path: string, trailer: Trailer): Promise<void> {
  await fs.appendFile(path, encodeTrailer(trailer));
}

async function readTrailerOfPath(path: string): Promise<Trailer> {
  const handle = await fs.open(path, 'r');
  try {
    return await readTrailer(handle);
  } finally {
    await handle.close();
  }
}

async function readTrailer(handle: fs.FileHandle): Promise<Trailer> {
  const { size: fileSize } = await handle.stat();
  if (fileSize < 8) throw new Error('file too short for a trailer');
  const tail = Buffer.alloc(8);
  await handle.read(tail, 0, 8, fileSize - 8);
  if (!tail.subarray(4).equals(MAGIC)) throw new Error('no trailer');
  const length = tail.readUInt32BE(0);
  if (length > fileSize - 8) throw new Error('bad trailer length');
  const json = Buffer.alloc(length);
  await handle.read(json, 0, length, fileSize - 8 - length);
  const trailer = JSON.parse(json.toString('utf8')) as Trailer;
  if (trailer.size !== fileSize - 8 - length) throw new Error('trailer size does not match the file');
  return trailer;
}
