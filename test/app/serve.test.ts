/**
 * startGateway as a library call: a start that fails part-way (here the admin port is taken) closes
 * everything it had opened — the embedded upstream, the data listener, timers — and a later start works.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../src/config';
import { createLogger } from '../../src/observability/logger';
import { startGateway } from '../../src/app/serve';
import { EmbeddedUpstream } from '../../src/embedded-upstream';
import * as garbageCollection from '../../src/util/garbage-collection';

/** Listening sockets of this process. A closed server's handle is released in a later loop phase (close callbacks), so let a timer turn pass first. */
async function listeners(): Promise<number> {
  await new Promise((resolve) => setTimeout(resolve, 1));
  return process.getActiveResourcesInfo().filter((kind) => kind === 'TCPServerWrap').length;
}

test('a start that fails part-way leaves no listener behind; the next start succeeds', async () => {
  const directory = mkdtempSync(join(tmpdir(), 'coffer-serve-'));
  const blocker: Server = createServer();
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
  const takenPort = (blocker.address() as AddressInfo).port;
  const env = (adminPort: number) => ({
    PORT: '0',
    COFFER__SERVER__ADMIN_PORT: String(adminPort),
    COFFER__KEYRING__DIRECTORY: join(directory, 'keyring'),
    COFFER__EMBEDDED_UPSTREAM__DIRECTORY: join(directory, 'upstream'),
  });
  try {
    const before = await listeners();
    // The embedded upstream and the data listener are up by the time the admin listener fails.
    await expect(startGateway(loadConfig({ env: env(takenPort) }), { log: createLogger('silent') })).rejects.toThrow(/EADDRINUSE/);
    expect(await listeners()).toBe(before);
    const gateway = await startGateway(loadConfig({ env: env(0) }), { log: createLogger('silent') });
    expect(await listeners()).toBe(before + 3); // embedded upstream, data plane, admin
    await gateway.stop();
    expect(await listeners()).toBe(before);
  } finally {
    await new Promise((resolve) => blocker.close(resolve));
    rmSync(directory, { recursive: true, force: true });
  }
});

test("with releaseStartUpGarbage (the CLI's serve), start-up's garbage is released once, before the data and admin listeners accept; a library caller's heap is left alone", async () => {
  const directory = mkdtempSync(join(tmpdir(), 'coffer-serve-'));
  const env = { PORT: '0', COFFER__SERVER__ADMIN_PORT: '0', COFFER__KEYRING__DIRECTORY: join(directory, 'keyring'), COFFER__EMBEDDED_UPSTREAM__DIRECTORY: join(directory, 'upstream') };
  const before = await listeners();
  const listeningAtRelease: number[] = [];
  const release = jest.spyOn(garbageCollection, 'releaseStartUpGarbage').mockImplementation(() => {
    listeningAtRelease.push(process.getActiveResourcesInfo().filter((kind) => kind === 'TCPServerWrap').length);
  });
  try {
    const gateway = await startGateway(loadConfig({ env }), { log: createLogger('silent'), releaseStartUpGarbage: true });
    await gateway.stop();
    expect(listeningAtRelease).toEqual([before + 1]); // the embedded upstream only
    const library = await startGateway(loadConfig({ env }), { log: createLogger('silent') });
    await library.stop();
    expect(listeningAtRelease).toHaveLength(1);
  } finally {
    release.mockRestore();
    rmSync(directory, { recursive: true, force: true });
  }
});

