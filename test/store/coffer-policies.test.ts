import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { parseCofferPolicy } from '../../src/auth/coffer-policy';
import { IntegrityError } from '../../src/format/integrity-error';
import { createLocalKeyring } from '../../src/keys/local-keyring';
import type { CofferContext } from '../../src/store/coffer-context';
import { CofferPolicies } from '../../src/store/coffer-policies';
import { ObjectService } from '../../src/store/object-service';
import { upstreamLayout } from '../../src/store/upstream-layout';
import { MemoryUploadStore } from '../support/memory-upload-store';

const COFFER = 'guarded-1250000000';
const ALICE = 'qcs::cam::uin/100000000001:uin/100000000011';
const MALLORY = 'qcs::cam::uin/100000000001:uin/100000000666';
const text = (principal: string) => JSON.stringify({ version: '2.0', Statement: [{ Principal: { qcs: [principal] }, Effect: 'allow', Action: ['name/cdcs:GetObject'], Resource: [`qcs::cdcs::uid/1250000000:${COFFER}/*`] }] });

let directory: string;
beforeAll(() => {
  directory = mkdtempSync(join(tmpdir(), 'coffer-policies-'));
});
afterAll(() => rmSync(directory, { recursive: true, force: true }));

function setup(store = new MemoryUploadStore(), coffer = COFFER, prefix = 'g/') {
  let now = Date.parse('2026-01-01T00:00:00Z');
  const context: CofferContext = { coffer, store, layout: upstreamLayout(prefix), keys: createLocalKeyring({ directory, keyId: 'policies', create: true }), minPartSize: 5 * 1024 * 1024, maxPartSize: 5 * 1024 ** 3 };
  const policies = new CofferPolicies({ cacheTtlMs: 30_000, now: () => now });
  return { store, context, policies, advance: (ms: number) => (now += ms) };
}

const decideFor = (policies: CofferPolicies, context: CofferContext, principal: string) => policies.decide(context, { principals: [principal], action: 'GetObject', key: 'k' });
const reasonOf = (promise: Promise<unknown>) =>
  promise.then(
    () => undefined,
    (error: unknown) => (error instanceof IntegrityError ? error.reason : String(error)),
  );

test('a stored policy decides on every replica; deletion removes it; replicas cache it for cacheTtlMs', async () => {
  const { store, context, policies, advance } = setup();
  await policies.put(context, parseCofferPolicy(Buffer.from(text(ALICE)), COFFER));
  expect(await decideFor(policies, context, ALICE)).toBe('allow');
  const replica = setup(store);
  expect(await decideFor(replica.policies, replica.context, ALICE)).toBe('allow');
  expect((await replica.policies.get(replica.context))?.text).toBe(text(ALICE));
  await policies.delete(context);
  expect(await decideFor(policies, context, ALICE)).toBe('none'); // the replica that took the change: at once
  expect(await decideFor(replica.policies, replica.context, ALICE)).toBe('allow'); // another: from its cache…
  replica.advance(30_000);
  expect(await decideFor(replica.policies, replica.context, ALICE)).toBe('none'); // …for cacheTtlMs at most
  advance(0);
});

test('tamper: a bucket writer can neither alter the stored policy, plant one granting themselves, nor move one from another coffer', async () => {
  const { store, context, policies } = setup();
  // The coffer has a key (its first object), and a policy.
  const objects = new ObjectService();
  const prepared = await objects.preparePut(context, 'k', 1);
  await objects.put(prepared, Readable.from([Buffer.from('x')]));
  await policies.put(context, parseCofferPolicy(Buffer.from(text(ALICE)), COFFER));
  const entry = store.objects.get('g/k/policy');
  if (entry === undefined) throw new Error('no policy record');
  const original = Buffer.from(entry.data);

  // Alter one byte of the sealed policy.
  entry.data = Buffer.from(original);
  entry.data.writeUInt8(entry.data.readUInt8(40) ^ 1, 40);
  const fresh = () => setup(store).policies;
  expect(await reasonOf(decideFor(fresh(), context, ALICE))).toBe('coffer-record-rejected');

  // Plant a policy of one's own in the clear (what a bucket writer can write): refused, never "allow".
  entry.data = Buffer.from(text(MALLORY));
  expect(await reasonOf(decideFor(fresh(), context, MALLORY))).toBe('coffer-record-rejected');

  // Copy another coffer's genuine policy record (same keyring, same bucket) over this one.
  const other = setup(store, 'other-1250000000', 'o/');
  const otherPut = await objects.preparePut(other.context, 'k', 1);
  await objects.put(otherPut, Readable.from([Buffer.from('y')]));
  await other.policies.put(other.context, parseCofferPolicy(Buffer.from(JSON.stringify({ version: '2.0', Statement: [{ Principal: { qcs: [MALLORY] }, Effect: 'allow', Action: ['*'], Resource: ['*'] }] })), 'other-1250000000'));
  entry.data = Buffer.from((store.objects.get('o/k/policy') as typeof entry).data);
  expect(await reasonOf(decideFor(fresh(), context, MALLORY))).toBe('coffer-record-rejected');

  entry.data = original;
  expect(await decideFor(fresh(), context, ALICE)).toBe('allow');
});
