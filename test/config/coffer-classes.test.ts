import { cofferNamePattern } from '../../src/config/schema/coffer-classes';
import { baseConfig, load, problemsOf } from './helpers';

const classCoffer = { upstream: { endpoint: 'http://127.0.0.1:9000', bucket: 'coffer-created', prefix: 'created/' }, kms: { type: 'local', keyId: 'created' } };

describe('cofferNamePattern', () => {
  test.each([
    ['team-*-1250000000', 'team-alpha-1250000000', true],
    ['team-*-1250000000', 'xteam-alpha-1250000000', false],
    ['team-*-1250000000', 'team-alpha-12500000001', false],
    ['team-?-1250000000', 'team-a-1250000000', true],
    ['team-?-1250000000', 'team-ab-1250000000', false],
    // A glob's "." is literal.
    ['team.*', 'teamx-1', false],
    // "^": a regular expression, anchored at both ends even without "$".
    ['^team-[a-z]+-125', 'team-alpha-125', true],
    ['^team-[a-z]+-125', 'team-alpha-1250', false],
    ['^team-[a-z]+-125$', 'xteam-alpha-125', false],
  ])('%s admits %s: %s', (pattern, name, admitted) => {
    expect(cofferNamePattern(pattern).test(name)).toBe(admitted);
  });
});

describe('cofferClasses configuration', () => {
  test('default: none', () => {
    expect(load(baseConfig()).cofferClasses).toEqual({});
  });

  test('a class: its coffer settings validated like a configured coffer, creators default to none', () => {
    const config = baseConfig();
    config.cofferClasses = { team: { pattern: 'team-*-1250000000', coffer: classCoffer } };
    const loaded = load(config).cofferClasses.team;
    expect(loaded?.creators).toEqual([]);
    expect(loaded?.coffer.upstream.prefix).toBe('created/');
    expect(loaded?.coffer.role).toEqual({ type: 'static' });
  });

  test.each([
    ['a bad regular expression', { team: { pattern: '^team-(', coffer: classCoffer } }, 'cofferClasses.team.pattern: must be a glob or a valid regular expression'],
    ['a creator that is not a principal', { team: { pattern: 'team-*', coffer: classCoffer, creators: ['uin/1'] } }, 'cofferClasses.team.creators[0]: must be a principal such as "qcs::cam::uin/100000000001:uin/100000000011"'],
    ['a bad class name', { Bad_Name: { pattern: 'x-*', coffer: classCoffer } }, 'cofferClasses.Bad_Name: invalid name, must be a class name: lowercase letters, digits and "-"'],
  ])('problem: %s', (_what, classes, problem) => {
    const config = baseConfig();
    config.cofferClasses = classes;
    expect(problemsOf(() => load(config))).toEqual([problem]);
  });

  test('problem: an unknown field in the class coffer', () => {
    const config = baseConfig();
    config.cofferClasses = { team: { pattern: 'team-*', coffer: { ...classCoffer, extra: 1 } } };
    expect(problemsOf(() => load(config)).some((p) => p.startsWith('cofferClasses.team.coffer'))).toBe(true);
  });
});
