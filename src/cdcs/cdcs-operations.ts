/**
 * The CDCS operations table (src/operations/operation-table.ts): per operation, what `prepare`
 * decides before the body and what `run` does with it. The router (route.ts) has already checked the
 * operation's query parameters; authentication, authorization, the coffer context and the role are
 * done by the pipeline (src/operations/run-operation.ts) before `prepare`.
 */
import { isAllowed } from '../auth/authorize';
import { ACTIONS, type Principal } from '../auth/principal';
import { GatewayError } from '../errors/gateway-error';
import { MAX_PART_PLAINTEXT } from '../format/part-format';
import { evaluatePreconditions, rangeApplies, type ConditionalHeaders } from '../http/conditional-request';
import { decideRange } from '../http/range-header';
import type { GatewayMetrics } from '../observability/metrics';
import { operation, type Answer, type AnswerHeaders, type OperationTable } from '../operations/operation-table';
import type { GatewayRequest } from '../server/gateway-exchange';
import { headerValue, type RequestHeaders } from '../server/request-headers';
import { contentMd5, numberParam, queryValue, userMetadata } from '../http/request-fields';
import type { CofferContext } from '../store/coffer-context';
import type { CompletionOptions, MultipartService } from '../store/multipart-service';
import { checkUserMetadata, type ObjectHead, type ObjectService } from '../store/object-service';
import { RESPONSE_OVERRIDES } from './query-parameters';
import type { RequestTarget } from './request-target';
import type { Operation, OperationName } from './route';
import { OPERATION_ACTIONS } from './route';
import { parseCompleteMultipartUpload, readBodyCapped } from './xml';
import { MAX_LIFECYCLE_BODY_BYTES, parseLifecycleDocument, renderLifecycleDocument } from './lifecycle-document';
import type { CofferLifecycle } from '../store/coffer-lifecycle';
import type { CofferPolicies } from '../store/coffer-policies';
import { MAX_POLICY_BYTES, parseCofferPolicy } from '../auth/coffer-policy';
import { createHash } from 'node:crypto';

export interface CofferDirectory {
  /** Every coffer this gateway serves — configured and created — for GetService (which then keeps those the principal may use). */
  list(principal: Principal): Promise<ReadonlyArray<{ readonly name: string; readonly location: string; readonly created: Date; readonly configured: boolean }>>;
  /** Whether the coffer is configured (static): those cannot be deleted or created. */
  isConfigured(coffer: string): boolean;
}

/** Creating and deleting coffers within the configured coffer classes (app/coffer-classes.ts). */
export interface CofferCreation {
  /** The one class admitting the name (InvalidCofferName otherwise): its name and who may create in it. */
  classOf(coffer: string): { readonly name: string; readonly creators: readonly string[] };
  /** Records the coffer (CofferAlreadyExists when it exists); `creatorPrincipals` non-empty: the new coffer's policy allows them everything. */
  create(coffer: string, principal: Principal, creatorPrincipals: readonly string[]): Promise<{ readonly generation: string }>;
  /** Removes an empty created coffer: its registration, bucket lifecycle rules, records and leftovers. */
  remove(context: CofferContext, principal: Principal): Promise<void>;
}

/** PUT Coffer's body is optional; the class decides location and encryption, so a body is refused (below) — this caps what is read of it. */
const MAX_PUT_COFFER_BODY_BYTES = 64 * 1024;

export interface CdcsOperationsDependencies {
  readonly coffers: CofferDirectory;
  /** PUT Coffer / DELETE Coffer; absent (no coffer classes configured): those answer NotImplemented. */
  readonly creation?: CofferCreation;
  readonly service: MultipartService;
  readonly objects: ObjectService;
  /** Coffer lifecycle (PutCofferLifecycle / GetCofferLifecycle); absent: those answer NotImplemented. */
  readonly lifecycle?: CofferLifecycle;
  /** Coffer policies (Put/Get/DeleteCofferPolicy); absent: those answer NotImplemented. */
  readonly policies?: CofferPolicies;
  /** GetService also lists coffers whose policy allows the caller something (callers mapped to a principal only). */
  readonly policyListing?: {
    principalsOf(principal: Principal): readonly string[];
    mayUse(coffer: string, principal: Principal, principals: readonly string[]): Promise<boolean>;
  };
  /** Operation-specific measurements (parts in flight, part time, Complete's copies); requests and bytes are counted by the audit wrapper. */
  readonly metrics?: GatewayMetrics;
}

