/**
 * The S3 additional checksums (`x-amz-checksum-<algorithm>`, base64 of the big-endian digest), computed
 * incrementally as a body streams. Implementations chosen on measured speed (64 MiB in 64 KiB chunks,
 * this machine kind, README "Dependencies"): CRC32 and CRC32C from @node-rs/crc32 (SIMD, ~6.8 and
 * ~3.8 GB/s; Node's zlib.crc32 ~2.1 GB/s, @aws-crypto/crc32c ~0.1 GB/s), CRC64NVME from
 * @aws-sdk/crc64-nvme (~0.5 GB/s; the native @aws-sdk/crc64-nvme-crt reaches ~1.4 GB/s but brings the
 * 44 MB aws-crt with an HTTP client and a websocket stack for one checksum), SHA-1/SHA-256 from
 * node:crypto (~1.1 GB/s).
 */
import { createHash } from 'node:crypto';

/**
 * The two CRC packages are loaded at the first checksum that needs one, not with this module: every
 * gateway loads the S3 dialect, only S3 clients that send CRCs use them, and together (one a native
 * addon) they held ~2 MB of an idle gateway's RSS (docs/development/benchmarks.md "Memory"). A load is
 * a one-time synchronous require of a few milliseconds; Node caches the module after it.
 */
const crcPackages = {
  /* eslint-disable @typescript-eslint/no-require-imports -- loaded on first use (above) */
  crc32: (): typeof import('@node-rs/crc32') => require('@node-rs/crc32'),
  crc64Nvme: (): typeof import('@aws-sdk/crc64-nvme') => require('@aws-sdk/crc64-nvme'),
  /* eslint-enable @typescript-eslint/no-require-imports */
};

export type ChecksumAlgorithm = 'CRC32' | 'CRC32C' | 'CRC64NVME' | 'SHA1' | 'SHA256';

export const CHECKSUM_ALGORITHMS: readonly ChecksumAlgorithm[] = ['CRC32', 'CRC32C', 'CRC64NVME', 'SHA1', 'SHA256'];

/** Length of each digest in bytes: a base64 value of another length cannot be one. */
const DIGEST_BYTES: Readonly<Record<ChecksumAlgorithm, number>> = { CRC32: 4, CRC32C: 4, CRC64NVME: 8, SHA1: 20, SHA256: 32 };

/** `x-amz-checksum-crc32` … : the header (and trailer) name of each algorithm. */
export function checksumHeader(algorithm: ChecksumAlgorithm): string {
  return `x-amz-checksum-${algorithm.toLowerCase()}`;
}

/** The algorithm a header or trailer name stands for, or undefined. */
export function algorithmOfHeader(name: string): ChecksumAlgorithm | undefined {
  const lower = name.toLowerCase();
  return CHECKSUM_ALGORITHMS.find((algorithm) => checksumHeader(algorithm) === lower);
}

/** Whether `value` is canonical base64 of a digest of this algorithm's length. */
export function isChecksumValue(algorithm: ChecksumAlgorithm, value: string): boolean {
  const bytes = Buffer.from(value, 'base64');
  return bytes.length === DIGEST_BYTES[algorithm] && bytes.toString('base64') === value;
}

export interface RunningChecksum {
  readonly algorithm: ChecksumAlgorithm;
  update(chunk: Uint8Array): void;
  /** base64 of the digest; call once, after the last update. */
  digest(): Promise<string>;
}

function uint32(value: number): string {
  const out = Buffer.alloc(4);
  out.writeUInt32BE(value >>> 0);
  return out.toString('base64');
}

export function runningChecksum(algorithm: ChecksumAlgorithm): RunningChecksum {
  switch (algorithm) {
    case 'CRC32':
    case 'CRC32C': {
      const { crc32, crc32c } = crcPackages.crc32();
      const fn = algorithm === 'CRC32' ? crc32 : crc32c;
      let state = 0;
      return {
        algorithm,
        update: (chunk) => {
          state = fn(chunk, state);
        },
        digest: async () => uint32(state),
      };
    }
    case 'CRC64NVME': {
      const crc = new (crcPackages.crc64Nvme().Crc64Nvme)();
      return {
        algorithm,
        update: (chunk) => crc.update(chunk),
        digest: async () => Buffer.from(await crc.digest()).toString('base64'),
      };
    }
    case 'SHA1':
    case 'SHA256': {
      const hash = createHash(algorithm === 'SHA1' ? 'sha1' : 'sha256');
      return {
        algorithm,
        update: (chunk) => hash.update(chunk),
        digest: async () => hash.digest('base64'),
      };
    }
  }
}
