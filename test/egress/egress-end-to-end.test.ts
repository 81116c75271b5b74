/**
 * The gateway as the HTTPS proxy of real clients, as `npm start` runs it (embedded upstream, demo
 * coffer, the local egress CA created on first start):
 *
 * - the official COS SDK 3.x and 2.14 on their defaults (https) with `Proxy`, each in its own Node
 *   process trusting the CA only through NODE_EXTRA_CA_CERTS: putObject, ranged getObject,
 *   sliceUploadFile in 1 MiB parts, getBucket; and curl with `--proxy … --cacert …`;
 * - refused CONNECTs (other host, IP literals, other ports, unknown coffer, malformed) answered with
 *   the reason, counted, and never connected anywhere;
 * - TLS: an SNI other than the CONNECT host, no SNI, a client that does not trust the CA, TLS 1.1
 *   and CBC-only clients all fail the handshake, and nothing reaches the request pipeline;
 * - inside a tunnel the same pipeline applies: the Host must name the tunnel's host, header limits.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createNetServer, connect, type Server as NetServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect, type ConnectionOptions, type TLSSocket } from 'node:tls';
import { Duplex } from 'node:stream';
import { promisify } from 'node:util';
import { loadConfig } from '../../src/config';
import { ensureLocalCertificateAuthority } from '../../src/egress/certificate-authority';
import { createLogger } from '../../src/observability/logger';
import { startGateway, type RunningGateway } from '../../src/app/serve';
import { makeCertificate } from '../support/openssl-certs';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const COS = require('cos-nodejs-sdk-v5');

const run = promisify(execFile);
const Bucket = 'demo-1250000000';
const Region = 'ap-guangzhou';
const HOST = `${Bucket}.cos.${Region}.myqcloud.com`;
const SecretId = 'AKIDe2eEgress';
const SecretKey = 'e2e-egress-secret-key-0123456789abcdef';

let directory: string;
let gateway: RunningGateway;
let caFile: string;

async function start(env: Record<string, string> = {}): Promise<RunningGateway> {
  const config = loadConfig({
    env: {
      PORT: '0',
      COFFER__SERVER__ADMIN_PORT: '0',
      COFFER_DEMO_SECRET_ID: SecretId,
      COFFER_DEMO_SECRET_KEY: SecretKey,
      COFFER__KEYRING__DIRECTORY: join(directory, 'keyring'),
      COFFER__EMBEDDED_UPSTREAM__DIRECTORY: join(directory, 'upstream'),
      ...env,
    },
  });
  return startGateway(config, { log: createLogger('silent') });
}

beforeAll(async () => {
  directory = mkdtempSync(join(tmpdir(), 'coffer-egress-e2e-'));
  gateway = await start();
  caFile = gateway.egressCaFile as string;
  // The embedded default keeps its CA next to the keyring, like ./data/egress-ca beside ./data/keyring.
  expect(caFile).toBe(join(directory, 'egress-ca', 'ca.pem'));
});

afterAll(async () => {
  await gateway?.stop();
  rmSync(directory, { recursive: true, force: true });
});

async function counter(running: RunningGateway, name: string, labels: Record<string, string> = {}): Promise<number> {
  const metric = (await running.metrics.registry.getMetricsAsJSON()).find((m) => m.name === name);
  const values = (metric?.values ?? []) as Array<{ value: number; labels: Record<string, string | number> }>;
  return values.filter((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l)).reduce((sum, v) => sum + v.value, 0);
}

/** Waits (polling, no deadline assertion) until `counter` reaches `expected` or 250 polls passed; returns the last value. */
async function counterReaching(running: RunningGateway, name: string, labels: Record<string, string>, expected: number): Promise<number> {
  let value = await counter(running, name, labels);
  for (let i = 0; i < 250 && value < expected; i += 1) {
    await new Promise((resolve) => setTimeout(resolve, 20));
    value = await counter(running, name, labels);
  }
  return value;
}

