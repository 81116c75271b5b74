/**
 * The S3 operations table (src/operations/operation-table.ts): the same store calls as the CDCS
 * table (src/cdcs/cdcs-operations.ts) — same coffers, same at-rest format, so an object written in
 * one dialect is read in the other — with S3's names, headers (`x-amz-meta-*`) and bodies: every body
 * goes through the plan decided before it (src/http/s3-request-body.ts: signed SHA-256, aws-chunked
 * decoding with chunk signatures, checksums), whose failure destroys the store's write before it
 * ends, so nothing is stored.
 */
import { pipeline, Readable } from 'node:stream';
import type { CofferResolver, PolicyAuthority } from '../operations/run-operation';
import type { SignedPayload } from '../auth/sigv4-authenticator';
import { createCdcsOperations, objectAnswer, reportDamaged, type CdcsOperationsDependencies } from '../cdcs/cdcs-operations';
import { GatewayError } from '../errors/gateway-error';
import { MAX_PART_PLAINTEXT } from '../format/part-format';
import { CHECKSUM_ALGORITHMS, ChecksumTap, checksumHeader, defaultChecksumType, isAllowedChecksumType, isChecksumValue, type ChecksumAlgorithm, type ChecksumType } from '../http/object-checksum';
import { objectBytes, planS3RequestBody, type S3RequestBody } from '../http/s3-request-body';
import { operation, type OperationTable } from '../operations/operation-table';
import type { GatewayRequest, NamedOperation } from '../server/gateway-exchange';
import { headerValue, type RequestHeaders } from '../server/request-headers';
import { contentMd5, numberParam, queryValue, userMetadata } from '../http/request-fields';
import type { CompletionOptions, PartSummary, PreparedPart } from '../store/multipart-service';
import type { UploadRecord } from '../store/upload-record';
import { checkUserMetadata, type ObjectHead, type ObjectService } from '../store/object-service';
import { MAX_XML_BODY_BYTES, readBodyCapped } from '../cdcs/xml';
import { isMutable, type CofferContext } from '../store/coffer-context';
import { checkCreateBucketConfiguration, createBucket, MAX_CREATE_BUCKET_BODY_BYTES, prepareCreateBucket, type PreparedCreateBucket } from './bucket-lifecycle';
import { parseDeleteObjects } from './delete-objects-request';
import { S3_OPERATION_ACTIONS, type S3Operation, type S3OperationName } from './s3-route';
import { copySourceRange, openCopySource, type CopySource } from './copy-source';

export interface S3OperationsDependencies extends CdcsOperationsDependencies {
  /** Contexts of other coffers (CopyObject's source), authorized here like the pipeline authorizes the target. */
  readonly contexts: CofferResolver;
  /** The coffers' policies (the same authority the pipeline consults): CopyObject's source obeys its coffer's policy like a GET. */
  readonly policyAuthority?: PolicyAuthority;
  /** The payload the request's SigV4 signature declared (set by the dialect's authentication). */
  readonly payloadOf: (request: GatewayRequest<NamedOperation>) => SignedPayload;
  /** The gateway's S3 region (config `s3.region`): every bucket is in it. */
  readonly region: string;
}

type Of<Name extends S3OperationName> = Extract<S3Operation, { readonly name: Name }>;

/** A ListObjectsV2 continuation token: the last key of the page, opaque to the client. */
const tokenOf = (marker: string): string => Buffer.from(marker, 'utf8').toString('base64url');
function markerOfToken(token: string): string {
  const marker = Buffer.from(token, 'base64url').toString('utf8');
  if (tokenOf(marker) !== token) throw new GatewayError('InvalidArgument', 'The continuation token is not valid.');
  return marker;
}

/** The request body, planned before it is read (decided in `prepare`). */
function planBody(deps: S3OperationsDependencies, request: GatewayRequest<NamedOperation>): S3RequestBody {
  return planS3RequestBody(request, deps.payloadOf(request), request.framing.kind === 'length' ? request.framing.length : undefined);
}

/** The object bytes of an accepted body (src/http/s3-request-body.ts objectBytes). */
function decoded(body: Readable | undefined, plan: S3RequestBody): Readable {
  if (body === undefined) throw new GatewayError('InternalError', 'The body was not accepted.');
  return objectBytes(body, plan);
}

