/**
 * What a command may touch of its process: output streams and the environment. Injected so tests run
 * commands in-process and read what they wrote; `processIo()` is the real thing.
 */
export interface OutputStream {
  write(chunk: string | Uint8Array, callback?: (error?: Error | null) => void): boolean;
  once(event: 'drain' | 'error' | 'close', listener: (...args: unknown[]) => void): unknown;
  removeListener(event: 'drain' | 'error' | 'close', listener: (...args: unknown[]) => void): unknown;
  /** Set on terminals: decides whether a progress bar is drawn and whether binary output is refused. */
  readonly isTTY?: boolean;
  readonly columns?: number;
}

export interface CliIo {
  readonly stdout: OutputStream;
  readonly stderr: OutputStream;
  readonly env: NodeJS.ProcessEnv;
}

export function processIo(): CliIo {
  return { stdout: process.stdout, stderr: process.stderr, env: process.env };
}

/** Exit codes of every command. */
export const EXIT_OK = 0;
/** Something failed: a check, an object, the configuration, an upstream or KMS call. */
export const EXIT_FAILURE = 1;
/** The command line itself is wrong (unknown option, missing argument). */
export const EXIT_USAGE = 2;

/** Writes honouring backpressure: resolves once the stream accepted the chunk (or rejects if it failed). */
export function writeChunk(stream: OutputStream, chunk: Uint8Array | string): Promise<void> {
  return new Promise((resolve, reject) => {
    let settled = false;
    const onError = (error: unknown): void => {
      if (settled) return;
      settled = true;
      stream.removeListener('drain', onDrain);
      reject(error instanceof Error ? error : new Error(String(error)));
    };
    const onDrain = (): void => {
      if (settled) return;
      settled = true;
      stream.removeListener('error', onError);
      resolve();
    };
    stream.once('error', onError);
    if (stream.write(chunk)) {
      settled = true;
      stream.removeListener('error', onError);
      resolve();
    } else {
      stream.once('drain', onDrain);
    }
  });
}
