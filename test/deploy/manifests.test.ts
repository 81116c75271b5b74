/**
 * The raw manifests under deploy/: the native-sidecar Deployment and the client-namespace egress
 * NetworkPolicy, checked for shape and for agreement with the gateway configuration they embed (loaded
 * with the real loader) and with the chart they work with.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { DEPLOY, containersOf, loadRenderedConfig, mountFor, parseDocs, render, type K8sObject } from '../helm/helm-support';

const docsOf = (file: string) => parseDocs(readFileSync(join(DEPLOY, file), 'utf8'));
const HARDENED = { runAsNonRoot: true, allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] }, seccompProfile: { type: 'RuntimeDefault' } };

describe('deploy/sidecar/sidecar.yaml', () => {
  const docs = docsOf('sidecar/sidecar.yaml');
  const deployment = docs.find((d) => d.kind === 'Deployment') as K8sObject;
  const pod = deployment.spec.template.spec;
  const sidecar = (pod.initContainers as K8sObject[]).find((c) => c.name === 'coffer-gateway') as K8sObject;
  const app = (pod.containers as K8sObject[]).find((c) => c.name === 'app') as K8sObject;
  const configPath = (sidecar.env as K8sObject[]).find((e) => e.name === 'COFFER_CONFIG')?.value as string;
  const configVolume = (pod.volumes as K8sObject[]).find((v) => v.name === mountFor(sidecar, configPath)?.name) as K8sObject;
  const configMap = docs.find((d) => d.kind === 'ConfigMap' && d.metadata.name === configVolume.configMap.name) as K8sObject;
  const configText = configMap.data['config.yaml'] as string;

  test('all objects live in one namespace', () => {
    expect(new Set(docs.map((d) => d.metadata.namespace))).toEqual(new Set(['uploads']));
    expect(docs.map((d) => d.kind).sort()).toEqual(['ConfigMap', 'ConfigMap', 'Deployment', 'ServiceAccount']);
  });

  test('the gateway is a native sidecar: an init container with restartPolicy Always, not a regular container', () => {
    expect(sidecar.restartPolicy).toBe('Always');
    expect((pod.containers as K8sObject[]).map((c) => c.name)).toEqual(['app']);
    expect(sidecar.args).toEqual(['serve']);
    // The app starts only after the sidecar's startup probe passed.
    expect(sidecar.startupProbe.httpGet.path).toBe('/healthz');
  });

  test('the data plane listens on 127.0.0.1 only; probes reach the admin port', () => {
    const config = loadRenderedConfig(configText, configPath).config;
    expect(config.server.host).toBe('127.0.0.1');
    expect(config.server.port).toBe(8080);
    expect((sidecar.ports as K8sObject[]).map((p) => p.containerPort)).toEqual([config.server.adminPort]);
    expect(sidecar.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'admin' });
    expect(sidecar.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'admin' });
    expect(readFileSync(join(DEPLOY, 'sidecar', 'sidecar.yaml'), 'utf8')).toContain("Domain: '127.0.0.1:8080/{Bucket}'");
  });

  test('the embedded gateway config passes loadConfig, and every file it reads is mounted in the sidecar', () => {
    const { config, filesRead } = loadRenderedConfig(configText, configPath);
    expect(Object.keys(config.coffers)).toEqual(['uploads-1250000000']);
    expect(filesRead.sort()).toEqual(['/var/run/secrets/coffer-gateway/kube-api/ca.crt', '/var/run/secrets/coffer-gateway/kube-api/token']);
    for (const path of filesRead) expect(mountFor(sidecar, path)).toBeDefined();
  });

  test('the app authenticates with a projected service-account token whose audience and subject the gateway accepts', () => {
    const { config } = loadRenderedConfig(configText, configPath);
    const jwt = config.auth.jwt;
    if (jwt === undefined) throw new Error('auth.jwt missing');
    expect(jwt.jwks?.url).toBe('https://kubernetes.default.svc/openid/v1/jwks');
    const tokenPath = (app.env as K8sObject[]).find((e) => e.name === 'COFFER_TOKEN_FILE')?.value as string;
    const mount = mountFor(app, tokenPath) as K8sObject;
    const volume = (pod.volumes as K8sObject[]).find((v) => v.name === mount.name) as K8sObject;
    const token = volume.projected.sources[0].serviceAccountToken;
    expect(`${mount.mountPath}/${token.path}`).toBe(tokenPath);
    expect(jwt.audiences).toContain(token.audience);
    const sa = docs.find((d) => d.kind === 'ServiceAccount') as K8sObject;
    expect(pod.serviceAccountName).toBe(sa.metadata.name);
    expect(jwt.rules.map((r) => r.subject)).toContain(`system:serviceaccount:${deployment.metadata.namespace}:${sa.metadata.name}`);
    // The gateway's own token for the API server has the default audience (no audience field).
    const kubeApi = (pod.volumes as K8sObject[]).find((v) => v.name === 'kube-api') as K8sObject;
    expect(kubeApi.projected.sources[0].serviceAccountToken.audience).toBeUndefined();
  });

  test('the app script uses the COS SDK and sends the token as a bearer header', () => {
    const script = (docs.find((d) => d.metadata.name === 'uploader-app') as K8sObject).data['upload.js'] as string;
    expect(script).toContain("require('cos-nodejs-sdk-v5')");
    expect(script).toMatch(/cos\.on\('before-send'/);
    expect(script).toContain('Authorization = `Bearer ${');
  });

  test('hardened pod and containers; grace period exceeds the gateway drain', () => {
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } });
    expect(pod.automountServiceAccountToken).toBe(false);
    for (const container of containersOf(pod)) expect(container.securityContext).toMatchObject(HARDENED);
    const { config } = loadRenderedConfig(configText, configPath);
    expect(pod.terminationGracePeriodSeconds).toBeGreaterThan(config.server.shutdownGraceMs / 1000);
  });
});

describe('deploy/egress', () => {
  const policy = docsOf('egress/client-networkpolicy.yaml');
  const values = parse(readFileSync(join(DEPLOY, 'egress', 'values.yaml'), 'utf8'));
  const rendered = render({ valuesFiles: ['deploy/egress/values.yaml'] });

  test('the client policy denies all egress of the namespace except DNS and the gateway pods', () => {
    expect(policy).toHaveLength(1);
    const np = policy[0] as K8sObject;
    expect(np.kind).toBe('NetworkPolicy');
    expect(np.spec.podSelector).toEqual({});
    expect(np.spec.policyTypes).toEqual(['Egress']);
    expect(np.spec.ingress).toBeUndefined();
    const [dns, gateway, ...rest] = np.spec.egress as K8sObject[];
    expect(rest).toEqual([]);
    expect(dns?.ports).toEqual([
      { port: 53, protocol: 'UDP' },
      { port: 53, protocol: 'TCP' },
    ]);
    expect(dns?.to).toEqual([{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'kube-system' } }, podSelector: { matchLabels: { 'k8s-app': 'kube-dns' } } }]);
    expect(gateway?.to).toHaveLength(1);
    expect(gateway?.to[0].ipBlock).toBeUndefined();
    expect(gateway?.to[0].namespaceSelector).toEqual({ matchLabels: { 'kubernetes.io/metadata.name': 'coffer-gateway' } });
    // No rule may be destination-less (that would allow all egress).
    for (const rule of np.spec.egress as K8sObject[]) expect(rule.to?.length ?? 0).toBeGreaterThan(0);
  });

  test('the client policy selects the pods and the pod port the chart renders with the egress values', () => {
    const gateway = ((policy[0] as K8sObject).spec.egress as K8sObject[])[1] as K8sObject;
    const podLabels = rendered.one('Deployment').spec.template.metadata.labels;
    for (const [key, value] of Object.entries(gateway.to[0].podSelector.matchLabels)) expect(podLabels[key]).toBe(value);
    const dataPort = (rendered.gateway.ports as K8sObject[]).find((p) => p.name === 'data')?.containerPort;
    expect(gateway.ports).toEqual([{ port: dataPort, protocol: 'TCP' }]);
    expect(rendered.one('Service').metadata.name).toBe('coffer-gateway');
  });

  test('the gateway accepts absolute-form (proxy) requests and signatures of the official SDK', () => {
    const { config } = loadRenderedConfig(rendered.configText);
    expect(config.server.acceptAbsoluteForm).toBe(true);
    expect(config.auth.cos.acceptKeyOnlyPath).toBe(true);
    expect(Object.keys(config.coffers).sort()).toEqual(['analytics-1250000000', 'billing-1250000000']);
  });

  test('the gateway policy admits only labelled client namespaces and lets the gateway out to DNS, S3, KMS and STS only', () => {
    const np = rendered.all('NetworkPolicy').find((policy) => policy.metadata.name === rendered.one('Deployment').metadata.name) as K8sObject;
    const helmTestPod = { podSelector: { matchLabels: { 'app.kubernetes.io/name': 'coffer-gateway-test', 'app.kubernetes.io/instance': expect.any(String), 'app.kubernetes.io/component': 'test' } } };
    expect(np.spec.ingress[0]).toEqual({ from: [{ namespaceSelector: { matchLabels: { 'coffer-gateway/client': 'true' } } }, helmTestPod], ports: [{ port: 'data', protocol: 'TCP' }] });
    const egress = np.spec.egress as K8sObject[];
    expect(egress).toHaveLength(1 + values.networkPolicy.egress.upstream.length + values.networkPolicy.egress.kms.length + values.networkPolicy.egress.sts.length);
    for (const rule of egress) {
      expect(rule.to.length).toBeGreaterThan(0);
      for (const peer of rule.to) if (peer.ipBlock !== undefined) expect(peer.ipBlock.cidr).not.toBe('0.0.0.0/0');
      expect(rule.ports.length).toBeGreaterThan(0);
    }
  });
});

describe('READMEs', () => {
  test.each(['sidecar', 'egress', 'service'])('deploy/%s/README.md points at its install guide, which names every file of the directory', (name) => {
    const pointer = readFileSync(join(DEPLOY, name, 'README.md'), 'utf8');
    expect(pointer).toContain(`](../../docs/install/${name}.md)`);
    const guide = readFileSync(join(DEPLOY, '..', 'docs', 'install', `${name}.md`), 'utf8');
    for (const file of readdirSync(join(DEPLOY, name)).filter((f) => f !== 'README.md')) expect({ file, named: guide.includes(file) }).toEqual({ file, named: true });
  });

  test.each(['deploy/README.md', 'docs/install/sidecar.md', 'docs/install/egress.md', 'docs/install/service.md'])('%s explains purpose, install and verification', (file) => {
    const text = readFileSync(join(DEPLOY, '..', file), 'utf8');
    expect(text).toMatch(/^## .*install/im);
    expect(text).toMatch(/^## .*verif/im);
    if (file !== 'deploy/README.md') {
      expect(text).toMatch(/kubectl /);
      expect(text).toMatch(/cos-nodejs-sdk-v5|new COS\(/);
    }
  });
});
