import { OPERATION_ACTIONS } from '../../src/cdcs/route';
import { S3_OPERATION_ACTIONS } from '../../src/s3/s3-route';
import { evaluatePolicy, parseCofferPolicy, policyActionOf, policyMayAllow, wildcardMatches, type PolicyApiName, type PolicyDecision } from '../../src/auth/coffer-policy';
import { GatewayError } from '../../src/errors/gateway-error';

const COFFER = 'examplecoffer-1250000000';
const ALICE = 'qcs::cam::uin/100000000001:uin/100000000011';
const BOB = 'qcs::cam::uin/100000000001:uin/100000000022';
const res = (path: string): string => `qcs::cdcs:ap-guangzhou:uid/1250000000:${COFFER}/${path}`;
const policy = (statements: unknown[], extra: Record<string, unknown> = {}) => parseCofferPolicy(Buffer.from(JSON.stringify({ Statement: statements, version: '2.0', ...extra })), COFFER);
const statement = (effect: 'allow' | 'deny', principals: string[], actions: string[], resources: string[], condition?: unknown) => ({
  Principal: { qcs: principals },
  Effect: effect,
  Action: actions,
  Resource: resources,
  ...(condition === undefined ? {} : { Condition: condition }),
});

const NOW = new Date('2026-06-01T12:00:00Z');

describe('evaluation (CAM: explicit deny wins, then allow, else no opinion)', () => {
  const subject = policy([
    statement('allow', [ALICE], ['name/cdcs:GetObject', 'name/cdcs:CheckObject'], [res('*')]),
    statement('allow', [ALICE], ['name/cdcs:Put*', 'name/cdcs:InitiateMultipartUpload'], [res('uploads/*')]),
    statement('deny', [ALICE], ['name/cdcs:*'], [res('secret/*')]),
    statement('allow', [BOB], ['*'], [res('*')]),
    statement('deny', [BOB], ['name/cdcs:PutCofferPolicy'], [res('*')]),
  ]);
  test.each<[string, string, PolicyApiName, string | undefined, PolicyDecision]>([
    ['allow', ALICE, 'GetObject', 'reports/a', 'allow'],
    ['allow: the HEAD action is CheckObject', ALICE, 'CheckObject', 'reports/a', 'allow'],
    ['not named: no opinion', ALICE, 'ListParts', 'reports/a', 'none'],
    ['prefix-scoped resource, inside', ALICE, 'PutObject', 'uploads/x', 'allow'],
    ['prefix-scoped resource, outside', ALICE, 'PutObject', 'reports/x', 'none'],
    ['wildcard action (Put*) does not reach other APIs', ALICE, 'UploadPart', 'uploads/x', 'none'],
    ['deny beats allow', ALICE, 'GetObject', 'secret/plans', 'deny'],
    ['a coffer operation the statements do not name: no opinion', ALICE, 'GetCoffer', undefined, 'none'],
    ['wildcard action *', BOB, 'ListMultipartUploads', undefined, 'allow'],
    ['deny beats the wildcard allow', BOB, 'PutCofferPolicy', undefined, 'deny'],
    ['unknown principal: no opinion', 'qcs::cam::uin/100000000001:uin/999', 'GetObject', 'reports/a', 'none'],
  ])('%s', (_name, principal, action, key, decision) => {
    expect(evaluatePolicy(subject, { principals: [principal], action, key, now: NOW })).toBe(decision);
  });

  test('no policy, no principals: no opinion', () => {
    expect(evaluatePolicy(undefined, { principals: [ALICE], action: 'GetObject', key: 'a', now: NOW })).toBe('none');
    expect(evaluatePolicy(subject, { principals: [], action: 'GetObject', key: 'a', now: NOW })).toBe('none');
  });

  test('conditions: source IP ranges and times (lower-case element names, as on the language page)', () => {
    const conditional = parseCofferPolicy(
      Buffer.from(
        JSON.stringify({
          version: '2.0',
          statement: [
            {
              principal: { qcs: [ALICE] },
              effect: 'allow',
              action: ['name/cdcs:GetObject'],
              resource: [res('*')],
              condition: { ip_equal: { 'qcs:ip ': ['10.121.2.0/24', '192.0.2.7'] }, date_less_than: { 'qcs:current_time': '2027-01-01T00:00:00Z' } },
            },
          ],
        }),
      ),
      COFFER,
    );
    const decide = (sourceIp: string | undefined, now = NOW) => evaluatePolicy(conditional, { principals: [ALICE], action: 'GetObject', key: 'k', now, ...(sourceIp === undefined ? {} : { sourceIp }) });
    expect(decide('10.121.2.99')).toBe('allow');
    expect(decide('::ffff:192.0.2.7')).toBe('allow');
    expect(decide('10.121.3.1')).toBe('none');
    expect(decide(undefined)).toBe('none');
    expect(decide('10.121.2.99', new Date('2027-01-01T00:00:00Z'))).toBe('none');
  });

  test('an IP condition without a known client address fails closed: an allow does not apply, a deny does', () => {
    const outsideDenied = policy([
      statement('allow', [ALICE], ['name/cdcs:GetObject'], [res('*')], { ip_equal: { 'qcs:ip': '10.0.0.0/8' } }),
      statement('deny', [ALICE], ['name/cdcs:PutObject'], [res('*')], { ip_not_equal: { 'qcs:ip': '10.0.0.0/8' } }),
    ]);
    const decide = (action: PolicyApiName, sourceIp?: string) => evaluatePolicy(outsideDenied, { principals: [ALICE], action, key: 'k', now: NOW, ...(sourceIp === undefined ? {} : { sourceIp }) });
    expect(decide('GetObject')).toBe('none');
    expect(decide('PutObject')).toBe('deny');
    expect(decide('GetObject', '10.1.2.3')).toBe('allow');
    expect(decide('PutObject', '10.1.2.3')).toBe('none');
    expect(decide('PutObject', '192.0.2.1')).toBe('deny');
  });
});

