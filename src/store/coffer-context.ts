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
  /**
   * The pipeline's assume-role stage: resolves this session's role credentials or fails with
   * AssumeRoleFailed. Run before every operation, so a role that cannot be assumed is refused before
   * a body is read, even when the upload record and data key are cached and nothing else would have
   * asked for credentials until the part was already streaming.
   */
  readonly assumeRole?: () => Promise<void>;
  /**
   * Whether an object completed at `created` (its manifest's sealed completion time) has expired under
   * the coffer's lifecycle configuration (store/coffer-lifecycle.ts). Absent: objects never expire.
   */
  readonly expiry?: (created: string) => Promise<boolean>;
  /**
   * Write-once (the default, and CDCS's contract): a key is created at most once and never deleted by
   * a client. `false` (coffers.<name>.writeOnce: false): PutObject and Complete replace an existing
   * object and DeleteObject removes it (src/store/write-once.ts, docs/FORMAT.md §8).
   */
  readonly writeOnce?: boolean;
}

/** Whether the coffer allows overwrite and delete. */
export function isMutable(context: Pick<CofferContext, 'writeOnce'>): boolean {
  return context.writeOnce === false;
}

/** KMS encryption context of an object: the names, and nothing else (docs/FORMAT.md §2). */
export function encryptionContext(coffer: string, key: string): Record<string, string> {
  return { coffer, key };
}
