/**
 * The CDCS multipart upload operations over an upstream bucket (docs/FORMAT.md §8).
 * Stateless: every answer is computed from the upload record, part records, upstream parts and
 * manifests in the bucket; the only per-process state is a cache of immutable upload records.
 *
 * Each operation resolves everything that can fail without the body (upload record, data key,
 * size limits) in a `prepare…` step, so the HTTP layer can answer `Expect: 100-continue` with the
 * error before the client sends gigabytes.
 */
import { randomBytes as cryptoRandomBytes } from 'node:crypto';
import { pipeline, Readable } from 'node:stream';
import { GatewayError } from '../errors/gateway-error';
import { objectEtag, type ManifestPart, type ObjectManifest } from '../format/manifest';
import { IntegrityError } from '../format/integrity-error';
import { MAX_PART_PLAINTEXT, PART_HEADER_SIZE, decodePartHeader, partCiphertextLength } from '../format/part-format';
import { verifyPartHeader } from '../format/part-keys';
import { planAssembly } from './assembly-plan';
import { encryptionContext, type CofferContext } from './coffer-context';
import { currentParts, decodePartRecordName, encodePartRecordName, newestFirst, normaliseEtag, partRecordKey, type PartRecord, type PartRecordScope } from './part-record';
import { isNotFound } from './ports';
import type { PartSlot, PartsInFlight } from './parts-in-flight';
import { encryptAndStore } from './encrypt-and-store';
import { readSmallObject } from './read-small-object';
import { decodeUploadRecord, encodeUploadRecord, uploadRecordEnvelope, type UploadRecord } from './upload-record';
import { unwrapEnvelope } from './unwrap-envelope';
import { DataKeyMaterial } from '../keys/data-key-material';
import { boundedMap } from '../util/bounded-map';
import { ChecksumTap, combineCrcs, compositeChecksum, type ChecksumAlgorithm, type ChecksumType } from '../http/object-checksum';
import type { ObjectAttributes } from '../format/manifest';
import { assertWritable, classifyStoredManifest, commitManifest } from './write-once';
import { isExpiredIn } from './coffer-lifecycle';

/** Staged runs copied into upstream parts at once during Complete. */
const COMPLETE_COPY_CONCURRENCY = 4;

/** CDCS minimum size of every part but the last (the COS SDK's 1 MiB slice). */
export const CDCS_MIN_PART_SIZE = 1024 * 1024;

export interface ServiceDependencies {
  readonly now: () => number;
  readonly randomBytes: (size: number) => Buffer;
  /** The cap on part bodies received at once, shared with PutObject (src/store/parts-in-flight.ts); none: no cap. */
  readonly partsInFlight?: PartsInFlight;
}

export interface PartSummary {
  readonly partNumber: number;
  readonly etag: string;
  readonly size: number;
  readonly lastModified: Date;
  readonly checksum?: PartChecksum;
}

/** An S3 additional checksum of one part's plaintext (base64). */
export interface PartChecksum {
  readonly algorithm: ChecksumAlgorithm;
  readonly value: string;
}

/** What Complete is told besides the parts: the object checksum an S3 client asserts (`x-amz-checksum-<algorithm>` on Complete). */
export interface CompletionOptions {
  readonly objectChecksum?: PartChecksum;
}

/** A part Complete is asked to assemble: its number, its ETag and, from S3 clients, its checksum. */
export interface RequestedPart {
  readonly partNumber: number;
  readonly etag: string;
  readonly checksum?: PartChecksum;
}

export interface PreparedPart {
  readonly context: CofferContext;
  readonly record: UploadRecord;
  readonly partNumber: number;
  readonly plaintextLength: number;
  readonly storage: 'direct' | 'staged';
  readonly contentMd5?: Buffer;
  /** Disposed when the part upload ends (`uploadPart`), or by whoever abandons the prepared part. */
  readonly dataKey: DataKeyMaterial;
  /** This part's place among the parts in flight: released when the upload ends (or by the caller, if it never starts). */
  readonly slot: PartSlot;
  /** The upload declared a checksum algorithm the client does not send for this part: the gateway computes it over the plaintext. */
  readonly computeChecksum?: ChecksumAlgorithm;
}

