/**
 * Request smuggling and malformed HTTP over a raw socket: every variant is answered 400/414/431 with a
 * closed connection (or just closed) and never reaches `handle` (reliability checklist item 11).
 */
import { COFFER, UPLOAD_ID, closeGateways, echoHandler, rawExchange, rawHeader, startGateway } from './helpers';

const KEY = `/${COFFER}/k`;
const PART = `${KEY}?partNumber=1&uploadId=${UPLOAD_ID}`;
const COMPLETE = `${KEY}?uploadId=${UPLOAD_ID}`;

afterEach(closeGateways);

/** 'closed': the parser failed on bytes after a complete header block (the request was already
 * dispatched), so no clean answer can be written; the socket is destroyed before any handler runs. */
type Expected = 400 | 403 | 411 | 414 | 431 | 'closed';

const rows: Array<[name: string, raw: string | Buffer, expected: Expected, code?: string]> = [
  ['CL + TE', `PUT ${PART} HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /x HTTP/1.1\r\nHost: h\r\n\r\n`, 400],
  ['TE + CL', `POST ${COMPLETE} HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n`, 400],
  ['duplicate Content-Length (different)', `PUT ${PART} HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nabcdef`, 400],
  ['duplicate Content-Length (same)', `PUT ${PART} HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc`, 400],
  ['Content-Length list', `PUT ${PART} HTTP/1.1\r\nHost: h\r\nContent-Length: 3, 3\r\n\r\nabc`, 400],
  ['Content-Length with a sign', `PUT ${PART} HTTP/1.1\r\nHost: h\r\nContent-Length: +3\r\n\r\nabc`, 400],
  ['Content-Length in hex', `PUT ${PART} HTTP/1.1\r\nHost: h\r\nContent-Length: 0x3\r\n\r\nabc`, 400],
  ['obs-fold', `GET ${KEY} HTTP/1.1\r\nHost: h\r\nX-A: a\r\n b\r\n\r\n`, 400],
  ['obs-fold hiding Transfer-Encoding', `POST ${COMPLETE} HTTP/1.1\r\nHost: h\r\nX-A: a\r\n Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\nabc`, 400],
  ['bare LF line endings', `GET ${KEY} HTTP/1.1\nHost: h\n\n`, 400],
  ['bare LF after a header', `GET ${KEY} HTTP/1.1\r\nHost: h\nX: y\r\n\r\n`, 400],
  ['bare CR', `GET ${KEY} HTTP/1.1\rHost: h\r\n\r\n`, 400],
  ['space before colon', `PUT ${PART} HTTP/1.1\r\nHost: h\r\nContent-Length : 3\r\n\r\nabc`, 400],
  ['Transfer-Encoding with space before colon', `POST ${COMPLETE} HTTP/1.1\r\nHost: h\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n`, 400],
  ['header line starting with whitespace', `PUT ${PART} HTTP/1.1\r\n Content-Length: 3\r\nHost: h\r\n\r\nabc`, 400],
  ['NUL in a header value', `GET ${KEY} HTTP/1.1\r\nHost: h\r\nX-A: a\u0000b\r\n\r\n`, 400],
  ['CR inside a header value', `GET ${KEY} HTTP/1.1\r\nHost: h\r\nX-A: a\rb\r\n\r\n`, 400],
  ['invalid header name', `GET ${KEY} HTTP/1.1\r\nHost: h\r\nX@A: b\r\n\r\n`, 400],
  ['empty header name', `GET ${KEY} HTTP/1.1\r\nHost: h\r\n: b\r\n\r\n`, 400],
  ['invalid chunk size', `POST ${COMPLETE} HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n`, 'closed'],
  ['chunk size overflow', `POST ${COMPLETE} HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffffff\r\n`, 'closed'],
  ['chunk size with bare LF', `POST ${COMPLETE} HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n1\na\r\n0\r\n\r\n`, 'closed'],
  ['chunked not the final encoding', `POST ${COMPLETE} HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n`, 400],
  ['identity, chunked', `POST ${COMPLETE} HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: identity, chunked\r\n\r\n0\r\n\r\n`, 400, 'InvalidRequest'],
  ['duplicate Transfer-Encoding', `POST ${COMPLETE} HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`, 400],
  ['unknown Transfer-Encoding', `POST ${COMPLETE} HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n`, 400],
  ['chunked PUT (length needed up front)', `PUT ${PART} HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n`, 411, 'MissingContentLength'],
  ['GET with a body hiding a second request', `GET ${KEY} HTTP/1.1\r\nHost: h\r\nContent-Length: 38\r\n\r\nGET /${COFFER}/secret HTTP/1.1\r\nHost: h\r\n\r\n`, 400, 'InvalidRequest'],
  ['lower-case method', `get ${KEY} HTTP/1.1\r\nHost: h\r\n\r\n`, 400],
  ['HTTP/1.2', `GET ${KEY} HTTP/1.2\r\nHost: h\r\n\r\n`, 400],
  ['HTTP/2.0 request line', `GET ${KEY} HTTP/2.0\r\nHost: h\r\n\r\n`, 400, 'InvalidRequest'],
  ['HTTP/0.9', `GET ${KEY}\r\n\r\n`, 400],
  ['HTTP/1.1 without Host', `GET ${KEY} HTTP/1.1\r\n\r\n`, 400, 'InvalidRequest'],
  ['two Host headers', `GET ${KEY} HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n`, 400, 'InvalidRequest'],
  ['raw non-ASCII in the target', Buffer.concat([Buffer.from(`GET /${COFFER}/`), Buffer.from('é'), Buffer.from(' HTTP/1.1\r\nHost: h\r\n\r\n')]), 400],
  ['fragment in the target', `GET ${KEY}#x HTTP/1.1\r\nHost: h\r\n\r\n`, 400, 'InvalidURI'],
  ['userinfo in an absolute-form target', `GET http://u:p@h${KEY} HTTP/1.1\r\nHost: h\r\n\r\n`, 400, 'InvalidURI'],
  ['huge header', `GET ${KEY} HTTP/1.1\r\nHost: h\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`, 431, 'RequestHeaderFieldsTooLarge'],
  ['too many header lines', `GET ${KEY} HTTP/1.1\r\nHost: h\r\n${'a: b\r\n'.repeat(201)}\r\n`, 431, 'RequestHeaderFieldsTooLarge'],
  ['URL too long', `GET ${KEY}?x=${'a'.repeat(9000)} HTTP/1.1\r\nHost: h\r\n\r\n`, 414, 'URITooLong'],
  // Without an egress interceptor the listener answers every CONNECT (never a tunnel, never silence).
  ['CONNECT', `CONNECT internal.example:443 HTTP/1.1\r\nHost: internal.example:443\r\n\r\n`, 403, 'AccessDenied'],
];

