/**
 * A data key as a material object: dispose zeroes the very bytes the key provider handed over, every
 * use afterwards is refused (never a silent zero key), and the key never serialises.
 */
import { randomBytes } from 'node:crypto';
import { inspect } from 'node:util';
import { DataKeyMaterial } from '../../src/keys/data-key-material';

test('dispose zeroes the owned bytes and later use throws; a second dispose is harmless', () => {
  const bytes = randomBytes(32);
  const copy = Buffer.from(bytes);
  const material = new DataKeyMaterial(bytes);
  expect(material.bytes.equals(copy)).toBe(true);
  expect(material.disposed).toBe(false);
  material.dispose();
  expect(bytes.equals(Buffer.alloc(32))).toBe(true);
  expect(material.disposed).toBe(true);
  expect(() => material.bytes).toThrow(expect.objectContaining({ code: 'InternalError' }));
  expect(() => material.dispose()).not.toThrow();
});

test('never serialised: JSON and inspect show no key bytes', () => {
  const bytes = randomBytes(32);
  const material = new DataKeyMaterial(bytes);
  const shown = [JSON.stringify({ dataKey: material }), inspect(material), inspect({ nested: material }, { depth: 5 })].join('\n');
  for (const form of [bytes.toString('hex'), bytes.toString('base64')]) expect(shown).not.toContain(form);
  expect(JSON.stringify({ dataKey: material })).toBe('{"dataKey":"[data key]"}');
});
