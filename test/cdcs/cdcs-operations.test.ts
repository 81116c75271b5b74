/**
 * The CDCS operations table as data: one entry per routed operation, each with the action the
 * configuration's grants speak of, and a body accepted only by the three operations that have one —
 * object data for PutObject and UploadPart (counted as plaintext bytes in), the XML part list for
 * Complete; GetObject's answer is the only object data out.
 */
import { createCdcsOperations } from '../../src/cdcs/cdcs-operations';
import { OPERATION_ACTIONS } from '../../src/cdcs/route';
import { MultipartService } from '../../src/store/multipart-service';
import { ObjectService } from '../../src/store/object-service';

const table = createCdcsOperations({ coffers: { list: () => [] }, service: new MultipartService(), objects: new ObjectService() });
const entries = Object.entries(table);

test('one entry per routed operation, with the action of OPERATION_ACTIONS', () => {
  expect(Object.keys(table).sort()).toEqual(Object.keys(OPERATION_ACTIONS).sort());
  for (const [name, entry] of entries) expect([name, entry.action]).toEqual([name, OPERATION_ACTIONS[name as keyof typeof OPERATION_ACTIONS]]);
});

test('only PutObject, UploadPart and Complete accept a body; only GetService is service-scoped', () => {
  expect(entries.filter(([, entry]) => entry.body !== undefined).map(([name]) => name).sort()).toEqual(['CompleteMultipartUpload', 'PutObject', 'UploadPart']);
  expect(entries.filter(([, entry]) => entry.body?.objectData === true).map(([name]) => name).sort()).toEqual(['PutObject', 'UploadPart']);
  expect(entries.filter(([, entry]) => entry.objectDataOut === true).map(([name]) => name).sort()).toEqual(['GetObject', 'HeadObject']);
  expect(entries.filter(([, entry]) => entry.scope === 'service').map(([name]) => name)).toEqual(['GetService']);
});
