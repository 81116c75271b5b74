/**
 * The Helm chart, rendered offline with the npm-installed helm 3.6.2: lint, hardening, probes, gated
 * objects, secret references, rollouts on config change, values.schema.json, and - most important -
 * that the ConfigMap it renders is accepted by the gateway's own configuration loader.
 */
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { CHART, NAMESPACE, RELEASE, containersOf, deployValuesFiles, helmLint, helmTemplate, loadRenderedConfig, mountFor, render, type K8sObject, type Rendered } from './helm-support';
import { regeneratedValuesSchema } from '../../scripts/generate-chart-schema';

const FULLNAME = `${RELEASE}-coffer-gateway`;
const VALUES_FILES = deployValuesFiles();

/** A realistic configuration with every kind of secret reference. */
const WITH_SECRETS = {
  config: {
    auth: {
      accessKeys: [
        { secretId: 'AKIDwriter0001', grants: [{ coffer: 'archive-1250000000', actions: ['write', 'list'] }] },
        { secretId: 'AKIDreader0001', grants: [{ coffer: 'archive-1250000000', actions: ['read'] }] },
      ],
    },
    coffers: {
      'archive-1250000000': {
        upstream: { endpoint: 'http://minio.storage.svc:9000', bucket: 'coffer-archive' },
        kms: { type: 'local', keyId: 'archive-2025' },
      },
    },
  },
  secrets: {
    accessKeys: [
      { secretId: 'AKIDwriter0001', existingSecret: 'gw-access-keys', key: 'writer' },
      { secretId: 'AKIDreader0001', existingSecret: 'gw-access-keys-2', key: 'reader' },
    ],
    upstreamCredentials: [{ coffer: 'archive-1250000000', accessKeyId: 'coffer-gateway', existingSecret: 'gw-minio', key: 'secret-access-key' }],
  },
  keyring: { existingSecret: 'gw-keyring' },
  tls: { enabled: true, existingSecret: 'gw-tls' },
};

interface Scenario {
  readonly name: string;
  readonly render: () => Rendered;
}

const SCENARIOS: Scenario[] = [
  { name: 'default values', render: () => render() },
  { name: 'all secret references', render: () => render({ values: WITH_SECRETS }) },
  { name: 'everything enabled', render: () => render({ values: WITH_SECRETS, set: { 'autoscaling.enabled': true, 'networkPolicy.enabled': true, 'serviceMonitor.enabled': true, 'lifecycle.preStopSleepSeconds': 5 } }) },
  ...VALUES_FILES.map((file) => ({ name: file, render: () => render({ valuesFiles: [file] }) })),
  // Documented in values-aws-kms-irsa.yaml: layering both service examples.
  { name: 'values-production.yaml + values-aws-kms-irsa.yaml', render: () => render({ valuesFiles: ['deploy/service/values-production.yaml', 'deploy/service/values-aws-kms-irsa.yaml'] }) },
];

describe('helm lint', () => {
  test('the chart alone (no coffers) refuses to render, naming what to configure, instead of installing pods that look Ready and serve nothing', () => {
    for (const result of [helmTemplate({ bare: true }), helmLint({ bare: true })]) {
      expect(result.ok).toBe(false);
      expect(result.output).toMatch(/config\.coffers is empty: configure at least one coffer, `config\.coffers\.<name>-<APPID>: \{upstream: \{endpoint, bucket\}, kms: \{type, keyId\}\}`, and how clients authenticate, `config\.auth`/);
    }
  });

  test('passes --strict with the placeholder values (ci/placeholder-values.yaml)', () => {
    const result = helmLint();
    expect(result.output).toContain('0 chart(s) failed');
    expect(result.ok).toBe(true);
  });

  test('deploy/ holds the example values files', () => {
    expect(VALUES_FILES).toEqual(expect.arrayContaining(['deploy/egress/values.yaml', 'deploy/service/values-production.yaml', 'deploy/service/values-aws-kms-irsa.yaml']));
  });

  test.each(VALUES_FILES)('passes --strict with %s', (file) => {
    const result = helmLint({ valuesFiles: [file] });
    expect(result.output).toContain('0 chart(s) failed');
    expect(result.ok).toBe(true);
  });

  test('passes with the secret-reference values', () => {
    expect(helmLint({ values: WITH_SECRETS }).ok).toBe(true);
  });
});

