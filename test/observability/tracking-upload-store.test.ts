/**
 * The metric decorators forward every argument unchanged. A decorator that re-listed its parameters
 * once dropped putObject's `{ createOnly: true }`, so the write-once manifest (and the coffer key
 * record) were written as plain overwrites behind it — the If-None-Match race guard gone.
 */
import { PassThrough } from 'node:stream';
import { Gauge, Histogram, Registry } from 'prom-client';
import { countingKeyProvider } from '../../src/observability/counting-key-provider';
import { trackingUploadStore } from '../../src/observability/tracking-upload-store';
import type { KeyProvider } from '../../src/keys/key-provider';
import type { UploadStore } from '../../src/store/ports';
import { Counter } from 'prom-client';

function meters() {
  const registry = new Registry();
  return {
    readStreams: new Gauge({ name: 'open_streams', help: 'h', registers: [registry] }),
    requestSeconds: new Histogram({ name: 'upstream_seconds', help: 'h', labelNames: ['operation', 'result'], registers: [registry] }),
    registry,
  };
}

/** Sample arguments per method; the `satisfies` makes a method added to UploadStore fail to compile here until listed. */
const SAMPLE_ARGUMENTS = {
  createMultipartUpload: ['k'],
  uploadPart: ['k', 'u', 7, { body: new PassThrough(), contentLength: 3 }],
  listParts: ['k', 'u'],
  completeMultipartUpload: ['k', 'u', [{ partNumber: 1, etag: '"e"' }]],
  abortMultipartUpload: ['k', 'u'],
  putObject: ['k', { body: Buffer.from('x') }, { createOnly: true }],
  getObject: ['k', { start: 1, endExclusive: 2 }],
  headObject: ['k'],
  listObjects: ['p', { startAfter: 's', delimiter: '/', maxKeys: 5, continuationToken: 't' }],
  deleteObjects: [['a', 'b']],
  getLifecycleRules: [],
  putLifecycleRules: [[{ id: 'coffer-gateway:c:m', prefix: 'm/', expirationDays: 3 }]],
} satisfies Record<keyof UploadStore, unknown[]>;

test('trackingUploadStore forwards every argument of every method, and times each call by operation and result', async () => {
  const received: Record<string, unknown[]> = {};
  const inner = Object.fromEntries(
    Object.keys(SAMPLE_ARGUMENTS).map((method) => [
      method,
      async (...args: unknown[]) => {
        received[method] = args;
        if (method === 'listParts') throw new Error('upstream down');
        return method === 'getObject' ? { body: new PassThrough(), size: 1, totalSize: 3, lastModified: new Date() } : {};
      },
    ]),
  ) as unknown as UploadStore;
  const m = meters();
  const store = trackingUploadStore(inner, m);
  for (const [method, args] of Object.entries(SAMPLE_ARGUMENTS)) {
    const call = (store as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>)[method]!(...args);
    if (method === 'listParts') await expect(call).rejects.toThrow('upstream down');
    else await call;
    expect(received[method]).toEqual(args);
  }
  const observed = (await m.requestSeconds.get()).values.filter((v) => v.metricName === 'upstream_seconds_count');
  expect(observed).toEqual(expect.arrayContaining([expect.objectContaining({ labels: { operation: 'putObject', result: 'ok' }, value: 1 }), expect.objectContaining({ labels: { operation: 'listParts', result: 'error' }, value: 1 })]));
  expect(observed).toHaveLength(Object.keys(SAMPLE_ARGUMENTS).length);
});

test('trackingUploadStore counts an upstream GET body while it is open', async () => {
  const body = new PassThrough();
  const inner = { getObject: async () => ({ body, size: 1, totalSize: 1, lastModified: new Date() }) } as unknown as UploadStore;
  const m = meters();
  await trackingUploadStore(inner, m).getObject('k');
  expect((await m.readStreams.get()).values[0]!.value).toBe(1);
  body.destroy();
  await new Promise((resolve) => setImmediate(resolve));
  expect((await m.readStreams.get()).values[0]!.value).toBe(0);
});

test('countingKeyProvider forwards every argument (the envelope key id included) and times calls', async () => {
  const registry = new Registry();
  const calls = new Counter({ name: 'kp_calls', help: 'h', labelNames: ['provider', 'operation', 'result'], registers: [registry] });
  const seconds = new Histogram({ name: 'kp_seconds', help: 'h', labelNames: ['provider', 'operation', 'result'], registers: [registry] });
  const received: unknown[][] = [];
  const inner: KeyProvider = {
    name: 'local',
    generateDataKey: async (...args) => {
      received.push(args);
      return { plaintext: Buffer.alloc(32), wrapped: Buffer.alloc(8), keyId: 'k1' } as never;
    },
    decryptDataKey: async (...args) => {
      received.push(args);
      return Buffer.alloc(32);
    },
  };
  const provider = countingKeyProvider(inner, { calls, seconds });
  const context = { coffer: 'c' } as never;
  await provider.generateDataKey(context);
  await provider.decryptDataKey(Buffer.from('w'), context, 'arn:previous');
  expect(received).toEqual([[context], [Buffer.from('w'), context, 'arn:previous']]);
  const counts = (await seconds.get()).values.filter((v) => v.metricName === 'kp_seconds_count').map((v) => [v.labels.operation, v.labels.result, v.value]);
  expect(counts).toEqual(
    expect.arrayContaining([
      ['GenerateDataKey', 'ok', 1],
      ['Decrypt', 'ok', 1],
    ]),
  );
});
