/**
 * Exact keys, property-based (fast-check): random Unicode keys — biased towards the characters that
 * broke before (a leading U+FEFF, U+FFFE/U+FFFF, C1 and C0 controls) and towards URL and XML
 * metacharacters — through a real gateway. A key XML 1.0 can carry goes PUT → HEAD → GET → listing
 * (plain and `encoding-type=url`) and comes back exactly, with its bytes, and every XML answer is
 * well-formed; any other key is refused with 400 InvalidObjectKey and causes no upstream request.
 * No answer is ever a 5xx.
 */
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { XMLValidator } from 'fast-xml-parser';
import { send, signed, type CosCredentials, type SentAnswer } from '../support/cos-signed-request';
import { startRecordedGateway, type RecordedGateway } from '../support/recorded-gateway';

const COFFER = 'keys-1250000000';
const KEY: CosCredentials = { secretId: 'AKIDkeyRoundTrip', secretKey: 'key-round-trip-secret-key-0123456789' };

let recorded: RecordedGateway;
beforeAll(async () => {
  recorded = await startRecordedGateway({ coffers: [COFFER], accessKeys: [{ ...KEY, grants: [{ coffer: COFFER, actions: ['*'] }] }] });
});
afterAll(async () => {
  await recorded?.stop();
});

/** XML 1.0 Char, minus the C0 controls it allows (tab, LF, CR), C1 controls and DEL, which keys may not hold. */
const KEY_TEXT = /^[\u0020-\u007e\u00a0-\ud7ff\ue000-\ufffd\u{10000}-\u{10ffff}]+$/u;
/** Anything outside XML 1.0's Char production. */
const NOT_XML_CHAR = /[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\u{10000}-\u{10ffff}]/u;

const SPECIAL = [
  '\ufeff',
  '\ufffe',
  '\uffff',
  '\u0085',
  '\u0080',
  '\u009f',
  '\u007f',
  '\u0000',
  '\u001f',
  '\t',
  '\u00a0',
  '\ufffd',
  '\u{1f600}',
  '\u{10ffff}',
  '/',
  '//',
  '%',
  '%2F',
  '+',
  ' ',
  '&',
  '<',
  '>',
  '"',
  "'",
  '?',
  '#',
  '=',
  ';',
  '*',
  '(',
  '.',
  '..',
  '\\',
  '~',
];
const keyArbitrary = fc
  .array(fc.oneof(fc.constantFrom(...SPECIAL), fc.string({ unit: 'binary', minLength: 1, maxLength: 4 })), { minLength: 1, maxLength: 12 })
  .map((parts) => parts.join(''))
  .filter((key) => Buffer.byteLength(key, 'utf8') <= 850 && !/\p{Surrogate}/u.test(key));

const host = (): string => `127.0.0.1:${recorded.port}`;
const pathOf = (key: string): string => `/${COFFER}/${encodeURIComponent(key)}`;

function request(method: string, key: string | undefined, params: Array<[string, string]> = []): ReturnType<typeof signed> {
  const path = key === undefined ? `/${COFFER}/` : pathOf(key);
  return signed({ method, params, host: host(), path, signedPath: key === undefined ? `/${COFFER}/` : `/${COFFER}/${key}`, mode: 'header', credentials: KEY });
}

const unescapeXml = (text: string): string => text.replace(/&(lt|gt|quot|apos|amp);/g, (_m, name: string) => ({ lt: '<', gt: '>', quot: '"', apos: "'", amp: '&' })[name] as string);

function listedKeys(answer: SentAnswer): string[] {
  return [...answer.text.matchAll(/<Key>([^<]*)<\/Key>/g)].map((m) => unescapeXml(m[1] as string));
}

function wellFormed(answer: SentAnswer): boolean {
  return !NOT_XML_CHAR.test(answer.text) && XMLValidator.validate(answer.text) === true;
}

const used = new Set<string>();