export interface CompletedUpload {
  readonly etag: string;
  readonly manifest: ObjectManifest;
  readonly copiedBytes: number;
  readonly fillerBytes: number;
}

/** What `beginCompletion` leaves to do: nothing (a retried Complete whose manifest had landed), or the assembly. */
export type Completion = { readonly kind: 'completed'; readonly result: CompletedUpload } | { readonly kind: 'assembly'; assemble(): Promise<CompletedUpload> };

const NO_SLOT: PartSlot = { release: () => undefined };

export class MultipartService {
  private readonly records = new Map<string, UploadRecord>();

  constructor(private readonly deps: ServiceDependencies = { now: Date.now, randomBytes: cryptoRandomBytes }) {}

  // ── Initiate ────────────────────────────────────────────────────────────────────────────────
  async initiate(context: CofferContext, key: string, options: { contentType?: string; metadata?: Record<string, string>; checksum?: { algorithm: ChecksumAlgorithm; type: ChecksumType } } = {}): Promise<UploadRecord> {
    await assertWritable(context, key);
    const generated = await context.keys.generateDataKey(encryptionContext(context.coffer, key));
    const dataKey = new DataKeyMaterial(generated.plaintext);
    try {
      const uploadId = this.deps.randomBytes(16).toString('hex');
      const { uploadId: upstreamUploadId } = await context.store.createMultipartUpload(context.layout.data(key, uploadId));
      const record: UploadRecord = {
        uploadId,
        coffer: context.coffer,
        key,
        upstreamUploadId,
        envelope: { provider: context.keys.name, keyId: generated.keyId, wrappedKey: generated.wrapped, context: encryptionContext(context.coffer, key) },
        contentType: options.contentType,
        metadata: options.metadata ?? {},
        initiated: new Date(this.deps.now()).toISOString(),
        ...(options.checksum === undefined ? {} : { checksum: options.checksum }),
      };
      await context.store.putObject(context.layout.uploadRecord(key, uploadId), { body: encodeUploadRecord(record, dataKey.bytes) });
      this.records.set(uploadId, record);
      return record;
    } finally {
      dataKey.dispose();
    }
  }

  async loadRecord(context: CofferContext, key: string, uploadId: string): Promise<UploadRecord> {
    const cached = this.records.get(uploadId);
    if (cached !== undefined && cached.key === key && cached.coffer === context.coffer) return cached;
    let bytes: Buffer;
    try {
      bytes = await readSmallObject((await context.store.getObject(context.layout.uploadRecord(key, uploadId))).body);
    } catch (error) {
      if (isNotFound(error)) throw new GatewayError('NoSuchUpload');
      throw error;
    }
    // Verified before any field is used: the record is sealed under a key derived from the data key
    // its envelope wraps, and bound to this coffer, key and upload id (FORMAT §8.1).
    const dataKey = await unwrapEnvelope(context, key, uploadRecordEnvelope(bytes));
    try {
      const record = decodeUploadRecord(bytes, { coffer: context.coffer, key, uploadId }, dataKey.bytes);
      this.records.set(uploadId, record);
      return record;
    } finally {
      dataKey.dispose();
    }
  }

  // ── UploadPart ──────────────────────────────────────────────────────────────────────────────
  /**
   * Everything UploadPart decides before reading the body. `clientChecksum`: the algorithm of the
   * checksum the client declared for this part (header or trailer), if any; an upload created with
   * an algorithm refuses another one (InvalidRequest, as S3) and computes its own when none is sent.
   */
  async prepareUploadPart(context: CofferContext, key: string, uploadId: string, partNumber: number, plaintextLength: number, contentMd5?: Buffer, clientChecksum?: ChecksumAlgorithm): Promise<PreparedPart> {
    if (plaintextLength > MAX_PART_PLAINTEXT) throw new GatewayError('EntityTooLarge', `A part may hold at most ${MAX_PART_PLAINTEXT} bytes.`);
    const stored = partCiphertextLength(plaintextLength);
    if (stored > context.maxPartSize) {
      throw new GatewayError('EntityTooLarge', `After encryption this part would exceed the upstream's ${context.maxPartSize}-byte part limit.`);
    }
    // Before any upstream or KMS call and before 100 Continue: beyond the cap, 503 SlowDown and no body byte read.
    const slot = this.deps.partsInFlight?.admit() ?? NO_SLOT;
    try {
      const record = await this.loadRecord(context, key, uploadId);
      const declared = record.checksum?.algorithm;
      if (declared !== undefined && clientChecksum !== undefined && clientChecksum !== declared) {
        throw new GatewayError('InvalidRequest', `Checksum Type mismatch occurred, expected checksum Type: ${declared.toLowerCase()}, actual checksum Type: ${clientChecksum.toLowerCase()}`, { reason: 'checksum-algorithm' });
      }
      const dataKey = await unwrapEnvelope(context, key, record.envelope);
      // Below the CDCS minimum a part can only be the last one, which S3 accepts small: stream it directly.
      const storage = plaintextLength < CDCS_MIN_PART_SIZE || stored >= context.minPartSize ? 'direct' : 'staged';
      return { context, record, partNumber, plaintextLength, storage, contentMd5, dataKey, slot, ...(declared !== undefined && clientChecksum === undefined ? { computeChecksum: declared } : {}) };
    } catch (error) {
      slot.release();
      throw error;
    }
  }