/** Sends a raw CONNECT and reads the answer's head (and body, for a refusal); the socket stays open after a 200. */
function rawConnect(port: number, target: string): Promise<{ status: number; text: string; socket: Socket }> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let received = '';
    const finish = (): void => {
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(received)?.[1] ?? 0);
      socket.removeAllListeners('data');
      resolve({ status, text: received, socket });
    };
    socket.on('error', reject);
    socket.on('data', (chunk: Buffer) => {
      received += chunk.toString('latin1');
      if (received.startsWith('HTTP/1.1 200') && received.includes('\r\n\r\n')) finish();
    });
    socket.on('end', finish);
    socket.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n`);
  });
}

/** CONNECT to `host:443`, then a TLS client over the tunnel; resolves with the secure socket or rejects with the handshake error. */
async function tlsThroughProxy(port: number, host: string, options: ConnectionOptions): Promise<TLSSocket> {
  const { status, socket } = await rawConnect(port, `${host}:443`);
  expect(status).toBe(200);
  return new Promise((resolve, reject) => {
    const tls = tlsConnect({ socket, ...options });
    tls.once('secureConnect', () => resolve(tls));
    tls.once('error', (error) => {
      socket.destroy();
      reject(error);
    });
  });
}

/** One HTTP/1.1 exchange on an established socket; resolves with the raw answer once the peer closes or `idleMs` passes. */
function exchange(socket: TLSSocket, request: string): Promise<string> {
  return new Promise((resolve) => {
    let text = '';
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString('latin1');
      const head = text.indexOf('\r\n\r\n');
      const length = Number(/content-length: (\d+)/i.exec(text)?.[1] ?? -1);
      if (head >= 0 && length >= 0 && text.length >= head + 4 + length) resolve(text);
    });
    socket.on('close', () => resolve(text));
    socket.write(request);
  });
}

const trusted = (): ConnectionOptions => ({ servername: HOST, ca: readFileSync(caFile, 'utf8') });

describe('the official COS SDK on its defaults (https) with Proxy, trusting the CA through NODE_EXTRA_CA_CERTS', () => {
  test.each([
    ['3.x', 'cos-nodejs-sdk-v5', undefined],
    ['3.x, Domain {Bucket}.cos.{Region}.tencentcos.cn', 'cos-nodejs-sdk-v5', '{Bucket}.cos.{Region}.tencentcos.cn'],
    ['3.x, Domain {Bucket}.cdcs.{Region}.myqcloud.com', 'cos-nodejs-sdk-v5', '{Bucket}.cdcs.{Region}.myqcloud.com'],
    ['2.14', 'cos-nodejs-sdk-v5-2', undefined],
  ])('SDK %s: putObject, ranged getObject, sliceUploadFile in 1 MiB parts, getBucket', async (name, sdk, domain) => {
    const intercepted = await counter(gateway, 'coffer_gateway_connect_total', { result: 'intercepted' });
    const prefix = `sdk-${name.replace(/[^a-z0-9]+/gi, '-')}/`;
    const input = { sdk, proxy: `http://127.0.0.1:${gateway.port}`, secretId: SecretId, secretKey: SecretKey, bucket: Bucket, region: Region, domain, prefix, directory };
    const { stdout } = await run(process.execPath, [join(__dirname, 'cos-sdk-through-proxy.js'), JSON.stringify(input)], {
      env: { ...process.env, NODE_EXTRA_CA_CERTS: caFile },
      cwd: join(__dirname, '..', '..'),
    });
    const out = JSON.parse(stdout);
    expect(out.error).toBeUndefined();
    expect(out.small.got).toBe(out.small.sent);
    expect(out.ranged).toEqual({ sent: out.ranged.sent, got: out.ranged.sent, statusCode: 206 });
    expect(out.large.got).toBe(out.large.sent);
    expect(out.large.etag).toMatch(/-3"$/);
    expect(out.listing).toEqual([
      [`${prefix}large.bin`, 2 * 1024 * 1024 + 17],
      [`${prefix}small.bin`, 1000],
    ]);
    // Every request went through an intercepted tunnel (the SDK never fell back to plain http).
    expect(await counter(gateway, 'coffer_gateway_connect_total', { result: 'intercepted' })).toBeGreaterThan(intercepted);
  });

  test('the same SDK without the CA fails ("self-signed"/"unable to get issuer"), and nothing is stored', async () => {
    const prefix = 'sdk-untrusted/';
    const input = { sdk: 'cos-nodejs-sdk-v5', proxy: `http://127.0.0.1:${gateway.port}`, secretId: SecretId, secretKey: SecretKey, bucket: Bucket, region: Region, prefix, directory };
    const env = { ...process.env };
    delete env.NODE_EXTRA_CA_CERTS;
    const { stdout } = await run(process.execPath, [join(__dirname, 'cos-sdk-through-proxy.js'), JSON.stringify(input)], { env, cwd: join(__dirname, '..', '..') });
    expect(JSON.parse(stdout).error.message).toMatch(/issuer certificate|self[- ]signed|unable to verify/i);
    const listed = await new COS({ SecretId, SecretKey, Protocol: 'http:', Domain: `127.0.0.1:${gateway.port}/{Bucket}` }).getBucket({ Bucket, Region, Prefix: prefix });
    expect(listed.Contents).toEqual([]);
  });
});

