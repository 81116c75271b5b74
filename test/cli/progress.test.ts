/** The progress bar: drawn only on a terminal, throttled, cleared before other output. */
import { Writable } from 'node:stream';
import { createProgress, formatBytes } from '../../src/cli/progress';

class FakeTerminal extends Writable {
  text = '';
  constructor(
    readonly isTTY: boolean,
    readonly columns = 100,
  ) {
    super();
  }
  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: () => void): void {
    this.text += chunk.toString();
    callback();
  }
}

test('on a terminal: a bar with percentage, amounts and rate, redrawn at most every interval, cleared at the end', () => {
  let now = 0;
  const terminal = new FakeTerminal(true);
  const progress = createProgress(terminal, { label: 'decrypt', total: 4 * 1024 * 1024, unit: 'bytes', now: () => now, intervalMs: 100 });
  now = 1000;
  progress.advance(1024 * 1024);
  progress.advance(1024 * 1024); // within the interval: not drawn
  now = 2000;
  progress.advance(2 * 1024 * 1024);
  progress.done();
  const frames = terminal.text.split('\r\x1b[K').filter((f) => f !== '');
  expect(frames).toHaveLength(2);
  expect(frames[0]).toMatch(/^decrypt \[#+\.+\] {2}25% 1\.00 MiB\/4\.00 MiB 1\.00 MiB\/s$/);
  expect(frames[1]).toMatch(/^decrypt \[#+\] 100% 4\.00 MiB\/4\.00 MiB 2\.00 MiB\/s$/);
  expect(terminal.text.endsWith('\r\x1b[K')).toBe(true);
});

test('an unknown total draws a counter; objects are counted, not sized', () => {
  let now = 0;
  const terminal = new FakeTerminal(true);
  const progress = createProgress(terminal, { label: 'rewrap', unit: 'objects', now: () => now });
  now = 2000;
  progress.advance(5);
  expect(terminal.text).toBe('\r\x1b[Krewrap 5 2.5/s');
});

test('not a terminal (a pipe, a log file): nothing at all', () => {
  const pipe = new FakeTerminal(false);
  const progress = createProgress(pipe, { label: 'decrypt', total: 10, unit: 'bytes' });
  progress.advance(10);
  progress.done();
  expect(pipe.text).toBe('');
});

test('formatBytes', () => {
  expect([0, 1023, 1024, 1536 * 1024, 5 * 1024 ** 3].map(formatBytes)).toEqual(['0 B', '1023 B', '1.00 KiB', '1.50 MiB', '5.00 GiB']);
});