  /** Encrypts and stores the body; resolves to the part's ETag (quoted plaintext MD5) once its record is durable. */
  async uploadPart(prepared: PreparedPart, body: Readable, signal?: AbortSignal): Promise<string> {
    return (await this.storePart(prepared, body, signal)).etag;
  }

  /**
   * uploadPart, also resolving to the part's checksum (S3). `clientChecksum`: the client's verified
   * checksum, read once the body has ended (the body fails before its end when it does not verify).
   */
  async storePart(prepared: PreparedPart, body: Readable, signal?: AbortSignal, clientChecksum?: () => PartChecksum | undefined): Promise<{ etag: string; checksum?: PartChecksum }> {
    const { context, record, partNumber, plaintextLength } = prepared;
    const salt = this.deps.randomBytes(32);
    let scope: PartRecordScope | undefined;
    const tap = prepared.computeChecksum === undefined ? undefined : new ChecksumTap(prepared.computeChecksum);
    try {
      const { md5, upstreamEtag } = await encryptAndStore({
        body: tap === undefined ? body : pipeline(body, tap, () => undefined),
        dataKey: prepared.dataKey.bytes,
        objectId: Buffer.from(record.uploadId, 'hex'),
        partNumber,
        plaintextLength,
        salt,
        contentMd5: prepared.contentMd5,
        signal,
        store: (upload) =>
          prepared.storage === 'direct'
            ? context.store.uploadPart(context.layout.data(record.key, record.uploadId), record.upstreamUploadId, partNumber, upload)
            : context.store.putObject(context.layout.stagedPart(record.uploadId, partNumber, salt.toString('base64url')), upload),
      });
      const checksum = tap === undefined ? clientChecksum?.() : { algorithm: tap.algorithm, value: await tap.digest() };
      scope = partRecordScope(record, prepared.dataKey.bytes);
      const partRecord: PartRecord = {
        partNumber,
        salt,
        storage: prepared.storage,
        plaintextLength,
        md5,
        upstreamEtag: prepared.storage === 'direct' ? normaliseEtag(upstreamEtag) : undefined,
        completedAt: this.deps.now(),
        ...(checksum === undefined ? {} : { checksum: { algorithm: checksum.algorithm, value: checksum.value } }),
      };
      await context.store.putObject(`${context.layout.partRecordPrefix(record.uploadId)}${encodePartRecordName(partRecord, scope)}`, { body: Buffer.alloc(0) });
      // Only staged uploads pay for the listing: the direct path stays one streamed PUT plus the record.
      if (prepared.storage === 'staged') await this.removeSupersededStagedParts(context, record, partNumber, scope);
      return { etag: `"${md5.toString('hex')}"`, ...(checksum === undefined ? {} : { checksum }) };
    } finally {
      prepared.dataKey.dispose();
      scope?.recordKey.fill(0);
      prepared.slot.release();
    }
  }

