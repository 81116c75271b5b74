import { buildHttpString, buildStringToSign, canonicalNameList, canonicalPairs, computeSignature, cosUrlEncode, deriveSignKey, formatKeyTime, sha1Hex, signCosRequest, type SignedPair } from '../../src/auth/cos-signature';

// Test vectors from the COS signature document, as quoted in shared/reference/cdcs-api.md.
const SECRET_ID = 'AKIDQjz3ltompVjBni5LitkWHFlFpwkn9U5q';
const SECRET_KEY = 'BQYIM75p8x0iWVFSIgqEKwFprpRSVHlz';
const HOST = 'examplebucket-1250000000.cos.ap-beijing.myqcloud.com';
const PATH = '/exampleobject(腾讯云)';

describe('COS signature test vectors', () => {
  test('vector 1: PUT with seven signed headers', () => {
    const keyTime = '1557989151;1557996351';
    const headers: SignedPair[] = [
      ['Content-Length', '13'],
      ['Content-MD5', 'mQ/fVh815F3k6TAUm8m0eg=='],
      ['Content-Type', 'text/plain'],
      ['Date', 'Thu, 16 May 2019 06:45:51 GMT'],
      ['Host', HOST],
      ['x-cos-acl', 'private'],
      ['x-cos-grant-read', 'uin="100000000011"'],
    ];
    const httpString = buildHttpString({ method: 'PUT', pathname: PATH, params: [], headers });
    const signKey = deriveSignKey(SECRET_KEY, keyTime);
    expect(signKey).toBe('eb2519b498b02ac213cb1f3d1a3d27a3b3c9bc5f');
    expect(sha1Hex(httpString)).toBe('8b2751e77f43a0995d6e9eb9477f4b685cca4172');
    expect(computeSignature(signKey, buildStringToSign(keyTime, httpString))).toBe('3b8851a11a569213c17ba8fa7dcf2abec6935172');

    const signed = signCosRequest({ secretId: SECRET_ID, secretKey: SECRET_KEY, keyTime, method: 'PUT', pathname: PATH, params: [], headers });
    expect(signed.signature).toBe('3b8851a11a569213c17ba8fa7dcf2abec6935172');
    expect(signed.authorization).toBe(
      `q-sign-algorithm=sha1&q-ak=${SECRET_ID}&q-sign-time=${keyTime}&q-key-time=${keyTime}` +
        '&q-header-list=content-length;content-md5;content-type;date;host;x-cos-acl;x-cos-grant-read' +
        '&q-url-param-list=&q-signature=3b8851a11a569213c17ba8fa7dcf2abec6935172',
    );
  });

  const getParams: SignedPair[] = [
    // decoded once from ?response-content-type=application%2Foctet-stream&response-cache-control=max-age%3D600
    ['response-content-type', 'application/octet-stream'],
    ['response-cache-control', 'max-age=600'],
  ];
  const getKeyTime = '1557989753;1557996953';

  test('vector 2: GET with params, signed headers date;host', () => {
    const headers: SignedPair[] = [
      ['Date', 'Thu, 16 May 2019 06:55:53 GMT'],
      ['Host', HOST],
    ];
    const httpString = buildHttpString({ method: 'GET', pathname: PATH, params: getParams, headers });
    expect(sha1Hex(httpString)).toBe('54ecfe22f59d3514fdc764b87a32d8133ea611e6');
    expect(computeSignature(deriveSignKey(SECRET_KEY, getKeyTime), buildStringToSign(getKeyTime, httpString))).toBe('01681b8c9d798a678e43b685a9f1bba0f6c0e012');
    const signed = signCosRequest({ secretId: SECRET_ID, secretKey: SECRET_KEY, keyTime: getKeyTime, method: 'GET', pathname: PATH, params: getParams, headers });
    expect(signed.signature).toBe('01681b8c9d798a678e43b685a9f1bba0f6c0e012');
    expect(signed.authorization).toContain('&q-url-param-list=response-cache-control;response-content-type&');
  });

  test('vector 3: the same GET signed over host only', () => {
    const signed = signCosRequest({
      secretId: SECRET_ID,
      secretKey: SECRET_KEY,
      keyTime: getKeyTime,
      method: 'get',
      pathname: PATH,
      params: getParams,
      headers: [['host', HOST]],
    });
    expect(signed.signature).toBe('cf18ded2f669fcafa4b98e02c2a3fdb2b2e55c43');
  });
});

describe('canonicalisation', () => {
  test("UrlEncode encodes ! ' ( ) * on top of encodeURIComponent, and UTF-8", () => {
    expect(cosUrlEncode("!'()*")).toBe('%21%27%28%29%2A');
    expect(cosUrlEncode('a b/c~d-e_f.g')).toBe('a%20b%2Fc~d-e_f.g');
    expect(cosUrlEncode('腾')).toBe('%E8%85%BE');
  });

  test('UrlEncode refuses lone surrogates (cannot be signed)', () => {
    expect(() => cosUrlEncode('\uD800')).toThrow(URIError);
  });

  test('names are lower-cased after encoding, values keep upper-case hex, sorted by encoded name', () => {
    expect(
      canonicalPairs([
        ['X-Cos-Meta-B', 'v/1'],
        ['A', ''],
        ['uploadId', 'ID'],
      ]),
    ).toBe('a=&uploadid=ID&x-cos-meta-b=v%2F1');
    expect(
      canonicalNameList([
        ['X-Cos-Meta-B', ''],
        ['A', ''],
        ['uploadId', ''],
      ]),
    ).toBe('a;uploadid;x-cos-meta-b');
  });

  test('valueless parameter counts as name=, and empty parts keep their newline', () => {
    expect(buildHttpString({ method: 'POST', pathname: '/c/k', params: [['uploads', '']], headers: [] })).toBe('post\n/c/k\nuploads=\n\n');
    expect(buildHttpString({ method: 'GET', pathname: '/', params: [], headers: [] })).toBe('get\n/\n\n\n');
  });

  test('formatKeyTime validates its input', () => {
    expect(formatKeyTime(1, 2)).toBe('1;2');
    expect(() => formatKeyTime(3, 2)).toThrow(RangeError);
    expect(() => formatKeyTime(1.5, 2)).toThrow(RangeError);
  });
});
