/**
 * The one header shape: every value kept in order (duplicates visible to the stages that must refuse
 * them), and one combined value per field where a stage needs a single string — the first for
 * single-valued fields, the RFC 9110 §5.3 list join for the rest, so a repeated Content-MD5 or Range
 * is judged whole and never as one of its parts.
 */
import { headerValue, readHeaders } from '../../src/server/request-headers';

const headers = readHeaders(['Content-Type', 'text/plain', 'content-type', 'image/png', 'Content-MD5', 'AAAA', 'content-md5', 'BBBB', 'X-Cos-Meta-A', '1', 'x-cos-meta-a', '2', '__proto__', 'p', 'Range', 'bytes=0-1']);

test('every value of every field, lower-cased names, in order; __proto__ is an ordinary field', () => {
  expect(headers.get('content-type')).toEqual(['text/plain', 'image/png']);
  expect(headers.get('x-cos-meta-a')).toEqual(['1', '2']);
  expect(headers.get('__proto__')).toEqual(['p']);
  expect(headers.get('absent')).toBeUndefined();
});

test('headerValue: the first of a single-valued field, the joined list otherwise, undefined when absent', () => {
  expect(headerValue(headers, 'content-type')).toBe('text/plain');
  expect(headerValue(headers, 'content-md5')).toBe('AAAA, BBBB');
  expect(headerValue(headers, 'x-cos-meta-a')).toBe('1, 2');
  expect(headerValue(headers, 'range')).toBe('bytes=0-1');
  expect(headerValue(headers, 'if-match')).toBeUndefined();
});
