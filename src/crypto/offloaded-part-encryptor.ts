/**
 * Part encryption with both per-byte costs — the plaintext MD5 (the CDCS ETag, the Content-MD5 check)
 * and AES-256-GCM — on worker threads, so the request thread carries only socket I/O and one copy.
 *
 * Why: MD5 (~1.4 ms/MiB) and GCM (~0.6–1 ms/MiB) on the main thread capped one process at one core
 * for the bytes of every part (the main thread measured ~2.3× a plain passthrough's per MiB). On
 * workers the part's bytes use the other cores, and one process scales with the CPUs it may use.
 *
 * How, with bounded memory and without per-block allocation: a pool of workers (one per CPU the
 * process may use, started on first use); each stream is pinned to the least busy worker, which keeps
 * the stream's MD5 and GCM state and handles its messages in order. The plaintext goes to the worker in
 * batches of up to CRYPTO_BLOCK_SIZE bytes, without a copy where it can: with `takeChunks` (the upload
 * path), a chunk that owns its whole ArrayBuffer — every body chunk Node's HTTP parser delivers is a
 * fresh one — is moved to the worker (transferred, detached here); any other chunk is copied into a
 * SharedArrayBuffer input block from a process-wide pool. A batch goes to the worker with an output
 * block from the same pool; the worker hashes it, encrypts it into the output block and answers with
 * the length. The ciphertext is pushed
 * as a view of the output block; the consumer hands it back with `release(chunk)` once it is done
 * with it (streamedPut does, when the socket has taken it), and the block is reused. A consumer that
 * never releases (a test collecting chunks) gets a fresh output block each time instead — never a
 * block that is overwritten under it. A stream has at most BLOCKS_PER_STREAM batches open (being
 * filled, with the worker, or answered while its reader has no room), and a batch is closed only when
 * the reader has room for more (its ciphertext was pushed without exceeding the high-water mark, or
 * the reader has asked for more since), so a stream holds at most those batches' plaintext, their
 * ciphertext and the readable side's high-water mark, whatever the part size.
 *
 * Why move the chunks: copying each byte into a shared block was the request thread's largest cost
 * beyond what a plain proxy does (~0.25 ms/MiB of memmove into blocks last touched by another core,
 * measured with `perf`; docs/development/benchmarks.md). The moved chunks' memory is freed by the
 * worker's collections instead of the request thread's.
 *
 * Why no fresh buffers: V8 counts external (ArrayBuffer) memory allocated since the last full GC
 * against the old generation's limit. Transferring ~9 ciphertext pieces per block and joining them
 * allocated ~2 MiB of external memory per MiB moved on the request thread (plus the socket's own reads),
 * and under CPU contention V8 settled, in about half the processes, into a mark-compact every ~100 ms
 * with four helper threads — ~3.5 ms/MiB of GC, the unexplained half of the gateway's CPU per MiB
 * (docs/development/benchmarks.md). With shared blocks the request thread allocates only the socket's reads
 * (and, with `takeChunks`, hands most of those to the worker).
 *
 * The bytes are exactly PartEncryptor's (docs/FORMAT.md; the format vectors are checked against
 * both): the header is built here, on the main thread, with the same code; the worker runs the same
 * segment loop (a cipher per 64 KiB segment, nonce = index ‖ final flag, the tag after each segment).
 */
import { randomBytes } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Transform, type TransformCallback } from 'node:stream';
import { isArrayBuffer } from 'node:util/types';
import { isMarkedAsUntransferable, Worker } from 'node:worker_threads';
import { derivePartKeys } from '../format/part-keys';
import { SALT_SIZE, SEGMENT_SIZE, encodePartHeader, partCiphertextLength, segmentCount } from '../format/part-format';
import { PartLengthError, type PartEncryptorOptions } from './part-encryptor';

/**
 * The most plaintext one message to a worker carries. Why 512 KiB: the request thread's cost per batch
 * (a message each way, pushing the ciphertext on, a pause and resume of the body) was about as large as
 * its cost per byte beyond a plain proxy; 512 KiB instead of 256 KiB measured ~0.1 ms/MiB less there,
 * for ~1 MiB more in flight per stream (docs/development/benchmarks.md, "The request thread, profiled").
 */
