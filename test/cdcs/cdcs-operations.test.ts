/**
 * The CDCS operations table as data: one entry per routed operation, each with the action the
 * configuration's grants speak of, and a body accepted only by the operations that have one —
 * object data for PutObject and UploadPart (counted as plaintext bytes in), the XML part list for
 * Complete, the lifecycle and policy documents; GetObject's answer is the only object data out.
 * And entries called directly (no HTTP): GetService's coffer list.
 */
import type { Principal } from '../../src/auth/principal';
import { createCdcsOperations, type CdcsOperationsDependencies } from '../../src/cdcs/cdcs-operations';
import { OPERATION_ACTIONS, type Operation } from '../../src/cdcs/route';
import { createLogger } from '../../src/observability/logger';
import type { OperationCall } from '../../src/operations/operation-table';
import { MultipartService } from '../../src/store/multipart-service';
import { ObjectService } from '../../src/store/object-service';

const table = createCdcsOperations({ coffers: { list: async () => [], isConfigured: () => false }, service: new MultipartService(), objects: new ObjectService() });
const entries = Object.entries(table);

test('one entry per routed operation, with the action of OPERATION_ACTIONS', () => {
  expect(Object.keys(table).sort()).toEqual(Object.keys(OPERATION_ACTIONS).sort());
  for (const [name, entry] of entries) expect([name, entry.action]).toEqual([name, OPERATION_ACTIONS[name as keyof typeof OPERATION_ACTIONS]]);
});

test('only PutObject, UploadPart, Complete, PUT Coffer and the lifecycle and policy PUTs accept a body; only GetService and PutCoffer (the coffer does not exist yet) are service-scoped', () => {
  expect(
    entries
      .filter(([, entry]) => entry.body !== undefined)
      .map(([name]) => name)
      .sort(),
  ).toEqual(['CompleteMultipartUpload', 'PutCoffer', 'PutCofferLifecycle', 'PutCofferPolicy', 'PutObject', 'UploadPart']);
  expect(
    entries
      .filter(([, entry]) => entry.body?.objectData === true)
      .map(([name]) => name)
      .sort(),
  ).toEqual(['PutObject', 'UploadPart']);
  expect(
    entries
      .filter(([, entry]) => entry.objectDataOut === true)
      .map(([name]) => name)
      .sort(),
  ).toEqual(['GetObject', 'HeadObject']);
  expect(
    entries
      .filter(([, entry]) => entry.scope === 'service')
      .map(([name]) => name)
      .sort(),
  ).toEqual(['GetService', 'PutCoffer']);
});

const coffers = ['granted-1250000000', 'by-policy-1250000000', 'unreadable-1250000000', 'other-1250000000'];
const caller: Principal = { method: 'cos-signature', id: 'AKIDcaller', sessionName: 'AKIDcaller', grants: [{ coffer: 'granted-1250000000', actions: ['manage'] }] };

async function listed(deps: Partial<CdcsOperationsDependencies>, principal: Principal = caller): Promise<string[]> {
  const table = createCdcsOperations({
    coffers: { list: async () => coffers.map((name) => ({ name, location: 'x', created: new Date(0), configured: true })), isConfigured: () => true },
    service: new MultipartService(),
    objects: new ObjectService(),
    ...deps,
  });
  const call = { principal, request: { log: createLogger('silent') }, operation: { name: 'GetService' } } as unknown as OperationCall<Extract<Operation, { name: 'GetService' }>>;
  const answer = await table.GetService.run(undefined, undefined, call);
  if (answer.kind !== 'document' || answer.result.kind !== 'ListCoffers') throw new Error('not a coffer list');
  return answer.result.coffers.map((c) => c.name);
}

describe('GetService lists the coffers the caller may use', () => {
  test('by a configured grant (any action, manage included)', async () => {
    expect(await listed({})).toEqual(['granted-1250000000']);
  });

  test("by a coffer's policy, for callers mapped to a principal; a coffer whose policy cannot be read is left out, not the answer", async () => {
    const asked: string[] = [];
    const policyListing = {
      principalsOf: (p: Principal) => (p.id === 'AKIDcaller' ? ['qcs::cam::uin/1:uin/2'] : []),
      mayUse: async (coffer: string) => {
        asked.push(coffer);
        if (coffer === 'unreadable-1250000000') throw new Error('upstream down');
        return coffer === 'by-policy-1250000000';
      },
    };
    expect(await listed({ policyListing })).toEqual(['granted-1250000000', 'by-policy-1250000000']);
    expect(asked.sort()).toEqual(['by-policy-1250000000', 'other-1250000000', 'unreadable-1250000000']);
    // A caller mapped to no principal: no policy is read.
    asked.length = 0;
    expect(await listed({ policyListing }, { ...caller, id: 'AKIDunmapped' })).toEqual(['granted-1250000000']);
    expect(asked).toEqual([]);
  });
});

describe('PutCoffer decides before the body', () => {
  const creation = { classOf: () => ({ name: 'team', creators: ['qcs::cam::uin/1:uin/2'] }), create: async () => ({ generation: '0' }), remove: async () => undefined };
  const prepare = (principal: Principal, configured: boolean, principals: readonly string[] = []): Promise<unknown> => {
    const table = createCdcsOperations({
      coffers: { list: async () => [], isConfigured: () => configured },
      creation,
      policyListing: { principalsOf: () => principals, mayUse: async () => false },
      service: new MultipartService(),
      objects: new ObjectService(),
    });
    return table.PutCoffer.prepare({ principal, coffer: 'granted-1250000000' } as unknown as OperationCall<Extract<Operation, { name: 'PutCoffer' }>>);
  };
  const codeOf = (promise: Promise<unknown>): Promise<string> =>
    promise.then(
      () => 'ok',
      (error: { code?: string }) => error.code ?? 'thrown',
    );

  test('a configured name: 409 CofferAlreadyExists only to a caller who may use that coffer; 403 to others (they learn nothing)', async () => {
    expect(await codeOf(prepare(caller, true))).toBe('CofferAlreadyExists');
    expect(await codeOf(prepare({ ...caller, grants: [{ coffer: 'other-1250000000', actions: ['*'] }] }, true))).toBe('AccessDenied');
  });

  test('a class name: a creator principal or a "*" manage grant may create; others get 403', async () => {
    expect(await codeOf(prepare({ ...caller, grants: [] }, false, ['qcs::cam::uin/1:uin/2']))).toBe('ok');
    expect(await codeOf(prepare({ ...caller, grants: [{ coffer: '*', actions: ['manage'] }] }, false))).toBe('ok');
    expect(await codeOf(prepare({ ...caller, grants: [{ coffer: '*', actions: ['read', 'write', 'list'] }] }, false))).toBe('AccessDenied');
    expect(await codeOf(prepare({ ...caller, grants: [] }, false, ['qcs::cam::uin/1:uin/3']))).toBe('AccessDenied');
  });
});
