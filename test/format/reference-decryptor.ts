/**
 * A second decryptor, written from docs/FORMAT.md alone with Node's crypto primitives and none of
 * src/. If it and the gateway disagree on a vector, either the code or the document is wrong.
 */
import { createDecipheriv, createHmac, hkdfSync, timingSafeEqual } from 'node:crypto';

function hkdf(ikm: Buffer, salt: Buffer, info: Buffer, length: number): Buffer {
  return Buffer.from(hkdfSync('sha256', ikm, salt, info, length));
}

/** §3–§5: decrypts one part ciphertext (header first). Throws on any failure. */
export function referenceDecryptPart(dk: Buffer, part: Buffer): { plaintext: Buffer; objectId: Buffer; partNumber: number; salt: Buffer } {
  if (part.length < 116) throw new Error('too short');
  if (part.subarray(0, 4).toString('latin1') !== 'CFGP' || part[4] !== 1 || part[5] !== 16 || part[6] !== 0 || part[7] !== 0) throw new Error('bad header');
  const objectId = part.subarray(8, 24);
  const partNumber = part.readUInt32BE(24);
  const p = Number(part.readBigUInt64BE(28));
  const salt = part.subarray(36, 68);
  const okm = hkdf(dk, salt, Buffer.concat([Buffer.from('coffer-gateway/v1 part key'), part.subarray(0, 36)]), 64);
  if (!timingSafeEqual(okm.subarray(32), part.subarray(68, 100))) throw new Error('commitment');
  const n = Math.max(1, Math.ceil(p / 65536));
  if (part.length !== 100 + p + 16 * n) throw new Error('length');
  const out: Buffer[] = [];
  let at = 100;
  for (let i = 0; i < n; i += 1) {
    const len = i < n - 1 ? 65536 : p - 65536 * (n - 1);
    const nonce = Buffer.alloc(12);
    nonce.writeUInt32BE(i, 7);
    nonce[11] = i === n - 1 ? 1 : 0;
    const d = createDecipheriv('aes-256-gcm', okm.subarray(0, 32), nonce);
    d.setAuthTag(part.subarray(at + len, at + len + 16));
    out.push(d.update(part.subarray(at, at + len)), d.final());
    at += len + 16;
  }
  return { plaintext: Buffer.concat(out), objectId: Buffer.from(objectId), partNumber, salt: Buffer.from(salt) };
}

export interface ReferenceManifest {
  envelope: { provider: string; keyId: string; wrappedKey: string; context: Record<string, string> };
  objectId: Buffer;
  kind: number;
  plaintextSize: number;
  ciphertextSize: number;
  attributes: unknown;
  parts: Array<{ partNumber: number; plaintextLength: number; offset: number; salt: Buffer; md5: Buffer }>;
}

/** §6: parses and authenticates a manifest. */
export function referenceOpenManifest(dk: Buffer, m: Buffer): ReferenceManifest {
  if (m.subarray(0, 8).toString('hex') !== Buffer.from('CFGM\x01\x00\x00\x00', 'latin1').toString('hex')) throw new Error('bad magic');
  const envLen = m.readUInt32BE(8);
  const envelope = JSON.parse(m.subarray(12, 12 + envLen).toString('utf8'));
  const bodyLen = m.readUInt32BE(12 + envLen);
  if (m.length !== 16 + envLen + bodyLen + 32) throw new Error('length');
  const body = m.subarray(16 + envLen, 16 + envLen + bodyLen);
  const objectId = body.subarray(0, 16);
  const macKey = hkdf(dk, Buffer.from(objectId), Buffer.from('coffer-gateway/v1 manifest mac'), 32);
  const lenBytes = Buffer.alloc(4);
  lenBytes.writeUInt32BE(bodyLen);
  const mac = createHmac('sha256', macKey).update(Buffer.from('CFGM\x01\x00\x00\x00', 'latin1')).update(lenBytes).update(body).digest();
  if (!timingSafeEqual(mac, m.subarray(m.length - 32))) throw new Error('mac');
  const a = body.readUInt32BE(40);
  const k = body.readUInt32BE(36);
  const parts = [];
  for (let i = 0; i < k; i += 1) {
    const at = 44 + a + 68 * i;
    parts.push({
      partNumber: body.readUInt32BE(at),
      plaintextLength: Number(body.readBigUInt64BE(at + 4)),
      offset: Number(body.readBigUInt64BE(at + 12)),
      salt: Buffer.from(body.subarray(at + 20, at + 52)),
      md5: Buffer.from(body.subarray(at + 52, at + 68)),
    });
  }
  return {
    envelope,
    objectId: Buffer.from(objectId),
    kind: body[16] as number,
    plaintextSize: Number(body.readBigUInt64BE(20)),
    ciphertextSize: Number(body.readBigUInt64BE(28)),
    attributes: JSON.parse(body.subarray(44, 44 + a).toString('utf8')),
    parts,
  };
}

/** §6–§7: the whole object's plaintext from its data object, checking every part against the manifest. */
export function referenceDecryptObject(dk: Buffer, manifest: ReferenceManifest, data: Buffer): Buffer {
  if (data.length !== manifest.ciphertextSize) throw new Error('data object length');
  const out: Buffer[] = [];
  for (const entry of manifest.parts) {
    const n = Math.max(1, Math.ceil(entry.plaintextLength / 65536));
    const part = data.subarray(entry.offset, entry.offset + 100 + entry.plaintextLength + 16 * n);
    const opened = referenceDecryptPart(dk, part);
    if (!opened.objectId.equals(manifest.objectId) || opened.partNumber !== entry.partNumber || !opened.salt.equals(entry.salt)) {
      throw new Error('part does not match manifest');
    }
    out.push(opened.plaintext);
  }
  return Buffer.concat(out);
}