test('random keys: a valid one round-trips exactly (PUT, HEAD, GET, listing plain and url-encoded); an invalid one is 400 with nothing upstream', async () => {
  let valid = 0;
  let invalid = 0;
  await fc.assert(
    fc.asyncProperty(keyArbitrary, async (key) => {
      fc.pre(!used.has(key));
      used.add(key);
      const body = randomBytes(1 + (key.length % 50));
      const before = recorded.proxy.requests.length;
      const put = await send(recorded.port, request('PUT', key), body);
      if (!KEY_TEXT.test(key)) {
        invalid += 1;
        expect([put.status, put.code]).toEqual([400, 'InvalidObjectKey']);
        expect(wellFormed(put)).toBe(true);
        expect(recorded.proxy.requests.length).toBe(before);
        return;
      }
      valid += 1;
      expect(put.status).toBe(200);
      const head = await send(recorded.port, request('HEAD', key));
      expect([head.status]).toEqual([200]);
      const get = await send(recorded.port, request('GET', key));
      expect(get.status).toBe(200);
      expect(get.body.equals(body)).toBe(true);

      const plain = await send(recorded.port, request('GET', undefined, [['prefix', key]]));
      expect(plain.status).toBe(200);
      expect(wellFormed(plain)).toBe(true);
      expect(listedKeys(plain)).toContain(key);
      const encoded = await send(
        recorded.port,
        request('GET', undefined, [
          ['prefix', key],
          ['encoding-type', 'url'],
        ]),
      );
      expect(encoded.status).toBe(200);
      expect(wellFormed(encoded)).toBe(true);
      expect(listedKeys(encoded).map((k) => decodeURIComponent(k))).toContain(key);
    }),
    { numRuns: 150 },
  );
  // Both branches were exercised (the bias towards forbidden characters makes both common).
  expect(valid).toBeGreaterThan(20);
  expect(invalid).toBeGreaterThan(20);
});

test('random bytes as a key: valid UTF-8 key text round-trips, anything else is 400 (InvalidURI or InvalidObjectKey) with nothing upstream', async () => {
  const strict = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
  await fc.assert(
    fc.asyncProperty(fc.uint8Array({ minLength: 1, maxLength: 24 }), async (bytes) => {
      let key: string | undefined;
      try {
        key = strict.decode(bytes);
      } catch {
        key = undefined;
      }
      fc.pre(key === undefined || !used.has(key));
      if (key !== undefined) used.add(key);
      const path = `/${COFFER}/${[...bytes].map((b) => `%${b.toString(16).padStart(2, '0').toUpperCase()}`).join('')}`;
      // Signed over the decoded key when there is one; an undecodable path is refused before any signature check.
      const put = signed({ method: 'PUT', params: [], host: host(), path, signedPath: `/${COFFER}/${key ?? ''}`, mode: 'header', credentials: KEY });
      const before = recorded.proxy.requests.length;
      const answer = await send(recorded.port, put, Buffer.from('b'));
      if (key !== undefined && KEY_TEXT.test(key)) {
        expect(answer.status).toBe(200);
        expect((await send(recorded.port, request('GET', key))).text).toBe('b');
        return;
      }
      expect([answer.status, key === undefined ? 'InvalidURI' : 'InvalidObjectKey']).toEqual([400, answer.code]);
      expect(wellFormed(answer)).toBe(true);
      expect(recorded.proxy.requests.length).toBe(before);
    }),
    { numRuns: 100 },
  );
});

test('the two keys of the old defect are two keys: "\\ufeffabc" and "abc"', async () => {
  expect((await send(recorded.port, request('PUT', '\ufeffbom'), Buffer.from('with'))).status).toBe(200);
  expect((await send(recorded.port, request('PUT', 'bom'), Buffer.from('without'))).status).toBe(200);
  expect((await send(recorded.port, request('GET', '\ufeffbom'))).text).toBe('with');
  expect((await send(recorded.port, request('GET', 'bom'))).text).toBe('without');
});
