/**
 * The cap on part bodies in flight (src/store/parts-in-flight.ts): its derivation from the memory
 * limit, and on a real gateway (embedded upstream, real HTTP) the answer beyond it — 503 SlowDown with
 * Retry-After, before 100 Continue, while the admitted parts complete.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BYTES_PER_PART_IN_FLIGHT, IDLE_RSS_BYTES, MEMORY_HEADROOM, derivedPartsInFlight, memoryLimit } from '../../src/store/parts-in-flight';
import { initiate, openCos, signedRequestHead, type CosTarget } from '../support/cos-http-client';
import { rawExchange, rawHeader } from '../server/helpers';
import { startTestGateway, type TestGateway } from '../support/test-gateway';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

describe('the cap derived from the memory limit', () => {
  const files =
    (contents: Record<string, string>) =>
    (path: string): string => {
      const text = contents[path];
      if (text === undefined) throw Object.assign(new Error(`ENOENT: ${path}`), { code: 'ENOENT' });
      return text;
    };

  test('cgroup v2 memory.max, then cgroup v1, then the host', () => {
    const host = 16 * GiB;
    expect(memoryLimit(files({ '/sys/fs/cgroup/memory.max': '536870912\n' }), host)).toEqual({ bytes: 512 * MiB, source: 'cgroup-v2' });
    // v2 without a limit ("max"); a v1 hierarchy with one.
    expect(memoryLimit(files({ '/sys/fs/cgroup/memory.max': 'max\n', '/sys/fs/cgroup/memory/memory.limit_in_bytes': '1073741824\n' }), host)).toEqual({ bytes: GiB, source: 'cgroup-v1' });
    // v1's "no limit" (2^63 − 1 rounded to pages) and no cgroup files at all: the host's memory.
    expect(memoryLimit(files({ '/sys/fs/cgroup/memory/memory.limit_in_bytes': '9223372036854771712\n' }), host)).toEqual({ bytes: host, source: 'host' });
    expect(memoryLimit(files({}), host)).toEqual({ bytes: host, source: 'host' });
  });

  test('the formula: (limit × headroom − idle RSS) / memory per part, at least 1', () => {
    expect(derivedPartsInFlight(512 * MiB)).toBe(Math.floor((512 * MiB * MEMORY_HEADROOM - IDLE_RSS_BYTES) / BYTES_PER_PART_IN_FLIGHT));
    expect(derivedPartsInFlight(512 * MiB)).toBe(28);
    expect(derivedPartsInFlight(2 * GiB)).toBe(151);
    // A limit below what the gateway needs idle still admits one part at a time.
    expect(derivedPartsInFlight(128 * MiB)).toBe(1);
  });
});

describe('a gateway with a cap of 2', () => {
  const COFFER = 'capped-1250000000';
  const SECRET_ID = 'AKIDcapped00001';
  const SECRET_KEY = 'capped-secret-key-0123456789abcdef';
  let directory: string;
  let running: TestGateway;
  let target: CosTarget;

  beforeEach(async () => {
    directory = mkdtempSync(join(tmpdir(), 'coffer-capped-'));
    running = await startTestGateway({
      server: { port: 0, adminPort: 0, maxPartsInFlight: 2 },
      keyring: { directory: join(directory, 'keyring') },
      embeddedUpstream: { enabled: true, directory: join(directory, 'upstream') },
      demo: { enabled: true, coffer: COFFER, secretId: SECRET_ID, secretKey: SECRET_KEY },
    });
    target = { port: running.port, coffer: COFFER, secretId: SECRET_ID, secretKey: SECRET_KEY };
  });
  afterEach(async () => {
    await running.close();
    rmSync(directory, { recursive: true, force: true });
  });

  /** An UploadPart admitted by the gateway (its 100 Continue received) whose body is not sent yet. */
  async function admittedPart(uploadId: string, partNumber: number, size: number): Promise<{ send: (body: Buffer) => Promise<number> }> {
    const call = openCos(
      target,
      'PUT',
      'big.bin',
      [
        ['partNumber', String(partNumber)],
        ['uploadId', uploadId],
      ],
      size,
      { expect: '100-continue' },
    );
    await new Promise<void>((resolve, reject) => {
      call.req.once('continue', resolve);
      void call.done.then((answer) => reject(new Error(`answered before 100 Continue: ${answer === 'reset' ? 'reset' : answer.status}`)));
    });
    return {
      send: async (body) => {
        call.req.end(body);
        const answer = await call.done;
        if (answer === 'reset') throw new Error('reset');
        return answer.status;
      },
    };
  }

  /** A request with Expect: 100-continue whose body is never sent: what the gateway answers to the headers alone. */
  const headersOnly = (method: string, key: string, params: ReadonlyArray<readonly [string, string]>, length: number) =>
    rawExchange(target.port, [
      signedRequestHead(target, method, key, params, [
        ['Content-Length', String(length)],
        ['Expect', '100-continue'],
      ]),
    ]);

  test('the third concurrent part gets 503 SlowDown with Retry-After before its body; the two admitted complete, and a later one is admitted', async () => {
    const uploadId = await initiate(target, 'big.bin');
    const size = MiB;
    const first = await admittedPart(uploadId, 1, size);
    const second = await admittedPart(uploadId, 2, size);

    const third = await headersOnly(
      'PUT',
      'big.bin',
      [
        ['partNumber', '3'],
        ['uploadId', uploadId],
      ],
      size,
    );
    // No 100 Continue: the client was told before sending a byte of its body.
    expect(third.statuses).toEqual([503]);
    expect(third.text).toContain('<Code>SlowDown</Code>');
    expect(rawHeader(third.text, 'retry-after')).toBe('1');
    // PutObject shares the cap (its body costs the same memory).
    const put = await headersOnly('PUT', 'small.txt', [], 5);
    expect(put.statuses).toEqual([503]);
    expect(put.text).toContain('<Code>SlowDown</Code>');

    expect(await first.send(Buffer.alloc(size, 1))).toBe(200);
    expect(await second.send(Buffer.alloc(size, 2))).toBe(200);
    // Their slots are free again: the next part is admitted and stored.
    const next = await admittedPart(uploadId, 3, size);
    expect(await next.send(Buffer.alloc(size, 3))).toBe(200);
  });

  test('a slot is freed when its client goes away before sending the body, and when preparation fails', async () => {
    const uploadId = await initiate(target, 'big.bin');
    // Admitted, then the client disconnects without a body byte.
    const gone = openCos(
      target,
      'PUT',
      'big.bin',
      [
        ['partNumber', '1'],
        ['uploadId', uploadId],
      ],
      MiB,
      { expect: '100-continue' },
    );
    await new Promise<void>((resolve) => gone.req.once('continue', resolve));
    gone.req.destroy();
    await gone.done;
    // Refused in preparation (an unknown upload): NoSuchUpload, and no slot kept.
    for (let i = 0; i < 3; i += 1) {
      const unknown = await headersOnly(
        'PUT',
        'big.bin',
        [
          ['partNumber', '1'],
          ['uploadId', '0123456789abcdef0123456789abcdef'],
        ],
        MiB,
      );
      expect(unknown.text).toContain('<Code>NoSuchUpload</Code>');
    }
    // Both slots are available: two parts are admitted at once.
    const first = await admittedPart(uploadId, 1, MiB);
    const second = await admittedPart(uploadId, 2, MiB);
    expect(await first.send(Buffer.alloc(MiB, 1))).toBe(200);
    expect(await second.send(Buffer.alloc(MiB, 2))).toBe(200);
  });
});