describe('validation: anything the gateway would not act on is MalformedPolicy', () => {
  const codeOf = (make: () => unknown): string | undefined => {
    try {
      make();
      return undefined;
    } catch (error) {
      return error instanceof GatewayError ? error.code : String(error);
    }
  };
  test.each<[string, () => unknown]>([
    ['not JSON', () => parseCofferPolicy(Buffer.from('{'), COFFER)],
    ['no version', () => parseCofferPolicy(Buffer.from(JSON.stringify({ Statement: [statement('allow', [ALICE], ['*'], ['*'])] })), COFFER)],
    ['version 1.0', () => policy([statement('allow', [ALICE], ['*'], ['*'])], { version: '1.0' })],
    ['no statements', () => policy([])],
    ['a resource of another coffer', () => policy([statement('allow', [ALICE], ['*'], ['qcs::cdcs::uid/1250000000:other-1250000000/*'])])],
    ['a resource of another APPID', () => policy([statement('allow', [ALICE], ['*'], [`qcs::cdcs::uid/1250000001:${COFFER}/*`])])],
    ['an action of another service', () => policy([statement('allow', [ALICE], ['name/cos:GetObject'], [res('*')])])],
    ['an unknown API', () => policy([statement('allow', [ALICE], ['name/cdcs:DeleteObject'], [res('*')])])],
    ['a function set', () => policy([statement('allow', [ALICE], ['permid/123'], [res('*')])])],
    ['an effect other than allow/deny', () => policy([statement('allow', [ALICE], ['*'], [res('*')]), { ...statement('allow', [ALICE], ['*'], [res('*')]), Effect: 'Allow' }])],
    ['a principal that is not qcs::cam::', () => policy([statement('allow', ['AKIDsomething'], ['*'], [res('*')])])],
    ['an unknown element', () => policy([{ ...statement('allow', [ALICE], ['*'], [res('*')]), Sid: 'x' }])],
    ['an unknown condition operator', () => policy([statement('allow', [ALICE], ['*'], [res('*')], { string_equal: { 'qcs:ip': '1.2.3.4' } })])],
    ['a bad CIDR', () => policy([statement('allow', [ALICE], ['*'], [res('*')], { ip_equal: { 'qcs:ip': '10.0.0.0/33' } })])],
    ['both Statement and statement', () => parseCofferPolicy(Buffer.from(JSON.stringify({ version: '2.0', Statement: [], statement: [] })), COFFER)],
  ])('%s', (_name, make) => {
    expect(codeOf(make)).toBe('MalformedPolicy');
  });

  test('the documented example parses and keeps its text for GetCofferPolicy', () => {
    const text = JSON.stringify({
      Statement: [{ Principal: { qcs: ['qcs::cam::uin/100000000001:uin/100000000011'] }, Effect: 'allow', Action: ['name/cdcs:GetCoffer'], Resource: [`qcs::cdcs:ap-guangzhou:uid/1250000000:${COFFER}/*`] }],
      version: '2.0',
    });
    expect(parseCofferPolicy(Buffer.from(text), COFFER).text).toBe(text);
  });
});

test('wildcards: * is any run of characters, nothing else is special', () => {
  expect(wildcardMatches('*', '')).toBe(true);
  expect(wildcardMatches('logs/*', 'logs/')).toBe(true);
  expect(wildcardMatches('logs/*', 'log')).toBe(false);
  expect(wildcardMatches('a*b*c', 'abc')).toBe(true);
  expect(wildcardMatches('a*b*c', 'acb')).toBe(false);
  expect(wildcardMatches('ab*ba', 'aba')).toBe(false);
  expect(wildcardMatches('a?c', 'abc')).toBe(false);
});

test('policyMayAllow (GetService): some allow statement names the caller or *; a deny alone does not', () => {
  const p = policy([statement('allow', [ALICE], ['name/cdcs:GetObject'], [res('reports/*')]), statement('deny', [BOB], ['*'], [res('*')])]);
  expect(policyMayAllow(p, [ALICE])).toBe(true);
  expect(policyMayAllow(p, [BOB])).toBe(false);
  expect(policyMayAllow(policy([statement('allow', ['*'], ['*'], [res('*')])]), [BOB])).toBe(true);
  expect(policyMayAllow(undefined, [ALICE])).toBe(false);
});

describe('policyActionOf covers both dialects', () => {
  // A coffer operation a policy cannot name would escape every deny: each routed operation of the
  // CDCS and S3 dialects maps to the CDCS API a policy speaks of.
  test('every CDCS and S3 operation maps to a policy API name', () => {
    const names = [...Object.keys(OPERATION_ACTIONS), ...Object.keys(S3_OPERATION_ACTIONS)];
    expect(names.filter((name) => policyActionOf(name) === undefined)).toEqual([]);
  });

  test('S3 names take the CDCS API of the same effect', () => {
    expect(policyActionOf('ListObjectsV2')).toBe('GetCoffer');
    expect(policyActionOf('HeadObject')).toBe('CheckObject');
    expect(policyActionOf('CreateMultipartUpload')).toBe('InitiateMultipartUpload');
    expect(policyActionOf('DeleteObjects')).toBe('PutObject');
  });
});
