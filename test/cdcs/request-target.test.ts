import { COFFER_NAME } from '../../src/config/schema';
import { GatewayError } from '../../src/errors/gateway-error';
import { MAX_TARGET_LENGTH, parseQuery, parseRequestTarget, resourceOf, type RequestTarget } from '../../src/cdcs/request-target';

const C = 'demo-1250000000';

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    if (error instanceof GatewayError) return `${error.status} ${error.code}`;
    throw error;
  }
  return 'no error';
}

describe('parseRequestTarget: accepted targets', () => {
  test.each<[string, Partial<RequestTarget>]>([
    ['/', { pathname: '/', coffer: undefined, key: undefined, query: [], absoluteForm: false }],
    [`/${C}`, { pathname: `/${C}`, coffer: C, key: undefined }],
    [`/${C}/`, { pathname: `/${C}/`, coffer: C, key: undefined }],
    [`/${C}/a/b.txt`, { pathname: `/${C}/a/b.txt`, coffer: C, key: 'a/b.txt' }],
    // unicode keys, percent-encoded as the SDK does (UTF-8 bytes, decoded once)
    [`/${C}/%E8%85%BE%E8%AE%AF%E4%BA%91%20x`, { key: '腾讯云 x', pathname: `/${C}/腾讯云 x` }],
    [`/${C}/exampleobject%28%E8%85%BE%E8%AE%AF%E4%BA%91%29`, { key: 'exampleobject(腾讯云)' }],
    [`/${C}/%F0%9F%98%80`, { key: '😀' }],
    // %2F and / both end up as a slash in the key; the signature covers the decoded path
    [`/${C}/a%2Fb`, { key: 'a/b', pathname: `/${C}/a/b` }],
    // opaque keys: no normalisation of dot segments or empty segments
    [`/${C}/../x/./y//z`, { key: '../x/./y//z' }],
    [`/${C}/%2e%2e/%2E`, { key: '../.' }],
    [`/${C}//lead`, { key: '/lead' }],
    [`/${C}/trail/`, { key: 'trail/' }],
    // decoded exactly once: %2541 is the three characters "%41"
    [`/${C}/%2541`, { key: '%41' }],
    // `+` is a literal plus, in the key and in the query
    [`/${C}/a+b`, { key: 'a+b' }],
    [
      `/${C}/k?x=a+b&y=%2B`,
      {
        query: [
          ['x', 'a+b'],
          ['y', '+'],
        ],
      },
    ],
    // coffer names may be written with escapes; the decoded name is what counts
    [`/demo%2D1250000000/k`, { coffer: C, key: 'k' }],
    [`/${C}/k?uploads`, { query: [['uploads', null]] }],
    [`/${C}/k?uploads=`, { query: [['uploads', '']] }],
    [
      `/${C}/k?partNumber=1&uploadId=ab&partNumber=2`,
      {
        query: [
          ['partNumber', '1'],
          ['uploadId', 'ab'],
          ['partNumber', '2'],
        ],
      },
    ],
    [
      `/${C}/k?a=b=c&&%E4%BA%91=%E4%BA%91`,
      {
        query: [
          ['a', 'b=c'],
          ['云', '云'],
        ],
      },
    ],
    [`/${C}/k?`, { query: [] }],
  ])('%s', (raw, expected) => {
    const target = parseRequestTarget(raw, { acceptAbsoluteForm: true });
    // field by field, so that `key: undefined` means "absent" (toMatchObject would demand the property)
    for (const [field, value] of Object.entries(expected)) expect([field, target[field as keyof RequestTarget]]).toEqual([field, value]);
  });

  test('an 850-byte key is accepted (425 two-byte characters)', () => {
    const key = 'é'.repeat(425);
    expect(Buffer.byteLength(key)).toBe(850);
    expect(parseRequestTarget(`/${C}/${encodeURIComponent(key)}`, { acceptAbsoluteForm: false }).key).toBe(key);
  });
});

