/**
 * Streaming, verifying decryption of one part, or of a run of its segments (random access).
 * A segment's plaintext is released only after its GCM tag verified, so a failure never yields a
 * wrong byte; the error is an IntegrityError. Memory: one segment (64 KiB + tag) at most.
 */
import { createDecipheriv, createSecretKey, type KeyObject } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { IntegrityError } from '../format/integrity-error';
import { derivePartKeys, verifyPartHeader } from '../format/part-keys';
import { PART_HEADER_SIZE, SEGMENT_CIPHERTEXT_SIZE, TAG_SIZE, decodePartHeader, segmentCount, segmentNonce, segmentPlaintextLength, type PartIdentity } from '../format/part-format';

export interface ExpectedPart extends PartIdentity {
  /** The part upload's salt as recorded in the manifest; binds the read to exactly that upload. */
  readonly salt: Buffer;
}

export interface PartDecryptorOptions {
  readonly dataKey: Buffer;
  /**
   * What the reader expects (from the authenticated manifest). Required when the header is not part
   * of the input; when it is, the header must match it and its key commitment must verify.
   */
  readonly expected?: ExpectedPart;
  /** Input starts at the part header (then `firstSegment` is 0). */
  readonly withHeader: boolean;
  readonly firstSegment?: number;
  /** Last segment in the input; defaults to the part's final segment. */
  readonly lastSegment?: number;
}

/**
 * The synchronous core: feed ciphertext with `update`, collect verified plaintext; `final` throws if
 * the input stopped before the last requested segment. Used directly by readers that drive their own
 * loop (object-reader) and wrapped as a Transform below.
 */
export class PartOpener {
  private key: Buffer | undefined;
  /** The same key as a KeyObject: createDecipheriv with a KeyObject costs half as much per segment as with a Buffer. */
  private cipherKey: KeyObject | undefined;
  private plaintextLength = 0;
  private segmentIndex: number;
  private lastSegment: number;
  private readonly headerBuffer: Buffer | undefined;
  private headerFill = 0;
  private readonly segmentBuffer = Buffer.allocUnsafe(SEGMENT_CIPHERTEXT_SIZE);
  private segmentFill = 0;
  private readonly options: PartDecryptorOptions;

  private output: Buffer[] = [];

  constructor(options: PartDecryptorOptions) {
    this.options = options;
    const first = options.firstSegment ?? 0;
    if (options.withHeader) {
      if (first !== 0) throw new RangeError('input that starts at the header starts at segment 0');
      this.headerBuffer = Buffer.alloc(PART_HEADER_SIZE);
      this.segmentIndex = 0;
      this.lastSegment = -1; // known once the header is read
    } else {
      if (options.expected === undefined) throw new RangeError('reading segments without the header needs the expected part');
      const count = segmentCount(options.expected.plaintextLength);
      const last = options.lastSegment ?? count - 1;
      if (first < 0 || last < first || last >= count) throw new RangeError(`segments ${first}..${last} outside 0..${count - 1}`);
      this.key = derivePartKeys(options.dataKey, options.expected, options.expected.salt).encryptionKey;
      this.cipherKey = createSecretKey(this.key);
      this.plaintextLength = options.expected.plaintextLength;
      this.segmentIndex = first;
      this.lastSegment = last;
    }
  }

  /** Consumes ciphertext; returns the plaintext of every segment completed and verified by it. */
  update(chunk: Buffer): Buffer[] {
    this.output = [];
    try {
      let offset = this.readHeader(chunk);
      while (offset < chunk.length) {
        if (this.segmentIndex > this.lastSegment) throw new IntegrityError('trailing-data', 'bytes follow the last segment');
        const size = this.currentSegmentCiphertextSize();
        const available = chunk.length - offset;
        if (this.segmentFill === 0 && available >= size) {
          // Whole segment inside this chunk: decrypt in place, no copy.
          this.decryptSegment(chunk.subarray(offset, offset + size));
          offset += size;
        } else {
          const take = Math.min(size - this.segmentFill, available);
          chunk.copy(this.segmentBuffer, this.segmentFill, offset, offset + take);
          this.segmentFill += take;
          offset += take;
          if (this.segmentFill === size) {
            this.segmentFill = 0;
            this.decryptSegment(this.segmentBuffer.subarray(0, size));
          }
        }
      }
    } catch (error) {
      this.wipe();
      for (const plaintext of this.output) plaintext.fill(0);
      throw error;
    }
    return this.output;
  }

  /** True once every requested segment was verified. */
  get complete(): boolean {
    return this.key !== undefined && this.segmentIndex > this.lastSegment && this.segmentFill === 0;
  }

  /** Ends the input: throws if it stopped before the last requested segment. Always wipes the key. */
  final(): void {
    const complete = this.complete;
    this.wipe();
    if (!complete) throw new IntegrityError('truncated', 'part ciphertext ended before its final segment');
  }

  /** Zeroes the key bytes we hold; the KeyObject's native copy is released with it by the GC. */
  wipe(): void {
    this.key?.fill(0);
    this.cipherKey = undefined;
  }

  /** Consumes header bytes (whole-part mode) and returns the offset where segment data starts in `chunk`. */
  private readHeader(chunk: Buffer): number {
    if (this.key !== undefined || this.headerBuffer === undefined) return 0;
    const take = Math.min(PART_HEADER_SIZE - this.headerFill, chunk.length);
    chunk.copy(this.headerBuffer, this.headerFill, 0, take);
    this.headerFill += take;
    if (this.headerFill < PART_HEADER_SIZE) return take;
    const header = decodePartHeader(this.headerBuffer);
    this.key = verifyPartHeader(this.options.dataKey, header, this.options.expected).encryptionKey;
    this.cipherKey = createSecretKey(this.key);
    this.plaintextLength = header.plaintextLength;
    const count = segmentCount(header.plaintextLength);
    this.lastSegment = this.options.lastSegment ?? count - 1;
    if (this.lastSegment >= count) throw new IntegrityError('header-mismatch', 'part is shorter than the segments requested');
    return take;
  }

  private currentSegmentCiphertextSize(): number {
    return segmentPlaintextLength(this.plaintextLength, this.segmentIndex) + TAG_SIZE;
  }

  private decryptSegment(sealed: Buffer): void {
    const final = this.segmentIndex === segmentCount(this.plaintextLength) - 1;
    const decipher = createDecipheriv('aes-256-gcm', this.cipherKey as KeyObject, segmentNonce(this.segmentIndex, final));
    decipher.setAuthTag(sealed.subarray(sealed.length - TAG_SIZE));
    const plaintext = decipher.update(sealed.subarray(0, sealed.length - TAG_SIZE));
    try {
      decipher.final();
    } catch {
      plaintext.fill(0);
      throw new IntegrityError('segment-authentication-failed', `segment ${this.segmentIndex} failed authentication`);
    }
    this.segmentIndex += 1;
    if (plaintext.length > 0) this.output.push(plaintext);
  }
}

/** Streaming form of PartOpener. */
export class PartDecryptor extends Transform {
  private readonly opener: PartOpener;

  constructor(options: PartDecryptorOptions) {
    super();
    this.opener = new PartOpener(options);
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    try {
      for (const plaintext of this.opener.update(chunk)) this.push(plaintext);
      callback();
    } catch (error) {
      callback(error as Error);
    }
  }

  override _flush(callback: TransformCallback): void {
    try {
      this.opener.final();
      callback();
    } catch (error) {
      callback(error as Error);
    }
  }

  override _destroy(error: Error | null, callback: (error: Error | null) => void): void {
    this.opener.wipe();
    callback(error);
  }
}