/** Bodies may be aws-chunked (framing overhead over the object bytes): the decoder bounds them, the store bounds the object size. */
const OBJECT_BODY = { objectData: true } as const;

export function createS3Operations(deps: S3OperationsDependencies): OperationTable<S3Operation> {
  const { service, objects } = deps;
  // Entries whose answers are the same data in both dialects (the renderer makes them S3 XML).
  const cdcs = createCdcsOperations(deps);

  const readObject = operation<Of<'GetObject'> | Of<'HeadObject'>, ObjectHead>({
    action: 'read',
    scope: 'coffer',
    objectDataOut: true,
    prepare: ({ context, key }) => objects.head(context, key),
    run: (head, _body, { request, context, key }) => objectAnswer(objects, request, context, key, head, { metadataPrefix: 'x-amz-meta-', headers: storedChecksumHeaders(request.headers, head) }),
    release: (head) => head.dataKey.dispose(),
  });

  return {
    ListBuckets: cdcs.GetService as unknown as OperationTable<S3Operation>['ListBuckets'],
    ListMultipartUploads: cdcs.ListMultipartUploads as unknown as OperationTable<S3Operation>['ListMultipartUploads'],
    AbortMultipartUpload: cdcs.AbortMultipartUpload as unknown as OperationTable<S3Operation>['AbortMultipartUpload'],

    // The bucket exists once the pipeline resolved its context (one lookup: the configured coffers'
    // map, or the registry's cached registration of a created coffer); every bucket is in the gateway's region.
    HeadBucket: operation<Of<'HeadBucket'>, undefined>({
      action: S3_OPERATION_ACTIONS.HeadBucket,
      scope: 'coffer',
      prepare: async () => undefined,
      run: async () => ({ kind: 'empty', status: 200, headers: { 'x-amz-bucket-region': deps.region } }),
    }),

    CreateBucket: operation<Of<'CreateBucket'>, { plan: S3RequestBody; prepared: PreparedCreateBucket }>({
      action: S3_OPERATION_ACTIONS.CreateBucket,
      // The bucket may not exist yet: no context to resolve; who may create is decided per coffer class (bucket-lifecycle.ts).
      scope: 'service',
      body: { maxBytes: MAX_CREATE_BUCKET_BODY_BYTES, objectData: false },
      prepare: async ({ request, coffer, principal }) => {
        const plan = planBody(deps, request);
        return { plan, prepared: await prepareCreateBucket(deps, coffer, principal) };
      },
      run: async ({ plan, prepared }, body, { request, coffer, principal }) => {
        checkCreateBucketConfiguration(await readBodyCapped(decoded(body, plan), MAX_CREATE_BUCKET_BODY_BYTES), deps.region);
        const generation = await createBucket(deps, prepared, coffer, principal);
        request.log.info({ coffer, principal: principal.id, generation }, 'coffer created');
        return { kind: 'empty', status: 200, headers: { 'content-length': 0, location: `/${coffer}` } };
      },
    }),

    DeleteBucket: operation<Of<'DeleteBucket'>, unknown>({
      action: S3_OPERATION_ACTIONS.DeleteBucket,
      scope: 'coffer',
      prepare: async (call) => {
        if (deps.coffers.isConfigured(call.coffer))
          throw new GatewayError('AccessDenied', 'This bucket is a coffer configured on this gateway; it cannot be deleted through the API (remove it from the configuration).', { reason: 'configured-coffer' });
        return cdcs.DeleteCoffer.prepare(call as never);
      },
      // As DELETE Coffer: BucketNotEmpty (live objects or open uploads), else the registration and everything under the coffer go; 204.
      run: async (prepared, body, call) => cdcs.DeleteCoffer.run(prepared, body, call as never),
    }),

    GetBucketLocation: operation<Of<'GetBucketLocation'>, undefined>({
      action: S3_OPERATION_ACTIONS.GetBucketLocation,
      scope: 'coffer',
      prepare: async () => undefined,
      // S3 answers an empty LocationConstraint for us-east-1 (clients read it as us-east-1).
      run: async () => ({ kind: 'document', status: 200, result: { kind: 'S3', root: 'LocationConstraint', body: { '#text': deps.region === 'us-east-1' ? '' : deps.region } } }),
    }),

    ListObjects: cdcs.GetCoffer as unknown as OperationTable<S3Operation>['ListObjects'],

    ListObjectsV2: operation<Of<'ListObjectsV2'>, undefined>({
      action: S3_OPERATION_ACTIONS.ListObjectsV2,
      scope: 'coffer',
      prepare: async () => undefined,
      run: async (_prepared, _body, { request, context, coffer, principal }) => {
        const { target } = request;
        const maxKeys = Math.min(numberParam(target, 'max-keys', 1000), 1000);
        const prefix = queryValue(target, 'prefix') ?? '';
        const delimiter = queryValue(target, 'delimiter') || undefined;
        const token = queryValue(target, 'continuation-token') ?? undefined;
        const startAfter = queryValue(target, 'start-after') ?? undefined;
        const encodingType = queryValue(target, 'encoding-type');
        if (encodingType !== undefined && encodingType !== null && encodingType !== '' && encodingType !== 'url') throw new GatewayError('InvalidArgument', 'encoding-type must be "url".');
        const fetchOwner = queryValue(target, 'fetch-owner') === 'true';
        const marker = token !== undefined && token !== null && token !== '' ? markerOfToken(token) : (startAfter ?? '');
        const page = await objects.list(context, { prefix, delimiter, marker, maxKeys });
        reportDamaged(page, request, deps.metrics);
        const url = encodingType === 'url';
        const encode = (value: string): string => (url ? encodeURIComponent(value) : value);
        const last = page.nextMarker ?? page.objects.at(-1)?.key ?? page.commonPrefixes.at(-1);
        const body: Record<string, unknown> = {
          Name: coffer,
          Prefix: encode(prefix),
          ...(delimiter === undefined ? {} : { Delimiter: encode(delimiter) }),
          MaxKeys: maxKeys,
          KeyCount: page.objects.length + page.commonPrefixes.length,
          IsTruncated: page.isTruncated ? 'true' : 'false',
          ...(token === undefined || token === null ? {} : { ContinuationToken: token }),
          ...(page.isTruncated && last !== undefined ? { NextContinuationToken: tokenOf(last) } : {}),
          ...(startAfter === undefined || startAfter === null ? {} : { StartAfter: encode(startAfter) }),
          ...(url ? { EncodingType: 'url' } : {}),
          Contents: page.objects.map((object) => ({
            Key: encode(object.key),
            LastModified: object.lastModified.toISOString(),
            ETag: object.etag,
            Size: object.size,
            ...(fetchOwner ? { Owner: { ID: principal.id, DisplayName: principal.id } } : {}),
            StorageClass: 'STANDARD',
          })),
          CommonPrefixes: page.commonPrefixes.map((prefix_) => ({ Prefix: encode(prefix_) })),
        };
        return { kind: 'document', status: 200, result: { kind: 'S3', root: 'ListBucketResult', body } };
      },
    }),

    CreateMultipartUpload: operation<Of<'CreateMultipartUpload'>, { contentType: string | undefined; metadata: Record<string, string>; checksum?: { algorithm: ChecksumAlgorithm; type: ChecksumType } }>({
      action: S3_OPERATION_ACTIONS.CreateMultipartUpload,
      scope: 'coffer',
      prepare: async ({ request }) => {
        const contentType = headerValue(request.headers, 'content-type');
        const metadata = userMetadata(request.headers, 'x-amz-meta-');
        checkUserMetadata(contentType, metadata);
        const checksum = uploadChecksum(request.headers);
        return { contentType, metadata, ...(checksum === undefined ? {} : { checksum }) };
      },
      run: async (attributes, _body, { context, coffer, key }) => {
        const record = await service.initiate(context, key, attributes);
        const headers: Record<string, string> = record.checksum === undefined ? {} : { 'x-amz-checksum-algorithm': record.checksum.algorithm, 'x-amz-checksum-type': record.checksum.type };
        return { kind: 'document', status: 200, result: { kind: 'InitiateMultipartUpload', coffer, key, uploadId: record.uploadId }, headers };
      },
    }),

    ListParts: operation<Of<'ListParts'>, undefined>({
      action: S3_OPERATION_ACTIONS.ListParts,
      scope: 'coffer',
      prepare: async () => undefined,
      run: async (_prepared, _body, { request, context, coffer, key, principal, operation: { uploadId } }) => {
        const maxParts = Math.min(numberParam(request.target, 'max-parts', 1000), 1000);
        const marker = numberParam(request.target, 'part-number-marker', 0);
        const listed = await service.listParts(context, key, uploadId, { maxParts, partNumberMarker: marker });
        return { kind: 'document', status: 200, result: { kind: 'S3', root: 'ListPartsResult', body: listPartsBody({ coffer, key, uploadId, maxParts, marker, initiator: principal.id, ...listed }) } };
      },
    }),

    UploadPart: operation<Of<'UploadPart'>, { plan: S3RequestBody; part: PreparedPart; copy?: { source: CopySource; start: number; end: number } }>({
      action: S3_OPERATION_ACTIONS.UploadPart,
      scope: 'coffer',
      body: OBJECT_BODY,
      prepare: async ({ request, context, key, principal, operation: { uploadId, partNumber } }) => {
        const plan = planBody(deps, request);
        const rawSource = headerValue(request.headers, 'x-amz-copy-source');
        if (rawSource === undefined) return { plan, part: await service.prepareUploadPart(context, key, uploadId, partNumber, plan.size, contentMd5(request.headers), plan.algorithm) };
        // UploadPartCopy: the source (grant, policy, conditions), the range and the upload are all
        // settled here, before a byte of the part is written; the part is then the source's
        // plaintext, streamed through the same part path as an UploadPart body (copy-source.ts).
        const source = await openCopySource(deps, request, principal, rawSource);
        try {
          const { start, end } = copySourceRange(headerValue(request.headers, 'x-amz-copy-source-range'), source.head.manifest.plaintextSize);
          if (end - start > MAX_PART_PLAINTEXT) {
            throw new GatewayError('InvalidRequest', `The specified copy source is larger than the maximum allowable size for a copy source: ${MAX_PART_PLAINTEXT}`, { reason: 'copy-too-large' });
          }
          const part = await service.prepareUploadPart(context, key, uploadId, partNumber, end - start);
          return { plan, part, copy: { source, start, end } };
        } catch (error) {
          source.head.dataKey.dispose();
          throw error;
        }
      },
      run: async ({ plan, part, copy }, body) => {
        deps.metrics?.inFlightParts.inc();
        const timer = deps.metrics?.partSeconds.startTimer({ storage: part.storage });
        try {
          if (copy !== undefined) {
            // A copy has no request body to store (any sent is verified and discarded).
            if (body !== undefined) await readBodyCapped(decoded(body, plan), 0);
            const { source, start, end } = copy;
            const plaintext = end > start ? Readable.from(objects.read(source.context, source.key, source.head, start, end - 1)) : Readable.from([]);
            // The part's checksum, when the upload declared an algorithm, is computed over the copied plaintext.
            const { etag, checksum } = await service.storePart(part, plaintext);
            return { kind: 'document', status: 200, result: { kind: 'S3', root: 'CopyPartResult', body: { LastModified: new Date().toISOString(), ETag: etag, ...checksumElements(checksum) } } };
          }
          const { etag, checksum } = await service.storePart(part, decoded(body, plan), undefined, () => plan.checksum());
          return { kind: 'empty', status: 200, headers: { etag, 'content-length': 0, ...(checksum === undefined ? {} : { [checksumHeader(checksum.algorithm)]: checksum.value }) } };
        } finally {
          deps.metrics?.inFlightParts.dec();
          timer?.();
        }
      },
      release: ({ part, copy }) => {
        part.dataKey.dispose();
        part.slot.release();
        copy?.source.head.dataKey.dispose();
      },
    }),

    CompleteMultipartUpload: operation<Of<'CompleteMultipartUpload'>, { plan: S3RequestBody; options: CompletionOptions }>({
      action: S3_OPERATION_ACTIONS.CompleteMultipartUpload,
      scope: 'coffer',
      body: { objectData: false },
      prepare: async (call) => {
        // An `x-amz-checksum-<algorithm>` header on Complete is the whole object's checksum, not the XML body's:
        // it is checked against the parts (multipart-service.ts), and the body plan never sees it.
        const headers = call.request.headers;
        const objectChecksum = CHECKSUM_ALGORITHMS.some((algorithm) => headerValue(headers, checksumHeader(algorithm)) !== undefined) ? assertedObjectChecksum(headers) : undefined;
        const plan = planS3RequestBody({ headers: withoutChecksumHeaders(headers) }, deps.payloadOf(call.request), call.request.framing.kind === 'length' ? call.request.framing.length : undefined);
        await cdcs.CompleteMultipartUpload.prepare(call as never);
        return { plan, options: objectChecksum === undefined ? {} : { objectChecksum } };
      },
      // The XML body is verified against the signed SHA-256 as it is read, then Complete runs as in CDCS.
      run: async ({ plan, options }, body, call) => cdcs.CompleteMultipartUpload.run(options, decoded(body, plan), call as never),
    }),

    PutObject: operation<Of<'PutObject'>, { plan: S3RequestBody; put: Awaited<ReturnType<ObjectService['preparePut']>>; source?: CopySource; tap?: ChecksumTap }>({
      action: S3_OPERATION_ACTIONS.PutObject,
      scope: 'coffer',
      body: OBJECT_BODY,
      // The size (decoded for aws-chunked), write-once and the data key are settled before the body.
      prepare: async ({ request, context, key, principal }) => {
        const rawSource = headerValue(request.headers, 'x-amz-copy-source');
        if (rawSource !== undefined) {
          // CopyObject: the source is decrypted and re-encrypted under a new data key bound to the
          // target's coffer and key (the encryption context names both), streaming; reading the source
          // needs `read` on its coffer and no deny in its policy, exactly as a GET would (copy-source.ts).
          if (headerValue(request.headers, 'x-amz-copy-source-range') !== undefined) {
            throw new GatewayError('InvalidArgument', 'x-amz-copy-source-range applies to UploadPartCopy only; CopyObject copies the whole object.', { reason: 'copy-range' });
          }
          const source = await openCopySource(deps, request, principal, rawSource);
          const head = source.head;
          try {
            const replace = headerValue(request.headers, 'x-amz-metadata-directive')?.toUpperCase() === 'REPLACE';
            const attributes = head.manifest.attributes;
            const contentType = replace ? headerValue(request.headers, 'content-type') : attributes.contentType;
            // The copy keeps a checksum as S3 does: of the algorithm asked for (x-amz-checksum-algorithm), else
            // the source's, computed over the copied plaintext (a whole-object checksum: the copy is one part).
            const algorithm = requestedChecksumAlgorithm(request.headers) ?? attributes.checksum?.algorithm;
            const tap = algorithm === undefined ? undefined : new ChecksumTap(algorithm);
            // Planned before preparePut: nothing may throw between taking the data key and slot and handing them to release.
            const plan = planBody(deps, request);
            const put = await objects.preparePut(context, key, head.manifest.plaintextSize, {
              ...(contentType === undefined ? {} : { contentType }),
              metadata: replace ? userMetadata(request.headers, 'x-amz-meta-') : { ...attributes.metadata },
              ...(tap === undefined ? {} : { checksum: () => (tap.value === undefined ? undefined : { algorithm: tap.algorithm, value: tap.value }) }),
            });
            return { plan, put, source, ...(tap === undefined ? {} : { tap }) };
          } catch (error) {
            head.dataKey.dispose();
            throw error;
          }
        }
        const plan = planBody(deps, request);
        if (plan.size > MAX_PART_PLAINTEXT) throw new GatewayError('EntityTooLarge', `A PutObject body may hold at most ${MAX_PART_PLAINTEXT} bytes; use a multipart upload.`);
        const put = await objects.preparePut(context, key, plan.size, {
          contentMd5: contentMd5(request.headers),
          contentType: headerValue(request.headers, 'content-type'),
          metadata: userMetadata(request.headers, 'x-amz-meta-'),
          checksum: () => plan.checksum(),
        });
        return { plan, put };
      },
      run: async ({ plan, put, source, tap }, body) => {
        if (source !== undefined) {
          // A copy has no request body to store (any sent is verified and discarded).
          if (body !== undefined) await readBodyCapped(decoded(body, plan), 0);
          const plaintext = Readable.from(objects.read(source.context, source.key, source.head));
          const { etag } = await objects.put(put, tap === undefined ? plaintext : pipeline(plaintext, tap, () => undefined));
          const checksum = tap?.value === undefined ? {} : { ...checksumElements({ algorithm: tap.algorithm, value: tap.value }), ChecksumType: 'FULL_OBJECT' };
          return { kind: 'document', status: 200, result: { kind: 'S3', root: 'CopyObjectResult', body: { LastModified: new Date().toISOString(), ETag: etag, ...checksum } } };
        }
        const { etag } = await objects.put(put, decoded(body, plan));
        return { kind: 'empty', status: 200, headers: { etag, 'content-length': 0, ...checksumHeaders(plan) } };
      },
      release: ({ put, source }) => {
        put.dataKey.dispose();
        put.slot.release();
        source?.head.dataKey.dispose();
      },
    }),

    GetObject: readObject,
    HeadObject: readObject,

    // The object's tags: this gateway stores none, so an existing object has an empty tag set (aws-cli's
    // s3→s3 multipart copy reads the source's tags to copy them; with none it copies none).
    GetObjectTagging: operation<Of<'GetObjectTagging'>, ObjectHead>({
      action: S3_OPERATION_ACTIONS.GetObjectTagging,
      scope: 'coffer',
      prepare: ({ context, key }) => objects.head(context, key),
      run: async () => ({ kind: 'document', status: 200, result: { kind: 'S3', root: 'Tagging', body: { TagSet: '' } } }),
      release: (head) => head.dataKey.dispose(),
    }),

    DeleteObject: operation<Of<'DeleteObject'>, undefined>({
      action: S3_OPERATION_ACTIONS.DeleteObject,
      scope: 'coffer',
      // A write-once coffer refuses before anything is touched.
      prepare: async ({ context }) => refuseWriteOnce(context),
      run: async (_prepared, _body, { context, key }) => {
        await objects.delete(context, key);
        return { kind: 'empty', status: 204 };
      },
    }),

    DeleteObjects: operation<Of<'DeleteObjects'>, S3RequestBody>({
      action: S3_OPERATION_ACTIONS.DeleteObjects,
      scope: 'coffer',
      body: { maxBytes: MAX_XML_BODY_BYTES, objectData: false },
      prepare: async ({ request, context }) => {
        refuseWriteOnce(context);
        return planBody(deps, request);
      },
      run: async (plan, body, { context }) => {
        const request = parseDeleteObjects(await readBodyCapped(decoded(body, plan)));
        const deleted: Array<Record<string, unknown>> = [];
        const errors: Array<Record<string, unknown>> = [];
        for (const key of request.keys) {
          try {
            await objects.delete(context, key);
            if (!request.quiet) deleted.push({ Key: key });
          } catch (error) {
            if (!(error instanceof GatewayError)) throw error;
            errors.push({ Key: key, Code: error.code, Message: error.message });
          }
        }
        return { kind: 'document', status: 200, result: { kind: 'S3', root: 'DeleteResult', body: { Deleted: deleted, Error: errors } } };
      },
    }),
  };
}

