/**
 * Jest runs the TypeScript sources through ts-jest (CommonJS). jose 6 ships ESM only, so its files
 * are transformed too instead of being left to Jest's CommonJS loader.
 *
 * Three tiers (jest projects), all run by `npm test`; pick one with `npx jest --selectProjects unit`:
 * - unit: pure code, no sockets, no child processes, no global setup: seconds. Listed below (a file
 *   is unit only when it is known to open nothing; test/support/unit-tier-guard.ts fails one that
 *   listens or connects).
 * - component: real servers in-process (the gateway, its embedded upstream, KMS/STS/JWKS test
 *   servers) over loopback sockets. Everything not listed as unit or system lands here. Run-wide
 *   log capture: every gateway logs at trace into one place, scanned for secrets at the end
 *   (test/support/log-capture).
 * - system: the shared Ceph cluster (test/support/ceph, started once per run), child processes (the
 *   built CLI: dist is built once, in this tier's global setup), headless Chromium, helm, the image.
 *   Log capture as above.
 */
const shared = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  transform: {
    '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.json' }],
    '^.+\\.js$': ['ts-jest', { tsconfig: { allowJs: true, module: 'commonjs', target: 'ES2022' }, isolatedModules: true }],
  },
  transformIgnorePatterns: ['/node_modules/(?!(jose)/)'],
};

/** Pure tests (paths under test/). */
const UNIT = [
  'auth/{authenticate,authorize,cos-authenticator,cos-signature,credential-store,jwt-grant-rules}',
  'cdcs/{query-parameters,request-target,route,xml}',
  'cli/progress',
  'config/*',
  'crypto/*',
  'docs/*',
  'egress/{connect-target,leaf-certificate-cache}',
  'errors/*',
  'format/*',
  'http/{conditional-request,object-checksum,object-checksum-loading,origin-pattern,range-header,s3-request-body}',
  'keys/{aws-errors,data-key-material,local-keyring}',
  'observability/{logger,run-log-scan}',
  'server/admin/dependency-checks',
  'server/{body-guard,request-headers}',
  's3/copy-source',
  'smoke/*',
  'store/{assembly-plan,bounded-cache,coffer-key,coffer-lifecycle,coffer-policies,multipart-service,object-service,part-record,upload-record}',
  'util/*',
].map((path) => `**/test/${path}.test.ts`);

/** Ceph, child processes, browsers, helm, the container image (paths under test/). */
const SYSTEM = ['integration/**/*', 'e2e/**/*', 's3/{s3-clients,s3-tools}', 'cli/**/*', 'cli', 'deploy/**/*', 'helm/**/*', 'egress/egress-end-to-end', 'egress/certificate-authority'].map((path) => `**/test/${path}.test.ts`);

const logCapture = { setupFilesAfterEnv: ['<rootDir>/test/support/log-capture/capture-setup.ts'] };

module.exports = {
  // Per tier: jest reads `testTimeout` from the root only, so this is the component tier's; the unit
  // and system tiers set theirs in their setup files (20 s and 180 s).
  testTimeout: 60_000,
  projects: [
    { ...shared, displayName: 'unit', testMatch: UNIT, setupFilesAfterEnv: ['<rootDir>/test/support/unit-tier-guard.ts'] },
    {
      ...shared,
      displayName: 'component',
      // Every test file except those of the other two tiers (negated globs).
      testMatch: ['**/test/**/*.test.ts', ...[...UNIT, ...SYSTEM].map((glob) => `!${glob}`)],
      globalSetup: '<rootDir>/test/support/component-setup.ts',
      globalTeardown: '<rootDir>/test/support/component-teardown.ts',
      ...logCapture,
    },
    {
      ...shared,
      displayName: 'system',
      testMatch: [...SYSTEM, ...UNIT.map((glob) => `!${glob}`)],
      globalSetup: '<rootDir>/test/support/run-setup.ts',
      globalTeardown: '<rootDir>/test/support/run-teardown.ts',
      setupFilesAfterEnv: [...logCapture.setupFilesAfterEnv, '<rootDir>/test/support/system-tier-setup.ts'],
    },
  ],
};