describe('curl through the proxy', () => {
  test('curl --proxy … --cacert … fetches a presigned URL; without --cacert it refuses the certificate', async () => {
    const body = randomBytes(4096);
    const cos = new COS({ SecretId, SecretKey, Protocol: 'http:', Domain: `127.0.0.1:${gateway.port}/{Bucket}` });
    await cos.putObject({ Bucket, Region, Key: 'curl/object.bin', Body: body });
    const url = new COS({ SecretId, SecretKey }).getObjectUrl({ Bucket, Region, Key: 'curl/object.bin', Sign: true, Protocol: 'https:' });
    expect(url).toMatch(new RegExp(`^https://${HOST.replace(/\./g, '\\.')}/`));
    const fetched = await run('curl', ['-sS', '--fail', '--proxy', `http://127.0.0.1:${gateway.port}`, '--cacert', caFile, url], { encoding: 'buffer', maxBuffer: 1 << 20 });
    expect(Buffer.compare(fetched.stdout as Buffer, body)).toBe(0);

    // curl trusting another CA (OpenSSL aborts inside the handshake, so the gateway sees it fail).
    const failures = await counter(gateway, 'coffer_gateway_egress_tls_handshakes_total', { result: 'failed' });
    const requests = await counter(gateway, 'coffer_gateway_requests_total');
    const otherCa = await ensureLocalCertificateAuthority(join(directory, 'other-ca'));
    const untrusted = await run('curl', ['-sS', '--proxy', `http://127.0.0.1:${gateway.port}`, '--cacert', otherCa.certFile, url]).then(
      () => ({ code: 0, stderr: '' }),
      (error: { code: number; stderr: string }) => error,
    );
    expect(untrusted.code).toBe(60); // CURLE_PEER_FAILED_VERIFICATION
    expect(await counterReaching(gateway, 'coffer_gateway_egress_tls_handshakes_total', { result: 'failed' }, failures + 1)).toBe(failures + 1);
    expect(await counter(gateway, 'coffer_gateway_requests_total')).toBe(requests);
  });

  test('curl to a host that is not a coffer endpoint: "CONNECT tunnel failed, response 403"', async () => {
    const refused = await run('curl', ['-sS', '--proxy', `http://127.0.0.1:${gateway.port}`, 'https://www.example.com/']).then(
      () => ({ code: 0, stderr: '' }),
      (error: { code: number; stderr: string }) => error,
    );
    expect(refused.code).toBe(56);
    expect(refused.stderr).toMatch(/CONNECT tunnel failed, response 403/);
  });
});

