import { XMLParser } from 'fast-xml-parser';
import { PassThrough, Readable } from 'node:stream';
import { GatewayError } from '../../src/errors/gateway-error';
import { MAX_XML_BODY_BYTES, parseCompleteMultipartUpload, readBodyCapped, toXml } from '../../src/cdcs/xml';

const ETAG = '"0123456789abcdef0123456789abcdef"';

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    if (error instanceof GatewayError) return `${error.status} ${error.code}`;
    throw error;
  }
  return 'no error';
}

const complete = (parts: string): Buffer => Buffer.from(`<CompleteMultipartUpload>${parts}</CompleteMultipartUpload>`);
const part = (n: string, etag: string): string => `<Part><PartNumber>${n}</PartNumber><ETag>${etag}</ETag></Part>`;

describe('toXml', () => {
  test('prologue, escaping and repeated elements', () => {
    const xml = toXml({ ListPartsResult: { Bucket: 'demo-1250000000', Key: 'a<&>"\'b', Part: [{ PartNumber: 1 }, { PartNumber: 2 }], IsTruncated: 'false' } });
    expect(xml.startsWith('<?xml version="1.0" encoding="UTF-8"?><ListPartsResult>')).toBe(true);
    expect(xml).toContain('<Key>a&lt;&amp;&gt;&quot;&apos;b</Key>');
    expect(xml).toContain('<Part><PartNumber>1</PartNumber></Part><Part><PartNumber>2</PartNumber></Part>');
    // what a COS client's parser reads back
    expect(new XMLParser({ parseTagValue: false }).parse(xml).ListPartsResult.Key).toBe('a<&>"\'b');
  });
});

describe('parseCompleteMultipartUpload', () => {
  test('the body the official SDK sends (&quot; decoded), in document order', () => {
    const quoted = ETAG.replace(/"/g, '&quot;');
    expect(parseCompleteMultipartUpload(complete(part('2', quoted) + part('1', quoted)))).toEqual([
      { partNumber: 2, etag: ETAG },
      { partNumber: 1, etag: ETAG },
    ]);
  });

  test('prologue, whitespace, comments, numeric references and raw quotes', () => {
    const body = Buffer.from(
      `<?xml version="1.0" encoding="UTF-8"?>\n<CompleteMultipartUpload xmlns="http://s3.amazonaws.com/doc/2006-03-01/">\n  <!-- c -->\n  <Part>\n    <PartNumber> 3 </PartNumber>\n    <ETag>&#34;abc&#x22;</ETag>\n  </Part>\n  ${part('4', ETAG)}\n</CompleteMultipartUpload>`,
    );
    expect(parseCompleteMultipartUpload(body)).toEqual([
      { partNumber: 3, etag: '"abc"' },
      { partNumber: 4, etag: ETAG },
    ]);
  });

  test('entities are decoded exactly once', () => {
    expect(parseCompleteMultipartUpload(complete(part('1', '&amp;quot;x&amp;#34;')))[0]?.etag).toBe('&quot;x&#34;');
  });

  test.each([
    ['not XML', Buffer.from('hello')],
    ['empty', Buffer.alloc(0)],
    ['unclosed', Buffer.from('<CompleteMultipartUpload><Part>')],
    ['mismatched', Buffer.from('<CompleteMultipartUpload><Part></CompleteMultipartUpload></Part>')],
    ['wrong root', Buffer.from(`<Complete>${part('1', ETAG)}</Complete>`)],
    ['two roots', Buffer.from(`<CompleteMultipartUpload>${part('1', ETAG)}</CompleteMultipartUpload><X/>`)],
    ['no parts', complete('')],
    ['part without ETag', complete('<Part><PartNumber>1</PartNumber></Part>')],
    ['empty ETag', complete(part('1', ''))],
    ['part without number', complete(`<Part><ETag>${ETAG}</ETag></Part>`)],
    ['part number 0', complete(part('0', ETAG))],
    ['part number 10001', complete(part('10001', ETAG))],
    ['part number 01', complete(part('01', ETAG))],
    ['part number 1.0', complete(part('1.0', ETAG))],
    ['nested part number', complete(`<Part><PartNumber><x>1</x></PartNumber><ETag>${ETAG}</ETag></Part>`)],
    ['invalid UTF-8', Buffer.concat([Buffer.from('<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>'), Buffer.from([0xff]), Buffer.from('</ETag></Part></CompleteMultipartUpload>')])],
    ['DOCTYPE with an entity (billion laughs)', Buffer.from(`<!DOCTYPE l [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;">]><CompleteMultipartUpload>${part('1', '&b;')}</CompleteMultipartUpload>`)],
    ['external entity', Buffer.from(`<!DOCTYPE l [<!ENTITY x SYSTEM "file:///etc/passwd">]><CompleteMultipartUpload>${part('1', '&x;')}</CompleteMultipartUpload>`)],
  ])('%s → 400 MalformedXML', (_name, body) => {
    expect(codeOf(() => parseCompleteMultipartUpload(body))).toBe('400 MalformedXML');
  });

  test('10,000 parts (the SDK maximum, ~853 KB) pass; 10,001 are refused', () => {
    const quoted = ETAG.replace(/"/g, '&quot;');
    const many = Array.from({ length: 10_000 }, (_, i) => part(String(i + 1), quoted)).join('');
    const parsed = parseCompleteMultipartUpload(complete(many));
    expect(parsed).toHaveLength(10_000);
    expect(parsed[9_999]).toEqual({ partNumber: 10_000, etag: ETAG });
    expect(codeOf(() => parseCompleteMultipartUpload(complete(many + part('1', quoted))))).toBe('400 MalformedXML');
  });

  test('a buffer over the cap is EntityTooLarge', () => {
    expect(codeOf(() => parseCompleteMultipartUpload(Buffer.alloc(MAX_XML_BODY_BYTES + 1, 0x20)))).toBe('400 EntityTooLarge');
  });
});

describe('readBodyCapped', () => {
  test('reads everything up to the limit', async () => {
    await expect(readBodyCapped(Readable.from([Buffer.from('ab'), Buffer.from('cd')]), 4)).resolves.toEqual(Buffer.from('abcd'));
  });

  test('stops at limit + 1 byte with EntityTooLarge and destroys the source', async () => {
    const source = new PassThrough();
    source.write(Buffer.alloc(3));
    source.write(Buffer.alloc(3)); // never ended: the reader must not wait for the end
    await expect(readBodyCapped(source, 5)).rejects.toMatchObject({ code: 'EntityTooLarge' });
    expect(source.destroyed).toBe(true);
  });

  test('stream errors pass through unchanged', async () => {
    const source = new PassThrough();
    setImmediate(() => source.destroy(new GatewayError('RequestTimeout')));
    await expect(readBodyCapped(source)).rejects.toMatchObject({ code: 'RequestTimeout' });
  });
});
