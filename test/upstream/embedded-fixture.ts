/** Starts an embedded upstream in a temp directory and an S3UpstreamStore pointed at it over loopback. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { EmbeddedUpstream, type EmbeddedUpstreamOptions } from '../../src/embedded-upstream';
import { S3UpstreamStore, type S3UpstreamStoreConfig } from '../../src/upstream/s3-upstream-store';

export const MiB = 1024 * 1024;
export const ACCESS_KEY = 'AKIDEMBEDDEDTEST';
export const SECRET_KEY = 'embedded-secret-key-for-tests';
export const BUCKET = 'coffer-upstream';

export interface Fixture {
  readonly upstream: EmbeddedUpstream;
  readonly store: S3UpstreamStore;
  readonly directory: string;
  storeWith(overrides: Partial<S3UpstreamStoreConfig>): S3UpstreamStore;
  close(): Promise<void>;
}

export async function startFixture(options: Partial<EmbeddedUpstreamOptions> = {}): Promise<Fixture> {
  const directory = mkdtempSync(join(tmpdir(), 'coffer-upstream-'));
  const upstream = await EmbeddedUpstream.start({ directory, bucket: BUCKET, accessKeyId: ACCESS_KEY, secretAccessKey: SECRET_KEY, ...options });
  const stores: S3UpstreamStore[] = [];
  const storeWith = (overrides: Partial<S3UpstreamStoreConfig>): S3UpstreamStore => {
    const store = new S3UpstreamStore({
      endpoint: upstream.endpoint,
      region: 'us-east-1',
      bucket: BUCKET,
      forcePathStyle: true,
      credentials: async () => ({ accessKeyId: ACCESS_KEY, secretAccessKey: SECRET_KEY }),
      ...overrides,
    });
    stores.push(store);
    return store;
  };
  const store = storeWith({});
  return {
    upstream,
    store,
    directory,
    storeWith,
    async close() {
      for (const s of stores) s.destroy();
      await upstream.close();
      rmSync(directory, { recursive: true, force: true });
    },
  };
}

/** Deterministic bytes: byte i of a stream seeded `seed` (cheap to regenerate for comparison). */
export function pattern(length: number, seed: number): Buffer {
  const out = Buffer.alloc(length);
  for (let i = 0; i < length; i++) out[i] = (i * 31 + seed * 7 + (i >> 8)) & 0xff;
  return out;
}

export function bodyOf(buffer: Buffer): { body: Readable; contentLength: number } {
  return { body: Readable.from([buffer]), contentLength: buffer.length };
}

export async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}
