import { PassThrough, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { GatewayError } from '../../src/errors/gateway-error';
import { bodyFramingOf, guardBody, type BodyFraming, type HeaderMap } from '../../src/server/body-guard';

function framing(method: string, fields: Readonly<Record<string, readonly string[]>>): BodyFraming | string {
  const headers: HeaderMap = new Map(Object.entries(fields));
  try {
    return bodyFramingOf(method, headers);
  } catch (error) {
    if (error instanceof GatewayError) return `${error.status} ${error.code}`;
    throw error;
  }
}

describe('bodyFramingOf', () => {
  test.each<[string, Readonly<Record<string, readonly string[]>>, BodyFraming | string]>([
    ['PUT', { 'content-length': ['5'] }, { kind: 'length', length: 5 }],
    ['PUT', { 'content-length': ['0'] }, { kind: 'length', length: 0 }],
    ['PUT', { 'content-length': ['5368709120'] }, { kind: 'length', length: 5368709120 }],
    ['PUT', {}, '411 MissingContentLength'],
    ['PUT', { 'transfer-encoding': ['chunked'] }, '411 MissingContentLength'],
    ['PUT', { 'content-length': ['5', '5'] }, '400 InvalidArgument'],
    ['PUT', { 'content-length': ['5', '6'] }, '400 InvalidArgument'],
    ['PUT', { 'content-length': ['-1'] }, '400 InvalidArgument'],
    ['PUT', { 'content-length': ['1e3'] }, '400 InvalidArgument'],
    ['PUT', { 'content-length': ['0x10'] }, '400 InvalidArgument'],
    ['PUT', { 'content-length': [''] }, '400 InvalidArgument'],
    ['PUT', { 'content-length': ['5, 5'] }, '400 InvalidArgument'],
    ['PUT', { 'content-length': ['99999999999999999'] }, '400 InvalidArgument'],
    ['PUT', { 'content-length': ['5'], 'transfer-encoding': ['chunked'] }, '400 InvalidRequest'],
    ['POST', { 'content-length': ['10'] }, { kind: 'length', length: 10 }],
    ['POST', { 'transfer-encoding': ['chunked'] }, { kind: 'chunked' }],
    ['POST', { 'transfer-encoding': ['gzip, chunked'] }, '400 InvalidRequest'],
    ['POST', {}, { kind: 'none' }],
    ['GET', {}, { kind: 'none' }],
    ['GET', { 'content-length': ['0'] }, { kind: 'length', length: 0 }],
    ['GET', { 'content-length': ['3'] }, '400 InvalidRequest'],
    ['HEAD', { 'transfer-encoding': ['chunked'] }, '400 InvalidRequest'],
    ['DELETE', { 'content-length': ['1'] }, '400 InvalidRequest'],
  ])('%s %j → %j', (method, headers, expected) => {
    expect(framing(method, headers)).toEqual(expected);
  });
});

/** Collects a stream into a Buffer, returning the error instead of throwing. */
async function drain(stream: NodeJS.ReadableStream): Promise<{ data: Buffer; error?: GatewayError }> {
  const chunks: Buffer[] = [];
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) chunks.push(chunk);
    return { data: Buffer.concat(chunks) };
  } catch (error) {
    return { data: Buffer.concat(chunks), error: error as GatewayError };
  }
}

