import { XMLParser } from 'fast-xml-parser';
import { readFileSync } from 'node:fs';
import { Agent, request, type IncomingHttpHeaders } from 'node:http';
import { request as tlsRequest } from 'node:https';
import { join } from 'node:path';
import { connect, type Socket } from 'node:net';
import { GatewayError } from '../../src/errors/gateway-error';
import { createGatewayServer } from '../../src/server/gateway-server';
import type { GatewayRequest, GatewayResponse } from '../../src/server/gateway-exchange';
import { actionOf, type Operation } from '../../src/cdcs/route';
import { COFFER, UPLOAD_ID, closeGateways, echoHandler, expectContinueExchange, rawExchange, rawHeader, serverConfig, sleep, startGateway } from './helpers';

/** Polls `condition` every 10 ms (the test's own timeout bounds it). */
async function waitFor(condition: () => boolean): Promise<void> {
  while (!condition()) await sleep(10);
}

afterEach(closeGateways);

interface Answer {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
}

function httpRequest(port: number, options: { method?: string; path: string; headers?: Record<string, string>; body?: string | Buffer }): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method: options.method ?? 'GET', path: options.path, headers: options.headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(options.body);
  });
}

const xml = new XMLParser({ parseTagValue: false });
const errorOf = (body: string): Record<string, string> => xml.parse(body).Error;

describe('request ids, Date and the handler context', () => {
  test('every success carries x-cdcs-request-id = x-cos-request-id (random per request) and Date', async () => {
    const seen: GatewayRequest[] = [];
    const { port } = await startGateway(async (context, response) => {
      seen.push(context);
      response.raw.end('ok');
    });
    const a = await httpRequest(port, { path: `/${COFFER}/k` });
    const b = await httpRequest(port, { path: `/${COFFER}/k` });
    expect(a.status).toBe(200);
    expect(a.headers['x-cos-request-id']).toMatch(/^[0-9a-f]{32}$/);
    expect(a.headers['x-cdcs-request-id']).toBe(a.headers['x-cos-request-id']);
    expect(b.headers['x-cos-request-id']).not.toBe(a.headers['x-cos-request-id']);
    expect(new Date(a.headers.date ?? '').getTime()).toBeGreaterThan(Date.now() - 60_000);
    expect(seen[0]?.id).toBe(a.headers['x-cos-request-id']);
  });

  test('the handler gets the parsed target, the operation, its action and every header value from rawHeaders', async () => {
    let context: GatewayRequest | undefined;
    const { port } = await startGateway(async (ctx, response) => {
      context = ctx;
      response.raw.end();
    });
    const answer = await rawExchange(port, [`PUT /${COFFER}/a%2F..%2Fb?partNumber=3&uploadId=${UPLOAD_ID} HTTP/1.1\r\nHost: h\r\nX-Cos-Meta-A: 1\r\nx-cos-meta-a: 2\r\n__proto__: p\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`]);
    expect(answer.statuses).toEqual([200]);
    expect(context?.target).toMatchObject({ coffer: COFFER, key: 'a/../b', pathname: `/${COFFER}/a/../b` });
    expect(context?.operation).toEqual({ name: 'UploadPart', partNumber: 3, uploadId: UPLOAD_ID });
    expect(actionOf(context?.operation as Operation)).toBe('write');
    expect(context?.headers.get('x-cos-meta-a')).toEqual(['1', '2']);
    expect(context?.headers.get('__proto__')).toEqual(['p']);
    expect(context?.framing).toEqual({ kind: 'length', length: 0 });
    expect(context?.expectContinue).toBe(false);
  });

  test('a valid W3C traceparent becomes the trace id; otherwise a fresh one is minted', async () => {
    const traceIds: string[] = [];
    const { port } = await startGateway(async (ctx, _response) => {
      traceIds.push(ctx.traceId);
      throw new GatewayError('NoSuchKey');
    });
    const trace = '4bf92f3577b34da6a3ce929d0e0e4736';
    const a = await httpRequest(port, { path: `/${COFFER}/k`, headers: { traceparent: `00-${trace}-00f067aa0ba902b7-01` } });
    const b = await httpRequest(port, { path: `/${COFFER}/k`, headers: { traceparent: 'garbage' } });
    expect(a.headers['x-cdcs-trace-id']).toBe(trace);
    expect(errorOf(a.body).TraceId).toBe(trace);
    expect(traceIds[0]).toBe(trace);
    expect(traceIds[1]).toMatch(/^[0-9a-f]{32}$/);
    expect(traceIds[1]).not.toBe(trace);
    expect(b.status).toBe(404);
  });
});

