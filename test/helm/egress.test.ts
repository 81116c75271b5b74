/**
 * The chart's egress values: `egress.enabled` with the CA from `egress.ca.existingSecret` mounted as
 * files (tls.crt, tls.key only, read-only, no subPath) and wired into `config.egress.ca`; the gateway's
 * own loader accepts the result; the chart refuses what it controls when set by hand; tuning passes.
 */
import { createMetrics } from '../../src/observability/metrics';
import { helmTemplate, loadRenderedConfig, mountFor, render, type K8sObject } from './helm-support';

const WITH_EGRESS = { egress: { enabled: true, ca: { existingSecret: 'coffer-egress-ca' } }, config: { egress: { issuancePerMinute: 120, leafValiditySeconds: 43_200 } } };

describe('chart: egress (CONNECT interception)', () => {
  test('enabled: the CA Secret is mounted read-only (tls.crt and tls.key only), config.egress names those files, and the gateway loads it', () => {
    const r = render({ values: WITH_EGRESS });
    const { config, filesRead } = loadRenderedConfig(r.configText);
    expect(config.egress).toMatchObject({ enabled: true, issuancePerMinute: 120, leafValiditySeconds: 43_200, ca: { certFile: '/etc/coffer-gateway/egress-ca/tls.crt', keyFile: '/etc/coffer-gateway/egress-ca/tls.key' } });
    expect(filesRead).toEqual(expect.arrayContaining(['/etc/coffer-gateway/egress-ca/tls.crt', '/etc/coffer-gateway/egress-ca/tls.key']));
    const mount = mountFor(r.gateway, '/etc/coffer-gateway/egress-ca/tls.key') as K8sObject;
    expect(mount).toMatchObject({ name: 'egress-ca', readOnly: true });
    expect(mount.subPath).toBeUndefined();
    const volume = (r.pod.volumes as K8sObject[]).find((v) => v.name === 'egress-ca') as K8sObject;
    // defaultMode is written 0440 like the chart's other Secret volumes (octal to Kubernetes' YAML 1.1 parser).
    expect(volume.secret).toMatchObject({
      secretName: 'coffer-egress-ca',
      items: [
        { key: 'tls.crt', path: 'tls.crt' },
        { key: 'tls.key', path: 'tls.key' },
      ],
    });
  });

  test('off by default: config.egress.enabled is false (every CONNECT answered 403) and nothing is mounted', () => {
    const r = render();
    expect(loadRenderedConfig(r.configText).config.egress.enabled).toBe(false);
    expect((r.pod.volumes as K8sObject[]).some((v) => v.name === 'egress-ca')).toBe(false);
  });

  test('enabled without a CA Secret fails the render, naming what to set', () => {
    const result = helmTemplate({ values: { egress: { enabled: true } } });
    expect(result.ok).toBe(false);
    expect(result.output).toContain('egress.enabled requires egress.ca.existingSecret');
  });

  test.each([
    ['enabled', true],
    ['ca', { certFile: '/x', keyFile: '/y' }],
    ['localCaDirectory', '/data/ca'],
  ])('config.egress.%s is chart-controlled and refused', (field, value) => {
    const result = helmTemplate({ values: { config: { egress: { [field]: value } } } });
    expect(result.ok).toBe(false);
    expect(result.output).toMatch(new RegExp(`config\\.egress(\\.${field})?|${field}`));
  });

  test('with prometheusRule.enabled, an egress CA expiry alert on a metric the gateway exports', async () => {
    const rule = render({ values: { ...WITH_EGRESS, prometheusRule: { enabled: true } } }).one('PrometheusRule');
    const alert = (rule.spec.groups[0].rules as K8sObject[]).find((r) => r.alert === 'CofferGatewayEgressCaExpiring') as K8sObject;
    expect(alert.expr).toContain('coffer_gateway_egress_ca_not_after_seconds{');
    expect(alert.expr).toContain('< 1209600');
    const known = new Set((await createMetrics().registry.getMetricsAsJSON()).map((metric) => metric.name));
    expect(known.has('coffer_gateway_egress_ca_not_after_seconds')).toBe(true);
    const without = render({ values: { prometheusRule: { enabled: true } } }).one('PrometheusRule');
    expect((without.spec.groups[0].rules as K8sObject[]).map((r) => r.alert)).not.toContain('CofferGatewayEgressCaExpiring');
  });
});
