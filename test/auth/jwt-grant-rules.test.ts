import { claimMatches, compileGrantRules, grantsForClaims, serviceAccountSubject } from '../../src/auth/jwt-grant-rules';

const k8sPayload = {
  sub: 'system:serviceaccount:team-a:uploader',
  'kubernetes.io': { namespace: 'team-a', serviceaccount: { name: 'uploader', uid: 'u-1' } },
  groups: ['a'],
  flag: true,
};

describe('claim paths', () => {
  test('dotted paths through claim names that contain dots', () => {
    expect(claimMatches(k8sPayload, 'kubernetes.io.namespace', 'team-a')).toBe(true);
    expect(claimMatches(k8sPayload, 'kubernetes.io.serviceaccount.name', 'uploader')).toBe(true);
    expect(claimMatches(k8sPayload, 'kubernetes.io.namespace', 'team-b')).toBe(false);
    expect(claimMatches(k8sPayload, 'sub', 'system:serviceaccount:team-a:uploader')).toBe(true);
  });

  test('exact strings only: no objects, arrays, booleans, prefixes or prototype lookups', () => {
    expect(claimMatches(k8sPayload, 'kubernetes.io', '[object Object]')).toBe(false);
    expect(claimMatches(k8sPayload, 'groups', 'a')).toBe(false);
    expect(claimMatches(k8sPayload, 'flag', 'true')).toBe(false);
    expect(claimMatches(k8sPayload, 'kubernetes.io.namespace', 'team')).toBe(false);
    expect(claimMatches(k8sPayload, 'constructor.name', 'Object')).toBe(false);
    expect(claimMatches(k8sPayload, '__proto__', '')).toBe(false);
    expect(claimMatches(k8sPayload, 'missing', '')).toBe(false);
  });

  test('ambiguous readings must all agree', () => {
    const payload = { 'a.b': 'x', a: { b: 'y' } };
    expect(claimMatches(payload, 'a.b', 'x')).toBe(false);
    expect(claimMatches(payload, 'a.b', 'y')).toBe(false);
    expect(claimMatches({ 'a.b': 'x', a: { b: 'x' } }, 'a.b', 'x')).toBe(true);
  });
});

describe('grant rules', () => {
  const rules = compileGrantRules([
    { subject: serviceAccountSubject('team-a', 'uploader'), grants: [{ coffer: 'up', actions: ['write'] }] },
    { claims: { 'kubernetes.io.namespace': 'team-a' }, grants: [{ coffer: 'ns', actions: ['read'] }] },
    { subject: serviceAccountSubject('team-a', 'uploader'), claims: { 'kubernetes.io.namespace': 'team-b' }, grants: [{ coffer: 'never', actions: ['*'] }] },
  ]);

  test('all conditions of a rule must hold; grants of matching rules are combined', () => {
    expect(grantsForClaims(k8sPayload, rules)).toEqual([
      { coffer: 'up', actions: ['write'] },
      { coffer: 'ns', actions: ['read'] },
    ]);
    expect(grantsForClaims({ ...k8sPayload, sub: 'system:serviceaccount:team-a:other' }, rules)).toEqual([{ coffer: 'ns', actions: ['read'] }]);
    expect(grantsForClaims({ sub: 'x' }, rules)).toEqual([]);
  });

  test('invalid rules are refused at start-up', () => {
    expect(() => compileGrantRules([{ grants: [{ coffer: 'c', actions: ['read'] }] }])).toThrow(/subject or at least one claim/);
    expect(() => compileGrantRules([{ claims: {}, grants: [] }])).toThrow(/subject or at least one claim/);
    expect(() => compileGrantRules([{ subject: 's', grants: [{ coffer: 'c', actions: ['rm' as 'read'] }] }])).toThrow(/unknown action/);
    expect(() => compileGrantRules([{ claims: { a: 1 as unknown as string }, grants: [] }])).toThrow(/strings/);
  });
});