describe('errors', () => {
  test('parse and route errors are rendered without calling handle; Resource is the decoded path without the query', async () => {
    const { port, handle } = await startGateway(echoHandler);
    const cases: Array<[string, string, number, string, string]> = [
      ['PUT', `/${COFFER}/k%20x?partNumber=0&uploadId=${UPLOAD_ID}&q-signature=SECRETSIG`, 400, 'InvalidArgument', `/${COFFER}/k x`],
      ['GET', `/${COFFER}/k?uploadId=nope&q-signature=SECRETSIG`, 404, 'NoSuchUpload', `/${COFFER}/k`],
      ['DELETE', `/${COFFER}/k?q-signature=SECRETSIG`, 405, 'MethodNotAllowed', `/${COFFER}/k`],
      ['GET', `/${COFFER}/a%00b?q-signature=SECRETSIG`, 400, 'InvalidObjectKey', `/${COFFER}/a%00b`],
      ['GET', `/${COFFER}/%ZZ?q-signature=SECRETSIG`, 400, 'InvalidURI', `/${COFFER}/%ZZ`],
      ['GET', '/Not_A_Coffer/k?q-signature=SECRETSIG', 404, 'NoSuchCoffer', '/Not_A_Coffer/k'],
      ['PUT', `/${COFFER}/${'k'.repeat(851)}`, 400, 'InvalidObjectKey', `/${COFFER}/${'k'.repeat(851)}`],
    ];
    for (const [method, path, status, code, resource] of cases) {
      const answer = await httpRequest(port, { method, path, headers: { 'content-length': '0' } });
      expect([method, path, answer.status]).toEqual([method, path, status]);
      expect(answer.headers['content-type']).toBe('application/xml');
      expect(answer.headers['x-cos-request-id']).toMatch(/^[0-9a-f]{32}$/);
      expect(answer.headers['x-cdcs-request-id']).toBe(answer.headers['x-cos-request-id']);
      expect(answer.headers.date).toBeDefined();
      expect(answer.body.startsWith('<?xml version="1.0" encoding="UTF-8"?><Error>')).toBe(true);
      const error = errorOf(answer.body);
      expect(error.Code).toBe(code);
      expect(error.Resource).toBe(resource);
      expect(error.RequestId).toBe(answer.headers['x-cos-request-id']);
      expect(answer.body).not.toContain('SECRETSIG');
    }
    expect(handle).not.toHaveBeenCalled();
  });

  test('a GatewayError thrown by handle is rendered; headers the handler set before failing are dropped', async () => {
    const { port } = await startGateway(async (_request, { raw: res }) => {
      res.setHeader('etag', '"half-done"');
      throw new GatewayError('KMSFailed', undefined, { reason: 'throttled' });
    });
    const answer = await httpRequest(port, { path: `/${COFFER}/k?q-signature=SECRETSIG` });
    expect(answer.status).toBe(409);
    expect(answer.headers.etag).toBeUndefined();
    expect(errorOf(answer.body)).toMatchObject({ Code: 'KMSFailed', Resource: `/${COFFER}/k` });
    expect(errorOf(answer.body).Message).toContain('throttled');
    expect(answer.body).not.toContain('SECRETSIG');
    expect(answer.headers['x-cos-request-id']).toMatch(/^[0-9a-f]{32}$/);
  });

  test('any other error is a 500 InternalError that leaks nothing', async () => {
    const { port } = await startGateway(async () => {
      throw new Error('db password is hunter2');
    });
    const answer = await httpRequest(port, { path: `/${COFFER}/k` });
    expect(answer.status).toBe(500);
    expect(errorOf(answer.body).Code).toBe('InternalError');
    expect(answer.body).not.toContain('hunter2');
  });

  test('HEAD errors have no body', async () => {
    const { port } = await startGateway(async () => {
      throw new GatewayError('NoSuchKey');
    });
    const answer = await httpRequest(port, { method: 'HEAD', path: `/${COFFER}/k` });
    expect(answer.status).toBe(404);
    expect(answer.body).toBe('');
    expect(answer.headers['x-cos-request-id']).toMatch(/^[0-9a-f]{32}$/);
  });

  test('a failure after the headers went out resets the connection instead of ending the response', async () => {
    const { port } = await startGateway(async (_request, { raw: res }) => {
      res.writeHead(200, { 'content-length': '100' });
      res.write('partial');
      await sleep(50);
      throw new GatewayError('IntegrityCheckFailed');
    });
    const answer = await rawExchange(port, [`GET /${COFFER}/k HTTP/1.1\r\nHost: h\r\n\r\n`]);
    expect(answer.statuses).toEqual([200]);
    expect(answer.closed).toBe(true);
    expect(answer.text.endsWith('partial')).toBe(true);
    expect(answer.text).not.toContain('<Error>');
  });

  test('a handler that returns without answering gets a 500 rather than a hanging client', async () => {
    const { port } = await startGateway(async () => undefined);
    const answer = await httpRequest(port, { path: `/${COFFER}/k` });
    expect(answer.status).toBe(500);
  });

  test('absolute-form: accepted (host recorded, routed by path only) or refused by configuration', async () => {
    let host: string | undefined;
    const on = await startGateway(async ({ target }, { raw: res }) => {
      host = target.authority;
      res.end(target.pathname);
    });
    const ok = await rawExchange(on.port, [`GET http://cdcs.ap-guangzhou.myqcloud.com/${COFFER}/k HTTP/1.1\r\nHost: cdcs.ap-guangzhou.myqcloud.com\r\nConnection: close\r\n\r\n`]);
    expect(ok.statuses).toEqual([200]);
    expect(ok.text.endsWith(`/${COFFER}/k`)).toBe(true);
    expect(host).toBe('cdcs.ap-guangzhou.myqcloud.com');

    const off = await startGateway(echoHandler, { acceptAbsoluteForm: false });
    const refused = await rawExchange(off.port, [`GET http://cdcs.ap-guangzhou.myqcloud.com/${COFFER}/k HTTP/1.1\r\nHost: h\r\n\r\n`]);
    expect(refused.statuses).toEqual([400]);
    expect(refused.text).toContain('<Code>InvalidRequest</Code>');
    expect(off.handle).not.toHaveBeenCalled();
  });
});

