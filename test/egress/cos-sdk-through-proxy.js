/**
 * Runs the official COS SDK on its defaults (Protocol https) with the gateway as its `Proxy`, the way a
 * user runs it: in its own Node process whose trust comes only from NODE_EXTRA_CA_CERTS. Started by
 * test/egress/egress-end-to-end.test.ts with one JSON argument:
 *   { sdk, proxy, secretId, secretKey, bucket, region, domain?, prefix, directory }
 * Prints one JSON line: the SHA-256 of what came back from each operation, the listing, and the
 * first error (statusCode, code, message) if an operation failed.
 */
'use strict';
const { createHash, randomBytes } = require('node:crypto');
const { writeFileSync } = require('node:fs');
const { join } = require('node:path');

const input = JSON.parse(process.argv[2]);
const COS = require(input.sdk);
const sha256 = (buffer) => createHash('sha256').update(buffer).digest('hex');
const MiB = 1024 * 1024;

async function main() {
  const cos = new COS({ SecretId: input.secretId, SecretKey: input.secretKey, Proxy: input.proxy, ...(input.domain === undefined ? {} : { Domain: input.domain }) });
  const Bucket = input.bucket;
  const Region = input.region;
  const call = (method, params) => new Promise((resolve, reject) => cos[method]({ Bucket, Region, ...params }, (error, data) => (error ? reject(error) : resolve(data))));
  const out = {};
  const small = randomBytes(1000);
  await call('putObject', { Key: `${input.prefix}small.bin`, Body: small });
  out.small = { sent: sha256(small), got: sha256((await call('getObject', { Key: `${input.prefix}small.bin` })).Body) };
  const ranged = await call('getObject', { Key: `${input.prefix}small.bin`, Range: 'bytes=100-199' });
  out.ranged = { sent: sha256(small.subarray(100, 200)), got: sha256(ranged.Body), statusCode: ranged.statusCode };
  const large = randomBytes(2 * MiB + 17);
  const file = join(input.directory, `${sha256(input.prefix).slice(0, 8)}-large.bin`);
  writeFileSync(file, large);
  const uploaded = await call('sliceUploadFile', { Key: `${input.prefix}large.bin`, FilePath: file, ChunkSize: MiB, SliceSize: MiB });
  out.large = { etag: uploaded.ETag, sent: sha256(large), got: sha256((await call('getObject', { Key: `${input.prefix}large.bin` })).Body) };
  const listed = await call('getBucket', { Prefix: input.prefix });
  out.listing = listed.Contents.map((entry) => [entry.Key, Number(entry.Size)]);
  return out;
}

main().then(
  (out) => process.stdout.write(`${JSON.stringify(out)}\n`),
  (error) => {
    const detail = error && typeof error === 'object' ? { statusCode: error.statusCode, code: error.code ?? error.error?.Code, message: String(error.message ?? error.error?.Message ?? error) } : { message: String(error) };
    process.stdout.write(`${JSON.stringify({ error: detail })}\n`);
  },
);
