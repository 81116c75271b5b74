import { GatewayError } from '../../src/errors/gateway-error';
import { parseRequestTarget } from '../../src/cdcs/request-target';
import { OPERATION_ACTIONS, actionOf, route, type Operation } from '../../src/cdcs/route';

const C = 'demo-1250000000';
const ID = '0123456789abcdef0123456789abcdef';

const routeOf = (method: string, raw: string): Operation => route(method, parseRequestTarget(raw, { acceptAbsoluteForm: true }));

function codeOf(method: string, raw: string): string {
  try {
    routeOf(method, raw);
  } catch (error) {
    if (error instanceof GatewayError) return `${error.status} ${error.code}`;
    throw error;
  }
  return 'no error';
}

describe('route: every operation', () => {
  test.each<[string, string, Operation]>([
    ['GET', '/', { name: 'GetService' }],
    ['GET', `/${C}`, { name: 'GetCoffer' }],
    ['GET', `/${C}/`, { name: 'GetCoffer' }],
    ['GET', `/${C}?prefix=a&max-keys=10`, { name: 'GetCoffer' }],
    ['GET', `/${C}?uploads`, { name: 'ListMultipartUploads' }],
    ['GET', `/${C}/?uploads&prefix=x`, { name: 'ListMultipartUploads' }],
    ['POST', `/${C}/k?uploads`, { name: 'InitiateMultipartUpload' }],
    ['POST', `/${C}/k?uploads=`, { name: 'InitiateMultipartUpload' }],
    ['PUT', `/${C}/k?partNumber=1&uploadId=${ID}`, { name: 'UploadPart', partNumber: 1, uploadId: ID }],
    ['PUT', `/${C}/k?uploadId=${ID}&partNumber=10000`, { name: 'UploadPart', partNumber: 10000, uploadId: ID }],
    ['GET', `/${C}/k?uploadId=${ID}`, { name: 'ListParts', uploadId: ID }],
    ['GET', `/${C}/k?uploadId=${ID}&max-parts=2&part-number-marker=1`, { name: 'ListParts', uploadId: ID }],
    ['POST', `/${C}/k?uploadId=${ID}`, { name: 'CompleteMultipartUpload', uploadId: ID }],
    ['DELETE', `/${C}/k?uploadId=${ID}`, { name: 'AbortMultipartUpload', uploadId: ID }],
    ['PUT', `/${C}/k`, { name: 'PutObject' }],
    ['PUT', `/${C}/dir/`, { name: 'PutObject' }],
    ['GET', `/${C}/k`, { name: 'GetObject' }],
    ['GET', `/${C}/k?response-content-type=text%2Fplain`, { name: 'GetObject' }],
    ['HEAD', `/${C}/k`, { name: 'HeadObject' }],
    ['PUT', `/${C}?lifecycle`, { name: 'PutCofferLifecycle' }],
    ['GET', `/${C}/?lifecycle`, { name: 'GetCofferLifecycle' }],
    ['PUT', `/${C}?policy`, { name: 'PutCofferPolicy' }],
    ['GET', `/${C}?policy`, { name: 'GetCofferPolicy' }],
    ['DELETE', `/${C}?policy`, { name: 'DeleteCofferPolicy' }],
    // the proxy form routes exactly like the origin form
    ['PUT', `http://cdcs.ap-guangzhou.myqcloud.com/${C}/k?partNumber=7&uploadId=${ID}`, { name: 'UploadPart', partNumber: 7, uploadId: ID }],
  ])('%s %s', (method, raw, expected) => {
    expect(routeOf(method, raw)).toEqual(expected);
  });
});

describe('route: partNumber', () => {
  test.each([
    ['1', 1],
    ['9', 9],
    ['10', 10],
    ['9999', 9999],
    ['10000', 10000],
  ])('partNumber=%s → %d', (raw, n) => {
    expect(routeOf('PUT', `/${C}/k?partNumber=${raw}&uploadId=${ID}`)).toEqual({ name: 'UploadPart', partNumber: n, uploadId: ID });
  });

  test.each([
    ['0'],
    ['10001'],
    ['99999'],
    ['100000'],
    ['01'],
    ['001'],
    ['1.0'],
    ['1.'],
    ['+1'],
    ['%2B1'],
    ['-1'],
    ['1e3'],
    ['0x10'],
    [''],
    ['%201'],
    ['1%20'],
    ['one'],
    ['١'], // Arabic-Indic digit one, percent-encoded below
    ['9007199254740993'],
  ])('partNumber=%j → 400 InvalidArgument', (raw) => {
    const encoded = raw === '١' ? encodeURIComponent(raw) : raw;
    expect(codeOf('PUT', `/${C}/k?partNumber=${encoded}&uploadId=${ID}`)).toBe('400 InvalidArgument');
  });

  test('bare, missing or repeated partNumber → 400 InvalidArgument with a clear message', () => {
    expect(codeOf('PUT', `/${C}/k?partNumber&uploadId=${ID}`)).toBe('400 InvalidArgument');
    expect(() => routeOf('PUT', `/${C}/k?uploadId=${ID}`)).toThrow(/partNumber is required/);
    expect(() => routeOf('PUT', `/${C}/k?partNumber=1&partNumber=2&uploadId=${ID}`)).toThrow(/appears more than once/);
    expect(() => routeOf('PUT', `/${C}/k?partNumber=01&uploadId=${ID}`)).toThrow(/1 to 10000/);
  });

  test('partNumber errors win over upload-id errors (argument first)', () => {
    expect(codeOf('PUT', `/${C}/k?partNumber=0&uploadId=nope`)).toBe('400 InvalidArgument');
  });
});