describe('CONNECT to anything but a served coffer endpoint on 443 is refused, with the reason, counted, never tunnelled', () => {
  let bystander: NetServer;
  let bystanderPort: number;
  let bystanderConnections = 0;
  beforeAll(async () => {
    // A service the gateway could reach: a blind tunnel to it would show up as a connection here.
    bystander = createNetServer((socket) => {
      bystanderConnections += 1;
      socket.destroy();
    });
    await new Promise<void>((resolve) => bystander.listen(0, '127.0.0.1', resolve));
    bystanderPort = (bystander.address() as { port: number }).port;
  });
  afterAll(() => new Promise<void>((resolve) => bystander.close(() => resolve())));

  test.each([
    ['another host', () => 'www.example.com:443', 403, 'AccessDenied', 'refused_host', /Only coffer endpoints/],
    ['a cloud metadata IP literal', () => '169.254.169.254:443', 403, 'AccessDenied', 'refused_ip_literal', /IP-literal/],
    ['a loopback service by IP', () => `127.0.0.1:${bystanderPort}`, 403, 'AccessDenied', 'refused_ip_literal', /IP-literal/],
    ['a loopback service by name', () => `localhost:${bystanderPort}`, 403, 'AccessDenied', 'refused_port', /port 443/],
    ['an IPv6 literal', () => '[::1]:443', 403, 'AccessDenied', 'refused_ip_literal', /IP-literal/],
    ['a coffer endpoint on another port', () => `${HOST}:8443`, 403, 'AccessDenied', 'refused_port', /port 443/],
    ['a coffer this gateway does not serve', () => `other-1250000000.cos.${Region}.myqcloud.com:443`, 403, 'AccessDenied', 'refused_unknown_coffer', /does not serve/],
    ['a coffer endpoint name under another domain', () => `${HOST}.evil.example:443`, 403, 'AccessDenied', 'refused_host', /Only coffer endpoints/],
    ['no port', () => HOST, 400, 'InvalidRequest', 'refused_malformed', /host:port/],
  ])('%s', async (_name, target, status, code, result, reason) => {
    const before = await counter(gateway, 'coffer_gateway_connect_total', { result });
    const answer = await rawConnect(gateway.port, target());
    expect(answer.status).toBe(status);
    expect(answer.text).toContain(`<Code>${code}</Code>`);
    expect(answer.text).toMatch(reason);
    expect(answer.text).toMatch(/\r\nconnection: close\r\n/i);
    expect(answer.text).toMatch(/\r\nx-cos-request-id: [0-9a-f]{32}\r\n/);
    expect(await counter(gateway, 'coffer_gateway_connect_total', { result })).toBe(before + 1);
    expect(bystanderConnections).toBe(0);
  });
});

