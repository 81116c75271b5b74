/**
 * The write-side idle timeout (server.responseIdleTimeoutMs): the stall tracker on its own, then the
 * real thing — the embedded default gateway serving a 24 MiB object to a client that stops reading:
 * the connection is reset and the upstream read released; a handler that is merely slow to answer is
 * left alone.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../src/config';
import { WriteStallTracker, sweepIntervalMs } from '../../src/server/response-idle-guard';
import { createLogger } from '../../src/observability/logger';
import { startGateway as startFullGateway, type RunningGateway } from '../../src/app/serve';
import { completeBody, cos, initiate, md5Etag, signedRequest, type CosTarget } from '../support/cos-http-client';
import { closeGateways, sleep, startGateway } from './helpers';

const MiB = 1024 * 1024;

describe('WriteStallTracker', () => {
  let now = 0;
  const tracker = () => new WriteStallTracker(1000, () => now);

  test('a socket with nothing pending is never stalled, however long', () => {
    const t = tracker();
    const socket = { bytesWritten: 500, writableLength: 0 };
    for (now = 0; now <= 10_000; now += 500) expect(t.stalled(socket)).toBe(false);
  });

  test('pending output without progress is stalled after the timeout, timed from the first check that saw it', () => {
    const t = tracker();
    const socket = { bytesWritten: 10_000, writableLength: 4_000 };
    now = 0;
    expect(t.stalled(socket)).toBe(false);
    now = 999;
    expect(t.stalled(socket)).toBe(false);
    now = 1000;
    expect(t.stalled(socket)).toBe(true);
  });

  test('any flushed byte restarts the clock; more buffered output without a flush does not', () => {
    const t = tracker();
    const socket = { bytesWritten: 10_000, writableLength: 4_000 };
    now = 0;
    t.stalled(socket);
    now = 900;
    socket.writableLength = 3_999; // one byte flushed
    expect(t.stalled(socket)).toBe(false);
    now = 1800;
    expect(t.stalled(socket)).toBe(false);
    socket.bytesWritten += 5_000; // the producer buffered more; nothing flushed
    socket.writableLength += 5_000;
    now = 1900;
    expect(t.stalled(socket)).toBe(true);
  });

  test('draining to empty forgets the stall', () => {
    const t = tracker();
    const socket = { bytesWritten: 10_000, writableLength: 4_000 };
    now = 0;
    t.stalled(socket);
    socket.writableLength = 0;
    now = 500;
    expect(t.stalled(socket)).toBe(false);
    socket.bytesWritten += 100;
    socket.writableLength = 100;
    now = 1200;
    expect(t.stalled(socket)).toBe(false); // first sighting of the new pending output
    now = 2200;
    expect(t.stalled(socket)).toBe(true);
  });

  test('the sweep interval is a tenth of the timeout, within 100 ms and 5 s', () => {
    expect(sweepIntervalMs(1000)).toBe(100);
    expect(sweepIntervalMs(60_000)).toBe(5_000);
    expect(sweepIntervalMs(10_000)).toBe(1_000);
  });
});

describe('a handler that is slow to answer', () => {
  afterEach(closeGateways);

  test('is not cut off: nothing is pending while it works', async () => {
    const { port } = await startGateway(
      async (_request, { raw: res }) => {
        await sleep(2500);
        res.writeHead(200, { 'content-length': '2' }).end('ok');
      },
      { responseIdleTimeoutMs: 1000 },
    );
    const response = await fetch(`http://127.0.0.1:${port}/demo-1250000000/slow`);
    expect(response.status).toBe(200);
    expect(await response.text()).toBe('ok');
  });
});

describe('a client that stops reading a GET (embedded default gateway)', () => {
  let directory: string;
  let gateway: RunningGateway;
  let target: CosTarget;
  const SIZE = 24 * MiB;

  beforeAll(async () => {
    directory = mkdtempSync(join(tmpdir(), 'coffer-idle-'));
    gateway = await startFullGateway(
      loadConfig({
        env: {
          PORT: '0',
          COFFER__SERVER__ADMIN_PORT: '0',
          COFFER__SERVER__RESPONSE_IDLE_TIMEOUT_MS: '1000',
          COFFER_DEMO_SECRET_ID: 'AKIDidle',
          COFFER_DEMO_SECRET_KEY: 'idle-secret-key-0123456789',
          COFFER__KEYRING__DIRECTORY: join(directory, 'keyring'),
          COFFER__EMBEDDED_UPSTREAM__DIRECTORY: join(directory, 'upstream'),
        },
      }),
      { log: createLogger('silent') },
    );
    target = { port: gateway.port, coffer: 'demo-1250000000', secretId: 'AKIDidle', secretKey: 'idle-secret-key-0123456789' };
    // Larger than every buffer between the embedded upstream and the client (kernel socket buffers on
    // loopback hold a few MiB each way), so a client that stops reading really stalls the stream.
    const data = randomBytes(SIZE);
    const uploadId = await initiate(target, 'big.bin');
    expect(
      (
        await cos(
          target,
          'PUT',
          'big.bin',
          [
            ['partNumber', '1'],
            ['uploadId', uploadId],
          ],
          data,
        )
      ).status,
    ).toBe(200);
    expect((await cos(target, 'POST', 'big.bin', [['uploadId', uploadId]], completeBody([[1, md5Etag(data)]]))).status).toBe(200);
  });

  afterAll(async () => {
    await gateway?.stop();
    rmSync(directory, { recursive: true, force: true });
  });

  const value = async (metric: { get(): Promise<{ values: Array<{ value: number }> }> }) => (await metric.get()).values.reduce((sum, v) => sum + v.value, 0);
  async function until(condition: () => Promise<boolean>, what: string): Promise<void> {
    for (let i = 0; i < 300; i++) {
      if (await condition()) return;
      await sleep(50);
    }
    throw new Error(`timed out waiting for: ${what}`);
  }

  test('a reading client gets the whole object (the guard does not cut streaming answers)', async () => {
    const response = await new Promise<IncomingMessage>((resolve, reject) => signedRequest(target, 'GET', 'big.bin').on('response', resolve).on('error', reject).end());
    let received = 0;
    for await (const chunk of response) received += (chunk as Buffer).length;
    expect(received).toBe(SIZE);
    await until(async () => (await value(gateway.metrics.upstreamReadStreams)) === 0, 'the upstream read of the finished GET to close');
    expect(await value(gateway.metrics.responseIdleTimeouts)).toBe(0);
  });

  test('the connection is reset and the upstream stream released', async () => {
    const req = signedRequest(target, 'GET', 'big.bin');
    const response = await new Promise<IncomingMessage>((resolve, reject) => req.on('response', resolve).on('error', reject).end());
    expect(response.statusCode).toBe(200);
    expect(Number(response.headers['content-length'])).toBe(SIZE);
    // The client reads nothing from here on; the object is streaming, so its upstream read is open.
    response.pause();
    expect(await value(gateway.metrics.upstreamReadStreams)).toBe(1);

    await until(async () => (await value(gateway.metrics.responseIdleTimeouts)) === 1, 'the response idle timeout');
    await until(async () => (await value(gateway.metrics.upstreamReadStreams)) === 0, 'the upstream read to be released');

    // Reading again, the client finds its connection reset before the whole body arrived.
    let received = 0;
    const ending = await new Promise<string>((resolve) => {
      response.on('data', (chunk: Buffer) => (received += chunk.length));
      response.on('end', () => resolve('end'));
      response.on('error', () => resolve('error'));
      response.on('aborted', () => resolve('aborted'));
      response.resume();
    });
    expect(ending).not.toBe('end');
    expect(received).toBeLessThan(SIZE);
    // The gateway keeps serving.
    expect((await cos(target, 'HEAD', 'big.bin')).status).toBe(200);
  });
});