function refuseWriteOnce(context: CofferContext): undefined {
  if (!isMutable(context)) {
    throw new GatewayError('AccessDenied', 'This bucket is write-once: objects cannot be deleted (they expire through lifecycle rules). Use a bucket with writeOnce: false.', { reason: 'write-once' });
  }
  return undefined;
}

/**
 * `x-amz-checksum-mode: ENABLED` on a whole-object GET/HEAD: the checksum stored (authenticated) in
 * the manifest. Not for ranges: it covers the whole object, and SDKs check it against the bytes they
 * receive.
 */
function storedChecksumHeaders(headers: RequestHeaders, head: ObjectHead): Record<string, string> {
  const checksum = head.manifest.attributes.checksum;
  if (checksum === undefined || headerValue(headers, 'x-amz-checksum-mode')?.toUpperCase() !== 'ENABLED' || headerValue(headers, 'range') !== undefined) return {};
  return { [checksumHeader(checksum.algorithm)]: checksum.value, 'x-amz-checksum-type': checksum.type ?? 'FULL_OBJECT' };
}

/** The verified checksum echoed as S3 does on a write. */
function checksumHeaders(plan: S3RequestBody): Record<string, string> {
  const checksum = plan.checksum();
  return checksum === undefined ? {} : { [checksumHeader(checksum.algorithm)]: checksum.value };
}

