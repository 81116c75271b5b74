/**
 * Slowloris at scale through the whole gateway (reliability checklist item 13): as many clients
 * dripping headers as the connection cap, then as many dripping a signed PUT body one byte at a time
 * (never idle for requestIdleTimeoutMs), and a legitimate signed GET every 100 ms. Measured and asserted:
 *  - every legitimate request is answered — 200, or 503 SlowDown with Retry-After while every slot
 *    carries a (dripping) request — never reset or left hanging;
 *  - once the body drippers are cut, every legitimate request succeeds; over the run the success rate
 *    is reported and must stay above a floor;
 *  - each header dripper is closed (its slot taken by a newcomer, or at headersTimeoutMs), each body
 *    dripper is answered 400 RequestTimeout by the minimum body rate, within its bound (grace + the
 *    bytes it sent / rate, plus a generous 5 s for a loaded machine).
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../src/config';
import { createLogger } from '../../src/observability/logger';
import { startGateway, type RunningGateway } from '../../src/app/serve';
import { cos, sendCos, signedRequestHead, type CosTarget } from '../support/cos-http-client';
import { sha256 } from '../support/digests';

const COFFER = 'demo-1250000000';
const KEYS = { secretId: 'AKIDslowloris', secretKey: 'slowloris-secret-key-0123456789' };
const CAP = 16;
const HEADERS_TIMEOUT_MS = 3_000;
const MIN_RATE = 1_000; // bytes/s
const GRACE_MS = 1_000;
const DRIP_MS = 250; // one byte per 250 ms: never idle for the 1 s requestIdleTimeoutMs
const LEGIT_EVERY_MS = 100;
const LEGIT_REQUESTS = 60;
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

interface Attacker {
  readonly socket: Socket;
  /** When the gateway ended the connection (ms since the attacker connected) and what it said first. */
  readonly ended: Promise<{ afterMs: number; status: number; sentBytes: number }>;
  stop(): void;
}

/** Connects, writes `head`, then one byte of `drip` every DRIP_MS until the gateway ends the connection. */
async function dripper(port: number, head: string, drip: string): Promise<Attacker> {
  const socket = connect(port, '127.0.0.1');
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
  const connectedAt = Date.now();
  let received = '';
  let sentBytes = 0;
  socket.on('data', (chunk: Buffer) => (received += chunk.toString('latin1')));
  socket.on('error', () => undefined);
  socket.write(head);
  const timer = setInterval(() => {
    if (socket.destroyed || !socket.writable) return;
    socket.write(drip);
    sentBytes += 1;
  }, DRIP_MS);
  const ended = new Promise<{ afterMs: number; status: number; sentBytes: number }>((resolve) =>
    socket.once('close', () => {
      clearInterval(timer);
      resolve({ afterMs: Date.now() - connectedAt, status: Number(/^HTTP\/1\.1 (\d{3})/.exec(received)?.[1] ?? 0), sentBytes });
    }),
  );
  return { socket, ended, stop: () => socket.destroy() };
}