export const CRYPTO_BLOCK_SIZE = 512 * 1024;
const BLOCKS_PER_STREAM = 2;
const TAG_SIZE = 16;
/** A batch's ciphertext: its plaintext and at most one tag per segment it closes (a batch of n bytes closes at most ceil(n / SEGMENT_SIZE), wherever it starts). */
const outputSize = (inputSize: number): number => inputSize + TAG_SIZE * Math.ceil(inputSize / SEGMENT_SIZE);
/** Bytes of plaintext the request thread copies into shared blocks between its young-generation collections (per open stream; see countTowardsCollection). */
const COLLECT_EVERY = 4 * 1024 * 1024;
/** Bytes of ciphertext a crypto worker produces between its young-generation collections (see the worker source): half the request thread's, as the moved plaintext dies there too. */
const WORKER_COLLECT_EVERY = 2 * 1024 * 1024;
/** Idle blocks kept for reuse per kind once the pool has been quiet for IDLE_TRIM_MS (a burst's extra blocks are let go then). */
const MAX_IDLE_BLOCKS = 8;
const IDLE_TRIM_MS = 10_000;
const OUTPUT_BLOCK_SIZE = outputSize(CRYPTO_BLOCK_SIZE);

type WorkerReply = { type: 'data'; id: number; length: number } | { type: 'final'; id: number; digest: Uint8Array; tail: Uint8Array };

