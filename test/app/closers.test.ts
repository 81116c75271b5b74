/**
 * The one list of closers: newest first (the reverse of opening), every step run even when one fails,
 * the first failure reported once all ran, and a second close the same run (never twice).
 */
import { Closers } from '../../src/app/closers';

test('steps run newest first, each awaited; a failing step does not stop the rest; the first failure is reported', async () => {
  const ran: string[] = [];
  const closers = new Closers();
  closers.add(() => ran.push('keyring'));
  closers.add(async () => {
    await new Promise((resolve) => setImmediate(resolve));
    ran.push('upstream');
    throw new Error('upstream close failed');
  });
  closers.add(() => {
    ran.push('checks');
    throw new Error('second failure');
  });
  closers.add(async () => {
    await new Promise((resolve) => setImmediate(resolve));
    ran.push('listener');
  });
  await expect(closers.closeAll()).rejects.toThrow('second failure');
  expect(ran).toEqual(['listener', 'checks', 'upstream', 'keyring']);
});

test('closing twice runs every step once and gives the same outcome', async () => {
  let runs = 0;
  const closers = new Closers();
  closers.add(() => (runs += 1));
  const first = closers.closeAll();
  const second = closers.closeAll();
  await Promise.all([first, second]);
  expect(second).toBe(first);
  expect(runs).toBe(1);
});