describe('slowloris at the connection cap', () => {
  let directory: string;
  let gateway: RunningGateway;
  let target: CosTarget;
  const object = randomBytes(2000);

  beforeAll(async () => {
    directory = mkdtempSync(join(tmpdir(), 'coffer-slowloris-'));
    const config = loadConfig({
      env: {
        PORT: '0',
        COFFER__SERVER__ADMIN_PORT: '0',
        COFFER__SERVER__MAX_CONNECTIONS: String(CAP),
        COFFER__SERVER__HEADERS_TIMEOUT_MS: String(HEADERS_TIMEOUT_MS),
        COFFER__SERVER__REQUEST_IDLE_TIMEOUT_MS: '1000',
        COFFER__SERVER__MIN_BODY_RATE_BYTES_PER_SECOND: String(MIN_RATE),
        COFFER__SERVER__MIN_BODY_RATE_GRACE_MS: String(GRACE_MS),
        COFFER_DEMO_SECRET_ID: KEYS.secretId,
        COFFER_DEMO_SECRET_KEY: KEYS.secretKey,
        COFFER__KEYRING__DIRECTORY: join(directory, 'keyring'),
        COFFER__EMBEDDED_UPSTREAM__DIRECTORY: join(directory, 'upstream'),
      },
    });
    gateway = await startGateway(config, { log: createLogger('silent') });
    target = { port: gateway.port, coffer: COFFER, ...KEYS };
    expect((await cos(target, 'PUT', 'loris/object.bin', [], object)).status).toBe(200);
  });

  afterAll(async () => {
    await gateway?.stop();
    rmSync(directory, { recursive: true, force: true });
  });

  test(`${CAP} header drippers + ${CAP} body drippers at a cap of ${CAP}, a legitimate GET every ${LEGIT_EVERY_MS} ms`, async () => {
    const headerDrippers: Attacker[] = [];
    for (let i = 0; i < CAP; i += 1) headerDrippers.push(await dripper(gateway.port, `GET /${COFFER}/loris/object.bin HTTP/1.1\r\nHost: h\r\n`, 'x'));
    await sleep(100);
    const bodyDrippers: Attacker[] = [];
    for (let i = 0; i < CAP; i += 1) {
      const head = signedRequestHead(target, 'PUT', `loris/dripped-${i}.bin`, [], [['Content-Length', '100000']]);
      bodyDrippers.push(await dripper(gateway.port, head, 'y'));
    }
    // Let every body dripper's request reach its handler: from here on all CAP slots carry a request.
    await sleep(200);

    const answers: Array<{ status: number | 'reset'; retryAfter?: string; code?: string }> = [];
    const legit: Array<Promise<void>> = [];
    for (let i = 0; i < LEGIT_REQUESTS; i += 1) {
      legit.push(
        sendCos(target, 'GET', 'loris/object.bin').then((answer) => {
          if (answer === 'reset') answers[i] = { status: 'reset' };
          else {
            answers[i] = {
              status: answer.status,
              ...(answer.headers['retry-after'] === undefined ? {} : { retryAfter: String(answer.headers['retry-after']) }),
              ...(/<Code>([^<]+)</.exec(answer.text)?.[1] === undefined ? {} : { code: /<Code>([^<]+)</.exec(answer.text)?.[1] as string }),
            };
            if (answer.status === 200) expect(sha256(answer.body)).toBe(sha256(object));
          }
        }),
      );
      await sleep(LEGIT_EVERY_MS);
    }
    await Promise.all(legit);
    const headerEnds = await Promise.all(headerDrippers.map((a) => a.ended));
    const bodyEnds = await Promise.all(bodyDrippers.map((a) => a.ended));

    // Every legitimate request answered: 200, or 503 SlowDown + Retry-After while all slots carried a request.
    expect(answers.filter((a) => a.status === 'reset')).toEqual([]);
    for (const answer of answers.filter((a) => a.status !== 200)) expect(answer).toEqual({ status: 503, retryAfter: '1', code: 'SlowDown' });
    const succeeded = answers.filter((a) => a.status === 200).length;
    // Once the last body dripper is cut, nothing stands in a legitimate client's way.
    const lastRefused = answers.map((a) => a.status).lastIndexOf(503);
    const firstRequestAfterCuts = Math.ceil((Math.max(...bodyEnds.map((e) => e.afterMs)) + 500) / LEGIT_EVERY_MS);
    expect(lastRefused).toBeLessThan(Math.max(firstRequestAfterCuts, 1));
    expect(succeeded / LEGIT_REQUESTS).toBeGreaterThanOrEqual(0.5);

    // Header drippers: all closed without ever being served; body drippers: each answered 400 by the minimum rate.
    expect(headerEnds.every((e) => e.status === 0 || e.status === 408 || e.status === 400)).toBe(true);
    expect(headerEnds.every((e) => e.afterMs < HEADERS_TIMEOUT_MS + 5_000)).toBe(true);
    expect(bodyEnds.map((e) => e.status)).toEqual(bodyEnds.map(() => 400));
    for (const end of bodyEnds) expect(end.afterMs).toBeLessThan(GRACE_MS + (end.sentBytes * 1000) / MIN_RATE + 5_000);
    // The shedding shows in the metrics: one refusal per 503, and every header dripper's slot taken.
    const shed = Object.fromEntries((await gateway.metrics.connectionsShed.get()).values.map((v) => [v.labels['how'], v.value]));
    expect(shed['newcomer-refused'] ?? 0).toBe(LEGIT_REQUESTS - succeeded);
    expect(shed['waiting-closed']).toBeGreaterThanOrEqual(CAP);

    process.stderr.write(
      `[slowloris] cap ${CAP}: legitimate ${succeeded}/${LEGIT_REQUESTS} served (${((100 * succeeded) / LEGIT_REQUESTS).toFixed(0)} %), ` +
        `${LEGIT_REQUESTS - succeeded} answered 503 SlowDown; header drippers closed after ${Math.min(...headerEnds.map((e) => e.afterMs))}–${Math.max(...headerEnds.map((e) => e.afterMs))} ms; ` +
        `body drippers cut (400) after ${Math.min(...bodyEnds.map((e) => e.afterMs))}–${Math.max(...bodyEnds.map((e) => e.afterMs))} ms\n`,
    );
    for (const attacker of [...headerDrippers, ...bodyDrippers]) attacker.stop();
  });
});
