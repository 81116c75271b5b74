/**
 * A second decryptor, written from docs/FORMAT.md alone with Node's crypto primitives and none of
 * src/. If it and the gateway disagree on a vector, either the code or the document is wrong.
 * Format v1 (§6 v1 manifest) and v2 (§6 manifest, §11 sealed records: manifest body, listing
 * summary, upload record, part record, coffer key record).
 */
import { createDecipheriv, createHash, createHmac, hkdfSync, timingSafeEqual } from 'node:crypto';

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
    // §6.4: optional for readers; this one checks each part's plaintext against its recorded MD5.
    if (!createHash('md5').update(opened.plaintext).digest().equals(entry.md5)) throw new Error('part MD5 does not match manifest');
    out.push(opened.plaintext);
  }
  return Buffer.concat(out);
}

/** §11: u16 length ‖ bytes for each field, after the label. */
function binding(label: string, fields: Array<string | Buffer>): Buffer {
  const out: Buffer[] = [Buffer.from(label, 'ascii')];
  for (const field of fields) {
    const bytes = typeof field === 'string' ? Buffer.from(field, 'utf8') : field;
    const length = Buffer.alloc(2);
    length.writeUInt16BE(bytes.length);
    out.push(length, bytes);
  }
  return Buffer.concat(out);
}

/** §11: opens nonce(12) ‖ ciphertext ‖ tag(16) under HKDF(root, salt, label) with associated data `aad`. */
function openSealed(root: Buffer, salt: Buffer, label: string, aad: Buffer, sealed: Buffer): Buffer {
  const key = hkdf(root, salt, Buffer.from(label, 'ascii'), 32);
  const d = createDecipheriv('aes-256-gcm', key, sealed.subarray(0, 12));
  d.setAAD(aad);
  d.setAuthTag(sealed.subarray(sealed.length - 16));
  return Buffer.concat([d.update(sealed.subarray(12, sealed.length - 16)), d.final()]);
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
}

/** §6 (v2): parses a v2 manifest, authenticates and decrypts its body (bound to coffer and key). */
export function referenceOpenManifestV2(dk: Buffer, coffer: string, key: string, m: Buffer): ReferenceManifest & { summary: Buffer } {
  const header = Buffer.from('CFGM\x02\x00\x00\x00', 'latin1');
  if (!m.subarray(0, 8).equals(header)) throw new Error('bad magic');
  const envLen = m.readUInt32BE(8);
  if (envLen > 16384) throw new Error('envelope too large');
  const envelope = JSON.parse(m.subarray(12, 12 + envLen).toString('utf8'));
  let at = 12 + envLen;
  const objectId = m.subarray(at, at + 16);
  at += 16;
  const summaryLen = m.readUInt32BE(at);
  if (summaryLen > 1024) throw new Error('summary too large');
  const summary = m.subarray(at + 4, at + 4 + summaryLen);
  at += 4 + summaryLen;
  const sealedLen = m.readUInt32BE(at);
  at += 4;
  if (at + sealedLen !== m.length) throw new Error('length');
  const aad = Buffer.concat([header, binding('coffer-gateway/v2 manifest', [coffer, key, objectId])]);
  const body = openSealed(dk, objectId, 'coffer-gateway/v2 manifest', aad, m.subarray(at));
  if (!body.subarray(0, 16).equals(objectId)) throw new Error('object id');
  const parsed = parseBody(body);
  return { envelope, ...parsed, summary: Buffer.from(summary) };
}

/** §6 body (both versions). */
function parseBody(body: Buffer): Omit<ReferenceManifest, 'envelope'> {
  const a = body.readUInt32BE(40);
  const k = body.readUInt32BE(36);
  if (body.length !== 44 + a + 68 * k) throw new Error('body length');
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
    objectId: Buffer.from(body.subarray(0, 16)),
    kind: body[16] as number,
    plaintextSize: Number(body.readBigUInt64BE(20)),
    ciphertextSize: Number(body.readBigUInt64BE(28)),
    attributes: JSON.parse(body.subarray(44, 44 + a).toString('utf8')),
    parts,
  };
}

/** §6.2: the listing summary of a v2 manifest, under the coffer key. */
export function referenceOpenListingSummary(cofferKey: Buffer, coffer: string, key: string, objectId: Buffer, summary: Buffer): { size: number; etag: string; created: string } {
  const label = 'coffer-gateway/v2 listing summary';
  return JSON.parse(openSealed(cofferKey, objectId, label, binding(label, [coffer, key, objectId]), summary).toString('utf8'));
}

/** §8.1: a v2 upload record. */
export function referenceOpenUploadRecord(
  dk: Buffer,
  coffer: string,
  key: string,
  uploadId: string,
  record: Buffer,
): { envelope: unknown; upstreamUploadId: string; contentType?: string; metadata: Record<string, string>; initiated: string } {
  const value = JSON.parse(record.toString('utf8'));
  if (value.v !== 2) throw new Error('version');
  const label = 'coffer-gateway/v2 upload record';
  const id = Buffer.from(uploadId, 'hex');
  const secret = JSON.parse(openSealed(dk, id, label, binding(label, [coffer, key, id]), Buffer.from(value.sealed, 'base64')).toString('utf8'));
  return { envelope: value.envelope, ...secret };
}

/** §8.2: a v2 part record name (the part after `p/<uploadId>/`). */
export function referenceOpenPartRecord(
  dk: Buffer,
  coffer: string,
  key: string,
  uploadId: string,
  name: string,
): { partNumber: number; salt: Buffer; kind: 'd' | 's'; plaintextLength: number; md5: Buffer; completedAt: number; upstreamEtag: string } {
  const [number, sealed] = name.split('/') as [string, string];
  const partNumber = Number(number);
  const label = 'coffer-gateway/v2 part record';
  const id = Buffer.from(uploadId, 'hex');
  const r = openSealed(dk, id, label, binding(label, [coffer, key, id, u32(partNumber)]), Buffer.from(sealed, 'base64url'));
  const etagLength = r[65] as number;
  if (r.length !== 66 + etagLength) throw new Error('record length');
  return {
    partNumber,
    salt: r.subarray(0, 32),
    kind: r[32] === 1 ? 'd' : 's',
    plaintextLength: Number(r.readBigUInt64BE(33)),
    md5: r.subarray(41, 57),
    completedAt: Number(r.readBigUInt64BE(57)),
    upstreamEtag: r.subarray(66).toString('utf8'),
  };
}

/** §6: the ETag a client sees, from the manifest's part MD5s. */
export function referenceEtag(manifest: ReferenceManifest): string {
  if (manifest.kind === 1) return `"${(manifest.parts[0] as { md5: Buffer }).md5.toString('hex')}"`;
  const h = createHash('md5');
  for (const part of manifest.parts) h.update(part.md5);
  return `"${h.digest('hex')}-${manifest.parts.length}"`;
}
