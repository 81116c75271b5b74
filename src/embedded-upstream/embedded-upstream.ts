/**
 * The embedded upstream: an in-process S3-compatible HTTP server on loopback for `npm start` without
 * an external object store. It implements exactly the subset S3UpstreamStore uses, strictly (SigV4
 * checked, EntityTooSmall / InvalidPart / InvalidPartOrder / NoSuchUpload like S3, atomic objects and
 * parts, nothing visible from a short or aborted body), path-style addressing only, one bucket.
 *
 * Memory stays flat for multi-GiB bodies: request bodies stream to temp files, Complete concatenates
 * part files by streaming, GETs stream from the file.
 */
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { promises as fs } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createHash } from 'node:crypto';
import { encodeKeyPath } from '../upstream/s3-encoding';
import { BucketStorage, type ObjectInfo } from './bucket-storage';
import { S3Error, s3Errors } from './s3-error';
import { document, element, errorDocument, parseXml, text } from './s3-xml';
import { SigV4Verifier, type PayloadHash } from './sigv4-verifier';

export interface EmbeddedUpstreamOptions {
  /** Data directory; the bucket lives in `<directory>/<bucket>`. Default `./data/upstream`. */
  directory?: string;
  bucket: string;
  region?: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 0 (any free port). */
  port?: number;
  /** Non-last parts smaller than this fail Complete with EntityTooSmall. Default 5 MiB (S3). */
  minPartSize?: number;
  /** Largest part and largest single PUT. Default 5 GiB (S3). */
  maxPartSize?: number;
  /** A connection with no bytes either way for this long is destroyed. Default 120 s. */
  idleTimeoutMs?: number;
  /** Accepted clock skew of signatures. Default 15 min. */
  maxSkewMs?: number;
}

/** Events: `receiving` ({ key, bytes }) while a body streams in; `body-failed` ({ key, reason }) when a body is discarded. */
export interface EmbeddedUpstreamEvents {
  receiving: [{ key: string; bytes: number }];
  'body-failed': [{ key: string; code: string }];
}

const MIB = 1024 * 1024;
const MAX_KEY_BYTES = 1024;
const MAX_METADATA_BYTES = 2048;
const MAX_XML_BODY = 8 * MIB;
const BUCKET_NAME = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

interface Target {
  readonly bucket: string;
  readonly key: string;
  readonly query: Record<string, string>;
  /** The decoded path; SigV4's canonical URI is it encoded once, canonically. */
  readonly path: string;
}

export class EmbeddedUpstream extends EventEmitter<EmbeddedUpstreamEvents> {
  readonly bucket: string;
  readonly region: string;
  private readonly verifier: SigV4Verifier;
  private readonly minPartSize: number;
  private readonly maxPartSize: number;
  private server: Server | undefined;
  private address: AddressInfo | undefined;

  private constructor(
    private readonly options: EmbeddedUpstreamOptions,
    private readonly storage: BucketStorage,
  ) {
    super();
    this.bucket = options.bucket;
    this.region = options.region ?? 'us-east-1';
    this.verifier = new SigV4Verifier({ accessKeyId: options.accessKeyId, secretAccessKey: options.secretAccessKey, region: this.region, maxSkewMs: options.maxSkewMs });
    this.minPartSize = options.minPartSize ?? 5 * MIB;
    this.maxPartSize = options.maxPartSize ?? 5 * 1024 * MIB;
  }

  static async start(options: EmbeddedUpstreamOptions): Promise<EmbeddedUpstream> {
    if (!BUCKET_NAME.test(options.bucket)) throw new Error('The embedded upstream bucket name is not a valid S3 bucket name.');
    const directory = join(options.directory ?? join('data', 'upstream'), options.bucket);
    await fs.mkdir(directory, { recursive: true });
    const upstream = new EmbeddedUpstream(options, await BucketStorage.open(directory));
    await upstream.listen();
    return upstream;
  }

  /** `http://127.0.0.1:<port>`: the endpoint to configure (path-style). */
  get endpoint(): string {
    const address = this.address as AddressInfo;
    const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
    return `http://${host}:${address.port}`;
  }

