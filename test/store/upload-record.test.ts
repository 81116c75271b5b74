import { randomBytes } from 'node:crypto';
import { IntegrityError } from '../../src/format/integrity-error';
import { decodeUploadRecord, encodeUploadRecord, uploadRecordEnvelope, type UploadRecord } from '../../src/store/upload-record';

const uploadId = randomBytes(16).toString('hex');
const dataKey = randomBytes(32);
const record: UploadRecord = {
  uploadId,
  coffer: 'demo-1250000000',
  key: 'a/b',
  upstreamUploadId: 'upstream-1',
  envelope: { provider: 'local', keyId: 'v1', wrappedKey: randomBytes(73), context: { coffer: 'demo-1250000000', key: 'a/b' } },
  contentType: 'image/png',
  metadata: { owner: 'alice' },
  initiated: '2026-12-04T00:00:00.000Z',
};
const place = { coffer: record.coffer, key: record.key, uploadId };

describe('upload records, format 2 (FORMAT.md §8.1)', () => {
  test('round trip; only the envelope is readable without the data key', () => {
    const bytes = encodeUploadRecord(record, dataKey);
    expect(decodeUploadRecord(bytes, place, dataKey)).toEqual(record);
    expect(uploadRecordEnvelope(bytes)).toEqual(record.envelope);
    const text = bytes.toString('utf8');
    for (const secret of ['image/png', 'alice', 'owner', 'upstream-1', '2026-12-04']) expect(text).not.toContain(secret);
  });

  test('an S3 upload declaring a checksum keeps its algorithm and type sealed; one without has none', () => {
    const declared: UploadRecord = { ...record, checksum: { algorithm: 'CRC32C', type: 'COMPOSITE' } };
    const bytes = encodeUploadRecord(declared, dataKey);
    expect(decodeUploadRecord(bytes, place, dataKey)).toEqual(declared);
    expect(bytes.toString('utf8')).not.toContain('CRC32C');
    expect(decodeUploadRecord(encodeUploadRecord(record, dataKey), place, dataKey).checksum).toBeUndefined();
    const unknown = encodeUploadRecord({ ...record, checksum: { algorithm: 'MD5', type: 'COMPOSITE' } } as unknown as UploadRecord, dataKey);
    expect(() => decodeUploadRecord(unknown, place, dataKey)).toThrow(expect.objectContaining({ reason: 'upload-record-rejected' }));
  });

  test('bound to its coffer, key and upload id, and to the data key', () => {
    const bytes = encodeUploadRecord(record, dataKey);
    for (const other of [
      { ...place, coffer: 'other-1250000000' },
      { ...place, key: 'a/c' },
      { ...place, uploadId: randomBytes(16).toString('hex') },
    ]) {
      expect(() => decodeUploadRecord(bytes, other, dataKey)).toThrow(expect.objectContaining({ reason: 'upload-record-rejected' }));
    }
    expect(() => decodeUploadRecord(bytes, place, randomBytes(32))).toThrow(IntegrityError);
  });

  test('refuses format 1 records, non-JSON and missing fields', () => {
    const v1 = Buffer.from(
      JSON.stringify({
        v: 1,
        uploadId,
        coffer: record.coffer,
        key: record.key,
        upstreamUploadId: 'x',
        envelope: { ...record.envelope, wrappedKey: record.envelope.wrappedKey.toString('base64') },
        contentType: 'text/html',
        metadata: {},
        initiated: 'now',
      }),
    );
    for (const bytes of [v1, Buffer.from('not json'), Buffer.from('{"v":2}'), Buffer.from('null')]) expect(() => decodeUploadRecord(bytes, place, dataKey)).toThrow(IntegrityError);
  });
});
