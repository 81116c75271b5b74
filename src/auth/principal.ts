import { createHash } from 'node:crypto';

/**
 * What a request does to a coffer; the router maps each CDCS operation to one of these. `manage`
 * changes the coffer's settings (its lifecycle configuration): in a write-once coffer, expiry is the
 * one way data goes away, so it is not part of `write`.
 */
export type Action = 'read' | 'write' | 'list' | 'manage';

export const ACTIONS: readonly Action[] = ['read', 'write', 'list', 'manage'];

/** Permission on one coffer (or every coffer with `'*'`). */
export interface Grant {
  readonly coffer: string;
  readonly actions: readonly (Action | '*')[];
}

/**
 * Who a request was authenticated as. It carries no secret (no SecretKey, no token), so it may be
 * logged; `sessionName` is already safe for an STS RoleSessionName.
 */
export interface Principal {
  readonly method: 'cos-signature' | 'sigv4' | 'jwt';
  /** SecretId for COS signatures (the access key id for SigV4), the `sub` claim for JWTs. */
  readonly id: string;
  readonly grants: readonly Grant[];
  /** Sanitised for STS RoleSessionName: only `[\w+=,.@-]`, 2..64 characters. */
  readonly sessionName: string;
  /**
   * For COS signatures: whether the signature covered `/<Coffer>/<Key>` (`full`) or only `/<Key>`
   * (`key-only`: virtual-hosted, the signed host naming the coffer; or path-style with
   * `acceptKeyOnlyPath` from an access key whose grants name that one coffer — see
   * cos-authenticator.ts `candidatePaths`).
   */
  readonly signedPath?: 'full' | 'key-only';
}

const SESSION_NAME_MAX = 64;
const SESSION_NAME_MIN = 2;
const INVALID_SESSION_CHARS = /[^\w+=,.@-]/g;

/**
 * Turns any identity into a valid STS RoleSessionName. Invalid characters become `-`. A name that
 * had to be shortened gets a hash suffix so that two long identities sharing a prefix do not end up
 * with the same session name in the audit trail (the name is for audit only, never for authorization).
 */
export function toSessionName(raw: string): string {
  let name = raw.replace(INVALID_SESSION_CHARS, '-');
  if (name.length > SESSION_NAME_MAX) {
    const digest = createHash('sha256').update(raw, 'utf8').digest('hex').slice(0, 8);
    name = `${name.slice(0, SESSION_NAME_MAX - digest.length - 1)}-${digest}`;
  }
  while (name.length < SESSION_NAME_MIN) name += '_';
  return name;
}

/**
 * Validates grants coming from configuration. Thrown errors are plain `Error`s: this runs at
 * start-up, and a bad grant must stop the gateway rather than silently grant or deny.
 */
export function validateGrants(grants: unknown, where: string): readonly Grant[] {
  if (!Array.isArray(grants)) throw new Error(`${where}: grants must be an array`);
  return Object.freeze(
    grants.map((grant: unknown, index) => {
      const at = `${where}: grants[${index}]`;
      if (typeof grant !== 'object' || grant === null) throw new Error(`${at} must be an object`);
      const { coffer, actions } = grant as { coffer?: unknown; actions?: unknown };
      if (typeof coffer !== 'string' || coffer.length === 0) throw new Error(`${at}.coffer must be a non-empty string`);
      if (!Array.isArray(actions) || actions.length === 0) throw new Error(`${at}.actions must be a non-empty array`);
      for (const action of actions) {
        if (action !== '*' && !ACTIONS.includes(action as Action)) {
          throw new Error(`${at}.actions contains an unknown action ${JSON.stringify(action)}`);
        }
      }
      return Object.freeze({ coffer, actions: Object.freeze([...(actions as (Action | '*')[])]) });
    }),
  );
}
