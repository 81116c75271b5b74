/**
 * Part encryption with both per-byte costs — the plaintext MD5 (the CDCS ETag, the Content-MD5 check)
 * and AES-256-GCM — on worker threads, so the request thread carries only socket I/O and one copy.
 *
 * Why: MD5 (~1.4 ms/MiB) and GCM (~0.6–1 ms/MiB) on the main thread capped one process at one core
 * for the bytes of every part (the main thread measured ~2.3× a plain passthrough's per MiB). On
 * workers the part's bytes use the other cores, and one process scales with the CPUs it may use.
 *
 * How, with bounded memory: a pool of workers (one per CPU the process may use, started on first
 * use); each stream is pinned to the least busy worker, which keeps the stream's MD5 and GCM state
 * and handles its messages in order. A stream owns BLOCKS_PER_STREAM blocks of BLOCK_SIZE bytes:
 * incoming chunks are copied into the current block (socket chunks are slices of shared pools and
 * cannot be transferred); a full block is transferred (zero-copy) to the worker, which hashes it,
 * encrypts it and transfers the block and the ciphertext pieces back (joined into one buffer here).
 * A block is reused only when the stream's reader has room for more (its ciphertext was pushed
 * without exceeding the high-water mark, or the reader has asked for more since) — so a stream holds
 * at most its blocks, their ciphertext and the readable side's high-water mark, whatever the part size.
 *
 * The bytes are exactly PartEncryptor's (docs/FORMAT.md; the format vectors are checked against
 * both): the header is built here, on the main thread, with the same code; the worker runs the same
 * segment loop (a cipher per 64 KiB segment, nonce = index ‖ final flag, the tag after each segment).
 */
import { randomBytes } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { Transform, type TransformCallback } from 'node:stream';
import { Worker } from 'node:worker_threads';
import { derivePartKeys } from '../format/part-keys';
import { SALT_SIZE, SEGMENT_SIZE, encodePartHeader, partCiphertextLength, segmentCount } from '../format/part-format';
import { PartLengthError, type PartEncryptorOptions } from './part-encryptor';

export const CRYPTO_BLOCK_SIZE = 256 * 1024;
const BLOCKS_PER_STREAM = 2;

type WorkerReply =
  | { type: 'data'; id: number; block: ArrayBuffer; pieces: Uint8Array[] }
  | { type: 'final'; id: number; digest: Uint8Array; pieces: Uint8Array[] };