describe('the TLS handshake inside a tunnel', () => {
  test('a trusting client gets a certificate for exactly the CONNECT host, TLS 1.3 by default', async () => {
    const tls = await tlsThroughProxy(gateway.port, HOST, trusted());
    expect(tls.authorized).toBe(true);
    expect(tls.getPeerCertificate().subjectaltname).toBe(`DNS:${HOST}`);
    expect(tls.getProtocol()).toBe('TLSv1.3');
    expect(tls.alpnProtocol).toBe(false);
    tls.destroy();
  });

  test.each([
    ['an SNI naming another coffer endpoint than the CONNECT host', { servername: `${Bucket}.cos.ap-beijing.myqcloud.com` }, 'sni_mismatch'],
    ['an SNI naming an unrelated host', { servername: 'www.example.com' }, 'sni_mismatch'],
    ['no SNI', { servername: '' }, 'failed'],
    ['TLS 1.1 at most', { servername: HOST, maxVersion: 'TLSv1.1' as const, minVersion: 'TLSv1' as const }, 'failed'],
    ['TLS 1.2 with CBC suites only', { servername: HOST, maxVersion: 'TLSv1.2' as const, ciphers: 'ECDHE-ECDSA-AES128-SHA256:ECDHE-ECDSA-AES256-SHA384:ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA' }, 'failed'],
  ])('%s: the handshake fails and no request reaches the pipeline', async (_name, options, result) => {
    const failures = await counter(gateway, 'coffer_gateway_egress_tls_handshakes_total', { result });
    const requests = await counter(gateway, 'coffer_gateway_requests_total');
    const { ca: _ignored, ...rest } = trusted();
    const clientOptions: ConnectionOptions = { ...rest, ...('ca' in options ? {} : { ca: readFileSync(caFile, 'utf8') }), ...options, checkServerIdentity: () => undefined };
    let peerCertificate: unknown;
    await expect(
      tlsThroughProxy(gateway.port, HOST, clientOptions).then((socket) => {
        peerCertificate = socket.getPeerCertificate();
        socket.destroy();
      }),
    ).rejects.toBeDefined();
    expect(peerCertificate).toBeUndefined();
    // The server records the failure when its side of the handshake ends.
    expect(await counterReaching(gateway, 'coffer_gateway_egress_tls_handshakes_total', { result }, failures + 1)).toBe(failures + 1);
    expect(await counter(gateway, 'coffer_gateway_requests_total')).toBe(requests);
  });

  test('a Node client that does not trust the CA rejects the certificate and sends nothing: no request reaches the pipeline', async () => {
    const requests = await counter(gateway, 'coffer_gateway_requests_total');
    const error = await tlsThroughProxy(gateway.port, HOST, { servername: HOST }).then(
      (socket) => {
        socket.destroy();
        return undefined;
      },
      (failure: NodeJS.ErrnoException) => failure,
    );
    expect(error?.code).toMatch(/UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT_LOCALLY|SELF_SIGNED/);
    await new Promise((r) => setTimeout(r, 50));
    expect(await counter(gateway, 'coffer_gateway_requests_total')).toBe(requests);
  });

  test('TLS 1.2 with an ECDHE-ECDSA AEAD suite is accepted', async () => {
    const tls = await tlsThroughProxy(gateway.port, HOST, { ...trusted(), maxVersion: 'TLSv1.2' });
    expect(tls.getProtocol()).toBe('TLSv1.2');
    expect(tls.getCipher().name).toMatch(/^ECDHE-ECDSA-(AES(128|256)-GCM|CHACHA20-POLY1305)/);
    tls.destroy();
  });
});

describe('inside a tunnel, the same request pipeline', () => {
  test('a request for the tunnel host reaches authentication (401 without credentials)', async () => {
    const tls = await tlsThroughProxy(gateway.port, HOST, trusted());
    const answer = await exchange(tls, `GET /x HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`);
    expect(answer).toMatch(/^HTTP\/1\.1 401 /);
    expect(answer).toContain('<Code>AuthFailed</Code>');
    tls.destroy();
  });

  test.each([
    ['a Host naming another coffer endpoint', `GET /x HTTP/1.1\r\nHost: ${Bucket}.cos.ap-beijing.myqcloud.com\r\n\r\n`],
    ['an absolute-form target naming another host', `GET https://other-1250000000.cos.${Region}.myqcloud.com/x HTTP/1.1\r\nHost: other-1250000000.cos.${Region}.myqcloud.com\r\n\r\n`],
    ['a path-style request with the gateway address as Host', `GET /${Bucket}/x HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`],
  ])('%s is refused 403 before authentication', async (_name, request) => {
    const tls = await tlsThroughProxy(gateway.port, HOST, trusted());
    const answer = await exchange(tls, request);
    expect(answer).toMatch(/^HTTP\/1\.1 403 /);
    expect(answer).toContain('<Code>AccessDenied</Code>');
    expect(answer).toContain('must name the host the tunnel was opened to');
    tls.destroy();
  });

  test('server.headersTimeoutMs applies (a Slowloris inside a tunnel gets 400 RequestTimeout)', async () => {
    const strict = await start({ COFFER__SERVER__HEADERS_TIMEOUT_MS: '1000' });
    try {
      const tls = await tlsThroughProxy(strict.port, HOST, trusted());
      const answer = await exchange(tls, `GET /x HTTP/1.1\r\nHost: ${HOST}\r\nX-Slow: `);
      expect(answer).toMatch(/^HTTP\/1\.1 400 /);
      expect(answer).toContain('<Code>RequestTimeout</Code>');
      tls.destroy();
    } finally {
      await strict.stop();
    }
  });

  test('the header size limit applies (431)', async () => {
    const tls = await tlsThroughProxy(gateway.port, HOST, trusted());
    const answer = await exchange(tls, `GET /x HTTP/1.1\r\nHost: ${HOST}\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`);
    expect(answer).toMatch(/^HTTP\/1\.1 431 /);
    tls.destroy();
  });
});

