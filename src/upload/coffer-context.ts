import type { KeyProvider } from '../keys/key-provider';
import type { UploadStore } from './ports';
import type { UpstreamLayout } from './upstream-layout';

/** Everything the upload and read logic needs about one coffer, resolved per request (role credentials included). */
export interface CofferContext {
  readonly coffer: string;
  readonly store: UploadStore;
  readonly layout: UpstreamLayout;
  readonly keys: KeyProvider;
  /** The upstream's minimum non-last part size, in stored (ciphertext) bytes. */
  readonly minPartSize: number;
  /** The upstream's maximum part size, in stored bytes. */
  readonly maxPartSize: number;
}

/** KMS encryption context of an object: the names, and nothing else (docs/FORMAT.md §2). */
export function encryptionContext(coffer: string, key: string): Record<string, string> {
  return { coffer, key };
}