/**
 * CreateMultipartUpload's `x-amz-checksum-algorithm` and `x-amz-checksum-type`, checked as S3 checks
 * them: a type needs an algorithm, and the pair must be one S3 allows (object-checksum.ts); no type
 * means S3's default for the algorithm.
 */
function uploadChecksum(headers: RequestHeaders): { algorithm: ChecksumAlgorithm; type: ChecksumType } | undefined {
  const algorithm = requestedChecksumAlgorithm(headers);
  const rawType = headerValue(headers, 'x-amz-checksum-type');
  if (algorithm === undefined) {
    if (rawType !== undefined) throw new GatewayError('InvalidRequest', 'The x-amz-checksum-type header can only be used with the x-amz-checksum-algorithm header.', { reason: 'checksum-type' });
    return undefined;
  }
  const type = rawType === undefined ? defaultChecksumType(algorithm) : rawType.toUpperCase();
  if (type !== 'COMPOSITE' && type !== 'FULL_OBJECT') throw new GatewayError('InvalidRequest', `Checksum type "${rawType}" is not supported.`, { reason: 'checksum-type' });
  if (!isAllowedChecksumType(algorithm, type)) throw new GatewayError('InvalidRequest', `The ${type} checksum type cannot be used with the ${algorithm.toLowerCase()} checksum algorithm.`, { reason: 'checksum-type' });
  return { algorithm, type };
}

