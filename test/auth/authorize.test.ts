import { authorize, isAllowed } from '../../src/auth/authorize';
import { type Principal, toSessionName, validateGrants } from '../../src/auth/principal';
import { GatewayError } from '../../src/errors/gateway-error';

const principal = (grants: Principal['grants']): Principal => ({ method: 'jwt', id: 'sub', grants, sessionName: 'sub' });

describe('authorize', () => {
  test('exact coffer and action', () => {
    const p = principal([{ coffer: 'a-1', actions: ['read', 'list'] }]);
    expect(() => authorize(p, 'a-1', 'read')).not.toThrow();
    expect(() => authorize(p, 'a-1', 'list')).not.toThrow();
    expect(isAllowed(p.grants, 'a-1', 'write')).toBe(false);
    expect(isAllowed(p.grants, 'a-2', 'read')).toBe(false);
    // no prefix or pattern semantics
    expect(isAllowed(p.grants, 'a-10', 'read')).toBe(false);
  });

  test('wildcards for coffer and action', () => {
    expect(isAllowed([{ coffer: '*', actions: ['write'] }], 'any', 'write')).toBe(true);
    expect(isAllowed([{ coffer: '*', actions: ['write'] }], 'any', 'read')).toBe(false);
    expect(isAllowed([{ coffer: 'c', actions: ['*'] }], 'c', 'list')).toBe(true);
  });

  test('denial is 403 AccessDenied and names neither the grants nor the principal', () => {
    const p = principal([{ coffer: 'secret-coffer', actions: ['read'] }]);
    let thrown: unknown;
    try {
      authorize(p, 'b', 'write');
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(GatewayError);
    expect([(thrown as GatewayError).status, (thrown as GatewayError).code]).toEqual([403, 'AccessDenied']);
    expect((thrown as GatewayError).message).not.toContain('secret-coffer');
  });

  test('no grants → denied', () => {
    expect(() => authorize(principal([]), 'c', 'read')).toThrow(GatewayError);
  });
});

describe('toSessionName', () => {
  const valid = /^[\w+=,.@-]{2,64}$/;
  test.each([
    ['AKIDQjz3ltompVjBni5LitkWHFlFpwkn9U5q', 'AKIDQjz3ltompVjBni5LitkWHFlFpwkn9U5q'],
    ['system:serviceaccount:ns:name', 'system-serviceaccount-ns-name'],
    ['a', 'a_'],
    ['', '__'],
    ['ユーザー/ä b', '-------b'],
  ])('%j → %j', (raw, expected) => {
    expect(toSessionName(raw)).toBe(expected);
    expect(toSessionName(raw)).toMatch(valid);
  });

  test('long names are truncated to 64 with a hash so that distinct ids stay distinct', () => {
    const a = toSessionName(`${'x'.repeat(80)}a`);
    const b = toSessionName(`${'x'.repeat(80)}b`);
    expect(a).toMatch(valid);
    expect(a).toHaveLength(64);
    expect(a).not.toBe(b);
  });
});

describe('validateGrants', () => {
  test('freezes valid grants and rejects non-arrays', () => {
    const grants = validateGrants([{ coffer: 'c', actions: ['read'] }], 'x');
    expect(Object.isFrozen(grants)).toBe(true);
    expect(() => validateGrants({}, 'x')).toThrow(/must be an array/);
    expect(() => validateGrants([{ coffer: 'c', actions: [] }], 'x')).toThrow(/non-empty/);
  });
});
