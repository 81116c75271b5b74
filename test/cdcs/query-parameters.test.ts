/**
 * The parameter half of the request identity: only exact, known, single, applicable parameter names
 * reach the router and the handler (src/cdcs/query-parameters.ts).
 */
import { isGatewayError } from '../../src/errors/gateway-error';
import { checkOperationParameters, checkQueryNames, queryParameterRules } from '../../src/cdcs/query-parameters';
import { parseRequestTarget } from '../../src/cdcs/request-target';
import { route } from '../../src/cdcs/route';

const C = 'demo-1250000000';
const UPLOAD = '0123456789abcdef0123456789abcdef';
const rules = queryParameterRules();

/** Parse, check names, route, check applicability — what the HTTP front does before authentication. */
function front(method: string, raw: string, jwtParam?: string): string {
  const r = jwtParam === undefined ? rules : queryParameterRules(jwtParam);
  try {
    const target = parseRequestTarget(raw, { acceptAbsoluteForm: false });
    checkQueryNames(target.query, r);
    const operation = route(method, target);
    checkOperationParameters(operation.name, target.query, r);
    return operation.name;
  } catch (error) {
    if (!isGatewayError(error)) throw error;
    return `${error.status} ${error.code} ${error.reason ?? ''}`.trim();
  }
}

describe('spelling: a name that differs only in case from a known one is refused, naming it', () => {
  test.each([
    ['GET', `/${C}/k?UPLOADID=${UPLOAD}`],
    ['GET', `/${C}/k?uploadid=${UPLOAD}`],
    ['PUT', `/${C}/k?PARTNUMBER=1&UPLOADID=${UPLOAD}`],
    ['PUT', `/${C}/k?partNumber=1&UploadId=${UPLOAD}`],
    ['GET', `/${C}/?PREFIX=public/`],
    ['GET', `/${C}/?Prefix=public/`],
    ['GET', `/${C}/?Max-Keys=1`],
    ['POST', `/${C}/k?Uploads`],
    ['GET', `/${C}/k?X-COS-Security-Token=t`],
    ['GET', `/${C}/k?Q-Signature=abc`],
  ])('%s %s → 400 InvalidArgument', (method, raw) => {
    expect(front(method, raw)).toBe('400 InvalidArgument parameter-case');
  });

  test('the message names the parameter as sent and as known', () => {
    const target = parseRequestTarget(`/${C}/?PREFIX=x`, { acceptAbsoluteForm: false });
    expect(() => checkQueryNames(target.query, rules)).toThrow(/"PREFIX" is not spelled "prefix"/);
  });
});

describe('repetition and unknown names', () => {
  test.each([
    ['GET', `/${C}/?prefix=a&prefix=b`],
    ['GET', `/${C}/?max-keys=1&max-keys=2`],
    ['GET', `/${C}/k?response-content-type=a&response-content-type=b`],
  ])('a known name twice: %s %s → 400', (method, raw) => {
    expect(front(method, raw)).toBe('400 InvalidArgument parameter-repeated');
  });

  test.each([
    ['GET', `/${C}/k?acl`],
    ['PUT', `/${C}/k?acl`],
    ['GET', `/${C}/k?versionId=1`],
    ['GET', `/${C}/?list-type=2`],
    ['GET', `/${C}/k?x=1`],
  ])('a name the gateway does not know: %s %s → 400 (never ignored)', (method, raw) => {
    expect(front(method, raw)).toBe('400 InvalidArgument parameter-unknown');
  });

  test.each([
    ['PUT', `/${C}/k?lifecycle`],
    ['GET', `/${C}/k?lifecycle`],
    ['GET', `/${C}/?lifecycle&prefix=a`],
  ])('lifecycle where it does not apply: %s %s → 400 (an object PUT is never taken for a lifecycle PUT, nor the reverse)', (method, raw) => {
    expect(front(method, raw)).toBe('400 InvalidArgument parameter-not-applicable');
  });

  test('a configured JWT query parameter is a credential, not an unknown name', () => {
    expect(front('GET', `/${C}/k?access_token=t`, 'access_token')).toBe('GetObject');
    expect(front('GET', `/${C}/k?ACCESS_TOKEN=t`, 'access_token')).toBe('400 InvalidArgument parameter-case');
  });
});

describe('applicability: a known parameter the routed operation does not act on is refused', () => {
  test.each([
    ['GET', `/?prefix=`],
    ['GET', `/?uploads`],
    ['GET', `/?max-keys=1`],
    ['PUT', `/${C}/k?prefix=a`],
    ['GET', `/${C}/k?prefix=a`],
    ['GET', `/${C}/k?max-parts=1`],
    ['GET', `/${C}/?uploads&marker=a`],
    ['GET', `/${C}/?uploads&encoding-type=url`],
    ['POST', `/${C}/k?uploads&prefix=a`],
    ['PUT', `/${C}/k?partNumber=1&uploadId=${UPLOAD}&max-parts=1`],
    ['DELETE', `/${C}/k?uploadId=${UPLOAD}&response-content-type=x`],
  ])('%s %s → 400', (method, raw) => {
    expect(front(method, raw)).toBe('400 InvalidArgument parameter-not-applicable');
  });

  test.each([
    ['GET', '/', 'GetService'],
    ['GET', `/${C}/?prefix=&delimiter=/&marker=a&max-keys=10&encoding-type=url`, 'GetCoffer'],
    ['GET', `/${C}/?uploads&prefix=a&key-marker=b&upload-id-marker=${UPLOAD}&max-uploads=5`, 'ListMultipartUploads'],
    ['GET', `/${C}/k?uploadId=${UPLOAD}&max-parts=5&part-number-marker=2`, 'ListParts'],
    ['GET', `/${C}/k?response-content-type=text/plain&response-content-disposition=attachment`, 'GetObject'],
    ['HEAD', `/${C}/k?response-cache-control=no-cache`, 'HeadObject'],
    ['PUT', `/${C}/k?partNumber=1&uploadId=${UPLOAD}`, 'UploadPart'],
    ['GET', `/${C}/k?q-sign-algorithm=sha1&q-ak=a&x-cos-security-token=t`, 'GetObject'],
  ])('what the SDK sends is accepted: %s %s → %s', (method, raw, operation) => {
    expect(front(method, raw)).toBe(operation);
  });
});

describe('values echoed in XML must be text XML 1.0 can carry', () => {
  test.each(['%EF%BF%BE', '%EF%BF%BF', '%C2%85', '%01'])('prefix=%s → 400', (value) => {
    expect(front('GET', `/${C}/?prefix=${value}`)).toBe('400 InvalidArgument parameter-value');
  });

  test('a leading U+FEFF in a value is kept, not dropped as a byte-order mark', () => {
    const target = parseRequestTarget(`/${C}/?prefix=%EF%BB%BFa`, { acceptAbsoluteForm: false });
    expect(target.query).toEqual([['prefix', '\ufeffa']]);
  });
});
