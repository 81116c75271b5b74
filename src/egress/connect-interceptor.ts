/**
 * CONNECT on the data-plane listener: the gateway as the HTTPS proxy of clients that keep the real
 * endpoint names (the official COS SDK with `Proxy` on its default https).
 *
 * - `CONNECT <coffer endpoint>:443` for a coffer this gateway serves → a leaf certificate for exactly
 *   that name is ready (cached or issued now by the egress CA, bounded in number and rate), then
 *   `200 Connection Established`, then TLS is terminated here. The ClientHello's SNI must equal the
 *   CONNECT host, or the handshake is refused before any certificate is sent. The decrypted
 *   connection is handed to the same HTTP server as every other connection (`serve`), so parsing,
 *   limits, timeouts, authentication, the tunnel-host binding and the drain all apply.
 * - Anything else — another host, an IP literal, a port other than 443, a name outside the patterns,
 *   egress disabled — is answered 403 (400 for a malformed target, 503 when issuance is rate-limited)
 *   with an XML body naming the reason, logged and counted; the socket is then closed. There is no
 *   code path that connects anywhere: the gateway opens no tunnels, so it is no exfiltration path.
 */
import { randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { TLSSocket, createSecureContext, type SecureContext } from 'node:tls';
import { GatewayError } from '../errors/gateway-error';
import { renderError } from '../errors/render-error';
import type { Logger } from '../observability/logger';
import { classifyConnectTarget, type ConnectResult, type ConnectTargetRules } from './connect-target';
import { IssuanceRateExceeded, TLS12_CIPHERS, type LeafCertificateCache } from './leaf-certificate-cache';

/** The `result` label of coffer_gateway_egress_tls_handshakes_total. */
export type HandshakeResult = 'ok' | 'sni_mismatch' | 'failed' | 'timeout';

/** Hands a decrypted tunnel to the HTTP server; `host` is the CONNECT host every request inside must name. */
export type ServeTunnel = (tlsSocket: TLSSocket, host: string) => void;

/** The `server.on('connect')` listener, with the way to serve an intercepted tunnel. */
export type ConnectHandler = (req: IncomingMessage, socket: Duplex, head: Buffer, serve: ServeTunnel) => void;

export interface ConnectInterceptorOptions {
  readonly rules: ConnectTargetRules;
  /** Absent: egress interception is disabled and every CONNECT is refused (403). */
  readonly certificates?: LeafCertificateCache;
  /** Time allowed for the TLS handshake after `200 Connection Established`. */
  readonly handshakeTimeoutMs: number;
  readonly log?: Logger;
  readonly onConnect?: (result: ConnectResult) => void;
  readonly onHandshake?: (result: HandshakeResult) => void;
}

/** How long a refused CONNECT's socket may linger for the answer to be read before it is destroyed. */
const REFUSAL_LINGER_MS = 1000;
/** Longest CONNECT target quoted in a log line. */
const LOGGED_TARGET_CHARS = 300;

/**
 * Writes a complete HTTP/1.1 answer on a socket no HTTP response object owns (after CONNECT) and
 * closes it: the XML error of every other refusal, with request ids.
 */
export function refuseConnect(socket: Duplex, error: GatewayError, extraHeaders: Record<string, string> = {}): string {
  const requestId = randomBytes(16).toString('hex');
  const rendered = renderError(error, { resource: '/', requestId, traceId: requestId });
  const head = [`HTTP/1.1 ${rendered.status} ${STATUS_CODES[rendered.status] ?? ''}`];
  // Framing is this function's own (the body below, then close): never a second Content-Length.
  for (const [name, value] of Object.entries({ ...rendered.headers, ...extraHeaders })) {
    if (!/^(content-length|connection)$/i.test(name)) head.push(`${name}: ${value}`);
  }
  head.push(`content-length: ${Buffer.byteLength(rendered.body)}`, 'connection: close', '', '');
  if (socket.writable) socket.end(head.join('\r\n') + rendered.body);
  // A client that never reads or closes must not hold the socket.
  const linger = setTimeout(() => socket.destroy(), REFUSAL_LINGER_MS);
  linger.unref();
  socket.once('close', () => clearTimeout(linger));
  return requestId;
}

export function createConnectInterceptor(options: ConnectInterceptorOptions): ConnectHandler {
  const { log } = options;
  // The context every handshake starts with. Without SNI it stays, and having no certificate, fails.
  // Its protocol and cipher settings also govern the handshake after the SNI callback switched to a
  // leaf context (OpenSSL keeps the connection's cipher list), so they are set here, not only there.
  const noCertificate: SecureContext = createSecureContext({ minVersion: 'TLSv1.2', ciphers: TLS12_CIPHERS, honorCipherOrder: true });

  return (req, socket, head, serve) => {
    // A client that resets mid-way must not crash the process; every outcome below is logged.
    socket.on('error', (error) => log?.debug({ err: error.message }, 'CONNECT socket error'));
    const target = (req.url ?? '').slice(0, LOGGED_TARGET_CHARS);
    const refuse = (result: ConnectResult, error: GatewayError, extraHeaders?: Record<string, string>): void => {
      options.onConnect?.(result);
      const requestId = refuseConnect(socket, error, extraHeaders);
      log?.info({ requestId, target, result, reason: error.reason }, 'CONNECT refused');
    };

    if (options.certificates === undefined) {
      refuse('refused_disabled', new GatewayError('AccessDenied', 'This gateway does not intercept CONNECT (egress.enabled is false); it opens no tunnels.'));
      return;
    }
    const classified = classifyConnectTarget(req.url ?? '', options.rules);
    if (!classified.accepted) {
      refuse(classified.result, new GatewayError(classified.result === 'refused_malformed' ? 'InvalidRequest' : 'AccessDenied', classified.reason));
      return;
    }
    const { host } = classified;
    options.certificates.contextFor(host).then(
      (context) => {
        if (socket.destroyed) return;
        options.onConnect?.('intercepted');
        log?.debug({ target, coffer: classified.coffer }, 'CONNECT intercepted');
        intercept(socket as Socket, head, host, context, serve);
      },
      (error: unknown) => {
        if (error instanceof IssuanceRateExceeded) {
          refuse('refused_issuance_rate', new GatewayError('SlowDown', 'Certificate issuance for new host names is rate-limited; retry shortly.'), { 'retry-after': '1' });
          return;
        }
        log?.error({ target, err: error instanceof Error ? error.message : String(error) }, 'egress certificate issuance failed');
        refuse('failed_issuance', new GatewayError('ServiceUnavailable', 'No certificate could be issued for this host.'));
      },
    );
  };

  function intercept(socket: Socket, head: Buffer, host: string, context: SecureContext, serve: ServeTunnel): void {
    socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
    // Bytes the client sent right after the CONNECT head (an early ClientHello) belong to the TLS stream.
    if (head.length > 0) socket.unshift(head);
    let sniMismatch = false;
    let settled = false;
    // eslint-disable-next-line prefer-const -- assigned below `settle`, which may run before it is
    let timer: NodeJS.Timeout | undefined;
    const settle = (result: HandshakeResult, detail?: Record<string, unknown>): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      options.onHandshake?.(result);
      if (result !== 'ok') log?.info({ host, result, ...detail }, 'egress TLS handshake refused or failed');
    };
    const tlsSocket = new TLSSocket(socket, {
      isServer: true,
      secureContext: noCertificate,
      ALPNProtocols: ['http/1.1'],
      // Only the name the client CONNECTed to gets a certificate; any other SNI gets none.
      SNICallback: (servername, callback) => {
        if (servername.toLowerCase() === host) {
          callback(null, context);
          return;
        }
        sniMismatch = true;
        callback(new Error('The TLS server name differs from the CONNECT host.'), undefined);
      },
    });
    timer = setTimeout(() => {
      settle('timeout');
      tlsSocket.destroy();
    }, options.handshakeTimeoutMs);
    timer.unref();
    const onHandshakeError = (error: NodeJS.ErrnoException): void => {
      settle(sniMismatch ? 'sni_mismatch' : 'failed', { code: error.code });
      tlsSocket.destroy();
      socket.destroy();
    };
    tlsSocket.on('error', onHandshakeError);
    tlsSocket.once('close', () => settle('failed', { code: 'closed before the handshake completed' }));
    tlsSocket.once('secure', () => {
      // Checked again after the handshake: a ClientHello without SNI never reaches the callback.
      const servername = (tlsSocket as TLSSocket & { servername?: string | false }).servername;
      if (typeof servername !== 'string' || servername.toLowerCase() !== host) {
        settle('sni_mismatch');
        tlsSocket.destroy();
        socket.destroy();
        return;
      }
      settle('ok');
      tlsSocket.off('error', onHandshakeError);
      serve(tlsSocket, host);
    });
  }
}