describe.each(SCENARIOS)('rendered manifests: $name', ({ render: renderScenario }) => {
  let r: Rendered;
  beforeAll(() => {
    r = renderScenario();
  });

  test('renders the core objects and never a Secret', () => {
    expect(r.kinds).toEqual(expect.arrayContaining(['ServiceAccount', 'ConfigMap', 'Service', 'Deployment', 'Pod']));
    expect(r.has('Secret')).toBe(false);
  });

  test('every object carries the standard labels (the helm test objects their own name)', () => {
    for (const doc of r.docs) {
      const test = doc.metadata.annotations?.['helm.sh/hook'] === 'test';
      expect(doc.metadata.labels).toMatchObject({ 'app.kubernetes.io/name': test ? 'coffer-gateway-test' : 'coffer-gateway', 'app.kubernetes.io/instance': RELEASE, 'app.kubernetes.io/managed-by': 'Helm' });
    }
  });

  test('the helm test pod is selected by no Service, PodDisruptionBudget or gateway NetworkPolicy (a failed test pod must not block drains)', () => {
    const labels = r.one('Pod').metadata.labels as Record<string, string>;
    const selects = (selector: Record<string, string>) => Object.entries(selector).every(([k, v]) => labels[k] === v);
    const selectors = [r.one('Service').spec.selector, r.one('Deployment').spec.selector.matchLabels];
    if (r.has('PodDisruptionBudget')) selectors.push(r.one('PodDisruptionBudget').spec.selector.matchLabels);
    const gatewayPolicy = r.all('NetworkPolicy').find((np) => np.metadata.name === FULLNAME);
    if (gatewayPolicy !== undefined) selectors.push(gatewayPolicy.spec.podSelector.matchLabels);
    for (const selector of selectors) expect(selects(selector)).toBe(false);
    // …and the Deployment's pods are what those selectors do select.
    const podLabels = r.one('Deployment').spec.template.metadata.labels as Record<string, string>;
    for (const selector of selectors) expect(Object.entries(selector).every(([k, v]) => podLabels[k] === v)).toBe(true);
  });

  test('hardened pod securityContext on the gateway pod and the test hook', () => {
    for (const pod of [r.pod, r.one('Pod').spec]) {
      expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } });
      expect(pod.securityContext.runAsUser).toBeGreaterThan(0);
      expect(pod.securityContext.runAsGroup).toBeGreaterThan(0);
      expect(pod.securityContext.fsGroup).toBeGreaterThan(0);
      expect(pod.automountServiceAccountToken).toBe(false);
      expect(pod.enableServiceLinks).toBe(false);
    }
  });

  test('hardened securityContext on every container, including init containers and the test hook', () => {
    const containers = [...containersOf(r.pod), ...containersOf(r.one('Pod').spec)];
    expect(containers.length).toBeGreaterThanOrEqual(2);
    for (const container of containers) {
      const sc = container.securityContext;
      expect({ name: container.name, sc }).toMatchObject({
        sc: { runAsNonRoot: true, allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, privileged: false, seccompProfile: { type: 'RuntimeDefault' } },
      });
      expect(sc.capabilities.drop).toContain('ALL');
      expect(sc.capabilities.add ?? []).toEqual([]);
      expect(container.resources?.requests).toBeDefined();
      expect(container.resources?.limits?.memory).toBeDefined();
    }
  });

  test('the only writable path of the gateway is the /tmp emptyDir (HOME and TMPDIR point there)', () => {
    const writable = (r.gateway.volumeMounts as K8sObject[]).filter((m) => m.readOnly !== true);
    expect(writable.map((m) => m.mountPath)).toEqual(['/tmp']);
    const tmp = (r.pod.volumes as K8sObject[]).find((v) => v.name === writable[0]?.name);
    expect(tmp?.emptyDir).toBeDefined();
    const env = Object.fromEntries((r.gateway.env as K8sObject[]).map((e) => [e.name, e.value]));
    expect(env).toMatchObject({ HOME: '/tmp', TMPDIR: '/tmp', COFFER_CONFIG: '/etc/coffer-gateway/config/config.yaml' });
    expect(env).not.toHaveProperty('PORT');
  });

  test('probes hit /healthz and /readyz on the admin port, which is the configured server.adminPort', () => {
    const ports = Object.fromEntries((r.gateway.ports as K8sObject[]).map((p) => [p.name, p.containerPort]));
    expect(r.gateway.livenessProbe.httpGet).toMatchObject({ path: '/healthz', port: 'admin', scheme: 'HTTP' });
    expect(r.gateway.readinessProbe.httpGet).toMatchObject({ path: '/readyz', port: 'admin', scheme: 'HTTP' });
    expect(r.gateway.startupProbe.httpGet).toMatchObject({ path: '/healthz', port: 'admin' });
    const server = parse(r.configText).server;
    expect(server).toMatchObject({ host: '0.0.0.0', adminHost: '0.0.0.0', port: ports.data, adminPort: ports.admin });
    expect(ports.admin).not.toBe(ports.data);
  });

  test('the Service exposes the data and admin ports by name', () => {
    const service = r.one('Service');
    const byName = Object.fromEntries((service.spec.ports as K8sObject[]).map((p) => [p.targetPort, p]));
    expect(Object.keys(byName).sort()).toEqual(['admin', 'data']);
    expect(service.spec.selector).toEqual(r.one('Deployment').spec.selector.matchLabels);
  });

  test('terminationGracePeriodSeconds exceeds the drain time (shutdownGraceMs + preStop sleep)', () => {
    const server = parse(r.configText).server;
    const sleep = r.gateway.lifecycle?.preStop?.sleep?.seconds ?? 0;
    const graceMs = server.shutdownGraceMs ?? 30_000;
    expect(r.pod.terminationGracePeriodSeconds).toBeGreaterThan(graceMs / 1000 + sleep);
  });

  test('the config checksum annotation is the sha256 of the ConfigMap', () => {
    expect(r.pod).toBeDefined();
    const annotations = r.one('Deployment').spec.template.metadata.annotations;
    expect(annotations['checksum/config']).toMatch(/^[0-9a-f]{64}$/);
  });

  test('the ConfigMap config is accepted by loadConfig, and every file it names is mounted', () => {
    const { config, filesRead } = loadRenderedConfig(r.configText);
    expect(Object.keys(config.coffers).length).toBeGreaterThan(0);
    expect(config.embeddedUpstream.enabled).toBe(false);
    expect(config.demo.enabled).toBe(false);
    expect(config.keyring.create).toBe(false);
    for (const path of filesRead) {
      expect({ path, mounted: mountFor(r.gateway, path) !== undefined }).toEqual({ path, mounted: true });
    }
  });

  test('no secret-looking values in the rendered manifests', () => {
    expect(r.text).not.toMatch(/^\s*(secretKey|secretAccessKey|hmacSecret|password|token)\s*:/im);
    expect(r.text).not.toMatch(/-----BEGIN [A-Z ]*PRIVATE KEY-----/);
    for (const container of [...containersOf(r.pod), ...containersOf(r.one('Pod').spec)]) {
      for (const env of container.env ?? []) {
        if (/SECRET|PASSWORD|TOKEN|KEY/i.test(env.name) && !/_FILE$/.test(env.name)) expect(env.value).toBeUndefined();
      }
    }
  });

  test('the helm test hook checks /readyz and /metrics on the admin Service port', () => {
    const pod = r.one('Pod');
    expect(pod.metadata.annotations['helm.sh/hook']).toBe('test');
    expect(pod.spec.restartPolicy).toBe('Never');
    const readyz = (pod.spec.containers as K8sObject[]).find((c) => c.name === 'readyz') as K8sObject;
    const script = (readyz.command as string[]).join(' ');
    const adminPort = (r.one('Service').spec.ports as K8sObject[]).find((p) => p.name === 'admin')?.port;
    expect(script).toContain(`:${adminPort}"`);
    expect(script).toMatch(/wget .*\/readyz/);
    expect(script).toMatch(/\/metrics/);
    expect(readyz.image).toMatch(/^busybox[:@]/);
  });

  test("the helm test hook runs `doctor --quick --json` in the gateway image with the release's config, secrets, keyring and service account", () => {
    const pod = r.one('Pod').spec;
    const doctor = (pod.containers as K8sObject[]).find((c) => c.name === 'doctor') as K8sObject;
    expect(doctor.image).toBe(r.gateway.image);
    expect(doctor.args).toEqual(['doctor', '--quick', '--json']);
    expect(doctor.env).toEqual(r.gateway.env);
    expect(doctor.volumeMounts).toEqual(r.gateway.volumeMounts);
    expect(pod.volumes).toEqual(r.pod.volumes);
    expect(pod.initContainers).toEqual(r.pod.initContainers);
    expect(pod.serviceAccountName).toBe(r.pod.serviceAccountName);
    expect(pod.automountServiceAccountToken).toBe(r.pod.automountServiceAccountToken);
  });

  test('the helm test hook sends an unsigned request to the data Service and requires 403', () => {
    const pod = r.one('Pod').spec;
    const unsigned = (pod.containers as K8sObject[]).find((c) => c.name === 'unsigned-request') as K8sObject;
    expect(unsigned.image).toBe(r.gateway.image);
    const url = (unsigned.env as K8sObject[]).find((e) => e.name === 'COFFER_TEST_URL')?.value as string;
    const data = (r.one('Service').spec.ports as K8sObject[]).find((p) => p.name !== 'admin') as K8sObject;
    const coffer = Object.keys(parse(r.configText).coffers).sort()[0];
    expect(url).toBe(`${data.name}://${r.one('Service').metadata.name}.${NAMESPACE}.svc:${data.port}/${coffer}/`);
    expect((unsigned.command as string[]).join(' ')).toMatch(/statusCode === 403/);
  });
});