describe('route: uploadId', () => {
  test.each([['nope'], [ID.toUpperCase()], [ID.slice(1)], [`${ID}0`], [`${ID.slice(0, 31)}g`], [''], [`${ID}%00`]])('uploadId=%j → 404 NoSuchUpload for every multipart operation', (id) => {
    expect(codeOf('PUT', `/${C}/k?partNumber=1&uploadId=${id}`)).toBe('404 NoSuchUpload');
    expect(codeOf('GET', `/${C}/k?uploadId=${id}`)).toBe('404 NoSuchUpload');
    expect(codeOf('POST', `/${C}/k?uploadId=${id}`)).toBe('404 NoSuchUpload');
    expect(codeOf('DELETE', `/${C}/k?uploadId=${id}`)).toBe('404 NoSuchUpload');
  });

  test('a bare uploadId is unknown too', () => {
    expect(codeOf('GET', `/${C}/k?uploadId`)).toBe('404 NoSuchUpload');
  });

  test('partNumber without uploadId → 400 InvalidArgument', () => {
    expect(codeOf('PUT', `/${C}/k?partNumber=1`)).toBe('400 InvalidArgument');
  });

  test('repeated uploadId → 400 (the signature, the router and the handler could pick different ones)', () => {
    expect(codeOf('PUT', `/${C}/k?partNumber=1&uploadId=${ID}&uploadId=${'f'.repeat(32)}`)).toBe('400 InvalidArgument');
    expect(codeOf('DELETE', `/${C}/k?uploadId=${ID}&uploadId=${ID}`)).toBe('400 InvalidArgument');
  });

  test('uploads together with uploadId is ambiguous → 400', () => {
    expect(codeOf('POST', `/${C}/k?uploads&uploadId=${ID}`)).toBe('400 InvalidArgument');
  });
});

describe('route: methods that are not allowed', () => {
  test.each([
    ['DELETE', `/${C}/k`],
    ['DELETE', '/'],
    ['PUT', '/'],
    ['HEAD', '/'],
    ['POST', `/${C}`],
    ['HEAD', `/${C}`],
    ['POST', `/${C}/k`],
    ['PATCH', `/${C}/k`],
    ['OPTIONS', `/${C}/k`],
    ['PROPFIND', `/${C}/k`],
  ])('%s %s → 405', (method, raw) => {
    expect(codeOf(method, raw)).toBe('405 MethodNotAllowed');
  });

  test('DELETE of an object says why', () => {
    expect(() => routeOf('DELETE', `/${C}/k`)).toThrow(/no DeleteObject/);
  });
});

describe('actions', () => {
  test.each<[Operation['name'], string]>([
    ['GetService', 'list'],
    ['GetCoffer', 'list'],
    ['ListMultipartUploads', 'list'],
    ['ListParts', 'list'],
    ['InitiateMultipartUpload', 'write'],
    ['UploadPart', 'write'],
    ['CompleteMultipartUpload', 'write'],
    ['AbortMultipartUpload', 'write'],
    ['PutObject', 'write'],
    ['GetObject', 'read'],
    ['HeadObject', 'read'],
  ])('%s needs %s', (name, action) => {
    expect(OPERATION_ACTIONS[name]).toBe(action);
  });

  test('actionOf', () => {
    expect(actionOf(routeOf('HEAD', `/${C}/k`))).toBe('read');
  });
});

describe('route: coffer lifecycle', () => {
  test.each([
    ['DELETE', `/${C}?lifecycle`, '405 MethodNotAllowed'],
    ['POST', `/${C}?lifecycle`, '405 MethodNotAllowed'],
    ['PUT', `/${C}?lifecycle&lifecycle`, '400 InvalidArgument'],
    // On an object the router sees a PutObject; the parameter check then refuses `lifecycle` (query-parameters.test.ts).
    ['PUT', `/${C}/k?lifecycle`, 'no error'],
  ])('%s %s → %s', (method, raw, expected) => {
    expect(codeOf(method, raw)).toBe(expected);
  });

  test('configuring expiry needs `manage`, not `write` (expiry is the one way data leaves a write-once coffer)', () => {
    expect(actionOf({ name: 'PutCofferLifecycle' })).toBe('manage');
    expect(actionOf({ name: 'GetCofferLifecycle' })).toBe('manage');
  });
});

describe('route: PUT Coffer / DELETE Coffer', () => {
  test('PUT and DELETE on a coffer (no sub-resource) create and delete it; both need `manage`', () => {
    expect(routeOf('PUT', `/${C}`)).toEqual({ name: 'PutCoffer' });
    expect(routeOf('DELETE', `/${C}`)).toEqual({ name: 'DeleteCoffer' });
    expect(actionOf({ name: 'PutCoffer' })).toBe('manage');
    expect(actionOf({ name: 'DeleteCoffer' })).toBe('manage');
  });
});

describe('route: coffer policy', () => {
  test.each([
    ['POST', `/${C}?policy`, '405 MethodNotAllowed'],
    ['GET', `/${C}?policy&policy`, '400 InvalidArgument'],
  ])('%s %s → %s', (method, raw, expected) => {
    expect(codeOf(method, raw)).toBe(expected);
  });

  test('changing or reading who may use a coffer needs `manage`', () => {
    for (const name of ['PutCofferPolicy', 'GetCofferPolicy', 'DeleteCofferPolicy'] as const) expect(actionOf({ name })).toBe('manage');
  });
});
