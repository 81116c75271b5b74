/**
 * The chart's operations objects — gc CronJobs, the rewrap Job, the PrometheusRule, the Grafana
 * dashboard — and the Kubernetes schema validation of everything the chart renders from its `ci/`
 * values files and the deploy/ examples (offline, kubernetes-models).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createMetrics } from '../../src/observability/metrics';
import { CHART, NAMESPACE, RELEASE, containersOf, deployValuesFiles, helmTemplate, render, validateAgainstKubernetesSchemas, type K8sObject } from './helm-support';

const FULLNAME = `${RELEASE}-coffer-gateway`;
const CI_FILES = readdirSync(join(CHART, 'ci')).map((name) => `helm/coffer-gateway/ci/${name}`);
const OPERATIONS = 'helm/coffer-gateway/ci/operations-values.yaml';
const SECRETS = 'helm/coffer-gateway/ci/secrets-values.yaml';

describe('Kubernetes schemas', () => {
  test.each([...CI_FILES, ...deployValuesFiles()])('every object rendered from %s validates', (file) => {
    const r = render({ valuesFiles: [file] });
    const results = validateAgainstKubernetesSchemas(r.docs);
    expect(results.filter((result) => result.error !== undefined)).toEqual([]);
    expect(results.length).toBe(r.docs.length);
  });

  test('the ci/ values files render every gated object', () => {
    const kinds = new Set(CI_FILES.flatMap((file) => render({ valuesFiles: [file] }).kinds));
    expect([...kinds].sort()).toEqual(['ConfigMap', 'CronJob', 'Deployment', 'HorizontalPodAutoscaler', 'Job', 'NetworkPolicy', 'Pod', 'PodDisruptionBudget', 'PrometheusRule', 'Service', 'ServiceAccount', 'ServiceMonitor']);
  });

  test('the validator is not vacuous: a wrong type, a bad pattern and an unknown kind are reported', () => {
    const deployment = render({ valuesFiles: [OPERATIONS] }).one('Deployment');
    const rule = render({ valuesFiles: [OPERATIONS] }).one('PrometheusRule');
    const results = validateAgainstKubernetesSchemas([
      { ...deployment, spec: { ...deployment.spec, replicas: 'two' } },
      { ...rule, spec: { groups: [{ ...rule.spec.groups[0], rules: [{ alert: 'A', expr: 'up', for: 'soon' }] }] } },
      { apiVersion: 'example.com/v1', kind: 'Widget', metadata: { name: 'w' } },
    ]);
    expect(results.map((result) => result.error)).toEqual([expect.stringMatching(/replicas must be integer/), expect.stringMatching(/for must match pattern/), 'no schema for example.com/v1 Widget']);
  });
});

describe('gc CronJobs', () => {
  const r = render({ valuesFiles: [OPERATIONS] });
  const cronJobs = r.all('CronJob');
  const pod = (cronJob: K8sObject) => cronJob.spec.jobTemplate.spec.template.spec;

  test('one per coffer and one per coffer class (every coffer created in it), never two runs at once, with --min-age', () => {
    expect(cronJobs.map((c) => c.metadata.name)).toEqual([`${FULLNAME}-gc-archive-1250000000`, `${FULLNAME}-gc-ledger-1250000000`, `${FULLNAME}-gc-class-team`]);
    for (const [i, target] of [
      ['--coffer', 'archive-1250000000'],
      ['--coffer', 'ledger-1250000000'],
      ['--class', 'team'],
    ].entries()) {
      const cronJob = cronJobs[i] as K8sObject;
      expect(cronJob.spec).toMatchObject({ schedule: '17 3 * * *', timeZone: 'Etc/UTC', concurrencyPolicy: 'Forbid' });
      expect(pod(cronJob).containers[0].args).toEqual(['gc', ...target, '--min-age', '24h']);
      expect(pod(cronJob).restartPolicy).toBe('Never');
    }
    // gc.coffers and gc.classes pick some.
    const picked = render({ valuesFiles: [OPERATIONS], set: { 'gc.coffers[0]': 'ledger-1250000000', 'gc.classes[0]': 'team' } }).all('CronJob');
    expect(picked.map((c) => c.metadata.name)).toEqual([`${FULLNAME}-gc-ledger-1250000000`, `${FULLNAME}-gc-class-team`]);
  });

  test('its own service account (upstream only: the IRSA role of the values), and no key-encryption keys in the pod', () => {
    const accounts = r.all('ServiceAccount');
    const gcAccount = accounts.find((a) => a.metadata.name === `${FULLNAME}-gc`) as K8sObject;
    expect(gcAccount.metadata.annotations['eks.amazonaws.com/role-arn']).toBe('arn:aws:iam::123456789012:role/coffer-gateway-gc');
    for (const cronJob of cronJobs) expect(pod(cronJob).serviceAccountName).toBe(`${FULLNAME}-gc`);
    const withKeyring = render({ valuesFiles: [SECRETS] });
    const gcPod = pod(withKeyring.one('CronJob'));
    expect(gcPod.initContainers).toBeUndefined();
    expect((gcPod.volumes as K8sObject[]).map((v) => v.name)).toEqual(['config', 'tmp', 'secrets', 'tls']);
    expect((withKeyring.pod.volumes as K8sObject[]).map((v) => v.name)).toContain('keyring');
    // The configuration it loads is the release's, with the secret files its access keys name.
    expect(gcPod.containers[0].volumeMounts).toEqual((withKeyring.gateway.volumeMounts as K8sObject[]).filter((m) => m.name !== 'keyring'));
    expect(gcPod.containers[0].args).toEqual(['gc', '--coffer', 'archive-1250000000', '--min-age', '2d']);
  });

  test('hardened like the gateway', () => {
    for (const container of containersOf(pod(cronJobs[0] as K8sObject))) {
      expect(container.securityContext).toMatchObject({ runAsNonRoot: true, readOnlyRootFilesystem: true, allowPrivilegeEscalation: false });
    }
  });

  test('a listed coffer or class that is not configured fails the render', () => {
    const result = helmTemplate({ valuesFiles: [OPERATIONS], set: { 'gc.coffers[0]': 'nope-1250000000' } });
    expect(result.ok).toBe(false);
    expect(result.output).toMatch(/gc\.coffers: nope-1250000000 is not in config\.coffers/);
    const unknownClass = helmTemplate({ valuesFiles: [OPERATIONS], set: { 'gc.classes[0]': 'nope' } });
    expect(unknownClass.ok).toBe(false);
    expect(unknownClass.output).toMatch(/gc\.classes: nope is not in config\.cofferClasses/);
  });
});

describe('rewrap Job', () => {
  test('a post-install/post-upgrade hook per run, with its own service account', () => {
    const r = render({ valuesFiles: [OPERATIONS] });
    const [job, classJob] = r.all('Job') as [K8sObject, K8sObject];
    expect(job.metadata.name).toBe(`${FULLNAME}-rewrap-archive-1250000000`);
    expect(job.metadata.annotations).toMatchObject({ 'helm.sh/hook': 'post-install,post-upgrade', 'helm.sh/hook-delete-policy': 'before-hook-creation' });
    const spec = job.spec.template.spec;
    expect(spec.containers[0].args).toEqual(['rewrap', '--coffer', 'archive-1250000000', '--to-key', 'arn:aws:kms:eu-central-1:123456789012:key/2222bbbb-12ab-34cd-56ef-1234567890ab']);
    expect(spec.serviceAccountName).toBe(`${FULLNAME}-rewrap`);
    expect(r.all('ServiceAccount').find((a) => a.metadata.name === `${FULLNAME}-rewrap`)?.metadata.annotations['eks.amazonaws.com/role-arn']).toBe('arn:aws:iam::123456789012:role/coffer-gateway-rewrap');
    // A class run: every coffer created in the class and the class key (rewrap --class).
    expect(classJob.metadata.name).toBe(`${FULLNAME}-rewrap-class-team`);
    expect(classJob.spec.template.spec.containers[0].args).toEqual(['rewrap', '--class', 'team', '--to-key', 'arn:aws:kms:eu-central-1:123456789012:key/4444dddd-12ab-34cd-56ef-1234567890ab']);
    expect(classJob.spec.template.spec.serviceAccountName).toBe(`${FULLNAME}-rewrap`);
  });

  test('with the local keyring: the keys are copied in like the gateway pod, prefix and dry run passed on', () => {
    const r = render({ valuesFiles: [SECRETS] });
    const spec = r.one('Job').spec.template.spec;
    expect(spec.initContainers).toEqual(r.pod.initContainers);
    expect(spec.volumes).toEqual(r.pod.volumes);
    expect(spec.containers[0].args).toEqual(['rewrap', '--coffer', 'archive-1250000000', '--to-key', 'archive-2027', '--prefix', 'reports/', '--dry-run']);
  });

  test.each([
    ['no runs', { rewrap: { enabled: true, runs: [] } }, /rewrap.enabled needs rewrap.runs/],
    ['an unknown coffer', { rewrap: { enabled: true, runs: [{ coffer: 'nope-1250000000', toKey: 'k' }] } }, /rewrap.runs\[0\]: coffer nope-1250000000 is not in config.coffers/],
    ['an AWS KMS target the gateway does not trust yet', { rewrap: { enabled: true, runs: [{ coffer: 'ledger-1250000000', toKey: 'alias/other' }] } }, /add alias\/other to config.coffers.ledger-1250000000.kms.previousKeyIds first/],
    ['an unknown class', { rewrap: { enabled: true, runs: [{ class: 'nope', toKey: 'k' }] } }, /rewrap.runs\[0\]: class nope is not in config.cofferClasses/],
    ['a class target the gateway does not trust yet', { rewrap: { enabled: true, runs: [{ class: 'team', toKey: 'alias/other' }] } }, /add alias\/other to config.cofferClasses.team.coffer.kms.previousKeyIds first/],
    ['a run naming both a coffer and a class', { rewrap: { enabled: true, runs: [{ coffer: 'ledger-1250000000', class: 'team', toKey: 'alias/coffer-ledger' }] } }, /rewrap\.runs\[0\]|oneOf/],
  ])('refuses %s', (_name, values, message) => {
    const result = helmTemplate({ valuesFiles: [OPERATIONS], values });
    expect(result.ok).toBe(false);
    expect(result.output).toMatch(message);
  });
});

/** Every metric name a PromQL expression uses (histogram series folded to their metric). */
function metricNames(expr: string): string[] {
  return [...expr.matchAll(/\b((?:coffer_gateway|process|nodejs)_[a-z0-9_]+)\b/g)].map((m) => (m[1] as string).replace(/_(bucket|sum|count)$/, ''));
}

