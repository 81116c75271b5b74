/**
 * COS-style XML in and out (fast-xml-parser).
 *
 * Out: `toXml({ Root: {...} })` with the `<?xml …?>` prologue the SDK expects; text is escaped by the
 * builder, arrays become repeated elements.
 *
 * In (CompleteMultipartUpload only): the body is read with a hard size cap, must be UTF-8, and may not
 * contain a DOCTYPE — fast-xml-parser expands internal DTD entities, which is the only entity
 * expansion it does, so refusing `<!DOCTYPE` leaves just the predefined and numeric references
 * (`&quot;` and `&#34;` both occur in ETags). Anything but the documented shape is MalformedXML.
 */
import { XMLBuilder, XMLParser } from 'fast-xml-parser';
import type { Readable } from 'node:stream';
import { GatewayError, isGatewayError } from '../errors/gateway-error';
import { MAX_PART_NUMBER } from './route';
import { CHECKSUM_ALGORITHMS, isChecksumValue, type ChecksumAlgorithm } from '../http/object-checksum';

export const XML_PROLOGUE = '<?xml version="1.0" encoding="UTF-8"?>';

/**
 * Cap on a CompleteMultipartUpload body. The SDK strips whitespace to stay under the 1 MB some
 * servers enforce (10,000 parts ≈ 853 KB); 2 MiB also admits other clients' pretty-printed bodies.
 */
export const MAX_XML_BODY_BYTES = 2 * 1024 * 1024;

const builder = new XMLBuilder({ format: false, suppressEmptyNode: false, processEntities: true });

/**
 * A parser for request bodies: attributes, declarations and processing instructions ignored, values
 * kept as text, entities decoded exactly once (`&#34;` too). `arrayPaths` are always arrays.
 * `trimValues: false` where whitespace is data (S3 keys in DeleteObjects).
 */
function requestBodyParser(arrayPaths: readonly string[], options: { readonly trimValues?: boolean } = {}): XMLParser {
  const arrays = new Set(arrayPaths);
  return new XMLParser({
    ignoreAttributes: true,
    ignoreDeclaration: true,
    ignorePiTags: true,
    parseTagValue: false,
    trimValues: options.trimValues ?? true,
    processEntities: true,
    htmlEntities: true,
    isArray: (_name, jpath) => typeof jpath === 'string' && arrays.has(jpath),
  });
}

const completeParser = requestBodyParser(['CompleteMultipartUpload.Part']);

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Serialises one root element, e.g. `toXml({ InitiateMultipartUploadResult: { Bucket, Key, UploadId } })`. */
export function toXml(document: Readonly<Record<string, unknown>>): string {
  return `${XML_PROLOGUE}${builder.build(document) as string}`;
}

/**
 * Reads a whole (small) body into memory, failing with EntityTooLarge past `limit` bytes. Errors of
 * the stream (a guarded body fails with GatewayErrors) propagate unchanged.
 */
export async function readBodyCapped(body: Readable, limit: number = MAX_XML_BODY_BYTES): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of body as AsyncIterable<Buffer | string>) {
    const buffer = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    total += buffer.length;
    if (total > limit) {
      body.destroy();
      throw new GatewayError('EntityTooLarge', `The XML body is larger than ${limit} bytes.`);
    }
    chunks.push(buffer);
  }
  return Buffer.concat(chunks, total);
}

export interface CompletePart {
  readonly partNumber: number;
  /** The ETag as sent, entities decoded (normally with its quotes: `"<hex>"`). */
  readonly etag: string;
  /** An S3 client's `<ChecksumCRC32>` (…) for the part: checked against the part's stored checksum (CDCS clients send none). */
  readonly checksum?: { readonly algorithm: ChecksumAlgorithm; readonly value: string };
}

const malformed = (message: string): GatewayError => new GatewayError('MalformedXML', message);

function record(value: unknown): Record<string, unknown> | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
}