// Objects, not arrays: jest would take a missing fourth array element for a `done` callback.
const variants = rows.map(([name, raw, expected, code]) => ({ name, raw, expected, code }));

describe('malformed and smuggling requests', () => {
  test('there are at least 15 variants', () => {
    expect(variants.length).toBeGreaterThanOrEqual(15);
  });

  test.each(variants)('$name → $expected, connection closed, handle never called', async ({ raw, expected, code }) => {
    const { port, handle } = await startGateway(echoHandler);
    const answer = await rawExchange(port, [raw]);
    expect(handle).not.toHaveBeenCalled();
    expect(answer.closed).toBe(true);
    if (expected === 'closed') {
      expect(answer.statuses).toEqual([]);
    } else {
      // exactly one answer: nothing smuggled behind the bad request was served
      expect(answer.statuses).toEqual([expected]);
      expect(rawHeader(answer.text, 'connection')).toBe('close');
      expect(rawHeader(answer.text, 'x-cos-request-id')).toMatch(/^[0-9a-f]{32}$/);
      expect(rawHeader(answer.text, 'x-cdcs-request-id')).toBe(rawHeader(answer.text, 'x-cos-request-id'));
      expect(answer.text).toContain('<Error><Code>');
      if (code !== undefined) expect(answer.text).toContain(`<Code>${code}</Code>`);
    }
  });

  test('a valid request, then a malformed one on the same connection: the first is served, the second refused', async () => {
    const { port, handle } = await startGateway(echoHandler);
    const answer = await rawExchange(port, [`GET ${KEY} HTTP/1.1\r\nHost: h\r\n\r\n`, `GET ${KEY} HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab`], { pauseMs: 150 });
    expect(handle).toHaveBeenCalledTimes(1);
    expect(answer.statuses).toEqual([200, 400]);
    expect(answer.closed).toBe(true);
  });

  test('garbage pipelined in the same packet behind a valid request: nothing is served, the connection is dropped', async () => {
    const { port, handle } = await startGateway(echoHandler);
    const answer = await rawExchange(port, [`GET ${KEY} HTTP/1.1\r\nHost: h\r\n\r\nGET ${KEY} HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab`]);
    expect(handle).not.toHaveBeenCalled();
    expect(answer.statuses).toEqual([]);
    expect(answer.closed).toBe(true);
  });

  test('a broken chunk that arrives after the handler started fails the body, never a 2xx', async () => {
    let bodyError: unknown;
    const { port, handle } = await startGateway(async (context, response) => {
      try {
        for await (const chunk of context.acceptBody() as AsyncIterable<Buffer>) void chunk;
      } catch (error) {
        bodyError = error;
        throw error;
      }
      response.raw.end('unexpected success');
    });
    const answer = await rawExchange(port, [`POST ${COMPLETE} HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n`, 'zz\r\n'], { pauseMs: 150 });
    expect(handle).toHaveBeenCalledTimes(1);
    expect(answer.closed).toBe(true);
    expect(answer.text).not.toContain('unexpected success');
    expect(answer.statuses.every((s) => s >= 400)).toBe(true);
    expect(bodyError).toMatchObject({ code: 'IncompleteBody' });
  });

  test('a header block that is never finished is cut at headersTimeout (Slowloris) with a rendered 400', async () => {
    const { port, handle } = await startGateway(echoHandler, { headersTimeoutMs: 1000 });
    const started = Date.now();
    const answer = await rawExchange(port, [`GET ${KEY} HTTP/1.1\r\nHost: h\r\n`, 'X-A: 1\r\n', 'X-B: 2\r\n'], { pauseMs: 300, waitMs: 5000 });
    expect(handle).not.toHaveBeenCalled();
    expect(answer.closed).toBe(true);
    expect(answer.statuses).toEqual([400]);
    expect(answer.text).toContain('<Code>RequestTimeout</Code>');
    expect(Date.now() - started).toBeLessThan(3000);
  });
});
