/**
 * Part records (docs/FORMAT.md §8.2): an empty upstream object per completed part upload whose *name*
 * is the record, so one ListObjectsV2 page returns up to 1000 records without a GET each.
 *
 * Format v2: the name is `<NNNNN>/<base64url(sealed record)>`, the record sealed (sealed-record.ts)
 * under a key derived from the upload's data key and bound to coffer, object key, upload id and part
 * number. Nothing in the name is readable without the key (no MD5, no ETag), and a record that was
 * planted, altered, or copied from another upload or part number does not open. A name under the
 * record prefix that does not open is an integrity failure, never skipped: skipping could change
 * which upload of a part an object is completed with.
 */
import { IntegrityError } from '../format/integrity-error';
import { DIGEST_BYTES, type ChecksumAlgorithm } from '../http/object-checksum';
import { bindingOf, deriveRecordKey, openRecord, sealRecord } from '../format/sealed-record';
import { partNumberSegment } from './upstream-layout';

export type PartStorage = 'direct' | 'staged';

export interface PartRecord {
  readonly partNumber: number;
  /** The part upload's salt (32 bytes): also its attempt id and the staged object's name. */
  readonly salt: Buffer;
  readonly storage: PartStorage;
  readonly plaintextLength: number;
  /** MD5 of the plaintext: the CDCS part ETag. */
  readonly md5: Buffer;
  /** ETag the upstream gave the direct part (quotes stripped); undefined for staged parts. */
  readonly upstreamEtag?: string;
  /** When the gateway finished storing the part (ms since epoch). */
  readonly completedAt: number;
  /**
   * The part's S3 additional checksum over its plaintext (base64): the one the client sent and the
   * gateway verified, or the one the gateway computed because the upload declared an algorithm.
   * Absent for parts uploaded without one (every CDCS part).
   */
  readonly checksum?: { readonly algorithm: ChecksumAlgorithm; readonly value: string };
}

/** Where a part record belongs, and the key that seals it (derived from the upload's data key). */
export interface PartRecordScope {
  readonly coffer: string;
  readonly key: string;
  readonly uploadId: string;
  readonly recordKey: Buffer;
}

export const PART_RECORD_LABEL = 'coffer-gateway/v2 part record';
// Sealed records are 66..354 bytes plus 28 (≤ 510 base64url characters).
const NAME_PATTERN = /^(\d{5})\/([A-Za-z0-9_-]{40,510})$/;
const FIXED_SIZE = 32 + 1 + 8 + 16 + 8 + 1; // salt, kind, length, md5, time, etag length
const MAX_ETAG_BYTES = 255;

/** HKDF(DK, salt = objectId, info = "coffer-gateway/v2 part record"): one key for all records of an upload. */
export function partRecordKey(dataKey: Buffer, uploadId: string): Buffer {
  return deriveRecordKey(dataKey, Buffer.from(uploadId, 'hex'), PART_RECORD_LABEL);
}

function partNumberBytes(partNumber: number): Buffer {
  const out = Buffer.alloc(4);
  out.writeUInt32BE(partNumber);
  return out;
}

function binding(scope: PartRecordScope, partNumber: number): Buffer {
  return bindingOf(PART_RECORD_LABEL, [scope.coffer, scope.key, Buffer.from(scope.uploadId, 'hex'), partNumberBytes(partNumber)]);
}

