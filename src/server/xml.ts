/** COS-style XML in and out, with fast-xml-parser (entities decoded on input: the SDK sends `&quot;`). */
import { XMLBuilder, XMLParser } from 'fast-xml-parser';
import { GatewayError } from '../errors/gateway-error';

const builder = new XMLBuilder({ format: false, suppressEmptyNode: false });
const parser = new XMLParser({ ignoreAttributes: true, parseTagValue: false, trimValues: true, processEntities: true, isArray: (name) => name === 'Part' });

export function toXml(document: Record<string, unknown>): string {
  return `<?xml version="1.0" encoding="UTF-8"?>${builder.build(document) as string}`;
}

/** Parses a CompleteMultipartUpload body; anything but the documented shape is MalformedXML. */
export function parseCompleteBody(body: Buffer): Array<{ partNumber: number; etag: string }> {
  let document: unknown;
  try {
    document = parser.parse(body.toString('utf8'), true);
  } catch {
    throw new GatewayError('MalformedXML');
  }
  const root = (document as Record<string, unknown> | undefined)?.['CompleteMultipartUpload'];
  const parts = (root as Record<string, unknown> | undefined)?.['Part'];
  if (!Array.isArray(parts)) throw new GatewayError('MalformedXML', 'The body must be a CompleteMultipartUpload with at least one Part.');
  return parts.map((part: unknown) => {
    const number = (part as Record<string, unknown>)['PartNumber'];
    const etag = (part as Record<string, unknown>)['ETag'];
    if (typeof number !== 'string' || !/^[1-9]\d{0,4}$/.test(number) || Number(number) > 10000 || typeof etag !== 'string' || etag === '') {
      throw new GatewayError('MalformedXML', 'Every Part needs a PartNumber from 1 to 10000 and an ETag.');
    }
    return { partNumber: Number(number), etag };
  });
}
