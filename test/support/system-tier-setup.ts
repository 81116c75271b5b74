/**
 * setupFilesAfterEnv of the system tier (jest.config.js): Ceph round trips, child processes and a
 * browser take longer than in-process servers; a test that hangs still fails, after 180 s.
 */
jest.setTimeout(180_000);
