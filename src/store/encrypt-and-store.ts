/**
 * The data path of UploadPart and PutObject: plaintext in → part encryptor (plaintext MD5 and
 * AES-GCM on the crypto workers, Content-MD5 check) → one streamed upstream write, with the failure
 * rules of reliability-checklist.md: a plaintext-side failure (bad digest, short body, client gone) destroys the upstream request so the
 * previous version stays intact, and an upstream failure stops reading the body.
 */
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { OffloadedPartEncryptor } from '../crypto/offloaded-part-encryptor';
import { GatewayError } from '../errors/gateway-error';
import { IntegrityError } from '../format/integrity-error';
import { chunksAreMovable } from '../util/movable-chunks';
import type { StreamedBody } from './ports';

export interface EncryptAndStoreInput {
  /** The plaintext. Marked with markChunksMovable (a request body), its chunks are moved to a crypto worker without a copy. */
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
  // MD5 and encryption both run on the crypto workers (src/crypto/offloaded-part-encryptor.ts); the
  // Content-MD5 check runs before the final segment leaves, so a bad digest never completes upstream.
  const expected = input.contentMd5;
  const encryptor = new OffloadedPartEncryptor({
    dataKey: input.dataKey,
    objectId: input.objectId,
    partNumber: input.partNumber,
    plaintextLength: input.plaintextLength,
    salt: input.salt,
    takeChunks: chunksAreMovable(input.body),
    verifyDigest: (digest) => (expected !== undefined && !expected.equals(digest) ? new GatewayError('BadDigest') : undefined),
  });
  // The store reads the encryptor itself (no PassThrough between them: one stream hop less per block).
  // Errors travel through the promises below; this keeps an error that fires after the pipeline has settled from going unhandled.
  encryptor.on('error', () => undefined);
  // The encryptor is the pipeline's last stream: it settles once the encryptor has flushed (digest known, final tail pushed).
  const encrypting = pipeline(input.body, encryptor);
  // The store hands each ciphertext chunk back once the upstream socket has taken it, so the
  // encryptor reuses its shared output blocks instead of allocating (see offloaded-part-encryptor.ts).
  const release = (chunk: Buffer): void => encryptor.release(chunk);
  const storing = input.store({ body: encryptor, contentLength: encryptor.ciphertextLength, release, ...(input.signal === undefined ? {} : { signal: input.signal }) });
  const [stored, encrypted] = await Promise.allSettled([
    storing.catch((error: unknown) => {
      encryptor.destroy(error as Error);
      throw error;
    }),
    encrypting.catch((error: unknown) => {
      encryptor.destroy(error as Error);
      throw error;
    }),
  ]);
  // The plaintext-side cause is reported first: it is why the upstream write failed (a client's bad
  // body, or — for a server-side copy — a source whose stored bytes failed authentication).
  if (encrypted.status === 'rejected' && (encrypted.reason instanceof GatewayError || encrypted.reason instanceof IntegrityError || stored.status === 'fulfilled')) throw encrypted.reason;
  if (stored.status === 'rejected') throw stored.reason;
  if (encrypted.status === 'rejected') throw encrypted.reason;
  return { md5: encryptor.digest as Buffer, upstreamEtag: stored.value.etag };
}