describe('the request identity is settled before the handler', () => {
  test.each([
    [`GET /${COFFER}/k?UPLOADID=${UPLOAD_ID}`, 'parameter-case'],
    [`GET /${COFFER}/k?acl`, 'parameter-unknown'],
    [`GET /${COFFER}/?prefix=a&prefix=b`, 'parameter-repeated'],
    [`GET /${COFFER}/k?prefix=a`, 'parameter-not-applicable'],
    ['GET /?prefix=', 'parameter-not-applicable'],
  ])('%s → 400 InvalidArgument, handle not called', async (line, _reason) => {
    const { port, handle } = await startGateway(echoHandler);
    const answer = await rawExchange(port, [`${line} HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n`]);
    expect(answer.statuses).toEqual([400]);
    expect(answer.text).toContain('<Code>InvalidArgument</Code>');
    expect(handle).not.toHaveBeenCalled();
  });

  test('virtual-hosted Host → the handler gets the coffer from the host and the whole path as the key', async () => {
    let seen: unknown;
    const { port } = await startGateway(async ({ target }, { raw: res }) => {
      seen = { addressing: target.addressing, coffer: target.coffer, key: target.key, authority: target.authority };
      res.end('ok');
    });
    const answer = await rawExchange(port, [`GET /other-1250000000/k HTTP/1.1\r\nHost: ${COFFER}.cos.ap-guangzhou.myqcloud.com\r\nConnection: close\r\n\r\n`]);
    expect(answer.statuses).toEqual([200]);
    expect(seen).toEqual({ addressing: 'virtual-hosted', coffer: COFFER, key: 'other-1250000000/k', authority: `${COFFER}.cos.ap-guangzhou.myqcloud.com` });
  });
});

