import { parseLifecycleDocument, renderLifecycleDocument } from '../../src/cdcs/lifecycle-document';
import { GatewayError } from '../../src/errors/gateway-error';

const codeOf = (body: string): string | undefined => {
  try {
    parseLifecycleDocument(Buffer.from(body));
    return undefined;
  } catch (error) {
    return error instanceof GatewayError ? error.code : String(error);
  }
};

const xml = (rule: string): string => `<?xml version="1.0"?><LifecycleConfiguration><Rule>${rule}</Rule></LifecycleConfiguration>`;

describe('the CDCS JSON form', () => {
  test.each([1, 30, 3650])('Days %d is accepted', (days) => {
    expect(parseLifecycleDocument(Buffer.from(JSON.stringify({ Rule: [{ Expiration: { Days: days } }] })))).toEqual({ days, form: 'json' });
  });

  test.each([
    ['Days 0', '{"Rule":[{"Expiration":{"Days":0}}]}', 'InvalidArgument'],
    ['Days 3651', '{"Rule":[{"Expiration":{"Days":3651}}]}', 'InvalidArgument'],
    ['Days 1.5', '{"Rule":[{"Expiration":{"Days":1.5}}]}', 'InvalidArgument'],
    ['Days as a string', '{"Rule":[{"Expiration":{"Days":"10"}}]}', 'InvalidArgument'],
    ['not JSON', '{"Rule":[', 'MalformedXML'],
    ['no Rule', '{}', 'InvalidLifeCycle'],
    ['two rules', '{"Rule":[{"Expiration":{"Days":1}},{"Expiration":{"Days":2}}]}', 'InvalidLifeCycle'],
    ['no Expiration', '{"Rule":[{}]}', 'InvalidLifeCycle'],
    ['an unknown element', '{"Rule":[{"Expiration":{"Days":1},"Filter":{"Prefix":"a/"}}]}', 'InvalidLifeCycle'],
    ['a top-level array', '[1]', 'InvalidLifeCycle'],
  ])('%s → %s', (_name, body, code) => {
    expect(codeOf(body)).toBe(code);
  });

  test('answers in JSON', () => {
    expect(JSON.parse(renderLifecycleDocument({ days: 10, form: 'json' }).body)).toEqual({ Rule: [{ Expiration: { Days: 10 } }] });
  });
});

describe('the COS XML form (putBucketLifecycle of the official SDK)', () => {
  test('a whole-coffer enabled rule is accepted and answered back in XML with its ID', () => {
    const document = parseLifecycleDocument(Buffer.from(xml('<ID>expire</ID><Status>Enabled</Status><Filter><Prefix></Prefix></Filter><Expiration><Days>7</Days></Expiration>')));
    expect(document).toEqual({ days: 7, form: 'xml', ruleId: 'expire' });
    const rendered = renderLifecycleDocument(document);
    expect(rendered.contentType).toBe('application/xml');
    expect(rendered.body).toContain('<ID>expire</ID><Filter><Prefix></Prefix></Filter><Status>Enabled</Status><Expiration><Days>7</Days></Expiration>');
  });

  test.each([
    ['a prefix filter', '<Status>Enabled</Status><Filter><Prefix>logs/</Prefix></Filter><Expiration><Days>7</Days></Expiration>', 'InvalidLifeCycle'],
    ['a disabled rule', '<Status>Disabled</Status><Expiration><Days>7</Days></Expiration>', 'InvalidLifeCycle'],
    ['a transition', '<Status>Enabled</Status><Transition><Days>7</Days></Transition><Expiration><Days>7</Days></Expiration>', 'InvalidLifeCycle'],
    ['an expiry date', '<Status>Enabled</Status><Expiration><Date>2030-01-01T00:00:00Z</Date></Expiration>', 'InvalidLifeCycle'],
    ['Days 0', '<Status>Enabled</Status><Expiration><Days>0</Days></Expiration>', 'InvalidArgument'],
    ['Days -1', '<Status>Enabled</Status><Expiration><Days>-1</Days></Expiration>', 'InvalidArgument'],
  ])('%s → %s', (_name, rule, code) => {
    expect(codeOf(xml(rule))).toBe(code);
  });

  test('malformed XML, a DOCTYPE or another root → MalformedXML', () => {
    expect(codeOf('<LifecycleConfiguration><Rule>')).toBe('MalformedXML');
    expect(codeOf('<!DOCTYPE x [<!ENTITY a "b">]><LifecycleConfiguration/>')).toBe('MalformedXML');
    expect(codeOf('<Other/>')).toBe('MalformedXML');
  });

  test('an oversized body is refused before parsing', () => {
    expect(codeOf(' '.repeat(70 * 1024))).toBe('EntityTooLarge');
  });
});
