/**
 * The UploadStore over a real S3-compatible upstream (AWS S3, Ceph RGW, MinIO, COS).
 *
 * Control-plane calls (multipart bookkeeping, listings, small objects, ranged GETs) use
 * `@aws-sdk/client-s3`. Streamed bodies (parts, staged parts) do not: the SDK would either buffer an
 * unsigned-length stream or send `aws-chunked` (which Ceph RGW answers with 411), and it offers no way
 * to *destroy* the request when the plaintext side fails. So they go through `node:http(s)` with an
 * explicit `Content-Length`, SigV4-signed with `UNSIGNED-PAYLOAD` by `@smithy/signature-v4`, and are
 * destroyed — never ended — when the body errors, runs short or long, or the signal aborts, so the
 * upstream discards the partial part and the previous version stays intact.
 *
 * The upstream URL is built from configuration plus the key, percent-encoded byte by byte as SigV4's
 * canonical URI wants; user input never passes through `new URL()` or path normalisation.
 */
import { Hash } from '@smithy/hash-node';
import { SignatureV4 } from '@smithy/signature-v4';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  ListPartsCommand,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
} from '@aws-sdk/client-s3';
import { request as httpRequest, Agent as HttpAgent, type IncomingMessage } from 'node:http';
import { request as httpsRequest, Agent as HttpsAgent } from 'node:https';
import type { Readable } from 'node:stream';
import { GatewayError } from '../errors/gateway-error';
import type { ObjectBody, ObjectListing, StoredObject, StoredPart, StreamedBody, UploadStore } from '../upload/ports';

export interface S3StoreOptions {
  /** Origin only, from configuration (e.g. https://s3.eu-central-1.amazonaws.com). */
  readonly endpoint: string;
  readonly region: string;
  readonly bucket: string;
  readonly forcePathStyle: boolean;
  readonly credentials: () => Promise<{ accessKeyId: string; secretAccessKey: string; sessionToken?: string }>;
  /** Idle timeout of one upstream request (no bytes either way). Default 120 s. */
  readonly idleTimeoutMs?: number;
}

export class UpstreamNotFoundError extends Error {
  override readonly name = 'UpstreamNotFoundError';
  constructor(readonly kind: 'NoSuchKey' | 'NoSuchUpload' | 'NoSuchBucket') {
    super(kind);
  }
}

/** S3 URI encoding of a key for the path: every byte but unreserved characters and '/'. */
export function encodeKeyPath(key: string): string {
  return Array.from(Buffer.from(key, 'utf8'))
    .map((byte) => {
      const char = String.fromCharCode(byte);
      return /[A-Za-z0-9\-._~/]/.test(char) ? char : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
    })
    .join('');
}

const NOT_FOUND_CODES = new Set(['NoSuchKey', 'NoSuchUpload', 'NoSuchBucket', 'NotFound']);

/** Maps an upstream failure to the client-facing error (502/503/504) or a typed not-found. */
export function mapUpstreamError(error: unknown): Error {
  if (error instanceof GatewayError || error instanceof UpstreamNotFoundError) return error;
  const code = (error as { Code?: string; name?: string; code?: string })?.Code ?? (error as { name?: string }).name ?? (error as { code?: string }).code ?? 'Unknown';
  const status = error instanceof S3ServiceException ? error.$metadata.httpStatusCode : (error as { status?: number }).status;
  if (NOT_FOUND_CODES.has(code)) return new UpstreamNotFoundError(code === 'NotFound' ? 'NoSuchKey' : (code as 'NoSuchKey' | 'NoSuchUpload' | 'NoSuchBucket'));
  if (code === 'SlowDown' || status === 503) return new GatewayError('ServiceUnavailable', 'The upstream object store asks to slow down; retry later.', { reason: `upstream-${code}` });
  if (code === 'TimeoutError' || code === 'ETIMEDOUT' || code === 'RequestTimeout' || code === 'UpstreamIdleTimeout') return new GatewayError('GatewayTimeout', undefined, { reason: `upstream-${code}` });
  return new GatewayError('BadGateway', undefined, { reason: `upstream-${code}` });
}

