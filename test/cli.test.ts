/**
 * SIGTERM to the real command line (`node <build>/src/cli.js serve`), the way Kubernetes stops a pod:
 * readiness turns 503 at once, a part that finishes within server.shutdownGraceMs is answered and kept,
 * the process exits 0; a part still streaming when the grace period ends is reset and never replaces
 * the stored version, which a fresh gateway on the same data directory shows.
 *
 * The sources are compiled into a temporary directory first (what `npm run build` does, minus the
 * shared dist/ another test may be running from), so the test always runs the current code.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import type { Socket } from 'node:net';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { loadConfig } from '../src/config';
import { createLogger } from '../src/observability/logger';
import { startGateway } from '../src/app/serve';
import { completeBody, cos, initiate, listedEtags, md5Etag, openCos, type CosAnswer, type CosTarget } from './support/cos-http-client';
import { sha256 } from './support/digests';

const ROOT = join(__dirname, '..');
const MiB = 1024 * 1024;
const COFFER = 'demo-1250000000';
const KEYS = { secretId: 'AKIDcliterm', secretKey: 'cli-sigterm-secret-0123456789' };

let build: string;
beforeAll(() => {
  build = mkdtempSync(join(tmpdir(), 'coffer-cli-build-'));
  execFileSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', join(ROOT, 'tsconfig.build.json'), '--outDir', build], { stdio: 'pipe' });
  // The compiled files resolve their dependencies like dist/ does: through a node_modules next to them.
  symlinkSync(join(ROOT, 'node_modules'), join(build, 'node_modules'), 'dir');
}, 180_000);
afterAll(() => rmSync(build, { recursive: true, force: true }));

interface ServeProcess {
  readonly child: ChildProcess;
  readonly target: CosTarget;
  readonly adminPort: number;
  readonly exited: Promise<number | null>;
  /** Everything written to stdout so far (the JSON log lines). */
  stdout(): string;
  stderr(): string;
  /** Resolves once stderr matches `pattern`. */
  stderrMatches(pattern: RegExp): Promise<void>;
}

const running: ChildProcess[] = [];
afterEach(() => {
  for (const child of running.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
});

function writeConfig(directory: string, shutdownGraceMs: number): string {
  const file = join(directory, 'config.yaml');
  writeFileSync(
    file,
    stringify({
      server: { host: '127.0.0.1', port: 0, adminHost: '127.0.0.1', adminPort: 0, shutdownGraceMs },
      embeddedUpstream: { enabled: true, directory: join(directory, 'upstream') },
      demo: { enabled: true, coffer: COFFER, ...KEYS },
      keyring: { directory: join(directory, 'keyring') },
    }),
  );
  return file;
}

/** Starts `cli.js serve -c <config>` and waits for its "listening" log line. */
async function serve(configFile: string, cwd: string): Promise<ServeProcess> {
  const child = spawn(process.execPath, [join(build, 'src', 'cli.js'), 'serve', '-c', configFile], { cwd, env: { PATH: process.env.PATH ?? '', HOME: cwd }, stdio: ['ignore', 'pipe', 'pipe'] });
  running.push(child);
  let stdout = '';
  let stderr = '';
  const stderrWaiters: Array<() => void> = [];
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
    for (const wake of stderrWaiters.splice(0)) wake();
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const ports = await new Promise<{ port: number; adminPort: number }>((resolve, reject) => {
    child.stdout?.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      for (const line of stdout.split('\n')) {
        try {
          const entry = JSON.parse(line) as { port?: number; adminPort?: number };
          if (typeof entry.port === 'number' && typeof entry.adminPort === 'number') resolve({ port: entry.port, adminPort: entry.adminPort });
        } catch {
          // not a complete JSON line yet
        }
      }
    });
    void exited.then((code) => reject(new Error(`cli.js exited with ${code} before listening; stderr: ${stderr}`)));
  });
  return {
    child,
    target: { port: ports.port, coffer: COFFER, ...KEYS },
    adminPort: ports.adminPort,
    exited,
    stdout: () => stdout,
    stderr: () => stderr,
    stderrMatches: async (pattern) => {
      while (!pattern.test(stderr)) {
        if (child.exitCode !== null) throw new Error(`exited before stderr matched ${pattern}: ${stderr}`);
        await new Promise<void>((resolve) => stderrWaiters.push(resolve));
      }
    },
  };
}

