/**
 * The plaintext MD5 of a part (its CDCS ETag, and the Content-MD5 check) computed on a worker thread,
 * in parallel with encryption on the main thread.
 *
 * Why: MD5 cannot be parallelised within one stream and runs at ~0.6–0.8 GB/s in Node; on the upload
 * path it costs more than AES-GCM, and on one thread the two add up. The worker takes it off the
 * request thread; the ETag is needed only when the part ends.
 *
 * How, with bounded memory: each stream owns BLOCKS_PER_STREAM blocks of BLOCK_SIZE bytes. Incoming
 * chunks are copied into the current block (chunks from sockets are slices of shared pools and cannot
 * be transferred); a full block is transferred (zero-copy) to the worker, which hashes it and
 * transfers it back. When every block of a stream is with the worker, `update` returns a promise and
 * the caller waits — backpressure — so a stream never holds more than BLOCKS_PER_STREAM × BLOCK_SIZE.
 * One worker serves every stream of the process; messages of a stream are handled in order.
 */
import { Worker } from 'node:worker_threads';

export const MD5_BLOCK_SIZE = 512 * 1024;
const BLOCKS_PER_STREAM = 2;

type WorkerMessage =
  | { type: 'ack'; id: number; buffer: ArrayBuffer }
  | { type: 'digest'; id: number; digest: Uint8Array };

// Plain CommonJS, evaluated by the worker: no build step, no file to locate at run time.
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const hashes = new Map();
parentPort.on('message', (message) => {
  let hash = hashes.get(message.id);
  if (hash === undefined) {
    hash = createHash('md5');
    hashes.set(message.id, hash);
  }
  if (message.type === 'update') {
    hash.update(new Uint8Array(message.buffer, 0, message.length));
    parentPort.postMessage({ type: 'ack', id: message.id, buffer: message.buffer }, [message.buffer]);
  } else if (message.type === 'digest') {
    hashes.delete(message.id);
    parentPort.postMessage({ type: 'digest', id: message.id, digest: hash.digest() });
  } else if (message.type === 'drop') {
    hashes.delete(message.id);
  }
});
`;

interface StreamHandlers {
  ack(buffer: ArrayBuffer): void;
  digest(digest: Buffer): void;
  fail(error: Error): void;
}

/** The process's MD5 worker, started on first use and unref'd (it never keeps the process alive). */
class Md5Worker {
  private worker: Worker | undefined;
  private readonly streams = new Map<number, StreamHandlers>();
  private nextId = 1;

  /** The worker keeps the process alive exactly while some stream is open (it may be awaiting a digest). */
  register(handlers: StreamHandlers): number {
    const id = this.nextId++;
    this.streams.set(id, handlers);
    this.ensure().ref();
    return id;
  }

  unregister(id: number): void {
    if (!this.streams.delete(id)) return;
    this.worker?.postMessage({ type: 'drop', id });
    if (this.streams.size === 0) this.worker?.unref();
  }

  post(message: { type: 'update'; id: number; buffer: ArrayBuffer; length: number } | { type: 'digest'; id: number }): void {
    const worker = this.ensure();
    if (message.type === 'update') worker.postMessage(message, [message.buffer]);
    else worker.postMessage(message);
  }

  private ensure(): Worker {
    if (this.worker !== undefined) return this.worker;
    const worker = new Worker(WORKER_SOURCE, { eval: true });
    worker.on('message', (message: WorkerMessage) => {
      const stream = this.streams.get(message.id);
      if (stream === undefined) return;
      if (message.type === 'ack') stream.ack(message.buffer);
      else stream.digest(Buffer.from(message.digest.buffer, message.digest.byteOffset, message.digest.byteLength));
    });
    const fail = (error: Error): void => {
      if (this.worker !== worker) return;
      this.worker = undefined;
      const streams = [...this.streams.values()];
      this.streams.clear();
      for (const stream of streams) stream.fail(error);
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`the MD5 worker exited with code ${code}`)));
    // Unref'd while no stream is open (after the listeners: attaching a 'message' listener refs it again).
    worker.unref();
    this.worker = worker;
    return worker;
  }
}

const shared = new Md5Worker();

/** One stream's MD5, computed by the shared worker. Feed with `update`, end with `digest`, or `abort`. */
export class OffloadedMd5 {
  private readonly id: number;
  private readonly free: ArrayBuffer[] = [];
  private current: Buffer | undefined;
  private fill = 0;
  private waiting: { resolve: () => void; reject: (error: Error) => void } | undefined;
  private result: { resolve: (digest: Buffer) => void; reject: (error: Error) => void } | undefined;
  private failure: Error | undefined;
  private done = false;

  constructor() {
    for (let i = 0; i < BLOCKS_PER_STREAM; i += 1) this.free.push(new ArrayBuffer(MD5_BLOCK_SIZE));
    this.id = shared.register({
      ack: (buffer) => {
        this.free.push(buffer);
        const waiting = this.waiting;
        this.waiting = undefined;
        waiting?.resolve();
      },
      digest: (digest) => {
        shared.unregister(this.id);
        this.result?.resolve(digest);
      },
      fail: (error) => {
        this.failure = error;
        this.waiting?.reject(error);
        this.result?.reject(error);
      },
    });
  }

  /**
   * Copies `chunk` in. Returns undefined when it fits in the blocks on hand, or a promise that settles
   * when the worker has handed a block back and the rest of `chunk` is in — wait for it before the next call.
   */
  update(chunk: Buffer): Promise<void> | undefined {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    let offset = 0;
    while (offset < chunk.length) {
      if (this.current === undefined) {
        const block = this.free.pop();
        if (block === undefined) return this.waitForBlock().then(() => this.update(chunk.subarray(offset)));
        this.current = Buffer.from(block);
        this.fill = 0;
      }
      const copied = chunk.copy(this.current, this.fill, offset);
      this.fill += copied;
      offset += copied;
      if (this.fill === MD5_BLOCK_SIZE) this.send();
    }
    return undefined;
  }

  /** The MD5 of everything passed to `update`. */
  digest(): Promise<Buffer> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    if (this.done) return Promise.reject(new Error('digest() was already called'));
    this.done = true;
    if (this.fill > 0) this.send();
    return new Promise((resolve, reject) => {
      this.result = { resolve, reject };
      shared.post({ type: 'digest', id: this.id });
    });
  }

  /** Forgets the stream (the worker drops its state); safe to call at any time. */
  abort(): void {
    this.done = true;
    shared.unregister(this.id);
  }

  private send(): void {
    const block = this.current as Buffer;
    this.current = undefined;
    const length = this.fill;
    this.fill = 0;
    shared.post({ type: 'update', id: this.id, buffer: block.buffer as ArrayBuffer, length });
  }

  private waitForBlock(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.waiting = { resolve, reject };
    });
  }
}