describe('411 and body framing', () => {
  test('PUT without Content-Length → 411 MissingContentLength, handle not called', async () => {
    const { port, handle } = await startGateway(echoHandler);
    for (const path of [`/${COFFER}/k`, `/${COFFER}/k?partNumber=1&uploadId=${UPLOAD_ID}`]) {
      const answer = await rawExchange(port, [`PUT ${path} HTTP/1.1\r\nHost: h\r\n\r\n`]);
      expect(answer.statuses).toEqual([411]);
      expect(answer.text).toContain('<Code>MissingContentLength</Code>');
      expect(rawHeader(answer.text, 'x-cos-request-id')).toMatch(/^[0-9a-f]{32}$/);
    }
    // chunked PUT: the length is needed up front
    const chunked = await rawExchange(port, [`PUT /${COFFER}/k HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\n\r\n`]);
    expect(chunked.statuses).toEqual([411]);
    expect(handle).not.toHaveBeenCalled();
  });

  test('a PUT with Content-Length reaches the handler with the exact body', async () => {
    const { port } = await startGateway(echoHandler);
    const answer = await httpRequest(port, { method: 'PUT', path: `/${COFFER}/k`, body: Buffer.alloc(100_000, 7) });
    expect(answer.status).toBe(200);
    expect(answer.body).toBe('ok 100000');
  });
});

/** Sends headers with `Expect: 100-continue`, waits, and sends the body only if 100 came. */
describe('Expect: 100-continue', () => {
  const head = (length: number): string => `PUT /${COFFER}/k?partNumber=1&uploadId=${UPLOAD_ID} HTTP/1.1\r\nHost: h\r\nContent-Length: ${length}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n`;

  test('a handler that refuses answers the error with no 100 and Connection: close; no body byte is sent', async () => {
    const { port, handle } = await startGateway(async (ctx, _response) => {
      expect(ctx.expectContinue).toBe(true);
      await sleep(20); // e.g. resolving the data key
      throw new GatewayError('KMSFailed', undefined, { reason: 'access-denied' });
    });
    const result = await expectContinueExchange(port, head(5), 'hello');
    expect(handle).toHaveBeenCalledTimes(1);
    expect(result.sentBody).toBe(false);
    expect(result.text).not.toContain('100 Continue');
    expect(result.text.startsWith('HTTP/1.1 409 ')).toBe(true);
    expect(rawHeader(result.text, 'connection')).toBe('close');
    expect(result.text).toContain('<Code>KMSFailed</Code>');
  });

  test('a handler that accepts gets 100 first, then the body, then answers', async () => {
    const { port } = await startGateway(echoHandler);
    const result = await expectContinueExchange(port, head(5), 'hello');
    expect(result.sentBody).toBe(true);
    expect(result.text).toMatch(/^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200 OK\r\n/);
    expect(result.text.endsWith('ok 5')).toBe(true);
  });

  test('acceptBody({maxBytes}) refuses an over-long Content-Length before sending 100', async () => {
    const { port } = await startGateway(async ({ acceptBody }, { raw: res }) => {
      acceptBody({ maxBytes: 4 });
      res.end('unexpected');
    });
    const result = await expectContinueExchange(port, head(5), 'hello');
    expect(result.sentBody).toBe(false);
    expect(result.text).not.toContain('100 Continue');
    expect(result.text).toContain('<Code>EntityTooLarge</Code>');
  });

  test('errors decided before the handler (411) are answered without 100 too', async () => {
    const { port, handle } = await startGateway(echoHandler);
    const result = await expectContinueExchange(port, `PUT /${COFFER}/k HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\n\r\n`, 'hello');
    expect(result.sentBody).toBe(false);
    expect(result.text.startsWith('HTTP/1.1 411 ')).toBe(true);
    expect(handle).not.toHaveBeenCalled();
  });

  test('any other expectation → 417, handle not called', async () => {
    const { port, handle } = await startGateway(echoHandler);
    const answer = await rawExchange(port, [`GET /${COFFER}/k HTTP/1.1\r\nHost: h\r\nExpect: teapot\r\n\r\n`]);
    expect(answer.statuses).toEqual([417]);
    expect(answer.text).toContain('<Code>ExpectationFailed</Code>');
    expect(handle).not.toHaveBeenCalled();
  });
});

