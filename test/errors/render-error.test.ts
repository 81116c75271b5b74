import { XMLParser } from 'fast-xml-parser';
import { ERROR_CATALOGUE, isErrorCode } from '../../src/errors/error-catalogue';
import { GatewayError } from '../../src/errors/gateway-error';
import { renderError } from '../../src/errors/render-error';

const context = { resource: '/demo-1250000000/a&b<c>.txt', requestId: 'req-1', traceId: 'trace-1' };
const parser = new XMLParser();

describe('error rendering', () => {
  test('renders the COS-style XML body with both request-id headers', () => {
    const rendered = renderError(new GatewayError('NoSuchUpload'), context, new Date('2026-11-24T12:00:00Z'));
    expect(rendered.status).toBe(404);
    expect(rendered.headers).toMatchObject({
      'content-type': 'application/xml',
      'x-cdcs-request-id': 'req-1',
      'x-cos-request-id': 'req-1',
      'x-cdcs-trace-id': 'trace-1',
      date: 'Tue, 24 Nov 2026 12:00:00 GMT',
    });
    expect(rendered.body.startsWith('<?xml version="1.0" encoding="UTF-8"?><Error>')).toBe(true);
    expect(Number(rendered.headers['content-length'])).toBe(Buffer.byteLength(rendered.body));
    expect(parser.parse(rendered.body).Error).toEqual({
      Code: 'NoSuchUpload',
      Message: ERROR_CATALOGUE.NoSuchUpload.message,
      Resource: '/demo-1250000000/a&b<c>.txt',
      RequestId: 'req-1',
      TraceId: 'trace-1',
    });
  });

  test('escapes markup in the resource and message', () => {
    const rendered = renderError(new GatewayError('InvalidArgument', 'partNumber "<1>" is not an integer'), context);
    expect(rendered.body).toContain('&lt;1&gt;');
    expect(rendered.body).toContain('a&amp;b&lt;c&gt;.txt');
    expect(parser.parse(rendered.body).Error.Message).toBe('partNumber "<1>" is not an integer');
  });

  test('409s carry their machine-readable reason', () => {
    const rendered = renderError(new GatewayError('KMSFailed', undefined, { reason: 'throttled' }), context);
    expect(rendered.status).toBe(409);
    expect(parser.parse(rendered.body).Error.Message).toContain('(reason: throttled)');
  });

  test("an error carries its extra headers into the answer (a 416's Content-Range) but cannot replace the rendered ones", () => {
    const error = new GatewayError('InvalidRange', undefined, { headers: { 'content-range': 'bytes */5', 'content-type': 'text/html', 'x-cos-request-id': 'forged' } });
    const rendered = renderError(error, context);
    expect(rendered.status).toBe(416);
    expect(rendered.headers['content-range']).toBe('bytes */5');
    expect(rendered.headers['content-type']).toBe('application/xml');
    expect(rendered.headers['x-cos-request-id']).toBe(context.requestId);
  });

  test('anything that is not a GatewayError becomes InternalError without its message', () => {
    const rendered = renderError(new Error('secret internal detail: key=abc'), context);
    expect(rendered.status).toBe(500);
    expect(rendered.body).not.toContain('secret internal detail');
    expect(parser.parse(rendered.body).Error.Code).toBe('InternalError');
  });

  test('the catalogue is consistent: statuses are HTTP errors and faults match the status class', () => {
    for (const [code, spec] of Object.entries(ERROR_CATALOGUE)) {
      expect(isErrorCode(code)).toBe(true);
      expect(spec.status).toBeGreaterThanOrEqual(400);
      if (spec.status >= 500) expect(spec.fault).toBe('server');
    }
    expect(ERROR_CATALOGUE.AssumeRoleFailed.status).toBe(409);
    expect(ERROR_CATALOGUE.KMSFailed.status).toBe(409);
    expect(ERROR_CATALOGUE.MissingContentLength.status).toBe(411);
    expect(isErrorCode('toString')).toBe(false);
  });
});
