/**
 * TLS certificate reload: the pair check, the reloader's change detection (in-memory file system, fake
 * timers), and the real thing — the gateway serving TLS from a Kubernetes-style Secret volume whose
 * `..data` symlink is swapped, with new handshakes presenting the new certificate, a mismatched pair
 * refused, and a file rewritten in place. Certificates are made by the openssl command line.
 */
import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type TLSSocket } from 'node:tls';
import { stringify } from 'yaml';
import { loadConfig } from '../../src/config';
import { checkTlsPair, startTlsReloader, type TlsPair, type TlsReloaderFs } from '../../src/server/tls-reloader';
import { createLogger, type Logger } from '../../src/observability/logger';
import { startGateway, type RunningGateway } from '../../src/app/serve';
import { makeCertificate, type TestCertificate } from '../support/openssl-certs';
import { collectLogLines } from '../support/log-lines';

let A: TestCertificate;
let B: TestCertificate;
let C: TestCertificate;
beforeAll(() => {
  A = makeCertificate('gateway-a.test', 30);
  B = makeCertificate('gateway-b.test', 60);
  C = makeCertificate('gateway-c.test', 90);
});

/** Lines of a PEM body long enough to be unmistakable if they ever showed up in a log or a message. */
const keyMaterial = (pem: string): string[] => pem.split('\n').filter((line) => line.length >= 40);

describe('checkTlsPair', () => {
  test('a matching pair is accepted, with its notAfter and fingerprint', () => {
    const check = checkTlsPair({ cert: A.certPem, key: A.keyPem });
    expect(check).toMatchObject({ ok: true, fingerprint256: A.fingerprint256 });
    expect(check.ok && Math.floor(check.notAfter.getTime() / 1000)).toBe(A.notAfterSeconds);
  });

  test.each([
    ['a key of another certificate', () => ({ cert: A.certPem, key: B.keyPem }), 'the private key does not belong to the certificate'],
    ['a certificate that is not PEM', () => ({ cert: 'garbage', key: A.keyPem }), 'the certificate file holds no valid PEM certificate'],
    ['a key that is not a key', () => ({ cert: A.certPem, key: A.certPem }), 'the key file holds no valid unencrypted PEM private key'],
    ['the two files swapped', () => ({ cert: A.keyPem, key: A.certPem }), 'the certificate file holds no valid PEM certificate'],
  ])('refuses %s, without quoting either file', (_name, pair, problem) => {
    const check = checkTlsPair(pair());
    expect(check).toEqual({ ok: false, problem });
    for (const line of [...keyMaterial(A.keyPem), ...keyMaterial(B.keyPem)]) expect(JSON.stringify(check)).not.toContain(line);
  });
});

