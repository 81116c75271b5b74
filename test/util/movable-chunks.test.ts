import { PassThrough, Readable } from 'node:stream';
import { chunksAreMovable, markChunksMovable } from '../../src/util/movable-chunks';

test('only a marked stream is movable; a stream derived from it (piped on) is not', () => {
  const marked = markChunksMovable(Readable.from([]));
  expect(chunksAreMovable(marked)).toBe(true);
  expect(chunksAreMovable(Readable.from([]))).toBe(false);
  expect(chunksAreMovable(marked.pipe(new PassThrough()))).toBe(false);
});
