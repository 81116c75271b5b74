/** The CORS blocks of the configuration (coffers.<name>.cors, demo.cors). */
import { baseConfig, load, problemsOf } from './helpers';

test('a coffer allows no browser origin unless configured; the demo coffer allows loopback pages on any port', () => {
  const config = load({ ...baseConfig(), coffers: { 'shop-1250000000': { ...baseConfig().coffers['demo-1250000000'] } }, demo: { enabled: true }, embeddedUpstream: { enabled: true } });
  expect(config.coffers['shop-1250000000']?.cors.allowedOrigins).toEqual([]);
  expect(config.demo.cors.allowedOrigins).toEqual(['http://localhost:*', 'http://127.0.0.1:*', 'http://[::1]:*']);
});

test('configured origins are kept as written', () => {
  const config = baseConfig();
  config.coffers['demo-1250000000'].cors = { allowedOrigins: ['https://app.example.com', 'http://localhost:*'] };
  expect(load(config).coffers['demo-1250000000']?.cors.allowedOrigins).toEqual(['https://app.example.com', 'http://localhost:*']);
});

test('"*", paths, upper case and default ports are refused with the field named', () => {
  const config = baseConfig();
  config.coffers['demo-1250000000'].cors = { allowedOrigins: ['*', 'https://app.example.com/', 'https://APP.example.com', 'https://app.example.com:443'] };
  const problems = problemsOf(() => load(config));
  for (const index of [0, 1, 2, 3]) {
    expect(problems).toEqual(expect.arrayContaining([expect.stringMatching(new RegExp(`coffers\\.demo-1250000000\\.cors\\.allowedOrigins\\[${index}\\].*"\\*" is not accepted`))]));
  }
});

test('an unknown key in a cors block is refused', () => {
  const config = baseConfig();
  config.coffers['demo-1250000000'].cors = { allowedOrigins: [], allowCredentials: true };
  expect(problemsOf(() => load(config)).join('\n')).toMatch(/allowCredentials/);
});
