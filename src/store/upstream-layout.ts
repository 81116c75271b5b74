/**
 * Where a coffer's state lives in its upstream bucket (docs/FORMAT.md §8). Pure: names in, keys out.
 * User keys are only ever appended after a fixed sub-prefix, never parsed as paths, so no user key can
 * reach another area of the layout.
 */
export const UPLOAD_ID_PATTERN = /^[0-9a-f]{32}$/;

export interface UpstreamLayout {
  /** The manifest: the object exists iff this exists. */
  manifest(key: string): string;
  /** Prefix under which manifests of keys starting with `keyPrefix` live (for listings). */
  manifestPrefix(keyPrefix?: string): string;
  /** The data object of one upload (or single PUT) of `key`. */
  data(key: string, uploadId: string): string;
  dataPrefix(key: string): string;
  /** The upload record of an in-progress upload; listing `uploadRecordsOf(key)` with delimiter '/' finds a key's open uploads. */
  uploadRecord(key: string, uploadId: string): string;
  uploadRecordsOf(key: string): string;
  /** Prefix of the upload records of keys starting with `keyPrefix` (ListMultipartUploads). */
  uploadRecordPrefix(keyPrefix?: string): string;
  /** Inverse of uploadRecord(): key and upload id, or undefined. */
  parseUploadRecord(upstreamKey: string): { key: string; uploadId: string } | undefined;
  partRecordPrefix(uploadId: string, partNumber?: number): string;
  stagedPart(uploadId: string, partNumber: number, attempt: string): string;
  stagedPrefix(uploadId: string): string;
  /** Inverse of manifest(): the user key of a manifest key, or undefined. */
  keyOfManifest(upstreamKey: string): string | undefined;
  /** The coffer key record (FORMAT §8.6). */
  cofferKey(): string;
  /** A sealed coffer record (FORMAT §8.7), e.g. `k/lifecycle`. */
  cofferRecord(kind: 'lifecycle' | 'policy'): string;
  /** The prefix of each area of the layout (FORMAT §8): what the coffer's upstream lifecycle rules are scoped to. */
  areas(): { readonly manifests: string; readonly data: string; readonly uploads: string; readonly parts: string; readonly staged: string; readonly records: string };
}

export function partNumberSegment(partNumber: number): string {
  return String(partNumber).padStart(5, '0');
}

export function upstreamLayout(prefix = ''): UpstreamLayout {
  const m = `${prefix}m/`;
  return {
    manifest: (key) => `${m}${key}`,
    manifestPrefix: (keyPrefix = '') => `${m}${keyPrefix}`,
    data: (key, uploadId) => `${prefix}d/${key}/${uploadId}`,
    dataPrefix: (key) => `${prefix}d/${key}/`,
    uploadRecord: (key, uploadId) => `${prefix}u/${key}/${uploadId}`,
    uploadRecordsOf: (key) => `${prefix}u/${key}/`,
    uploadRecordPrefix: (keyPrefix = '') => `${prefix}u/${keyPrefix}`,
    parseUploadRecord: (upstreamKey) => {
      const u = `${prefix}u/`;
      if (!upstreamKey.startsWith(u)) return undefined;
      const rest = upstreamKey.slice(u.length);
      const slash = rest.lastIndexOf('/');
      const uploadId = rest.slice(slash + 1);
      if (slash < 1 || !UPLOAD_ID_PATTERN.test(uploadId)) return undefined;
      return { key: rest.slice(0, slash), uploadId };
    },
    partRecordPrefix: (uploadId, partNumber) => `${prefix}p/${uploadId}/${partNumber === undefined ? '' : `${partNumberSegment(partNumber)}/`}`,
    stagedPart: (uploadId, partNumber, attempt) => `${prefix}s/${uploadId}/${partNumberSegment(partNumber)}/${attempt}`,
    stagedPrefix: (uploadId) => `${prefix}s/${uploadId}/`,
    keyOfManifest: (upstreamKey) => (upstreamKey.startsWith(m) ? upstreamKey.slice(m.length) : undefined),
    cofferKey: () => `${prefix}k/coffer-key`,
    cofferRecord: (kind) => `${prefix}k/${kind}`,
    areas: () => ({ manifests: m, data: `${prefix}d/`, uploads: `${prefix}u/`, parts: `${prefix}p/`, staged: `${prefix}s/`, records: `${prefix}k/` }),
  };
}