  get port(): number {
    return (this.address as AddressInfo).port;
  }

  async close(): Promise<void> {
    const server = this.server;
    if (server === undefined) return;
    this.server = undefined;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  }

  private async listen(): Promise<void> {
    const server = createServer({ requestTimeout: 0, headersTimeout: 60_000, keepAliveTimeout: 5_000 }, (req, res) => {
      void this.handle(req, res);
    });
    // No byte either way for this long: the socket is destroyed (a body in flight is discarded).
    server.timeout = this.options.idleTimeoutMs ?? 120_000;
    server.on('clientError', (_error, socket) => socket.destroy());
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.options.port ?? 0, this.options.host ?? '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.server = server;
    this.address = server.address() as AddressInfo;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    req.on('error', () => undefined); // aborted uploads surface through the body pipeline
    const requestId = randomBytes(8).toString('hex').toUpperCase();
    res.setHeader('x-amz-request-id', requestId);
    let resource = '/';
    try {
      const target = parseTarget(req.url ?? '');
      resource = `/${target.bucket}${target.key === '' ? '' : `/${target.key}`}`;
      const payload = await this.verifier.verify({ method: req.method ?? 'GET', path: target.path, query: target.query, headers: req.headers });
      if (target.bucket !== this.bucket) throw s3Errors.noSuchBucket();
      if (Buffer.byteLength(target.key, 'utf8') > MAX_KEY_BYTES) throw new S3Error('KeyTooLongError', 400, 'Your key is too long.');
      await this.route(req, res, target, payload);
    } catch (error) {
      const s3 = error instanceof S3Error ? error : s3Errors.internalError();
      if (!(error instanceof S3Error)) process.stderr.write(`[embedded-upstream] internal error: ${(error as Error)?.stack ?? String(error)}\n`);
      sendError(req, res, s3, resource, requestId);
    }
  }

  private async route(req: IncomingMessage, res: ServerResponse, target: Target, payload: PayloadHash): Promise<void> {
    const { key } = target;
    // The AWS SDK adds `x-id=<Operation>` to some requests; it names, it does not select.
    const { 'x-id': _operation, ...query } = target.query;
    const method = req.method ?? 'GET';
    if (key === '') {
      if (method === 'HEAD' && Object.keys(query).length === 0) return send(res, 200);
      if (method === 'GET' && query['list-type'] === '2') return this.listObjectsV2(res, query);
      if (method === 'POST' && 'delete' in query) return this.deleteObjects(req, res, payload);
      if (method === 'GET' || method === 'POST' || method === 'HEAD') throw s3Errors.notImplemented();
      throw s3Errors.methodNotAllowed();
    }
    switch (method) {
      case 'PUT':
        if (req.headers['x-amz-copy-source'] !== undefined) throw s3Errors.notImplemented();
        if ('partNumber' in query || 'uploadId' in query) return this.uploadPart(req, res, key, query, payload);
        if (Object.keys(query).length > 0) throw s3Errors.notImplemented();
        return this.putObject(req, res, key, payload);
      case 'GET':
        if ('uploadId' in query) return this.listParts(res, key, query);
        if (Object.keys(query).length > 0) throw s3Errors.notImplemented();
        return this.getObject(req, res, key, true);
      case 'HEAD':
        return this.getObject(req, res, key, false);
      case 'POST':
        if ('uploads' in query) return this.createMultipartUpload(req, res, key);
        if ('uploadId' in query) return this.completeMultipartUpload(req, res, key, query, payload);
        throw s3Errors.notImplemented();
      case 'DELETE':
        if ('uploadId' in query) {
          await this.storage.abortUpload(query['uploadId'] as string, key);
          return send(res, 204);
        }
        if (Object.keys(query).length > 0) throw s3Errors.notImplemented();
        await this.storage.deleteObject(key);
        return send(res, 204);
      default:
        throw s3Errors.methodNotAllowed();
    }
  }

  // ---------------------------------------------------------------- objects