describe('bounds and switches', () => {
  test('issuance beyond egress.issuancePerMinute is answered 503 SlowDown with Retry-After; a cached name is still served', async () => {
    const limited = await start({ COFFER__EGRESS__ISSUANCE_PER_MINUTE: '1', COFFER__SERVER__ADMIN_PORT: '0' });
    try {
      const first = await rawConnect(limited.port, `${HOST}:443`);
      expect(first.status).toBe(200);
      first.socket.destroy();
      const second = await rawConnect(limited.port, `${Bucket}.cos.ap-beijing.myqcloud.com:443`);
      expect(second.status).toBe(503);
      expect(second.text).toContain('<Code>SlowDown</Code>');
      expect(second.text).toMatch(/\r\nretry-after: 1\r\n/i);
      const again = await rawConnect(limited.port, `${HOST}:443`);
      expect(again.status).toBe(200);
      again.socket.destroy();
      expect(await counter(limited, 'coffer_gateway_egress_certificates_issued_total')).toBe(1);
      expect(await counter(limited, 'coffer_gateway_connect_total', { result: 'refused_issuance_rate' })).toBe(1);
    } finally {
      await limited.stop();
    }
  });

  test('a tunnel holds one connection slot, not two: at server.maxConnections 2 a plain client is served and the tunnel keeps working', async () => {
    const capped = await start({ COFFER__SERVER__MAX_CONNECTIONS: '2', COFFER__EGRESS__LOCAL_CA_DIRECTORY: join(directory, 'egress-ca') });
    try {
      const tls = await tlsThroughProxy(capped.port, HOST, { servername: HOST, ca: readFileSync(join(directory, 'egress-ca', 'ca.pem'), 'utf8') });
      expect(await exchange(tls, `GET /x HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`)).toMatch(/^HTTP\/1\.1 401 /);
      // A second client: the tunnel's TCP connection holds one slot, so this one gets the other.
      const plain = await fetch(`http://127.0.0.1:${capped.port}/${Bucket}/x`);
      expect(plain.status).toBe(401);
      expect(await counter(capped, 'coffer_gateway_connections_shed_total', { how: 'waiting-closed' })).toBe(0);
      // The tunnel was not taken for the newcomer's slot.
      expect(await exchange(tls, `GET /y HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`)).toMatch(/^HTTP\/1\.1 401 /);
      tls.destroy();
    } finally {
      await capped.stop();
    }
  });

  test('a client that CONNECTs and never starts TLS is cut off after egress.handshakeTimeoutMs and counted', async () => {
    const impatient = await start({ COFFER__EGRESS__HANDSHAKE_TIMEOUT_MS: '1000' });
    try {
      const { status, socket } = await rawConnect(impatient.port, `${HOST}:443`);
      expect(status).toBe(200);
      await new Promise<void>((resolve) => socket.once('close', () => resolve()));
      expect(await counter(impatient, 'coffer_gateway_egress_tls_handshakes_total', { result: 'timeout' })).toBe(1);
    } finally {
      await impatient.stop();
    }
  });

  test('stopping the gateway closes idle tunnels like any other keep-alive connection', async () => {
    const stopping = await start();
    const tls = await tlsThroughProxy(stopping.port, HOST, trusted());
    const answer = await exchange(tls, `GET /x HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`);
    expect(answer).toMatch(/^HTTP\/1\.1 401 /);
    expect(answer).toMatch(/\r\nconnection: keep-alive\r\n/i);
    const closed = new Promise<void>((resolve) => tls.once('close', () => resolve()));
    await stopping.stop();
    await closed;
  });

  test('a configured CA (files, as a mounted Secret) is reloaded when the files change; a bad pair keeps the current CA', async () => {
    const first = await ensureLocalCertificateAuthority(join(directory, 'reload-ca-1'));
    const second = await ensureLocalCertificateAuthority(join(directory, 'reload-ca-2'));
    const files = join(directory, 'reload-secret');
    const replace = (name: string, content: string): void => {
      writeFileSync(join(files, `.${name}.new`), content);
      renameSync(join(files, `.${name}.new`), join(files, name));
    };
    mkdirSync(files);
    replace('tls.crt', readFileSync(first.certFile, 'utf8'));
    replace('tls.key', readFileSync(join(directory, 'reload-ca-1', 'ca-key.pem'), 'utf8'));
    const reloading = await start({
      COFFER__EGRESS__CA__CERT_FILE: join(files, 'tls.crt'),
      COFFER__EGRESS__CA__KEY_FILE: join(files, 'tls.key'),
      COFFER__EGRESS__CA__RELOAD_INTERVAL_MS: '1000',
      COFFER__KEYRING__DIRECTORY: join(directory, 'reload', 'keyring'),
    });
    const trusting = (certFile: string): ConnectionOptions => ({ servername: HOST, ca: readFileSync(certFile, 'utf8') });
    try {
      expect(reloading.egressCaFile).toBe(join(files, 'tls.crt'));
      (await tlsThroughProxy(reloading.port, HOST, trusting(first.certFile))).destroy();

      replace('tls.crt', readFileSync(second.certFile, 'utf8'));
      replace('tls.key', readFileSync(join(directory, 'reload-ca-2', 'ca-key.pem'), 'utf8'));
      expect(await counterReaching(reloading, 'coffer_gateway_egress_ca_reloads_total', { result: 'success' }, 1)).toBe(1);
      // The cached leaf of the first CA is not handed out again.
      (await tlsThroughProxy(reloading.port, HOST, trusting(second.certFile))).destroy();
      await expect(tlsThroughProxy(reloading.port, HOST, trusting(first.certFile))).rejects.toMatchObject({ code: expect.stringMatching(/UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT_LOCALLY/) });

      replace('tls.key', readFileSync(join(directory, 'reload-ca-1', 'ca-key.pem'), 'utf8')); // not the certificate's key
      expect(await counterReaching(reloading, 'coffer_gateway_egress_ca_reloads_total', { result: 'failure' }, 1)).toBe(1);
      (await tlsThroughProxy(reloading.port, HOST, trusting(second.certFile))).destroy();
      expect(await counter(reloading, 'coffer_gateway_egress_ca_not_after_seconds')).toBe(Math.floor(second.authority.notAfter.getTime() / 1000));
    } finally {
      await reloading.stop();
    }
  });

  test('with egress.enabled false every CONNECT is answered 403 and counted, and no CA is created', async () => {
    const disabled = await start({ COFFER__EGRESS__ENABLED: 'false', COFFER__KEYRING__DIRECTORY: join(directory, 'disabled', 'keyring') });
    try {
      expect(disabled.egressCaFile).toBeUndefined();
      const answer = await rawConnect(disabled.port, `${HOST}:443`);
      expect(answer.status).toBe(403);
      expect(answer.text).toContain('egress.enabled is false');
      expect(await counter(disabled, 'coffer_gateway_connect_total', { result: 'refused_disabled' })).toBe(1);
      expect(() => readFileSync(join(directory, 'disabled', 'egress-ca', 'ca.pem'))).toThrow();
    } finally {
      await disabled.stop();
    }
  });
});

