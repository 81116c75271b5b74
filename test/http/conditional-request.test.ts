import { evaluatePreconditions, parseEntityTags, rangeApplies } from '../../src/http/conditional-request';

const object = { etag: '"0123abcd-3"', lastModified: new Date('2026-11-24T10:00:00.000Z') };
const at = (iso: string): string => new Date(iso).toUTCString();
const BEFORE = at('2026-11-24T09:59:59Z');
const SAME = at('2026-11-24T10:00:00Z');
const AFTER = at('2026-11-24T10:00:01Z');

test('entity-tag lists: *, quoted, weak, bare', () => {
  expect(parseEntityTags('*')).toBe('*');
  expect(parseEntityTags('"a", W/"b",c')).toEqual([
    { tag: 'a', weak: false },
    { tag: 'b', weak: true },
    { tag: 'c', weak: false },
  ]);
});

test.each([
  // [headers, outcome]
  [{}, 'proceed'],
  [{ ifMatch: '"0123abcd-3"' }, 'proceed'],
  [{ ifMatch: '0123abcd-3' }, 'proceed'],
  [{ ifMatch: '"other", "0123abcd-3"' }, 'proceed'],
  [{ ifMatch: '*' }, 'proceed'],
  [{ ifMatch: '"other"' }, 'failed'],
  [{ ifMatch: 'W/"0123abcd-3"' }, 'failed'], // If-Match uses the strong comparison
  [{ ifUnmodifiedSince: SAME }, 'proceed'],
  [{ ifUnmodifiedSince: BEFORE }, 'failed'],
  [{ ifUnmodifiedSince: 'not a date' }, 'proceed'],
  [{ ifMatch: '"0123abcd-3"', ifUnmodifiedSince: BEFORE }, 'proceed'], // If-Match present: IUS ignored
  [{ ifNoneMatch: '"0123abcd-3"' }, 'not-modified'],
  [{ ifNoneMatch: 'W/"0123abcd-3"' }, 'not-modified'], // weak comparison
  [{ ifNoneMatch: '*' }, 'not-modified'],
  [{ ifNoneMatch: '"other"' }, 'proceed'],
  [{ ifModifiedSince: SAME }, 'not-modified'],
  [{ ifModifiedSince: AFTER }, 'not-modified'],
  [{ ifModifiedSince: BEFORE }, 'proceed'],
  [{ ifNoneMatch: '"other"', ifModifiedSince: AFTER }, 'proceed'], // RFC 9110: INM present → IMS ignored
  [{ ifMatch: '"other"', ifNoneMatch: '"0123abcd-3"' }, 'failed'], // If-Match is evaluated first
] as const)('%j → %s', (headers, outcome) => {
  expect(evaluatePreconditions(headers, object)).toBe(outcome);
});

test.each([
  [undefined, true],
  ['"0123abcd-3"', true],
  ['W/"0123abcd-3"', false],
  ['"other"', false],
  [SAME, true],
  [AFTER, false],
  ['garbage', false],
] as const)('If-Range %s → range applies: %s', (ifRange, applies) => {
  expect(rangeApplies(ifRange === undefined ? {} : { ifRange }, object)).toBe(applies);
});