/** A part upload that has been accepted (100 Continue came: the gateway is handling it) and sent `first` of its bytes. */
async function startPart(target: CosTarget, uploadId: string, partNumber: number, body: Buffer, first: number): Promise<{ finish(): void; done: Promise<CosAnswer>; socket: Socket }> {
  const call = openCos(
    target,
    'PUT',
    'term.bin',
    [
      ['partNumber', String(partNumber)],
      ['uploadId', uploadId],
    ],
    body.length,
    { expect: '100-continue' },
  );
  call.req.flushHeaders();
  await new Promise<void>((resolve, reject) => {
    call.req.once('continue', resolve);
    void call.done.then((answer) => reject(new Error(`answered before 100 Continue: ${answer === 'reset' ? 'reset' : answer.status}`)));
  });
  await new Promise<void>((resolve) => call.req.write(body.subarray(0, first), () => resolve()));
  return { finish: () => call.req.end(body.subarray(first)), done: call.done, socket: call.req.socket as Socket };
}

/** SIGTERM, then (once the handler has run) readiness must already be 503 — no retry. */
async function terminate(gateway: ServeProcess): Promise<void> {
  gateway.child.kill('SIGTERM');
  await gateway.stderrMatches(/SIGTERM: draining for up to \d+ ms/);
  expect((await fetch(`http://127.0.0.1:${gateway.adminPort}/readyz`)).status).toBe(503);
}

describe('SIGTERM to `cli.js serve`', () => {
  let directory: string;
  beforeEach(() => {
    directory = mkdtempSync(join(tmpdir(), 'coffer-cli-'));
  });
  afterEach(() => rmSync(directory, { recursive: true, force: true }));

  /** A gateway in this process on the same configuration and data directory. */
  const fresh = (configFile: string) => startGateway(loadConfig({ file: configFile, env: {} }), { log: createLogger('silent') });

  test('readiness 503 at once; a part finishing within the grace period is answered and kept; exit 0', async () => {
    const configFile = writeConfig(directory, 10_000);
    const gateway = await serve(configFile, directory);
    const uploadId = await initiate(gateway.target, 'term.bin');
    const part = randomBytes(6 * MiB);
    const upload = await startPart(gateway.target, uploadId, 1, part, 3 * MiB);

    await terminate(gateway);
    upload.finish();
    expect(await upload.done).toMatchObject({ status: 200, etag: md5Etag(part) });
    expect(await gateway.exited).toBe(0);

    const second = await fresh(configFile);
    try {
      const listed = await cos({ ...gateway.target, port: second.port }, 'GET', 'term.bin', [['uploadId', uploadId]]);
      expect(listed.status).toBe(200);
      expect(listedEtags(listed.text)).toEqual([md5Etag(part)]);
    } finally {
      await second.stop();
    }
  });

  test('a part stalled past the grace period is reset, the process exits, and the stored version stays', async () => {
    const configFile = writeConfig(directory, 1_500);
    const gateway = await serve(configFile, directory);
    const uploadId = await initiate(gateway.target, 'term.bin');
    const v1 = randomBytes(6 * MiB);
    expect(
      (
        await cos(
          gateway.target,
          'PUT',
          'term.bin',
          [
            ['partNumber', '1'],
            ['uploadId', uploadId],
          ],
          v1,
        )
      ).status,
    ).toBe(200);
    const stalled = await startPart(gateway.target, uploadId, 1, randomBytes(6 * MiB), 3 * MiB);

    await terminate(gateway);
    // The client never sends the rest: at the end of the grace period its connection is reset.
    expect(await stalled.done).toBe('reset');
    expect(await gateway.exited).toBe(0);

    const second = await fresh(configFile);
    try {
      const target = { ...gateway.target, port: second.port };
      const listed = await cos(target, 'GET', 'term.bin', [['uploadId', uploadId]]);
      expect(listedEtags(listed.text)).toEqual([md5Etag(v1)]);
      expect((await cos(target, 'POST', 'term.bin', [['uploadId', uploadId]], completeBody([[1, md5Etag(v1)]]))).status).toBe(200);
      const read = await cos(target, 'GET', 'term.bin');
      expect(read.status).toBe(200);
      expect(sha256(read.body)).toBe(sha256(v1));
    } finally {
      await second.stop();
    }
  });

  test('connections still open after the grace period are reset (RST, not FIN), and the process exits within the grace period + 10 s', async () => {
    const graceMs = 1_500;
    const configFile = writeConfig(directory, graceMs);
    const gateway = await serve(configFile, directory);
    const uploadId = await initiate(gateway.target, 'term.bin');
    // Two parts accepted and stalled half-way: every byte sent was read by the gateway, so a plain
    // close would reach the client as a FIN — which a careless client could take for a finished exchange.
    const stalled = await Promise.all([1, 2].map((n) => startPart(gateway.target, uploadId, n, randomBytes(6 * MiB), 3 * MiB)));
    const endings = stalled.map(({ socket }) => {
      let sawFin = false;
      return new Promise<string>((resolve) => {
        socket.on('end', () => (sawFin = true));
        socket.on('error', (error: NodeJS.ErrnoException) => resolve(error.code === 'ECONNRESET' ? 'RST' : `error ${error.code}`));
        socket.on('close', () => resolve(sawFin ? 'FIN' : 'closed'));
      });
    });
    const signalled = Date.now();
    await terminate(gateway);
    expect(await Promise.all(endings)).toEqual(['RST', 'RST']);
    expect(await gateway.exited).toBe(0);
    // The stated bound (README): the grace period, then the reset, then exit — generously within 10 s more.
    expect(Date.now() - signalled).toBeLessThan(graceMs + 10_000);
  });
});

