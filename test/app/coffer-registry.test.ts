/**
 * The data-key cache switch of the coffer registry, through a running gateway: with
 * `kms.dataKeyCacheMaxAgeSeconds: 0` ("0 disables the cache") the gateway starts and every part
 * upload unwraps its data key at the key provider; with the cache, the parts find the key Initiate cached.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../src/config';
import { createLogger } from '../../src/observability/logger';
import { startGateway } from '../../src/app/serve';
import { cos, initiate } from '../support/cos-http-client';

const KEYS = { secretId: 'AKIDregistry', secretKey: 'registry-secret-key-0123456789' };

async function decryptsForTwoParts(cacheMaxAgeSeconds: string): Promise<{ decrypts: number; lookups: number }> {
  const directory = mkdtempSync(join(tmpdir(), 'coffer-registry-'));
  const gateway = await startGateway(
    loadConfig({
      env: {
        PORT: '0',
        COFFER__SERVER__ADMIN_PORT: '0',
        COFFER__KMS__DATA_KEY_CACHE_MAX_AGE_SECONDS: cacheMaxAgeSeconds,
        COFFER_DEMO_SECRET_ID: KEYS.secretId,
        COFFER_DEMO_SECRET_KEY: KEYS.secretKey,
        COFFER__KEYRING__DIRECTORY: join(directory, 'keyring'),
        COFFER__EMBEDDED_UPSTREAM__DIRECTORY: join(directory, 'upstream'),
      },
    }),
    { log: createLogger('silent') },
  );
  try {
    const target = { port: gateway.port, coffer: 'demo-1250000000', ...KEYS };
    const uploadId = await initiate(target, 'cache.bin');
    for (const partNumber of [1, 2]) {
      expect(
        (
          await cos(
            target,
            'PUT',
            'cache.bin',
            [
              ['partNumber', String(partNumber)],
              ['uploadId', uploadId],
            ],
            randomBytes(1024),
          )
        ).status,
      ).toBe(200);
    }
    const sum = async (metric: { get(): Promise<{ values: Array<{ value: number; labels: Record<string, unknown> }> }> }, labels: Record<string, string> = {}) =>
      (await metric.get()).values.filter((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x)).reduce((s, v) => s + v.value, 0);
    return { decrypts: await sum(gateway.metrics.keyProviderCalls, { operation: 'Decrypt' }), lookups: await sum(gateway.metrics.dataKeyCacheLookups) };
  } finally {
    await gateway.stop();
    rmSync(directory, { recursive: true, force: true });
  }
}

test('kms.dataKeyCacheMaxAgeSeconds 0 disables the cache: the gateway starts and every part goes to the key provider', async () => {
  expect(await decryptsForTwoParts('0')).toEqual({ decrypts: 2, lookups: 0 });
});

test('with the cache, both parts find the key Initiate put there', async () => {
  expect(await decryptsForTwoParts('300')).toEqual({ decrypts: 0, lookups: 2 });
});
