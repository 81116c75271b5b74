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
import { Transform, type TransformCallback } from 'node:stream';

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
export const DIGEST_BYTES: Readonly<Record<ChecksumAlgorithm, number>> = { CRC32: 4, CRC32C: 4, CRC64NVME: 8, SHA1: 20, SHA256: 32 };

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

/**
 * How a multipart object's checksum covers it (S3's `x-amz-checksum-type`): COMPOSITE — the checksum
 * of the concatenated binary part checksums, with a `-<parts>` suffix — or FULL_OBJECT — the checksum
 * of the whole object's bytes (for the CRCs, combined from the part CRCs and lengths). A single-PUT
 * object's checksum is always FULL_OBJECT.
 */
export type ChecksumType = 'COMPOSITE' | 'FULL_OBJECT';

/** The types S3 allows per algorithm: SHA-1/SHA-256 only COMPOSITE, CRC64NVME only FULL_OBJECT, CRC32/CRC32C either. */
const ALLOWED_TYPES: Readonly<Record<ChecksumAlgorithm, readonly ChecksumType[]>> = {
  CRC32: ['COMPOSITE', 'FULL_OBJECT'],
  CRC32C: ['COMPOSITE', 'FULL_OBJECT'],
  CRC64NVME: ['FULL_OBJECT'],
  SHA1: ['COMPOSITE'],
  SHA256: ['COMPOSITE'],
};

/** Whether S3 allows this checksum type with this algorithm. */
export function isAllowedChecksumType(algorithm: ChecksumAlgorithm, type: ChecksumType): boolean {
  return ALLOWED_TYPES[algorithm].includes(type);
}

/** The type S3 gives an upload that names an algorithm but no type: FULL_OBJECT for CRC64NVME (its only one), COMPOSITE otherwise. */
export function defaultChecksumType(algorithm: ChecksumAlgorithm): ChecksumType {
  return algorithm === 'CRC64NVME' ? 'FULL_OBJECT' : 'COMPOSITE';
}

/** A COMPOSITE object checksum: the algorithm over the concatenated binary part checksums (base64 in, base64 out), then `-<parts>`. */
export async function compositeChecksum(algorithm: ChecksumAlgorithm, partChecksums: readonly string[]): Promise<string> {
  const running = runningChecksum(algorithm);
  for (const value of partChecksums) running.update(Buffer.from(value, 'base64'));
  return `${await running.digest()}-${partChecksums.length}`;
}

/**
 * CRC combination (zlib's crc32_combine, by Mark Adler, generalised to any reflected CRC whose initial
 * value equals its final XOR, as CRC32, CRC32C and CRC64NVME are): crc(A‖B) from crc(A), crc(B) and
 * len(B), by applying to crc(A) the GF(2) operator "append len(B) zero bytes" and XORing crc(B). The
 * operators for 2^k zero bytes are squared once per algorithm and cached; the operator for a part
 * length is composed once per Complete, so the usual equal-sized parts cost one matrix-vector
 * product each (10000 parts: tens of milliseconds, see docs/reference/s3.md). Hand-written because no maintained JavaScript library
 * combines all three (the AWS SDK for JavaScript has none; @balena/node-crc-utils is CRC32 only, native).
 */
const REFLECTED_POLYNOMIAL: Readonly<Record<'CRC32' | 'CRC32C' | 'CRC64NVME', { width: number; polynomial: bigint }>> = {
  CRC32: { width: 32, polynomial: 0xedb88320n },
  CRC32C: { width: 32, polynomial: 0x82f63b78n },
  CRC64NVME: { width: 64, polynomial: 0x9a6c9329ac4bc9b5n },
};

type Gf2Matrix = readonly bigint[];

function gf2Times(matrix: Gf2Matrix, vector: bigint): bigint {
  let sum = 0n;
  for (let row = 0; vector !== 0n; row += 1, vector >>= 1n) if ((vector & 1n) === 1n) sum ^= matrix[row] as bigint;
  return sum;
}

function gf2Square(matrix: Gf2Matrix): Gf2Matrix {
  return matrix.map((row) => gf2Times(matrix, row));
}

