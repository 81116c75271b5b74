/**
 * The CDCS multipart upload and read operations over an upstream bucket (docs/FORMAT.md §8).
 * Stateless: every answer is computed from the upload record, part records, upstream parts and
 * manifests in the bucket; the only per-process state is a cache of immutable upload records.
 *
 * Each operation resolves everything that can fail without the body (upload record, data key,
 * size limits) in a `prepare…` step, so the HTTP layer can answer `Expect: 100-continue` with the
 * error before the client sends gigabytes.
 */
import { createHash, randomBytes as cryptoRandomBytes } from 'node:crypto';
import { PassThrough, Readable, Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { PartEncryptor } from '../crypto/part-encryptor';
import { readObjectRange } from '../crypto/object-reader';
import { GatewayError } from '../errors/gateway-error';
import { objectEtag, openManifest, parseSealedManifest, sealManifest, type KeyEnvelope, type ManifestPart, type ObjectManifest } from '../format/manifest';
import { IntegrityError } from '../format/integrity-error';
import { MAX_PART_PLAINTEXT, partCiphertextLength } from '../format/part-format';
import { planAssembly } from './assembly-plan';
import { encryptionContext, type CofferContext } from './coffer-context';
import { currentParts, decodePartRecordName, encodePartRecordName, normaliseEtag, type PartRecord } from './part-record';
import { isNotFound } from './ports';
import { decodeUploadRecord, encodeUploadRecord, type UploadRecord } from './upload-record';

/** CDCS minimum size of every part but the last (the COS SDK's 1 MiB slice). */
export const CDCS_MIN_PART_SIZE = 1024 * 1024;

export interface ServiceDependencies {
  readonly now: () => number;
  readonly randomBytes: (size: number) => Buffer;
}

export interface PartSummary {
  readonly partNumber: number;
  readonly etag: string;
  readonly size: number;
  readonly lastModified: Date;
}

export interface PreparedPart {
  readonly context: CofferContext;
  readonly record: UploadRecord;
  readonly partNumber: number;
  readonly plaintextLength: number;
  readonly storage: 'direct' | 'staged';
  readonly contentMd5?: Buffer;
  readonly dataKey: Buffer;
}

export interface ObjectHead {
  readonly manifest: ObjectManifest;
  readonly etag: string;
  readonly lastModified: Date;
  readonly dataKey: Buffer;
  readonly dataObjectKey: string;
}

/** Computes the plaintext MD5 in the same pass and checks Content-MD5 before the last bytes move on. */
class DigestTap extends Transform {
  private readonly hash = createHash('md5');
  digest: Buffer | undefined;
  constructor(private readonly expected: Buffer | undefined) {
    super();
  }
  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.hash.update(chunk);
    callback(null, chunk);
  }
  override _flush(callback: TransformCallback): void {
    this.digest = this.hash.digest();
    // Failing here keeps the encryptor from emitting its final tag, so the upstream never gets a complete body.
    if (this.expected !== undefined && !this.expected.equals(this.digest)) callback(new GatewayError('BadDigest'));
    else callback();
  }
}

export class MultipartService {
  private readonly records = new Map<string, UploadRecord>();

  constructor(private readonly deps: ServiceDependencies = { now: Date.now, randomBytes: cryptoRandomBytes }) {}

  // ── Initiate ────────────────────────────────────────────────────────────────────────────────
  async initiate(context: CofferContext, key: string, options: { contentType?: string; metadata?: Record<string, string> } = {}): Promise<UploadRecord> {
    await this.assertWritable(context, key);
    const dataKey = await context.keys.generateDataKey(encryptionContext(context.coffer, key));
    try {
      const uploadId = this.deps.randomBytes(16).toString('hex');
      const { uploadId: upstreamUploadId } = await context.store.createMultipartUpload(context.layout.data(key, uploadId));
      const record: UploadRecord = {
        uploadId,
        coffer: context.coffer,
        key,
        upstreamUploadId,
        envelope: { provider: context.keys.name, keyId: dataKey.keyId, wrappedKey: dataKey.wrapped, context: encryptionContext(context.coffer, key) },
        contentType: options.contentType,
        metadata: options.metadata ?? {},
        initiated: new Date(this.deps.now()).toISOString(),
      };
      await context.store.putObject(context.layout.uploadRecord(key, uploadId), { body: encodeUploadRecord(record) });
      this.records.set(uploadId, record);
      return record;
    } finally {
      dataKey.plaintext.fill(0);
    }
  }

