import type { Readable } from 'node:stream';
import { GatewayError } from '../errors/gateway-error';
import { MAX_MANIFEST_BYTES } from '../format/manifest';

/**
 * Reads a bookkeeping object (upload record, manifest) into memory. These are bounded by the format
 * (a manifest of 10000 parts is ~0.75 MB); anything larger is not ours, and reading stops there
 * rather than buffering whatever the bucket holds.
 */
export async function readSmallObject(body: Readable, maxBytes = MAX_MANIFEST_BYTES): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += (chunk as Buffer).length;
    if (size > maxBytes) {
      body.destroy();
      throw new GatewayError('InternalError', 'A bookkeeping object is larger than the format allows.', { reason: 'bookkeeping-object-too-large' });
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}
