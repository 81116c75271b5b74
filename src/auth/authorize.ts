import { GatewayError } from '../errors/gateway-error';
import type { Action, Grant, Principal } from './principal';

/** True when one of the grants allows `action` on `coffer`; only exact names and `'*'` match (no patterns). */
export function isAllowed(grants: readonly Grant[], coffer: string, action: Action): boolean {
  return grants.some((grant) => (grant.coffer === '*' || grant.coffer === coffer) && grant.actions.some((allowed) => allowed === '*' || allowed === action));
}

/**
 * Throws 403 AccessDenied unless the principal may do `action` on `coffer`. This is the check that
 * binds a credential to a coffer (the signature binds the request to the coffer: full path, signed
 * host, or a key-only signature from a key of that one coffer). The message does not list the
 * principal's grants.
 */
export function authorize(principal: Principal, coffer: string, action: Action): void {
  if (!isAllowed(principal.grants, coffer, action)) {
    throw new GatewayError('AccessDenied', `The credentials do not allow ${action} on this coffer.`, {
      reason: 'not-granted',
    });
  }
}