  /** Coffers are write-once: an existing object or an open upload of the same key → 409. */
  private async assertWritable(context: CofferContext, key: string): Promise<void> {
    const [existing, open] = await Promise.all([
      context.store.headObject(context.layout.manifest(key)),
      context.store.listObjects(context.layout.uploadRecordsOf(key), { delimiter: '/', maxKeys: 1 }),
    ]);
    if (existing !== undefined) throw new GatewayError('ObjectAlreadyExists', 'An object with this key exists; coffers are write-once.');
    if (open.objects.length > 0) throw new GatewayError('ObjectAlreadyExists', 'An upload of this key is in progress; coffers are write-once.');
  }

  async loadRecord(context: CofferContext, key: string, uploadId: string): Promise<UploadRecord> {
    const cached = this.records.get(uploadId);
    if (cached !== undefined && cached.key === key && cached.coffer === context.coffer) return cached;
    let bytes: Buffer;
    try {
      bytes = await readAll((await context.store.getObject(context.layout.uploadRecord(key, uploadId))).body);
    } catch (error) {
      if (isNotFound(error)) throw new GatewayError('NoSuchUpload');
      throw error;
    }
    const record = decodeUploadRecord(bytes);
    if (record.uploadId !== uploadId || record.key !== key || record.coffer !== context.coffer) throw new GatewayError('NoSuchUpload');
    this.records.set(uploadId, record);
    return record;
  }

  // ── UploadPart ──────────────────────────────────────────────────────────────────────────────
  /** Everything UploadPart decides before reading the body. */
  async prepareUploadPart(context: CofferContext, key: string, uploadId: string, partNumber: number, plaintextLength: number, contentMd5?: Buffer): Promise<PreparedPart> {
    if (plaintextLength > MAX_PART_PLAINTEXT) throw new GatewayError('EntityTooLarge', `A part may hold at most ${MAX_PART_PLAINTEXT} bytes.`);
    const stored = partCiphertextLength(plaintextLength);
    if (stored > context.maxPartSize) {
      throw new GatewayError('EntityTooLarge', `After encryption this part would exceed the upstream's ${context.maxPartSize}-byte part limit.`);
    }
    const record = await this.loadRecord(context, key, uploadId);
    const dataKey = await context.keys.decryptDataKey(record.envelope.wrappedKey, encryptionContext(context.coffer, key), record.envelope.keyId);
    // Below the CDCS minimum a part can only be the last one, which S3 accepts small: stream it directly.
    const storage = plaintextLength < CDCS_MIN_PART_SIZE || stored >= context.minPartSize ? 'direct' : 'staged';
    return { context, record, partNumber, plaintextLength, storage, contentMd5, dataKey };
  }

  /** Encrypts and stores the body; resolves to the part's ETag (quoted plaintext MD5) once its record is durable. */
  async uploadPart(prepared: PreparedPart, body: Readable, signal?: AbortSignal): Promise<string> {
    const { context, record, partNumber, plaintextLength } = prepared;
    const salt = this.deps.randomBytes(32);
    const tap = new DigestTap(prepared.contentMd5);
    const encryptor = new PartEncryptor({ dataKey: prepared.dataKey, objectId: Buffer.from(record.uploadId, 'hex'), partNumber, plaintextLength, salt });
    const ciphertext = new PassThrough();
    // Errors travel through the promises below; this keeps an error that fires before the store attaches its own listener from going unhandled.
    ciphertext.on('error', () => undefined);
    const encrypting = pipeline(body, tap, encryptor, ciphertext);
    const upload = { body: ciphertext, contentLength: encryptor.ciphertextLength, signal };
    try {
      const storing =
        prepared.storage === 'direct'
          ? context.store.uploadPart(context.layout.data(record.key, record.uploadId), record.upstreamUploadId, partNumber, upload)
          : context.store.putObject(context.layout.stagedPart(record.uploadId, partNumber, salt.toString('base64url')), upload);
      // A plaintext-side failure (bad digest, short body, client gone) must destroy the upstream request,
      // and an upstream failure must stop reading the body; the client-side cause is reported first.
      const [stored, encrypted] = await Promise.allSettled([
        storing.catch((error: unknown) => {
          ciphertext.destroy(error as Error);
          throw error;
        }),
        encrypting.catch((error: unknown) => {
          ciphertext.destroy(error as Error);
          throw error;
        }),
      ]);
      if (encrypted.status === 'rejected' && (encrypted.reason instanceof GatewayError || stored.status === 'fulfilled')) throw encrypted.reason;
      if (stored.status === 'rejected') throw stored.reason;
      if (encrypted.status === 'rejected') throw encrypted.reason;
      const md5 = tap.digest as Buffer;
      const partRecord: PartRecord = {
        partNumber,
        salt,
        storage: prepared.storage,
        plaintextLength,
        md5,
        upstreamEtag: prepared.storage === 'direct' ? normaliseEtag(stored.value.etag) : undefined,
        completedAt: this.deps.now(),
      };
      await context.store.putObject(`${context.layout.partRecordPrefix(record.uploadId)}${encodePartRecordName(partRecord)}`, { body: Buffer.alloc(0) });
      return `"${md5.toString('hex')}"`;
    } finally {
      prepared.dataKey.fill(0);
    }
  }