describe('guardBody', () => {
  test('passes the body through when exactly Content-Length bytes arrive', async () => {
    const source = new PassThrough();
    const body = guardBody(source, { idleTimeoutMs: 1000, framing: { kind: 'length', length: 6 } });
    source.write('abc');
    setTimeout(() => source.end('def'), 20);
    await expect(drain(body)).resolves.toEqual({ data: Buffer.from('abcdef') });
  });

  test('no byte for the idle timeout → RequestTimeout', async () => {
    const source = new PassThrough();
    const body = guardBody(source, { idleTimeoutMs: 80, framing: { kind: 'length', length: 10 } });
    source.write('abc');
    const started = Date.now();
    const result = await drain(body);
    expect(result.data.toString()).toBe('abc');
    expect(result.error).toBeInstanceOf(GatewayError);
    expect(result.error?.code).toBe('RequestTimeout');
    expect(Date.now() - started).toBeGreaterThanOrEqual(70);
  });

  test('a client that keeps trickling bytes is not idle', async () => {
    const source = new PassThrough();
    const body = guardBody(source, { idleTimeoutMs: 100, framing: { kind: 'length', length: 8 } });
    let sent = 0;
    const timer = setInterval(() => {
      source.write('x');
      sent += 1;
      if (sent === 8) {
        clearInterval(timer);
        source.end();
      }
    }, 40); // 8 × 40 ms = 320 ms in total, more than 3 × the idle timeout
    await expect(drain(body)).resolves.toEqual({ data: Buffer.from('xxxxxxxx') });
  });

  test('backpressure from a slow consumer does not count as client idleness', async () => {
    const source = new PassThrough();
    const total = 6 * 64 * 1024;
    const body = guardBody(source, { idleTimeoutMs: 60, framing: { kind: 'length', length: total } });
    // Everything is already there in 6 chunks: the client is done sending, only the consumer is slow.
    for (let i = 0; i < 6; i += 1) source.write(Buffer.alloc(total / 6, 1));
    source.end();
    const started = Date.now();
    let received = 0;
    const slow = new Writable({
      highWaterMark: 1024,
      write(chunk: Buffer, _encoding, callback) {
        received += chunk.length;
        setTimeout(callback, 150); // each chunk takes longer than the idle timeout to consume
      },
    });
    await pipeline(body, slow);
    expect(received).toBe(total);
    expect(Date.now() - started).toBeGreaterThan(5 * 150); // the consumer really held the body back past the idle timeout
  });

  test('minimum rate: a client dripping a byte just inside the idle timeout is cut (RequestTimeout), after few bytes', async () => {
    const source = new PassThrough();
    // Idle timeout 1 s, one byte every 40 ms: never idle. 1,000 bytes/s after a 200 ms grace: each byte
    // buys 1 ms of waiting and costs 40, so the budget runs out after roughly 5 bytes.
    const body = guardBody(source, { idleTimeoutMs: 1_000, framing: { kind: 'length', length: 1_000 }, minRate: { bytesPerSecond: 1_000, graceMs: 200 } });
    let sent = 0;
    const timer = setInterval(() => {
      if (sent < 1_000) source.write('x');
      sent += 1;
    }, 40);
    const result = await drain(body);
    clearInterval(timer);
    expect(result.error).toBeInstanceOf(GatewayError);
    expect(result.error?.code).toBe('RequestTimeout');
    expect(result.error?.message).toContain('slower than 1000 bytes/s');
    // Cut long before the body could have finished (1,000 bytes would take 40 s at this pace).
    expect(result.data.length).toBeLessThan(20);
  });

  test('minimum rate: a client at the rate or above is never cut, and 0 bytes/s switches the check off', async () => {
    const fast = new PassThrough();
    const paced = guardBody(fast, { idleTimeoutMs: 1_000, framing: { kind: 'length', length: 20 * 1024 }, minRate: { bytesPerSecond: 10_000, graceMs: 100 } });
    let sent = 0;
    const timer = setInterval(() => {
      fast.write(Buffer.alloc(1024, 1)); // 1 KiB per 20 ms ≈ 50 KiB/s, five times the minimum
      sent += 1;
      if (sent === 20) {
        clearInterval(timer);
        fast.end();
      }
    }, 20);
    expect((await drain(paced)).data.length).toBe(20 * 1024);

    const slow = new PassThrough();
    const unchecked = guardBody(slow, { idleTimeoutMs: 1_000, framing: { kind: 'length', length: 6 }, minRate: { bytesPerSecond: 0, graceMs: 0 } });
    let dripped = 0;
    const drip = setInterval(() => {
      slow.write('y');
      dripped += 1;
      if (dripped === 6) {
        clearInterval(drip);
        slow.end();
      }
    }, 40);
    await expect(drain(unchecked)).resolves.toEqual({ data: Buffer.from('yyyyyy') });
  });

  test('minimum rate: time the consumer holds the body back (backpressure) is not charged to the client', async () => {
    const source = new PassThrough();
    const total = 6 * 64 * 1024;
    // A rate no client could meet if the consumer's 6 × 150 ms were counted: 100 ms of grace, and 6 × 64 KiB
    // at 1 GB/s buys nothing. Only the time spent waiting for bytes that are not there counts, and they all are.
    const body = guardBody(source, { idleTimeoutMs: 60_000, framing: { kind: 'length', length: total }, minRate: { bytesPerSecond: 1_000_000_000, graceMs: 100 } });
    for (let i = 0; i < 6; i += 1) source.write(Buffer.alloc(total / 6, 1));
    source.end();
    let received = 0;
    const slow = new Writable({
      highWaterMark: 1024,
      write(chunk: Buffer, _encoding, callback) {
        received += chunk.length;
        setTimeout(callback, 150);
      },
    });
    await pipeline(body, slow);
    expect(received).toBe(total);
  });

  test('the client going away before Content-Length bytes → IncompleteBody, never a clean end', async () => {
    const source = new PassThrough();
    const body = guardBody(source, { idleTimeoutMs: 1000, framing: { kind: 'length', length: 10 } });
    source.write('abcd');
    setTimeout(() => source.destroy(), 20);
    const result = await drain(body);
    expect(result.error?.code).toBe('IncompleteBody');
    expect(result.error?.message).toContain('4 of 10');
  });

  test('an end before Content-Length bytes → IncompleteBody', async () => {
    const source = new PassThrough();
    const body = guardBody(source, { idleTimeoutMs: 1000, framing: { kind: 'length', length: 10 } });
    source.end('abcd');
    expect((await drain(body)).error?.code).toBe('IncompleteBody');
  });

  test('a source error → IncompleteBody with the cause kept', async () => {
    const source = new PassThrough();
    const body = guardBody(source, { idleTimeoutMs: 1000, framing: { kind: 'chunked' } });
    const cause = Object.assign(new Error('aborted'), { code: 'ECONNRESET' });
    setTimeout(() => source.destroy(cause), 10);
    const result = await drain(body);
    expect(result.error?.code).toBe('IncompleteBody');
    expect(result.error?.cause).toBe(cause);
  });

  test('maxBytes: refused up front for Content-Length, while reading for chunked', async () => {
    expect(() => guardBody(new PassThrough(), { idleTimeoutMs: 1000, framing: { kind: 'length', length: 11 }, maxBytes: 10 })).toThrow(expect.objectContaining({ code: 'EntityTooLarge' }));
    const source = new PassThrough();
    const body = guardBody(source, { idleTimeoutMs: 1000, framing: { kind: 'chunked' }, maxBytes: 10 });
    source.write(Buffer.alloc(6));
    source.write(Buffer.alloc(6));
    expect((await drain(body)).error?.code).toBe('EntityTooLarge');
  });

  test('framing none is an empty body', async () => {
    const source = new PassThrough();
    const body = guardBody(source, { idleTimeoutMs: 1000, framing: { kind: 'none' } });
    source.end();
    await expect(drain(body)).resolves.toEqual({ data: Buffer.alloc(0) });
  });

  test('the timer is off once the body is done (no late error)', async () => {
    const source = new PassThrough();
    const body = guardBody(source, { idleTimeoutMs: 30, framing: { kind: 'length', length: 1 } });
    source.end('x');
    await drain(body);
    const late = jest.fn();
    body.on('error', late);
    await new Promise((resolve) => setTimeout(resolve, 80));
    expect(late).not.toHaveBeenCalled();
  });
});
