/**
 * The egress CA: the certificate authority whose leaf certificates the gateway presents inside a
 * CONNECT tunnel (src/egress/connect-interceptor.ts). Two sources:
 *
 * - configured files (`egress.ca.certFile` / `keyFile`, e.g. a cert-manager issued Kubernetes Secret),
 *   read and validated while the configuration loads;
 * - the embedded default: a local CA created on first start in `egress.localCaDirectory`, like the
 *   keyring. Its key file is created with mode 0600 and never overwritten; an existing pair is reused.
 *
 * Leaf certificates are ECDSA P-256, for exactly one DNS name (CN and the only SAN), `serverAuth`
 * only, short-lived and never later than the CA itself. Their private keys exist only in memory (a TLS
 * secure context); the CA private key is imported as a non-extractable WebCrypto key and is never
 * logged or written anywhere but its own file.
 *
 * Certificates are built with @peculiar/x509 (WebCrypto based; see README "Dependencies").
 */
// @peculiar/x509 resolves its ASN.1 codecs through tsyringe, which needs the Reflect metadata API.
import 'reflect-metadata';
import { AsnConvert } from '@peculiar/asn1-schema';
import { GeneralName, GeneralSubtree, GeneralSubtrees, NameConstraints, id_ce_nameConstraints } from '@peculiar/asn1-x509';
import * as x509 from '@peculiar/x509';
import { X509Certificate, createPrivateKey, randomBytes, webcrypto } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { caProblem, signingAlgorithmOf } from './ca-checks';

export { caProblem } from './ca-checks';

type CryptoKey = webcrypto.CryptoKey;

// Node's WebCrypto is the standard API; its TypeScript types differ from the DOM's only by name.
x509.cryptoProvider.set(webcrypto as never);

/** The local CA's files in `egress.localCaDirectory`. `ca.pem` is what clients trust (NODE_EXTRA_CA_CERTS). */
export const LOCAL_CA_CERT_FILE = 'ca.pem';
export const LOCAL_CA_KEY_FILE = 'ca-key.pem';

/** The domains every coffer endpoint lives under; the local CA is name-constrained to them (plus configured suffixes). */
export const COFFER_ENDPOINT_DOMAINS: readonly string[] = ['myqcloud.com', 'tencentcos.cn'];

/** Leaf certificates start this long before issuance, so a client whose clock is slightly behind accepts them. */
const CLOCK_SKEW_MS = 5 * 60 * 1000;
/** Validity of a generated local CA. */
const LOCAL_CA_VALIDITY_MS = 5 * 365 * 24 * 3600 * 1000;

const LEAF_KEY_ALGORITHM = { name: 'ECDSA', namedCurve: 'P-256' } as const;

export interface IssuedCertificate {
  /** The leaf certificate followed by the CA's intermediates (never a self-signed root). */
  readonly certChainPem: string;
  /** The leaf's PKCS#8 private key. Held in memory only, to build a TLS secure context. */
  readonly keyPem: string;
  readonly notAfter: Date;
}

export interface CertificateAuthority {
  /** The CA certificate (first of the configured chain). */
  readonly certificatePem: string;
  readonly notAfter: Date;
  /** Issues a leaf certificate for exactly `dnsName`, valid for `validityMs` (capped at the CA's own notAfter). */
  issue(dnsName: string, validityMs: number): Promise<IssuedCertificate>;
}

/** The certificates of a PEM bundle, in order. */
function pemCertificates(pem: string): string[] {
  return pem.match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g) ?? [];
}

/** A random positive 128-bit serial number (RFC 5280: positive, at most 20 octets; CA/B: at least 64 random bits). */
function serialNumber(): string {
  const bytes = randomBytes(16);
  bytes[0] = ((bytes[0] as number) & 0x7f) | 0x01;
  return bytes.toString('hex');
}

/** A CA from its certificate (chain) and key; throws when `caProblem` names a problem. */
export async function loadCertificateAuthority(pair: { readonly certPem: string; readonly keyPem: string }): Promise<CertificateAuthority> {
  return createCertificateAuthority(pair);
}

/** `loadCertificateAuthority`, synchronously (the CA reloader installs a renewed CA from a callback). */
export function createCertificateAuthority(pair: { readonly certPem: string; readonly keyPem: string }): CertificateAuthority {
  const problem = caProblem(pair.certPem, pair.keyPem);
  if (problem !== undefined) throw new Error(`The egress CA ${problem}.`);
  const chain = pemCertificates(pair.certPem);
  const caPem = chain[0] as string;
  const caCertificate = new x509.X509Certificate(caPem);
  const keyObject = createPrivateKey(pair.keyPem);
  const algorithm = signingAlgorithmOf(keyObject) as NonNullable<ReturnType<typeof signingAlgorithmOf>>;
  // Non-extractable: the CA key can sign and nothing else, and never leaves this object.
  const signingKey = keyObject.toCryptoKey(algorithm.import, false, ['sign']) as unknown as CryptoKey;
  const caKeyId = caCertificate.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId;
  // Intermediates go with every leaf so clients trusting only the root can build the path; a self-signed root is never sent.
  const intermediates = chain.filter((pem) => {
    const certificate = new X509Certificate(pem);
    return certificate.subject !== certificate.issuer;
  });
  const caNotAfter = caCertificate.notAfter;

  return {
    certificatePem: caPem,
    notAfter: caNotAfter,
    issue: async (dnsName, validityMs) => {
      const now = Date.now();
      const notAfter = new Date(Math.min(now + validityMs, caNotAfter.getTime()));
      const keys = (await webcrypto.subtle.generateKey(LEAF_KEY_ALGORITHM, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
      const leaf = await x509.X509CertificateGenerator.create({
        serialNumber: serialNumber(),
        subject: [{ CN: [dnsName] }],
        issuer: caCertificate.subjectName.toString(),
        notBefore: new Date(now - CLOCK_SKEW_MS),
        notAfter,
        publicKey: keys.publicKey as unknown as x509.PublicKeyType,
        signingKey: signingKey as never,
        signingAlgorithm: algorithm.sign as never,
        extensions: [
          new x509.BasicConstraintsExtension(false, undefined, true),
          new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
          new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth], false),
          new x509.SubjectAlternativeNameExtension([{ type: 'dns', value: dnsName }], false),
          await x509.SubjectKeyIdentifierExtension.create(keys.publicKey as unknown as x509.PublicKeyType),
          ...(caKeyId === undefined ? [] : [new x509.AuthorityKeyIdentifierExtension(caKeyId)]),
        ],
      });
      const pkcs8 = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey));
      const keyPem = createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' }).export({ format: 'pem', type: 'pkcs8' }) as string;
      return { certChainPem: [leaf.toString('pem'), ...intermediates].join('\n') + '\n', keyPem, notAfter };
    },
  };
}