  // ── ListParts ───────────────────────────────────────────────────────────────────────────────
  async listParts(context: CofferContext, key: string, uploadId: string, options: { maxParts?: number; partNumberMarker?: number } = {}): Promise<{ record: UploadRecord; parts: PartSummary[]; isTruncated: boolean; nextPartNumberMarker?: number }> {
    const record = await this.loadRecord(context, key, uploadId);
    const current = await this.currentParts(context, record);
    const maxParts = Math.min(Math.max(options.maxParts ?? 1000, 0), 1000);
    const all = [...current.values()].filter((p) => p.partNumber > (options.partNumberMarker ?? 0)).sort((a, b) => a.partNumber - b.partNumber);
    const page = all.slice(0, maxParts);
    const summaries = page.map((p) => ({ partNumber: p.partNumber, etag: `"${p.md5.toString('hex')}"`, size: p.plaintextLength, lastModified: new Date(p.completedAt) }));
    const isTruncated = all.length > page.length;
    return { record, parts: summaries, isTruncated, nextPartNumberMarker: page.length > 0 ? (page[page.length - 1] as PartRecord).partNumber : undefined };
  }

  private async currentParts(context: CofferContext, record: UploadRecord): Promise<Map<number, PartRecord>> {
    const prefix = context.layout.partRecordPrefix(record.uploadId);
    const [records, upstreamParts] = await Promise.all([this.listAll(context, prefix), context.store.listParts(context.layout.data(record.key, record.uploadId), record.upstreamUploadId).catch((error: unknown) => {
      if (isNotFound(error)) return [];
      throw error;
    })]);
    const decoded = records.map((o) => decodePartRecordName(o.key.slice(prefix.length))).filter((r): r is PartRecord => r !== undefined);
    return currentParts(decoded, new Map(upstreamParts.map((p) => [p.partNumber, p.etag])));
  }

  private async listAll(context: CofferContext, prefix: string): Promise<Array<{ key: string; size: number; lastModified: Date }>> {
    const out: Array<{ key: string; size: number; lastModified: Date }> = [];
    let token: string | undefined;
    do {
      const page = await context.store.listObjects(prefix, { continuationToken: token, maxKeys: 1000 });
      out.push(...page.objects);
      token = page.isTruncated ? page.nextContinuationToken : undefined;
    } while (token !== undefined);
    return out;
  }