  /**
   * Once a staged part upload's record is durable: removes every staged upload of the same part number
   * that a newer record supersedes, its record first and then its staged object, so a part re-uploaded
   * N times keeps one staged copy rather than N (a direct upload does not list, to keep the fast path
   * as it was; a staged copy it supersedes stays until the next staged upload of the part or
   * Complete/Abort — at most one). Why this keeps FORMAT §8.2's race safety:
   * - the newest record of a part is never removed (only records older than another are), and no
   *   direct record is removed, so the current upload Complete would choose is unchanged unless it was
   *   an older staged upload that a newer upload (of any kind) has already answered for;
   * - a staged object is removed only after its record, so a record never names staged bytes that
   *   are gone (except if the bucket's owner removes them: then Complete fails, naming no bytes);
   * - every replica that runs this sees at least its own record and removes only older ones, so two
   *   concurrent uploads both converge on the newest, and a slower one removes itself.
   * Best effort: a failure here leaves extra copies that Complete/Abort remove, never a wrong part.
   * Records that do not open are left alone here; ListParts and Complete refuse them.
   */
  private async removeSupersededStagedParts(context: CofferContext, record: UploadRecord, partNumber: number, scope: PartRecordScope): Promise<void> {
    try {
      const prefix = context.layout.partRecordPrefix(record.uploadId);
      const listed = await this.listAll(context, context.layout.partRecordPrefix(record.uploadId, partNumber));
      const opened: Array<{ upstreamKey: string; record: PartRecord }> = [];
      for (const object of listed) {
        try {
          opened.push({ upstreamKey: object.key, record: decodePartRecordName(object.key.slice(prefix.length), scope) });
        } catch {
          // not ours to judge here
        }
      }
      opened.sort((a, b) => newestFirst(a.record, b.record));
      const superseded = opened.slice(1).filter((entry) => entry.record.storage === 'staged');
      if (superseded.length === 0) return;
      await context.store.deleteObjects(superseded.map((entry) => entry.upstreamKey));
      await context.store.deleteObjects(superseded.map((entry) => context.layout.stagedPart(record.uploadId, partNumber, entry.record.salt.toString('base64url'))));
    } catch {
      // Best effort (see above).
    }
  }

  // ── ListParts ───────────────────────────────────────────────────────────────────────────────
  async listParts(
    context: CofferContext,
    key: string,
    uploadId: string,
    options: { maxParts?: number; partNumberMarker?: number } = {},
  ): Promise<{ record: UploadRecord; parts: PartSummary[]; isTruncated: boolean; nextPartNumberMarker?: number }> {
    const record = await this.loadRecord(context, key, uploadId);
    const dataKey = await unwrapEnvelope(context, key, record.envelope);
    let current: Map<number, PartRecord>;
    const scope = partRecordScope(record, dataKey.bytes);
    try {
      current = await this.currentParts(context, record, scope);
    } finally {
      dataKey.dispose();
      scope.recordKey.fill(0);
    }
    const maxParts = Math.min(Math.max(options.maxParts ?? 1000, 0), 1000);
    const all = [...current.values()].filter((p) => p.partNumber > (options.partNumberMarker ?? 0)).sort((a, b) => a.partNumber - b.partNumber);
    const page = all.slice(0, maxParts);
    const summaries = page.map((p) => ({ partNumber: p.partNumber, etag: `"${p.md5.toString('hex')}"`, size: p.plaintextLength, lastModified: new Date(p.completedAt), ...(p.checksum === undefined ? {} : { checksum: p.checksum }) }));
    const isTruncated = all.length > page.length;
    return { record, parts: summaries, isTruncated, nextPartNumberMarker: page.length > 0 ? (page[page.length - 1] as PartRecord).partNumber : undefined };
  }

