/**
 * Tampering with one part's ciphertext: every case must fail with an IntegrityError and never yield
 * a wrong byte (the opener releases a segment's plaintext only after its tag verified, so we also
 * check that whatever came out before the failure is a correct prefix).
 */
import { randomBytes } from 'node:crypto';
import { PartOpener, type ExpectedPart } from '../../src/crypto/part-decryptor';
import { IntegrityError } from '../../src/format/integrity-error';
import { PART_HEADER_SIZE, SEGMENT_CIPHERTEXT_SIZE, SEGMENT_SIZE } from '../../src/format/part-format';
import { encryptPart, identity } from '../support/crypto-helpers';

const S = SEGMENT_SIZE;

/** Decrypts and returns [plaintext released before failure, error or undefined]. */
function attempt(dataKey: Buffer, ciphertext: Buffer, expected?: ExpectedPart): [Buffer, unknown] {
  const opener = new PartOpener({ dataKey, expected, withHeader: true });
  const released: Buffer[] = [];
  try {
    released.push(...opener.update(ciphertext));
    opener.final();
    return [Buffer.concat(released), undefined];
  } catch (error) {
    return [Buffer.concat(released), error];
  }
}

function expectRejected(dataKey: Buffer, ciphertext: Buffer, plaintext: Buffer, expected?: ExpectedPart): IntegrityError {
  const [released, error] = attempt(dataKey, ciphertext, expected);
  expect(error).toBeInstanceOf(IntegrityError);
  // Nothing wrong was released: any output is a true prefix of the plaintext.
  expect(released.equals(plaintext.subarray(0, released.length))).toBe(true);
  return error as IntegrityError;
}

describe('single-bit flips', () => {
  test('every bit of a small part (header, body and tag) is protected', async () => {
    const options = identity({ plaintextLength: 300 });
    const plaintext = randomBytes(300);
    const ciphertext = await encryptPart(options, plaintext);
    const reasons = new Set<string>();
    for (let bit = 0; bit < ciphertext.length * 8; bit += 1) {
      const copy = Buffer.from(ciphertext);
      copy[bit >> 3] = (copy[bit >> 3] as number) ^ (1 << (bit & 7));
      reasons.add(expectRejected(options.dataKey, copy, plaintext).reason);
    }
    expect([...reasons].sort()).toEqual(['bad-magic', 'commitment-mismatch', 'malformed', 'segment-authentication-failed', 'unsupported-version'].sort());
  });

  test('bytes across a three-segment part (every byte near headers and segment edges, every 61st elsewhere), and every bit of every tag', async () => {
    const size = 2 * S + 1000;
    const options = identity({ plaintextLength: size });
    const plaintext = randomBytes(size);
    const ciphertext = await encryptPart(options, plaintext);
    const nearEdge = (at: number): boolean => {
      if (at < PART_HEADER_SIZE + 256) return true;
      const inSegment = (at - PART_HEADER_SIZE) % SEGMENT_CIPHERTEXT_SIZE;
      return inSegment < 256 || inSegment >= SEGMENT_CIPHERTEXT_SIZE - 256 || at >= ciphertext.length - 256;
    };
    for (let at = 0; at < ciphertext.length; at += 1) {
      if (!nearEdge(at) && at % 61 !== 0) continue;
      const copy = Buffer.from(ciphertext);
      copy[at] = (copy[at] as number) ^ (1 << (at % 8));
      expectRejected(options.dataKey, copy, plaintext);
    }
    const tagEnds = [PART_HEADER_SIZE + SEGMENT_CIPHERTEXT_SIZE, PART_HEADER_SIZE + 2 * SEGMENT_CIPHERTEXT_SIZE, ciphertext.length];
    for (const end of tagEnds) {
      for (let bit = 0; bit < 128; bit += 1) {
        const copy = Buffer.from(ciphertext);
        const at = end - 16 + (bit >> 3);
        copy[at] = (copy[at] as number) ^ (1 << (bit & 7));
        expect(expectRejected(options.dataKey, copy, plaintext).reason).toBe('segment-authentication-failed');
      }
    }
  });
});