  // ── Complete ────────────────────────────────────────────────────────────────────────────────
  async complete(context: CofferContext, key: string, uploadId: string, requested: ReadonlyArray<{ partNumber: number; etag: string }>): Promise<{ etag: string; manifest: ObjectManifest; copiedBytes: number; fillerBytes: number }> {
    const record = await this.loadRecord(context, key, uploadId);
    if (requested.length === 0) throw new GatewayError('MalformedXML', 'CompleteMultipartUpload needs at least one part.');
    for (let i = 1; i < requested.length; i += 1) {
      if ((requested[i] as { partNumber: number }).partNumber <= (requested[i - 1] as { partNumber: number }).partNumber) throw new GatewayError('InvalidPartOrder');
    }
    const current = await this.currentParts(context, record);
    const chosen = requested.map((request, index) => {
      const part = current.get(request.partNumber);
      if (part === undefined || normaliseEtag(request.etag).toLowerCase() !== part.md5.toString('hex')) {
        throw new GatewayError('InvalidPart', `Part ${request.partNumber} was not uploaded or its ETag does not match.`);
      }
      if (index < requested.length - 1 && part.plaintextLength < CDCS_MIN_PART_SIZE) {
        throw new GatewayError('EntityTooSmall', `Part ${request.partNumber} is smaller than ${CDCS_MIN_PART_SIZE} bytes and is not the last part.`);
      }
      return part;
    });
    if (await context.store.headObject(context.layout.manifest(key))) throw new GatewayError('ObjectAlreadyExists');

    const plan = planAssembly(chosen, context.minPartSize);
    const dataObjectKey = context.layout.data(key, uploadId);
    const upstreamEtags = new Map((await context.store.listParts(dataObjectKey, record.upstreamUploadId).catch(() => [])).map((p) => [p.partNumber, p.etag]));
    const byNumber = new Map(chosen.map((p) => [p.partNumber, p]));
    const completedParts: Array<{ partNumber: number; etag: string }> = [];
    for (const upstreamPart of plan.upstreamParts) {
      if (upstreamPart.kind === 'direct') {
        completedParts.push({ partNumber: upstreamPart.upstreamPartNumber, etag: upstreamEtags.get(upstreamPart.upstreamPartNumber) ?? (byNumber.get(upstreamPart.partNumber)?.upstreamEtag as string) });
      } else {
        const sources = upstreamPart.partNumbers.map((n) => context.layout.stagedPart(uploadId, n, (byNumber.get(n) as PartRecord).salt.toString('base64url')));
        const body = Readable.from(concatenate(context, sources, upstreamPart.filler));
        const { etag } = await context.store.uploadPart(dataObjectKey, record.upstreamUploadId, upstreamPart.upstreamPartNumber, { body, contentLength: upstreamPart.size });
        completedParts.push({ partNumber: upstreamPart.upstreamPartNumber, etag });
      }
    }
    try {
      await context.store.completeMultipartUpload(dataObjectKey, record.upstreamUploadId, completedParts);
    } catch (error) {
      // A retried Complete after the upstream completed but before the manifest was written.
      const existing = isNotFound(error) ? await context.store.headObject(dataObjectKey) : undefined;
      if (existing === undefined || existing.size !== plan.ciphertextSize) throw error;
    }

    const manifest: ObjectManifest = {
      objectId: Buffer.from(uploadId, 'hex'),
      kind: 'multipart',
      plaintextSize: chosen.reduce((sum, p) => sum + p.plaintextLength, 0),
      ciphertextSize: plan.ciphertextSize,
      attributes: { contentType: record.contentType, metadata: record.metadata, created: new Date(this.deps.now()).toISOString() },
      parts: chosen.map((p): ManifestPart => ({ partNumber: p.partNumber, plaintextLength: p.plaintextLength, offset: plan.offsets.get(p.partNumber) as number, salt: p.salt, md5: p.md5 })),
    };
    const dataKey = await context.keys.decryptDataKey(record.envelope.wrappedKey, encryptionContext(context.coffer, key), record.envelope.keyId);
    try {
      await context.store.putObject(context.layout.manifest(key), { body: sealManifest(manifest, record.envelope, dataKey) });
    } finally {
      dataKey.fill(0);
    }
    await this.cleanUp(context, record);
    return { etag: objectEtag(manifest), manifest, copiedBytes: plan.copiedBytes, fillerBytes: plan.fillerBytes };
  }

  // ── Abort ───────────────────────────────────────────────────────────────────────────────────
  async abort(context: CofferContext, key: string, uploadId: string): Promise<void> {
    const record = await this.loadRecord(context, key, uploadId);
    await context.store.abortMultipartUpload(context.layout.data(key, uploadId), record.upstreamUploadId).catch((error: unknown) => {
      if (!isNotFound(error)) throw error;
    });
    await this.cleanUp(context, record);
  }

  /** Removes an upload's bookkeeping; the upload record goes last so a crash leaves a retryable upload. */
  private async cleanUp(context: CofferContext, record: UploadRecord): Promise<void> {
    const keys = [
      ...(await this.listAll(context, context.layout.partRecordPrefix(record.uploadId))).map((o) => o.key),
      ...(await this.listAll(context, context.layout.stagedPrefix(record.uploadId))).map((o) => o.key),
    ];
    if (keys.length > 0) await context.store.deleteObjects(keys);
    await context.store.deleteObjects([context.layout.uploadRecord(record.key, record.uploadId)]);
    this.records.delete(record.uploadId);
  }

