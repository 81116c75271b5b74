/**
 * The authentication stage: decides which method a request uses and hands it to that authenticator.
 *
 * - COS: `Authorization: q-sign-algorithm=...` or presigned `q-*` query fields;
 * - JWT: `Authorization: Bearer ...` (or the configured token query parameter).
 *
 * No credentials → 401 AuthFailed: coffers are never public, 401 is the HTTP status for "no (usable)
 * credentials", and AuthFailed is the CDCS code for it. The same applies to an Authorization scheme
 * we do not speak (Basic, AWS4-HMAC-SHA256, ...) and to a method that is not enabled. Credentials of
 * two methods at once → 400 InvalidArgument (S3 answers "only one auth mechanism allowed" the same
 * way): picking one silently would let the other be ignored, which is never what the client meant.
 * A repeated Authorization header → 400 MalformedAuthorization (which one counts would be ambiguous).
 */
import { GatewayError } from '../errors/gateway-error';
import { type AuthRequest, headerValues } from './auth-request';
import { hasPresignedFields } from './cos-auth-fields';
import type { Principal } from './principal';

export interface Authenticator {
  authenticate(request: AuthRequest): Promise<Principal>;
}

export interface AuthenticationMethods {
  readonly cos?: Authenticator;
  readonly jwt?: Authenticator;
  /** Must equal the JWT authenticator's `queryParam`, if it has one. */
  readonly jwtQueryParam?: string;
}

export type AuthenticationMethod = 'cos-signature' | 'jwt';

const COS_SCHEME = 'q-sign-algorithm=';
const BEARER_SCHEME = /^bearer(?: |$)/i;

/** Which method the request uses, or throws the error explained above. */
export function detectMethod(request: AuthRequest, jwtQueryParam?: string): AuthenticationMethod {
  const authorization = headerValues(request, 'authorization');
  if (authorization.length > 1) {
    throw new GatewayError('MalformedAuthorization', 'The Authorization header appears more than once.', {
      reason: 'duplicate-authorization',
    });
  }
  const header = authorization[0];
  const cosHeader = header !== undefined && header.startsWith(COS_SCHEME);
  const bearerHeader = header !== undefined && BEARER_SCHEME.test(header);
  if (header !== undefined && !cosHeader && !bearerHeader) {
    throw new GatewayError('AuthFailed', 'The Authorization scheme is not supported.', { reason: 'unsupported-scheme' });
  }
  const cos = cosHeader || hasPresignedFields(request.query);
  const jwt = bearerHeader || (jwtQueryParam !== undefined && request.query.some(([name]) => name === jwtQueryParam));
  if (cos && jwt) {
    throw new GatewayError('InvalidArgument', 'The request carries both a COS signature and a bearer token; send one.', {
      reason: 'multiple-auth-methods',
    });
  }
  if (cos) return 'cos-signature';
  if (jwt) return 'jwt';
  throw new GatewayError('AuthFailed', undefined, { reason: 'no-credentials' });
}

export function createAuthenticate(methods: AuthenticationMethods): (request: AuthRequest) => Promise<Principal> {
  return async (request) => {
    const method = detectMethod(request, methods.jwtQueryParam);
    const authenticator = method === 'cos-signature' ? methods.cos : methods.jwt;
    if (authenticator === undefined) {
      throw new GatewayError('AuthFailed', 'This authentication method is not enabled.', { reason: 'method-disabled' });
    }
    return authenticator.authenticate(request);
  };
}
