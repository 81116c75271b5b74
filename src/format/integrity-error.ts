/**
 * Raised when stored bytes fail any check of the at-rest format. Decryption never yields a byte
 * of a segment, part or object that failed, so callers can rely on "error ⇒ no wrong plaintext".
 * `reason` is a stable machine word for logs and metrics; the message never contains key material.
 */
export type IntegrityFailure =
  | 'bad-magic'
  | 'unsupported-version'
  | 'malformed'
  | 'header-mismatch'
  | 'commitment-mismatch'
  | 'segment-authentication-failed'
  | 'truncated'
  | 'trailing-data'
  | 'length-mismatch'
  | 'manifest-authentication-failed'
  | 'data-object-missing'
  | 'envelope-rejected'
  | 'part-record-rejected'
  | 'upload-record-rejected'
  | 'listing-summary-rejected'
  | 'coffer-key-rejected'
  | 'manifest-conflict'
  | 'coffer-record-rejected';

export class IntegrityError extends Error {
  readonly reason: IntegrityFailure;

  constructor(reason: IntegrityFailure, message: string) {
    super(message);
    this.name = 'IntegrityError';
    this.reason = reason;
  }
}