  private async putObject(req: IncomingMessage, res: ServerResponse, key: string, payload: PayloadHash): Promise<void> {
    const metadata = readMetadata(req);
    // S3 conditional writes: `If-None-Match: *` creates only if the key does not exist (412 otherwise);
    // any other precondition is refused rather than silently ignored, as a lenient store would.
    const ifNoneMatch = req.headers['if-none-match'];
    if (req.headers['if-match'] !== undefined || (ifNoneMatch !== undefined && ifNoneMatch !== '*')) throw s3Errors.notImplemented();
    const received = await this.receive(req, key, payload);
    const info = await this.storage.putObject(key, received, metadata, { createOnly: ifNoneMatch === '*' });
    if (info === undefined) throw s3Errors.preconditionFailed();
    send(res, 200, { etag: info.etag });
  }

  private async getObject(req: IncomingMessage, res: ServerResponse, key: string, withBody: boolean): Promise<void> {
    const opened = await this.storage.openObject(key);
    if (opened === undefined) {
      if (!withBody) return send(res, 404); // HEAD: no body
      throw s3Errors.noSuchKey();
    }
    const { handle, info } = opened;
    let handed = false;
    try {
      const range = parseRange(req.headers.range, info.size);
      const headers: Record<string, string> = {
        etag: info.etag,
        'last-modified': info.lastModified.toUTCString(),
        'accept-ranges': 'bytes',
        'content-type': 'application/octet-stream',
      };
      for (const [name, value] of Object.entries(info.metadata)) headers[`x-amz-meta-${name}`] = value;
      if (range === 'unsatisfiable') {
        res.setHeader('content-range', `bytes */${info.size}`);
        throw s3Errors.invalidRange();
      }
      const start = range?.start ?? 0;
      const end = range?.end ?? info.size - 1;
      const length = info.size === 0 ? 0 : end - start + 1;
      if (range !== undefined) headers['content-range'] = `bytes ${start}-${end}/${info.size}`;
      headers['content-length'] = String(length);
      res.writeHead(range === undefined ? 200 : 206, headers);
      if (!withBody || length === 0) {
        res.end();
        return;
      }
      handed = true;
      const stream = handle.createReadStream({ start, end, autoClose: true });
      await pipeline(stream, res).catch(() => {
        if (!stream.destroyed) stream.destroy();
        res.destroy();
      });
    } finally {
      if (!handed) await handle.close();
    }
  }

  private async listObjectsV2(res: ServerResponse, query: Record<string, string>): Promise<void> {
    const prefix = query['prefix'] ?? '';
    const delimiter = query['delimiter'] === '' ? undefined : query['delimiter'];
    const encodingType = query['encoding-type'];
    if (encodingType !== undefined && encodingType !== 'url') throw s3Errors.invalidArgument('Invalid Encoding Method specified in Request');
    const rawMaxKeys = query['max-keys'];
    if (rawMaxKeys !== undefined && !/^\d{1,9}$/.test(rawMaxKeys)) throw s3Errors.invalidArgument('Provided max-keys not an integer or within integer range');
    const maxKeys = Math.min(1000, rawMaxKeys === undefined ? 1000 : Number(rawMaxKeys));
    const token = query['continuation-token'];
    let after = query['start-after'];
    let afterIsPrefix = false;
    if (token !== undefined) {
      const decoded = decodeToken(token);
      after = decoded.after;
      afterIsPrefix = decoded.isPrefix;
    }
    const result = maxKeys === 0 ? { objects: [], commonPrefixes: [], isTruncated: false } : this.storage.list({ prefix, delimiter, after, afterIsPrefix, maxKeys });
    const enc = (value: string): string => (encodingType === 'url' ? encodeKeyPath(value) : value);
    const next = 'next' in result && result.next !== undefined ? encodeToken(result.next) : undefined;
    const body =
      element('Name', this.bucket) +
      element('Prefix', enc(prefix)) +
      element('StartAfter', query['start-after'] === undefined ? undefined : enc(query['start-after'])) +
      element('ContinuationToken', token) +
      element('NextContinuationToken', result.isTruncated ? next : undefined) +
      element('KeyCount', result.objects.length + result.commonPrefixes.length) +
      element('MaxKeys', maxKeys) +
      element('Delimiter', delimiter === undefined ? undefined : enc(delimiter)) +
      element('EncodingType', encodingType) +
      element('IsTruncated', result.isTruncated) +
      result.objects
        .map((o: ObjectInfo) => `<Contents>${element('Key', enc(o.key))}${element('LastModified', o.lastModified.toISOString())}${element('ETag', o.etag)}${element('Size', o.size)}${element('StorageClass', 'STANDARD')}</Contents>`)
        .join('') +
      result.commonPrefixes.map((p: string) => `<CommonPrefixes>${element('Prefix', enc(p))}</CommonPrefixes>`).join('');
    sendXml(res, 200, document('ListBucketResult', body));
  }

