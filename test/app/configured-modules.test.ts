/**
 * Load when configured (src/app/configured-modules.ts): a gateway loads the egress CA's X.509 stack,
 * jose and the KMS and STS clients only when its configuration uses them — and then while it is built, before any request. Each package is probed where Node loads it
 * (a jest.mock factory that records the load and hands back the real module); every test builds its
 * gateway in a fresh module registry, so what the gateway's own imports load counts too: importing
 * one of these packages at the top of a file again fails the first test.
 */
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const mockLoaded = new Set<string>();
jest.mock('@peculiar/x509', () => (mockLoaded.add('@peculiar/x509'), jest.requireActual('@peculiar/x509')));
jest.mock('jose', () => (mockLoaded.add('jose'), jest.requireActual('jose')));
jest.mock('@aws-sdk/client-kms', () => (mockLoaded.add('@aws-sdk/client-kms'), jest.requireActual('@aws-sdk/client-kms')));
jest.mock('@aws-sdk/client-sts', () => (mockLoaded.add('@aws-sdk/client-sts'), jest.requireActual('@aws-sdk/client-sts')));

const OPTIONAL = ['@aws-sdk/client-kms', '@aws-sdk/client-sts', '@peculiar/x509', 'jose'];
/** Nothing listens here: the start-up dependency checks fail at once (and are stopped by close). */
const NOWHERE = 'http://127.0.0.1:1';
const STATIC_KEYS = { accessKeyId: 'configured', secretAccessKey: 'configured-secret' };
const ACCESS_KEYS = { accessKeys: [{ secretId: 'AKIDconfiguredmodules', secretKey: 'configured-modules-secret-key-0123', grants: [{ coffer: '*', actions: ['*'] }] }] };

let directory: string;
beforeEach(() => {
  directory = mkdtempSync(join(tmpdir(), 'coffer-configured-modules-'));
  mockLoaded.clear();
});
afterEach(() => rmSync(directory, { recursive: true, force: true }));

/** Builds a gateway from `config` in a fresh module registry, closes it, and returns the optional packages that were loaded. */
async function loadedBy(config: Record<string, unknown>): Promise<string[]> {
  await jest.isolateModulesAsync(async () => {
    // Required here, not imported at the top: each build gets a registry in which nothing was loaded yet.
    /* eslint-disable @typescript-eslint/no-require-imports */
    const { createCofferGateway } = require('../../src/app/coffer-gateway') as typeof import('../../src/app/coffer-gateway');
    const { createLogger } = require('../../src/observability/logger') as typeof import('../../src/observability/logger');
    /* eslint-enable @typescript-eslint/no-require-imports */
    const base = { server: { port: 0, adminPort: 0 }, keyring: { directory: join(directory, 'keyring') }, auth: ACCESS_KEYS, coffers: { 'plain-1250000000': cofferWith({}) } };
    const gateway = await createCofferGateway({ ...base, ...config }, { log: createLogger('silent') });
    await gateway.close();
  });
  return [...mockLoaded].sort();
}

const cofferWith = (settings: Record<string, unknown>): Record<string, unknown> => ({ upstream: { endpoint: NOWHERE, bucket: 'coffer', credentials: STATIC_KEYS }, kms: { type: 'local', keyId: 'k' }, ...settings });

test('a gateway whose configuration uses none of them loads none (static keys, the local keyring, no egress, no JWT; the demo coffers)', async () => {
  expect(await loadedBy({ demo: { enabled: true }, embeddedUpstream: { enabled: true, directory: join(directory, 'upstream') } })).toEqual([]);
});

test('each is loaded while the gateway is built when the configuration uses it (no request needed)', async () => {
  const jwk = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'jwk' });
  const config = {
    egress: { enabled: true, localCaDirectory: join(directory, 'egress-ca') },
    auth: { jwt: { issuer: 'https://issuer.example', audiences: ['coffer'], algorithms: ['ES256'], keys: [jwk], rules: [{ subject: 'system:serviceaccount:a:b', grants: [{ coffer: '*', actions: ['read'] }] }] } },
    // An STS role (over the default credential chain); AWS KMS only in a coffer class's settings.
    coffers: { 'role-1250000000': { upstream: { endpoint: NOWHERE, bucket: 'coffer' }, role: { type: 'sts', roleArn: 'arn:aws:iam::123456789012:role/coffer', endpoint: NOWHERE }, kms: { type: 'local', keyId: 'k' } } },
    cofferClasses: { team: { pattern: 'team-*-1250000000', coffer: cofferWith({ kms: { type: 'aws-kms', keyId: 'alias/coffer', endpoint: NOWHERE, region: 'us-east-1' } }) } },
    sts: { maxAttempts: 1 },
  };
  const environment = { ...process.env };
  // The default chain then resolves from the environment at once (no instance-metadata lookups while the checks run).
  Object.assign(process.env, { AWS_ACCESS_KEY_ID: 'from-env', AWS_SECRET_ACCESS_KEY: 'from-env-secret' });
  try {
    expect(await loadedBy(config)).toEqual(OPTIONAL);
  } finally {
    process.env = environment;
  }
});

test.each([
  ['egress.enabled', { egress: { enabled: true } }, ['@peculiar/x509']],
  ['a coffer with an STS role', { coffers: { 'role-1250000000': cofferWith({ role: { type: 'sts', roleArn: 'arn:aws:iam::123456789012:role/coffer', endpoint: NOWHERE } }) }, sts: { maxAttempts: 1 } }, ['@aws-sdk/client-sts']],
  ['a coffer with AWS KMS', { coffers: { 'kms-1250000000': cofferWith({ kms: { type: 'aws-kms', keyId: 'alias/coffer', endpoint: NOWHERE, region: 'us-east-1' } }) } }, ['@aws-sdk/client-kms']],
])('%s loads only what it needs', async (_what, settings, expected) => {
  const egress = 'egress' in settings ? { egress: { enabled: true, localCaDirectory: join(directory, 'egress-ca') } } : {};
  expect(await loadedBy({ ...settings, ...egress, kms: { maxAttempts: 1 } })).toEqual(expected);
});
