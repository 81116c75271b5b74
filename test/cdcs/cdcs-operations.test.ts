/**
 * Table entries of src/cdcs/cdcs-operations.ts called directly (no HTTP): GetService's coffer list.
 */
import type { Principal } from '../../src/auth/principal';
import { createCdcsOperations, type CdcsOperationsDependencies } from '../../src/cdcs/cdcs-operations';
import type { Operation } from '../../src/cdcs/route';
import { createLogger } from '../../src/observability/logger';
import type { OperationCall } from '../../src/operations/operation-table';
import { MultipartService } from '../../src/store/multipart-service';
import { ObjectService } from '../../src/store/object-service';

const coffers = ['granted-1250000000', 'by-policy-1250000000', 'unreadable-1250000000', 'other-1250000000'];
const caller: Principal = { method: 'cos-signature', id: 'AKIDcaller', sessionName: 'AKIDcaller', grants: [{ coffer: 'granted-1250000000', actions: ['manage'] }] };

async function listed(deps: Partial<CdcsOperationsDependencies>, principal: Principal = caller): Promise<string[]> {
  const table = createCdcsOperations({ coffers: { list: () => coffers.map((name) => ({ name, location: 'x' })) }, service: new MultipartService(), objects: new ObjectService(), ...deps });
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