describe('parseRequestTarget: refused targets', () => {
  test.each([
    // invalid escapes and invalid UTF-8
    [`/${C}/%ZZ`, '400 InvalidURI'],
    [`/${C}/abc%`, '400 InvalidURI'],
    [`/${C}/abc%4`, '400 InvalidURI'],
    [`/${C}/%C3%28`, '400 InvalidURI'],
    [`/${C}/%ED%A0%80`, '400 InvalidURI'], // UTF-16 surrogate encoded as UTF-8
    [`/${C}/%C0%AF`, '400 InvalidURI'], // overlong "/"
    [`/${C}/%FF`, '400 InvalidURI'],
    [`/${C}/k?x=%ZZ`, '400 InvalidURI'],
    [`/${C}/k?%C3=1`, '400 InvalidURI'],
    // characters that must be escaped
    [`/${C}/a#b`, '400 InvalidURI'],
    [`/${C}/a b`, '400 InvalidURI'],
    [`/${C}/é`, '400 InvalidURI'],
    [`/${C}/a\u0000b`, '400 InvalidURI'],
    // control characters in the decoded key
    [`/${C}/a%00b`, '400 InvalidObjectKey'],
    [`/${C}/a%0Ab`, '400 InvalidObjectKey'],
    [`/${C}/a%0D`, '400 InvalidObjectKey'],
    [`/${C}/%1F`, '400 InvalidObjectKey'],
    [`/${C}/a%7F`, '400 InvalidObjectKey'],
    // too long: 851 bytes
    [`/${C}/${'a'.repeat(851)}`, '400 InvalidObjectKey'],
    [`/${C}/${encodeURIComponent('é'.repeat(425))}a`, '400 InvalidObjectKey'],
    // not a coffer name: it cannot exist
    ['/Bad_Coffer/k', '404 NoSuchCoffer'],
    ['/demo/k', '404 NoSuchCoffer'],
    ['/demo-/k', '404 NoSuchCoffer'],
    ['/-demo-1250000000/k', '404 NoSuchCoffer'],
    [`/${'a'.repeat(51)}-1250000000/k`, '404 NoSuchCoffer'],
    ['//k', '404 NoSuchCoffer'],
    [`/demo%2F1250000000/k`, '404 NoSuchCoffer'],
    // not a path
    ['*', '400 InvalidURI'],
    ['example.com:443', '400 InvalidURI'],
    ['', '400 InvalidURI'],
    [`ftp://h/${C}/k`, '400 InvalidURI'],
    // absolute-form with a bad authority
    [`http://user:pw@h/${C}/k`, '400 InvalidURI'],
    [`http:///${C}/k`, '400 InvalidURI'],
    // too long
    [`/${C}/k?x=${'a'.repeat(MAX_TARGET_LENGTH)}`, '414 URITooLong'],
  ])('%j → %s', (raw, expected) => {
    expect(codeOf(() => parseRequestTarget(raw, { acceptAbsoluteForm: true }))).toBe(expected);
  });
});

