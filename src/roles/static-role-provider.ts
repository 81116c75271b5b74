/**
 * The embedded default RoleProvider: fixed credentials per coffer from configuration, no STS. Suitable
 * when the gateway runs with one set of long-term keys per coffer (or one for all).
 */
import { GatewayError } from '../errors/gateway-error';
import type { RoleCredentials, RoleProvider, RoleRequest } from './role-provider';

export function createStaticRoleProvider(credentialsByCoffer: Readonly<Record<string, RoleCredentials>>): RoleProvider {
  // Copied once so later mutation of the configuration object cannot change what we serve.
  const table = new Map<string, RoleCredentials>(Object.entries(credentialsByCoffer).map(([coffer, credentials]) => [coffer, { ...credentials }]));
  return {
    async credentialsFor(request: RoleRequest): Promise<RoleCredentials> {
      const credentials = table.get(request.coffer);
      if (!credentials) {
        throw new GatewayError('AssumeRoleFailed', 'No credentials are configured for this coffer.', { reason: 'unknown-coffer' });
      }
      return { ...credentials };
    },
  };
}
