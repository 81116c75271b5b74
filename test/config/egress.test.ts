/**
 * The `egress` section: a configured CA is read and checked while the configuration loads (a CA, its
 * key, a supported key type), every problem reported with its path and without quoting the files;
 * the CA key is redacted like every other secret.
 */
import { redactConfig, REDACTED } from '../../src/config';
import { baseConfig, fixture, load, problemsOf } from './helpers';

const CA_FILES = { '/ca/tls.crt': fixture('tls.crt'), '/ca/tls.key': fixture('tls.key') };

describe('config: egress', () => {
  test('a CA from files loads (enabled), with the file contents next to the paths', () => {
    const config = load({ ...baseConfig(), egress: { enabled: true, ca: { certFile: '/ca/tls.crt', keyFile: '/ca/tls.key' } } }, { files: CA_FILES });
    expect(config.egress).toMatchObject({ enabled: true, ca: { certFile: '/ca/tls.crt', keyFile: '/ca/tls.key', certPem: fixture('tls.crt'), keyPem: fixture('tls.key') } });
  });

  test('the CA key is redacted', () => {
    const config = load({ ...baseConfig(), egress: { enabled: true, ca: { certFile: '/ca/tls.crt', keyFile: '/ca/tls.key' } } }, { files: CA_FILES });
    const redacted = redactConfig(config) as { egress: { ca: { keyPem: string; certPem: string } } };
    expect(redacted.egress.ca.keyPem).toBe(REDACTED);
    expect(JSON.stringify(redacted)).not.toContain(fixture('tls.key').split('\n')[1] as string);
  });

  test('a CA certificate with the key of another certificate is refused without quoting either file (not-a-CA: test/egress/certificate-authority.test.ts)', () => {
    const otherCa = fixture('other.crt');
    const problems = problemsOf(() => load({ ...baseConfig(), egress: { enabled: true, ca: { certFile: '/ca/other.crt', keyFile: '/ca/tls.key' } } }, { files: { ...CA_FILES, '/ca/other.crt': otherCa } }));
    expect(problems).toHaveLength(1);
    expect(problems[0]).toBe('egress.ca.certFile: does not match the key in keyFile');
    expect(problems[0]).not.toContain('BEGIN');
  });

  test('ca and localCaDirectory together are refused; a missing CA file is reported with its path', () => {
    expect(problemsOf(() => load({ ...baseConfig(), egress: { ca: { certFile: '/ca/tls.crt', keyFile: '/ca/tls.key' }, localCaDirectory: '/data/ca' } }, { files: CA_FILES }))).toEqual([
      'egress.localCaDirectory: set only one of ca and localCaDirectory',
    ]);
    expect(problemsOf(() => load({ ...baseConfig(), egress: { enabled: true, ca: { certFile: '/missing.crt', keyFile: '/ca/tls.key' } } }, { files: CA_FILES }))[0]).toMatch(/^egress\.ca\.certFile: .*\/missing\.crt.*ENOENT/);
  });

  test('bounds are checked', () => {
    const problems = problemsOf(() => load({ ...baseConfig(), egress: { leafValiditySeconds: 60, certificateCacheEntries: 0, issuancePerMinute: 0, handshakeTimeoutMs: 10 } }));
    expect(problems).toEqual(['egress.leafValiditySeconds: must be at least 600', 'egress.certificateCacheEntries: must be at least 1', 'egress.issuancePerMinute: must be at least 1', 'egress.handshakeTimeoutMs: must be at least 1000']);
  });
});
