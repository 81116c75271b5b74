/**
 * Self-signed certificates for TLS tests, made by the `openssl` command line (node:crypto cannot create
 * X.509 certificates). No fallback and no skip: without openssl these tests fail, and CI installs it
 * (Debian package `openssl`).
 */
import { X509Certificate } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestCertificate {
  readonly certPem: string;
  readonly keyPem: string;
  /** SHA-256 fingerprint as Node prints it (`AB:CD:…`), what `getPeerCertificate().fingerprint256` returns. */
  readonly fingerprint256: string;
  /** notAfter in unix seconds. */
  readonly notAfterSeconds: number;
}

/** A P-256 self-signed certificate for `commonName` (also its SAN, with 127.0.0.1), valid `days` days. */
export function makeCertificate(commonName: string, days: number): TestCertificate {
  const directory = mkdtempSync(join(tmpdir(), 'coffer-cert-'));
  try {
    const certFile = join(directory, 'cert.pem');
    const keyFile = join(directory, 'key.pem');
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-keyout',
        keyFile,
        '-out',
        certFile,
        '-days',
        String(days),
        '-subj',
        `/CN=${commonName}`,
        '-addext',
        `subjectAltName=DNS:${commonName},IP:127.0.0.1`,
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    const certPem = readFileSync(certFile, 'utf8');
    const certificate = new X509Certificate(certPem);
    return { certPem, keyPem: readFileSync(keyFile, 'utf8'), fingerprint256: certificate.fingerprint256, notAfterSeconds: Math.floor(new Date(certificate.validTo).getTime() / 1000) };
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
}
