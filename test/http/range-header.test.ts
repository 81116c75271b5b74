import { decideRange } from '../../src/http/range-header';

test.each([
  [undefined, 100, { kind: 'whole' }],
  ['bytes=0-9', 100, { kind: 'partial', start: 0, end: 9 }],
  ['bytes=90-', 100, { kind: 'partial', start: 90, end: 99 }],
  ['bytes=90-1000', 100, { kind: 'partial', start: 90, end: 99 }],
  ['bytes=-10', 100, { kind: 'partial', start: 90, end: 99 }],
  ['bytes=-1000', 100, { kind: 'partial', start: 0, end: 99 }],
  ['bytes=100-', 100, { kind: 'unsatisfiable' }],
  ['bytes=-0', 100, { kind: 'unsatisfiable' }],
  ['bytes=0-', 0, { kind: 'unsatisfiable' }],
  ['bytes=5-3', 100, { kind: 'whole' }],
  ['bytes=0-1,5-6', 100, { kind: 'whole' }],
  ['items=0-1', 100, { kind: 'whole' }],
  ['bytes=-', 100, { kind: 'whole' }],
])('Range %p over %i bytes → %p', (header, size, expected) => {
  expect(decideRange(header, size)).toEqual(expected);
});
