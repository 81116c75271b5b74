/**
 * Backpressure, as a byte count (reliability checklist item 2): the gateway runs as a child process
 * (`cli.js serve`, compiled from the current sources), its upstream — Ceph RGW — sits behind a proxy that
 * reads part bodies at about 1 MiB/s, and a client pushes a part as fast as the gateway takes it. While
 * the part streams, the bytes held inside the gateway process for that one stream — what it read from
 * the client socket minus what it wrote to the upstream socket — must stay at or under 4 MiB.
 *
 * The kernel's socket buffers are not the gateway's memory and can hold megabytes on loopback, so they
 * are measured and taken out: from /proc/net/tcp, the send queue of the client's socket and the receive
 * queue of the gateway's client-side socket (bytes not yet read by the gateway), and the send queue of
 * the gateway's upstream socket and the receive queue of the proxy's (bytes written but not yet read by
 * the proxy). Then, per sample:
 *   read by the gateway    = client bytes handed to the kernel − client Send-Q − gateway Recv-Q
 *   written by the gateway = proxy bytes read + gateway Send-Q (upstream side) + proxy Recv-Q
 *   held = read − written (ciphertext is 0.03 % longer than plaintext, which only lowers `held`).
 * Memory and speed targets (peak RSS of 32 × 64 MiB and of a 5 GiB part) stay in `npm run bench`.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Transform } from 'node:stream';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { cephRgw, describeWithCeph } from '../support/ceph-rgw';
import { initiate, signedRequest, type CosTarget } from '../support/cos-http-client';
import { startUpstreamForwarder, type UpstreamForwarder } from '../support/upstream-forwarder';

const ROOT = join(__dirname, '..', '..');
const MiB = 1024 * 1024;
const PART = 24 * MiB;
const UPSTREAM_BYTES_PER_SECOND = MiB;
const HELD_LIMIT = 4 * MiB;
const SAMPLE_MS = 50;
const MEASURE_MS = 6_000;
const Bucket = 'pressure-1250000000';
const BUCKET = `coffer-pressure-${randomBytes(4).toString('hex')}`;
const KEYS = { secretId: 'AKIDbackpressure', secretKey: 'backpressure-secret-key-0123456789' };
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Send-Q and Recv-Q of every IPv4 TCP socket, keyed "localPort>remotePort" (/proc/net/tcp, hex fields). */
function tcpQueues(): Map<string, { tx: number; rx: number }> {
  const queues = new Map<string, { tx: number; rx: number }>();
  for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    const fields = line.trim().split(/\s+/);
    if (fields.length < 5) continue;
    const local = parseInt((fields[1] as string).split(':')[1] as string, 16);
    const remote = parseInt((fields[2] as string).split(':')[1] as string, 16);
    const [tx, rx] = (fields[4] as string).split(':').map((hex) => parseInt(hex, 16)) as [number, number];
    queues.set(`${local}>${remote}`, { tx, rx });
  }
  return queues;
}

/** Passes bytes on at `bytesPerSecond` at most (the callback is held for the time a chunk "takes"). */
function throttle(bytesPerSecond: number, onBytes: (n: number) => void): Transform {
  return new Transform({
    highWaterMark: 16 * 1024,
    transform(chunk: Buffer, _encoding, callback) {
      onBytes(chunk.length);
      setTimeout(() => callback(null, chunk), (chunk.length / bytesPerSecond) * 1000);
    },
  });
}

