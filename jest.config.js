/** Jest runs the TypeScript sources through ts-jest (CommonJS). jose 6 ships ESM only,
 * so its files are transformed too instead of being left to Jest's CommonJS loader. */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: {
    '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.json' }],
    '^.+\\.js$': ['ts-jest', { tsconfig: { allowJs: true, module: 'commonjs', target: 'ES2022' }, isolatedModules: true }],
  },
  transformIgnorePatterns: ['/node_modules/(?!(jose)/)'],
  testTimeout: 60000,
  // One Ceph cluster (two RADOS Gateways) for the whole run (test/support/ceph), and the run-wide
  // log capture: every gateway logs at trace into one place, scanned for secrets at the end
  // (test/support/log-capture).
  globalSetup: '<rootDir>/test/support/run-setup.ts',
  globalTeardown: '<rootDir>/test/support/run-teardown.ts',
  setupFilesAfterEnv: ['<rootDir>/test/support/log-capture/capture-setup.ts'],
};
