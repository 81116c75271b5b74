/**
 * `npm run bench`: throughput and peak memory of the encryption core, measured side by side in one
 * run on the same bytes (1 GiB = 1024 × the same random 1 MiB chunk). Each case runs in its own
 * child process so its peak RSS is its own. Speed targets are ratios, never absolute numbers:
 * this machine is shared and noisy, only ratios measured in the same run mean something.
 */
import { createCipheriv, createHash, randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { PartEncryptor } from '../src/crypto/part-encryptor';
import { reportTarget } from './bench-support';

const MiB = 1024 * 1024;
const TOTAL = Number(process.env['BENCH_BYTES'] ?? 1024 * MiB);
const CHUNK = MiB;

interface CaseResult {
  readonly name: string;
  readonly seconds: number;
  readonly mbPerSecond: number;
  readonly peakRssMb: number;
}

function* source(chunk: Buffer): Generator<Buffer> {
  for (let sent = 0; sent < TOTAL; sent += chunk.length) yield sent + chunk.length <= TOTAL ? chunk : chunk.subarray(0, TOTAL - sent);
}

function sink(): Writable {
  return new Writable({
    write(_chunk, _encoding, callback) {
      callback();
    },
  });
}

const cases: Record<string, (chunk: Buffer) => Promise<void>> = {
  async 'coffer-gateway PartEncryptor (stream, 64 KiB segments)'(chunk) {
    const key = randomBytes(32);
    await pipeline(source(chunk), new PartEncryptor({ dataKey: key, objectId: randomBytes(16), partNumber: 1, plaintextLength: TOTAL }), sink());
  },
  async 'Node AES-256-GCM raw loop (new cipher per 64 KiB segment)'(chunk) {
    const key = randomBytes(32);
    const nonce = Buffer.alloc(12);
    let index = 0;
    for (const piece of source(chunk)) {
      for (let at = 0; at < piece.length; at += 65536) {
        nonce.writeUInt32BE(index++, 7);
        const cipher = createCipheriv('aes-256-gcm', key, nonce);
        cipher.update(piece.subarray(at, at + 65536));
        cipher.final();
        cipher.getAuthTag();
      }
    }
  },
  async 'Node MD5 of the plaintext'(chunk) {
    const md5 = createHash('md5');
    for (const piece of source(chunk)) md5.update(piece);
    md5.digest();
  },
  async 'AWS Encryption SDK encryptStream (defaults)'(chunk) {
    // Imported lazily: it is a devDependency used only as the reference point.
    const { buildClient, CommitmentPolicy, RawAesKeyringNode, RawAesWrappingSuiteIdentifier } = await import('@aws-crypto/client-node');
    const { encryptStream } = buildClient(CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT);
    const keyring = new RawAesKeyringNode({
      keyName: 'bench',
      keyNamespace: 'bench',
      unencryptedMasterKey: new Uint8Array(randomBytes(32)),
      wrappingSuite: RawAesWrappingSuiteIdentifier.AES256_GCM_IV12_TAG16_NO_PADDING,
    });
    await pipeline(source(chunk), encryptStream(keyring, { encryptionContext: { bench: '1' } }), sink());
  },
};

async function runCase(name: string): Promise<void> {
  const run = cases[name];
  if (run === undefined) throw new Error(`unknown case ${name}`);
  const chunk = randomBytes(CHUNK);
  const started = process.hrtime.bigint();
  await run(chunk);
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const result: CaseResult = { name, seconds, mbPerSecond: TOTAL / 1e6 / seconds, peakRssMb: process.resourceUsage().maxRSS / 1024 };
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

const ROUNDS = Number(process.env['BENCH_ROUNDS'] ?? 3);

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] as number;
}

function runAll(): void {
  const runs = new Map<string, CaseResult[]>();
  process.stdout.write(`coffer-gateway bench: ${TOTAL / MiB} MiB per case, ${CHUNK / MiB} MiB chunks, ${ROUNDS} interleaved rounds (median MB/s, highest peak RSS), Node ${process.version}\n\n`);
  for (let round = 0; round < ROUNDS; round += 1) {
    for (const name of Object.keys(cases)) {
      const output = execFileSync(process.execPath, [__filename, '--case', name], { encoding: 'utf8', maxBuffer: 1 << 20 });
      const result = JSON.parse(output.trim().split('\n').pop() as string) as CaseResult;
      runs.set(name, [...(runs.get(name) ?? []), result]);
    }
  }
  const results = new Map<string, CaseResult>();
  for (const [name, list] of runs) {
    const result: CaseResult = { name, seconds: median(list.map((r) => r.seconds)), mbPerSecond: median(list.map((r) => r.mbPerSecond)), peakRssMb: Math.max(...list.map((r) => r.peakRssMb)) };
    results.set(name, result);
    process.stdout.write(`${name.padEnd(62)} ${result.mbPerSecond.toFixed(0).padStart(6)} MB/s   peak RSS ${result.peakRssMb.toFixed(0).padStart(4)} MB   (runs: ${list.map((r) => r.mbPerSecond.toFixed(0)).join(', ')})\n`);
  }
  const ours = results.get('coffer-gateway PartEncryptor (stream, 64 KiB segments)') as CaseResult;
  const raw = results.get('Node AES-256-GCM raw loop (new cipher per 64 KiB segment)') as CaseResult;
  const esdk = results.get('AWS Encryption SDK encryptStream (defaults)') as CaseResult;
  const md5 = results.get('Node MD5 of the plaintext') as CaseResult;
  const vsEsdk = ours.mbPerSecond / esdk.mbPerSecond;
  const vsRaw = ours.mbPerSecond / raw.mbPerSecond;
  reportTarget(`\nratio vs AWS Encryption SDK default: ${vsEsdk.toFixed(2)}×  (target ≥ 4×)`, vsEsdk >= 4);
  reportTarget(`ratio vs Node raw AES-256-GCM:       ${vsRaw.toFixed(2)}×  (target ≥ 0.8×)`, vsRaw >= 0.8);
  process.stdout.write(`ratio vs plaintext MD5:              ${(ours.mbPerSecond / md5.mbPerSecond).toFixed(2)}×  (MD5 is the upload path's other per-byte cost)\n`);
}

const caseIndex = process.argv.indexOf('--case');
if (caseIndex >= 0) {
  void runCase(process.argv[caseIndex + 1] as string);
} else {
  runAll();
}
