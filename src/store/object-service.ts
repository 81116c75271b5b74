/**
 * Completed objects: PutObject (a one-part object in the same at-rest format as multipart uploads),
 * HeadObject/GetObject (manifest → verified plaintext ranges) and GetCoffer (object listings with
 * exact plaintext sizes), over the coffer's upstream bucket (docs/FORMAT.md §6–§8).
 *
 * Objects are immutable (coffers are write-once and CDCS has no DeleteObject), so a replica may keep
 * what it has read: verified manifests, and listing summaries. Once a manifest is cached, a read of
 * any range costs exactly one upstream request (the ranged GET of the data object) plus, at most, a
 * data-key cache lookup.
 */
import { randomBytes as cryptoRandomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import { readObjectRange } from '../crypto/object-reader';
import { GatewayError } from '../errors/gateway-error';
import { IntegrityError, type IntegrityFailure } from '../format/integrity-error';
import { openListingSummary } from '../format/listing-summary';
import { MANIFEST_V1, objectEtag, openManifest, parseSealedManifest, peekManifestV1, type KeyEnvelope, type ObjectAttributes, type ObjectManifest } from '../format/manifest';
import { cofferKey } from './coffer-key';
import { unwrapEnvelope } from './unwrap-envelope';
import { DataKeyMaterial } from '../keys/data-key-material';
import { MAX_PART_PLAINTEXT, partCiphertextLength } from '../format/part-format';
import { encryptionContext, isMutable, type CofferContext } from './coffer-context';
import { encryptAndStore } from './encrypt-and-store';
import type { PartSlot, PartsInFlight } from './parts-in-flight';
import { isNotFound, type StoredObject } from './ports';
import { readSmallObject } from './read-small-object';
import { assertWritable, commitManifest } from './write-once';
import { BoundedCache } from './bounded-cache';
import { isExpiredIn } from './coffer-lifecycle';

/** S3's limit on user metadata (names and values of `x-*-meta-*` headers), which COS shares. */
export const MAX_USER_METADATA_BYTES = 2048;

export interface ObjectServiceOptions {
  readonly now?: () => number;
  readonly randomBytes?: (size: number) => Buffer;
  /** Byte budget of the verified-manifest cache (default 64 MiB). */
  readonly manifestCacheBytes?: number;
  /** How long a cached manifest or listing summary is trusted (default 60 s); bounds how long an expired object stays visible. */
  readonly cacheTtlMs?: number;
  /** Manifests fetched in parallel for one listing page (default 16). */
  readonly listingConcurrency?: number;
  /** The cap on part bodies received at once, shared with UploadPart (src/store/parts-in-flight.ts); none: no cap. */
  readonly partsInFlight?: PartsInFlight;
}

export interface ObjectHead {
  readonly manifest: ObjectManifest;
  readonly etag: string;
  /** When the object was completed (the manifest's authenticated `created`), as HTTP sends it: whole seconds. */
  readonly lastModified: Date;
  /** The object's data key; whoever ends the read disposes it. */
  readonly dataKey: DataKeyMaterial;
  readonly dataObjectKey: string;
}

export interface PreparedPut {
  readonly context: CofferContext;
  readonly key: string;
  readonly objectId: Buffer;
  readonly plaintextLength: number;
  readonly contentMd5?: Buffer;
  readonly contentType?: string;
  readonly metadata: Readonly<Record<string, string>>;
  /** The client's verified checksum, read once the body has ended (stored in the manifest's attributes). */
  readonly checksum?: () => ObjectAttributes['checksum'];
  readonly envelope: KeyEnvelope;
  /** Disposed when `put` ends, or by whoever abandons the prepared put. */
  readonly dataKey: DataKeyMaterial;
  /** This body's place among the parts in flight: released when the put ends (or by the caller, if it never starts). */
  readonly slot: PartSlot;
}

export interface ListedObject {
  readonly key: string;
  readonly size: number;
  readonly etag: string;
  readonly lastModified: Date;
  /** The manifest could not be decoded: listed (never hidden), but a GET will fail. */
  readonly damaged?: boolean;
  /** Why it is damaged (logs and the integrity-failure metric). */
  readonly damagedReason?: IntegrityFailure;
}

export interface ObjectListingPage {
  readonly objects: readonly ListedObject[];
  readonly commonPrefixes: readonly string[];
  readonly isTruncated: boolean;
  readonly nextMarker?: string;
}

interface CachedManifest {
  readonly envelope: KeyEnvelope;
  readonly manifest: ObjectManifest;
  readonly bytes: number;
}

interface Summary {
  /** The completion time, full precision (for expiry); absent for damaged entries. */
  readonly created?: string;
  readonly size: number;
  readonly etag: string;
  readonly lastModified: Date;
  readonly damaged?: boolean;
  readonly damagedReason?: IntegrityFailure;
}

const wholeSeconds = (iso: string): Date => new Date(Math.floor(Date.parse(iso) / 1000) * 1000);

export function checkUserMetadata(contentType: string | undefined, metadata: Readonly<Record<string, string>>): void {
  let size = 0;
  for (const [name, value] of Object.entries(metadata)) size += Buffer.byteLength(name) + Buffer.byteLength(value);
  if (size > MAX_USER_METADATA_BYTES) throw new GatewayError('MetadataTooLarge', `User metadata may hold at most ${MAX_USER_METADATA_BYTES} bytes of names and values.`);
  if (contentType !== undefined && Buffer.byteLength(contentType) > 1024) throw new GatewayError('InvalidArgument', 'Content-Type is longer than 1024 bytes.');
}

/** The verified checksum as a manifest attribute (none when the client sent none). */
function checksumAttribute(prepared: PreparedPut): Pick<ObjectAttributes, 'checksum'> {
  const checksum = prepared.checksum?.();
  return checksum === undefined ? {} : { checksum: { algorithm: checksum.algorithm, value: checksum.value } };
}

export class ObjectService {
  private readonly now: () => number;
  private readonly randomBytes: (size: number) => Buffer;
  private readonly manifests: BoundedCache<CachedManifest>;
  private readonly summaries: BoundedCache<Summary>;
  private readonly listingConcurrency: number;
  private readonly partsInFlight: PartsInFlight | undefined;

  constructor(options: ObjectServiceOptions = {}) {
    this.now = options.now ?? Date.now;
    this.randomBytes = options.randomBytes ?? cryptoRandomBytes;
    const ttlMs = options.cacheTtlMs ?? 60_000;
    this.manifests = new BoundedCache({ maxBytes: options.manifestCacheBytes ?? 64 * 1024 * 1024, ttlMs, now: this.now }, (entry) => entry.bytes);
    // Summaries are ~200 bytes each; 16 MiB keeps ~80k listed objects.
    this.summaries = new BoundedCache({ maxBytes: 16 * 1024 * 1024, ttlMs, now: this.now }, () => 200);
    this.listingConcurrency = options.listingConcurrency ?? 16;
    this.partsInFlight = options.partsInFlight;
  }

  // ── PutObject ───────────────────────────────────────────────────────────────────────────────
  /** Everything PutObject decides before reading the body: size, write-once, the data key (one KMS call). */
  async preparePut(
    context: CofferContext,
    key: string,
    plaintextLength: number,
    options: { contentMd5?: Buffer; contentType?: string; metadata?: Record<string, string>; checksum?: () => ObjectAttributes['checksum'] } = {},
  ): Promise<PreparedPut> {
    if (plaintextLength > MAX_PART_PLAINTEXT || partCiphertextLength(plaintextLength) > context.maxPartSize) {
      throw new GatewayError('EntityTooLarge', `A PutObject body may hold at most ${Math.min(MAX_PART_PLAINTEXT, maxPlaintextFor(context.maxPartSize))} bytes; use a multipart upload.`);
    }
    const metadata = options.metadata ?? {};
    checkUserMetadata(options.contentType, metadata);
    // Before any upstream or KMS call and before 100 Continue: beyond the cap, 503 SlowDown and no body byte read.
    const slot = this.partsInFlight?.admit() ?? { release: () => undefined };
    let dataKey: Awaited<ReturnType<CofferContext['keys']['generateDataKey']>>;
    const context_ = encryptionContext(context.coffer, key);
    try {
      await assertWritable(context, key);
      dataKey = await context.keys.generateDataKey(context_);
    } catch (error) {
      slot.release();
      throw error;
    }
    return {
      slot,
      context,
      key,
      objectId: this.randomBytes(16),
      plaintextLength,
      ...(options.contentMd5 === undefined ? {} : { contentMd5: options.contentMd5 }),
      ...(options.contentType === undefined ? {} : { contentType: options.contentType }),
      ...(options.checksum === undefined ? {} : { checksum: options.checksum }),
      metadata,
      envelope: { provider: context.keys.name, keyId: dataKey.keyId, wrappedKey: dataKey.wrapped, context: context_ },
      dataKey: new DataKeyMaterial(dataKey.plaintext),
    };
  }

  /**
   * Encrypts the body into the data object, then creates the manifest. A body that fails leaves no
   * data object (the streamed PUT is destroyed); a lost create race deletes the data object it wrote.
   */
  async put(prepared: PreparedPut, body: Readable, signal?: AbortSignal): Promise<{ etag: string }> {
    const { context, key, objectId, plaintextLength } = prepared;
    const dataObjectKey = context.layout.data(key, objectId.toString('hex'));
    const salt = this.randomBytes(32);
    try {
      const { md5 } = await encryptAndStore({
        body,
        dataKey: prepared.dataKey.bytes,
        objectId,
        partNumber: 1,
        plaintextLength,
        salt,
        ...(prepared.contentMd5 === undefined ? {} : { contentMd5: prepared.contentMd5 }),
        ...(signal === undefined ? {} : { signal }),
        store: (upload) => context.store.putObject(dataObjectKey, upload),
      });
      const manifest: ObjectManifest = {
        objectId,
        kind: 'single',
        plaintextSize: plaintextLength,
        ciphertextSize: partCiphertextLength(plaintextLength),
        attributes: { ...(prepared.contentType === undefined ? {} : { contentType: prepared.contentType }), metadata: prepared.metadata, created: new Date(this.now()).toISOString(), ...checksumAttribute(prepared) },
        parts: [{ partNumber: 1, plaintextLength, offset: 0, salt, md5 }],
      };
      try {
        await commitManifest(context, key, manifest, prepared.envelope, prepared.dataKey.bytes);
      } catch (error) {
        // Without a manifest the data object is never read: remove it (best effort; an orphan is inert).
        await context.store.deleteObjects([dataObjectKey]).catch(() => undefined);
        throw error;
      }
      return { etag: objectEtag(manifest) };
    } finally {
      prepared.dataKey.dispose();
      prepared.slot.release();
    }
  }

  // ── DeleteObject ────────────────────────────────────────────────────────────────────────────
  /**
   * Removes the object: its manifest is deleted (idempotent: deleting a key that does not exist
   * succeeds, as in S3). Only in a coffer that allows delete; write-once coffers refuse with
   * AccessDenied before anything is touched. The data object is left to `coffer-gateway gc`, like a
   * replaced one (src/store/write-once.ts): a GET in flight may still be reading it.
   */
  async delete(context: CofferContext, key: string): Promise<void> {
    if (!isMutable(context)) {
      throw new GatewayError('AccessDenied', 'This coffer is write-once: objects cannot be deleted (they expire through lifecycle rules). Use a coffer with writeOnce: false.', { reason: 'write-once' });
    }
    await context.store.deleteObjects([context.layout.manifest(key)]);
    this.manifests.delete(`${context.coffer}\u0000${key}`);
  }

  // ── HeadObject / GetObject ──────────────────────────────────────────────────────────────────
  /** The verified manifest and the data key of `key`; NoSuchKey when the manifest does not exist. */
  async head(context: CofferContext, key: string): Promise<ObjectHead> {
    const cacheKey = `${context.coffer}\u0000${key}`;
    // A manifest of a coffer that allows overwrite can change under its key (on any replica): always read it.
    const cached = isMutable(context) ? undefined : this.manifests.get(cacheKey);
    // An expired cached manifest may since have been replaced by a new object of the same key: read again.
    if (cached !== undefined && (await isExpiredIn(context, cached.manifest.attributes.created))) this.manifests.delete(cacheKey);
    else if (cached !== undefined) {
      const dataKey = await unwrapEnvelope(context, key, cached.envelope);
      return this.headOf(context, key, cached.manifest, dataKey);
    }
    let sealed: Buffer;
    try {
      sealed = await readSmallObject((await context.store.getObject(context.layout.manifest(key))).body);
    } catch (error) {
      if (isNotFound(error)) throw new GatewayError('NoSuchKey');
      throw error;
    }
    const { envelope } = parseSealedManifest(sealed);
    // The context is rebuilt from the request, never taken from the envelope (FORMAT §6).
    const dataKey = await unwrapEnvelope(context, key, envelope);
    let manifest: ObjectManifest;
    try {
      manifest = openManifest(sealed, dataKey.bytes, { coffer: context.coffer, key });
      // Past its lifecycle expiry the object is gone, whether or not the upstream has removed it yet.
      if (await isExpiredIn(context, manifest.attributes.created)) throw new GatewayError('NoSuchKey', 'The object does not exist (it has expired).', { reason: 'expired' });
    } catch (error) {
      dataKey.dispose();
      throw error;
    }
    // Parsed part entries cost ~3× their 68 stored bytes.
    this.manifests.set(cacheKey, { envelope, manifest, bytes: 1024 + sealed.length * 3 });
    return this.headOf(context, key, manifest, dataKey);
  }

  private headOf(context: CofferContext, key: string, manifest: ObjectManifest, dataKey: DataKeyMaterial): ObjectHead {
    return { manifest, etag: objectEtag(manifest), lastModified: wholeSeconds(manifest.attributes.created), dataKey, dataObjectKey: context.layout.data(key, manifest.objectId.toString('hex')) };
  }

  /**
   * Verified plaintext of [start, end] (inclusive), one upstream ranged GET per contiguous run. The
   * data object's length is checked against the manifest; a data object that is gone while its
   * manifest is not is damage (IntegrityError), and one whose manifest is gone too has expired.
   */
  read(context: CofferContext, key: string, head: ObjectHead, start?: number, end?: number): AsyncGenerator<Buffer> {
    return readObjectRange({
      manifest: head.manifest,
      dataKey: head.dataKey.bytes,
      ...(start === undefined ? {} : { start }),
      ...(end === undefined ? {} : { end }),
      fetchRange: async (from, to) => {
        let object;
        try {
          object = await context.store.getObject(head.dataObjectKey, { start: from, endExclusive: to });
        } catch (error) {
          // The range lies past the data object's end: it is shorter than its manifest records.
          if (error instanceof GatewayError && error.reason === 'upstream-InvalidRange') throw new IntegrityError('length-mismatch', 'the data object is shorter than its manifest records');
          if (!isNotFound(error)) throw error;
          this.manifests.delete(`${context.coffer}\u0000${key}`);
          if ((await context.store.headObject(context.layout.manifest(key))) === undefined) throw new GatewayError('NoSuchKey');
          throw new IntegrityError('data-object-missing', 'the manifest exists but its data object does not');
        }
        if (object.totalSize !== head.manifest.ciphertextSize) {
          object.body.destroy();
          throw new IntegrityError('length-mismatch', 'the data object does not have the length its manifest records');
        }
        return object.body;
      },
    });
  }

  // ── GetCoffer ───────────────────────────────────────────────────────────────────────────────
  /**
   * One page of the coffer's objects in key order (UTF-8 bytes, as S3), keys and common prefixes
   * counted together against `maxKeys`. Only manifests are listed, so the gateway's bookkeeping
   * (data objects, upload and part records, staged parts) never shows, and a user key that looks like
   * bookkeeping (`d/x`) is listed like any other. Sizes and ETags come from each manifest (fetched
   * once, then cached), decoded without a KMS call: see `peekManifest`.
   */
  async list(context: CofferContext, options: { prefix?: string; delimiter?: string; marker?: string; maxKeys?: number } = {}): Promise<ObjectListingPage> {
    const maxKeys = Math.min(Math.max(options.maxKeys ?? 1000, 0), 1000);
    const prefix = options.prefix ?? '';
    const delimiter = options.delimiter === '' ? undefined : options.delimiter;
    const marker = options.marker === '' ? undefined : options.marker;
    const upstreamPrefix = context.layout.manifestPrefix(prefix);
    const userKey = (upstreamKey: string): string => context.layout.keyOfManifest(upstreamKey) as string;

    type Entry = { kind: 'object'; key: string; upstream: StoredObject } | { kind: 'prefix'; key: string };
    const entries: Entry[] = [];
    let token: string | undefined;
    let upstreamTruncated = false;
    while (entries.length < maxKeys) {
      const page = await context.store.listObjects(upstreamPrefix, {
        ...(token === undefined && marker !== undefined ? { startAfter: context.layout.manifest(marker) } : {}),
        ...(token === undefined ? {} : { continuationToken: token }),
        ...(delimiter === undefined ? {} : { delimiter }),
        maxKeys: maxKeys - entries.length,
      });
      const merged: Entry[] = [
        ...page.objects.map((o): Entry => ({ kind: 'object', key: userKey(o.key), upstream: o })),
        // A marker that is itself a common prefix (the previous page ended on it) was fully listed.
        ...page.commonPrefixes.map((p): Entry => ({ kind: 'prefix', key: userKey(p) })).filter((e) => e.key !== marker),
      ].sort((a, b) => Buffer.compare(Buffer.from(a.key), Buffer.from(b.key)));
      entries.push(...merged);
      upstreamTruncated = page.isTruncated;
      token = page.nextContinuationToken;
      if (!page.isTruncated || token === undefined) break;
    }
    const kept = entries.slice(0, maxKeys);
    const isTruncated = entries.length > kept.length || (kept.length === maxKeys && upstreamTruncated && maxKeys > 0);
    // One coffer key per listing, unwrapped only if a summary is not cached yet (lazily, once).
    let listingKey: Promise<Buffer | undefined> | undefined;
    const getListingKey = (): Promise<Buffer | undefined> => (listingKey ??= cofferKey(context, { create: false }));
    try {
      const objects = await mapLimited(
        kept.filter((e): e is Extract<Entry, { kind: 'object' }> => e.kind === 'object'),
        this.listingConcurrency,
        async (entry) => {
          const summary = await this.summaryOf(context, entry.key, entry.upstream, getListingKey);
          // Expired objects are not listed (their completion time is authenticated; damaged entries have none and stay listed).
          if (summary === undefined || (summary.created !== undefined && (await isExpiredIn(context, summary.created)))) return undefined;
          const { created: _created, ...listed } = summary;
          return { key: entry.key, ...listed };
        },
      );
      const last = kept[kept.length - 1];
      return {
        objects: objects.filter((o): o is ListedObject => o !== undefined),
        commonPrefixes: kept.filter((e) => e.kind === 'prefix').map((e) => e.key),
        isTruncated,
        ...(isTruncated && last !== undefined ? { nextMarker: last.key } : {}),
      };
    } finally {
      (await listingKey?.catch(() => undefined))?.fill(0);
    }
  }

  /**
   * Size, ETag and time of a listed manifest; undefined if it vanished since the listing (expired).
   * v2: from the listing summary, authenticated under the coffer key and bound to this coffer, key and
   * the manifest's object id. v1 (written before v2): decoded without authentication, as before.
   * Anything that fails is listed as damaged (never hidden; a GET of it fails too).
   */
  private async summaryOf(context: CofferContext, key: string, upstream: StoredObject, listingKey: () => Promise<Buffer | undefined>): Promise<Summary | undefined> {
    // The upstream ETag names the manifest's bytes: a rewrapped manifest gets a new entry.
    const cacheKey = `${context.coffer}\u0000${upstream.key}\u0000${upstream.etag}`;
    const cached = this.summaries.get(cacheKey);
    if (cached !== undefined) return cached;
    let bytes: Buffer;
    try {
      bytes = await readSmallObject((await context.store.getObject(upstream.key)).body);
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
    let summary: Summary;
    try {
      const sealed = parseSealedManifest(bytes);
      if (sealed.version === MANIFEST_V1) {
        const manifest = peekManifestV1(bytes);
        summary = { created: manifest.attributes.created, size: manifest.plaintextSize, etag: objectEtag(manifest), lastModified: wholeSeconds(manifest.attributes.created) };
      } else {
        const cofferKeyBytes = await listingKey();
        if (cofferKeyBytes === undefined) throw new IntegrityError('coffer-key-rejected', 'a v2 manifest exists but the coffer key record does not');
        const opened = openListingSummary(cofferKeyBytes, context.coffer, key, sealed.objectId, sealed.summary);
        summary = { created: opened.created, size: opened.size, etag: opened.etag, lastModified: wholeSeconds(opened.created) };
      }
    } catch (error) {
      if (!(error instanceof IntegrityError)) throw error;
      summary = { size: 0, etag: '""', lastModified: upstream.lastModified, damaged: true, damagedReason: error.reason };
    }
    this.summaries.set(cacheKey, summary);
    return summary;
  }
}

/** The largest plaintext whose single-part ciphertext fits in `maxStored` bytes. */
function maxPlaintextFor(maxStored: number): number {
  let low = 0;
  let high = maxStored;
  while (low < high) {
    const middle = Math.ceil((low + high) / 2);
    if (partCiphertextLength(middle) <= maxStored) low = middle;
    else high = middle - 1;
  }
  return low;
}

/** `map` with at most `limit` calls in flight, results in input order. */
async function mapLimited<T, R>(items: readonly T[], limit: number, map: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const index = next++;
      results[index] = await map(items[index] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}
