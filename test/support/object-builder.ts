import { createHash, randomBytes } from 'node:crypto';
import { sealListingSummary } from '../../src/format/listing-summary';
import { objectEtag, sealManifest, sealManifestV1, type KeyEnvelope, type ManifestPart, type ManifestPlace, type ObjectManifest } from '../../src/format/manifest';
import { encryptPart } from './crypto-helpers';

export interface BuiltObject {
  readonly dataKey: Buffer;
  readonly plaintext: Buffer;
  readonly data: Buffer;
  readonly manifest: ObjectManifest;
  /** The format v2 manifest (what the gateway writes). */
  readonly sealed: Buffer;
  /** The same manifest in format v1 (what earlier gateways wrote; still read). */
  readonly sealedV1: Buffer;
  readonly place: ManifestPlace;
  /** The coffer key the v2 manifest's listing summary is sealed under. */
  readonly cofferKey: Buffer;
  readonly envelope: KeyEnvelope;
  /** Each part's ciphertext as uploaded, by index in `manifest.parts`. */
  readonly partCiphertexts: Buffer[];
}

export interface BuildOptions {
  readonly partSizes: readonly number[];
  readonly partNumbers?: readonly number[];
  /** Storage order of the parts in the data object (indexes); defaults to part order. */
  readonly storageOrder?: readonly number[];
  /** Filler bytes placed before each stored part. */
  readonly filler?: number;
  readonly dataKey?: Buffer;
  readonly objectId?: Buffer;
}

export async function buildObject(options: BuildOptions): Promise<BuiltObject> {
  const dataKey = options.dataKey ?? randomBytes(32);
  const objectId = options.objectId ?? randomBytes(16);
  const numbers = options.partNumbers ?? options.partSizes.map((_, i) => i + 1);
  const plaintexts = options.partSizes.map((size) => randomBytes(size));
  const salts = options.partSizes.map(() => randomBytes(32));
  const ciphertexts = await Promise.all(options.partSizes.map((size, i) => encryptPart({ dataKey, objectId, partNumber: numbers[i] as number, plaintextLength: size, salt: salts[i] as Buffer }, plaintexts[i] as Buffer)));
  const order = options.storageOrder ?? options.partSizes.map((_, i) => i);
  const offsets: number[] = [];
  const pieces: Buffer[] = [];
  let at = 0;
  for (const index of order) {
    if (options.filler) {
      pieces.push(randomBytes(options.filler));
      at += options.filler;
    }
    offsets[index] = at;
    pieces.push(ciphertexts[index] as Buffer);
    at += (ciphertexts[index] as Buffer).length;
  }
  const parts: ManifestPart[] = options.partSizes.map((size, i) => ({
    partNumber: numbers[i] as number,
    plaintextLength: size,
    offset: offsets[i] as number,
    salt: salts[i] as Buffer,
    md5: createHash('md5')
      .update(plaintexts[i] as Buffer)
      .digest(),
  }));
  const plaintext = Buffer.concat(plaintexts);
  const data = Buffer.concat(pieces);
  const manifest: ObjectManifest = {
    objectId,
    kind: parts.length === 1 && numbers[0] === 1 ? 'single' : 'multipart',
    plaintextSize: plaintext.length,
    ciphertextSize: data.length,
    attributes: { contentType: 'application/octet-stream', metadata: { owner: 'test' }, created: '2026-11-24T00:00:00.000Z' },
    parts,
  };
  const place: ManifestPlace = { coffer: 'demo-1250000000', key: 'a/b' };
  const envelope: KeyEnvelope = { provider: 'local', keyId: 'test', wrappedKey: randomBytes(60), context: { ...place } };
  const cofferKey = randomBytes(32);
  const summary = sealListingSummary(cofferKey, place.coffer, place.key, objectId, { size: manifest.plaintextSize, etag: objectEtag(manifest), created: manifest.attributes.created });
  const sealed = sealManifest(manifest, envelope, dataKey, place, summary);
  return { dataKey, plaintext, data, manifest, sealed, sealedV1: sealManifestV1(manifest, envelope, dataKey), place, cofferKey, envelope, partCiphertexts: ciphertexts };
}

/** An upstream stand-in for object-reader: serves byte ranges of `data` and counts requests and bytes. */
export function rangeSource(data: Buffer, chunkSize = 10000) {
  const stats = { requests: 0, bytes: 0, ranges: [] as Array<[number, number]> };
  return {
    stats,
    fetchRange: async (start: number, end: number): Promise<AsyncIterable<Buffer>> => {
      stats.requests += 1;
      stats.ranges.push([start, end]);
      const slice = data.subarray(start, Math.min(end, data.length));
      stats.bytes += slice.length;
      return (async function* () {
        for (let at = 0; at < slice.length; at += chunkSize) yield slice.subarray(at, at + chunkSize);
      })();
    },
  };
}