describe('startTlsReloader (in-memory files, fake timers)', () => {
  const CERT = '/tls/tls.crt';
  const KEY = '/tls/tls.key';
  let files: Map<string, string>;
  let watchers: Array<() => void>;
  let applied: TlsPair[];
  let results: string[];
  let notAfters: number[];
  let warnings: Array<Record<string, unknown>>;
  let stop: () => void;

  const memoryFs: TlsReloaderFs = {
    readFile: (path) => {
      const content = files.get(path);
      if (content === undefined) throw Object.assign(new Error(`ENOENT: ${path}`), { code: 'ENOENT' });
      return content;
    },
    watch: (_directory, onEvent) => {
      watchers.push(onEvent);
      return { close: () => (watchers = watchers.filter((w) => w !== onEvent)) };
    },
  };
  const log = {
    warn: (fields: Record<string, unknown>) => warnings.push(fields),
    info: () => undefined,
    debug: () => undefined,
  } as unknown as Logger;

  beforeEach(() => {
    jest.useFakeTimers();
    files = new Map([
      [CERT, A.certPem],
      [KEY, A.keyPem],
    ]);
    watchers = [];
    applied = [];
    results = [];
    notAfters = [];
    warnings = [];
    ({ stop } = startTlsReloader({
      certFile: CERT,
      keyFile: KEY,
      current: { cert: A.certPem, key: A.keyPem },
      apply: (pair) => applied.push(pair),
      intervalMs: 10_000,
      debounceMs: 500,
      onReload: (result) => results.push(result),
      onCertificate: (seconds) => notAfters.push(seconds),
      log,
      fs: memoryFs,
    }));
  });
  afterEach(() => {
    stop();
    jest.useRealTimers();
  });

  test('reports the served certificate at start; unchanged files never reload', () => {
    expect(notAfters).toEqual([A.notAfterSeconds]);
    jest.advanceTimersByTime(60_000);
    watchers.forEach((w) => w());
    jest.advanceTimersByTime(5_000);
    expect(applied).toEqual([]);
    expect(results).toEqual([]);
  });

  test('a change found by the periodic check is applied once two reads 500 ms apart agree', () => {
    files.set(CERT, B.certPem);
    files.set(KEY, B.keyPem);
    jest.advanceTimersByTime(10_000); // the check sees the change
    expect(applied).toEqual([]);
    jest.advanceTimersByTime(500); // the confirming read agrees
    expect(applied).toEqual([{ cert: B.certPem, key: B.keyPem }]);
    expect(results).toEqual(['success']);
    expect(notAfters).toEqual([A.notAfterSeconds, B.notAfterSeconds]);
    jest.advanceTimersByTime(60_000);
    expect(results).toEqual(['success']);
  });

  test('a watch event (the ..data swap) triggers the reload without waiting for the periodic check', () => {
    files.set(CERT, B.certPem);
    files.set(KEY, B.keyPem);
    watchers.forEach((w) => w());
    jest.advanceTimersByTime(1_000);
    expect(applied).toHaveLength(1);
    expect(results).toEqual(['success']);
  });

  test('a half-finished update (certificate written, key not yet) is not tried', () => {
    files.set(CERT, B.certPem);
    jest.advanceTimersByTime(10_000);
    files.set(KEY, B.keyPem); // lands before the confirming read
    jest.advanceTimersByTime(500);
    expect(applied).toEqual([]);
    jest.advanceTimersByTime(500);
    expect(applied).toEqual([{ cert: B.certPem, key: B.keyPem }]);
    expect(results).toEqual(['success']);
    expect(warnings).toEqual([]);
  });

  test('a mismatched pair keeps the current certificate, warns once without key material, and a fix is picked up', () => {
    files.set(CERT, B.certPem); // with A's key
    jest.advanceTimersByTime(10_500);
    expect(applied).toEqual([]);
    expect(results).toEqual(['failure']);
    expect(warnings).toEqual([{ certFile: CERT, keyFile: KEY, problem: 'the private key does not belong to the certificate' }]);
    jest.advanceTimersByTime(60_000);
    watchers.forEach((w) => w());
    jest.advanceTimersByTime(1_000);
    expect(results).toEqual(['failure']); // the same content is not tried or reported again
    files.set(KEY, B.keyPem);
    jest.advanceTimersByTime(10_500);
    expect(applied).toEqual([{ cert: B.certPem, key: B.keyPem }]);
    expect(results).toEqual(['failure', 'success']);
    for (const line of keyMaterial(A.keyPem)) expect(JSON.stringify(warnings)).not.toContain(line);
  });

  test('a file that stays unreadable is a failure naming the error code; its return is a change', () => {
    files.delete(KEY);
    jest.advanceTimersByTime(10_500);
    expect(results).toEqual(['failure']);
    expect(warnings[0]?.['problem']).toBe('keyFile "/tls/tls.key" cannot be read (ENOENT)');
    files.set(KEY, A.keyPem); // back to what is served: nothing to do
    jest.advanceTimersByTime(20_000);
    expect(results).toEqual(['failure']);
    expect(applied).toEqual([]);
  });

  test('a server that refuses the context counts as a failure', () => {
    stop();
    ({ stop } = startTlsReloader({
      certFile: CERT,
      keyFile: KEY,
      current: { cert: A.certPem, key: A.keyPem },
      apply: () => {
        throw Object.assign(new Error('no'), { code: 'ERR_SOMETHING' });
      },
      intervalMs: 10_000,
      onReload: (result) => results.push(result),
      log,
      fs: memoryFs,
    }));
    files.set(CERT, B.certPem);
    files.set(KEY, B.keyPem);
    jest.advanceTimersByTime(10_500);
    expect(results).toEqual(['failure']);
    expect(warnings[0]?.['problem']).toBe('the server refused the new context (ERR_SOMETHING)');
  });
});