// Plain CommonJS, evaluated by the worker: no build step, no file to locate at run time (also under jest).
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { createCipheriv, createHash, createSecretKey } = require('node:crypto');
const SEGMENT_SIZE = ${SEGMENT_SIZE};
const streams = new Map();
// cipher.update allocates each ciphertext run in this isolate, where it dies as soon as it is copied
// into the shared output block, and plaintext chunks moved here from the request thread die once they
// are encrypted. This isolate allocates almost no JS objects, so V8 would collect those buffers only
// when their external memory reached its 64 MB trigger — tens of MB of dead buffers per worker in RSS. A young-generation collection (microseconds: nearly nothing is live) after every
// COLLECT_EVERY bytes bounds them instead (here nothing waits across streams: each run dies at once). node:v8 documents setting flags at run time; --expose-gc
// only makes gc() available to contexts created afterwards (this one, through node:vm).
const COLLECT_EVERY = ${WORKER_COLLECT_EVERY};
require('node:v8').setFlagsFromString('--expose-gc');
const collectGarbage = require('node:vm').runInNewContext('gc');
let sinceCollection = 0;
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
    // The plaintext pieces are chunks moved here or views of a shared input block, in order; the
    // ciphertext is copied into the shared output block (cipher.update has no "into" form; the copy
    // costs ~0.03 ms/MiB).
    const output = Buffer.from(message.output);
    let written = 0;
    for (const plaintext of message.pieces) {
      stream.md5.update(plaintext);
      let offset = 0;
      while (offset < plaintext.length) {
        const cipher = stream.cipher ?? openSegment(stream);
        const take = Math.min(SEGMENT_SIZE - stream.fill, plaintext.length - offset);
        written += cipher.update(plaintext.subarray(offset, offset + take)).copy(output, written);
        offset += take;
        stream.fill += take;
        if (stream.fill === SEGMENT_SIZE && stream.index < stream.segments - 1) {
          const pieces = [];
          closeSegment(stream, pieces);
          for (const piece of pieces) written += piece.copy(output, written);
        }
      }
    }
    parentPort.postMessage({ type: 'data', id: message.id, length: written });
    sinceCollection += written;
    if (sinceCollection >= COLLECT_EVERY) {
      sinceCollection = 0;
      collectGarbage({ type: 'minor' });
    }
  } else if (message.type === 'finish') {
    streams.delete(message.id);
    // The final segment is closed here (never early), so an empty part still gets its one empty, final segment.
    if (stream.cipher === undefined) openSegment(stream);
    const pieces = [];
    closeSegment(stream, pieces);
    parentPort.postMessage({ type: 'final', id: message.id, digest: stream.md5.digest(), tail: Buffer.concat(pieces) });
  } else if (message.type === 'drop') {
    streams.delete(message.id);
  }
});
`;

interface StreamHandlers {
  data(length: number): void;
  final(digest: Buffer, tail: Buffer): void;
  fail(error: Error): void;
}

const asBuffer = (bytes: Uint8Array): Buffer => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);

/**
 * Shared blocks kept for reuse across streams: input blocks, and output blocks (with room for the
 * tags). Every stream, small parts included, uses these two sizes, so every block comes back here.
 *
 * Why the pool never drops a block while blocks are in demand: SharedArrayBuffer memory is not counted
 * by V8's external-memory heuristics, and a block's JS wrapper lives long enough to be promoted to the
 * old generation. A dropped block is therefore freed only by a full GC that nothing else prompts:
 * dropping and re-allocating under load (32 concurrent parts) grew RSS past 1 GB in a measured run.
 * So returned blocks are all kept, and only when the pool has had no use for IDLE_TRIM_MS is it cut
 * back to MAX_IDLE_BLOCKS per kind (a burst's blocks, let go once).
 */
const idleBlocks = new Map<number, Buffer[]>([
  [CRYPTO_BLOCK_SIZE, []],
  [OUTPUT_BLOCK_SIZE, []],
]);
let trimTimer: NodeJS.Timeout | undefined;

function trimIdleBlocks(): void {
  trimTimer = undefined;
  for (const idle of idleBlocks.values()) idle.splice(MAX_IDLE_BLOCKS);
}

/**
 * A young-generation collection of this isolate, every COLLECT_EVERY bytes of plaintext copied into
 * shared blocks (moved chunks take their memory to the worker and are not counted: a detached buffer
 * holds none). Why: a body that is not moved arrives as a fresh Buffer per socket read (Node's HTTP
 * parser copies each one), dead as soon as it is copied into a block — but collected only when the young generation
 * fills with JS objects, which this path allocates few of: ~15 MB of dead reads piled up between
 * collections. V8 counts external memory allocated since the last full GC against the old
 * generation's limit, so under CPU contention (when V8 keeps that limit close to the ~25 MB live heap)
 * the pile triggered a full mark-compact every ~100 ms (~2–3.5 ms of helper-thread CPU per MiB). A
 * collection here costs well under a millisecond (almost nothing in the young generation is live) and
 * keeps the pile, and RSS, to a few MB. (node:v8 documents setting flags at run time; --expose-gc only
 * makes gc() available to contexts created afterwards, this one through node:vm.)
 */
let collectYoungGeneration: ((options: { type: 'minor' }) => void) | undefined;
/** Streams between construction and their end (final answer or destruction). */
let openStreams = 0;
let sinceCollection = 0;
function countTowardsCollection(bytes: number): void {
  sinceCollection += bytes;
  // Per open stream: a chunk waiting in a stream's buffers lives while the other streams move their
  // bytes too, and must not survive two collections (it would be promoted, and freed only by a full GC).
  if (sinceCollection < COLLECT_EVERY * Math.max(1, openStreams)) return;
  sinceCollection = 0;
  if (collectYoungGeneration === undefined) {
    setFlagsFromString('--expose-gc');
    collectYoungGeneration = runInNewContext('gc') as (options: { type: 'minor' }) => void;
  }
  collectYoungGeneration({ type: 'minor' });
}

/** A view of a whole shared block of `size` (CRYPTO_BLOCK_SIZE or OUTPUT_BLOCK_SIZE) bytes: an idle one, or a new one. */
function takeBlock(size: number): Buffer {
  // In use again: the trim waits for the next quiet period.
  if (trimTimer !== undefined) trimTimer.refresh();
  return idleBlocks.get(size)?.pop() ?? Buffer.from(new SharedArrayBuffer(size));
}

/** Returns a whole block nobody uses any more (the worker has answered for it and its reader released it). */
function returnBlock(block: Buffer): void {
  idleBlocks.get(block.length)?.push(block);
  if (trimTimer === undefined) trimTimer = setTimeout(trimIdleBlocks, IDLE_TRIM_MS).unref();
  else trimTimer.refresh();
}

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
      if (message.type === 'data') stream.data(message.length);
      else stream.final(asBuffer(message.digest), asBuffer(message.tail));
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
  /**
   * The written chunks become the encryptor's: one that owns its whole ArrayBuffer (every body chunk
   * Node's HTTP parser delivers does) is moved to the crypto worker instead of copied, and is empty
   * (detached) afterwards. Only for a writer that never looks at or reuses a chunk once written (a
   * request body); a reused one then arrives empty and the part fails as too short, never wrong.
   */
  readonly takeChunks?: boolean;
}

/** Plaintext on its way to the worker: chunks moved as they are, and bytes copied into a shared input block. */
interface Batch {
  readonly pieces: Uint8Array[];
  readonly moved: ArrayBuffer[];
  bytes: number;
  /** The shared input block the copied pieces are in (taken on the first copy). */
  block: Buffer | undefined;
  blockFill: number;
}

/** Whether `chunk` is the whole of an ordinary ArrayBuffer that may be transferred (not a slice of a pool, not shared memory). */
const ownsItsMemory = (chunk: Buffer): boolean => chunk.byteOffset === 0 && isArrayBuffer(chunk.buffer) && chunk.byteLength === chunk.buffer.byteLength && !isMarkedAsUntransferable(chunk.buffer);

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
  private readonly takeChunks: boolean;
  /** A batch is sent when it holds this many bytes (fewer than it can for a part smaller than a block). */
  private readonly blockSize: number;
  private header: Buffer | undefined;
  private received = 0;
  /** Batches open: being filled, with the worker, or answered and held (at most BLOCKS_PER_STREAM). */
  private open = 0;
  /** Batches answered whose ciphertext the reader has not asked past yet (they still count as open). */
  private held = 0;
  /** Batches with the worker, in order (their shared input block, if any, and output block): the worker answers each stream's messages in order. */
  private readonly inFlight: Array<{ block: Buffer | undefined; output: Buffer }> = [];
  /** Output blocks pushed to the reader and not yet released, by their shared memory. */
  private readonly lent = new Map<ArrayBufferLike, Buffer>();
  private batch: Batch | undefined;
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
    this.takeChunks = options.takeChunks === true;
    this.blockSize = Math.max(1, Math.min(CRYPTO_BLOCK_SIZE, options.plaintextLength));
    const keys = derivePartKeys(options.dataKey, options, this.salt);
    this.header = encodePartHeader({ ...options, salt: this.salt, commitment: keys.commitment });
    // The key goes to the worker in its own ArrayBuffer (transferred), and this copy is wiped.
    const key = new ArrayBuffer(keys.encryptionKey.length);
    keys.encryptionKey.copy(Buffer.from(key));
    keys.encryptionKey.fill(0);
    this.worker = pickWorker();
    openStreams += 1;
    this.worker.register(this.id, {
      data: (length) => this.onData(length),
      final: (digest, tail) => this.onFinal(digest, tail),
      fail: (error) => this.onWorkerFailure(error),
    });
    this.worker.post({ type: 'open', id: this.id, key, segments: segmentCount(options.plaintextLength) }, [key]);
  }

  /**
   * The reader is done with a chunk this stream pushed (e.g. the socket has taken it): its output
   * block may be reused. Anything else (the header, a chunk released twice) is ignored.
   */
  release(chunk: Buffer): void {
    const block = this.lent.get(chunk.buffer);
    if (block === undefined) return;
    this.lent.delete(chunk.buffer);
    returnBlock(block);
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    if (this.failure !== undefined) return callback(this.failure);
    if (this.received + chunk.length > this.plaintextLength) return callback(new PartLengthError(this.received + chunk.length, this.plaintextLength));
    this.received += chunk.length;
    this.sendHeader();
    this.addToBatches(chunk, 0, callback);
  }

  override _flush(callback: TransformCallback): void {
    if (this.failure !== undefined) return callback(this.failure);
    if (this.received !== this.plaintextLength) return callback(new PartLengthError(this.received, this.plaintextLength));
    this.sendHeader();
    if (this.batch !== undefined) this.sendBatch();
    this.finishing = { callback };
    this.worker.post({ type: 'finish', id: this.id });
  }

  /** The reader wants more: batches held back for it are closed. */
  override _read(size: number): void {
    if (this.held > 0) {
      this.open -= this.held;
      this.held = 0;
      this.wake();
    }
    super._read(size);
  }

  override _destroy(error: Error | null, callback: (error: Error | null) => void): void {
    const detached = !this.released;
    this.close(true);
    if (detached) this.returnBatchBlock();
    callback(error);
  }

  /**
   * Adds `chunk` from `offset` to batches — moved whole when it may be, else copied — sending each
   * full one; waits for a batch to close when BLOCKS_PER_STREAM are open.
   */
  private addToBatches(chunk: Buffer, offset: number, callback: TransformCallback): void {
    let movable = this.takeChunks && offset === 0 && chunk.length <= this.blockSize && ownsItsMemory(chunk);
    while (offset < chunk.length) {
      if (this.batch === undefined) {
        if (this.open >= BLOCKS_PER_STREAM) {
          const from = offset;
          new Promise<void>((resolve, reject) => (this.waiting = { resolve, reject })).then(() => this.addToBatches(chunk, from, callback), callback);
          return;
        }
        this.open += 1;
        this.batch = { pieces: [], moved: [], bytes: 0, block: undefined, blockFill: 0 };
      }
      const batch = this.batch;
      const room = this.blockSize - batch.bytes;
      // The same chunk written twice into one batch is copied the second time (a buffer is moved once).
      if (movable && batch.moved.includes(chunk.buffer as ArrayBuffer)) movable = false;
      if (movable && chunk.length > room) {
        // A moved chunk is never split: it starts the next batch.
        this.sendBatch();
        continue;
      }
      if (movable) {
        batch.pieces.push(chunk);
        batch.moved.push(chunk.buffer as ArrayBuffer);
        batch.bytes += chunk.length;
        offset = chunk.length;
      } else {
        const block = (batch.block ??= takeBlock(CRYPTO_BLOCK_SIZE));
        const copied = chunk.copy(block, batch.blockFill, offset, offset + room);
        // Consecutive copies extend one view of the block.
        const last = batch.pieces[batch.pieces.length - 1];
        if (last !== undefined && last.buffer === block.buffer && last.byteOffset + last.length === batch.blockFill) batch.pieces[batch.pieces.length - 1] = block.subarray(last.byteOffset, batch.blockFill + copied);
        else batch.pieces.push(block.subarray(batch.blockFill, batch.blockFill + copied));
        batch.blockFill += copied;
        batch.bytes += copied;
        offset += copied;
      }
      if (batch.bytes === this.blockSize) this.sendBatch();
    }
    callback();
  }

  private sendHeader(): void {
    if (this.header === undefined) return;
    this.push(this.header);
    this.header = undefined;
  }

  private sendBatch(): void {
    const batch = this.batch as Batch;
    this.batch = undefined;
    const output = takeBlock(OUTPUT_BLOCK_SIZE);
    this.inFlight.push({ block: batch.block, output });
    // The moved chunks are detached here (they now belong to the worker); views of shared blocks are shared, not moved.
    this.worker.post({ type: 'update', id: this.id, pieces: batch.pieces, output: output.buffer }, batch.moved);
    // Only copied chunks die here: moved ones left their memory to the worker, whose collections free it.
    countTowardsCollection(batch.pieces.reduce((copied, piece) => copied + piece.length, 0));
  }

  private onData(length: number): void {
    const { block, output } = this.inFlight.shift() as { block: Buffer | undefined; output: Buffer };
    if (this.released) return;
    if (block !== undefined) returnBlock(block);
    this.lent.set(output.buffer, output);
    if (this.push(output.subarray(0, length))) this.open -= 1;
    else this.held += 1;
    this.wake();
  }

  private wake(): void {
    const waiting = this.waiting;
    if (waiting === undefined || this.open >= BLOCKS_PER_STREAM) return;
    this.waiting = undefined;
    waiting.resolve();
  }

  private onFinal(digest: Buffer, tail: Buffer): void {
    this.close(false);
    this.returnBatchBlock();
    const finishing = this.finishing;
    if (finishing === undefined) return;
    this.digest = digest;
    // Failing here keeps the final segment (and its tag) from leaving, so the upstream never gets a complete body.
    const rejection = this.verifyDigest?.(digest);
    if (rejection !== undefined) return finishing.callback(rejection);
    this.push(tail);
    finishing.callback();
  }

  /** The shared input block of a batch not sent yet goes back to the pool (blocks with the worker are its until it answers). */
  private returnBatchBlock(): void {
    const block = this.batch?.block;
    this.batch = undefined;
    if (block !== undefined) returnBlock(block);
  }

  private onWorkerFailure(error: Error): void {
    this.failure = error;
    // The worker is gone (its streams were dropped with it): only the count of open streams is left to settle.
    if (!this.released) openStreams -= 1;
    this.released = true;
    const waiting = this.waiting;
    this.waiting = undefined;
    waiting?.reject(error);
    this.finishing?.callback(error);
  }

  /**
   * Detaches from the worker. Blocks still with the worker (a destroyed stream) are left to the GC:
   * the worker may still be reading or writing them.
   */
  private close(tellWorker: boolean): void {
    if (this.released) return;
    this.released = true;
    openStreams -= 1;
    this.worker.unregister(this.id, tellWorker);
  }
}
