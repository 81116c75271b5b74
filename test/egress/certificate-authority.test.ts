/**
 * The egress CA: the local CA of the embedded default (created once, key mode 0600, name-constrained,
 * reused, never guessed when half there), leaf certificates checked by OpenSSL itself (`openssl verify`
 * with the TLS server purpose and host name, name constraints enforced), a configured RSA intermediate
 * whose chain is served without its root, and the CA problems the configuration refuses.
 */
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { caProblem, ensureLocalCertificateAuthority, loadCertificateAuthority, LOCAL_CA_CERT_FILE, LOCAL_CA_KEY_FILE } from '../../src/egress/certificate-authority';

const HOST = 'demo-1250000000.cos.ap-guangzhou.myqcloud.com';
let scratch: string;
beforeAll(() => {
  scratch = mkdtempSync(join(tmpdir(), 'coffer-egress-ca-'));
});
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

let counter = 0;
const fresh = (): string => join(scratch, `d${(counter += 1)}`);

/** `openssl verify` as a TLS client would check a server certificate for `host`; returns [ok, output]. */
function opensslVerify(caFile: string, leafPem: string, host: string, untrusted?: string): [boolean, string] {
  const leafFile = join(scratch, `leaf-${(counter += 1)}.pem`);
  writeFileSync(leafFile, leafPem);
  const args = ['verify', '-CAfile', caFile, '-purpose', 'sslserver', '-verify_hostname', host, ...(untrusted === undefined ? [] : ['-untrusted', untrusted]), leafFile];
  const result = spawnSync('openssl', args, { encoding: 'utf8' });
  return [result.status === 0, `${result.stdout}${result.stderr}`];
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

describe('the local CA (embedded default)', () => {
  test('is created once: ca.pem and ca-key.pem (0600) in a 0700 directory, a name-constrained CA, then reused', async () => {
    const directory = fresh();
    const first = await ensureLocalCertificateAuthority(directory, ['coffers.example.internal']);
    expect(first.created).toBe(true);
    expect(first.certFile).toBe(join(directory, LOCAL_CA_CERT_FILE));
    expect(statSync(join(directory, LOCAL_CA_KEY_FILE)).mode & 0o777).toBe(0o600);
    expect(statSync(directory).mode & 0o777).toBe(0o700);
    const certificate = new X509Certificate(readFileSync(first.certFile, 'utf8'));
    expect(certificate.ca).toBe(true);
    const text = execFileSync('openssl', ['x509', '-noout', '-text', '-in', first.certFile], { encoding: 'utf8' });
    expect(text).toMatch(/X509v3 Name Constraints: critical\s+Permitted:\s+DNS:myqcloud\.com\s+DNS:tencentcos\.cn\s+DNS:coffers\.example\.internal/);
    expect(text).toContain('ASN1 OID: prime256v1');

    chmodSync(join(directory, LOCAL_CA_KEY_FILE), 0o644);
    const again = await ensureLocalCertificateAuthority(directory);
    expect(again.created).toBe(false);
    expect(again.authority.certificatePem.trim()).toBe(readFileSync(first.certFile, 'utf8').trim());
    expect(statSync(join(directory, LOCAL_CA_KEY_FILE)).mode & 0o777).toBe(0o600);
  });

  test('two processes creating it at once end up with one CA (the pair appears complete, by one rename)', async () => {
    const directory = fresh();
    const [a, b, c] = await Promise.all([ensureLocalCertificateAuthority(directory), ensureLocalCertificateAuthority(directory), ensureLocalCertificateAuthority(directory)]);
    expect(new Set([a, b, c].map((x) => x.authority.certificatePem)).size).toBe(1);
    expect([a, b, c].filter((x) => x.created)).toHaveLength(1);
    expect(readdirSync(scratch).filter((name: string) => name.startsWith('.'))).toEqual([]);
  });

  test('half a CA (one of the two files) is refused, naming the missing file; nothing is overwritten', async () => {
    const directory = fresh();
    await ensureLocalCertificateAuthority(directory);
    const key = readFileSync(join(directory, LOCAL_CA_KEY_FILE), 'utf8');
    rmSync(join(directory, LOCAL_CA_CERT_FILE));
    await expect(ensureLocalCertificateAuthority(directory)).rejects.toThrow(/incomplete \(ca\.pem is missing\)/);
    expect(readFileSync(join(directory, LOCAL_CA_KEY_FILE), 'utf8')).toBe(key);
    expect(existsSync(join(directory, LOCAL_CA_CERT_FILE))).toBe(false);
  });

  test('a leaf is an ECDSA P-256 server certificate for exactly the name, short-lived, that OpenSSL accepts for that name only', async () => {
    const directory = fresh();
    const { authority, certFile } = await ensureLocalCertificateAuthority(directory);
    const before = Date.now();
    const leaf = await authority.issue(HOST, 3600_000);
    const certificate = new X509Certificate(leaf.certChainPem);
    expect(certificate.subject).toBe(`CN=${HOST}`);
    expect(certificate.subjectAltName).toBe(`DNS:${HOST}`);
    expect(certificate.ca).toBe(false);
    expect(certificate.publicKey.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
    expect(certificate.checkIssued(new X509Certificate(readFileSync(certFile)))).toBe(true);
    expect(new Date(certificate.validTo).getTime()).toBeLessThanOrEqual(before + 3600_000 + 1000);
    expect(new Date(certificate.validTo).getTime()).toBeGreaterThan(before + 3600_000 - 60_000);
    expect(new Date(certificate.validFrom).getTime()).toBeLessThanOrEqual(before);
    expect(leaf.keyPem).toContain('BEGIN PRIVATE KEY');
    expect(certificate.checkPrivateKey(createPrivateKey(leaf.keyPem))).toBe(true);
    // The leaf chain holds only the leaf: the root is the client's trust anchor, never sent.
    expect(leaf.certChainPem.match(/BEGIN CERTIFICATE/g)).toHaveLength(1);

    expect(opensslVerify(certFile, leaf.certChainPem, HOST)).toEqual([true, expect.stringContaining('OK')]);
    const [okForOther] = opensslVerify(certFile, leaf.certChainPem, 'other-1250000000.cos.ap-guangzhou.myqcloud.com');
    expect(okForOther).toBe(false);
  });

  test('the name constraints hold even against the CA itself: a leaf for a name outside the coffer domains fails verification', async () => {
    const directory = fresh();
    const { authority, certFile } = await ensureLocalCertificateAuthority(directory);
    const outside = await authority.issue('www.example.com', 3600_000);
    const [ok, output] = opensslVerify(certFile, outside.certChainPem, 'www.example.com');
    expect(ok).toBe(false);
    expect(output).toMatch(/permitted subtree violation/);
  });

  test('a leaf never outlives its CA', async () => {
    const directory = fresh();
    const { authority } = await ensureLocalCertificateAuthority(directory);
    const leaf = await authority.issue(HOST, 100 * 365 * 24 * 3600_000);
    expect(leaf.notAfter.getTime()).toBe(authority.notAfter.getTime());
  });
});

describe('a configured CA (files, e.g. a cert-manager Secret)', () => {
  test('an RSA intermediate under a root: leaves carry the intermediate, not the root, and verify against the root', async () => {
    const directory = fresh();
    mkdirSync(directory);
    openssl(
      ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'root.key', '-out', 'root.pem', '-days', '2', '-subj', '/CN=test root', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign'],
      directory,
    );
    openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'int.key', '-out', 'int.csr', '-subj', '/CN=test egress intermediate'], directory);
    writeFileSync(join(directory, 'ext.cnf'), 'basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign\nsubjectKeyIdentifier=hash\n');
    openssl(['x509', '-req', '-in', 'int.csr', '-CA', 'root.pem', '-CAkey', 'root.key', '-CAcreateserial', '-out', 'int.pem', '-days', '2', '-extfile', 'ext.cnf'], directory);
    const intermediate = readFileSync(join(directory, 'int.pem'), 'utf8');
    const root = readFileSync(join(directory, 'root.pem'), 'utf8');
    const certPem = intermediate + root; // a cert-manager tls.crt may carry the chain
    const keyPem = readFileSync(join(directory, 'int.key'), 'utf8');
    expect(caProblem(certPem, keyPem)).toBeUndefined();

    const authority = await loadCertificateAuthority({ certPem, keyPem });
    const leaf = await authority.issue(HOST, 3600_000);
    const sent = leaf.certChainPem.match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g) ?? [];
    expect(sent).toHaveLength(2);
    expect(new X509Certificate(sent[1] as string).subject).toBe('CN=test egress intermediate');
    writeFileSync(join(directory, 'chain.pem'), sent[1] as string);
    expect(opensslVerify(join(directory, 'root.pem'), sent[0] as string, HOST, join(directory, 'chain.pem'))[0]).toBe(true);
  });

  test('what cannot be an egress CA is named, without quoting the files', () => {
    const directory = fresh();
    mkdirSync(directory);
    openssl(
      ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', 'leaf.key', '-out', 'leaf.pem', '-days', '2', '-subj', '/CN=not a ca', '-addext', 'basicConstraints=critical,CA:FALSE'],
      directory,
    );
    openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=a ca'], directory);
    openssl(
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-keyout',
        'nosign.key',
        '-out',
        'nosign.pem',
        '-days',
        '2',
        '-subj',
        '/CN=no sign',
        '-addext',
        'basicConstraints=critical,CA:TRUE',
        '-addext',
        'keyUsage=critical,digitalSignature',
      ],
      directory,
    );
    openssl(['req', '-x509', '-newkey', 'ed25519', '-nodes', '-keyout', 'ed.key', '-out', 'ed.pem', '-days', '2', '-subj', '/CN=ed ca'], directory);
    const read = (name: string): string => readFileSync(join(directory, name), 'utf8');
    expect(caProblem(read('ca.pem'), read('ca.key'))).toBeUndefined();
    expect(caProblem(read('leaf.pem'), read('leaf.key'))).toMatch(/^is not a CA certificate allowed to sign certificates/);
    expect(caProblem(read('nosign.pem'), read('nosign.key'))).toMatch(/^is not a CA certificate allowed to sign certificates/);
    expect(caProblem(read('ca.pem'), read('leaf.key'))).toBe('does not match the key in keyFile');
    expect(caProblem(read('ed.pem'), read('ed.key'))).toMatch(/unsupported type/);
    expect(caProblem('garbage', 'garbage')).toBe('is not a PEM certificate with its unencrypted PEM private key');
  });
});