describe('the gateway reloads its certificate from a Kubernetes-style Secret volume', () => {
  let directory: string;
  let tlsDir: string;
  let gateway: RunningGateway;
  const { lines, sink } = collectLogLines();

  /** Publishes a pair like the kubelet's atomic writer: a new `..<name>` directory, then `..data` swapped by rename. */
  function publish(name: string, cert: string, key: string): void {
    const target = join(tlsDir, `..${name}`);
    mkdirSync(target);
    writeFileSync(join(target, 'tls.crt'), cert);
    writeFileSync(join(target, 'tls.key'), key, { mode: 0o600 });
    symlinkSync(`..${name}`, join(tlsDir, '..data_tmp'));
    renameSync(join(tlsDir, '..data_tmp'), join(tlsDir, '..data'));
  }

  function handshake(): Promise<TLSSocket> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host: '127.0.0.1', port: gateway.port, rejectUnauthorized: false });
      socket.once('secureConnect', () => resolve(socket));
      socket.once('error', reject);
    });
  }

  async function servedFingerprint(): Promise<string> {
    const socket = await handshake();
    const fingerprint = socket.getPeerCertificate().fingerprint256;
    socket.destroy();
    return fingerprint;
  }

  async function until(condition: () => Promise<boolean>, what: string): Promise<void> {
    for (let i = 0; i < 200; i++) {
      if (await condition()) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`timed out waiting for: ${what}`);
  }

  const reloads = async (result: string) => (await gateway.metrics.tlsReloads.get()).values.find((v) => v.labels.result === result)?.value ?? 0;
  const notAfter = async () => (await gateway.metrics.tlsCertificateNotAfter.get()).values[0]?.value;

  beforeAll(async () => {
    directory = mkdtempSync(join(tmpdir(), 'coffer-tls-'));
    tlsDir = join(directory, 'tls');
    mkdirSync(tlsDir);
    publish('2026_01_01_a', A.certPem, A.keyPem);
    symlinkSync(join('..data', 'tls.crt'), join(tlsDir, 'tls.crt'));
    symlinkSync(join('..data', 'tls.key'), join(tlsDir, 'tls.key'));
    const configFile = join(directory, 'config.yaml');
    writeFileSync(
      configFile,
      stringify({
        server: { port: 0, adminPort: 0, tls: { certFile: join(tlsDir, 'tls.crt'), keyFile: join(tlsDir, 'tls.key'), reloadIntervalMs: 1000 } },
        embeddedUpstream: { enabled: true, directory: join(directory, 'upstream') },
        demo: { enabled: true, secretId: 'AKIDtlsreload', secretKey: 'tls-reload-secret-0123456789' },
        keyring: { directory: join(directory, 'keyring') },
      }),
    );
    gateway = await startGateway(loadConfig({ file: configFile, env: {} }), { log: createLogger('info', sink) });
    // Start-up readiness checks touch the upstream and the key provider; let their first round finish.
    await gateway.dependenciesAttempted;
  });

  afterAll(async () => {
    await gateway?.stop();
    rmSync(directory, { recursive: true, force: true });
  });

  test('serves A; after the ..data swap new handshakes get B while an open connection keeps working', async () => {
    expect(await servedFingerprint()).toBe(A.fingerprint256);
    expect(await notAfter()).toBe(A.notAfterSeconds);
    const held = await handshake();

    publish('2026_02_01_b', B.certPem, B.keyPem);
    await until(async () => (await servedFingerprint()) === B.fingerprint256, 'B to be served');
    expect(await reloads('success')).toBe(1);
    expect(await reloads('failure')).toBe(0);
    expect(await notAfter()).toBe(B.notAfterSeconds);

    // The connection set up before the swap still talks HTTP, with A.
    expect(held.getPeerCertificate().fingerprint256).toBe(A.fingerprint256);
    const answer = await new Promise<string>((resolve) => {
      let text = '';
      held.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')));
      held.on('close', () => resolve(text)); // `Connection: close`: the whole answer, then the end
      held.write(`GET /demo-1250000000/missing.bin HTTP/1.1\r\nHost: 127.0.0.1:${gateway.port}\r\nConnection: close\r\n\r\n`);
    });
    expect(answer).toMatch(/^HTTP\/1\.1 401 [\s\S]*<Code>AuthFailed<\/Code>/); // unsigned, but answered over the old connection
    held.destroy();
  });

  test('a mismatched pair is refused: B stays, one warning without key material', async () => {
    publish('2026_03_01_c', C.certPem, A.keyPem);
    await until(async () => (await reloads('failure')) === 1, 'the failed reload');
    expect(await servedFingerprint()).toBe(B.fingerprint256);
    expect(await notAfter()).toBe(B.notAfterSeconds);
    const warnings = lines.filter((l) => l.includes('cannot be served; keeping the current certificate'));
    expect(warnings).toHaveLength(1);
    expect(JSON.parse(warnings[0] as string)).toMatchObject({ level: 'warn', problem: 'the private key does not belong to the certificate' });
    const leaked = [A, B, C].flatMap((c) => keyMaterial(c.keyPem)).filter((line) => lines.some((l) => l.includes(line)));
    expect(leaked).toEqual([]);
    expect(lines.some((l) => l.includes('PRIVATE KEY'))).toBe(false);
  });

  test('the key file rewritten in place (no symlink swap) completes the pair: C is served', async () => {
    writeFileSync(join(tlsDir, '..2026_03_01_c', 'tls.key'), C.keyPem);
    await until(async () => (await servedFingerprint()) === C.fingerprint256, 'C to be served');
    expect(await reloads('success')).toBe(2);
    expect(await notAfter()).toBe(C.notAfterSeconds);
    expect(lines.filter((l) => l.includes('"TLS certificate reloaded"'))).toHaveLength(2);
  });
});
