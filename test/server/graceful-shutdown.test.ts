/**
 * Shutdown during uploads (what SIGTERM triggers): readiness turns false at once; a part in flight
 * when shutdown starts is answered 200 and kept; a part still streaming when the grace period ends is
 * reset — its partial bytes never replace the stored version — and a new gateway on the same upstream
 * sees exactly the parts that were acknowledged.
 *
 * Event-driven, so load cannot change the outcome: each client waits for the gateway's 100 Continue
 * (the request is then in flight) before shutdown starts, and nothing depends on how long anything
 * takes. The part that must finish does so under a grace period no run reaches (the drain ends when
 * the part is answered, not when the grace runs out); the part that must be reset never sends its
 * last bytes, so it is reset whenever its (short) grace period ends.
 */
import { randomBytes } from 'node:crypto';
import type { ClientRequest } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../src/config';
import { createLogger } from '../../src/observability/logger';
import { startGateway, type RunningGateway } from '../../src/app/serve';
import { listedEtags, md5Etag as md5, openCos, sendCos, type CosTarget } from '../support/cos-http-client';

const MiB = 1024 * 1024;
const COFFER = 'demo-1250000000';
/** Longer than any test run: a drain that waits for its in-flight part ends when the part is answered. */
const UNREACHED_GRACE_MS = 600_000;

let directory: string;
beforeAll(() => {
  directory = mkdtempSync(join(tmpdir(), 'coffer-drain-'));
});
afterAll(() => rmSync(directory, { recursive: true, force: true }));

function start(shutdownGraceMs: number): Promise<RunningGateway> {
  return startGateway(
    loadConfig({
      env: {
        PORT: '0',
        COFFER__SERVER__ADMIN_PORT: '0',
        COFFER__SERVER__SHUTDOWN_GRACE_MS: String(shutdownGraceMs),
        COFFER_DEMO_SECRET_ID: 'AKIDdrain',
        COFFER_DEMO_SECRET_KEY: 'drain-secret-key-0123456789',
        COFFER__KEYRING__DIRECTORY: join(directory, 'keyring'),
        COFFER__EMBEDDED_UPSTREAM__DIRECTORY: join(directory, 'upstream'),
      },
    }),
    { log: createLogger('silent') },
  );
}

const target = (gateway: RunningGateway): CosTarget => ({ port: gateway.port, coffer: COFFER, secretId: 'AKIDdrain', secretKey: 'drain-secret-key-0123456789' });
const send = (gateway: RunningGateway, method: string, key: string, params: Array<[string, string]>, body?: Buffer) => sendCos(target(gateway), method, key, params, body);
const partParams = (uploadId: string, partNumber: number): Array<[string, string]> => [
  ['partNumber', String(partNumber)],
  ['uploadId', uploadId],
];

/** Starts an UploadPart whose body the test writes, resolving once the gateway sent 100 Continue: from then on the request is in flight. */
async function openPart(gateway: RunningGateway, key: string, uploadId: string, partNumber: number, length: number): Promise<ReturnType<typeof openCos>> {
  const call = openCos(target(gateway), 'PUT', key, partParams(uploadId, partNumber), length, { expect: '100-continue' });
  await new Promise<void>((resolve, reject) => {
    (call.req as ClientRequest).once('continue', resolve);
    call.done.then((answer) => reject(new Error(`answered before 100 Continue: ${answer === 'reset' ? 'reset' : answer.status}`)), reject);
  });
  return call;
}

async function initiate(gateway: RunningGateway, key: string): Promise<string> {
  const init = (await send(gateway, 'POST', key, [['uploads', '']])) as { text: string };
  return /<UploadId>([0-9a-f]{32})<\/UploadId>/.exec(init.text)?.[1] as string;
}

/** The ETags of the upload's parts, as a fresh gateway on the same upstream lists them. */
async function partsSeenAfterRestart(key: string, uploadId: string): Promise<string[]> {
  const fresh = await start(UNREACHED_GRACE_MS);
  try {
    return listedEtags(((await send(fresh, 'GET', key, [['uploadId', uploadId]])) as { text: string }).text);
  } finally {
    await fresh.stop();
  }
}

test('a part in flight when shutdown starts is answered 200 and kept; readiness is false at once; the drain waits for it', async () => {
  const gateway = await start(UNREACHED_GRACE_MS);
  const uploadId = await initiate(gateway, 'drain.bin');
  const part = randomBytes(2 * MiB);
  const finishing = await openPart(gateway, 'drain.bin', uploadId, 1, part.length);
  finishing.req.write(part.subarray(0, MiB));

  let stopped = false;
  const stopping = gateway.stop().then(() => (stopped = true));
  // The admin listener stays up through the drain, so probes see the gateway leave the rotation.
  expect((await fetch(`http://127.0.0.1:${gateway.adminPort}/readyz`)).status).toBe(503);
  // Half the part is still with the client: the drain cannot have ended.
  expect(stopped).toBe(false);
  finishing.req.end(part.subarray(MiB));
  expect(await finishing.done).toMatchObject({ status: 200, etag: md5(part) });
  await stopping;

  expect(await partsSeenAfterRestart('drain.bin', uploadId)).toEqual([md5(part)]);
});

test('a part still streaming when the grace period ends is reset, and the version stored before stays', async () => {
  const gateway = await start(200);
  const uploadId = await initiate(gateway, 'stall.bin');
  const v1 = randomBytes(6 * MiB);
  expect(((await send(gateway, 'PUT', 'stall.bin', partParams(uploadId, 1), v1)) as { status: number }).status).toBe(200);

  // Part 1 is uploaded again, but the client stalls half-way and never sends the rest.
  const stalled = await openPart(gateway, 'stall.bin', uploadId, 1, 6 * MiB);
  stalled.req.write(randomBytes(3 * MiB));
  await gateway.stop();
  expect(await stalled.done).toBe('reset');

  expect(await partsSeenAfterRestart('stall.bin', uploadId)).toEqual([md5(v1)]);
});