  private async deleteObjects(req: IncomingMessage, res: ServerResponse, payload: PayloadHash): Promise<void> {
    if (req.headers['content-md5'] === undefined) throw s3Errors.invalidRequest('Missing required header for this request: Content-MD5');
    const body = await readSmallBody(req, payload);
    const parsed = parseXml(body)['Delete'] as Record<string, unknown> | undefined;
    if (parsed === undefined || typeof parsed !== 'object') throw s3Errors.malformedXML();
    const objects = (parsed['Object'] as unknown[] | undefined) ?? [];
    if (objects.length === 0 || objects.length > 1000) throw s3Errors.malformedXML();
    const quiet = text(parsed['Quiet'])?.trim() === 'true';
    const keys = objects.map((o) => text((o as Record<string, unknown>)['Key']));
    if (keys.some((k) => k === undefined || k === '' || Buffer.byteLength(k, 'utf8') > MAX_KEY_BYTES)) throw s3Errors.malformedXML();
    for (const key of keys as string[]) await this.storage.deleteObject(key);
    const deleted = quiet ? '' : (keys as string[]).map((key) => `<Deleted>${element('Key', key)}</Deleted>`).join('');
    sendXml(res, 200, document('DeleteResult', deleted));
  }

  // ---------------------------------------------------------------- multipart

  private async createMultipartUpload(req: IncomingMessage, res: ServerResponse, key: string): Promise<void> {
    const metadata = readMetadata(req);
    const uploadId = await this.storage.createUpload(key, metadata);
    sendXml(res, 200, document('InitiateMultipartUploadResult', element('Bucket', this.bucket) + element('Key', key) + element('UploadId', uploadId)));
  }

  private async uploadPart(req: IncomingMessage, res: ServerResponse, key: string, query: Record<string, string>, payload: PayloadHash): Promise<void> {
    const rawNumber = query['partNumber'] ?? '';
    const uploadId = query['uploadId'];
    if (!/^\d{1,5}$/.test(rawNumber) || Number(rawNumber) < 1 || Number(rawNumber) > 10_000) throw s3Errors.invalidArgument('Part number must be an integer between 1 and 10000, inclusive');
    if (uploadId === undefined) throw s3Errors.invalidRequest('uploadId is required with partNumber');
    this.storage.assertUpload(uploadId, key); // before reading a byte of the body
    const received = await this.receive(req, key, payload);
    const part = await this.storage.putPart(uploadId, key, Number(rawNumber), received);
    send(res, 200, { etag: part.etag });
  }

  private async listParts(res: ServerResponse, key: string, query: Record<string, string>): Promise<void> {
    const uploadId = query['uploadId'] as string;
    const rawMax = query['max-parts'];
    const rawMarker = query['part-number-marker'];
    if ((rawMax !== undefined && !/^\d{1,9}$/.test(rawMax)) || (rawMarker !== undefined && !/^\d{1,9}$/.test(rawMarker))) throw s3Errors.invalidArgument('max-parts and part-number-marker must be integers');
    const maxParts = Math.min(1000, rawMax === undefined ? 1000 : Number(rawMax));
    const marker = rawMarker === undefined ? 0 : Number(rawMarker);
    const all = this.storage.listParts(uploadId, key).filter((p) => p.partNumber > marker);
    const page = all.slice(0, maxParts);
    const truncated = all.length > page.length;
    const body =
      element('Bucket', this.bucket) +
      element('Key', key) +
      element('UploadId', uploadId) +
      element('PartNumberMarker', marker) +
      element('NextPartNumberMarker', page.length > 0 ? page[page.length - 1]?.partNumber : marker) +
      element('MaxParts', maxParts) +
      element('IsTruncated', truncated) +
      element('StorageClass', 'STANDARD') +
      page.map((p) => `<Part>${element('PartNumber', p.partNumber)}${element('LastModified', p.lastModified.toISOString())}${element('ETag', p.etag)}${element('Size', p.size)}</Part>`).join('');
    sendXml(res, 200, document('ListPartsResult', body));
  }

