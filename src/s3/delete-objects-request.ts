/**
 * The body of S3 DeleteObjects: `<Delete><Quiet>true</Quiet><Object><Key>…</Key></Object>…</Delete>`,
 * at most 1000 keys, parsed as the CompleteMultipartUpload body is (src/cdcs/xml.ts): a capped,
 * UTF-8, DOCTYPE-free document; anything else is MalformedXML. Keys are validated like keys in a
 * request target (src/cdcs/request-target.ts), so a delete names exactly the keys a GET could.
 */
import { validateObjectKey } from '../cdcs/request-target';
import { parseXmlDocument } from '../cdcs/xml';
import { GatewayError } from '../errors/gateway-error';

export const MAX_DELETE_KEYS = 1000;

const malformed = (message: string): GatewayError => new GatewayError('MalformedXML', message);

export interface DeleteObjectsRequest {
  readonly quiet: boolean;
  readonly keys: readonly string[];
}

export function parseDeleteObjects(body: Buffer): DeleteObjectsRequest {
  // Keys are exact: a key of spaces or with edge whitespace is a different key (values not trimmed).
  const root = parseXmlDocument(body, 'Delete', ['Delete.Object'], { trimValues: false });
  const { Object: objects, Quiet: quiet } = root as { Object?: unknown; Quiet?: unknown };
  if (!Array.isArray(objects) || objects.length === 0) throw malformed('Delete must list at least one Object.');
  if (objects.length > MAX_DELETE_KEYS) throw malformed(`Delete lists more than ${MAX_DELETE_KEYS} objects.`);
  const keys = objects.map((object: unknown, index) => {
    const key = (object as Record<string, unknown> | null)?.['Key'];
    if (typeof key !== 'string') throw malformed(`Object ${index + 1}: Key is missing.`);
    if ((object as Record<string, unknown>)['VersionId'] !== undefined) throw new GatewayError('NotImplemented', 'Versioned deletes are not implemented by this gateway.');
    validateObjectKey(key);
    return key;
  });
  return { quiet: typeof quiet === 'string' && quiet.trim() === 'true', keys };
}
