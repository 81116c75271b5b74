/**
 * startGateway as a library call: a start that fails part-way (here the admin port is taken) closes
 * everything it had opened — the embedded upstream, the data listener, timers — and a later start works.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../src/config';
import { createLogger } from '../src/observability/logger';
import { startGateway } from '../src/serve';

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
