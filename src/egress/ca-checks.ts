/**
 * What makes a certificate and key usable as the egress CA, with Node's crypto only: the configuration
 * loader checks a configured CA with this (without loading the certificate library), and
 * certificate-authority.ts signs with the algorithm chosen here.
 */
import { X509Certificate, createPrivateKey, type KeyObject, type webcrypto } from 'node:crypto';

/** What signs with a CA key of this type; undefined when the type is not supported. */
export function signingAlgorithmOf(key: KeyObject): { import: webcrypto.RsaHashedImportParams | webcrypto.EcKeyImportParams; sign: webcrypto.Algorithm | webcrypto.EcdsaParams } | undefined {
  const details = key.asymmetricKeyDetails;
  if (key.asymmetricKeyType === 'ec') {
    if (details?.namedCurve === 'prime256v1') return { import: { name: 'ECDSA', namedCurve: 'P-256' }, sign: { name: 'ECDSA', hash: 'SHA-256' } as webcrypto.EcdsaParams };
    if (details?.namedCurve === 'secp384r1') return { import: { name: 'ECDSA', namedCurve: 'P-384' }, sign: { name: 'ECDSA', hash: 'SHA-384' } as webcrypto.EcdsaParams };
    return undefined;
  }
  if (key.asymmetricKeyType === 'rsa' && (details?.modulusLength ?? 0) >= 2048) {
    return { import: { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' }, sign: { name: 'RSASSA-PKCS1-v1_5' } };
  }
  return undefined;
}

/**
 * Why `certPem`/`keyPem` cannot be an egress CA, or undefined when they can: the first certificate
 * must be a CA allowed to sign certificates, currently valid, and the key must be its key, of a
 * supported type (ECDSA P-256/P-384, RSA ≥ 2048). Messages never quote the files.
 */
export function caProblem(certPem: string, keyPem: string, now = new Date()): string | undefined {
  let certificate: X509Certificate;
  let key: KeyObject;
  try {
    certificate = new X509Certificate(certPem);
    key = createPrivateKey(keyPem);
  } catch {
    return 'is not a PEM certificate with its unencrypted PEM private key';
  }
  // OpenSSL's X509_check_ca: basicConstraints CA:TRUE, and keyCertSign when a keyUsage is present.
  if (!certificate.ca) return 'is not a CA certificate allowed to sign certificates (basicConstraints CA:TRUE; keyUsage, if present, with keyCertSign)';
  if (!certificate.checkPrivateKey(key)) return 'does not match the key in keyFile';
  if (signingAlgorithmOf(key) === undefined) return 'has a key of an unsupported type (use ECDSA P-256 or P-384, or RSA of at least 2048 bits)';
  if (new Date(certificate.validTo).getTime() <= now.getTime()) return 'has expired';
  if (new Date(certificate.validFrom).getTime() > now.getTime()) return 'is not valid yet';
  return undefined;
}
