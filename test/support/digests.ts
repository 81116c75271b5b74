/** The digests tests compare bytes by, defined once. */
import { createHash } from 'node:crypto';

/** SHA-256, hex: how tests compare whole objects without printing megabytes on a mismatch. */
export const sha256 = (data: Uint8Array | string): string => createHash('sha256').update(data).digest('hex');

/** MD5, hex. */
export const md5Hex = (data: Uint8Array | string): string => createHash('md5').update(data).digest('hex');

/** The quoted MD5 hex an S3/COS ETag of a single-part upload (or of one part) is. */
export const md5Etag = (data: Uint8Array | string): string => `"${md5Hex(data)}"`;