describe('body guard on a live connection', () => {
  test('a body that stalls is answered 400 RequestTimeout after the idle timeout, and the connection closed', async () => {
    let bodyError: unknown;
    const { port } = await startGateway(
      async (ctx, response) => {
        try {
          for await (const chunk of ctx.acceptBody() as AsyncIterable<Buffer>) void chunk;
        } catch (error) {
          bodyError = error;
          throw error;
        }
        response.raw.end('unexpected');
      },
      { requestIdleTimeoutMs: 300 },
    );
    const started = Date.now();
    const answer = await rawExchange(port, [`PUT /${COFFER}/k HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\nabc`], { waitMs: 3000 });
    const elapsed = Date.now() - started;
    expect(answer.statuses).toEqual([400]);
    expect(answer.text).toContain('<Code>RequestTimeout</Code>');
    expect(rawHeader(answer.text, 'connection')).toBe('close');
    expect(answer.closed).toBe(true);
    expect(bodyError).toMatchObject({ code: 'RequestTimeout' });
    expect(elapsed).toBeGreaterThanOrEqual(250);
    expect(elapsed).toBeLessThan(2000);
  });

  test('a body dripped just inside the idle timeout is cut by the minimum body rate: 400 RequestTimeout, connection closed', async () => {
    const { port } = await startGateway(echoHandler, { requestIdleTimeoutMs: 1_000, minBodyRateBytesPerSecond: 1_000, minBodyRateGraceMs: 300 });
    const head = `PUT /${COFFER}/k HTTP/1.1\r\nHost: h\r\nContent-Length: 1000\r\n\r\n`;
    // One byte every 100 ms: never idle for the 1 s idle timeout; 100 bytes would take 10 s.
    const answer = await rawExchange(port, [head, ...Array.from({ length: 100 }, () => 'x')], { pauseMs: 100, waitMs: 8_000 });
    expect(answer.statuses).toEqual([400]);
    expect(answer.text).toContain('<Code>RequestTimeout</Code>');
    expect(answer.text).toContain('slower than 1000 bytes/s');
    expect(rawHeader(answer.text, 'connection')).toBe('close');
    expect(answer.closed).toBe(true);
  });

  test('a client that disconnects mid-body makes the guard fail with IncompleteBody (never a clean end)', async () => {
    let resolveError: (error: unknown) => void = () => undefined;
    const failed = new Promise<unknown>((resolve) => (resolveError = resolve));
    const { port, gateway } = await startGateway(async (ctx, response) => {
      try {
        for await (const chunk of ctx.acceptBody() as AsyncIterable<Buffer>) void chunk;
        resolveError(undefined);
      } catch (error) {
        resolveError(error);
        throw error;
      }
      response.raw.end();
    });
    const socket = connect(port, '127.0.0.1', () => socket.write(`PUT /${COFFER}/k HTTP/1.1\r\nHost: h\r\nContent-Length: 1000\r\n\r\n${'x'.repeat(400)}`));
    socket.on('error', () => undefined);
    await sleep(100);
    socket.destroy();
    await expect(failed).resolves.toMatchObject({ code: 'IncompleteBody' });
    await sleep(50);
    expect(gateway.inFlight()).toBe(0);
  });
});

