#!/usr/bin/env node
/**
 * The `coffer-gateway` executable (package.json `bin`, `npm start` runs `node dist/src/cli.js serve`).
 * The commands live in src/cli/; this file only runs the dispatcher and exits with its code.
 */
import { processIo } from './cli/cli-io';
import { runCli } from './cli/main';

/** Exits once stdout and stderr took everything written (a pipe may still hold a decrypted tail). */
function exitWhenFlushed(code: number): void {
  process.exitCode = code;
  // A destroyed stream may never call back; the exit code is set either way.
  setTimeout(() => process.exit(code), 5_000).unref();
  let pending = 2;
  const done = (): void => {
    pending -= 1;
    if (pending === 0) process.exit(code);
  };
  process.stdout.write('', done);
  process.stderr.write('', done);
}

runCli(process.argv.slice(2), processIo()).then(
  (code) => {
    // `serve` keeps running until a signal; every other command exits explicitly, so a kept-alive
    // socket of an SDK client can never hold the process open after its work is done.
    if (code !== 'running') exitWhenFlushed(code);
  },
  (error: unknown) => {
    process.stderr.write(`coffer-gateway: ${(error as Error)?.message ?? String(error)}\n`);
    exitWhenFlushed(1);
  },
);
