import { randomBytes } from 'node:crypto';
import { createServer, request, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createGatewayRequest, type GatewayRequest } from '../../src/server/gateway-exchange';
import { chunksAreMovable } from '../../src/util/movable-chunks';

/** A real HTTP server that accepts one body through createGatewayRequest and reports its chunks. */
async function acceptOneBody(body: Buffer): Promise<{ movable: boolean; chunks: Buffer[] }> {
  let resolveResult!: (result: { movable: boolean; chunks: Buffer[] }) => void;
  const result = new Promise<{ movable: boolean; chunks: Buffer[] }>((resolve) => (resolveResult = resolve));
  const server = createServer((req: IncomingMessage, res) => {
    const fields = { framing: { kind: 'length', length: body.length }, method: 'PUT' } as unknown as Omit<GatewayRequest, 'acceptBody' | 'bodyBytesRead' | 'principal'>;
    const accepted = createGatewayRequest(req, fields, { idleTimeoutMs: 5000, minRate: { bytesPerSecond: 0, graceMs: 0 } }, () => undefined).acceptBody();
    const chunks: Buffer[] = [];
    accepted.on('data', (chunk: Buffer) => chunks.push(chunk));
    accepted.on('end', () => {
      res.end();
      resolveResult({ movable: chunksAreMovable(accepted), chunks });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const client = request({ host: '127.0.0.1', port: (server.address() as AddressInfo).port, method: 'PUT', headers: { 'content-length': body.length }, agent: false });
    client.end(body);
    await new Promise((resolve, reject) => client.on('response', resolve).on('error', reject));
    return await result;
  } finally {
    server.close();
  }
}

test("the request body is marked movable, and Node's parser gives it every piece in a buffer of its own (what moving to a crypto worker relies on)", async () => {
  const body = randomBytes(3 * 1024 * 1024 + 17);
  const { movable, chunks } = await acceptOneBody(body);
  expect(movable).toBe(true);
  expect(Buffer.concat(chunks).equals(body)).toBe(true);
  expect(chunks.length).toBeGreaterThan(1);
  // Each chunk is the whole of its own ArrayBuffer: the encryptor moves these instead of copying (a
  // Node that delivered slices of a shared buffer would make them copied again, never wrongly moved).
  expect(chunks.filter((chunk) => chunk.byteOffset !== 0 || chunk.buffer.byteLength !== chunk.length)).toEqual([]);
  expect(new Set(chunks.map((chunk) => chunk.buffer)).size).toBe(chunks.length);
});