describe('readiness follows the dependencies a coffer cannot work without', () => {
  async function readyz(port: number): Promise<{ status: number; body: string }> {
    const response = await fetch(`http://127.0.0.1:${port}/readyz`);
    return { status: response.status, body: await response.text() };
  }

  test('the embedded default turns ready once its coffer answered (role, upstream, data key)', async () => {
    const directory = mkdtempSync(join(tmpdir(), 'coffer-serve-'));
    const env = { PORT: '0', COFFER__SERVER__ADMIN_PORT: '0', COFFER__KEYRING__DIRECTORY: join(directory, 'keyring'), COFFER__EMBEDDED_UPSTREAM__DIRECTORY: join(directory, 'upstream') };
    const gateway = await startGateway(loadConfig({ env }), { log: createLogger('silent') });
    try {
      await gateway.dependenciesChecked;
      expect(await readyz(gateway.adminPort)).toEqual({ status: 200, body: 'ready\n' });
    } finally {
      await gateway.stop();
      rmSync(directory, { recursive: true, force: true });
    }
  });

  test('a coffer whose upstream does not answer keeps the replica not ready, naming the coffer and the check, and no secret', async () => {
    const directory = mkdtempSync(join(tmpdir(), 'coffer-serve-'));
    // A port that was just free: nothing listens there.
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const deadPort = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const secretKey = 'upstream-secret-1234567890abcdef';
    const config = {
      server: { port: 0, adminPort: 0 },
      auth: { accessKeys: [{ secretId: 'AKIDreadiness0001', secretKey: 'client-secret-0123456789abcdef', grants: [{ coffer: 'gone-1250000000', actions: ['*'] }] }] },
      keyring: { directory: join(directory, 'keyring'), create: true },
      coffers: {
        'gone-1250000000': {
          upstream: { endpoint: `http://127.0.0.1:${deadPort}`, bucket: 'gone', credentials: { accessKeyId: 'AKIDUPSTREAM0001', secretAccessKey: secretKey }, connectTimeoutMs: 1000 },
          kms: { type: 'local', keyId: 'gone' },
        },
      },
    };
    const file = join(directory, 'config.json');
    writeFileSync(file, JSON.stringify(config));
    const lines: string[] = [];
    const gateway = await startGateway(loadConfig({ file, env: {} }), { log: createLogger('warn', { write: (line: string) => lines.push(line) }) });
    try {
      // The first attempt fails fast (connection refused); readiness then names it until stop.
      for (let i = 0; i < 200 && !/upstream:/.test((await readyz(gateway.adminPort)).body); i += 1) await new Promise((resolve) => setTimeout(resolve, 25));
      const answer = await readyz(gateway.adminPort);
      expect(answer.status).toBe(503);
      expect(answer.body).toMatch(/^not ready: coffer gone-1250000000: upstream: .*ECONNREFUSED/);
      expect(answer.body).not.toContain(secretKey);
      expect(lines.join('')).toMatch(/dependency check failed; not ready/);
      expect(lines.join('')).not.toContain(secretKey);
    } finally {
      await gateway.stop();
      rmSync(directory, { recursive: true, force: true });
    }
  });

  test('a coffer class is a dependency too: its bucket not answering keeps the replica not ready, naming the class; once it answers, ready', async () => {
    const directory = mkdtempSync(join(tmpdir(), 'coffer-serve-'));
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const deadPort = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const keys = { accessKeyId: 'AKIDCLASSREADY0001', secretAccessKey: 'class-ready-secret-0123456789abcdef' };
    const upstream = await EmbeddedUpstream.start({ directory: join(directory, 'upstream'), bucket: 'ready', ...keys });
    const coffer = (endpoint: string, prefix: string) => ({ upstream: { endpoint, bucket: 'ready', prefix, forcePathStyle: true, credentials: keys, connectTimeoutMs: 1000 }, kms: { type: 'local', keyId: 'ready' } });
    const configFile = (name: string, classEndpoint: string): string => {
      const file = join(directory, `${name}.json`);
      writeFileSync(
        file,
        JSON.stringify({
          server: { port: 0, adminPort: 0 },
          auth: { accessKeys: [{ secretId: 'AKIDreadiness0002', secretKey: 'client-secret-0123456789abcdef', grants: [{ coffer: '*', actions: ['*'] }] }] },
          keyring: { directory: join(directory, 'keyring'), create: true },
          coffers: { 'static-1250000000': coffer(upstream.endpoint, 'static/') },
          cofferClasses: { team: { pattern: 'team-*-1250000000', coffer: coffer(classEndpoint, 'created/') } },
        }),
      );
      return file;
    };
    try {
      const broken = await startGateway(loadConfig({ file: configFile('dead-class', `http://127.0.0.1:${deadPort}`), env: {} }), { log: createLogger('silent') });
      try {
        await broken.dependenciesAttempted;
        const answer = await readyz(broken.adminPort);
        expect(answer.status).toBe(503);
        // The configured coffer passed; only the class is named.
        expect(answer.body).toMatch(/^not ready: coffer class team: upstream: .*ECONNREFUSED/);
        expect(answer.body).not.toContain('(and');
        expect(answer.body).not.toContain(keys.secretAccessKey);
      } finally {
        await broken.stop();
      }
      const working = await startGateway(loadConfig({ file: configFile('live-class', upstream.endpoint), env: {} }), { log: createLogger('silent') });
      try {
        await working.dependenciesChecked;
        expect(await readyz(working.adminPort)).toEqual({ status: 200, body: 'ready\n' });
      } finally {
        await working.stop();
      }
    } finally {
      await upstream.close();
      rmSync(directory, { recursive: true, force: true });
    }
  });
});
