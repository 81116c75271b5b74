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
  uploadRecord(uploadId: string): string;
  uploadRecordPrefix(): string;
  partRecordPrefix(uploadId: string, partNumber?: number): string;
  stagedPart(uploadId: string, partNumber: number, attempt: string): string;
  stagedPrefix(uploadId: string): string;
  /** Inverse of manifest(): the user key of a manifest key, or undefined. */
  keyOfManifest(upstreamKey: string): string | undefined;
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
    uploadRecord: (uploadId) => `${prefix}u/${uploadId}`,
    uploadRecordPrefix: () => `${prefix}u/`,
    partRecordPrefix: (uploadId, partNumber) => `${prefix}p/${uploadId}/${partNumber === undefined ? '' : `${partNumberSegment(partNumber)}/`}`,
    stagedPart: (uploadId, partNumber, attempt) => `${prefix}s/${uploadId}/${partNumberSegment(partNumber)}/${attempt}`,
    stagedPrefix: (uploadId) => `${prefix}s/${uploadId}/`,
    keyOfManifest: (upstreamKey) => (upstreamKey.startsWith(m) ? upstreamKey.slice(m.length) : undefined),
  };
}