describe('absolute-form', () => {
  test('accepted when enabled: the authority is recorded, never part of path or coffer', () => {
    const target = parseRequestTarget(`http://cdcs.ap-guangzhou.myqcloud.com/${C}/k%20x?partNumber=1&uploadId=u`, { acceptAbsoluteForm: true });
    expect(target).toEqual({
      absoluteForm: true,
      authority: 'cdcs.ap-guangzhou.myqcloud.com',
      addressing: 'path',
      pathname: `/${C}/k x`,
      coffer: C,
      key: 'k x',
      query: [
        ['partNumber', '1'],
        ['uploadId', 'u'],
      ],
    });
  });

  test.each([
    [`HTTPS://evil.example:8443/${C}/k`, 'evil.example:8443', `/${C}/k`],
    [`http://[::1]:9/${C}`, '[::1]:9', `/${C}`],
    ['http://h', 'h', '/'],
    ['http://h?uploads', 'h', '/'],
  ])('%s', (raw, host, pathname) => {
    const target = parseRequestTarget(raw, { acceptAbsoluteForm: true });
    expect(target.authority).toBe(host);
    expect(target.pathname).toBe(pathname);
  });

  test('a `..` in an absolute-form path is kept, not resolved against the authority', () => {
    expect(parseRequestTarget(`http://h/${C}/../../etc/passwd`, { acceptAbsoluteForm: true }).key).toBe('../../etc/passwd');
  });

  test('refused when disabled; origin-form is unaffected', () => {
    expect(codeOf(() => parseRequestTarget(`http://h/${C}/k`, { acceptAbsoluteForm: false }))).toBe('400 InvalidRequest');
    expect(parseRequestTarget(`/${C}/k`, { acceptAbsoluteForm: false })).toMatchObject({ absoluteForm: false, key: 'k' });
    expect(parseRequestTarget(`/${C}/k`, { acceptAbsoluteForm: false })).not.toHaveProperty('authority');
  });
});

describe('helpers', () => {
  test('parseQuery keeps order and duplicates', () => {
    expect(parseQuery('b=2&a&b=1&=v')).toEqual([
      ['b', '2'],
      ['a', null],
      ['b', '1'],
      ['', 'v'],
    ]);
  });

  test('the config and the router agree on coffer names', () => {
    for (const name of [C, 'a-1', `${'a'.repeat(50)}-1`]) {
      expect(COFFER_NAME.test(name)).toBe(true);
      expect(parseRequestTarget(`/${name}`, { acceptAbsoluteForm: false }).coffer).toBe(name);
    }
  });

  test.each([
    [`/${C}/k?q-signature=secret&x=1`, `/${C}/k`],
    [`http://h:1/${C}/a%20b?q-signature=secret`, `/${C}/a b`],
    ['http://h?q-signature=secret', '/'],
    [`/${C}/a%00b`, `/${C}/a%00b`], // control characters stay encoded (XML 1.0 cannot carry them)
    [`/${C}/%ZZ`, `/${C}/%ZZ`],
    ['*', '/*'],
  ])('resourceOf(%j) = %j (never the query)', (raw, resource) => {
    expect(resourceOf(raw)).toBe(resource);
  });
});

describe('exact keys: the BOM is key content; characters XML 1.0 cannot carry and C1 controls are refused', () => {
  test('a leading U+FEFF is kept: /c/%EF%BB%BFabc and /c/abc are different keys', () => {
    expect(parseRequestTarget(`/${C}/%EF%BB%BFabc`, { acceptAbsoluteForm: false }).key).toBe('\ufeffabc');
    expect(parseRequestTarget(`/${C}/abc`, { acceptAbsoluteForm: false }).key).toBe('abc');
    expect(parseRequestTarget(`/${C}/a%EF%BB%BF`, { acceptAbsoluteForm: false }).key).toBe('a\ufeff');
  });

  test.each([
    ['U+FFFE', '%EF%BF%BE'],
    ['U+FFFF', '%EF%BF%BF'],
    ['U+0080', '%C2%80'],
    ['U+0085 (NEL)', '%C2%85'],
    ['U+009F', '%C2%9F'],
    ['U+007F', '%7F'],
  ])('%s → 400 InvalidObjectKey', (_name, escaped) => {
    expect(codeOf(() => parseRequestTarget(`/${C}/a${escaped}b`, { acceptAbsoluteForm: false }))).toBe('400 InvalidObjectKey');
  });

  test.each([
    ['U+00A0', '%C2%A0', '\u00a0'],
    ['U+FFFD', '%EF%BF%BD', '\ufffd'],
    ['U+FDD0', '%EF%B7%90', '\ufdd0'],
    ['U+1FFFE', '%F0%9F%BF%BE', '\u{1fffe}'],
  ])('%s is an ordinary key character', (_name, escaped, char) => {
    expect(parseRequestTarget(`/${C}/a${escaped}`, { acceptAbsoluteForm: false }).key).toBe(`a${char}`);
  });

  test('an error Resource never carries a character XML cannot (the raw path is echoed instead)', () => {
    expect(resourceOf(`/${C}/a%EF%BF%BF`)).toBe(`/${C}/a%EF%BF%BF`);
    expect(resourceOf(`/${C}/a%C2%85`)).toBe(`/${C}/a%C2%85`);
  });
});