describe('defaults', () => {
  let r: Rendered;
  beforeAll(() => {
    r = render();
  });

  test('gated objects: HPA, NetworkPolicy and ServiceMonitor off; PDB on because replicaCount is 2', () => {
    expect(r.has('HorizontalPodAutoscaler')).toBe(false);
    expect(r.has('NetworkPolicy')).toBe(false);
    expect(r.has('ServiceMonitor')).toBe(false);
    expect(r.one('Deployment').spec.replicas).toBe(2);
    expect(r.one('PodDisruptionBudget').spec).toEqual({ maxUnavailable: 1, selector: { matchLabels: r.one('Deployment').spec.selector.matchLabels } });
  });

  test('image defaults to the chart appVersion; a digest wins over the tag', () => {
    const chart = parse(readFileSync(join(CHART, 'Chart.yaml'), 'utf8'));
    expect(r.gateway.image).toBe(`ghcr.io/example/coffer-gateway:${chart.appVersion}`);
    const digest = `sha256:${'a'.repeat(64)}`;
    expect(render({ set: { 'image.digest': digest } }).gateway.image).toBe(`ghcr.io/example/coffer-gateway@${digest}`);
    expect(r.gateway.args).toEqual(['serve']);
    expect(r.gateway.command).toBeUndefined();
  });

  test('the placeholder config uses service-account JWTs with the projected API token and cluster CA', () => {
    const config = parse(r.configText);
    expect(Object.keys(config.coffers)).toEqual(['example-1250000000']);
    expect(config.auth.jwt.jwks).toEqual({
      url: 'https://kubernetes.default.svc/openid/v1/jwks',
      tokenFile: '/var/run/secrets/coffer-gateway/kube-api/token',
      caFile: '/var/run/secrets/coffer-gateway/kube-api/ca.crt',
    });
    expect(config.auth.jwt.rules[0].subject).toBe(`system:serviceaccount:${NAMESPACE}:coffer-client`);
    const kubeApi = (r.pod.volumes as K8sObject[]).find((v) => v.name === 'kube-api') as K8sObject;
    expect(kubeApi.projected.sources).toEqual([{ serviceAccountToken: { path: 'token', expirationSeconds: 3600 } }, { configMap: { name: 'kube-root-ca.crt', items: [{ key: 'ca.crt', path: 'ca.crt' }] } }]);
  });

  test('the ServiceAccount does not automount a token and takes workload-identity annotations', () => {
    expect(r.one('ServiceAccount').automountServiceAccountToken).toBe(false);
    const sa = render({ set: { 'serviceAccount.annotations.eks\\.amazonaws\\.com/role-arn': 'arn:aws:iam::123456789012:role/x' } }).one('ServiceAccount');
    expect(sa.metadata.annotations).toEqual({ 'eks.amazonaws.com/role-arn': 'arn:aws:iam::123456789012:role/x' });
    expect(render({ set: { 'serviceAccount.create': false, 'serviceAccount.name': 'existing' } }).pod.serviceAccountName).toBe('existing');
  });

  test('spreads replicas over zones and nodes by default', () => {
    const constraints = r.pod.topologySpreadConstraints as K8sObject[];
    expect(constraints.map((c) => c.topologyKey)).toEqual(['topology.kubernetes.io/zone', 'kubernetes.io/hostname']);
    for (const c of constraints) expect(c.labelSelector.matchLabels).toEqual(r.one('Deployment').spec.selector.matchLabels);
  });

  test('terminationGracePeriodSeconds is derived from shutdownGraceMs and preStopSleepSeconds', () => {
    expect(r.pod.terminationGracePeriodSeconds).toBe(30 + 5 + 10);
    const custom = render({ set: { 'config.server.shutdownGraceMs': 90_500, 'lifecycle.preStopSleepSeconds': 8 } });
    expect(custom.pod.terminationGracePeriodSeconds).toBe(91 + 8 + 10);
    expect(custom.gateway.lifecycle).toEqual({ preStop: { sleep: { seconds: 8 } } });
    expect(render({ set: { 'lifecycle.preStopSleepSeconds': 0 } }).gateway.lifecycle).toBeUndefined();
  });

  test('a preStop delay by default (endpoint removal reaches every proxy first): the sleep action from Kubernetes 1.30, node waiting before', () => {
    expect(r.gateway.lifecycle).toEqual({ preStop: { sleep: { seconds: 5 } } });
    const old = render({ kubeVersion: '1.29.4' });
    expect(old.gateway.lifecycle).toEqual({ preStop: { exec: { command: ['/nodejs/bin/node', '-e', 'setTimeout(() => {}, 5000)'] } } });
    expect(old.gateway.image).toBe(r.gateway.image); // the distroless image, whose node is /nodejs/bin/node (Dockerfile ENTRYPOINT)
  });
});