export function normaliseEtag(etag: string): string {
  return etag.replace(/^W\//, '').replace(/^"|"$/g, '');
}

/** Seals a record into its name (relative to `p/<uploadId>/`). */
export function encodePartRecordName(record: PartRecord, scope: PartRecordScope, nonce?: Buffer): string {
  const etag = Buffer.from(record.storage === 'direct' ? normaliseEtag(record.upstreamEtag ?? '') : '', 'utf8');
  if (record.storage === 'direct' && etag.length === 0) throw new RangeError('a direct part record needs the upstream ETag');
  if (etag.length > MAX_ETAG_BYTES) throw new RangeError('upstream ETag too long for a part record');
  if (record.salt.length !== 32 || record.md5.length !== 16) throw new RangeError('bad salt or md5');
  const checksum = checksumBytes(record.checksum);
  const plaintext = Buffer.alloc(FIXED_SIZE + etag.length + checksum.length);
  record.salt.copy(plaintext, 0);
  plaintext[32] = record.storage === 'direct' ? 1 : 2;
  plaintext.writeBigUInt64BE(BigInt(record.plaintextLength), 33);
  record.md5.copy(plaintext, 41);
  plaintext.writeBigUInt64BE(BigInt(record.completedAt), 57);
  plaintext[65] = etag.length;
  etag.copy(plaintext, FIXED_SIZE);
  checksum.copy(plaintext, FIXED_SIZE + etag.length);
  const sealed = sealRecord(scope.recordKey, binding(scope, record.partNumber), plaintext, nonce);
  return `${partNumberSegment(record.partNumber)}/${sealed.toString('base64url')}`;
}

/**
 * Opens a record name (the part after `p/<uploadId>/`). Throws IntegrityError('part-record-rejected')
 * for anything that is not a record this upload wrote for this part number.
 */
export function decodePartRecordName(name: string, scope: PartRecordScope): PartRecord {
  const match = NAME_PATTERN.exec(name);
  const partNumber = match === null ? 0 : Number(match[1]);
  if (match === null || partNumber < 1 || partNumber > 10000) throw new IntegrityError('part-record-rejected', 'a part record name is malformed');
  const plaintext = openRecord(scope.recordKey, binding(scope, partNumber), Buffer.from(match[2] as string, 'base64url'), 'part-record-rejected', `part record ${partNumber}`);
  const kind = plaintext[32];
  const etagLength = plaintext[65] ?? 0;
  if (plaintext.length < FIXED_SIZE + etagLength || (kind !== 1 && kind !== 2) || (kind === 1) !== etagLength > 0) {
    throw new IntegrityError('part-record-rejected', `part record ${partNumber} is malformed`);
  }
  const checksum = decodeChecksum(plaintext.subarray(FIXED_SIZE + etagLength), partNumber);
  return {
    partNumber,
    salt: Buffer.from(plaintext.subarray(0, 32)),
    storage: kind === 1 ? 'direct' : 'staged',
    plaintextLength: Number(plaintext.readBigUInt64BE(33)),
    md5: Buffer.from(plaintext.subarray(41, 57)),
    upstreamEtag: kind === 1 ? plaintext.subarray(FIXED_SIZE, FIXED_SIZE + etagLength).toString('utf8') : undefined,
    completedAt: Number(plaintext.readBigUInt64BE(57)),
    ...(checksum === undefined ? {} : { checksum }),
  };
}

/** The byte naming a checksum algorithm in a record (part of the format: docs/FORMAT.md §8.2). */
const CHECKSUM_IDS: Readonly<Record<ChecksumAlgorithm, number>> = { CRC32: 1, CRC32C: 2, CRC64NVME: 3, SHA1: 4, SHA256: 5 };
const ALGORITHM_OF_ID = new Map(Object.entries(CHECKSUM_IDS).map(([algorithm, id]) => [id, algorithm as ChecksumAlgorithm]));

/** The optional checksum tail of a record: one byte naming the algorithm, then the binary digest. */
function checksumBytes(checksum: PartRecord['checksum']): Buffer {
  if (checksum === undefined) return Buffer.alloc(0);
  const digest = Buffer.from(checksum.value, 'base64');
  if (digest.length !== DIGEST_BYTES[checksum.algorithm]) throw new RangeError('checksum of the wrong length for its algorithm');
  return Buffer.concat([Buffer.from([CHECKSUM_IDS[checksum.algorithm]]), digest]);
}

function decodeChecksum(tail: Buffer, partNumber: number): PartRecord['checksum'] {
  if (tail.length === 0) return undefined;
  const algorithm = ALGORITHM_OF_ID.get(tail[0] as number);
  if (algorithm === undefined || tail.length !== 1 + DIGEST_BYTES[algorithm]) throw new IntegrityError('part-record-rejected', `part record ${partNumber} has a malformed checksum`);
  return { algorithm, value: tail.subarray(1).toString('base64') };
}

/** Newest first: by completion time, then salt (a total order every replica agrees on). */
export function newestFirst(a: PartRecord, b: PartRecord): number {
  return b.completedAt - a.completedAt || Buffer.compare(b.salt, a.salt);
}

/**
 * Records of one part number that a newer record of it supersedes: every one but the newest. They can
 * never again be the current upload the client names (its last UploadPart answered with the newest),
 * so their staged bytes are dead weight until Complete/Abort.
 */
export function supersededRecords(records: readonly PartRecord[]): PartRecord[] {
  return [...records].sort(newestFirst).slice(1);
}

/**
 * Picks the current upload of every part number: the most recent record (by completion time, then
 * salt) whose bytes are still in place — for a direct part, the upstream part's ETag equals the
 * record's; a staged part's object is removed only after its record (superseded uploads, Complete,
 * Abort), so its record suffices.
 * A record whose bytes were overwritten by a later upload (or whose upload crashed after the bytes
 * landed but before its record was written) is skipped, so a record and its bytes always agree.
 */
export function currentParts(records: readonly PartRecord[], upstreamEtags: ReadonlyMap<number, string>): Map<number, PartRecord> {
  const byNumber = new Map<number, PartRecord[]>();
  for (const record of records) {
    const list = byNumber.get(record.partNumber) ?? [];
    list.push(record);
    byNumber.set(record.partNumber, list);
  }
  const current = new Map<number, PartRecord>();
  for (const [partNumber, list] of byNumber) {
    list.sort(newestFirst);
    const chosen = list.find((record) => {
      if (record.storage === 'staged') return true;
      const etag = upstreamEtags.get(partNumber);
      return etag !== undefined && normaliseEtag(etag) === normaliseEtag(record.upstreamEtag ?? '');
    });
    if (chosen !== undefined) current.set(partNumber, chosen);
  }
  return current;
}
