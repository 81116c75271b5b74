import { inspect } from 'node:util';
import { InMemoryCredentialStore } from '../../src/auth/credential-store';

const KEY = 'BQYIM75p8x0iWVFSIgqEKwFprpRSVHlz';

describe('InMemoryCredentialStore', () => {
  const store = new InMemoryCredentialStore([
    { secretId: 'AKIDone', secretKey: KEY, grants: [{ coffer: 'a-1', actions: ['read'] }] },
    { secretId: 'AKIDtwo', secretKey: `${KEY}2`, grants: [{ coffer: '*', actions: ['*'] }] },
  ]);

  test('looks up by exact SecretId', async () => {
    const credential = await store.lookup('AKIDone');
    expect(credential?.secretKey).toBe(KEY);
    expect(credential?.grants).toEqual([{ coffer: 'a-1', actions: ['read'] }]);
    expect(await store.lookup('akidone')).toBeUndefined();
    expect(await store.lookup('__proto__')).toBeUndefined();
    expect(store.size).toBe(2);
  });

  test('the SecretKey does not appear when a record or the store is logged or serialised', async () => {
    const credential = await store.lookup('AKIDone');
    expect(JSON.stringify(credential)).not.toContain(KEY);
    expect(inspect(credential, { depth: 5 })).not.toContain(KEY);
    expect(inspect(store, { depth: 5 })).not.toContain(KEY);
    expect(Object.isFrozen(credential)).toBe(true);
  });

  test.each([
    [
      'duplicate SecretId',
      [
        { secretId: 'A', secretKey: KEY, grants: [] },
        { secretId: 'A', secretKey: KEY, grants: [] },
      ],
      /configured twice/,
    ],
    ['bad SecretId', [{ secretId: 'A B', secretKey: KEY, grants: [] }], /secretId/],
    ['short SecretKey', [{ secretId: 'A', secretKey: 'short', grants: [] }], /secretKey/],
    ['unknown action', [{ secretId: 'A', secretKey: KEY, grants: [{ coffer: 'c', actions: ['delete'] }] }], /unknown action/],
    ['empty coffer', [{ secretId: 'A', secretKey: KEY, grants: [{ coffer: '', actions: ['read'] }] }], /coffer/],
  ])('rejects %s at start-up without printing the key', (_name, entries, message) => {
    let thrown: unknown;
    try {
      new InMemoryCredentialStore(entries as never);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(Error);
    expect((thrown as Error).message).toMatch(message);
    expect((thrown as Error).message).not.toContain(KEY);
  });
});
