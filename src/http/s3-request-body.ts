/**
 * How an S3-dialect request body is read, decided from the headers before the first body byte (so a
 * bad declaration is answered before `100 Continue`):
 *
 * - `x-amz-content-sha256` a digest: the body is hashed as it streams and refused at the end with
 *   XAmzContentSHA256Mismatch (an error on the stream, never an end: nothing is stored);
 * - UNSIGNED-PAYLOAD: passed through;
 * - STREAMING-*: an aws-chunked body (usually with `Content-Encoding: aws-chunked`), decoded by AwsChunkedDecoder; the object's size is
 *   `x-amz-decoded-content-length`, and a trailing checksum must be the one `x-amz-trailer` declares;
 * - `x-amz-checksum-<algorithm>` as a header (what SDKs send for bodies of known length): computed
 *   as the body streams and compared at the end (BadDigest).
 *
 * The verified checksum (header or trailer) is returned so the object can store it authenticated and
 * answer it with `x-amz-checksum-mode: ENABLED`.
 */
import { createHash } from 'node:crypto';
import { PassThrough, pipeline, Transform, type Readable, type TransformCallback } from 'node:stream';
import { type AuthRequest, headerValues } from '../auth/auth-request';
import type { SignedPayload } from '../auth/sigv4-authenticator';
import { GatewayError } from '../errors/gateway-error';
import { chunksAreMovable, markChunksMovable } from '../util/movable-chunks';
import { AwsChunkedDecoder, type VerifiedChecksum } from './aws-chunked-decoder';
import { algorithmOfHeader, CHECKSUM_ALGORITHMS, type ChecksumAlgorithm, checksumHeader, isChecksumValue, runningChecksum, type RunningChecksum } from './object-checksum';

export interface S3RequestBody {
  /** The object's size in bytes (Content-Length, or x-amz-decoded-content-length for aws-chunked). */
  readonly size: number;
  /** Pipe the raw request body through this; it emits the object bytes, or fails before its end. */
  readonly decoder: Transform;
  /** The client's checksum, verified; defined once `decoder` has ended (undefined when none was sent). */
  checksum(): VerifiedChecksum | undefined;
  /** The algorithm of the checksum the client declared (header or trailer), known before the body. */
  readonly algorithm?: ChecksumAlgorithm;
  /**
   * The decoder emits exactly the chunks it is given and keeps none (it only hashes them, synchronously):
   * no aws-chunked framing to strip. A movable request body then stays movable (objectBytes).
   */
  readonly handsOnChunks: boolean;
}

type Headers = Pick<AuthRequest, 'headers'>;

function one(request: Headers, name: string): string | undefined {
  const values = headerValues(request, name);
  if (values.length > 1) throw new GatewayError('InvalidRequest', `The header ${name} appears more than once.`, { reason: 'duplicate-header' });
  return values[0];
}

function decimal(value: string, name: string): number {
  if (!/^(0|[1-9][0-9]{0,15})$/.test(value) || !Number.isSafeInteger(Number(value))) throw new GatewayError('InvalidArgument', `${name} must be a non-negative decimal integer.`, { reason: 'bad-length' });
  return Number(value);
}

/** The one `x-amz-checksum-*` header of the request, validated, or undefined. */
function headerChecksum(request: Headers): { algorithm: ChecksumAlgorithm; value: string } | undefined {
  const present = CHECKSUM_ALGORITHMS.filter((algorithm) => headerValues(request, checksumHeader(algorithm)).length > 0);
  if (present.length === 0) return undefined;
  if (present.length > 1) throw new GatewayError('InvalidRequest', 'Expecting a single x-amz-checksum- header. Multiple checksum types are not allowed.', { reason: 'several-checksums' });
  const algorithm = present[0] as ChecksumAlgorithm;
  const value = one(request, checksumHeader(algorithm)) as string;
  if (!isChecksumValue(algorithm, value)) throw new GatewayError('InvalidRequest', `Value for ${checksumHeader(algorithm)} header is invalid.`, { reason: 'checksum-format' });
  return { algorithm, value };
}

