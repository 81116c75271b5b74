/**
 * The data path of UploadPart and PutObject: plaintext in → MD5 tap (Content-MD5 check) → part
 * encryptor → one streamed upstream write, with the failure rules of reliability-checklist.md: a
 * plaintext-side failure (bad digest, short body, client gone) destroys the upstream request so the
 * previous version stays intact, and an upstream failure stops reading the body.
 */
import { PassThrough, Transform, type Readable, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { OffloadedMd5 } from '../crypto/md5-offload';
import { PartEncryptor } from '../crypto/part-encryptor';
import { GatewayError } from '../errors/gateway-error';
import type { StreamedBody } from './ports';

/**
 * Computes the plaintext MD5 alongside (on the MD5 worker, in parallel with encryption) and checks
 * Content-MD5 before the last bytes move on. A chunk is passed on at once; the tap waits only when
 * the worker is behind by its whole block budget, which is the backpressure that bounds memory.
 */
class DigestTap extends Transform {
  private readonly md5 = new OffloadedMd5();
  digest: Buffer | undefined;
  constructor(private readonly expected: Buffer | undefined) {
    super();
  }
  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    const behind = this.md5.update(chunk);
    if (behind === undefined) callback(null, chunk);
    else behind.then(() => callback(null, chunk), callback);
  }
  override _flush(callback: TransformCallback): void {
    this.md5.digest().then((digest) => {
      this.digest = digest;
      // Failing here keeps the encryptor from emitting its final tag, so the upstream never gets a complete body.
      if (this.expected !== undefined && !this.expected.equals(digest)) callback(new GatewayError('BadDigest'));
      else callback();
    }, callback);
  }
  override _destroy(error: Error | null, callback: (error: Error | null) => void): void {
    this.md5.abort();
    callback(error);
  }
}

export interface EncryptAndStoreInput {
  readonly body: Readable;
  readonly dataKey: Buffer;
  readonly objectId: Buffer;
  readonly partNumber: number;
  readonly plaintextLength: number;
  readonly salt: Buffer;
  readonly contentMd5?: Buffer;
  readonly signal?: AbortSignal;
  /** Starts the upstream write of exactly `upload.contentLength` ciphertext bytes. */
  readonly store: (upload: StreamedBody) => Promise<{ etag: string }>;
}

/** Resolves with the plaintext MD5 and the upstream ETag once the upstream has the whole ciphertext. */
export async function encryptAndStore(input: EncryptAndStoreInput): Promise<{ md5: Buffer; upstreamEtag: string }> {
  const tap = new DigestTap(input.contentMd5);
  const encryptor = new PartEncryptor({ dataKey: input.dataKey, objectId: input.objectId, partNumber: input.partNumber, plaintextLength: input.plaintextLength, salt: input.salt });
  const ciphertext = new PassThrough();
  // Errors travel through the promises below; this keeps an error that fires before the store attaches its own listener from going unhandled.
  ciphertext.on('error', () => undefined);
  const encrypting = pipeline(input.body, tap, encryptor, ciphertext);
  const storing = input.store({ body: ciphertext, contentLength: encryptor.ciphertextLength, ...(input.signal === undefined ? {} : { signal: input.signal }) });
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
  // The client-side cause is reported first: it is why the upstream write failed.
  if (encrypted.status === 'rejected' && (encrypted.reason instanceof GatewayError || stored.status === 'fulfilled')) throw encrypted.reason;
  if (stored.status === 'rejected') throw stored.reason;
  if (encrypted.status === 'rejected') throw encrypted.reason;
  return { md5: tap.digest as Buffer, upstreamEtag: stored.value.etag };
}
