// Uploads a file through a local coffer-gateway with the official COS SDK (cos-nodejs-sdk-v5), in
// 1 MB parts, then reads it back and compares SHA-256. Usage (with `npm start` running in another
// terminal, and the SecretId/SecretKey it printed):
//   COFFER_SECRET_ID=... COFFER_SECRET_KEY=... node examples/cos-sdk-upload.js <file> [key]
'use strict';
const COS = require('cos-nodejs-sdk-v5');
const crypto = require('node:crypto');
const fs = require('node:fs');

const [file, key = require('node:path').basename(file || '')] = process.argv.slice(2);
if (!file) {
  console.error('usage: node examples/cos-sdk-upload.js <file> [key]');
  process.exit(2);
}
const port = process.env.PORT || '8080';
const Bucket = process.env.COFFER || 'demo-1250000000';
const cos = new COS({
  SecretId: process.env.COFFER_SECRET_ID,
  SecretKey: process.env.COFFER_SECRET_KEY,
  Protocol: 'http:',
  Domain: `127.0.0.1:${port}/{Bucket}`, // path-style: http://127.0.0.1:8080/<Coffer>/<Key>
});
const sha256 = (buffer) => crypto.createHash('sha256').update(buffer).digest('hex');

(async () => {
  const uploaded = await cos.sliceUploadFile({ Bucket, Region: 'ap-guangzhou', Key: key, FilePath: file, ChunkSize: 1024 * 1024 });
  console.log('uploaded', uploaded.ETag);
  const object = await cos.getObject({ Bucket, Region: 'ap-guangzhou', Key: key });
  const same = sha256(object.Body) === sha256(fs.readFileSync(file));
  console.log('read back', object.Body.length, 'bytes;', same ? 'SHA-256 matches' : 'SHA-256 DIFFERS');
  process.exit(same ? 0 : 1);
})().catch((error) => {
  console.error('failed:', error.code || error.error || error);
  process.exit(1);
});