  private async completeMultipartUpload(req: IncomingMessage, res: ServerResponse, key: string, query: Record<string, string>, payload: PayloadHash): Promise<void> {
    const uploadId = query['uploadId'] as string;
    this.storage.assertUpload(uploadId, key);
    const body = await readSmallBody(req, payload);
    const root = parseXml(body)['CompleteMultipartUpload'] as Record<string, unknown> | undefined;
    if (root === undefined || typeof root !== 'object') throw s3Errors.malformedXML();
    const parts = ((root['Part'] as unknown[] | undefined) ?? []).map((entry) => {
      const part = entry as Record<string, unknown>;
      const number = text(part['PartNumber'])?.trim();
      const etag = text(part['ETag']);
      if (number === undefined || !/^\d{1,5}$/.test(number) || etag === undefined) throw s3Errors.malformedXML();
      return { partNumber: Number(number), etag };
    });
    const info = await this.storage.completeUpload(uploadId, key, parts, this.minPartSize);
    const location = `${this.endpoint}/${this.bucket}/${encodeKeyPath(key)}`;
    sendXml(res, 200, document('CompleteMultipartUploadResult', element('Location', location) + element('Bucket', this.bucket) + element('Key', key) + element('ETag', info.etag)));
  }

  // ---------------------------------------------------------------- bodies

  private async receive(req: IncomingMessage, key: string, payload: PayloadHash) {
    if (req.headers['transfer-encoding'] !== undefined || req.headers['content-length'] === undefined) throw s3Errors.missingContentLength();
    if (/aws-chunked/i.test(String(req.headers['content-encoding'] ?? ''))) throw s3Errors.notImplemented();
    const contentLength = Number(req.headers['content-length']);
    if (!Number.isSafeInteger(contentLength) || contentLength < 0) throw s3Errors.invalidArgument('Content-Length is not valid.');
    if (contentLength > this.maxPartSize) throw s3Errors.entityTooLarge();
    const contentMd5 = readContentMd5(req);
    try {
      return await this.storage.receive(req, {
        contentLength,
        ...(contentMd5 === undefined ? {} : { contentMd5 }),
        ...(payload.kind === 'sha256' ? { sha256Hex: payload.hex } : {}),
        onProgress: (bytes) => this.emit('receiving', { key, bytes }),
      });
    } catch (error) {
      const code = error instanceof S3Error ? error.code : 'ConnectionAborted';
      this.emit('body-failed', { key, code });
      throw error instanceof S3Error ? error : s3Errors.incompleteBody();
    }
  }
}

// ------------------------------------------------------------------ helpers

function parseTarget(url: string): Target {
  if (!url.startsWith('/')) throw s3Errors.invalidURI();
  const q = url.indexOf('?');
  const rawPath = q < 0 ? url : url.slice(0, q);
  const rawQuery = q < 0 ? '' : url.slice(q + 1);
  let path: string;
  try {
    path = decodeURIComponent(rawPath);
  } catch {
    throw s3Errors.invalidURI();
  }
  const rest = path.slice(1);
  const slash = rest.indexOf('/');
  const bucket = slash < 0 ? rest : rest.slice(0, slash);
  const key = slash < 0 ? '' : rest.slice(slash + 1);
  const query: Record<string, string> = {};
  for (const pair of rawQuery.split('&')) {
    if (pair === '') continue;
    const eq = pair.indexOf('=');
    let name: string;
    let value: string;
    try {
      name = decodeURIComponent(eq < 0 ? pair : pair.slice(0, eq));
      value = eq < 0 ? '' : decodeURIComponent(pair.slice(eq + 1));
    } catch {
      throw s3Errors.invalidURI();
    }
    if (name in query) throw s3Errors.invalidArgument(`Duplicate query parameter ${name}`);
    query[name] = value;
  }
  return { bucket, key, query, path };
}