type Of<Name extends OperationName> = Extract<Operation, { readonly name: Name }>;

/** The PUT's declared length (the listener has already refused a PUT without a valid Content-Length: 411/400). */
function contentLengthOf(request: GatewayRequest): number {
  if (request.framing.kind !== 'length') throw new GatewayError('MissingContentLength');
  return request.framing.length;
}

function conditionalHeaders(headers: RequestHeaders): ConditionalHeaders {
  return {
    ifMatch: headerValue(headers, 'if-match'),
    ifNoneMatch: headerValue(headers, 'if-none-match'),
    ifModifiedSince: headerValue(headers, 'if-modified-since'),
    ifUnmodifiedSince: headerValue(headers, 'if-unmodified-since'),
    ifRange: headerValue(headers, 'if-range'),
  };
}

/**
 * The `response-*` parameters of GetObject/HeadObject (S3, COS): they replace the stored header in
 * this answer. Every parameter the router accepts is acted on (query-parameters.ts). A value must
 * be printable ASCII: it becomes a header verbatim.
 */
function responseOverrides(target: RequestTarget): Record<string, string> {
  const overrides: Record<string, string> = {};
  for (const [parameter, header] of Object.entries(RESPONSE_OVERRIDES)) {
    const value = queryValue(target, parameter);
    if (value === undefined || value === null) continue;
    if (!/^[\t\x20-\x7e]*$/.test(value)) throw new GatewayError('InvalidArgument', `${parameter} must be printable ASCII.`);
    overrides[header] = value;
  }
  return overrides;
}

async function* resume(first: IteratorResult<Buffer>, rest: AsyncGenerator<Buffer>): AsyncGenerator<Buffer> {
  if (first.done === true) return;
  yield first.value;
  yield* rest;
}

/**
 * HEAD/GET of an object: preconditions, then the range, then the body. The first verified chunk is
 * read before the answer is returned (so before the status line), so a missing data object or a
 * first segment that fails authentication is a proper XML error rather than a 200 cut short.
 */
export async function objectAnswer(
  objects: ObjectService,
  request: GatewayRequest<{ readonly name: 'GetObject' | 'HeadObject' }>,
  context: CofferContext,
  key: string,
  head: ObjectHead,
  // The S3 dialect answers user metadata as x-amz-meta-* and may add headers (x-amz-checksum-*).
  dialect: { readonly metadataPrefix: string; readonly headers?: Readonly<Record<string, string>> } = { metadataPrefix: 'x-cos-meta-' },
): Promise<Answer> {
  const size = head.manifest.plaintextSize;
  const validators = { etag: head.etag, lastModified: head.lastModified };
  const headers: Record<string, string | number> = {
    etag: head.etag,
    'last-modified': head.lastModified.toUTCString(),
    'content-type': head.manifest.attributes.contentType ?? 'application/octet-stream',
    'accept-ranges': 'bytes',
  };
  for (const [name, value] of Object.entries(head.manifest.attributes.metadata)) headers[`${dialect.metadataPrefix}${name}`] = value;
  Object.assign(headers, dialect.headers ?? {});
  Object.assign(headers, responseOverrides(request.target));
  const conditions = conditionalHeaders(request.headers);
  const outcome = evaluatePreconditions(conditions, validators);
  if (outcome === 'failed') throw new GatewayError('PreconditionFailed');
  if (outcome === 'not-modified') return { kind: 'empty', status: 304, headers: { etag: head.etag, 'last-modified': headers['last-modified'] as string } };
  if (request.operation.name === 'HeadObject') return { kind: 'empty', status: 200, headers: { ...headers, 'content-length': size } };
  const range = rangeApplies(conditions, validators) ? decideRange(headerValue(request.headers, 'range'), size) : ({ kind: 'whole' } as const);
  // A 416 carries `Content-Range: bytes */<size>` (RFC 9110 §15.5.17).
  if (range.kind === 'unsatisfiable') throw new GatewayError('InvalidRange', undefined, { headers: { 'content-range': `bytes */${size}` } });
  const [start, end] = range.kind === 'partial' ? [range.start, range.end] : [0, size - 1];
  const status = range.kind === 'partial' ? 206 : 200;
  const partialHeaders: AnswerHeaders = status === 206 ? { 'content-range': `bytes ${start}-${end}/${size}` } : {};
  if (size === 0) return { kind: 'empty', status, headers: { ...headers, 'content-length': 0 } };
  const chunks = objects.read(context, key, head, start, end);
  const first = await chunks.next();
  return { kind: 'object', status, headers: { ...headers, 'content-length': end - start + 1, ...partialHeaders }, chunks: resume(first, chunks) };
}

