import { parseRequestTarget } from '../../src/server/request-target';
import { route } from '../../src/server/route';

describe('request target', () => {
  test.each([
    ['/demo-1250000000/a/b.txt', { coffer: 'demo-1250000000', key: 'a/b.txt', pathname: '/demo-1250000000/a/b.txt' }],
    ['/demo-1250000000/%E8%85%BE%E8%AE%AF%E4%BA%91%20x', { key: '腾讯云 x' }],
    ['/demo-1250000000/a%2Fb', { key: 'a/b' }],
    ['/demo-1250000000/../x/./y//z', { key: '../x/./y//z' }],
    ['/demo-1250000000/a+b', { key: 'a+b' }],
    ['/demo-1250000000', { coffer: 'demo-1250000000', key: undefined, pathname: '/demo-1250000000' }],
    ['/demo-1250000000/', { coffer: 'demo-1250000000', key: undefined }],
    ['http://cdcs.ap-guangzhou.myqcloud.com/demo-1250000000/k?uploads', { absoluteForm: true, coffer: 'demo-1250000000', key: 'k', query: [['uploads', null]] }],
    ['/demo-1250000000/k?partNumber=1&uploadId=ab&x=%2B', { query: [['partNumber', '1'], ['uploadId', 'ab'], ['x', '+']] }],
  ])('%s', (raw, expected) => {
    expect(parseRequestTarget(raw, true)).toMatchObject(expected);
  });

  test.each([
    ['/demo-1250000000/%ZZ', 'InvalidURI'],
    ['/demo-1250000000/%C3%28', 'InvalidURI'],
    ['/demo-1250000000/a%00b', 'InvalidObjectKey'],
    ['/demo-1250000000/a%0Ab', 'InvalidObjectKey'],
    [`/demo-1250000000/${'a'.repeat(851)}`, 'InvalidObjectKey'],
    ['/Bad_Coffer/k', 'NoSuchCoffer'],
    ['*', 'InvalidURI'],
  ])('%s → %s', (raw, code) => {
    expect(() => parseRequestTarget(raw, true)).toThrow(expect.objectContaining({ code }));
  });

  test('850-byte keys pass; absolute form can be turned off; the proxy host is never kept', () => {
    expect(parseRequestTarget(`/demo-1250000000/${'é'.repeat(425)}`, true).key).toHaveLength(425);
    expect(() => parseRequestTarget('http://evil.example/demo-1250000000/k', false)).toThrow(expect.objectContaining({ code: 'InvalidRequest' }));
    expect(JSON.stringify(parseRequestTarget('http://evil.example:9/demo-1250000000/k', true))).not.toContain('evil');
  });
});

describe('routing', () => {
  const id = 'c'.repeat(32);
  test.each([
    ['POST', '/demo-1250000000/k?uploads', { name: 'InitiateMultipartUpload' }],
    ['PUT', `/demo-1250000000/k?partNumber=10000&uploadId=${id}`, { name: 'UploadPart', partNumber: 10000, uploadId: id }],
    ['GET', `/demo-1250000000/k?uploadId=${id}`, { name: 'ListParts' }],
    ['POST', `/demo-1250000000/k?uploadId=${id}`, { name: 'CompleteMultipartUpload' }],
    ['DELETE', `/demo-1250000000/k?uploadId=${id}`, { name: 'AbortMultipartUpload' }],
    ['GET', '/demo-1250000000?uploads', { name: 'ListMultipartUploads' }],
    ['GET', '/demo-1250000000/k', { name: 'GetObject' }],
    ['HEAD', '/demo-1250000000/k', { name: 'HeadObject' }],
    ['PUT', '/demo-1250000000/k', { name: 'PutObject' }],
  ])('%s %s', (method, raw, expected) => {
    expect(route(method, parseRequestTarget(raw, true))).toMatchObject(expected);
  });

  test.each([
    ['PUT', '/demo-1250000000/k?partNumber=1', 'NoSuchUpload'],
    ['PUT', `/demo-1250000000/k?uploadId=${id}`, 'InvalidArgument'],
    ['PUT', '/demo-1250000000/k?partNumber=1&uploadId=not-ours', 'NoSuchUpload'],
    ['DELETE', '/demo-1250000000/k', 'MethodNotAllowed'],
    ['PATCH', '/demo-1250000000/k', 'MethodNotAllowed'],
    ['PUT', '/demo-1250000000', 'MethodNotAllowed'],
  ])('%s %s → %s', (method, raw, code) => {
    expect(() => route(method, parseRequestTarget(raw, true))).toThrow(expect.objectContaining({ code }));
  });
});