export function createS3Store(options: S3StoreOptions): UploadStore {
  const endpoint = new URL(options.endpoint); // configuration only
  const https = endpoint.protocol === 'https:';
  const agent = https ? new HttpsAgent({ keepAlive: true }) : new HttpAgent({ keepAlive: true });
  const client = new S3Client({
    endpoint: options.endpoint,
    region: options.region,
    forcePathStyle: options.forcePathStyle,
    credentials: options.credentials,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  const signer = new SignatureV4({ service: 's3', region: options.region, credentials: options.credentials, sha256: Hash.bind(null, 'sha256'), uriEscapePath: false, applyChecksum: false });
  const idleTimeoutMs = options.idleTimeoutMs ?? 120_000;
  const Bucket = options.bucket;

  async function call<T>(run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (error) {
      throw mapUpstreamError(error);
    }
  }

  /** Streams `upload.body` as the body of a signed PUT with exactly `contentLength` bytes. */
  async function streamPut(key: string, query: Record<string, string>, upload: StreamedBody): Promise<{ etag: string }> {
    const host = options.forcePathStyle ? endpoint.host : `${Bucket}.${endpoint.host}`;
    const path = options.forcePathStyle ? `/${Bucket}/${encodeKeyPath(key)}` : `/${encodeKeyPath(key)}`;
    const signed = await signer.sign({
      method: 'PUT',
      protocol: endpoint.protocol,
      hostname: options.forcePathStyle ? endpoint.hostname : `${Bucket}.${endpoint.hostname}`,
      port: endpoint.port === '' ? undefined : Number(endpoint.port),
      path,
      query,
      headers: { host, 'content-length': String(upload.contentLength), 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD' },
    });
    const search = Object.entries(query)
      .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`)
      .join('&');
    return new Promise((resolve, reject) => {
      let settled = false;
      const fail = (error: Error): void => {
        if (settled) return;
        settled = true;
        outgoing.destroy(error);
        upload.body.destroy();
        reject(error);
      };
      const outgoing = (https ? httpsRequest : httpRequest)({
        protocol: endpoint.protocol,
        hostname: endpoint.hostname,
        port: endpoint.port === '' ? undefined : Number(endpoint.port),
        method: 'PUT',
        path: search === '' ? path : `${path}?${search}`,
        headers: signed.headers,
        agent,
      });
      outgoing.setTimeout(idleTimeoutMs, () => fail(new GatewayError('GatewayTimeout', undefined, { reason: 'upstream-idle-timeout' })));
      outgoing.on('error', (error) => fail(mapUpstreamError(error)));
      outgoing.on('response', (response: IncomingMessage) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => {
          if (chunks.length < 64) chunks.push(chunk);
        });
        response.on('end', () => {
          if (settled) return;
          settled = true;
          if (response.statusCode === 200) {
            resolve({ etag: String(response.headers.etag ?? '') });
          } else {
            const code = /<Code>([^<]+)<\/Code>/.exec(Buffer.concat(chunks).toString('utf8'))?.[1] ?? `HTTP${response.statusCode}`;
            reject(mapUpstreamError(Object.assign(new Error(code), { Code: code, status: response.statusCode })));
          }
        });
        response.on('error', (error) => fail(mapUpstreamError(error)));
      });
      let sent = 0;
      const onAbort = (): void => fail(new GatewayError('IncompleteBody', 'The request was aborted.'));
      upload.signal?.addEventListener('abort', onAbort, { once: true });
      upload.body.on('data', (chunk: Buffer) => {
        sent += chunk.length;
        if (sent > upload.contentLength) return fail(new GatewayError('IncompleteBody', 'The body is longer than declared.'));
        if (!outgoing.write(chunk)) {
          upload.body.pause();
          outgoing.once('drain', () => upload.body.resume());
        }
      });
      upload.body.on('error', (error) => fail(error));
      upload.body.on('end', () => {
        upload.signal?.removeEventListener('abort', onAbort);
        // Only a complete body is ended; anything else is destroyed so the upstream stores nothing.
        if (sent === upload.contentLength) outgoing.end();
        else fail(new GatewayError('IncompleteBody'));
      });
      upload.body.on('close', () => {
        if (sent !== upload.contentLength && !settled) fail(new GatewayError('IncompleteBody'));
      });
    });
  }

  return {
    createMultipartUpload: (key) => call(async () => ({ uploadId: (await client.send(new CreateMultipartUploadCommand({ Bucket, Key: key }))).UploadId as string })),

    uploadPart: (key, uploadId, partNumber, upload) => streamPut(key, { partNumber: String(partNumber), uploadId }, upload),

    listParts: (key, uploadId) =>
      call(async () => {
        const parts: StoredPart[] = [];
        let marker: string | undefined;
        for (;;) {
          const page = await client.send(new ListPartsCommand({ Bucket, Key: key, UploadId: uploadId, PartNumberMarker: marker, MaxParts: 1000 }));
          for (const part of page.Parts ?? []) parts.push({ partNumber: part.PartNumber as number, size: part.Size ?? 0, etag: part.ETag ?? '', lastModified: part.LastModified ?? new Date(0) });
          if (!page.IsTruncated || page.NextPartNumberMarker === undefined) return parts;
          marker = page.NextPartNumberMarker;
        }
      }),

    completeMultipartUpload: (key, uploadId, parts) =>
      call(async () => {
        const result = await client.send(new CompleteMultipartUploadCommand({ Bucket, Key: key, UploadId: uploadId, MultipartUpload: { Parts: parts.map((p) => ({ PartNumber: p.partNumber, ETag: p.etag })) } }));
        return { etag: result.ETag ?? '' };
      }),

    abortMultipartUpload: (key, uploadId) =>
      call(async () => {
        await client.send(new AbortMultipartUploadCommand({ Bucket, Key: key, UploadId: uploadId }));
      }),

    putObject: (key, upload) => {
      if (Buffer.isBuffer(upload.body)) {
        const body = upload.body;
        return call(async () => ({ etag: (await client.send(new PutObjectCommand({ Bucket, Key: key, Body: body, ContentLength: body.length }))).ETag ?? '' }));
      }
      return streamPut(key, {}, upload as StreamedBody);
    },

    getObject: (key, range) =>
      call(async (): Promise<ObjectBody> => {
        const result = await client.send(new GetObjectCommand({ Bucket, Key: key, Range: range === undefined ? undefined : `bytes=${range.start}-${range.endExclusive - 1}` }));
        const size = result.ContentLength ?? 0;
        const total = result.ContentRange === undefined ? size : Number(/\/(\d+)$/.exec(result.ContentRange)?.[1] ?? size);
        return { body: result.Body as Readable, size, totalSize: total, lastModified: result.LastModified ?? new Date(0) };
      }),

    headObject: async (key) => {
      try {
        const result = await client.send(new HeadObjectCommand({ Bucket, Key: key }));
        return { key, size: result.ContentLength ?? 0, etag: result.ETag ?? '', lastModified: result.LastModified ?? new Date(0) } satisfies StoredObject;
      } catch (error) {
        const mapped = mapUpstreamError(error);
        if (mapped instanceof UpstreamNotFoundError) return undefined;
        throw mapped;
      }
    },

    listObjects: (prefix, listOptions = {}) =>
      call(async (): Promise<ObjectListing> => {
        const page = await client.send(
          new ListObjectsV2Command({ Bucket, Prefix: prefix, Delimiter: listOptions.delimiter, MaxKeys: listOptions.maxKeys, StartAfter: listOptions.startAfter, ContinuationToken: listOptions.continuationToken }),
        );
        return {
          objects: (page.Contents ?? []).map((o) => ({ key: o.Key as string, size: o.Size ?? 0, etag: o.ETag ?? '', lastModified: o.LastModified ?? new Date(0) })),
          commonPrefixes: (page.CommonPrefixes ?? []).map((p) => p.Prefix as string),
          isTruncated: page.IsTruncated === true,
          nextContinuationToken: page.NextContinuationToken,
        };
      }),

    // One DeleteObject per key (bounded concurrency): DeleteObjects needs Content-MD5 on Ceph RGW, which
    // current SDKs replace with CRC checksums; single deletes work everywhere and are idempotent.
    deleteObjects: (keys) =>
      call(async () => {
        const queue = [...keys];
        await Promise.all(
          Array.from({ length: Math.min(16, queue.length) }, async () => {
            for (let key = queue.shift(); key !== undefined; key = queue.shift()) await client.send(new DeleteObjectCommand({ Bucket, Key: key }));
          }),
        );
      }),
  };
}
