/**
 * Decides what a CONNECT may reach: only `<coffer>.<coffer endpoint domain>:443` for a coffer this
 * gateway serves — the names `cofferOfAuthority` recognises (`<coffer>.cos.<region>.myqcloud.com`,
 * `…cos.<region>.tencentcos.cn`, `<coffer>.cdcs.<region>.myqcloud.com`, `<coffer>.<configured suffix>`).
 * Everything else is refused with a reason; the gateway never opens a tunnel to anywhere (that would
 * make it an exfiltration path), it only terminates TLS for coffer names itself.
 */
import { isIP } from 'node:net';
import { cofferOfAuthority } from '../cdcs/request-target';

/** The `result` label of coffer_gateway_connect_total. */
export type ConnectResult = 'intercepted' | 'refused_disabled' | 'refused_malformed' | 'refused_port' | 'refused_ip_literal' | 'refused_host' | 'refused_unknown_coffer' | 'refused_issuance_rate' | 'failed_issuance';

export type ConnectTarget = { readonly accepted: true; readonly host: string; readonly coffer: string } | { readonly accepted: false; readonly result: ConnectResult; readonly reason: string };

export interface ConnectTargetRules {
  readonly virtualHostSuffixes: readonly string[];
  /** True for the coffers this gateway serves. */
  readonly isServedCoffer: (coffer: string) => boolean;
}

/** A DNS name of letter-digit-hyphen labels (no trailing dot, no empty label), at most 253 characters. */
const DNS_NAME = /^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)+$/;

const refused = (result: ConnectResult, reason: string): ConnectTarget => ({ accepted: false, result, reason });

/** Classifies the authority-form target of a CONNECT request (`host:port`, RFC 9110 §9.3.6). */
export function classifyConnectTarget(rawTarget: string, rules: ConnectTargetRules): ConnectTarget {
  if (rawTarget.startsWith('[')) return refused('refused_ip_literal', 'IP-literal targets are never tunnelled; CONNECT to a coffer endpoint name.');
  const colon = rawTarget.lastIndexOf(':');
  if (colon <= 0 || !/^[0-9]{1,5}$/.test(rawTarget.slice(colon + 1))) {
    return refused('refused_malformed', 'The CONNECT target must be "host:port".');
  }
  const host = rawTarget.slice(0, colon).toLowerCase();
  const port = rawTarget.slice(colon + 1);
  if (isIP(host) !== 0 || /^[0-9.]+$/.test(host)) return refused('refused_ip_literal', 'IP-literal targets are never tunnelled; CONNECT to a coffer endpoint name.');
  // Exactly "443": no other port, and no other spelling of it.
  if (port !== '443') return refused('refused_port', 'Only port 443 is intercepted.');
  if (!DNS_NAME.test(host)) return refused('refused_host', 'The CONNECT host is not a valid DNS name.');
  let coffer: string | undefined;
  try {
    coffer = cofferOfAuthority(host, rules.virtualHostSuffixes);
  } catch {
    return refused('refused_host', 'The host is under a coffer endpoint domain but does not name a valid coffer ("<name>-<APPID>").');
  }
  if (coffer === undefined) {
    return refused(
      'refused_host',
      'Only coffer endpoints are reachable through this gateway (<coffer>.cos.<region>.myqcloud.com, <coffer>.cos.<region>.tencentcos.cn, <coffer>.cdcs.<region>.myqcloud.com or a configured suffix); it opens no tunnels to other hosts.',
    );
  }
  if (!rules.isServedCoffer(coffer)) return refused('refused_unknown_coffer', 'The host names a coffer this gateway does not serve.');
  return { accepted: true, host, coffer };
}