describe('a TLS data-plane listener (server.tls) as an HTTPS proxy', () => {
  test('curl --proxy https://… : TLS to the proxy, CONNECT, TLS to the coffer endpoint inside; a presigned PUT and GET', async () => {
    const listener = makeCertificate('127.0.0.1', 2);
    writeFileSync(join(directory, 'listener.pem'), listener.certPem);
    writeFileSync(join(directory, 'listener-key.pem'), listener.keyPem);
    const tlsGateway = await start({
      COFFER__SERVER__TLS__CERT_FILE: join(directory, 'listener.pem'),
      COFFER__SERVER__TLS__KEY_FILE: join(directory, 'listener-key.pem'),
      COFFER__KEYRING__DIRECTORY: join(directory, 'tls-keyring'),
      COFFER__EMBEDDED_UPSTREAM__DIRECTORY: join(directory, 'tls-upstream'),
    });
    try {
      const body = randomBytes(1000);
      writeFileSync(join(directory, 'tls-listener-body.bin'), body);
      const signer = new COS({ SecretId, SecretKey });
      const putUrl = signer.getObjectUrl({ Bucket, Region, Key: 'tls-listener/object.bin', Sign: true, Protocol: 'https:', Method: 'PUT' });
      const getUrl = signer.getObjectUrl({ Bucket, Region, Key: 'tls-listener/object.bin', Sign: true, Protocol: 'https:' });
      const proxy = ['-sS', '--fail', '--proxy', `https://127.0.0.1:${tlsGateway.port}`, '--proxy-cacert', join(directory, 'listener.pem'), '--cacert', tlsGateway.egressCaFile as string];
      await run('curl', [...proxy, '--upload-file', join(directory, 'tls-listener-body.bin'), putUrl]);
      const fetched = await run('curl', [...proxy, getUrl], { encoding: 'buffer', maxBuffer: 1 << 20 });
      expect(Buffer.compare(fetched.stdout as Buffer, body)).toBe(0);
      expect(await counter(tlsGateway, 'coffer_gateway_connect_total', { result: 'intercepted' })).toBe(2);
    } finally {
      await tlsGateway.stop();
    }
  });
});

