/**
 * Decodes an `aws-chunked` request body (what S3 clients stream with `Content-Encoding: aws-chunked`)
 * into the object bytes, verifying as the bytes pass:
 *
 *   <hex size>[;chunk-signature=<64 hex>]\r\n<size bytes>\r\n … 0[;chunk-signature=…]\r\n
 *   [<trailer name>:<value>\r\n …]\r\n
 *
 * - STREAMING-AWS4-HMAC-SHA256-PAYLOAD(-TRAILER): every chunk's signature is HMAC(kSigning,
 *   "AWS4-HMAC-SHA256-PAYLOAD\n<date>\n<scope>\n<previous signature>\n<sha256('')>\n<sha256(chunk)>"),
 *   chained from the request's own signature, so a chunk cannot be changed, dropped, reordered or the
 *   body cut short at a chunk boundary; the trailer's signature chains on the final chunk's.
 * - STREAMING-UNSIGNED-PAYLOAD-TRAILER: no chunk signatures; the trailing checksum the client declared
 *   in `x-amz-trailer` is required and verified.
 * - The decoded size must be exactly `x-amz-decoded-content-length`, which the caller knows before the
 *   first byte (it is the object's size for encryption and the upstream Content-Length).
 *
 * Every failure is an error on the stream before it ends — never an early end — so the pipeline that
 * stores the bytes is destroyed and nothing is stored (src/store/encrypt-and-store.ts). Bytes of a
 * chunk are passed on before that chunk's signature is checked (the signature follows the data); the
 * check happens before the stream can end, which is what keeps unverified bytes from being stored.
 * Lines are bounded (a size line or a trailer line longer than 512 bytes is refused), so framing
 * cannot make the decoder buffer.
 */
import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import type { ChunkSigning } from '../auth/sigv4-authenticator';
import { chunkStringToSign, EMPTY_SHA256, hmacHex, sameSignature, sha256Hex, trailerStringToSign } from '../auth/sigv4-signature';
import { GatewayError } from '../errors/gateway-error';
import { algorithmOfHeader, type ChecksumAlgorithm, checksumHeader, isChecksumValue, runningChecksum, type RunningChecksum } from './object-checksum';

export interface AwsChunkedDecoderOptions {
  /** x-amz-decoded-content-length: the exact number of object bytes. */
  readonly decodedLength: number;
  /** Present for the signed payload types: chunk signatures are required and verified. */
  readonly signing?: ChunkSigning;
  /** The payload type has a trailer (…-TRAILER). */
  readonly trailer: boolean;
  /** The checksum declared in `x-amz-trailer`; required when `trailer`. */
  readonly trailerChecksum?: ChecksumAlgorithm;
  /** A checksum sent as an `x-amz-checksum-*` header instead of a trailer (never both). */
  readonly headerChecksum?: { readonly algorithm: ChecksumAlgorithm; readonly value: string };
}

export interface VerifiedChecksum {
  readonly algorithm: ChecksumAlgorithm;
  /** base64, as S3 returns it in `x-amz-checksum-*`. */
  readonly value: string;
}

const MAX_LINE = 512;
const SIGNED_SIZE_LINE = /^([0-9a-fA-F]{1,16});chunk-signature=([0-9a-f]{64})$/;
const UNSIGNED_SIZE_LINE = /^([0-9a-fA-F]{1,16})$/;

type State = 'size' | 'data' | 'data-cr' | 'data-lf' | 'trailer' | 'final-cr' | 'final-lf' | 'done';

const malformed = (message: string): GatewayError => new GatewayError('InvalidChunkedBody', message, { reason: 'aws-chunked' });

export class AwsChunkedDecoder extends Transform {
  #state: State = 'size';
  #line = '';
  #chunkRemaining = 0;
  #chunkSignature = '';
  #chunkHash: Hash | undefined;
  #previousSignature: string;
  #decoded = 0;
  readonly #checksum: RunningChecksum | undefined;
  /** The checksum the client sent (header, or trailer once read). */
  #expectedChecksum: string | undefined;
  #trailerSignature: string | undefined;
  #verified: VerifiedChecksum | undefined;