describeWithCeph('backpressure: a fast client, an upstream at 1 MiB/s, the gateway in its own process', () => {
  const ceph = cephRgw() as NonNullable<ReturnType<typeof cephRgw>>;
  let directory: string;
  let child: ChildProcess;
  let proxy: UpstreamForwarder;
  let gatewayPort: number;
  let proxyPort: number;
  /** Body bytes of part uploads the proxy has read from the gateway. */
  let proxyRead = 0;
  /** The proxy's socket of the part upload being measured (its remote port is the gateway's upstream socket). */
  let partSocket: Socket | undefined;

  beforeAll(async () => {
    directory = mkdtempSync(join(tmpdir(), 'coffer-pressure-'));
    const build = join(directory, 'build');
    execFileSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', join(ROOT, 'tsconfig.build.json'), '--outDir', build], { stdio: 'pipe' });
    symlinkSync(join(ROOT, 'node_modules'), join(build, 'node_modules'), 'dir');
    const s3 = new S3Client({ endpoint: ceph.endpoint, region: ceph.region, forcePathStyle: true, credentials: { accessKeyId: ceph.accessKeyId, secretAccessKey: ceph.secretAccessKey } });
    await s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
    s3.destroy();
    proxy = await startUpstreamForwarder({
      target: ceph.endpoint,
      // Part bodies go upstream at UPSTREAM_BYTES_PER_SECOND; everything else unchanged.
      intercept: ({ req, forward }) => {
        if (req.method !== 'PUT' || !(req.url ?? '').includes('partNumber=')) return false;
        partSocket = req.socket;
        forward(req.pipe(throttle(UPSTREAM_BYTES_PER_SECOND, (n) => (proxyRead += n))));
        return true;
      },
    });
    proxyPort = proxy.port;
    const config = join(directory, 'config.json');
    writeFileSync(
      config,
      JSON.stringify({
        server: { host: '127.0.0.1', port: 0, adminHost: '127.0.0.1', adminPort: 0 },
        auth: { accessKeys: [{ ...KEYS, grants: [{ coffer: Bucket, actions: ['*'] }] }] },
        keyring: { directory: join(directory, 'keyring') },
        coffers: {
          [Bucket]: {
            upstream: { endpoint: `http://127.0.0.1:${proxyPort}`, region: ceph.region, bucket: BUCKET, credentials: { accessKeyId: ceph.accessKeyId, secretAccessKey: ceph.secretAccessKey } },
            role: { type: 'static' },
            kms: { type: 'local', keyId: 'pressure' },
          },
        },
      }),
    );
    child = spawn(process.execPath, ['--max-semi-space-size=4', join(build, 'src', 'cli.js'), 'serve', '-c', config], { cwd: directory, env: { PATH: process.env.PATH ?? '', HOME: directory }, stdio: ['ignore', 'pipe', 'pipe'] });
    gatewayPort = await new Promise<number>((resolve, reject) => {
      let stdout = '';
      child.stdout?.on('data', (chunk: Buffer) => {
        stdout += chunk.toString();
        for (const line of stdout.split('\n')) {
          try {
            const entry = JSON.parse(line) as { port?: number };
            if (typeof entry.port === 'number') resolve(entry.port);
          } catch {
            // not a complete line yet
          }
        }
      });
      child.once('exit', (code) => reject(new Error(`the gateway exited with ${code}`)));
      child.stderr?.resume();
    });
  }, 180_000);

  afterAll(async () => {
    child?.kill('SIGKILL');
    await proxy?.close();
    rmSync(directory, { recursive: true, force: true });
  });

  test(`bytes held inside the gateway for one streaming part stay ≤ 4 MiB (client ≫ ${UPSTREAM_BYTES_PER_SECOND / MiB} MiB/s upstream)`, async () => {
    const target: CosTarget = { port: gatewayPort, coffer: Bucket, ...KEYS };
    const uploadId = await initiate(target, 'pressure/part.bin');
    const req = signedRequest(
      target,
      'PUT',
      'pressure/part.bin',
      [
        ['partNumber', '1'],
        ['uploadId', uploadId],
      ],
      PART,
    );
    req.on('error', () => undefined);
    const body = randomBytes(MiB);
    let queued = 0;
    // The client: as fast as the gateway takes it (every write as soon as the previous one drained).
    const pump = (): void => {
      while (queued < PART) {
        queued += body.length;
        if (!req.write(body)) return void req.once('drain', pump);
      }
    };
    const socket = await new Promise<Socket>((resolve) => req.once('socket', (s: Socket) => (s.connecting ? s.once('connect', () => resolve(s)) : resolve(s))));
    pump();

    const samples: Array<{ held: number; read: number; written: number; kernel: number }> = [];
    const started = Date.now();
    while (Date.now() - started < MEASURE_MS) {
      await sleep(SAMPLE_MS);
      if (partSocket === undefined) continue;
      const queues = tcpQueues();
      const clientPort = socket.localPort as number;
      const gatewayUpstreamPort = partSocket.remotePort as number;
      const clientSide = queues.get(`${clientPort}>${gatewayPort}`);
      const gatewayClientSide = queues.get(`${gatewayPort}>${clientPort}`);
      const gatewayUpstreamSide = queues.get(`${gatewayUpstreamPort}>${proxyPort}`);
      const proxySide = queues.get(`${proxyPort}>${gatewayUpstreamPort}`);
      if (!clientSide || !gatewayClientSide || !gatewayUpstreamSide || !proxySide) continue;
      // Bytes of the request head count on the client's side too; they are a few hundred, not MiB.
      const handedToKernel = socket.bytesWritten - socket.writableLength;
      const read = handedToKernel - clientSide.tx - gatewayClientSide.rx;
      const written = proxyRead + gatewayUpstreamSide.tx + proxySide.rx;
      samples.push({ held: read - written, read, written, kernel: clientSide.tx + gatewayClientSide.rx + gatewayUpstreamSide.tx + proxySide.rx });
    }
    req.destroy();

    expect(samples.length).toBeGreaterThan(MEASURE_MS / SAMPLE_MS / 2);
    const peak = Math.max(...samples.map((s) => s.held));
    const last = samples[samples.length - 1] as (typeof samples)[number];
    process.stderr.write(
      `[backpressure] ${samples.length} samples: held inside the gateway peak ${(peak / MiB).toFixed(2)} MiB; ` +
        `at the end: read ${(last.read / MiB).toFixed(1)} MiB, written ${(last.written / MiB).toFixed(1)} MiB, ` +
        `in kernel socket buffers ${(last.kernel / MiB).toFixed(1)} MiB, upstream received ${(proxyRead / MiB).toFixed(1)} MiB\n`,
    );
    expect(peak).toBeLessThanOrEqual(HELD_LIMIT);
    // The setting really was "client faster than upstream": the upstream moved data, and far less than was offered.
    expect(proxyRead).toBeGreaterThan(MiB);
    expect(proxyRead).toBeLessThan(PART / 2);
  });
});