function readMetadata(req: IncomingMessage): Record<string, string> {
  const metadata: Record<string, string> = {};
  let bytes = 0;
  for (const [name, value] of Object.entries(req.headers)) {
    if (!name.startsWith('x-amz-meta-') || value === undefined) continue;
    const short = name.slice('x-amz-meta-'.length);
    const joined = Array.isArray(value) ? value.join(',') : value;
    bytes += Buffer.byteLength(short) + Buffer.byteLength(joined);
    metadata[short] = joined;
  }
  if (bytes > MAX_METADATA_BYTES) throw s3Errors.metadataTooLarge();
  return metadata;
}

function readContentMd5(req: IncomingMessage): Buffer | undefined {
  const raw = req.headers['content-md5'];
  if (raw === undefined) return undefined;
  const header = Array.isArray(raw) ? raw.join(',') : raw;
  const digest = Buffer.from(header, 'base64');
  if (digest.length !== 16 || digest.toString('base64') !== header.trim()) throw s3Errors.invalidDigest();
  return digest;
}

async function readSmallBody(req: IncomingMessage, payload: PayloadHash): Promise<Buffer> {
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > MAX_XML_BODY) throw s3Errors.malformedXML();
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_XML_BODY) throw s3Errors.malformedXML();
    chunks.push(chunk);
  }
  if (!req.complete) throw s3Errors.incompleteBody();
  const body = Buffer.concat(chunks);
  const md5 = readContentMd5(req);
  if (md5 !== undefined && !createHash('md5').update(body).digest().equals(md5)) throw s3Errors.badDigest();
  if (payload.kind === 'sha256' && createHash('sha256').update(body).digest('hex') !== payload.hex) throw s3Errors.sha256Mismatch();
  return body;
}

/** One `bytes=` range; multiple ranges and bad syntax are ignored (whole object), as S3 does. */
function parseRange(header: string | undefined, size: number): { start: number; end: number } | 'unsatisfiable' | undefined {
  if (header === undefined) return undefined;
  const match = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (match === null || (match[1] === '' && match[2] === '')) return undefined;
  if (match[1] === '') {
    const suffix = Number(match[2]);
    if (suffix === 0 || size === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(match[1]);
  const end = match[2] === '' ? size - 1 : Number(match[2]);
  if (end < start) return undefined;
  if (start >= size) return 'unsatisfiable';
  return { start, end: Math.min(end, size - 1) };
}

function encodeToken(next: { after: string; isPrefix: boolean }): string {
  return Buffer.from(JSON.stringify({ a: next.after, p: next.isPrefix }), 'utf8').toString('base64url');
}

function decodeToken(token: string): { after: string; isPrefix: boolean } {
  try {
    const parsed = JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as { a?: unknown; p?: unknown };
    if (typeof parsed.a === 'string' && typeof parsed.p === 'boolean') return { after: parsed.a, isPrefix: parsed.p };
  } catch {
    // fall through
  }
  throw s3Errors.invalidArgument('The continuation token provided is incorrect');
}

function send(res: ServerResponse, status: number, headers: Record<string, string> = {}): void {
  res.writeHead(status, { ...headers, 'content-length': '0' });
  res.end();
}

function sendXml(res: ServerResponse, status: number, xml: string): void {
  const body = Buffer.from(xml, 'utf8');
  res.writeHead(status, { 'content-type': 'application/xml', 'content-length': String(body.length) });
  res.end(body);
}

function sendError(req: IncomingMessage, res: ServerResponse, error: S3Error, resource: string, requestId: string): void {
  if (res.headersSent || res.destroyed) {
    res.destroy();
    return;
  }
  // A body we did not read: answer, then close, rather than draining gigabytes.
  if (!req.complete) res.setHeader('connection', 'close');
  if (req.method === 'HEAD') {
    res.writeHead(error.status, { 'content-length': '0' });
    res.end();
    return;
  }
  sendXml(res, error.status, errorDocument(error.code, error.message, resource, requestId));
}