  constructor(private readonly options: AwsChunkedDecoderOptions) {
    super();
    if (options.trailer && options.trailerChecksum === undefined) throw malformed('A trailer payload type needs x-amz-trailer naming an x-amz-checksum-* header.');
    this.#previousSignature = options.signing?.seedSignature ?? '';
    if (options.trailer && options.headerChecksum !== undefined) throw malformed('Send the checksum in the trailer or in a header, not both.');
    const algorithm = options.trailerChecksum ?? options.headerChecksum?.algorithm;
    this.#checksum = algorithm === undefined ? undefined : runningChecksum(algorithm);
    this.#expectedChecksum = options.headerChecksum?.value;
  }

  /** The trailing checksum, verified; available once the stream has ended. */
  get verifiedChecksum(): VerifiedChecksum | undefined {
    return this.#verified;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    try {
      this.#consume(chunk);
      callback();
    } catch (error) {
      callback(error as Error);
    }
  }

  override _flush(callback: TransformCallback): void {
    if (this.#state !== 'done') {
      callback(new GatewayError('IncompleteBody', 'The aws-chunked body ended before its final chunk.', { reason: 'aws-chunked-truncated' }));
      return;
    }
    if (this.#checksum === undefined) {
      callback();
      return;
    }
    const checksum = this.#checksum;
    checksum.digest().then((value) => {
      if (value !== this.#expectedChecksum) {
        callback(new GatewayError('BadDigest', `The ${checksumHeader(checksum.algorithm)} you specified did not match the calculated checksum.`, { reason: 'checksum-mismatch' }));
        return;
      }
      this.#verified = { algorithm: checksum.algorithm, value };
      callback();
    }, callback);
  }

  #consume(buffer: Buffer): void {
    let at = 0;
    while (at < buffer.length) {
      switch (this.#state) {
        case 'data': {
          const take = Math.min(this.#chunkRemaining, buffer.length - at);
          const data = buffer.subarray(at, at + take);
          this.#chunkHash?.update(data);
          this.#checksum?.update(data);
          this.push(data);
          this.#chunkRemaining -= take;
          at += take;
          if (this.#chunkRemaining === 0) this.#state = 'data-cr';
          break;
        }
        case 'data-cr':
        case 'final-cr':
          if (buffer[at] !== 0x0d) throw malformed('A chunk must end with CRLF.');
          this.#state = this.#state === 'data-cr' ? 'data-lf' : 'final-lf';
          at += 1;
          break;
        case 'data-lf':
          if (buffer[at] !== 0x0a) throw malformed('A chunk must end with CRLF.');
          at += 1;
          this.#endOfChunk();
          this.#state = 'size';
          break;
        case 'final-lf':
          if (buffer[at] !== 0x0a) throw malformed('The body must end with CRLF.');
          at += 1;
          this.#state = 'done';
          break;
        case 'size':
        case 'trailer': {
          const line = this.#readLine(buffer, at);
          at = line.next;
          if (line.text !== undefined) {
            if (this.#state === 'size') this.#sizeLine(line.text);
            else this.#trailerLine(line.text);
          }
          break;
        }
        case 'done':
          throw malformed('Bytes follow the end of the aws-chunked body.');
      }
    }
  }

  /** Accumulates one CRLF-terminated line, bounded. */
  #readLine(buffer: Buffer, from: number): { text?: string; next: number } {
    const lf = buffer.indexOf(0x0a, from);
    const end = lf < 0 ? buffer.length : lf;
    this.#line += buffer.toString('latin1', from, end);
    if (this.#line.length > MAX_LINE) throw malformed('A chunk header or trailer line is too long.');
    if (lf < 0) return { next: buffer.length };
    const line = this.#line;
    this.#line = '';
    if (!line.endsWith('\r')) throw malformed('Lines of an aws-chunked body end with CRLF.');
    return { text: line.slice(0, -1), next: lf + 1 };
  }

  #sizeLine(line: string): void {
    const signed = this.options.signing !== undefined;
    const match = (signed ? SIGNED_SIZE_LINE : UNSIGNED_SIZE_LINE).exec(line);
    if (match === null) throw malformed(signed ? 'Each chunk must start with "<hex size>;chunk-signature=<64 hex>".' : 'Each chunk must start with "<hex size>".');
    const size = Number.parseInt(match[1] as string, 16);
    this.#chunkSignature = match[2] ?? '';
    if (size > this.options.decodedLength - this.#decoded) throw malformed('The chunks carry more bytes than x-amz-decoded-content-length.');
    this.#chunkRemaining = size;
    this.#chunkHash = signed ? createHash('sha256') : undefined;
    if (size > 0) {
      this.#decoded += size;
      this.#state = 'data';
      return;
    }
    // The final (zero-length) chunk.
    if (this.#decoded !== this.options.decodedLength) throw new GatewayError('IncompleteBody', 'The aws-chunked body carries fewer bytes than x-amz-decoded-content-length.', { reason: 'aws-chunked-short' });
    this.#verifyChunkSignature(EMPTY_SHA256);
    this.#state = this.options.trailer ? 'trailer' : 'final-cr';
  }

  #endOfChunk(): void {
    if (this.#chunkHash !== undefined) this.#verifyChunkSignature(this.#chunkHash.digest('hex'));
  }

  #verifyChunkSignature(chunkSha256: string): void {
    const signing = this.options.signing;
    if (signing === undefined) return;
    const expected = hmacHex(signing.signingKey, chunkStringToSign(signing.amzDate, signing.scope, this.#previousSignature, chunkSha256));
    if (!sameSignature(expected, Buffer.from(this.#chunkSignature, 'hex'))) {
      throw new GatewayError('SignatureDoesNotMatch', 'A chunk signature of the aws-chunked body does not match.', { reason: 'chunk-signature' });
    }
    this.#previousSignature = expected;
  }

  #trailerLine(line: string): void {
    if (line === '') {
      this.#endOfTrailer();
      return;
    }
    const colon = line.indexOf(':');
    if (colon <= 0) throw malformed('A trailer line must be "<name>:<value>".');
    const name = line.slice(0, colon).toLowerCase();
    const value = line.slice(colon + 1).trim();
    if (name === 'x-amz-trailer-signature' && this.options.signing !== undefined && this.#trailerSignature === undefined) {
      if (!/^[0-9a-f]{64}$/.test(value)) throw malformed('x-amz-trailer-signature must be 64 hex digits.');
      this.#trailerSignature = value;
      return;
    }
    const algorithm = algorithmOfHeader(name);
    if (algorithm === undefined || algorithm !== this.options.trailerChecksum || this.#expectedChecksum !== undefined) {
      throw malformed(`The trailer ${name} was not declared in x-amz-trailer (or appears twice).`);
    }
    if (!isChecksumValue(algorithm, value)) throw new GatewayError('InvalidRequest', `The value of ${name} is not a base64 ${algorithm} digest.`, { reason: 'checksum-format' });
    this.#expectedChecksum = value;
  }

  #endOfTrailer(): void {
    const algorithm = this.options.trailerChecksum as ChecksumAlgorithm;
    if (this.#expectedChecksum === undefined) throw malformed(`The body ended without the declared trailer ${checksumHeader(algorithm)}.`);
    const signing = this.options.signing;
    if (signing !== undefined) {
      if (this.#trailerSignature === undefined) throw malformed('A signed trailer must carry x-amz-trailer-signature.');
      const canonical = `${checksumHeader(algorithm)}:${this.#expectedChecksum}\n`;
      const expected = hmacHex(signing.signingKey, trailerStringToSign(signing.amzDate, signing.scope, this.#previousSignature, sha256Hex(canonical)));
      if (!sameSignature(expected, Buffer.from(this.#trailerSignature, 'hex'))) {
        throw new GatewayError('SignatureDoesNotMatch', 'The trailer signature of the aws-chunked body does not match.', { reason: 'trailer-signature' });
      }
    }
    this.#state = 'done';
  }
}