/** `<ChecksumCRC32>…</ChecksumCRC32>` and the like, as S3 renders a checksum in a result document. */
function checksumElements(checksum: { readonly algorithm: ChecksumAlgorithm; readonly value: string } | undefined): Record<string, string> {
  return checksum === undefined ? {} : { [`Checksum${checksum.algorithm}`]: checksum.value };
}

/** ListPartsResult with S3's checksum fields (the upload's algorithm and type, each part's checksum). */
function listPartsBody(input: {
  coffer: string;
  key: string;
  uploadId: string;
  maxParts: number;
  marker: number;
  initiator: string;
  record: UploadRecord;
  parts: readonly PartSummary[];
  isTruncated: boolean;
  nextPartNumberMarker?: number;
}): Record<string, unknown> {
  const owner = { ID: input.initiator, DisplayName: input.initiator };
  return {
    Bucket: input.coffer,
    Key: input.key,
    UploadId: input.uploadId,
    Initiator: owner,
    Owner: owner,
    StorageClass: 'STANDARD',
    PartNumberMarker: input.marker,
    NextPartNumberMarker: input.nextPartNumberMarker ?? input.marker,
    MaxParts: input.maxParts,
    IsTruncated: input.isTruncated ? 'true' : 'false',
    ...(input.record.checksum === undefined ? {} : { ChecksumAlgorithm: input.record.checksum.algorithm, ChecksumType: input.record.checksum.type }),
    Part: input.parts.map((part) => ({ PartNumber: part.partNumber, LastModified: part.lastModified.toISOString(), ETag: part.etag, Size: part.size, ...checksumElements(part.checksum) })),
  };
}