describe('virtual-hosted addressing: the host names the coffer, the whole path is the key', () => {
  const hosted = (raw: string, hostHeader: string, suffixes: string[] = []) => parseRequestTarget(raw, { acceptAbsoluteForm: true, hostHeader, virtualHostSuffixes: suffixes });

  test.each([`${C}.cos.ap-guangzhou.myqcloud.com`, `${C}.cos.ap-guangzhou.tencentcos.cn`, `${C}.cdcs.ap-guangzhou.myqcloud.com`, `${C.toUpperCase()}.COS.AP-GUANGZHOU.MYQCLOUD.COM:8080`])('origin-form with Host %s', (host) => {
    expect(hosted('/a/b.txt?uploads', host)).toMatchObject({ addressing: 'virtual-hosted', coffer: C, key: 'a/b.txt', pathname: '/a/b.txt', authority: host.toLowerCase() });
    expect(hosted('/', host)).toMatchObject({ addressing: 'virtual-hosted', coffer: C, pathname: '/' });
    expect(hosted('/', host)).not.toHaveProperty('key');
    // A path that starts with a coffer name is a key there, not another coffer.
    expect(hosted('/other-1250000000/x', host)).toMatchObject({ coffer: C, key: 'other-1250000000/x' });
  });

  test('absolute-form (the gateway as proxy): the authority names the coffer, and must equal Host', () => {
    const host = `${C}.cos.ap-guangzhou.myqcloud.com`;
    expect(hosted(`http://${host}/k`, host)).toMatchObject({ absoluteForm: true, addressing: 'virtual-hosted', coffer: C, key: 'k' });
    expect(codeOf(() => hosted(`http://${host}/k`, 'other-1250000000.cos.ap-guangzhou.myqcloud.com'))).toBe('400 InvalidRequest');
    expect(codeOf(() => hosted(`http://cdcs.ap-guangzhou.myqcloud.com/${C}/k`, host))).toBe('400 InvalidRequest');
  });

  test('configured suffixes; other hosts are path-style', () => {
    expect(hosted('/k', `${C}.coffers.example.internal`, ['coffers.example.internal'])).toMatchObject({ addressing: 'virtual-hosted', coffer: C, key: 'k' });
    expect(hosted(`/${C}/k`, `${C}.coffers.example.internal`)).toMatchObject({ addressing: 'path', coffer: C, key: 'k' });
    for (const host of ['127.0.0.1:8080', 'cdcs.ap-guangzhou.myqcloud.com', 'cos.ap-guangzhou.myqcloud.com', 'service.cos.myqcloud.com', `x.${C}.cos.ap-guangzhou.myqcloud.com.evil`, '[::1]:8080']) {
      expect(hosted(`/${C}/k`, host)).toMatchObject({ addressing: 'path', coffer: C, key: 'k' });
    }
  });

  test('a host that is virtual-hosted but names no valid coffer → 404 NoSuchCoffer; a Host that is not an authority → 400', () => {
    expect(codeOf(() => hosted('/k', 'Bad_Name.cos.ap-guangzhou.myqcloud.com'))).toBe('404 NoSuchCoffer');
    expect(codeOf(() => hosted('/k', 'user@host'))).toBe('400 InvalidRequest');
  });
});
