import { randomBytes } from 'node:crypto';
import { IntegrityError } from '../../src/format/integrity-error';
import { bindingOf, deriveRecordKey, openRecord, sealRecord, SEALED_OVERHEAD } from '../../src/format/sealed-record';

describe('sealed records (FORMAT.md §11)', () => {
  const root = randomBytes(32);
  const objectId = randomBytes(16);
  const key = deriveRecordKey(root, objectId, 'coffer-gateway/v2 test record');
  const aad = bindingOf('coffer-gateway/v2 test record', ['demo-1250000000', 'a/b', objectId]);

  test('round trip; nonce ‖ ciphertext ‖ tag; a fresh nonce each time', () => {
    const plaintext = Buffer.from('{"hello":"world"}');
    const a = sealRecord(key, aad, plaintext);
    const b = sealRecord(key, aad, plaintext);
    expect(a.length).toBe(plaintext.length + SEALED_OVERHEAD);
    expect(a.equals(b)).toBe(false);
    expect(openRecord(key, aad, a, 'part-record-rejected', 'r').equals(plaintext)).toBe(true);
  });

  test('every byte flipped, a truncation, another binding, another label or another root key fails with the given reason', () => {
    const sealed = sealRecord(key, aad, randomBytes(40));
    for (let at = 0; at < sealed.length; at += 1) {
      const copy = Buffer.from(sealed);
      copy[at] = (copy[at] as number) ^ 0x10;
      expect(() => openRecord(key, aad, copy, 'upload-record-rejected', 'r')).toThrow(expect.objectContaining({ reason: 'upload-record-rejected' }));
    }
    expect(() => openRecord(key, aad, sealed.subarray(0, 27), 'part-record-rejected', 'r')).toThrow(IntegrityError);
    expect(() => openRecord(key, bindingOf('coffer-gateway/v2 test record', ['demo-1250000000', 'a/c', objectId]), sealed, 'part-record-rejected', 'r')).toThrow(IntegrityError);
    expect(() => openRecord(deriveRecordKey(root, objectId, 'coffer-gateway/v2 other record'), aad, sealed, 'part-record-rejected', 'r')).toThrow(IntegrityError);
    expect(() => openRecord(deriveRecordKey(randomBytes(32), objectId, 'coffer-gateway/v2 test record'), aad, sealed, 'part-record-rejected', 'r')).toThrow(IntegrityError);
    expect(() => openRecord(deriveRecordKey(root, randomBytes(16), 'coffer-gateway/v2 test record'), aad, sealed, 'part-record-rejected', 'r')).toThrow(IntegrityError);
  });

  test('bindings are length-prefixed: ("ab","c") and ("a","bc") differ', () => {
    expect(bindingOf('L', ['ab', 'c']).equals(bindingOf('L', ['a', 'bc']))).toBe(false);
    expect(bindingOf('L', ['a', Buffer.from([1, 2])]).toString('hex')).toBe(`${Buffer.from('L').toString('hex')}000161` + '00020102');
  });
});
