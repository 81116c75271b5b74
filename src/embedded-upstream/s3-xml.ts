/** XML helpers of the embedded upstream: escaping for responses, a strict parser for request bodies. */
import { XMLParser } from 'fast-xml-parser';
import { s3Errors } from './s3-error';

export const S3_NS = 'http://s3.amazonaws.com/doc/2006-03-01/';

export function xmlEscape(value: string): string {
  // eslint-disable-next-line no-control-regex -- control characters are what this escapes
  return value.replace(/[&<>"'\u0000-\u0008\u000b\u000c\u000e-\u001f\r]/g, (char) => {
    switch (char) {
      case '&':
        return '&amp;';
      case '<':
        return '&lt;';
      case '>':
        return '&gt;';
      case '"':
        return '&quot;';
      case "'":
        return '&apos;';
      default:
        return `&#x${char.charCodeAt(0).toString(16)};`;
    }
  });
}

/** `<name>escaped</name>`, or '' when the value is undefined. */
export function element(name: string, value: string | number | boolean | undefined): string {
  return value === undefined ? '' : `<${name}>${xmlEscape(String(value))}</${name}>`;
}

export function document(root: string, body: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n<${root} xmlns="${S3_NS}">${body}</${root}>`;
}

export function errorDocument(code: string, message: string, resource: string, requestId: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n<Error>${element('Code', code)}${element('Message', message)}${element('Resource', resource)}${element('RequestId', requestId)}</Error>`;
}

const parser = new XMLParser({
  ignoreAttributes: true,
  parseTagValue: false, // "00001" stays a string; keys are never coerced
  trimValues: false, // keys may begin or end with spaces
  processEntities: true,
  htmlEntities: true, // numeric character references (&#x0D;) too
  ignoreDeclaration: true,
  isArray: (name) => name === 'Part' || name === 'Object',
});

/** Parses a request body; anything not well-formed is MalformedXML. */
export function parseXml(body: Buffer): Record<string, unknown> {
  try {
    const parsed = parser.parse(body.toString('utf8'), true) as unknown;
    if (typeof parsed !== 'object' || parsed === null) throw s3Errors.malformedXML();
    return parsed as Record<string, unknown>;
  } catch {
    throw s3Errors.malformedXML();
  }
}

/** Text content of a parsed element (fast-xml-parser gives a string, or an object with '#text'). */
export function text(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (typeof value === 'object' && value !== null && typeof (value as Record<string, unknown>)['#text'] === 'string') return (value as Record<string, string>)['#text'];
  if (value === '' || (typeof value === 'object' && value !== null && Object.keys(value).length === 0)) return '';
  return undefined;
}