/**
 * The embedded default's CA: `ca.pem` and `ca-key.pem` in `directory`, created on first use (ECDSA
 * P-256, name-constrained to the coffer endpoint domains and `extraDomains`, so even a leaked key
 * cannot impersonate any other site to a client that trusts it). Returns the certificate's path and
 * the CA. Refuses to guess when only one of the two files exists.
 */
export async function ensureLocalCertificateAuthority(directory: string, extraDomains: readonly string[] = []): Promise<{ certFile: string; created: boolean; authority: CertificateAuthority }> {
  const certFile = join(directory, LOCAL_CA_CERT_FILE);
  const keyFile = join(directory, LOCAL_CA_KEY_FILE);
  const hasCert = existsSync(certFile);
  const hasKey = existsSync(keyFile);
  if (hasCert !== hasKey) {
    throw new Error(`The local egress CA in ${directory} is incomplete (${hasCert ? LOCAL_CA_KEY_FILE : LOCAL_CA_CERT_FILE} is missing); remove the directory to have a new CA created, then trust the new ${LOCAL_CA_CERT_FILE}.`);
  }
  const created = !hasCert && createLocalCaFiles(directory, await createLocalCa([...COFFER_ENDPOINT_DOMAINS, ...extraDomains]));
  // The key must stay private even if someone loosened it (mode 0600, like the keyring's files).
  chmodSync(keyFile, 0o600);
  const authority = await loadCertificateAuthority({ certPem: readFileSync(certFile, 'utf8'), keyPem: readFileSync(keyFile, 'utf8') });
  return { certFile, created, authority };
}

/**
 * Writes the pair into a fresh sibling directory, then renames that onto `directory` (absent or
 * empty): the pair appears at once and complete, and of two processes creating it at the same time
 * one wins and the other uses the winner's pair. Returns false when another process won.
 */
function createLocalCaFiles(directory: string, pair: { readonly certPem: string; readonly keyPem: string }): boolean {
  const parent = dirname(directory);
  mkdirSync(parent, { recursive: true });
  const staging = mkdtempSync(join(parent, `.${basename(directory)}-`));
  try {
    chmodSync(staging, 0o700);
    writeFileSync(join(staging, LOCAL_CA_KEY_FILE), pair.keyPem, { mode: 0o600, flag: 'wx' });
    writeFileSync(join(staging, LOCAL_CA_CERT_FILE), pair.certPem, { mode: 0o644, flag: 'wx' });
    try {
      renameSync(staging, directory);
      return true;
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      // Someone else's pair is there now (or the directory holds other files): use what is there.
      if ((code === 'ENOTEMPTY' || code === 'EEXIST') && existsSync(join(directory, LOCAL_CA_CERT_FILE))) return false;
      throw new Error(`Cannot create the local egress CA in ${directory} (${code ?? 'error'}): it must be absent or an empty directory on the same file system as its parent; or configure egress.ca.`, { cause: error });
    }
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}

async function createLocalCa(permittedDomains: readonly string[]): Promise<{ certPem: string; keyPem: string }> {
  const keys = (await webcrypto.subtle.generateKey(LEAF_KEY_ALGORITHM, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const now = Date.now();
  const constraints = new NameConstraints({
    permittedSubtrees: new GeneralSubtrees(permittedDomains.map((domain) => new GeneralSubtree({ base: new GeneralName({ dNSName: domain }) }))),
  });
  const certificate = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serialNumber(),
    name: [{ CN: [`coffer-gateway local egress CA ${randomBytes(4).toString('hex')}`] }, { O: ['coffer-gateway'] }],
    notBefore: new Date(now - CLOCK_SKEW_MS),
    notAfter: new Date(now + LOCAL_CA_VALIDITY_MS),
    keys: keys as never,
    signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' } as never,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey as unknown as x509.PublicKeyType),
      new x509.Extension(id_ce_nameConstraints, true, AsnConvert.serialize(constraints)),
    ],
  });
  const pkcs8 = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey));
  const keyPem = createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' }).export({ format: 'pem', type: 'pkcs8' }) as string;
  return { certPem: certificate.toString('pem') + '\n', keyPem };
}
