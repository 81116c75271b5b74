/**
 * The pure parts of a server-side copy's source (src/s3/copy-source.ts): `x-amz-copy-source` parsing,
 * UploadPartCopy's `x-amz-copy-source-range`, and the `x-amz-copy-source-if-*` conditions with S3's
 * semantics (every failing condition is 412, including the ones a GET would answer 304).
 */
import { GatewayError } from '../../src/errors/gateway-error';
import { checkCopySourceConditions, copySourceRange, parseCopySource } from '../../src/s3/copy-source';

const codeOf = (action: () => unknown): string => {
  try {
    action();
    return 'OK';
  } catch (error) {
    return (error as GatewayError).code;
  }
};

describe('x-amz-copy-source', () => {
  test.each([
    ['demo-1250000000/a/b', { coffer: 'demo-1250000000', key: 'a/b' }],
    ['/demo-1250000000/a%20b', { coffer: 'demo-1250000000', key: 'a b' }],
  ])('%s', (raw, expected) => {
    expect(parseCopySource(raw)).toEqual(expected);
  });

  test.each([
    ['demo-1250000000/a?versionId=1', 'NotImplemented'],
    ['demo-1250000000', 'InvalidArgument'],
    ['demo-1250000000/', 'InvalidArgument'],
    ['backups/a', 'NoSuchBucket'],
  ])('%s → %s', (raw, code) => {
    expect(codeOf(() => parseCopySource(raw))).toBe(code);
  });
});

describe('x-amz-copy-source-range (end exclusive)', () => {
  test('absent: the whole source, also an empty one', () => {
    expect(copySourceRange(undefined, 10)).toEqual({ start: 0, end: 10 });
    expect(copySourceRange(undefined, 0)).toEqual({ start: 0, end: 0 });
  });

  test('both offsets, inclusive, inside the source', () => {
    expect(copySourceRange('bytes=0-9', 10)).toEqual({ start: 0, end: 10 });
    expect(copySourceRange('bytes=3-3', 10)).toEqual({ start: 3, end: 4 });
  });

  test.each(['bytes=0-10', 'bytes=10-10', 'bytes=5-', 'bytes=-5', 'bytes=4-3', 'bytes=0-1,3-4', 'items=0-1', 'bytes=01-2', 'bytes=0-99999999999999999'])('%s of a 10-byte source → InvalidArgument', (value) => {
    expect(codeOf(() => copySourceRange(value, 10))).toBe('InvalidArgument');
  });

  test('any range of an empty source is refused', () => {
    expect(codeOf(() => copySourceRange('bytes=0-0', 0))).toBe('InvalidArgument');
  });
});

describe('x-amz-copy-source-if-*', () => {
  const head = { etag: '"0123456789abcdef0123456789abcdef"', lastModified: new Date('2026-12-01T12:00:00Z') };
  const before = 'Sun, 30 Nov 2026 12:00:00 GMT';
  const after = 'Wed, 02 Dec 2026 12:00:00 GMT';
  const check = (headers: Record<string, string>): string => codeOf(() => checkCopySourceConditions(new Map(Object.entries(headers).map(([name, value]) => [name, [value]])), head));

  test.each([
    [{}, 'OK'],
    [{ 'x-amz-copy-source-if-match': head.etag }, 'OK'],
    [{ 'x-amz-copy-source-if-match': '"ffffffffffffffffffffffffffffffff"' }, 'PreconditionFailed'],
    [{ 'x-amz-copy-source-if-none-match': head.etag }, 'PreconditionFailed'],
    [{ 'x-amz-copy-source-if-none-match': '"ffffffffffffffffffffffffffffffff"' }, 'OK'],
    [{ 'x-amz-copy-source-if-modified-since': after }, 'PreconditionFailed'],
    [{ 'x-amz-copy-source-if-modified-since': before }, 'OK'],
    [{ 'x-amz-copy-source-if-unmodified-since': before }, 'PreconditionFailed'],
    [{ 'x-amz-copy-source-if-unmodified-since': after }, 'OK'],
    // S3's documented pairs: if-match true + if-unmodified-since false → copy; if-none-match false + if-modified-since true → 412.
    [{ 'x-amz-copy-source-if-match': head.etag, 'x-amz-copy-source-if-unmodified-since': before }, 'OK'],
    [{ 'x-amz-copy-source-if-none-match': head.etag, 'x-amz-copy-source-if-modified-since': before }, 'PreconditionFailed'],
    // A date that is not an HTTP-date is ignored, as for GET.
    [{ 'x-amz-copy-source-if-unmodified-since': 'yesterday' }, 'OK'],
  ])('%j → %s', (headers, expected) => {
    expect(check(headers)).toBe(expected);
  });
});