describe('the audit line in the log of `cli.js serve` (what `npm start` runs), at the default level', () => {
  let directory: string;
  beforeEach(() => (directory = mkdtempSync(join(tmpdir(), 'coffer-cli-audit-'))));
  afterEach(() => rmSync(directory, { recursive: true, force: true }));

  test('one line per request: principal, coffer, key, operation, status, code, bytes in/out, duration, request id; no secret', async () => {
    const gateway = await serve(writeConfig(directory, 1_000), directory);
    const body = randomBytes(4096);
    const put = await cos(gateway.target, 'PUT', 'audit/served.bin', [], body);
    const unsigned = await fetch(`http://127.0.0.1:${gateway.target.port}/${COFFER}/audit/served.bin`);
    expect([put.status, unsigned.status]).toEqual([200, 401]);
    const auditOf = (requestId: string) =>
      gateway
        .stdout()
        .split('\n')
        .filter((line) => line.includes(requestId))
        .map((line) => JSON.parse(line) as Record<string, unknown>)
        .filter((entry) => entry['msg'] === 'request');
    // The line is written when the response has closed; the client may see the answer a moment before.
    for (let i = 0; i < 100 && auditOf(unsigned.headers.get('x-cos-request-id') as string).length === 0; i += 1) await new Promise((resolve) => setTimeout(resolve, 20));
    expect(auditOf(put.headers['x-cos-request-id'] as string)).toEqual([
      expect.objectContaining({ level: 'info', principal: KEYS.secretId, coffer: COFFER, key: 'audit/served.bin', operation: 'PutObject', status: 200, code: 'OK', bytesIn: body.length, bytesOut: 0, durationMs: expect.any(Number) }),
    ]);
    expect(auditOf(unsigned.headers.get('x-cos-request-id') as string)).toEqual([expect.objectContaining({ level: 'info', coffer: COFFER, operation: 'GetObject', status: 401 })]);
    expect(gateway.stdout()).not.toContain(KEYS.secretKey);
    gateway.child.kill('SIGTERM');
    expect(await gateway.exited).toBe(0);
  });
});