/** The request's headers without any `x-amz-checksum-<algorithm>`. */
function withoutChecksumHeaders(headers: RequestHeaders): RequestHeaders {
  const algorithms = new Set(CHECKSUM_ALGORITHMS.map((algorithm) => checksumHeader(algorithm)));
  return new Map([...headers].filter(([name]) => !algorithms.has(name)));
}

/** The one `x-amz-checksum-<algorithm>` header of a Complete: base64 of the digest, optionally `-<parts>` (COMPOSITE). */
function assertedObjectChecksum(headers: RequestHeaders): { algorithm: ChecksumAlgorithm; value: string } {
  const present = CHECKSUM_ALGORITHMS.filter((algorithm) => headerValue(headers, checksumHeader(algorithm)) !== undefined);
  const algorithm = present[0];
  const value = algorithm === undefined ? undefined : headerValue(headers, checksumHeader(algorithm));
  if (present.length !== 1 || algorithm === undefined || value === undefined || !isChecksumValue(algorithm, value.replace(/-\d+$/, ''))) {
    throw new GatewayError('InvalidRequest', 'Expecting a single, valid x-amz-checksum- header.', { reason: 'checksum-format' });
  }
  return { algorithm, value };
}

/** `x-amz-checksum-algorithm` (CreateMultipartUpload, CopyObject): the algorithm asked for (validated), or undefined. */
function requestedChecksumAlgorithm(headers: RequestHeaders): ChecksumAlgorithm | undefined {
  const raw = headerValue(headers, 'x-amz-checksum-algorithm');
  if (raw === undefined) return undefined;
  const algorithm = CHECKSUM_ALGORITHMS.find((candidate) => candidate === raw.toUpperCase());
  if (algorithm === undefined) throw new GatewayError('InvalidRequest', `Checksum algorithm "${raw}" is not supported.`, { reason: 'checksum-algorithm' });
  return algorithm;
}