const noBody = async (): Promise<undefined> => undefined;

function policiesOf(deps: CdcsOperationsDependencies): CofferPolicies {
  if (deps.policies === undefined) throw new GatewayError('NotImplemented', 'This gateway has no coffer policy support configured.');
  return deps.policies;
}

function jsonAnswer(text: string): Answer {
  const bytes = Buffer.from(text, 'utf8');
  return {
    kind: 'object',
    status: 200,
    headers: { 'content-type': 'application/json', 'content-length': bytes.length },
    chunks: (async function* () {
      yield bytes;
    })(),
  };
}

/**
 * Who may create `coffer` (PUT Coffer, S3 CreateBucket): the one class admitting the name
 * (InvalidCofferName otherwise), then a creator of that class or a caller with a "*" grant
 * (AccessDenied otherwise). Returns the creator's principals, whom the new coffer's policy will allow.
 */
export function creatorPrincipalsFor(deps: Pick<CdcsOperationsDependencies, 'policyListing'>, creation: CofferCreation, coffer: string, principal: Principal): readonly string[] {
  const cofferClass = creation.classOf(coffer);
  const principals = deps.policyListing?.principalsOf(principal) ?? [];
  const creator = principals.some((p) => cofferClass.creators.includes(p));
  // `manage` on a name no configured coffer has can only come from a "*" grant.
  if (!creator && !isAllowed(principal.grants, coffer, 'manage')) throw new GatewayError('AccessDenied', 'The credentials do not allow creating coffers in this coffer class.', { reason: 'not-a-creator' });
  return creator ? principals : [];
}

/**
 * A listing's damaged entries (listed, never hidden: a GET of them fails too) are integrity failures:
 * counted in `coffer_gateway_integrity_failures_total{reason}` and logged — for every listing of
 * either dialect (GetCoffer / ListObjects, ListObjectsV2).
 */
export function reportDamaged(page: { readonly objects: ReadonlyArray<{ readonly key: string; readonly damaged?: boolean; readonly damagedReason?: string }> }, request: GatewayRequest, metrics: GatewayMetrics | undefined): void {
  for (const damaged of page.objects.filter((o) => o.damaged === true)) {
    const reason = damaged.damagedReason ?? 'malformed';
    metrics?.integrityFailures.inc({ reason });
    request.log.error({ operation: request.operation.name, key: damaged.key, reason }, 'listed manifest failed its integrity check');
  }
}

export function creationOf(deps: Pick<CdcsOperationsDependencies, 'creation'>): CofferCreation {
  if (deps.creation === undefined) throw new GatewayError('NotImplemented', 'This gateway has no coffer classes configured, so coffers cannot be created or deleted through the API.', { reason: 'no-coffer-classes' });
  return deps.creation;
}

/** Whether a created coffer still holds a live object (expired ones are gone: CDCS deletes a coffer once every object has expired). */
async function hasLiveObject(objects: ObjectService, context: CofferContext): Promise<boolean> {
  let marker = '';
  for (;;) {
    const page = await objects.list(context, { prefix: '', marker, maxKeys: 1000 });
    if (page.objects.length > 0 || page.commonPrefixes.length > 0) return true;
    if (!page.isTruncated || page.nextMarker === undefined) return false;
    marker = page.nextMarker;
  }
}

function lifecycleOf(deps: CdcsOperationsDependencies): CofferLifecycle {
  if (deps.lifecycle === undefined) throw new GatewayError('NotImplemented', 'This gateway has no coffer lifecycle support configured.');
  return deps.lifecycle;
}