describe('structural tampering', () => {
  const size = 3 * S + 500;
  let options: ReturnType<typeof identity>;
  let plaintext: Buffer;
  let ciphertext: Buffer;
  const segment = (i: number): Buffer => ciphertext.subarray(PART_HEADER_SIZE + i * SEGMENT_CIPHERTEXT_SIZE, PART_HEADER_SIZE + (i + 1) * SEGMENT_CIPHERTEXT_SIZE);
  const header = (): Buffer => ciphertext.subarray(0, PART_HEADER_SIZE);

  beforeAll(async () => {
    options = identity({ plaintextLength: size, partNumber: 4 });
    plaintext = randomBytes(size);
    ciphertext = await encryptPart(options, plaintext);
  });

  test('truncation at every segment boundary and between segments', () => {
    const cuts = [0, 1, 50, PART_HEADER_SIZE, PART_HEADER_SIZE + 1];
    for (let i = 1; i <= 3; i += 1) cuts.push(PART_HEADER_SIZE + i * SEGMENT_CIPHERTEXT_SIZE, PART_HEADER_SIZE + i * SEGMENT_CIPHERTEXT_SIZE - 1, PART_HEADER_SIZE + i * SEGMENT_CIPHERTEXT_SIZE + 17);
    cuts.push(ciphertext.length - 1, ciphertext.length - 16);
    for (const cut of cuts) {
      const error = expectRejected(options.dataKey, ciphertext.subarray(0, cut), plaintext);
      expect(['truncated', 'segment-authentication-failed']).toContain(error.reason);
    }
  });

  test('a full-size non-final segment presented as the last one fails (final flag in the nonce)', () => {
    // Drop the final segment and rewrite nothing else: the reader expects 4 segments, so it is truncation;
    // and re-labelling the length in the header to 3·S breaks the commitment.
    const threeSegments = Buffer.concat([header(), segment(0), segment(1), segment(2)]);
    expect(expectRejected(options.dataKey, threeSegments, plaintext).reason).toBe('truncated');
    const relabelled = Buffer.from(threeSegments);
    relabelled.writeBigUInt64BE(BigInt(3 * S), 28);
    expect(expectRejected(options.dataKey, relabelled, plaintext).reason).toBe('commitment-mismatch');
  });

  test('segments reordered or duplicated', () => {
    const tail = ciphertext.subarray(PART_HEADER_SIZE + 3 * SEGMENT_CIPHERTEXT_SIZE);
    const swapped = Buffer.concat([header(), segment(1), segment(0), segment(2), tail]);
    expect(expectRejected(options.dataKey, swapped, plaintext).reason).toBe('segment-authentication-failed');
    const duplicated = Buffer.concat([header(), segment(0), segment(0), segment(2), tail]);
    expect(expectRejected(options.dataKey, duplicated, plaintext).reason).toBe('segment-authentication-failed');
  });

  test('extra bytes after the final segment', () => {
    const error = expectRejected(options.dataKey, Buffer.concat([ciphertext, Buffer.from([0])]), plaintext);
    expect(error.reason).toBe('trailing-data');
  });

  test('a part moved to another part number, upload or object is refused by the expected identity', () => {
    const expected: ExpectedPart = { objectId: options.objectId, partNumber: 4, plaintextLength: size, salt: options.salt };
    expect(attempt(options.dataKey, ciphertext, expected)[1]).toBeUndefined();
    for (const other of [
      { ...expected, partNumber: 5 },
      { ...expected, salt: randomBytes(32) },
      { ...expected, objectId: randomBytes(16) },
      { ...expected, plaintextLength: size - 1 },
    ]) {
      expect(expectRejected(options.dataKey, ciphertext, plaintext, other).reason).toBe('header-mismatch');
    }
  });

  test('a header rewritten to claim another part number, object or salt breaks the key commitment', () => {
    for (const [offset, length] of [
      [24, 4],
      [8, 16],
      [36, 32],
    ] as const) {
      const copy = Buffer.from(ciphertext);
      randomBytes(length).copy(copy, offset);
      expect(expectRejected(options.dataKey, copy, plaintext).reason).toBe('commitment-mismatch');
    }
  });

  test('a wrong data key or a wrong key commitment is caught before any segment is decrypted', () => {
    expect(expectRejected(randomBytes(32), ciphertext, plaintext).reason).toBe('commitment-mismatch');
    const copy = Buffer.from(ciphertext);
    copy.fill(0, 68, 100);
    const [released, error] = attempt(options.dataKey, copy);
    expect((error as IntegrityError).reason).toBe('commitment-mismatch');
    expect(released.length).toBe(0);
  });

  test('a part from another upload of the same object (other salt, same data key) is refused', async () => {
    const reupload = await encryptPart({ ...options, salt: randomBytes(32) }, plaintext);
    const expected: ExpectedPart = { objectId: options.objectId, partNumber: 4, plaintextLength: size, salt: options.salt };
    expect(expectRejected(options.dataKey, reupload, plaintext, expected).reason).toBe('header-mismatch');
    // Splicing segments of the re-upload behind this upload's header fails authentication.
    const spliced = Buffer.concat([header(), reupload.subarray(PART_HEADER_SIZE)]);
    expect(expectRejected(options.dataKey, spliced, plaintext).reason).toBe('segment-authentication-failed');
  });
});