  /**
   * Every part record of the upload, each verified (a name under the prefix that does not open fails
   * the whole operation: IntegrityError), then the current upload of each part number (§8.2).
   */
  private async currentParts(context: CofferContext, record: UploadRecord, scope: PartRecordScope): Promise<Map<number, PartRecord>> {
    const prefix = context.layout.partRecordPrefix(record.uploadId);
    const [records, upstreamParts] = await Promise.all([
      this.listAll(context, prefix),
      context.store.listParts(context.layout.data(record.key, record.uploadId), record.upstreamUploadId).catch((error: unknown) => {
        if (isNotFound(error)) return [];
        throw error;
      }),
    ]);
    const decoded = records.map((o) => decodePartRecordName(o.key.slice(prefix.length), scope));
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
  /**
   * Complete in two steps, so the HTTP layer can keep the connection alive through the slow one
   * without the store knowing about HTTP: `beginCompletion` checks everything that makes the request
   * valid (parts, order, sizes, write-once) and answers a retried Complete whose manifest already
   * landed; what is left — copying staged parts, completing upstream, committing the manifest — is
   * the returned `assemble`, which the caller runs at once (it holds the upload's data key until it
   * ends).
   */
  async beginCompletion(context: CofferContext, key: string, uploadId: string, requested: readonly RequestedPart[], options: CompletionOptions = {}): Promise<Completion> {
    const record = await this.loadRecord(context, key, uploadId);
    if (requested.length === 0) throw new GatewayError('MalformedXML', 'CompleteMultipartUpload needs at least one part.');
    for (let i = 1; i < requested.length; i += 1) {
      if ((requested[i] as { partNumber: number }).partNumber <= (requested[i - 1] as { partNumber: number }).partNumber) throw new GatewayError('InvalidPartOrder');
    }
    const dataKey = await unwrapEnvelope(context, key, record.envelope);
    let handedToAssembly = false;
    try {
      const checked = await this.checkCompletion(context, key, record, requested, dataKey, options);
      if (checked.kind === 'completed') return checked;
      handedToAssembly = true;
      return {
        kind: 'assembly',
        assemble: async () => {
          try {
            return await this.assemble(context, key, record, checked.chosen, dataKey);
          } finally {
            dataKey.dispose();
          }
        },
      };
    } finally {
      if (!handedToAssembly) dataKey.dispose();
    }
  }

  /** Both steps of Complete at once (the command line and tests; the gateway keeps the connection alive between them). */
  async complete(context: CofferContext, key: string, uploadId: string, requested: readonly RequestedPart[], options: CompletionOptions = {}): Promise<CompletedUpload> {
    const completion = await this.beginCompletion(context, key, uploadId, requested, options);
    return completion.kind === 'completed' ? completion.result : completion.assemble();
  }

  private async checkCompletion(
    context: CofferContext,
    key: string,
    record: UploadRecord,
    requested: readonly RequestedPart[],
    dataKey: DataKeyMaterial,
    options: CompletionOptions = {},
  ): Promise<{ kind: 'completed'; result: CompletedUpload } | { kind: 'assembly'; chosen: PartRecord[] }> {
    const uploadId = record.uploadId;
    const scope = partRecordScope(record, dataKey.bytes);
    let current: Map<number, PartRecord>;
    try {
      current = await this.currentParts(context, record, scope);
    } finally {
      scope.recordKey.fill(0);
    }
    const chosen = requested.map((request, index) => {
      const part = current.get(request.partNumber);
      if (part === undefined || normaliseEtag(request.etag).toLowerCase() !== part.md5.toString('hex')) {
        throw new GatewayError('InvalidPart', `Part ${request.partNumber} was not uploaded or its ETag does not match.`);
      }
      checkPartChecksum(record, request, part);
      if (index < requested.length - 1 && part.plaintextLength < CDCS_MIN_PART_SIZE) {
        throw new GatewayError('EntityTooSmall', `Part ${request.partNumber} is smaller than ${CDCS_MIN_PART_SIZE} bytes and is not the last part.`);
      }
      return part;
    });
    await checkObjectChecksum(record, chosen, options.objectChecksum);
    if (await context.store.headObject(context.layout.manifest(key))) {
      // Verified, never judged by the object id in the clear: a planted manifest is an IntegrityError and the upload is kept.
      const stored = await classifyStoredManifest(context, key, Buffer.from(uploadId, 'hex'), dataKey.bytes);
      if (stored.kind === 'ours') {
        // A retried Complete: this upload's manifest landed but the cleanup (or the answer) did not.
        await this.cleanUp(context, record);
        return { kind: 'completed', result: { etag: objectEtag(stored.manifest), manifest: stored.manifest, copiedBytes: 0, fillerBytes: 0 } };
      }
      // An expired object holding the key does not stop the upload: commitManifest replaces it (write-once is for live objects).
      if (stored.kind === 'theirs' && !(await isExpiredIn(context, stored.manifest.attributes.created))) {
        // Another upload created the key since this one began: this one can never complete, so release its storage.
        await this.abort(context, key, uploadId);
        throw new GatewayError('ObjectAlreadyExists', 'Another upload created this key first; this upload was aborted (coffers are write-once).');
      }
    }

    return { kind: 'assembly', chosen };
  }

  private async assemble(context: CofferContext, key: string, record: UploadRecord, chosen: readonly PartRecord[], dataKey: DataKeyMaterial): Promise<CompletedUpload> {
    const uploadId = record.uploadId;
    const plan = planAssembly(chosen, context.minPartSize);
    const dataObjectKey = context.layout.data(key, uploadId);
    const upstreamEtags = new Map((await context.store.listParts(dataObjectKey, record.upstreamUploadId).catch(() => [])).map((p) => [p.partNumber, p.etag]));
    const byNumber = new Map(chosen.map((p) => [p.partNumber, p]));
    // Staged runs are copied a few at a time: each copy is one streamed GET→PUT (memory stays bounded),
    // and a long 1 MB-part upload completes several times faster than copying run after run.
    const completedParts = await boundedMap(plan.upstreamParts, COMPLETE_COPY_CONCURRENCY, async (upstreamPart) => {
      if (upstreamPart.kind === 'direct') {
        return { partNumber: upstreamPart.upstreamPartNumber, etag: upstreamEtags.get(upstreamPart.upstreamPartNumber) ?? (byNumber.get(upstreamPart.partNumber)?.upstreamEtag as string) };
      }
      const sources = upstreamPart.partNumbers.map((n) => ({ upstreamKey: context.layout.stagedPart(uploadId, n, (byNumber.get(n) as PartRecord).salt.toString('base64url')), record: byNumber.get(n) as PartRecord }));
      const body = Readable.from(concatenate(context, uploadId, dataKey, sources, upstreamPart.filler));
      const { etag } = await context.store.uploadPart(dataObjectKey, record.upstreamUploadId, upstreamPart.upstreamPartNumber, { body, contentLength: upstreamPart.size });
      return { partNumber: upstreamPart.upstreamPartNumber, etag };
    });
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
      attributes: { contentType: record.contentType, metadata: record.metadata, created: new Date(this.deps.now()).toISOString(), ...(await objectChecksum(record, chosen)) },
      parts: chosen.map((p): ManifestPart => ({ partNumber: p.partNumber, plaintextLength: p.plaintextLength, offset: plan.offsets.get(p.partNumber) as number, salt: p.salt, md5: p.md5 })),
    };
    try {
      await commitManifest(context, key, manifest, record.envelope, dataKey.bytes);
    } catch (error) {
      // Another upload of this key completed first: this one's data object would never be read.
      if (error instanceof GatewayError && error.code === 'ObjectAlreadyExists') {
        await context.store.deleteObjects([dataObjectKey]);
        await this.cleanUp(context, record);
      }
      throw error;
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
    const keys = [...(await this.listAll(context, context.layout.partRecordPrefix(record.uploadId))).map((o) => o.key), ...(await this.listAll(context, context.layout.stagedPrefix(record.uploadId))).map((o) => o.key)];
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
  async listUploads(
    context: CofferContext,
    options: { prefix?: string; keyMarker?: string; uploadIdMarker?: string; maxUploads?: number } = {},
  ): Promise<{ uploads: Array<{ key: string; uploadId: string; initiated: Date }>; isTruncated: boolean; nextKeyMarker?: string; nextUploadIdMarker?: string }> {
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
}

/**
 * The checksum a Complete lists for a part, against the part's stored one (S3's rules): an upload
 * created with an algorithm needs that checksum for every part (InvalidRequest when missing); a
 * listed checksum must equal the stored one of its algorithm (InvalidPart otherwise, also when the
 * part has none to compare with).
 */
function checkPartChecksum(record: UploadRecord, request: RequestedPart, part: PartRecord): void {
  const declared = record.checksum?.algorithm;
  if (declared !== undefined && request.checksum?.algorithm !== declared) {
    throw new GatewayError('InvalidRequest', `The upload was created using a ${declared.toLowerCase()} checksum. The complete request must include the checksum for each part. It was missing for part ${request.partNumber} in the request.`, {
      reason: 'part-checksum-missing',
    });
  }
  if (request.checksum !== undefined && (part.checksum?.algorithm !== request.checksum.algorithm || part.checksum.value !== request.checksum.value)) {
    throw new GatewayError('InvalidPart', `The ${request.checksum.algorithm} checksum listed for part ${request.partNumber} does not match the part's.`, { reason: 'part-checksum-mismatch' });
  }
}

/**
 * The object checksum a client asserts at Complete, against the one the parts give, before anything is
 * assembled: BadDigest on a mismatch (the upload stays, as after any refused Complete). Only an upload
 * created with that algorithm has one to compare with. A COMPOSITE value may be sent with or without
 * its `-<parts>` suffix.
 */
async function checkObjectChecksum(record: UploadRecord, chosen: readonly PartRecord[], asserted: PartChecksum | undefined): Promise<void> {
  if (asserted === undefined) return;
  if (record.checksum?.algorithm !== asserted.algorithm) {
    throw new GatewayError('InvalidRequest', `The upload was not created with a ${asserted.algorithm.toLowerCase()} checksum, so its object checksum cannot be checked.`, { reason: 'object-checksum-algorithm' });
  }
  const computed = (await objectChecksum(record, chosen)).checksum?.value ?? '';
  if (asserted.value !== computed && asserted.value !== computed.replace(/-\d+$/, '')) {
    throw new GatewayError('BadDigest', `The ${asserted.algorithm} checksum of the object you specified did not match the checksum of its parts.`, { reason: 'object-checksum-mismatch' });
  }
}

/** The object checksum of an upload created with an algorithm, from its parts' verified checksums (none otherwise). */
async function objectChecksum(record: UploadRecord, chosen: readonly PartRecord[]): Promise<Pick<ObjectAttributes, 'checksum'>> {
  if (record.checksum === undefined) return {};
  const { algorithm, type } = record.checksum;
  const parts = chosen.map((part) => {
    // Every part of such an upload was stored with one (verified or computed) and checked at beginCompletion.
    if (part.checksum?.algorithm !== algorithm) throw new GatewayError('InvalidPart', `Part ${part.partNumber} has no ${algorithm} checksum.`, { reason: 'part-checksum-missing' });
    return { checksum: part.checksum.value, length: part.plaintextLength };
  });
  const value =
    type === 'COMPOSITE'
      ? await compositeChecksum(
          algorithm,
          parts.map((p) => p.checksum),
        )
      : combineCrcs(algorithm, parts);
  return { checksum: { algorithm, value, type } };
}

function partRecordScope(record: UploadRecord, dataKey: Buffer): PartRecordScope {
  return { coffer: record.coffer, key: record.key, uploadId: record.uploadId, recordKey: partRecordKey(dataKey, record.uploadId) };
}

/**
 * The staged parts of one upstream part, concatenated as stored, then filler. Each staged object's
 * header is checked against the record it was chosen by (object id, part number, length, salt) and
 * its key commitment verified before a byte of it is copied: staged bytes swapped for another upload's
 * (or another part's) stop Complete here rather than producing an object whose reads would fail.
 * O(1) memory: only the 100-byte header is held.
 */
async function* concatenate(context: CofferContext, uploadId: string, dataKey: DataKeyMaterial, sources: ReadonlyArray<{ upstreamKey: string; record: PartRecord }>, filler: number): AsyncGenerator<Buffer> {
  for (const { upstreamKey, record } of sources) {
    const object = await context.store.getObject(upstreamKey);
    let header = Buffer.alloc(0);
    for await (const chunk of object.body) {
      if (header.length < PART_HEADER_SIZE) {
        header = Buffer.concat([header, chunk as Buffer]);
        if (header.length < PART_HEADER_SIZE) continue;
        verifyPartHeader(dataKey.bytes, decodePartHeader(header), { objectId: Buffer.from(uploadId, 'hex'), partNumber: record.partNumber, plaintextLength: record.plaintextLength, salt: record.salt }).encryptionKey.fill(0);
        yield header;
        continue;
      }
      yield chunk as Buffer;
    }
    if (header.length < PART_HEADER_SIZE) throw new IntegrityError('truncated', `staged part ${record.partNumber} is shorter than a part header`);
  }
  const zeros = Buffer.alloc(Math.min(filler, 1024 * 1024));
  for (let left = filler; left > 0; left -= zeros.length) yield left >= zeros.length ? zeros : zeros.subarray(0, left);
}
