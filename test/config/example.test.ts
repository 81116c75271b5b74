import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { z } from 'zod';
import { createConfigSchema, loadConfig, redactConfig } from '../../src/config';
import { describeSchema, fieldNames } from '../../src/config/env-overrides';
import { fakeFs, fixture } from './helpers';

const EXAMPLE = join(__dirname, '..', '..', 'docs', 'config.example.yaml');
const exampleText = readFileSync(EXAMPLE, 'utf8');

const FILES: Record<string, string> = {
  [EXAMPLE]: exampleText,
  '/etc/coffer-gateway/tls/tls.crt': fixture('tls.crt'),
  '/etc/coffer-gateway/tls/tls.key': fixture('tls.key'),
  '/run/secrets/coffer-gateway/uploader-secret-key': 'uploader-secret-key-0123456789abcdef\n',
  '/var/run/secrets/kubernetes.io/serviceaccount/ca.crt': fixture('tls.crt'),
  '/var/run/secrets/kubernetes.io/serviceaccount/token': 'eyJhbGciOiJSUzI1NiJ9.e30.c2ln\n',
  '/run/secrets/coffer-gateway/aws-secret-access-key': 'aws-secret-access-key-0123456789\n',
  '/run/secrets/coffer-gateway/minio-secret-key': 'minio-secret-key-0123456789\n',
};

describe('docs/config.example.yaml', () => {
  const config = loadConfig({ file: EXAMPLE, env: {}, readFile: fakeFs(FILES) });

  test('loads, and secret files are read and trimmed', () => {
    expect(config.server.host).toBe('0.0.0.0');
    expect(config.server.tls?.certPem).toBe(fixture('tls.crt'));
    expect(config.server.tls?.keyPem).toBe(fixture('tls.key'));
    expect(config.auth.accessKeys[0]?.secretKey).toBe('uploader-secret-key-0123456789abcdef');
    expect(config.auth.accessKeys[0]?.secretKeyFile).toBe('/run/secrets/coffer-gateway/uploader-secret-key');
    expect(config.auth.jwt?.keySource).toBe('jwks');
    expect(config.auth.jwt?.jwks?.caPem).toBe(fixture('tls.crt'));
    expect(config.auth.jwt?.jwks?.tokenFile).toBe('/var/run/secrets/kubernetes.io/serviceaccount/token');
    const archive = config.coffers['archive-1250000000'];
    expect(archive?.upstream.credentials?.secretAccessKey).toBe('aws-secret-access-key-0123456789');
    expect(archive?.role).toMatchObject({ type: 'sts', region: 'eu-central-1', durationSeconds: 3600 });
    expect(archive?.kms).toMatchObject({ type: 'aws-kms', region: 'eu-central-1' });
    const reports = config.coffers['reports-1250000000'];
    expect(reports?.upstream).toMatchObject({ endpoint: 'http://minio.storage.svc:9000', region: 'us-east-1', forcePathStyle: true });
    expect(reports?.kms).toEqual({ type: 'local', keyId: 'reports-2025' });
  });

  test('the redacted example holds no secret from the files', () => {
    const text = JSON.stringify(redactConfig(config));
    for (const secret of ['uploader-secret-key-0123', 'aws-secret-access-key-0123', 'minio-secret-key-0123', 'replace-with-a-long-random', 'replace-with-a-demo', 'PRIVATE KEY']) {
      expect(text).not.toContain(secret);
    }
  });

  test('documents every field of the schema', () => {
    const names = new Set<string>();
    const visit = (schema: z.ZodType, depth: number): void => {
      if (depth > 12) return;
      const node = describeSchema(schema);
      if (node.kind === 'object') {
        for (const shape of node.shapes) {
          for (const [name, child] of Object.entries(shape)) {
            names.add(name);
            visit(child, depth + 1);
          }
        }
      } else if (node.kind === 'record') visit(node.value, depth + 1);
      else if (node.kind === 'array') visit(node.element, depth + 1);
    };
    visit(createConfigSchema({ readFile: () => '' }), 0);
    expect(names.size).toBeGreaterThan(60);
    const missing = [...names].filter((name) => !new RegExp(`^\\s*(?:#\\s*)?(?:- )?${name}:`, 'm').test(exampleText));
    expect(missing).toEqual([]);
    expect(fieldNames(describeSchema(createConfigSchema({ readFile: () => '' })))).toContain('coffers');
  });
});
