/** Shared helpers for the HTTP front tests: a config, a started server, and a raw-socket client. */
import { connect } from 'node:net';
import type { GatewayConfig } from '../../src/config/schema';
import { serverSchema } from '../../src/config/schema/server';
import { createGatewayServer, type GatewayHandler, type GatewayServer } from '../../src/server/gateway-server';

export const COFFER = 'demo-1250000000';
export const UPLOAD_ID = '0123456789abcdef0123456789abcdef';

/** The schema's server defaults (one source of truth), on ephemeral ports. */
const SERVER_DEFAULTS = serverSchema({ readFile: () => '' }).parse({}) as GatewayConfig['server'];

export function serverConfig(overrides: Partial<GatewayConfig['server']> = {}): GatewayConfig['server'] {
  return { ...SERVER_DEFAULTS, port: 0, adminPort: 0, ...overrides };
}

export interface Started {
  readonly gateway: GatewayServer;
  readonly port: number;
  readonly handle: jest.Mock<ReturnType<GatewayHandler>, Parameters<GatewayHandler>>;
}

const started: GatewayServer[] = [];

/** Starts a gateway on 127.0.0.1:0 with `impl` wrapped in a jest mock (so calls can be counted). */
export async function startGateway(impl: GatewayHandler, overrides: Partial<GatewayConfig['server']> = {}): Promise<Started> {
  const handle = jest.fn(impl);
  const gateway = createGatewayServer({ server: serverConfig(overrides), handle });
  const { port } = await gateway.listen();
  started.push(gateway);
  return { gateway, port, handle };
}

/** Closes every gateway started by the current test file (call from afterEach). */
export async function closeGateways(): Promise<void> {
  await Promise.all(started.splice(0).map((gateway) => gateway.close(0)));
}

/** A handler that reads the whole body (guarded) and answers 200 with the byte count. */
export const echoHandler: GatewayHandler = async ({ acceptBody }, { raw: res }) => {
  let bytes = 0;
  for await (const chunk of acceptBody() as AsyncIterable<Buffer>) bytes += chunk.length;
  const body = `ok ${bytes}`;
  res.writeHead(200, { 'content-type': 'text/plain', 'content-length': String(body.length) });
  res.end(body);
};

export interface RawResponse {
  /** Everything the server sent, as latin1 text. */
  readonly text: string;
  /** Status codes of every response in `text`, in order (100 included). */
  readonly statuses: number[];
  /** Whether the server closed the connection (FIN or reset) before `waitMs` ran out. */
  readonly closed: boolean;
  readonly reset: boolean;
}

/**
 * Writes raw bytes (one string per write, `pauseMs` apart) and collects the answer until the server
 * closes or `waitMs` passes.
 */
export function rawExchange(port: number, writes: ReadonlyArray<string | Buffer>, options: { waitMs?: number; pauseMs?: number } = {}): Promise<RawResponse> {
  const waitMs = options.waitMs ?? 1500;
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let timedOut = false;
    let reset = false;
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'ECONNRESET' || error.code === 'EPIPE') reset = true;
    });
    socket.on('end', () => socket.end());
    const timer = setTimeout(() => {
      timedOut = true;
      socket.destroy();
    }, waitMs);
    socket.on('close', () => {
      clearTimeout(timer);
      const text = Buffer.concat(chunks).toString('latin1');
      const statuses = [...text.matchAll(/HTTP\/1\.[01] (\d{3}) /g)].map((m) => Number(m[1]));
      resolve({ text, statuses, closed: !timedOut, reset });
    });
    socket.once('connect', async () => {
      for (const [i, data] of writes.entries()) {
        if (i > 0 && options.pauseMs !== undefined) await new Promise((r) => setTimeout(r, options.pauseMs));
        if (socket.destroyed) return;
        socket.write(data);
      }
    });
  });
}

/** Header value of the first response in a raw answer. */
export function rawHeader(text: string, name: string): string | undefined {
  const head = text.split('\r\n\r\n')[0] ?? '';
  const line = head.split('\r\n').find((l) => l.toLowerCase().startsWith(`${name.toLowerCase()}:`));
  return line?.slice(name.length + 1).trim();
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Sends `head` (with `Expect: 100-continue`) and writes `body` only if `100 Continue` comes first; collects everything answered. */
export function expectContinueExchange(port: number, head: string, body: string, waitMs = 300): Promise<{ text: string; sentBody: boolean }> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(head));
    let text = '';
    let sentBody = false;
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString('latin1');
      if (!sentBody && text.startsWith('HTTP/1.1 100 Continue\r\n\r\n')) {
        sentBody = true;
        socket.write(body);
      }
    });
    socket.on('error', () => undefined);
    socket.on('end', () => socket.end());
    const timer = setTimeout(() => socket.destroy(), waitMs + 1000);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ text, sentBody });
    });
  });
}
