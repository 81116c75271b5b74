/**
 * A benchmark sink that answers just enough of S3 for the gateway's upload path: part bodies are
 * drained and discarded (so the sink costs as little CPU as possible), small bookkeeping objects are
 * kept in memory. Not a test double for correctness — see the Ceph integration tests for that.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export function startSink(port = 0): Promise<{ port: number; close(): void }> {
  const objects = new Map<string, Buffer>();
  let uploads = 0;
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
    } else if (req.method === 'PUT' && query.has('partNumber')) {
      drain(false, () => res.writeHead(200, { etag: `"part-${query.get('partNumber')}-${Date.now()}"` }).end());
    } else if (req.method === 'PUT') {
      drain(true, (body) => {
        objects.set(path, body);
        res.writeHead(200, { etag: '"object"' }).end();
      });
    } else if ((req.method === 'GET' || req.method === 'HEAD') && query.get('list-type') === '2') {
      res.writeHead(200, { 'content-type': 'application/xml' }).end('<ListBucketResult><IsTruncated>false</IsTruncated><KeyCount>0</KeyCount></ListBucketResult>');
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
