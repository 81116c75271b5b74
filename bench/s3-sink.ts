/**
 * A benchmark sink that answers just enough of S3 for the gateway's upload and read paths: part
 * bodies are drained and discarded (so the sink costs as little CPU as possible), small bookkeeping
 * objects are kept in memory, and — when `dataDirectory` is given — single-PUT bodies over 1 MiB go
 * to a file and are served back with Range support (the read benchmark). Not a test double for
 * correctness — see the Ceph integration tests for that.
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, statSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';

export function startSink(port = 0, dataDirectory?: string): Promise<{ port: number; close(): void }> {
  const objects = new Map<string, Buffer>();
  const files = new Map<string, string>();
  const serveFile = (req: IncomingMessage, res: ServerResponse, file: string): void => {
    const size = statSync(file).size;
    const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
    const headers = { etag: '"file"', 'last-modified': new Date(0).toUTCString(), 'accept-ranges': 'bytes' };
    if (range === null) {
      res.writeHead(200, { ...headers, 'content-length': size });
      if (req.method === 'HEAD') res.end();
      else createReadStream(file).pipe(res);
      return;
    }
    const start = Number(range[1]);
    const end = Math.min(range[2] === '' ? size - 1 : Number(range[2]), size - 1);
    res.writeHead(206, { ...headers, 'content-length': end - start + 1, 'content-range': `bytes ${start}-${end}/${size}` });
    createReadStream(file, { start, end }).pipe(res);
  };
  let uploads = 0;
  // Multipart bodies are discarded, but their sizes are kept, so HEAD of a completed object answers
  // with its length (rclone checks the object it wrote).
  const partSizes = new Map<string, Map<string, number>>();
  const completedSizes = new Map<string, number>();
  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    const url = new URL(req.url ?? '/', 'http://sink');
    const path = decodeURIComponent(url.pathname);
    const query = url.searchParams;
    const drain = (keep: boolean, done: (body: Buffer) => void): void => {
      const chunks: Buffer[] = [];
      let size = 0;
      req.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (keep && size <= 1 << 20) chunks.push(chunk);
      });
      req.on('end', () => done(Buffer.concat(chunks)));
    };
    if (req.method === 'POST' && query.has('uploads')) {
      uploads += 1;
      drain(false, () => res.writeHead(200, { 'content-type': 'application/xml' }).end(`<InitiateMultipartUploadResult><Bucket>b</Bucket><Key>k</Key><UploadId>sink-${uploads}</UploadId></InitiateMultipartUploadResult>`));
    } else if (req.method === 'POST' && query.has('uploadId')) {
      // CompleteMultipartUpload (rclone's multipart uploads end with it).
      const parts = partSizes.get(query.get('uploadId') as string);
      partSizes.delete(query.get('uploadId') as string);
      completedSizes.set(
        path,
        [...(parts?.values() ?? [])].reduce((sum, size) => sum + size, 0),
      );
      drain(false, () => res.writeHead(200, { 'content-type': 'application/xml' }).end(`<CompleteMultipartUploadResult><Bucket>b</Bucket><Key>${path}</Key><ETag>"complete-${Date.now()}-1"</ETag></CompleteMultipartUploadResult>`));
    } else if (req.method === 'PUT' && query.has('partNumber')) {
      const uploadId = query.get('uploadId') as string;
      if (!partSizes.has(uploadId)) partSizes.set(uploadId, new Map());
      partSizes.get(uploadId)?.set(query.get('partNumber') as string, Number(req.headers['content-length'] ?? 0));
      drain(false, () => res.writeHead(200, { etag: `"part-${query.get('partNumber')}-${Date.now()}"` }).end());
    } else if (req.method === 'PUT' && dataDirectory !== undefined && Number(req.headers['content-length']) > 1 << 20) {
      const file = join(dataDirectory, createHash('sha256').update(path).digest('hex'));
      req.pipe(createWriteStream(file)).on('finish', () => {
        files.set(path, file);
        res.writeHead(200, { etag: '"file"' }).end();
      });
    } else if (req.method === 'PUT') {
      drain(true, (body) => {
        objects.set(path, body);
        res.writeHead(200, { etag: '"object"' }).end();
      });
    } else if ((req.method === 'GET' || req.method === 'HEAD') && query.get('list-type') === '2') {
      res.writeHead(200, { 'content-type': 'application/xml' }).end('<ListBucketResult><IsTruncated>false</IsTruncated><KeyCount>0</KeyCount></ListBucketResult>');
    } else if (req.method === 'HEAD' && completedSizes.has(path)) {
      res.writeHead(200, { 'content-length': completedSizes.get(path), etag: '"complete-1"', 'last-modified': new Date().toUTCString() }).end();
    } else if ((req.method === 'GET' || req.method === 'HEAD') && files.has(path)) {
      serveFile(req, res, files.get(path) as string);
    } else if (req.method === 'GET' || req.method === 'HEAD') {
      const body = objects.get(path);
      if (body === undefined) res.writeHead(404, { 'content-type': 'application/xml' }).end(req.method === 'HEAD' ? undefined : '<Error><Code>NoSuchKey</Code></Error>');
      else res.writeHead(200, { 'content-length': body.length, etag: '"object"', 'last-modified': new Date().toUTCString() }).end(req.method === 'HEAD' ? undefined : body);
    } else {
      drain(false, () => res.writeHead(204).end());
    }
  };
  const server = createServer(handler);
  server.keepAliveTimeout = 60_000;
  return new Promise((resolve) => server.listen(port, '127.0.0.1', () => resolve({ port: (server.address() as AddressInfo).port, close: () => server.close() })));
}