/** zeroOperators[k]: the operator that appends 2^k zero bytes to a CRC register. */
const zeroOperators = new Map<ChecksumAlgorithm, Gf2Matrix[]>();

function zeroOperator(algorithm: 'CRC32' | 'CRC32C' | 'CRC64NVME', power: number): Gf2Matrix {
  let operators = zeroOperators.get(algorithm);
  if (operators === undefined) {
    const { width, polynomial } = REFLECTED_POLYNOMIAL[algorithm];
    // One zero bit: shift right, XOR the polynomial when the low bit falls out.
    let operator: Gf2Matrix = [polynomial, ...Array.from({ length: width - 1 }, (_, i) => 1n << BigInt(i))];
    for (let bit = 0; bit < 3; bit += 1) operator = gf2Square(operator); // 8 zero bits: one byte
    operators = [operator];
    zeroOperators.set(algorithm, operators);
  }
  while (operators.length <= power) operators.push(gf2Square(operators[operators.length - 1] as Gf2Matrix));
  return operators[power] as Gf2Matrix;
}

/** The operator that appends `length` zero bytes: the power-of-two operators of its set bits, composed (a column of A∘B is A applied to B's column). */
function appendZerosOperator(algorithm: 'CRC32' | 'CRC32C' | 'CRC64NVME', length: number): Gf2Matrix | undefined {
  let composed: Gf2Matrix | undefined;
  for (let left = length, power = 0; left > 0; left = Math.floor(left / 2), power += 1) {
    if (left % 2 === 0) continue;
    const operator = zeroOperator(algorithm, power);
    composed = composed === undefined ? operator : composed.map((column) => gf2Times(operator, column));
  }
  return composed;
}

function crcValue(value: string): bigint {
  return BigInt(`0x${Buffer.from(value, 'base64').toString('hex')}`);
}

/** A FULL_OBJECT CRC from the parts' CRCs (base64) and plaintext lengths, in part order. */
export function combineCrcs(algorithm: ChecksumAlgorithm, parts: ReadonlyArray<{ readonly checksum: string; readonly length: number }>): string {
  if (algorithm !== 'CRC32' && algorithm !== 'CRC32C' && algorithm !== 'CRC64NVME') throw new RangeError(`${algorithm} cannot be combined into a full-object checksum`);
  // Parts mostly share one length. Applying a length power by power costs one product per set bit;
  // composing its operator costs that times the CRC width, after which a use is one product: so a
  // length is composed once it has been used width times.
  const { width } = REFLECTED_POLYNOMIAL[algorithm];
  const uses = new Map<number, number>();
  const composed = new Map<number, Gf2Matrix | undefined>();
  let crc = 0n;
  for (const [index, part] of parts.entries()) {
    const next = crcValue(part.checksum);
    if (index === 0) {
      crc = next;
      continue;
    }
    const used = (uses.get(part.length) ?? 0) + 1;
    uses.set(part.length, used);
    if (used === width) composed.set(part.length, appendZerosOperator(algorithm, part.length));
    if (composed.has(part.length)) {
      const operator = composed.get(part.length);
      if (operator !== undefined) crc = gf2Times(operator, crc);
    } else {
      for (let left = part.length, power = 0; left > 0; left = Math.floor(left / 2), power += 1) if (left % 2 === 1) crc = gf2Times(zeroOperator(algorithm, power), crc);
    }
    crc ^= next;
  }
  const bytes = DIGEST_BYTES[algorithm];
  return Buffer.from(crc.toString(16).padStart(bytes * 2, '0'), 'hex').toString('base64');
}

/** Passes bytes through while computing a checksum of them: `value` once the stream has ended (its flush computes it). */
export class ChecksumTap extends Transform {
  readonly #running: RunningChecksum;
  /** base64 of the digest; defined once the stream has ended. */
  value: string | undefined;

  constructor(readonly algorithm: ChecksumAlgorithm) {
    super();
    this.#running = runningChecksum(algorithm);
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.#running.update(chunk);
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    this.#running.digest().then((value) => {
      this.value = value;
      callback();
    }, callback);
  }

  /** The digest, once the stream has ended. */
  async digest(): Promise<string> {
    if (this.value === undefined) throw new Error('the checksum is read before the stream ended');
    return this.value;
  }
}