describe('PrometheusRule and Grafana dashboard', () => {
  let known: Set<string>;
  beforeAll(async () => {
    known = new Set((await createMetrics().registry.getMetricsAsJSON()).map((metric) => metric.name));
  });

  test('the alerts the runbook names, on series of this release, using only metrics the gateway exports', () => {
    const rule = render({ valuesFiles: [OPERATIONS] }).one('PrometheusRule');
    expect(rule.metadata.labels.release).toBe('kube-prometheus-stack');
    const rules = rule.spec.groups[0].rules as K8sObject[];
    expect(rules.map((r) => r.alert)).toEqual([
      'CofferGatewayIntegrityCheckFailed',
      'CofferGatewayKMSFailed',
      'CofferGatewayAssumeRoleFailed',
      'CofferGatewayRoleCredentialsStale',
      'CofferGatewayJwksFetchFailing',
      'CofferGatewayTlsCertificateExpiring',
      'CofferGatewayErrorRatio',
      'CofferGatewayUpstreamReadStreamsLeaked',
    ]);
    for (const r of rules) {
      expect(r.expr).toContain(`namespace="${NAMESPACE}", job="${FULLNAME}"`);
      for (const name of metricNames(r.expr)) expect({ alert: r.alert, name, known: known.has(name) }).toEqual({ alert: r.alert, name, known: true });
    }
    expect(rules.find((r) => r.alert === 'CofferGatewayTlsCertificateExpiring')?.expr).toContain('< 1209600');
  });

  test('the dashboard ConfigMap carries the sidecar label and a dashboard that uses only exported metrics', () => {
    const r = render({ valuesFiles: [OPERATIONS] });
    const map = r.all('ConfigMap').find((c) => c.metadata.name === `${FULLNAME}-dashboard`) as K8sObject;
    expect(map.metadata.labels.grafana_dashboard).toBe('1');
    expect(map.metadata.annotations.grafana_folder).toBe('Storage');
    const dashboard = JSON.parse(map.data['coffer-gateway.json']) as { uid: string; panels: { title: string; targets: { expr: string }[] }[] };
    expect(dashboard).toEqual(JSON.parse(readFileSync(join(CHART, 'dashboards', 'coffer-gateway.json'), 'utf8')));
    expect(dashboard.uid).toBe('coffer-gateway');
    const used = dashboard.panels.flatMap((panel) => panel.targets.flatMap((target) => metricNames(target.expr)));
    expect(used.length).toBeGreaterThan(10);
    for (const name of used) expect({ name, known: known.has(name) }).toEqual({ name, known: true });
  });

  test('off by default', () => {
    const r = render();
    expect(r.has('PrometheusRule')).toBe(false);
    expect(r.all('ConfigMap').map((c) => c.metadata.name)).toEqual([FULLNAME]);
    expect(r.has('CronJob')).toBe(false);
    expect(r.has('Job')).toBe(false);
  });
});