describe('secret references', () => {
  let r: Rendered;
  beforeAll(() => {
    r = render({ values: WITH_SECRETS });
  });

  test('access keys and upstream credentials are files from the existing Secrets, referenced by path', () => {
    const config = parse(r.configText);
    const volume = (r.pod.volumes as K8sObject[]).find((v) => v.name === 'secrets') as K8sObject;
    const mount = r.gateway.volumeMounts.find((m: K8sObject) => m.name === 'secrets');
    expect(mount).toMatchObject({ mountPath: '/etc/coffer-gateway/secrets', readOnly: true });
    expect(mount.subPath).toBeUndefined();
    const items = (volume.projected.sources as K8sObject[]).map((s) => ({ secret: s.secret.name, key: s.secret.items[0].key, file: `${mount.mountPath}/${s.secret.items[0].path}` }));
    expect(items).toEqual([
      { secret: 'gw-access-keys', key: 'writer', file: config.auth.accessKeys[0].secretKeyFile },
      { secret: 'gw-access-keys-2', key: 'reader', file: config.auth.accessKeys[1].secretKeyFile },
      { secret: 'gw-minio', key: 'secret-access-key', file: config.coffers['archive-1250000000'].upstream.credentials.secretAccessKeyFile },
    ]);
    expect(config.coffers['archive-1250000000'].upstream.credentials.accessKeyId).toBe('coffer-gateway');
    for (const key of config.auth.accessKeys) expect(key.secretKey).toBeUndefined();
  });

  test('TLS comes from the TLS Secret mounted as a directory (renewals propagate)', () => {
    const config = parse(r.configText);
    expect(config.server.tls).toEqual({ certFile: '/etc/coffer-gateway/tls/tls.crt', keyFile: '/etc/coffer-gateway/tls/tls.key' });
    expect((r.pod.volumes as K8sObject[]).find((v) => v.name === 'tls')?.secret.secretName).toBe('gw-tls');
    expect(r.gateway.volumeMounts.find((m: K8sObject) => m.name === 'tls')).toEqual({ name: 'tls', mountPath: '/etc/coffer-gateway/tls', readOnly: true });
    expect((r.one('Service').spec.ports as K8sObject[])[0]).toMatchObject({ name: 'https', appProtocol: 'https' });
  });

  test('the local keyring is copied from its Secret into an in-memory emptyDir with mode 0400', () => {
    const config = parse(r.configText);
    expect(config.keyring).toEqual({ directory: '/var/run/coffer-gateway/keyring', create: false });
    const init = (r.pod.initContainers as K8sObject[]).find((c) => c.name === 'keyring') as K8sObject;
    expect(init.command.join(' ')).toMatch(/umask 077 && cp -L \/etc\/coffer-gateway\/keyring-source\/\*\.key \/var\/run\/coffer-gateway\/keyring\/ && chmod 0400/);
    const volumes = Object.fromEntries((r.pod.volumes as K8sObject[]).map((v) => [v.name, v]));
    expect(volumes['keyring-source'].secret.secretName).toBe('gw-keyring');
    expect(volumes.keyring.emptyDir.medium).toBe('Memory');
    expect(r.gateway.volumeMounts.find((m: K8sObject) => m.name === 'keyring')).toMatchObject({ mountPath: config.keyring.directory, readOnly: true });
  });

  test('the loader reads exactly the mounted secret files', () => {
    const { filesRead } = loadRenderedConfig(r.configText);
    expect(filesRead.sort()).toEqual([
      '/etc/coffer-gateway/secrets/access-keys/0',
      '/etc/coffer-gateway/secrets/access-keys/1',
      '/etc/coffer-gateway/secrets/upstream/0',
      '/etc/coffer-gateway/tls/tls.crt',
      '/etc/coffer-gateway/tls/tls.key',
    ]);
    expect(mountFor(r.gateway, '/etc/coffer-gateway/elsewhere/x')).toBeUndefined();
  });

  test('no projected API token when JWT verification does not use the API server', () => {
    expect((r.pod.volumes as K8sObject[]).some((v) => v.name === 'kube-api')).toBe(false);
  });

  test.each([
    [
      'an inline secretKey',
      { config: { ...WITH_SECRETS.config, auth: { accessKeys: [{ secretId: 'AKIDinline01', secretKey: 'inline-secret-key-1234567890', grants: [{ coffer: '*', actions: ['read'] }] }] } } },
      /inline secretKey would be stored in a ConfigMap/,
    ],
    [
      'an inline secretAccessKey',
      {
        config: {
          auth: WITH_SECRETS.config.auth,
          coffers: { 'a-1': { upstream: { endpoint: 'http://m:9000', bucket: 'bkt', credentials: { accessKeyId: 'abc', secretAccessKey: 'inline-secret-1234' } }, kms: { type: 'aws-kms', keyId: 'alias/x', region: 'us-east-1' } } },
        },
        secrets: { accessKeys: WITH_SECRETS.secrets.accessKeys },
      },
      /inline secrets would be stored in a ConfigMap/,
    ],
    ['an access key without any SecretKey', { config: WITH_SECRETS.config }, /has no SecretKey: add \{secretId, existingSecret, key\} to secrets.accessKeys/],
    [
      'a secret reference to an unknown secretId',
      { ...WITH_SECRETS, secrets: { ...WITH_SECRETS.secrets, accessKeys: [...WITH_SECRETS.secrets.accessKeys, { secretId: 'AKIDtypo0001', existingSecret: 'x', key: 'y' }] } },
      /secretId AKIDtypo0001 is not in config.auth.accessKeys/,
    ],
    [
      'upstream credentials for an unknown coffer',
      { ...WITH_SECRETS, secrets: { ...WITH_SECRETS.secrets, upstreamCredentials: [{ coffer: 'nope-1250000000', accessKeyId: 'abc', existingSecret: 'x', key: 'y' }] } },
      /coffer nope-1250000000 is not in config.coffers/,
    ],
    ['kms.type local without a keyring Secret', { ...WITH_SECRETS, keyring: { existingSecret: '' } }, /uses kms.type local: set keyring.existingSecret/],
    ['tls without a Secret', { ...WITH_SECRETS, tls: { enabled: true, existingSecret: '' } }, /tls.enabled requires tls.existingSecret/],
  ])('refuses %s', (_name, values, message) => {
    const result = helmTemplate({ values });
    expect(result.ok).toBe(false);
    expect(result.output).toMatch(message);
  });

  test('secrets.allowInline lets a test cluster use inline secrets', () => {
    const values = {
      config: { ...WITH_SECRETS.config, auth: { accessKeys: [{ secretId: 'AKIDinline01', secretKey: 'inline-secret-key-1234567890', grants: [{ coffer: '*', actions: ['read'] }] }] } },
      keyring: WITH_SECRETS.keyring,
      secrets: { allowInline: true },
    };
    const config = loadRenderedConfig(render({ values }).configText).config;
    expect(config.auth.accessKeys[0]?.secretKey).toBe('inline-secret-key-1234567890');
  });
});