/**
 * Parses `<CompleteMultipartUpload><Part><PartNumber/><ETag/></Part>…</CompleteMultipartUpload>`.
 * Returns the parts in document order; ordering and duplicates are the handler's to judge
 * (InvalidPartOrder / InvalidPart need the upload's state).
 */
export function parseCompleteMultipartUpload(body: Buffer): CompletePart[] {
  if (body.length > MAX_XML_BODY_BYTES) throw new GatewayError('EntityTooLarge', `The XML body is larger than ${MAX_XML_BODY_BYTES} bytes.`);
  const document = parseUntrusted(body, completeParser);
  const top = record(document);
  if (top === undefined || Object.keys(top).length !== 1 || !('CompleteMultipartUpload' in top)) {
    throw malformed('The root element must be CompleteMultipartUpload.');
  }
  const parts = record(top['CompleteMultipartUpload'])?.['Part'];
  if (!Array.isArray(parts) || parts.length === 0) throw malformed('CompleteMultipartUpload must list at least one Part.');
  if (parts.length > MAX_PART_NUMBER) throw malformed(`CompleteMultipartUpload lists more than ${MAX_PART_NUMBER} parts.`);

  return parts.map((value: unknown, index) => {
    const part = record(value);
    const number = part?.['PartNumber'];
    const etag = part?.['ETag'];
    if (typeof number !== 'string' || !/^[1-9][0-9]{0,4}$/.test(number) || Number(number) > MAX_PART_NUMBER) {
      throw malformed(`Part ${index + 1}: PartNumber must be an integer from 1 to ${MAX_PART_NUMBER}.`);
    }
    if (typeof etag !== 'string' || etag === '') throw malformed(`Part ${index + 1}: ETag is missing.`);
    const checksums = CHECKSUM_ALGORITHMS.filter((algorithm) => part?.[`Checksum${algorithm}`] !== undefined);
    if (checksums.length > 1) throw malformed(`Part ${index + 1}: more than one checksum.`);
    const algorithm = checksums[0];
    if (algorithm === undefined) return { partNumber: Number(number), etag };
    const checksum = part?.[`Checksum${algorithm}`];
    if (typeof checksum !== 'string' || !isChecksumValue(algorithm, checksum)) throw new GatewayError('InvalidPart', `Part ${index + 1}: the Checksum${algorithm} value is not a ${algorithm} checksum.`, { reason: 'part-checksum-format' });
    return { partNumber: Number(number), etag, checksum: { algorithm, value: checksum } };
  });
}

/**
 * Parses a small XML request body whose root element must be `root` (the same checks as Complete:
 * UTF-8, no DOCTYPE or entity declarations, well-formed). Elements at `arrayPaths` (e.g.
 * `LifecycleConfiguration.Rule`) are always arrays. Returns the root element's content.
 */
export function parseXmlDocument(body: Buffer, root: string, arrayPaths: readonly string[], options: { readonly trimValues?: boolean } = {}): Record<string, unknown> {
  const document = parseUntrusted(body, requestBodyParser(arrayPaths, options));
  const top = record(document);
  if (top === undefined || Object.keys(top).length !== 1 || !(root in top)) throw malformed(`The root element must be ${root}.`);
  return record(top[root]) ?? {};
}

/** The checks every XML request body passes: UTF-8, no DOCTYPE or entity declarations, well-formed. */
function parseUntrusted(body: Buffer, parser: XMLParser): unknown {
  let text: string;
  try {
    text = utf8.decode(body);
  } catch {
    throw malformed('The XML body is not valid UTF-8.');
  }
  if (/<!DOCTYPE|<!ENTITY/i.test(text)) throw malformed('DOCTYPE and entity declarations are not accepted.');
  try {
    return parser.parse(text, true);
  } catch (error) {
    if (isGatewayError(error)) throw error;
    throw malformed('The XML body is not well-formed.');
  }
}
