/** Browser origins as the CORS configuration names them (src/http/origin-pattern.ts): parsed strictly, matched exactly. */
import { LOOPBACK_ORIGINS, originAllowed, parseOriginPattern, type OriginPattern } from '../../src/http/origin-pattern';

const patterns = (...texts: string[]): OriginPattern[] => texts.map((text) => parseOriginPattern(text) as OriginPattern);

test('origins in the serialization browsers send are accepted, as exact patterns or any-port patterns', () => {
  expect(parseOriginPattern('https://app.example.com')).toEqual({ origin: 'https://app.example.com', anyPort: false });
  expect(parseOriginPattern('http://localhost:8080')).toEqual({ origin: 'http://localhost:8080', anyPort: false });
  expect(parseOriginPattern('http://[::1]:*')).toEqual({ origin: 'http://[::1]', anyPort: true });
  for (const text of LOOPBACK_ORIGINS) expect(parseOriginPattern(text)?.anyPort).toBe(true);
});

test('anything a browser would not send as Origin is refused: wildcards, paths, upper case, default ports, other schemes', () => {
  for (const text of [
    '*',
    'null',
    '',
    'https://*.example.com',
    'https://app.example.com/',
    'https://app.example.com/path',
    'https://APP.example.com',
    'HTTPS://app.example.com',
    'https://app.example.com:443',
    'http://app.example.com:80',
    'ftp://app.example.com',
    'file:///tmp',
    'app.example.com',
    'https://user@app.example.com',
    'http://localhost:8080:*',
    'https://app.example.com?x',
    ' https://app.example.com',
  ]) {
    expect({ text, pattern: parseOriginPattern(text) }).toEqual({ text, pattern: undefined });
  }
});

test('an exact pattern matches only that exact string', () => {
  const allowed = patterns('https://app.example.com');
  expect(originAllowed('https://app.example.com', allowed)).toBe(true);
  for (const origin of [
    'https://app.example.com.evil.net',
    'https://app.example.co',
    'http://app.example.com',
    'https://app.example.com:8443',
    'https://APP.example.com',
    'https://app.example.com/',
    'xhttps://app.example.com',
    'null',
    '',
  ]) {
    expect({ origin, allowed: originAllowed(origin, allowed) }).toEqual({ origin, allowed: false });
  }
});

test('an any-port pattern matches that scheme and host with no port or a decimal port, and nothing else', () => {
  const allowed = patterns('http://localhost:*');
  for (const origin of ['http://localhost', 'http://localhost:1', 'http://localhost:5173', 'http://localhost:65535']) expect(originAllowed(origin, allowed)).toBe(true);
  for (const origin of [
    'http://localhost.evil.net',
    'http://localhost.evil.net:80',
    'http://localhost:',
    'http://localhost:80x',
    'http://localhost:5173/',
    'http://localhost:123456',
    'https://localhost:5173',
    'http://localhost:5173.evil.net',
  ]) {
    expect({ origin, allowed: originAllowed(origin, allowed) }).toEqual({ origin, allowed: false });
  }
});

test('no pattern, no origin', () => {
  expect(originAllowed('http://localhost', [])).toBe(false);
});