describe('close(graceMs)', () => {
  test('drains an in-flight request within the grace period and destroys one that is stuck', async () => {
    const { port, gateway } = await startGateway(async ({ target }, { raw: res }) => {
      if (target.key === 'slow') {
        await sleep(200);
        res.end('drained');
        return;
      }
      await new Promise(() => undefined); // stuck forever
    });
    const drained = httpRequest(port, { path: `/${COFFER}/slow` });
    const stuck = rawExchange(port, [`GET /${COFFER}/stuck HTTP/1.1\r\nHost: h\r\n\r\n`], { waitMs: 5000 });
    await sleep(50);
    expect(gateway.inFlight()).toBe(2);

    const started = Date.now();
    await gateway.close(600);
    const elapsed = Date.now() - started;

    await expect(drained).resolves.toMatchObject({ status: 200, body: 'drained' });
    const stuckAnswer = await stuck;
    expect(stuckAnswer.closed).toBe(true); // destroyed, not answered
    expect(stuckAnswer.statuses).toEqual([]);
    expect(elapsed).toBeGreaterThanOrEqual(550);
    expect(elapsed).toBeLessThan(2000);
    // no longer accepting
    await expect(httpRequest(port, { path: `/${COFFER}/k` })).rejects.toMatchObject({ code: 'ECONNREFUSED' });
  });

  test('returns as soon as in-flight requests are done, without waiting for the whole grace period', async () => {
    const { port, gateway } = await startGateway(async (_request, { raw: res }) => {
      await sleep(100);
      res.end('done');
    });
    const pending = httpRequest(port, { path: `/${COFFER}/k` });
    await sleep(30);
    const started = Date.now();
    await gateway.close(10_000);
    expect(Date.now() - started).toBeLessThan(2000);
    await expect(pending).resolves.toMatchObject({ status: 200 });
  });

  test('a request pipelined in flight at close() is still served (drained)', async () => {
    let release: () => void = () => undefined;
    const { port, gateway } = await startGateway(async ({ target }, { raw: res }) => {
      if (target.key === 'hold') await new Promise<void>((resolve) => (release = resolve));
      res.end(target.key);
    });
    const answer = rawExchange(port, [`GET /${COFFER}/hold HTTP/1.1\r\nHost: h\r\n\r\nGET /${COFFER}/second HTTP/1.1\r\nHost: h\r\n\r\n`], { waitMs: 3000 });
    await sleep(100);
    const closing = gateway.close(2000);
    await sleep(50);
    release();
    await closing;
    const { text, statuses, closed } = await answer;
    expect(statuses).toEqual([200, 200]);
    expect(text.endsWith('second')).toBe(true);
    expect(closed).toBe(true);
  });

  test('a new request on a kept-alive connection after close() started is refused with 503 and Connection: close', async () => {
    const releases = new Map<string, () => void>();
    const { port, gateway, handle } = await startGateway(async ({ target }, { raw: res }) => {
      if (target.key === 'stream') {
        res.writeHead(200, { 'content-length': '4' }); // headers out before close(): stays keep-alive
        res.write('st');
        await new Promise<void>((resolve) => releases.set('stream', resolve));
        res.end('ok');
        return;
      }
      if (target.key === 'other') await new Promise<void>((resolve) => releases.set('other', resolve));
      res.end(target.key);
    });
    const socket = connect(port, '127.0.0.1');
    let text = '';
    socket.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')));
    socket.on('error', () => undefined);
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    socket.write(`GET /${COFFER}/stream HTTP/1.1\r\nHost: h\r\n\r\n`);
    const other = httpRequest(port, { path: `/${COFFER}/other` }); // keeps the gateway draining
    await sleep(100);
    const closing = gateway.close(3000);
    releases.get('stream')?.();
    await sleep(50);
    socket.write(`GET /${COFFER}/late HTTP/1.1\r\nHost: h\r\n\r\n`);
    await sleep(100);
    releases.get('other')?.();
    await closing;
    await expect(other).resolves.toMatchObject({ status: 200 });
    const statuses = [...text.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => Number(m[1]));
    expect(statuses).toEqual([200, 503]);
    expect(text).toContain('<Code>ServiceUnavailable</Code>');
    expect(text.split('HTTP/1.1 503')[1]).toMatch(/\r\nconnection: close\r\n/i);
    expect(handle).toHaveBeenCalledTimes(2); // stream and other, never late
    socket.destroy();
  });
});

