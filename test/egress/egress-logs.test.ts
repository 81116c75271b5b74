/**
 * Egress logging: refused CONNECTs are logged with their result and reason, and no log line (at
 * `trace`) carries the CA private key — neither from creating the local CA nor from issuing leaves
 * — while the CA certificate's path is logged once, so an operator knows what clients must trust.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { loadConfig } from '../../src/config';
import { createLogger } from '../../src/observability/logger';
import { startGateway } from '../../src/app/serve';
import { collectLogLines } from '../support/log-lines';

const HOST = 'demo-1250000000.cos.ap-guangzhou.myqcloud.com';

function connectAndRead(port: number, target: string): Promise<{ text: string; socket: import('node:net').Socket }> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let text = '';
    socket.on('error', reject);
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString('latin1');
      if (text.includes('\r\n\r\n') && text.startsWith('HTTP/1.1 200')) {
        socket.removeAllListeners('data');
        resolve({ text, socket });
      }
    });
    socket.on('end', () => resolve({ text, socket }));
    socket.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n`);
  });
}

test('refusals are logged with result and reason; the CA key never appears in any log line', async () => {
  const directory = mkdtempSync(join(tmpdir(), 'coffer-egress-logs-'));
  const { lines, sink } = collectLogLines();
  const config = loadConfig({ env: { PORT: '0', COFFER__SERVER__ADMIN_PORT: '0', COFFER__KEYRING__DIRECTORY: join(directory, 'keyring'), COFFER__EMBEDDED_UPSTREAM__DIRECTORY: join(directory, 'upstream') } });
  const gateway = await startGateway(config, { log: createLogger('trace', sink) });
  try {
    const ca = readFileSync(gateway.egressCaFile as string, 'utf8');
    await connectAndRead(gateway.port, 'www.example.com:443');
    await connectAndRead(gateway.port, '10.0.0.1:443');
    const tunnel = await connectAndRead(gateway.port, `${HOST}:443`);
    const tls = tlsConnect({ socket: tunnel.socket, servername: HOST, ca });
    await new Promise<void>((resolve) => tls.once('secureConnect', () => resolve()));
    tls.destroy();
    const mismatch = await connectAndRead(gateway.port, `${HOST}:443`);
    await new Promise<void>((resolve) => {
      const refused = tlsConnect({ socket: mismatch.socket, servername: 'www.example.com', ca });
      refused.once('error', () => resolve());
    });
    // The gateway logs the refused handshake on its side of the connection; wait for the line (polling).
    for (let i = 0; i < 250 && !lines.some((line) => line.includes('sni_mismatch')); i += 1) await new Promise((resolve) => setTimeout(resolve, 20));

    const keyPem = readFileSync(join(directory, 'egress-ca', 'ca-key.pem'), 'utf8');
    const keyLines = keyPem.split('\n').filter((line) => line !== '' && !line.startsWith('-----'));
    const keyBase64 = keyLines.join('');
    for (const line of lines) {
      for (const keyLine of keyLines) expect(line).not.toContain(keyLine);
      expect(line).not.toContain(keyBase64.slice(20, 60));
      expect(line).not.toContain('PRIVATE KEY');
    }
    const parsed = lines.map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(parsed).toContainEqual(expect.objectContaining({ msg: 'egress CA created', caCertFile: gateway.egressCaFile }));
    expect(parsed).toContainEqual(expect.objectContaining({ msg: 'CONNECT refused', target: 'www.example.com:443', result: 'refused_host' }));
    expect(parsed).toContainEqual(expect.objectContaining({ msg: 'CONNECT refused', target: '10.0.0.1:443', result: 'refused_ip_literal' }));
    expect(parsed).toContainEqual(expect.objectContaining({ msg: 'egress TLS handshake refused or failed', host: HOST, result: 'sni_mismatch' }));
  } finally {
    await gateway.stop();
    rmSync(directory, { recursive: true, force: true });
  }
});
