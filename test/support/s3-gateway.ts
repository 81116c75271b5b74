/**
 * The gateway as `npm start` runs it (embedded upstream, local keyring, the demo coffer
 * demo-1250000000 and the scratch coffer scratch-1250000000, one demo access key reaching both), on a
 * fresh directory, for S3-client tests; plus how to run the Debian S3 clients against it.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { loadConfig } from '../../src/config';
import { startGateway, type RunningGateway } from '../../src/app/serve';
import { createLogger } from '../../src/observability/logger';

export const S3_ACCESS_KEY = 'AKIDs3Demo';
export const S3_SECRET_KEY = 's3-demo-secret-key-0123456789';
export const DEMO_BUCKET = 'demo-1250000000';
export const SCRATCH_BUCKET = 'scratch-1250000000';

export interface S3Gateway {
  readonly gateway: RunningGateway;
  readonly endpoint: string;
  /** A scratch directory for the test's files (removed by stop). */
  readonly directory: string;
  /** Writes one object to each demo coffer (see the note in test/s3/s3-tools.test.ts). */
  warm(): Promise<void>;
  stop(): Promise<void>;
}

export async function startS3Gateway(): Promise<S3Gateway> {
  const directory = mkdtempSync(join(tmpdir(), 'coffer-s3-'));
  const config = loadConfig({
    env: {
      PORT: '0',
      COFFER__SERVER__ADMIN_PORT: '0',
      COFFER_DEMO_SECRET_ID: S3_ACCESS_KEY,
      COFFER_DEMO_SECRET_KEY: S3_SECRET_KEY,
      COFFER__KEYRING__DIRECTORY: join(directory, 'keyring'),
      COFFER__EMBEDDED_UPSTREAM__DIRECTORY: join(directory, 'upstream'),
    },
  });
  const gateway = await startGateway(config, { log: createLogger('silent') });
  return {
    gateway,
    endpoint: `http://127.0.0.1:${gateway.port}`,
    directory,
    warm: async () => {
      const client = new S3Client({ endpoint: `http://127.0.0.1:${gateway.port}`, forcePathStyle: true, region: 'us-east-1', credentials: { accessKeyId: S3_ACCESS_KEY, secretAccessKey: S3_SECRET_KEY } });
      try {
        for (const Bucket of [DEMO_BUCKET, SCRATCH_BUCKET]) await client.send(new PutObjectCommand({ Bucket, Key: 'warm', Body: 'warm' }));
      } finally {
        client.destroy();
      }
    },
    stop: async () => {
      await gateway.stop();
      rmSync(directory, { recursive: true, force: true });
    },
  };
}

const run = promisify(execFile);

/** Runs a Debian S3 client with only the given environment (no AWS_* or proxy settings leak in from the caller). */
export async function runClient(program: string, args: readonly string[], env: Record<string, string>): Promise<{ stdout: string; stderr: string }> {
  return run(program, args, { env: { PATH: '/usr/bin:/bin', ...env }, maxBuffer: 64 * 1024 * 1024 });
}

/** `describe`, or `describe.skip` outside CI when the Debian package is not installed (.ci/install-s3-clients.sh installs it). */
export function describeWithClient(program: string): jest.Describe {
  return existsSync(program) || process.env['CI'] !== undefined ? describe : describe.skip;
}