describe('gated objects', () => {
  test('HPA (autoscaling/v2) replaces the replica count', () => {
    const r = render({ set: { 'autoscaling.enabled': true, 'autoscaling.minReplicas': 3, 'autoscaling.maxReplicas': 9, 'autoscaling.targetMemoryUtilizationPercentage': 80 } });
    const hpa = r.one('HorizontalPodAutoscaler');
    expect(hpa.apiVersion).toBe('autoscaling/v2');
    expect(hpa.spec).toMatchObject({ scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: FULLNAME }, minReplicas: 3, maxReplicas: 9 });
    expect(hpa.spec.metrics).toEqual([
      { type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 70 } } },
      { type: 'Resource', resource: { name: 'memory', target: { type: 'Utilization', averageUtilization: 80 } } },
    ]);
    expect(hpa.spec.behavior.scaleDown.stabilizationWindowSeconds).toBe(300);
    expect(r.one('Deployment').spec.replicas).toBeUndefined();
    expect(r.one('PodDisruptionBudget').spec.maxUnavailable).toBe(1);
  });

  test('PDB only with more than one replica; minAvailable replaces maxUnavailable', () => {
    expect(render({ set: { replicaCount: 1 } }).has('PodDisruptionBudget')).toBe(false);
    expect(render({ set: { 'autoscaling.enabled': true, 'autoscaling.minReplicas': 1 } }).has('PodDisruptionBudget')).toBe(false);
    expect(render({ set: { 'podDisruptionBudget.enabled': false } }).has('PodDisruptionBudget')).toBe(false);
    const pdb = render({ set: { replicaCount: 4, 'podDisruptionBudget.minAvailable': '50%', 'podDisruptionBudget.unhealthyPodEvictionPolicy': 'AlwaysAllow' } }).one('PodDisruptionBudget');
    expect(pdb.apiVersion).toBe('policy/v1');
    expect(pdb.spec).toMatchObject({ minAvailable: '50%', unhealthyPodEvictionPolicy: 'AlwaysAllow' });
    expect(pdb.spec.maxUnavailable).toBeUndefined();
  });

  test('NetworkPolicy: ingress to the data and admin ports from the configured peers, egress to DNS and the configured destinations only', () => {
    const r = render({
      values: {
        networkPolicy: {
          enabled: true,
          ingress: { dataFrom: [{ namespaceSelector: { matchLabels: { team: 'a' } } }], adminFrom: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } } }] },
          egress: {
            upstream: [{ cidrs: ['10.1.0.0/16'], except: ['10.1.2.0/24'], ports: [{ port: 443 }] }],
            kms: [{ cidrs: ['10.2.0.0/24'], ports: [{ port: 443 }] }],
            sts: [{ peers: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'localstack' } } }], ports: [{ port: 4566 }] }],
          },
        },
      },
    });
    const np = r.all('NetworkPolicy').find((p) => p.metadata.name === FULLNAME) as K8sObject;
    expect(np.spec.podSelector.matchLabels).toEqual(r.one('Deployment').spec.selector.matchLabels);
    expect(np.spec.policyTypes).toEqual(['Ingress', 'Egress']);
    const testPod = { podSelector: { matchLabels: { 'app.kubernetes.io/name': 'coffer-gateway-test', 'app.kubernetes.io/instance': RELEASE, 'app.kubernetes.io/component': 'test' } } };
    expect(r.one('Pod').metadata.labels).toMatchObject(testPod.podSelector.matchLabels);
    expect(np.spec.ingress).toEqual([
      { from: [{ namespaceSelector: { matchLabels: { team: 'a' } } }, testPod], ports: [{ port: 'data', protocol: 'TCP' }] },
      { from: [testPod, { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } } }], ports: [{ port: 'admin', protocol: 'TCP' }] },
    ]);
    // The job pods' own policy (helm test, gc, rewrap): what the gateway may reach, plus the gateway's ports; no ingress.
    const testPolicy = r.all('NetworkPolicy').find((p) => p.metadata.name === `${FULLNAME}-jobs`) as K8sObject;
    expect(testPolicy.spec.podSelector).toEqual({
      matchLabels: { 'app.kubernetes.io/instance': RELEASE },
      matchExpressions: [{ key: 'app.kubernetes.io/name', operator: 'In', values: ['coffer-gateway-test', 'coffer-gateway-gc', 'coffer-gateway-rewrap'] }],
    });
    expect(testPolicy.spec.policyTypes).toEqual(['Ingress', 'Egress']);
    expect(testPolicy.spec.ingress).toBeUndefined();
    expect(testPolicy.spec.egress).toEqual([
      ...np.spec.egress,
      {
        to: [{ podSelector: { matchLabels: r.one('Deployment').spec.selector.matchLabels } }],
        ports: [
          { port: 8080, protocol: 'TCP' },
          { port: 9090, protocol: 'TCP' },
        ],
      },
    ]);
    expect(
      render({ values: { networkPolicy: { enabled: true }, tests: { enabled: false } } })
        .all('NetworkPolicy')
        .map((p) => p.metadata.name),
    ).toEqual([FULLNAME]);
    expect(np.spec.egress).toEqual([
      {
        to: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'kube-system' } }, podSelector: { matchLabels: { 'k8s-app': 'kube-dns' } } }],
        ports: [
          { port: 53, protocol: 'UDP' },
          { port: 53, protocol: 'TCP' },
        ],
      },
      { to: [{ ipBlock: { cidr: '10.1.0.0/16', except: ['10.1.2.0/24'] } }], ports: [{ port: 443, protocol: 'TCP' }] },
      { to: [{ ipBlock: { cidr: '10.2.0.0/24' } }], ports: [{ port: 443, protocol: 'TCP' }] },
      { to: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'localstack' } } }], ports: [{ port: 4566, protocol: 'TCP' }] },
    ]);
  });

  test('NetworkPolicy refuses an egress rule without destinations (it would allow everything)', () => {
    const result = helmTemplate({ values: { networkPolicy: { enabled: true, egress: { upstream: [{ ports: [{ port: 443 }] }] } } } });
    expect(result.ok).toBe(false);
    expect(result.output).toMatch(/networkPolicy.egress.upstream\[0\]: set cidrs and\/or peers/);
  });

  test('ServiceMonitor scrapes /metrics on the admin Service port', () => {
    const r = render({ set: { 'serviceMonitor.enabled': true, 'serviceMonitor.labels.release': 'prom', 'serviceMonitor.interval': '15s' } });
    const sm = r.one('ServiceMonitor');
    expect(sm.apiVersion).toBe('monitoring.coreos.com/v1');
    expect(sm.metadata.labels.release).toBe('prom');
    expect(sm.spec.selector.matchLabels).toEqual(r.one('Service').spec.selector);
    expect(sm.spec.namespaceSelector).toEqual({ matchNames: [NAMESPACE] });
    expect(sm.spec.endpoints).toEqual([{ port: 'admin', path: '/metrics', scheme: 'http', interval: '15s', scrapeTimeout: '10s', honorLabels: false }]);
    expect((r.one('Service').spec.ports as K8sObject[]).map((p) => p.name)).toContain('admin');
  });

  test('the helm test hook can be disabled', () => {
    expect(render({ set: { 'tests.enabled': false } }).has('Pod')).toBe(false);
  });
});