// Plain CommonJS, evaluated by the worker: no build step, no file to locate at run time (also under jest).
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { createCipheriv, createHash, createSecretKey } = require('node:crypto');
const SEGMENT_SIZE = ${SEGMENT_SIZE};
const streams = new Map();
// docs/FORMAT.md: 7 zero bytes, the segment index (uint32 big-endian), 1 on the final segment.
function segmentNonce(index, final) {
  const nonce = Buffer.alloc(12);
  nonce.writeUInt32BE(index, 7);
  nonce[11] = final ? 1 : 0;
  return nonce;
}
function openSegment(stream) {
  stream.cipher = createCipheriv('aes-256-gcm', stream.key, segmentNonce(stream.index, stream.index === stream.segments - 1));
  stream.fill = 0;
  return stream.cipher;
}
function closeSegment(stream, pieces) {
  const rest = stream.cipher.final();
  if (rest.length > 0) pieces.push(rest);
  pieces.push(stream.cipher.getAuthTag());
  stream.cipher = undefined;
  stream.index += 1;
}
// Transfers a buffer's memory when it is the whole of its ArrayBuffer (never a slice of Node's pool).
function transferable(buffer) {
  return buffer.byteOffset === 0 && buffer.byteLength === buffer.buffer.byteLength ? [buffer.buffer] : [];
}
parentPort.on('message', (message) => {
  if (message.type === 'open') {
    const raw = Buffer.from(message.key);
    streams.set(message.id, { key: createSecretKey(raw), segments: message.segments, index: 0, fill: 0, cipher: undefined, md5: createHash('md5') });
    raw.fill(0);
    return;
  }
  const stream = streams.get(message.id);
  if (stream === undefined) return;
  if (message.type === 'update') {
    const plaintext = new Uint8Array(message.block, 0, message.length);
    stream.md5.update(plaintext);
    const pieces = [];
    let offset = 0;
    while (offset < plaintext.length) {
      const cipher = stream.cipher ?? openSegment(stream);
      const take = Math.min(SEGMENT_SIZE - stream.fill, plaintext.length - offset);
      pieces.push(cipher.update(plaintext.subarray(offset, offset + take)));
      offset += take;
      stream.fill += take;
      if (stream.fill === SEGMENT_SIZE && stream.index < stream.segments - 1) closeSegment(stream, pieces);
    }
    // The pieces themselves move to the main thread (no concat here): garbage in this isolate would
    // be freed only by its rare GCs (it allocates few JS objects), holding tens of MB of dead buffers.
    parentPort.postMessage({ type: 'data', id: message.id, block: message.block, pieces }, [message.block, ...pieces.flatMap(transferable)]);
  } else if (message.type === 'finish') {
    streams.delete(message.id);
    // The final segment is closed here (never early), so an empty part still gets its one empty, final segment.
    if (stream.cipher === undefined) openSegment(stream);
    const pieces = [];
    closeSegment(stream, pieces);
    parentPort.postMessage({ type: 'final', id: message.id, digest: stream.md5.digest(), pieces }, pieces.flatMap(transferable));
  } else if (message.type === 'drop') {
    streams.delete(message.id);
  }
});
`;

interface StreamHandlers {
  data(block: ArrayBuffer, output: Buffer): void;
  final(digest: Buffer, output: Buffer): void;
  fail(error: Error): void;
}

const asBuffer = (bytes: Uint8Array): Buffer => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);

/** One worker thread and the streams pinned to it; unref'd (never keeps the process alive) while it has none. */
class CryptoWorker {
  private worker: Worker | undefined;
  readonly streams = new Map<number, StreamHandlers>();

  post(message: object, transfer: ArrayBuffer[] = []): void {
    this.ensure().postMessage(message, transfer);
  }

  register(id: number, handlers: StreamHandlers): void {
    this.streams.set(id, handlers);
    this.ensure().ref();
  }

  unregister(id: number, tellWorker: boolean): void {
    if (!this.streams.delete(id)) return;
    if (tellWorker) this.worker?.postMessage({ type: 'drop', id });
    if (this.streams.size === 0) this.worker?.unref();
  }

  private ensure(): Worker {
    if (this.worker !== undefined) return this.worker;
    const worker = new Worker(WORKER_SOURCE, { eval: true });
    worker.on('message', (message: WorkerReply) => {
      const stream = this.streams.get(message.id);
      if (stream === undefined) return;
      // One push per block: handing ~9 pieces (ciphertext runs and tags) on separately costs more than one copy.
      const output = Buffer.concat(message.pieces);
      if (message.type === 'data') stream.data(message.block, output);
      else stream.final(asBuffer(message.digest), output);
    });
    const fail = (error: Error): void => {
      if (this.worker !== worker) return;
      this.worker = undefined;
      const streams = [...this.streams.values()];
      this.streams.clear();
      for (const stream of streams) stream.fail(error);
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`a crypto worker exited with code ${code}`)));
    // Unref'd while no stream is open (after the listeners: attaching a 'message' listener refs it again).
    worker.unref();
    this.worker = worker;
    return worker;
  }
}

/** How many worker threads encrypt: one per CPU this process may use (cpuset-aware), at least one. */
let workerCount = Math.max(1, availableParallelism());
const pool: CryptoWorker[] = [];
let nextStreamId = 1;

/**
 * Sets the number of crypto workers for streams opened from now on (the benchmark compares 1 and 2;
 * the default, one per available CPU, is what the gateway runs with).
 */
export function setCryptoWorkerCount(count: number): void {
  if (!Number.isInteger(count) || count < 1) throw new RangeError('the crypto worker count must be a positive integer');
  workerCount = count;
}

/** The least busy of the first `workerCount` workers (created on first use). */
function pickWorker(): CryptoWorker {
  while (pool.length < workerCount) pool.push(new CryptoWorker());
  let best = pool[0] as CryptoWorker;
  for (let i = 1; i < workerCount; i += 1) {
    const candidate = pool[i] as CryptoWorker;
    if (candidate.streams.size < best.streams.size) best = candidate;
  }
  return best;
}

export interface OffloadedPartEncryptorOptions extends PartEncryptorOptions {
  /**
   * Called with the plaintext MD5 once every byte is in, before the final segment leaves: an error
   * returned here fails the stream, so a body whose digest does not match never completes upstream.
   */
  readonly verifyDigest?: (digest: Buffer) => Error | undefined;
}

/** A drop-in for PartEncryptor (same bytes, same length errors) that also yields the plaintext MD5 (`digest`). */
export class OffloadedPartEncryptor extends Transform {
  readonly ciphertextLength: number;
  readonly salt: Buffer;
  /** The plaintext MD5, set when the stream has flushed. */
  digest: Buffer | undefined;
  private readonly id = nextStreamId++;
  private readonly worker: CryptoWorker;
  private readonly plaintextLength: number;
  private readonly verifyDigest: ((digest: Buffer) => Error | undefined) | undefined;
  private header: Buffer | undefined;
  private received = 0;
  private readonly free: ArrayBuffer[] = [];
  /** Blocks back from the worker whose ciphertext the reader has not asked past yet. */
  private readonly held: ArrayBuffer[] = [];
  private current: Buffer | undefined;
  private fill = 0;
  private waiting: { resolve: () => void; reject: (error: Error) => void } | undefined;
  private finishing: { callback: TransformCallback } | undefined;
  private failure: Error | undefined;
  private released = false;

  constructor(options: OffloadedPartEncryptorOptions) {
    super();
    this.salt = options.salt ?? randomBytes(SALT_SIZE);
    this.plaintextLength = options.plaintextLength;
    this.ciphertextLength = partCiphertextLength(options.plaintextLength);
    this.verifyDigest = options.verifyDigest;
    const keys = derivePartKeys(options.dataKey, options, this.salt);
    this.header = encodePartHeader({ ...options, salt: this.salt, commitment: keys.commitment });
    // The key goes to the worker in its own ArrayBuffer (transferred), and this copy is wiped.
    const key = new ArrayBuffer(keys.encryptionKey.length);
    keys.encryptionKey.copy(Buffer.from(key));
    keys.encryptionKey.fill(0);
    for (let i = 0; i < BLOCKS_PER_STREAM; i += 1) this.free.push(new ArrayBuffer(CRYPTO_BLOCK_SIZE));
    this.worker = pickWorker();
    this.worker.register(this.id, {
      data: (block, output) => {
        if (this.released) return;
        if (this.push(output)) this.free.push(block);
        else this.held.push(block);
        this.wake();
      },
      final: (digest, output) => this.onFinal(digest, output),
      fail: (error) => this.onWorkerFailure(error),
    });
    this.worker.post({ type: 'open', id: this.id, key, segments: segmentCount(options.plaintextLength) }, [key]);
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    if (this.failure !== undefined) return callback(this.failure);
    if (this.received + chunk.length > this.plaintextLength) return callback(new PartLengthError(this.received + chunk.length, this.plaintextLength));
    this.received += chunk.length;
    this.sendHeader();
    this.copyIn(chunk, 0, callback);
  }

  override _flush(callback: TransformCallback): void {
    if (this.failure !== undefined) return callback(this.failure);
    if (this.received !== this.plaintextLength) return callback(new PartLengthError(this.received, this.plaintextLength));
    this.sendHeader();
    if (this.fill > 0) this.sendBlock();
    this.finishing = { callback };
    this.worker.post({ type: 'finish', id: this.id });
  }

  /** The reader wants more: blocks held back for it become free again. */
  override _read(size: number): void {
    if (this.held.length > 0) {
      this.free.push(...this.held.splice(0));
      this.wake();
    }
    super._read(size);
  }

  override _destroy(error: Error | null, callback: (error: Error | null) => void): void {
    this.close(true);
    callback(error);
  }

  /** Copies `chunk` from `offset` into blocks, sending each full one; waits for a free block when none is on hand. */
  private copyIn(chunk: Buffer, offset: number, callback: TransformCallback): void {
    while (offset < chunk.length) {
      if (this.current === undefined) {
        const block = this.free.pop();
        if (block === undefined) {
          const from = offset;
          new Promise<void>((resolve, reject) => (this.waiting = { resolve, reject })).then(() => this.copyIn(chunk, from, callback), callback);
          return;
        }
        this.current = Buffer.from(block);
        this.fill = 0;
      }
      const copied = chunk.copy(this.current, this.fill, offset);
      this.fill += copied;
      offset += copied;
      if (this.fill === CRYPTO_BLOCK_SIZE) this.sendBlock();
    }
    callback();
  }

  private sendHeader(): void {
    if (this.header === undefined) return;
    this.push(this.header);
    this.header = undefined;
  }

  private sendBlock(): void {
    const block = (this.current as Buffer).buffer as ArrayBuffer;
    const length = this.fill;
    this.current = undefined;
    this.fill = 0;
    this.worker.post({ type: 'update', id: this.id, block, length }, [block]);
  }

  private wake(): void {
    const waiting = this.waiting;
    if (waiting === undefined || this.free.length === 0) return;
    this.waiting = undefined;
    waiting.resolve();
  }

  private onFinal(digest: Buffer, output: Buffer): void {
    this.close(false);
    const finishing = this.finishing;
    if (finishing === undefined) return;
    this.digest = digest;
    // Failing here keeps the final segment (and its tag) from leaving, so the upstream never gets a complete body.
    const rejection = this.verifyDigest?.(digest);
    if (rejection !== undefined) return finishing.callback(rejection);
    this.push(output);
    finishing.callback();
  }

  private onWorkerFailure(error: Error): void {
    this.failure = error;
    this.released = true;
    const waiting = this.waiting;
    this.waiting = undefined;
    waiting?.reject(error);
    this.finishing?.callback(error);
  }

  private close(tellWorker: boolean): void {
    if (this.released) return;
    this.released = true;
    this.worker.unregister(this.id, tellWorker);
  }
}
