/**
 * Load when configured: the modules only some configurations use, loaded by the gateways whose
 * configuration uses them and by no other. Each is a package stack an idle gateway paid for in RSS
 * whether it used it or not (~8 MB together, docs/development/benchmarks.md "Memory"):
 * - the egress CA (CONNECT interception, `egress.enabled`): @peculiar/x509 and its ASN.1 packages;
 * - JWT authentication (`auth.jwt`): jose;
 * - AWS KMS (`kms.type: aws-kms` in a coffer or a coffer class): @aws-sdk/client-kms;
 * - STS roles (`role.type: sts`): @aws-sdk/client-sts.
 * (The AWS default credential chain is not among them: the S3 client, which every gateway uses, loads it.)
 *
 * These are the gateway's only requires not at the top of a file, but for the S3 checksums' CRC packages
 * (loaded at the first checksum that needs one: src/http/object-checksum.ts). Each loader is a
 * synchronous require (Node caches the module after the first); `loadConfiguredModules` calls the
 * ones a configuration needs while the gateway is built, so no request waits for a module to load,
 * and a broken installation fails the start rather than a request.
 */
/* eslint-disable @typescript-eslint/no-require-imports -- this file is the one place that loads modules on demand (see above) */
import type { CofferConfig, GatewayConfig } from '../config';

export const configuredModules = {
  egress: (): typeof import('../egress') => require('../egress'),
  jwtAuthentication: (): typeof import('./jwt-authentication') => require('./jwt-authentication'),
  awsKms: (): typeof import('../keys/aws-kms-key-provider') => require('../keys/aws-kms-key-provider'),
  stsRoles: (): typeof import('../roles/sts-role-provider') => require('../roles/sts-role-provider'),
};

/** Every coffer's settings the configuration holds: configured coffers and the template of each coffer class. */
function cofferSettings(config: GatewayConfig): CofferConfig[] {
  return [...Object.values(config.coffers), ...Object.values(config.cofferClasses).map((cofferClass) => cofferClass.coffer as CofferConfig)];
}

/** Loads every module of `configuredModules` that `config` uses (the demo coffers use none: static keys, the local keyring). */
export function loadConfiguredModules(config: GatewayConfig): void {
  const coffers = cofferSettings(config);
  if (config.egress.enabled) configuredModules.egress();
  if (config.auth.jwt !== undefined) configuredModules.jwtAuthentication();
  if (coffers.some((coffer) => coffer.kms.type === 'aws-kms')) configuredModules.awsKms();
  if (coffers.some((coffer) => coffer.role.type === 'sts')) configuredModules.stsRoles();
}