describe('chart and gateway schema agree', () => {
  test('a value the chart lets through but the gateway refuses is caught by loadConfig (the check is not vacuous)', () => {
    const values = {
      config: {
        auth: WITH_SECRETS.config.auth,
        coffers: { 'archive-1250000000': { upstream: { endpoint: 'http://m:9000', bucket: 'Bad_Bucket' }, kms: { type: 'aws-kms', keyId: 'alias/a', region: 'us-east-1' } } },
      },
      secrets: { accessKeys: WITH_SECRETS.secrets.accessKeys },
    };
    const r = render({ values });
    expect(() => loadRenderedConfig(r.configText)).toThrow(/coffers\.archive-1250000000\.upstream\.bucket/);
  });

  test('every data-plane setting of config.server reaches the gateway (e.g. responseIdleTimeoutMs)', () => {
    const server = { requestIdleTimeoutMs: 30_000, responseIdleTimeoutMs: 15_000, headersTimeoutMs: 10_000, keepAliveTimeoutMs: 4_000, maxConnections: 300, maxHeaderBytes: 32_768, acceptAbsoluteForm: false, shutdownGraceMs: 20_000 };
    const r = render({ values: { ...WITH_SECRETS, config: { ...WITH_SECRETS.config, server } } });
    expect(loadRenderedConfig(r.configText).config.server).toMatchObject(server);
  });

  test("values.schema.json's config is generated from the gateway's schema (run `npm run chart-schema` after changing src/config/schema.ts)", () => {
    const committed = readFileSync(join(CHART, 'values.schema.json'), 'utf8');
    expect(regeneratedValuesSchema(committed)).toBe(committed);
  });

  test("key rotation through the chart: kms.previousKeyIds renders and the gateway accepts it (README's rotation procedure)", () => {
    const oldKey = 'arn:aws:kms:eu-central-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab';
    const coffers = {
      'archive-1250000000': {
        upstream: { endpoint: 'http://minio.storage.svc:9000', bucket: 'coffer-archive' },
        kms: { type: 'aws-kms', keyId: 'alias/archive-2026', region: 'eu-central-1', previousKeyIds: [oldKey] },
      },
    };
    const r = render({ values: { ...WITH_SECRETS, config: { ...WITH_SECRETS.config, coffers } } });
    const kms = loadRenderedConfig(r.configText).config.coffers['archive-1250000000']?.kms as { previousKeyIds?: readonly string[] };
    expect(kms.previousKeyIds).toEqual([oldKey]);
  });

  test.each([
    ['a byte size as a number', { minPartSize: 5 * 1024 * 1024 }, true],
    ['a byte size with a unit', { minPartSize: '5MiB' }, true],
    ['a byte size with an unknown unit', { minPartSize: '5 parsecs' }, false],
  ])('the generated schema keeps what JSON Schema cannot say of a transform: %s', (_name, upstream, accepted) => {
    const coffers = { 'archive-1250000000': { ...WITH_SECRETS.config.coffers['archive-1250000000'], upstream: { ...WITH_SECRETS.config.coffers['archive-1250000000'].upstream, ...upstream } } };
    const result = helmTemplate({ values: { ...WITH_SECRETS, config: { ...WITH_SECRETS.config, coffers } } });
    expect({ ok: result.ok, output: result.ok ? '' : result.output }).toMatchObject(accepted ? { ok: true } : { ok: false, output: expect.stringMatching(/minPartSize/) });
  });

  test('a role externalId of the full 1224 characters passes the chart (patterns stay within RE2, which Helm validates with)', () => {
    const role = { type: 'sts', roleArn: 'arn:aws:iam::111122223333:role/coffer', externalId: 'e'.repeat(1224) };
    const coffers = { 'archive-1250000000': { ...WITH_SECRETS.config.coffers['archive-1250000000'], role } };
    const r = render({ values: { ...WITH_SECRETS, config: { ...WITH_SECRETS.config, coffers } } });
    expect(loadRenderedConfig(r.configText).config.coffers['archive-1250000000']?.role).toMatchObject({ externalId: 'e'.repeat(1224) });
    expect(helmTemplate({ values: { ...WITH_SECRETS, config: { ...WITH_SECRETS.config, coffers: { 'archive-1250000000': { ...coffers['archive-1250000000'], role: { ...role, externalId: 'e'.repeat(1225) } } } } } }).ok).toBe(false);
  });

  test('the chart refuses a configuration that could never authorize a request', () => {
    const result = helmTemplate({ values: { config: { coffers: WITH_SECRETS.config.coffers }, keyring: WITH_SECRETS.keyring } });
    expect(result.ok).toBe(false);
    expect(result.output).toMatch(/config.auth: configure accessKeys/);
  });
});