  // ── ListMultipartUploads ────────────────────────────────────────────────────────────────────
  /**
   * Open uploads in (key, upload id) order. Upload records are named `u/<key>/<uploadId>`, whose
   * upstream order differs from key order when one key is a prefix of another (`a/<id>` vs `a/b/…`),
   * so all records under the prefix are read and sorted here. Open uploads are few (each is one
   * in-flight transfer), which keeps this cheap; the cost grows with open uploads, not objects.
   */
  async listUploads(context: CofferContext, options: { prefix?: string; keyMarker?: string; uploadIdMarker?: string; maxUploads?: number } = {}): Promise<{ uploads: Array<{ key: string; uploadId: string; initiated: Date }>; isTruncated: boolean; nextKeyMarker?: string; nextUploadIdMarker?: string }> {
    const maxUploads = Math.min(Math.max(options.maxUploads ?? 1000, 0), 1000);
    const all = (await this.listAll(context, context.layout.uploadRecordPrefix(options.prefix)))
      .map((object) => ({ parsed: context.layout.parseUploadRecord(object.key), initiated: object.lastModified }))
      .filter((entry): entry is { parsed: { key: string; uploadId: string }; initiated: Date } => entry.parsed !== undefined)
      .map(({ parsed, initiated }) => ({ ...parsed, initiated }))
      .sort((a, b) => Buffer.compare(Buffer.from(a.key), Buffer.from(b.key)) || (a.uploadId < b.uploadId ? -1 : a.uploadId > b.uploadId ? 1 : 0));
    const marker = options.keyMarker;
    const after = all.filter((u) => {
      if (marker === undefined) return true;
      const byKey = Buffer.compare(Buffer.from(u.key), Buffer.from(marker));
      // With only a key marker, S3 lists keys after it; with an upload-id marker, later uploads of that key too.
      return byKey > 0 || (byKey === 0 && options.uploadIdMarker !== undefined && u.uploadId > options.uploadIdMarker);
    });
    const uploads = after.slice(0, maxUploads);
    const isTruncated = after.length > uploads.length;
    const last = uploads[uploads.length - 1];
    return { uploads, isTruncated, nextKeyMarker: isTruncated ? last?.key : undefined, nextUploadIdMarker: isTruncated ? last?.uploadId : undefined };
  }

  // ── Reading ─────────────────────────────────────────────────────────────────────────────────
  async head(context: CofferContext, key: string): Promise<ObjectHead> {
    let sealed: Buffer;
    let lastModified: Date;
    try {
      const object = await context.store.getObject(context.layout.manifest(key));
      sealed = await readAll(object.body);
      lastModified = object.lastModified;
    } catch (error) {
      if (isNotFound(error)) throw new GatewayError('NoSuchKey');
      throw error;
    }
    const envelope: KeyEnvelope = parseSealedManifest(sealed).envelope;
    // The key the envelope names, not the configured one: a rewrap may have moved the object to another key.
    const dataKey = await context.keys.decryptDataKey(envelope.wrappedKey, encryptionContext(context.coffer, key), envelope.keyId);
    let manifest: ObjectManifest;
    try {
      manifest = openManifest(sealed, dataKey);
    } catch (error) {
      dataKey.fill(0);
      throw error;
    }
    return { manifest, etag: objectEtag(manifest), lastModified, dataKey, dataObjectKey: context.layout.data(key, manifest.objectId.toString('hex')) };
  }

  /** Verified plaintext of [start, end] (inclusive); the data object's length is checked against the manifest. */
  read(context: CofferContext, head: ObjectHead, start?: number, end?: number): AsyncGenerator<Buffer> {
    return readObjectRange({
      manifest: head.manifest,
      dataKey: head.dataKey,
      start,
      end,
      fetchRange: async (from, to) => {
        const object = await context.store.getObject(head.dataObjectKey, { start: from, endExclusive: to });
        if (object.totalSize !== head.manifest.ciphertextSize) {
          object.body.destroy();
          throw new IntegrityError('length-mismatch', 'the data object does not have the length its manifest records');
        }
        return object.body;
      },
    });
  }
}

async function* concatenate(context: CofferContext, keys: readonly string[], filler: number): AsyncGenerator<Buffer> {
  for (const key of keys) {
    const object = await context.store.getObject(key);
    for await (const chunk of object.body) yield chunk as Buffer;
  }
  const zeros = Buffer.alloc(Math.min(filler, 1024 * 1024));
  for (let left = filler; left > 0; left -= zeros.length) yield left >= zeros.length ? zeros : zeros.subarray(0, left);
}

async function readAll(body: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += (chunk as Buffer).length;
    if (size > 64 * 1024 * 1024) throw new GatewayError('InternalError', 'bookkeeping object too large');
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}
