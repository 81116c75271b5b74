/**
 * Leaf TLS contexts for intercepted CONNECT tunnels, one per host name, issued on demand by the egress
 * CA and bounded twice so that no client can make the gateway mint certificates without limit:
 *
 * - at most `maxEntries` contexts are kept (least recently used evicted first);
 * - issuance is rate-limited by a token bucket of `issuancePerMinute` tokens, refilled continuously
 *   (a full minute's worth may be used at once); beyond it `IssuanceRateExceeded` is thrown and the
 *   CONNECT is answered 503, never queued.
 *
 * A context is reused until half its certificate's lifetime has passed, then replaced by a fresh one
 * at the next CONNECT (connections already established keep theirs). Concurrent CONNECTs for one
 * name share one issuance. Leaf keys live only inside the TLS contexts (memory).
 */
import { createSecureContext, type SecureContext } from 'node:tls';
import type { IssuedCertificate } from './certificate-authority';

/**
 * TLS 1.2 suites offered next to TLS 1.3's (which are all AEAD): forward-secret ECDHE with AEAD
 * ciphers, for the ECDSA leaf keys. No CBC, no RSA key exchange, nothing below TLS 1.2.
 */
export const TLS12_CIPHERS = 'ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305';

export class IssuanceRateExceeded extends Error {
  constructor() {
    super('Certificate issuance rate exceeded.');
    this.name = 'IssuanceRateExceeded';
  }
}

export interface LeafCertificateCacheOptions {
  readonly issue: (dnsName: string, validityMs: number) => Promise<IssuedCertificate>;
  readonly validityMs: number;
  readonly maxEntries: number;
  readonly issuancePerMinute: number;
  readonly now?: () => number;
  /** Called after each certificate issued (for the metric). */
  readonly onIssued?: () => void;
}

interface Entry {
  readonly context: SecureContext;
  readonly renewAt: number;
}

export class LeafCertificateCache {
  private readonly entries = new Map<string, Entry>();
  private readonly pending = new Map<string, Promise<SecureContext>>();
  private readonly now: () => number;
  private tokens: number;
  private refilledAt: number;
  /** Bumped by `clear`; an issuance that started before is not cached. */
  private generation = 0;

  constructor(private readonly options: LeafCertificateCacheOptions) {
    this.now = options.now ?? Date.now;
    this.tokens = options.issuancePerMinute;
    this.refilledAt = this.now();
  }

  /** Contexts currently cached. */
  size(): number {
    return this.entries.size;
  }

  /**
   * Forgets every context (the CA changed): the next CONNECT for each name gets a leaf from the new CA.
   * Issuances still running finish for their callers but are not cached.
   */
  clear(): void {
    this.generation += 1;
    this.entries.clear();
    this.pending.clear();
  }

  /** The TLS context serving `dnsName`; issues a certificate when none is cached or it is due for renewal. */
  contextFor(dnsName: string): Promise<SecureContext> {
    const cached = this.entries.get(dnsName);
    if (cached !== undefined && cached.renewAt > this.now()) {
      // Most recently used goes last, so eviction takes the least recently used.
      this.entries.delete(dnsName);
      this.entries.set(dnsName, cached);
      return Promise.resolve(cached.context);
    }
    const inFlight = this.pending.get(dnsName);
    if (inFlight !== undefined) return inFlight;
    if (!this.takeToken()) return Promise.reject(new IssuanceRateExceeded());
    const issuing = this.issue(dnsName).finally(() => {
      if (this.pending.get(dnsName) === issuing) this.pending.delete(dnsName);
    });
    this.pending.set(dnsName, issuing);
    return issuing;
  }

  private async issue(dnsName: string): Promise<SecureContext> {
    const generation = this.generation;
    const issuedAt = this.now();
    const issued = await this.options.issue(dnsName, this.options.validityMs);
    this.options.onIssued?.();
    const context = createSecureContext({
      cert: issued.certChainPem,
      key: issued.keyPem,
      minVersion: 'TLSv1.2',
      ciphers: TLS12_CIPHERS,
      honorCipherOrder: true,
    });
    if (generation !== this.generation) return context;
    const lifetime = issued.notAfter.getTime() - issuedAt;
    this.entries.delete(dnsName);
    this.entries.set(dnsName, { context, renewAt: issuedAt + lifetime / 2 });
    while (this.entries.size > this.options.maxEntries) {
      const oldest = this.entries.keys().next().value as string;
      this.entries.delete(oldest);
    }
    return context;
  }

  private takeToken(): boolean {
    const now = this.now();
    const perMs = this.options.issuancePerMinute / 60_000;
    this.tokens = Math.min(this.options.issuancePerMinute, this.tokens + (now - this.refilledAt) * perMs);
    this.refilledAt = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}