describe('listener settings', () => {
  test('TLS: served over https when tls is configured, with the same request ids', async () => {
    const fixtures = join(__dirname, '..', 'config', 'fixtures');
    const certFile = join(fixtures, 'tls.crt');
    const keyFile = join(fixtures, 'tls.key');
    const tls = { reloadIntervalMs: 10_000, certFile, keyFile, certPem: readFileSync(certFile, 'utf8'), keyPem: readFileSync(keyFile, 'utf8') };
    const { port } = await startGateway(echoHandler, { tls });
    const answer = await new Promise<Answer>((resolve, reject) => {
      const req = tlsRequest({ host: '127.0.0.1', port, path: `/${COFFER}/k`, rejectUnauthorized: false, agent: false }, (res) => {
        let body = '';
        res.on('data', (chunk: Buffer) => (body += chunk.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      });
      req.on('error', reject);
      req.end();
    });
    expect(answer.status).toBe(200);
    expect(answer.body).toBe('ok 0');
    expect(answer.headers['x-cos-request-id']).toMatch(/^[0-9a-f]{32}$/);
    // plain HTTP on the TLS port is not served
    const plain = await rawExchange(port, [`GET /${COFFER}/k HTTP/1.1\r\nHost: h\r\n\r\n`]);
    expect(plain.text).not.toContain('ok 0');
  });

  test('maxConnections, every slot carrying a request: a newcomer is answered 503 SlowDown with Retry-After and Connection: close, not reset; the busy ones are served', async () => {
    let release: () => void = () => undefined;
    const shed: string[] = [];
    const handle = jest.fn(async (_request: GatewayRequest, { raw: res }: GatewayResponse) => {
      await new Promise<void>((resolve) => (release = resolve));
      res.end('first');
    });
    const gateway = createGatewayServer({ server: serverConfig({ maxConnections: 1 }), handle, onConnectionShed: (how) => shed.push(how) });
    const { port } = await gateway.listen();
    try {
      const first = httpRequest(port, { path: `/${COFFER}/k` });
      await waitFor(() => handle.mock.calls.length === 1);
      const second = await rawExchange(port, [`GET /${COFFER}/k HTTP/1.1\r\nHost: h\r\n\r\n`], { waitMs: 3000 });
      expect(second.reset).toBe(false);
      expect(second.closed).toBe(true);
      expect(second.statuses).toEqual([503]);
      expect(second.text).toContain('<Code>SlowDown</Code>');
      expect(rawHeader(second.text, 'retry-after')).toBe('1');
      expect(rawHeader(second.text, 'connection')).toBe('close');
      expect(handle).toHaveBeenCalledTimes(1); // the refused request never reached the handler
      expect(shed).toEqual(['newcomer-refused']);
      release();
      await expect(first).resolves.toMatchObject({ status: 200, body: 'first' });
    } finally {
      release();
      await gateway.close(0);
    }
  });

  test('maxConnections, every slot carrying a request: a CONNECT newcomer gets the same 503 SlowDown (never a tunnel that would hold a slot), and the interceptor is not asked', async () => {
    let release: () => void = () => undefined;
    const handle = jest.fn(async (_request: GatewayRequest, { raw: res }: GatewayResponse) => {
      await new Promise<void>((resolve) => (release = resolve));
      res.end('first');
    });
    const onConnect = jest.fn();
    const gateway = createGatewayServer({ server: serverConfig({ maxConnections: 1 }), handle, onConnect });
    const { port } = await gateway.listen();
    try {
      const first = httpRequest(port, { path: `/${COFFER}/k` });
      await waitFor(() => handle.mock.calls.length === 1);
      const connect = await rawExchange(port, [`CONNECT ${COFFER}.cos.ap-guangzhou.myqcloud.com:443 HTTP/1.1\r\nHost: ${COFFER}.cos.ap-guangzhou.myqcloud.com:443\r\n\r\n`], { waitMs: 3000 });
      expect(connect.reset).toBe(false);
      expect(connect.statuses).toEqual([503]);
      expect(connect.text).toContain('<Code>SlowDown</Code>');
      expect(rawHeader(connect.text, 'retry-after')).toBe('1');
      // One framing: a single Content-Length and Retry-After (the refusal writes the head itself).
      const head = connect.text.slice(0, connect.text.indexOf('\r\n\r\n')).toLowerCase();
      expect(head.match(/^content-length:/gm)).toHaveLength(1);
      expect(head.match(/^retry-after:/gm)).toHaveLength(1);
      expect(onConnect).not.toHaveBeenCalled();
      release();
      await expect(first).resolves.toMatchObject({ status: 200, body: 'first' });
    } finally {
      release();
      await gateway.close(0);
    }
  });

  test('maxConnections: an idle keep-alive connection gives its slot to a newcomer; the one carrying a request keeps its', async () => {
    let release: () => void = () => undefined;
    const { port } = await startGateway(
      async ({ target }, { raw: res }) => {
        if (target.key === 'slow') await new Promise<void>((resolve) => (release = resolve));
        res.end('done');
      },
      { maxConnections: 2 },
    );
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const keptAlive = await new Promise<{ socket: Socket; status: number }>((resolve, reject) => {
        let socket: Socket | undefined;
        request({ host: '127.0.0.1', port, path: `/${COFFER}/quick`, agent }, (res) => {
          res.resume();
          res.on('end', () => resolve({ socket: socket as Socket, status: res.statusCode ?? 0 }));
        })
          .on('socket', (s: Socket) => (socket = s))
          .on('error', reject)
          .end();
      });
      expect(keptAlive.status).toBe(200);
      let keptAliveClosed = false;
      keptAlive.socket.on('close', () => (keptAliveClosed = true));
      // A slow request holds the other slot; the keep-alive connection now waits with no request.
      const slow = httpRequest(port, { path: `/${COFFER}/slow` });
      await sleep(50);
      expect(keptAliveClosed).toBe(false);
      await expect(httpRequest(port, { path: `/${COFFER}/newcomer` })).resolves.toMatchObject({ status: 200, body: 'done' });
      await waitFor(() => keptAliveClosed);
      release();
      await expect(slow).resolves.toMatchObject({ status: 200, body: 'done' });
    } finally {
      release();
      agent.destroy();
    }
  });

  test('maxConnections held by clients dripping headers: a newcomer closes the longest-waiting one and is served', async () => {
    const { port } = await startGateway(echoHandler, { maxConnections: 3 });
    const closed = [false, false, false];
    const drippers = [];
    for (const i of [0, 1, 2]) {
      const socket = connect(port, '127.0.0.1');
      await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
      socket.on('error', () => undefined);
      socket.on('close', () => (closed[i] = true));
      socket.write(`PUT /${COFFER}/dripper-${i} HTTP/1.1\r\nHost: h\r\n`);
      drippers.push(socket);
      await sleep(30); // distinct waiting-since times: dripper 0 has waited longest
    }
    try {
      await expect(httpRequest(port, { method: 'PUT', path: `/${COFFER}/legit`, body: 'hello' })).resolves.toMatchObject({ status: 200, body: 'ok 5' });
      await waitFor(() => closed[0] === true);
      await sleep(100);
      expect(closed).toEqual([true, false, false]);
    } finally {
      for (const socket of drippers) socket.destroy();
    }
  });
});