export function createCdcsOperations(deps: CdcsOperationsDependencies): OperationTable<Operation> {
  const { service, objects, metrics } = deps;
  const readObject = operation<Of<'GetObject'> | Of<'HeadObject'>, ObjectHead>({
    action: 'read',
    scope: 'coffer',
    objectDataOut: true,
    prepare: ({ context, key }) => objects.head(context, key),
    run: (head, _body, { request, context, key }) => objectAnswer(objects, request, context, key, head),
    release: (head) => head.dataKey.dispose(),
  });
  return {
    GetService: operation<Of<'GetService'>, undefined>({
      action: OPERATION_ACTIONS.GetService,
      scope: 'service',
      prepare: noBody,
      // The answer lists only the coffers the principal may use for anything: by a grant, or by the coffer's policy.
      run: async (_prepared, _body, { principal, request }) => {
        const principals = deps.policyListing?.principalsOf(principal) ?? [];
        const all = await deps.coffers.list(principal);
        const listed = await Promise.all(
          all.map(async (coffer) => {
            if (ACTIONS.some((action) => isAllowed(principal.grants, coffer.name, action))) return true;
            if (deps.policyListing === undefined || principals.length === 0) return false;
            // One coffer that cannot be read (upstream down, a record that fails authentication) is left out, not the whole answer.
            return deps.policyListing.mayUse(coffer.name, principal, principals).catch((error: unknown) => {
              request.log.warn({ coffer: coffer.name, err: error instanceof Error ? error.message : String(error) }, 'GetService: the coffer policy could not be read; coffer not listed');
              return false;
            });
          }),
        );
        const coffers = all.filter((_coffer, index) => listed[index] === true).map(({ name, location, created }) => ({ name, location, created }));
        return { kind: 'document', status: 200, result: { kind: 'ListCoffers', owner: principal.id, coffers } };
      },
    }),

    GetCoffer: operation<Of<'GetCoffer'>, undefined>({
      action: OPERATION_ACTIONS.GetCoffer,
      scope: 'coffer',
      prepare: noBody,
      run: async (_prepared, _body, { request, context, coffer, principal }) => {
        const { target } = request;
        const maxKeys = Math.min(numberParam(target, 'max-keys', 1000), 1000);
        const prefix = queryValue(target, 'prefix') ?? '';
        const delimiter = queryValue(target, 'delimiter') || undefined;
        const marker = queryValue(target, 'marker') ?? '';
        const encodingType = queryValue(target, 'encoding-type');
        if (encodingType !== undefined && encodingType !== null && encodingType !== '' && encodingType !== 'url') throw new GatewayError('InvalidArgument', 'encoding-type must be "url".');
        const page = await objects.list(context, { prefix, delimiter, marker, maxKeys });
        reportDamaged(page, request, metrics);
        return { kind: 'document', status: 200, result: { kind: 'ListObjects', coffer, prefix, delimiter, marker, maxKeys, encodingType: encodingType === 'url' ? 'url' : undefined, ...page, owner: principal.id } };
      },
    }),

    ListMultipartUploads: operation<Of<'ListMultipartUploads'>, undefined>({
      action: OPERATION_ACTIONS.ListMultipartUploads,
      scope: 'coffer',
      prepare: noBody,
      run: async (_prepared, _body, { request, context, coffer }) => {
        const { target } = request;
        const maxUploads = Math.min(numberParam(target, 'max-uploads', 1000), 1000);
        const prefix = queryValue(target, 'prefix') ?? '';
        const keyMarker = queryValue(target, 'key-marker') ?? '';
        const uploadIdMarker = queryValue(target, 'upload-id-marker') ?? '';
        const listed = await service.listUploads(context, { prefix, keyMarker: keyMarker || undefined, uploadIdMarker: uploadIdMarker || undefined, maxUploads });
        return { kind: 'document', status: 200, result: { kind: 'ListMultipartUploads', coffer, prefix, keyMarker, uploadIdMarker, maxUploads, ...listed } };
      },
    }),

    InitiateMultipartUpload: operation<Of<'InitiateMultipartUpload'>, { contentType: string | undefined; metadata: Record<string, string> }>({
      action: OPERATION_ACTIONS.InitiateMultipartUpload,
      scope: 'coffer',
      prepare: async ({ request }) => {
        const contentType = headerValue(request.headers, 'content-type');
        const metadata = userMetadata(request.headers, 'x-cos-meta-');
        checkUserMetadata(contentType, metadata);
        return { contentType, metadata };
      },
      run: async (attributes, _body, { context, coffer, key }) => {
        const record = await service.initiate(context, key, attributes);
        return { kind: 'document', status: 200, result: { kind: 'InitiateMultipartUpload', coffer, key, uploadId: record.uploadId } };
      },
    }),

    UploadPart: operation<Of<'UploadPart'>, Awaited<ReturnType<MultipartService['prepareUploadPart']>>>({
      action: OPERATION_ACTIONS.UploadPart,
      scope: 'coffer',
      body: { maxBytes: MAX_PART_PLAINTEXT, objectData: true },
      prepare: ({ request, context, key, operation: { uploadId, partNumber } }) => service.prepareUploadPart(context, key, uploadId, partNumber, contentLengthOf(request), contentMd5(request.headers)),
      run: async (prepared, body) => {
        metrics?.inFlightParts.inc();
        const timer = metrics?.partSeconds.startTimer({ storage: prepared.storage });
        try {
          const etag = await service.uploadPart(prepared, body as NonNullable<typeof body>);
          return { kind: 'empty', status: 200, headers: { etag, 'content-length': 0 } };
        } finally {
          metrics?.inFlightParts.dec();
          timer?.();
        }
      },
      // The data key, and the part's place among the parts in flight (also when the body never came).
      release: (prepared) => {
        prepared.dataKey.dispose();
        prepared.slot.release();
      },
    }),

    ListParts: operation<Of<'ListParts'>, undefined>({
      action: OPERATION_ACTIONS.ListParts,
      scope: 'coffer',
      prepare: noBody,
      run: async (_prepared, _body, { request, context, coffer, key, principal, operation: { uploadId } }) => {
        const maxParts = Math.min(numberParam(request.target, 'max-parts', 1000), 1000);
        const marker = numberParam(request.target, 'part-number-marker', 0);
        const listed = await service.listParts(context, key, uploadId, { maxParts, partNumberMarker: marker });
        return {
          kind: 'document',
          status: 200,
          result: { kind: 'ListParts', coffer, key, uploadId, parts: listed.parts, maxParts, partNumberMarker: marker, isTruncated: listed.isTruncated, nextPartNumberMarker: listed.nextPartNumberMarker, initiator: principal.id },
        };
      },
    }),

    // The prepared value is the object checksum an S3 client asserts (src/s3/s3-operations.ts); CDCS clients assert none.
    CompleteMultipartUpload: operation<Of<'CompleteMultipartUpload'>, CompletionOptions | undefined>({
      action: OPERATION_ACTIONS.CompleteMultipartUpload,
      scope: 'coffer',
      body: { objectData: false },
      // NoSuchUpload before the body is read.
      prepare: async ({ context, key, operation: { uploadId } }) => {
        await service.loadRecord(context, key, uploadId);
        return undefined;
      },
      run: async (options, body, { request, context, coffer, key, operation: { uploadId } }) => {
        const parts = parseCompleteMultipartUpload(await readBodyCapped(body as NonNullable<typeof body>));
        const completion = await service.beginCompletion(context, key, uploadId, parts, options);
        const finish = (result: Awaited<ReturnType<MultipartService['complete']>>, keptAlive: boolean) => {
          metrics?.completeCopiedBytes.inc(result.copiedBytes);
          request.log.info({ copiedBytes: result.copiedBytes, fillerBytes: result.fillerBytes, parts: parts.length, keptAlive }, 'upload completed');
          const checksum = result.manifest.attributes.checksum;
          return { kind: 'CompleteMultipartUpload', location: `${coffer}/${key}`, coffer, key, etag: result.etag, ...(checksum === undefined ? {} : { checksum }) } as const;
        };
        if (completion.kind === 'completed') return { kind: 'document', status: 200, result: finish(completion.result, false) };
        // The slow phase (copies, upstream Complete, manifest): the HTTP layer keeps the connection alive meanwhile.
        return { kind: 'kept-alive', work: async (keptAlive) => finish(await completion.assemble(), keptAlive()) };
      },
    }),

    AbortMultipartUpload: operation<Of<'AbortMultipartUpload'>, undefined>({
      action: OPERATION_ACTIONS.AbortMultipartUpload,
      scope: 'coffer',
      prepare: noBody,
      run: async (_prepared, _body, { context, key, operation: { uploadId } }) => {
        await service.abort(context, key, uploadId);
        return { kind: 'empty', status: 204 };
      },
    }),

    PutObject: operation<Of<'PutObject'>, Awaited<ReturnType<ObjectService['preparePut']>>>({
      action: OPERATION_ACTIONS.PutObject,
      scope: 'coffer',
      body: { maxBytes: MAX_PART_PLAINTEXT, objectData: true },
      // Write-once, size and the data key are settled before the body.
      prepare: ({ request, context, key }) =>
        objects.preparePut(context, key, contentLengthOf(request), { contentMd5: contentMd5(request.headers), contentType: headerValue(request.headers, 'content-type'), metadata: userMetadata(request.headers, 'x-cos-meta-') }),
      run: async (prepared, body) => {
        const { etag } = await objects.put(prepared, body as NonNullable<typeof body>);
        return { kind: 'empty', status: 200, headers: { etag, 'content-length': 0 } };
      },
      // The data key, and the part's place among the parts in flight (also when the body never came).
      release: (prepared) => {
        prepared.dataKey.dispose();
        prepared.slot.release();
      },
    }),

    GetObject: readObject,
    HeadObject: readObject,

    PutCofferLifecycle: operation<Of<'PutCofferLifecycle'>, { readonly md5: Buffer; readonly lifecycle: CofferLifecycle }>({
      action: OPERATION_ACTIONS.PutCofferLifecycle,
      scope: 'coffer',
      body: { maxBytes: MAX_LIFECYCLE_BODY_BYTES, objectData: false },
      // CDCS requires Content-MD5 on PutCofferLifecycle; refused before the body is read.
      prepare: async ({ request }) => {
        const md5 = contentMd5(request.headers);
        if (md5 === undefined) throw new GatewayError('InvalidRequest', 'Content-MD5 is required for PutCofferLifecycle.', { reason: 'missing-content-md5' });
        return { md5, lifecycle: lifecycleOf(deps) };
      },
      run: async ({ md5, lifecycle }, body, { request, context, principal }) => {
        const bytes = await readBodyCapped(body as NonNullable<typeof body>, MAX_LIFECYCLE_BODY_BYTES);
        if (!createHash('md5').update(bytes).digest().equals(md5)) throw new GatewayError('BadDigest');
        const document = parseLifecycleDocument(bytes);
        await lifecycle.put(context, document);
        // Expiry removes data: every change is on the record, with who made it.
        request.log.info({ coffer: context.coffer, principal: principal.id, days: document.days }, 'coffer lifecycle configuration changed');
        return { kind: 'empty', status: 200, headers: { 'content-length': 0 } };
      },
    }),

    GetCofferLifecycle: operation<Of<'GetCofferLifecycle'>, CofferLifecycle>({
      action: OPERATION_ACTIONS.GetCofferLifecycle,
      scope: 'coffer',
      prepare: async () => lifecycleOf(deps),
      run: async (lifecycle, _body, { request, context }) => {
        const stored = await lifecycle.get(context);
        if (stored === undefined) throw new GatewayError('NoSuchLifecycleConfiguration');
        // Read back: the record is what the gateway enforces; the bucket rules are what removes the bytes.
        if (!(await lifecycle.upstreamRulesMatch(context, stored.days))) {
          request.log.warn({ coffer: context.coffer, days: stored.days }, "the coffer's upstream lifecycle rules are missing or differ from its configuration: expired objects are hidden but not removed; put the configuration again");
        }
        const rendered = renderLifecycleDocument(stored);
        const bytes = Buffer.from(rendered.body, 'utf8');
        return {
          kind: 'object',
          status: 200,
          headers: { 'content-type': rendered.contentType, 'content-length': bytes.length },
          chunks: (async function* () {
            yield bytes;
          })(),
        };
      },
    }),

    PutCofferPolicy: operation<Of<'PutCofferPolicy'>, { readonly md5: Buffer | undefined; readonly policies: CofferPolicies }>({
      action: OPERATION_ACTIONS.PutCofferPolicy,
      scope: 'coffer',
      body: { maxBytes: MAX_POLICY_BYTES, objectData: false },
      prepare: async ({ request }) => ({ md5: contentMd5(request.headers), policies: policiesOf(deps) }),
      run: async ({ md5, policies }, body, { request, context, principal }) => {
        const bytes = await readBodyCapped(body as NonNullable<typeof body>, MAX_POLICY_BYTES);
        if (md5 !== undefined && !createHash('md5').update(bytes).digest().equals(md5)) throw new GatewayError('BadDigest');
        const policy = parseCofferPolicy(bytes, context.coffer);
        await policies.put(context, policy);
        // Who may use the coffer changed: on the record, with who changed it and what the policy now is.
        request.log.info({ coffer: context.coffer, principal: principal.id, statements: policy.statements.length, policySha256: createHash('sha256').update(bytes).digest('hex') }, 'coffer policy changed');
        return { kind: 'empty', status: 200, headers: { 'content-length': 0 } };
      },
    }),

    GetCofferPolicy: operation<Of<'GetCofferPolicy'>, CofferPolicies>({
      action: OPERATION_ACTIONS.GetCofferPolicy,
      scope: 'coffer',
      prepare: async () => policiesOf(deps),
      run: async (policies, _body, { context }) => {
        const policy = await policies.get(context);
        if (policy === undefined) throw new GatewayError('NoSuchCofferPolicy');
        return jsonAnswer(policy.text);
      },
    }),

    PutCoffer: operation<Of<'PutCoffer'>, { readonly creation: CofferCreation; readonly creatorPrincipals: readonly string[] }>({
      action: OPERATION_ACTIONS.PutCoffer,
      // The coffer does not exist yet: no context to resolve; authorization is decided here, per class.
      scope: 'service',
      body: { maxBytes: MAX_PUT_COFFER_BODY_BYTES, objectData: false },
      prepare: async ({ coffer, principal }) => {
        const creation = creationOf(deps);
        if (deps.coffers.isConfigured(coffer)) {
          // Only a caller who may use the configured coffer learns that it exists.
          if (!ACTIONS.some((action) => isAllowed(principal.grants, coffer, action))) throw new GatewayError('AccessDenied', 'The credentials do not allow creating this coffer.', { reason: 'not-a-creator' });
          throw new GatewayError('CofferAlreadyExists', 'A configured coffer has this name.');
        }
        return { creation, creatorPrincipals: creatorPrincipalsFor(deps, creation, coffer, principal) };
      },
      run: async ({ creation, creatorPrincipals }, body, { request, coffer, principal }) => {
        const bytes = await readBodyCapped(body as NonNullable<typeof body>, MAX_PUT_COFFER_BODY_BYTES);
        if (bytes.toString('utf8').trim().length > 0) throw new GatewayError('InvalidArgument', "The coffer's class decides its location and encryption; PUT Coffer takes no settings (send no body).", { reason: 'put-coffer-body' });
        const { generation } = await creation.create(coffer, principal, creatorPrincipals);
        request.log.info({ coffer, principal: principal.id, generation }, 'coffer created');
        return { kind: 'empty', status: 200, headers: { 'content-length': 0, location: `/${coffer}` } };
      },
    }),

    DeleteCoffer: operation<Of<'DeleteCoffer'>, CofferCreation>({
      action: OPERATION_ACTIONS.DeleteCoffer,
      scope: 'coffer',
      prepare: async ({ coffer }) => {
        if (deps.coffers.isConfigured(coffer)) throw new GatewayError('MethodNotAllowed', 'A configured coffer cannot be deleted through the API; remove it from the configuration.', { reason: 'configured-coffer' });
        return creationOf(deps);
      },
      run: async (creation, _body, { request, context, coffer, principal }) => {
        if (await hasLiveObject(objects, context)) throw new GatewayError('CofferNotEmpty', 'The coffer has live objects; it can be deleted once every object has expired.');
        if ((await service.listUploads(context, { maxUploads: 1 })).uploads.length > 0) throw new GatewayError('CofferNotEmpty', 'The coffer has open multipart uploads; complete or abort them first.');
        await creation.remove(context, principal);
        request.log.info({ coffer, principal: principal.id }, 'coffer deleted');
        return { kind: 'empty', status: 204, headers: {} };
      },
    }),

    DeleteCofferPolicy: operation<Of<'DeleteCofferPolicy'>, CofferPolicies>({
      action: OPERATION_ACTIONS.DeleteCofferPolicy,
      scope: 'coffer',
      prepare: async () => policiesOf(deps),
      run: async (policies, _body, { request, context, principal }) => {
        await policies.delete(context);
        request.log.info({ coffer: context.coffer, principal: principal.id }, 'coffer policy deleted');
        // CDCS: 200 OK, also when there was no policy.
        return { kind: 'empty', status: 200, headers: { 'content-length': 0 } };
      },
    }),
  };
}
