/**
 * Shutdown during uploads (what SIGTERM triggers): readiness turns false at once; a part that finishes
 * within the grace period is answered 200 and kept; a part still streaming when the grace period ends
 * is reset — its partial bytes never replace the stored version — and a new gateway on the same
 * upstream sees exactly the parts that were acknowledged.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../src/config';
import { createLogger } from '../../src/observability/logger';
import { startGateway, type RunningGateway } from '../../src/app/serve';
import { listedEtags, md5Etag as md5, openCos, sendCos, type CosTarget } from '../support/cos-http-client';

const MiB = 1024 * 1024;
const COFFER = 'demo-1250000000';

let directory: string;
beforeAll(() => {
  directory = mkdtempSync(join(tmpdir(), 'coffer-drain-'));
});
afterAll(() => rmSync(directory, { recursive: true, force: true }));

function start(): Promise<RunningGateway> {
  return startGateway(
    loadConfig({
      env: {
        PORT: '0',
        COFFER__SERVER__ADMIN_PORT: '0',
        COFFER__SERVER__SHUTDOWN_GRACE_MS: '1500',
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
const open = (gateway: RunningGateway, method: string, key: string, params: Array<[string, string]>, length: number) => openCos(target(gateway), method, key, params, length);
const send = (gateway: RunningGateway, method: string, key: string, params: Array<[string, string]>, body?: Buffer) => sendCos(target(gateway), method, key, params, body);

test('drain: finished parts are kept, unfinished ones reset, readiness false at once', async () => {
  const first = await start();
  const init = (await send(first, 'POST', 'drain.bin', [['uploads', '']])) as { text: string };
  const uploadId = /<UploadId>([0-9a-f]{32})<\/UploadId>/.exec(init.text)?.[1] as string;
  const v1 = randomBytes(6 * MiB);
  expect(
    (
      (await send(
        first,
        'PUT',
        'drain.bin',
        [
          ['partNumber', '1'],
          ['uploadId', uploadId],
        ],
        v1,
      )) as { status: number }
    ).status,
  ).toBe(200);

  // Part 1 is re-uploaded but the client stalls half-way; part 2 is half-sent and finishes during the drain.
  const stalled = open(
    first,
    'PUT',
    'drain.bin',
    [
      ['partNumber', '1'],
      ['uploadId', uploadId],
    ],
    6 * MiB,
  );
  stalled.req.write(randomBytes(3 * MiB));
  const part2 = randomBytes(2 * MiB);
  const finishing = open(
    first,
    'PUT',
    'drain.bin',
    [
      ['partNumber', '2'],
      ['uploadId', uploadId],
    ],
    part2.length,
  );
  finishing.req.write(part2.subarray(0, MiB));
  await new Promise((r) => setTimeout(r, 200));

  const stopping = first.stop();
  // The admin listener stays up through the drain, so probes see the gateway leave the rotation.
  expect((await fetch(`http://127.0.0.1:${first.adminPort}/readyz`)).status).toBe(503);
  finishing.req.end(part2.subarray(MiB));
  const finished = await finishing.done;
  expect(finished).toMatchObject({ status: 200, etag: md5(part2) });
  await stopping;
  expect(await stalled.done).toBe('reset');

  // A fresh gateway on the same upstream: part 1 is still the first version, part 2 is there.
  const second = await start();
  try {
    const listed = (await send(second, 'GET', 'drain.bin', [['uploadId', uploadId]])) as { text: string };
    expect(listedEtags(listed.text)).toEqual([md5(v1), md5(part2)]);
  } finally {
    await second.stop();
  }
});