describe('a client that sends its ClientHello right behind the CONNECT head (same packet)', () => {
  test('the early bytes are part of the TLS stream: the handshake and the request succeed', async () => {
    // Capture a real ClientHello: a TLS client over a duplex whose first write is held back.
    const socket = connect(gateway.port, '127.0.0.1');
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    let first = true;
    let answered = '';
    let tunnelOpen = false;
    const bridge = new Duplex({
      read() {},
      write(chunk: Buffer, _encoding, callback) {
        if (first) {
          first = false;
          socket.write(Buffer.concat([Buffer.from(`CONNECT ${HOST}:443 HTTP/1.1\r\nHost: ${HOST}:443\r\n\r\n`), chunk]));
        } else {
          socket.write(chunk);
        }
        callback();
      },
    });
    socket.on('data', (chunk: Buffer) => {
      if (tunnelOpen) {
        bridge.push(chunk);
        return;
      }
      answered += chunk.toString('latin1');
      const end = answered.indexOf('\r\n\r\n');
      if (end < 0) return;
      tunnelOpen = true;
      const rest = Buffer.from(answered.slice(end + 4), 'latin1');
      answered = answered.slice(0, end);
      if (rest.length > 0) bridge.push(rest);
    });
    const tls = await new Promise<TLSSocket>((resolve, reject) => {
      const client = tlsConnect({ socket: bridge, ...trusted() });
      client.once('secureConnect', () => resolve(client));
      client.once('error', reject);
    });
    expect(answered).toMatch(/^HTTP\/1\.1 200 /);
    const answer = await exchange(tls, `GET /x HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`);
    expect(answer).toMatch(/^HTTP\/1\.1 401 /);
    tls.destroy();
    socket.destroy();
  });
});
