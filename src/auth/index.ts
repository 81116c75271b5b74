/** Public surface of the authentication/authorization stage. */
export { type AuthRequest, headersFromRaw, headerValues } from './auth-request';
export { type Authenticator, type AuthenticationMethods, createAuthenticate, detectMethod } from './authenticate';
export { authorize, isAllowed } from './authorize';
export { type CosAuthenticator, type CosAuthenticatorOptions, createCosAuthenticator } from './cos-authenticator';
export { type SignCosRequestInput, type SignedCosRequest, cosUrlEncode, formatKeyTime, signCosRequest } from './cos-signature';
export { type CosCredential, type CredentialConfig, type CredentialStore, InMemoryCredentialStore } from './credential-store';
export { type JwksCacheEvent, JwksCache } from './jwks-cache';
export { createJwksHttpFetcher } from './jwks-http-fetcher';
export { type JwtAuthenticator, type JwtAuthenticatorOptions, createJwtAuthenticator } from './jwt-authenticator';
export { type JwtGrantRule, serviceAccountSubject } from './jwt-grant-rules';
export { type JwtKeySourceConfig, createJwtKeyResolver } from './jwt-key-source';
export { type Action, type Grant, type Principal, toSessionName } from './principal';