describe('rollouts', () => {
  const checksum = (r: Rendered) => r.one('Deployment').spec.template.metadata.annotations['checksum/config'];

  test('the config checksum changes when the config changes, and only then', () => {
    const base = checksum(render());
    expect(checksum(render())).toBe(base);
    expect(checksum(render({ set: { 'config.logging.level': 'debug' } }))).not.toBe(base);
    expect(checksum(render({ set: { 'config.server.shutdownGraceMs': 45_000 } }))).not.toBe(base);
    expect(checksum(render({ set: { replicaCount: 5 } }))).toBe(base);
  });
});

describe('values.schema.json', () => {
  test('is draft-07 and closed at the top level', () => {
    const schema = JSON.parse(readFileSync(join(CHART, 'values.schema.json'), 'utf8'));
    expect(schema.$schema).toBe('http://json-schema.org/draft-07/schema#');
    expect(schema.additionalProperties).toBe(false);
    const values = parse(readFileSync(join(CHART, 'values.yaml'), 'utf8'));
    expect(Object.keys(schema.properties).sort()).toEqual(Object.keys(values).sort());
  });

  test.each([
    ['an unknown top-level value', { replicas: 3 }, /Additional property replicas is not allowed/],
    ['a wrong type', { replicaCount: 'two' }, /replicaCount/],
    ['a bad enum', { service: { type: 'External' } }, /service.type/],
    ['a negative replica count', { replicaCount: -1 }, /replicaCount/],
    ['the embedded upstream', { config: { embeddedUpstream: { enabled: true } } }, /Additional property embeddedUpstream is not allowed/],
    ['the demo coffer', { config: { demo: { enabled: true } } }, /Additional property demo is not allowed/],
    ['a chart-controlled server field', { config: { server: { host: '127.0.0.1' } } }, /Additional property host is not allowed/],
    ['an invalid coffer name', { config: { coffers: { Bad_Name: { upstream: { endpoint: 'http://m:9000', bucket: 'bkt' }, kms: { type: 'aws-kms', keyId: 'alias/a' } } } } }, /config.coffers/],
    ['an unknown kms type', { config: { coffers: { 'a-1': { upstream: { endpoint: 'http://m:9000', bucket: 'bkt' }, kms: { type: 'vault', keyId: 'k' } } } } }, /type/],
    ['a bad log level', { config: { logging: { level: 'verbose' } } }, /config.logging.level/],
    [
      'an HMAC JWT algorithm (asymmetric only)',
      { config: { auth: { jwt: { issuer: 'https://i', audiences: ['a'], algorithms: ['HS256'], jwks: { url: 'https://i/jwks' }, rules: [{ subject: 's', grants: [{ coffer: '*', actions: ['read'] }] }] } } } },
      /config.auth.jwt.algorithms.0/,
    ],
    [
      'an HMAC secret file',
      { config: { auth: { jwt: { issuer: 'https://i', audiences: ['a'], algorithms: ['RS256'], hmacSecretFile: '/s', jwks: { url: 'https://i/jwks' }, rules: [{ subject: 's', grants: [{ coffer: '*', actions: ['read'] }] }] } } } },
      /Additional property hmacSecretFile is not allowed/,
    ],
    ['a secret reference without its key', { secrets: { accessKeys: [{ secretId: 'AKIDx01', existingSecret: 'x' }] } }, /key is required/],
    ['PORT in extraEnv', { extraEnv: [{ name: 'PORT', value: '1' }] }, /extraEnv/],
    ['a bad image digest', { image: { digest: 'latest' } }, /image.digest/],
  ])('rejects %s (helm template fails)', (_name, values, message) => {
    const result = helmTemplate({ values });
    expect(result.ok).toBe(false);
    expect(result.output).toMatch(/values don't meet the specifications of the schema/);
    expect(result.output).toMatch(message);
  });

  test('every value in values.yaml is documented with a "# --" comment', () => {
    const lines = readFileSync(join(CHART, 'values.yaml'), 'utf8').split('\n');
    const undocumented: string[] = [];
    const stack: { indent: number; documentedBlock: boolean }[] = [];
    lines.forEach((line, i) => {
      const match = /^(\s*)([A-Za-z][\w.-]*):(.*)$/.exec(line);
      if (match === null) return;
      const indent = (match[1] ?? '').length;
      while (stack.length > 0 && (stack[stack.length - 1] as { indent: number }).indent >= indent) stack.pop();
      const insideDocumentedBlock = stack.some((s) => s.documentedBlock);
      const documented = /^\s*# --/.test(lines[i - 1] ?? '');
      const isParent = (match[3] ?? '').trim() === '';
      // A parent object without its own `# --` is a group heading: each child must be documented.
      if (!documented && !insideDocumentedBlock && !isParent) undocumented.push(`${i + 1}: ${line.trim()}`);
      stack.push({ indent, documentedBlock: documented || insideDocumentedBlock });
    });
    expect(undocumented).toEqual([]);
  });
});

describe('NOTES.txt', () => {
  /** Helm renders NOTES only on install; render it through `tpl` in a copy of the chart instead. */
  function notes(values?: unknown): string {
    const dir = mkdtempSync(join(tmpdir(), 'cg-notes-'));
    const chart = join(dir, 'coffer-gateway');
    cpSync(CHART, chart, { recursive: true });
    cpSync(join(chart, 'templates', 'NOTES.txt'), join(chart, 'notes.copy'));
    writeFileSync(join(chart, 'templates', 'zz-notes.yaml'), 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: notes\ndata:\n  notes: {{ tpl (.Files.Get "notes.copy") . | toJson }}\n');
    const r = render({ chart, values });
    return r.all('ConfigMap').find((c) => c.metadata.name === 'notes')?.data.notes as string;
  }

  test('explains how to verify and how to point the COS SDK at the gateway; warns about the placeholder', () => {
    const text = notes();
    expect(text).toContain(`kubectl -n ${NAMESPACE} rollout status deployment/${FULLNAME}`);
    expect(text).toContain(`helm test ${RELEASE} -n ${NAMESPACE}`);
    expect(text).toContain('/readyz');
    expect(text).toContain(`Domain: '${FULLNAME}.${NAMESPACE}.svc:8080/{Bucket}'`);
    expect(text).toContain(`Proxy: 'http://${FULLNAME}.${NAMESPACE}.svc:8080'`);
    expect(text).toContain('WARNING: config.coffers is empty');
  });

  test('no placeholder warning once coffers are configured', () => {
    const text = notes(WITH_SECRETS);
    expect(text).not.toContain('WARNING');
    expect(text).toContain('Coffers: archive-1250000000');
    expect(text).toContain('https://');
  });
});
