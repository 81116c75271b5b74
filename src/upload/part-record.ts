/**
 * Part records (docs/FORMAT.md §8.2): an empty upstream object per completed part upload whose *name*
 * is the record, so one ListObjectsV2 page returns up to 1000 records without a GET each.
 * Name: `<NNNNN>/<salt b64url>.<d|s>.<plaintext length>.<md5 hex>.<upstream etag b64url or ->.<ms>`.
 */
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
}

const RECORD_PATTERN = /^(\d{5})\/([A-Za-z0-9_-]{43})\.([ds])\.(\d{1,13})\.([0-9a-f]{32})\.([A-Za-z0-9_-]+|-)\.(\d{1,15})$/;

export function normaliseEtag(etag: string): string {
  return etag.replace(/^W\//, '').replace(/^"|"$/g, '');
}

export function encodePartRecordName(record: PartRecord): string {
  const etag = record.storage === 'direct' ? Buffer.from(normaliseEtag(record.upstreamEtag ?? ''), 'utf8').toString('base64url') : '-';
  if (record.storage === 'direct' && etag.length === 0) throw new RangeError('a direct part record needs the upstream ETag');
  return [
    `${partNumberSegment(record.partNumber)}/${record.salt.toString('base64url')}`,
    record.storage === 'direct' ? 'd' : 's',
    String(record.plaintextLength),
    record.md5.toString('hex'),
    etag,
    String(record.completedAt),
  ].join('.');
}

/** Parses a record name (the part after `p/<uploadId>/`); undefined for anything that is not one. */
export function decodePartRecordName(name: string): PartRecord | undefined {
  const match = RECORD_PATTERN.exec(name);
  if (match === null) return undefined;
  const [, number, salt, storage, length, md5, etag, completedAt] = match as unknown as [string, string, string, string, string, string, string, string];
  const partNumber = Number(number);
  if (partNumber < 1 || partNumber > 10000) return undefined;
  if ((storage === 'd') === (etag === '-')) return undefined;
  return {
    partNumber,
    salt: Buffer.from(salt, 'base64url'),
    storage: storage === 'd' ? 'direct' : 'staged',
    plaintextLength: Number(length),
    md5: Buffer.from(md5, 'hex'),
    upstreamEtag: storage === 'd' ? Buffer.from(etag, 'base64url').toString('utf8') : undefined,
    completedAt: Number(completedAt),
  };
}

/**
 * Picks the current upload of every part number: the most recent record (by completion time, then
 * salt) whose bytes are still in place — for a direct part, the upstream part's ETag equals the
 * record's; a staged part's object is never removed before Complete/Abort, so its record suffices.
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
    list.sort((a, b) => b.completedAt - a.completedAt || Buffer.compare(b.salt, a.salt));
    const chosen = list.find((record) => {
      if (record.storage === 'staged') return true;
      const etag = upstreamEtags.get(partNumber);
      return etag !== undefined && normaliseEtag(etag) === normaliseEtag(record.upstreamEtag ?? '');
    });
    if (chosen !== undefined) current.set(partNumber, chosen);
  }
  return current;
}
