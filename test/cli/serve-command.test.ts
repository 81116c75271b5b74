/**
 * The demo banner of `serve`: a SecretKey is printed only when the gateway generated it; one that came
 * from COFFER_DEMO_SECRET_KEY (or the configuration) is never copied to the terminal.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { demoBanner } from '../../src/cli/serve-command';
import { loadConfig } from '../../src/config';
import { createLogger } from '../../src/observability/logger';
import { startGateway } from '../../src/app/serve';

let directory: string;
beforeAll(() => (directory = mkdtempSync(join(tmpdir(), 'coffer-serve-banner-'))));
afterAll(() => rmSync(directory, { recursive: true, force: true }));

async function bannerWith(env: Record<string, string>): Promise<{ banner: string; secretKey: string }> {
  const config = loadConfig({ env: { PORT: '0', COFFER__SERVER__ADMIN_PORT: '0', COFFER__KEYRING__DIRECTORY: join(directory, 'keyring'), COFFER__EMBEDDED_UPSTREAM__DIRECTORY: join(directory, 'upstream'), ...env } });
  const gateway = await startGateway(config, { log: createLogger('silent') });
  try {
    const demo = gateway.demoCredentials;
    if (demo === undefined) throw new Error('the embedded default has a demo coffer');
    return { banner: demoBanner(demo, `http://127.0.0.1:${gateway.port}`, gateway.egressCaFile), secretKey: demo.secretKey };
  } finally {
    await gateway.stop();
  }
}

test('a SecretKey from COFFER_DEMO_SECRET_KEY is not printed (the SecretId is)', async () => {
  const { banner } = await bannerWith({ COFFER_DEMO_SECRET_ID: 'AKIDbanner', COFFER_DEMO_SECRET_KEY: 'banner-secret-key-0123456789' });
  expect(banner).toContain('SecretId:  AKIDbanner');
  expect(banner).not.toContain('banner-secret-key-0123456789');
  expect(banner).toContain('SecretKey: (as configured; not printed)');
});

test('a generated SecretKey is printed, since nobody else knows it', async () => {
  const { banner, secretKey } = await bannerWith({});
  expect(secretKey.length).toBeGreaterThanOrEqual(16);
  expect(banner).toContain(`SecretKey: ${secretKey}`);
});

test('the banner names the egress CA certificate to trust with the proxy (next to the keyring), never the CA key', async () => {
  const { banner } = await bannerWith({});
  const caFile = join(directory, 'egress-ca', 'ca.pem');
  expect(banner).toMatch(/HTTPS proxy: Proxy http:\/\/127\.0\.0\.1:\d+ with NODE_EXTRA_CA_CERTS=(.+)\n/);
  expect(banner).toContain(`NODE_EXTRA_CA_CERTS=${caFile}`);
  const key = readFileSync(join(directory, 'egress-ca', 'ca-key.pem'), 'utf8');
  expect(banner).not.toContain('ca-key.pem');
  expect(banner).not.toContain(key.split('\n')[1] as string);
});
