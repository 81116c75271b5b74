/**
 * Reloads the data-plane TLS certificate when its files change, without a restart: cert-manager renews
 * certificates weeks before they expire, and Kubernetes updates a mounted Secret in place.
 *
 * How Kubernetes updates a Secret volume: the new files go into a fresh `..<timestamp>` directory, then
 * the `..data` symlink is swapped to it with one atomic rename; `tls.crt` and `tls.key` are symlinks
 * through `..data`. The files themselves are never written, so inotify on them sees nothing, and their
 * mtime may not change. Hence:
 * - change detection compares the CONTENT (a hash of both files, read through the symlinks) — on every
 *   `intervalMs` tick (the safety net) and after any event of an fs.watch on the files' directories
 *   (where the `..data` rename shows up, so reloads are prompt);
 * - a change is applied only after two reads `debounceMs` apart agree, so a half-finished update (the
 *   certificate written, the key not yet) is not even tried;
 * - the new pair must parse, belong together and be accepted by OpenSSL before `apply` (the server's
 *   `setSecureContext`) is called; otherwise the current certificate stays, a warning is logged once
 *   for that content, and the failure is counted. Nothing logged or reported contains key material.
 * Established connections keep the context they were set up with; new handshakes get the new one.
 */
import { X509Certificate, createHash, createPrivateKey } from 'node:crypto';
import { watch as fsWatch, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { createSecureContext } from 'node:tls';
import type { Logger } from '../observability/logger';

export interface TlsPair {
  /** PEM certificate chain, leaf first. */
  readonly cert: string;
  /** PEM private key (secret). */
  readonly key: string;
}

export type TlsPairCheck = { readonly ok: true; readonly notAfter: Date; readonly fingerprint256: string; readonly subject: string } | { readonly ok: false; readonly problem: string };

/**
 * Whether `pair` can be served: the leaf certificate parses, the key is an unencrypted private key, the
 * key belongs to the certificate, and OpenSSL builds a context from both. Problems never quote content.
 */
export function checkTlsPair(pair: TlsPair): TlsPairCheck {
  let certificate: X509Certificate;
  try {
    certificate = new X509Certificate(pair.cert);
  } catch {
    return { ok: false, problem: 'the certificate file holds no valid PEM certificate' };
  }
  let matches: boolean;
  try {
    matches = certificate.checkPrivateKey(createPrivateKey(pair.key));
  } catch {
    return { ok: false, problem: 'the key file holds no valid unencrypted PEM private key' };
  }
  if (!matches) return { ok: false, problem: 'the private key does not belong to the certificate' };
  try {
    createSecureContext({ cert: pair.cert, key: pair.key });
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    return { ok: false, problem: `OpenSSL refuses the pair${typeof code === 'string' ? ` (${code})` : ''}` };
  }
  return { ok: true, notAfter: new Date(certificate.validTo), fingerprint256: certificate.fingerprint256, subject: certificate.subject.replace(/\n/g, ', ') };
}

/** The file-system operations the reloader uses; tests pass an in-memory double. */
export interface TlsReloaderFs {
  /** The file's content (follows symlinks). Throws like fs.readFileSync. */
  readFile(path: string): string;
  /** Calls `onEvent` on any change inside `directory` until closed; may throw if watching is impossible. */
  watch(directory: string, onEvent: () => void): { close(): void };
}

const nodeFs: TlsReloaderFs = {
  readFile: (path) => readFileSync(path, 'utf8'),
  watch: (directory, onEvent) => {
    // Not persistent: a watcher must never keep the process alive.
    const watcher = fsWatch(directory, { persistent: false }, () => onEvent());
    // A watcher that breaks (the directory itself replaced) is dropped; the periodic check remains.
    watcher.on('error', () => watcher.close());
    return watcher;
  },
};

export interface TlsReloaderOptions {
  readonly certFile: string;
  readonly keyFile: string;
  /** The pair the server was started with. */
  readonly current: TlsPair;
  /** Installs a new pair (the server's setSecureContext). Throwing counts as a failed reload. */
  readonly apply: (pair: TlsPair) => void;
  /** Content check period; the fs.watch events make most reloads faster than this. */
  readonly intervalMs: number;
  /** Two reads this far apart must agree before a change is applied. Default 500 ms. */
  readonly debounceMs?: number;
  readonly onReload?: (result: 'success' | 'failure') => void;
  /** The served certificate's notAfter, unix seconds: at start and after every reload. */
  readonly onCertificate?: (notAfterSeconds: number) => void;
  readonly log?: Logger;
  readonly fs?: TlsReloaderFs;
  /** Clock for the "already expired" warning. */
  readonly now?: () => number;
}

export interface TlsReloader {
  /** Stops watching and polling. */
  stop(): void;
}

/** Length-prefixed, so no two different pairs share a digest by moving bytes between the files. */
function digest(parts: readonly string[]): string {
  const hash = createHash('sha256');
  for (const part of parts) hash.update(`${Buffer.byteLength(part)}:`).update(part);
  return hash.digest('hex');
}

type Snapshot = { readonly hash: string; readonly pair: TlsPair } | { readonly hash: string; readonly problem: string };

export function startTlsReloader(options: TlsReloaderOptions): TlsReloader {
  const fs = options.fs ?? nodeFs;
  const log = options.log;
  const now = options.now ?? Date.now;
  const debounceMs = options.debounceMs ?? 500;
  const files = { certFile: options.certFile, keyFile: options.keyFile };
  let appliedHash = digest([options.current.cert, options.current.key]);
  /** Content that was refused: not tried (nor warned about) again until the files change. */
  let refusedHash: string | undefined;
  /** What the previous read saw while a change is being confirmed (undefined: not read yet). */
  let seenHash: string | undefined;
  let confirmTimer: NodeJS.Timeout | undefined;
  let stopped = false;

  const initial = checkTlsPair(options.current);
  if (initial.ok) options.onCertificate?.(Math.floor(initial.notAfter.getTime() / 1000));

  const read = (): Snapshot => {
    const contents: string[] = [];
    const failures: string[] = [];
    for (const [name, path] of Object.entries(files)) {
      try {
        contents.push(fs.readFile(path));
      } catch (error) {
        const code = (error as { code?: unknown }).code;
        failures.push(`${name} ${JSON.stringify(path)} cannot be read (${typeof code === 'string' ? code : 'read error'})`);
        contents.push(`\u0000unreadable:${typeof code === 'string' ? code : ''}`);
      }
    }
    const hash = digest(contents);
    if (failures.length > 0) return { hash, problem: failures.join('; ') };
    return { hash, pair: { cert: contents[0] as string, key: contents[1] as string } };
  };

  const settled = (hash: string): boolean => hash === appliedHash || hash === refusedHash;

  const schedule = (hash: string | undefined): void => {
    seenHash = hash;
    clearTimeout(confirmTimer);
    confirmTimer = setTimeout(confirm, debounceMs);
    confirmTimer.unref();
  };

  function refuse(hash: string, problem: string): void {
    refusedHash = hash;
    options.onReload?.('failure');
    log?.warn({ ...files, problem }, 'TLS certificate files changed but cannot be served; keeping the current certificate');
  }

  function confirm(): void {
    confirmTimer = undefined;
    if (stopped) return;
    const snapshot = read();
    if (settled(snapshot.hash)) return;
    if (snapshot.hash !== seenHash) {
      // Still changing (or first read after a watch event): look again once it held still for debounceMs.
      schedule(snapshot.hash);
      return;
    }
    if ('problem' in snapshot) {
      refuse(snapshot.hash, snapshot.problem);
      return;
    }
    const check = checkTlsPair(snapshot.pair);
    if (!check.ok) {
      refuse(snapshot.hash, check.problem);
      return;
    }
    try {
      options.apply(snapshot.pair);
    } catch (error) {
      const code = (error as { code?: unknown }).code;
      refuse(snapshot.hash, `the server refused the new context${typeof code === 'string' ? ` (${code})` : ''}`);
      return;
    }
    appliedHash = snapshot.hash;
    refusedHash = undefined;
    options.onReload?.('success');
    options.onCertificate?.(Math.floor(check.notAfter.getTime() / 1000));
    const fields = { ...files, subject: check.subject, fingerprint256: check.fingerprint256, notAfter: check.notAfter.toISOString() };
    if (check.notAfter.getTime() <= now()) log?.warn(fields, 'TLS certificate reloaded, but it has already expired');
    else log?.info(fields, 'TLS certificate reloaded');
  }

  const tick = (): void => {
    if (stopped || confirmTimer !== undefined) return;
    const snapshot = read();
    if (!settled(snapshot.hash)) schedule(snapshot.hash);
  };

  const poller = setInterval(tick, options.intervalMs);
  poller.unref();
  const watchers: Array<{ close(): void }> = [];
  for (const directory of new Set([dirname(options.certFile), dirname(options.keyFile)])) {
    try {
      watchers.push(fs.watch(directory, () => !stopped && schedule(undefined)));
    } catch (error) {
      log?.debug({ directory, err: (error as Error).message }, 'cannot watch the TLS directory; relying on the periodic check');
    }
  }

  return {
    stop: () => {
      stopped = true;
      clearInterval(poller);
      clearTimeout(confirmTimer);
      for (const watcher of watchers) watcher.close();
    },
  };
}