/** `contentLength`: the framing the HTTP front read (undefined for Transfer-Encoding: chunked). */
export function planS3RequestBody(request: Headers, payload: SignedPayload, contentLength: number | undefined): S3RequestBody {
  if (payload.kind === 'aws-chunked') {
    // The signed STREAMING-* payload type is what declares the framing; minio-go (restic) sends it
    // without `Content-Encoding: aws-chunked`, and S3 and MinIO accept that.
    const declared = one(request, 'x-amz-decoded-content-length');
    if (declared === undefined) throw new GatewayError('MissingContentLength', 'An aws-chunked body needs x-amz-decoded-content-length.', { reason: 'decoded-length' });
    const size = decimal(declared, 'x-amz-decoded-content-length');
    let trailerChecksum: ChecksumAlgorithm | undefined;
    if (payload.trailer) {
      const trailer = one(request, 'x-amz-trailer');
      trailerChecksum = trailer === undefined ? undefined : algorithmOfHeader(trailer.trim());
      if (trailerChecksum === undefined) throw new GatewayError('InvalidRequest', 'A trailer payload needs x-amz-trailer naming one x-amz-checksum-* header.', { reason: 'trailer-declaration' });
    }
    const inHeader = headerChecksum(request);
    if (inHeader !== undefined && trailerChecksum !== undefined) throw new GatewayError('InvalidRequest', 'Expecting a single x-amz-checksum- header. Multiple checksum types are not allowed.', { reason: 'several-checksums' });
    const decoder = new AwsChunkedDecoder({
      decodedLength: size,
      trailer: payload.trailer,
      ...(payload.signing === undefined ? {} : { signing: payload.signing }),
      ...(trailerChecksum === undefined ? {} : { trailerChecksum }),
      ...(inHeader === undefined ? {} : { headerChecksum: inHeader }),
    });
    const algorithm = trailerChecksum ?? inHeader?.algorithm;
    return { size, decoder, checksum: () => decoder.verifiedChecksum, handsOnChunks: false, ...(algorithm === undefined ? {} : { algorithm }) };
  }
  if (contentLength === undefined) throw new GatewayError('MissingContentLength', undefined, { reason: 'no-length' });
  const expected = headerChecksum(request);
  const sha256 = payload.kind === 'sha256' ? payload.sha256Hex : undefined;
  if (sha256 === undefined && expected === undefined) {
    const decoder = new PassThrough();
    return { size: contentLength, decoder, checksum: () => undefined, handsOnChunks: true };
  }
  const verifier = new DigestVerifier(sha256, expected);
  return { size: contentLength, decoder: verifier, checksum: () => verifier.verified, handsOnChunks: true, ...(expected === undefined ? {} : { algorithm: expected.algorithm }) };
}

/**
 * The object bytes of an accepted body: the raw body through the plan's decoder; any failure destroys
 * the result (never ends it). A request body whose chunks the encryptor may move (src/util/movable-
 * chunks.ts) keeps that mark when the decoder hands the same chunks on; aws-chunked decoding emits
 * slices of them, which are copied.
 */
export function objectBytes(body: Readable, plan: S3RequestBody): Readable {
  const bytes = pipeline(body, plan.decoder, () => undefined);
  return plan.handsOnChunks && chunksAreMovable(body) ? markChunksMovable(bytes) : bytes;
}

/**
 * Passes bytes through while hashing them; at the end compares the SHA-256 the signature covered
 * and the checksum header, and fails (no end) on a mismatch.
 */
class DigestVerifier extends Transform {
  readonly #sha256 = createHash('sha256');
  readonly #checksum: RunningChecksum | undefined;
  verified: VerifiedChecksum | undefined;

  constructor(
    private readonly expectedSha256: string | undefined,
    private readonly expectedChecksum: { algorithm: ChecksumAlgorithm; value: string } | undefined,
  ) {
    super();
    this.#checksum = expectedChecksum === undefined ? undefined : runningChecksum(expectedChecksum.algorithm);
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    if (this.expectedSha256 !== undefined) this.#sha256.update(chunk);
    this.#checksum?.update(chunk);
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    if (this.expectedSha256 !== undefined && this.#sha256.digest('hex') !== this.expectedSha256) {
      callback(new GatewayError('XAmzContentSHA256Mismatch', undefined, { reason: 'content-sha256' }));
      return;
    }
    const checksum = this.#checksum;
    const expected = this.expectedChecksum;
    if (checksum === undefined || expected === undefined) {
      callback();
      return;
    }
    checksum.digest().then((value) => {
      if (value !== expected.value) {
        callback(new GatewayError('BadDigest', `The ${checksumHeader(expected.algorithm)} you specified did not match the calculated checksum.`, { reason: 'checksum-mismatch' }));
        return;
      }
      this.verified = { algorithm: expected.algorithm, value };
      callback();
    }, callback);
  }
}
