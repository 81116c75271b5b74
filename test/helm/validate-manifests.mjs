// Validates Kubernetes objects against the API's OpenAPI schemas, offline, with kubernetes-models
// (and @kubernetes-models/prometheus-operator for the monitoring.coreos.com kinds). ESM-only
// packages, so the chart tests run this as a child process: JSON array of objects on stdin, JSON
// array of {kind, name, error?} on stdout. Unknown kinds are reported, never skipped silently.
import { readFileSync } from 'node:fs';

const modules = {
  v1: (kind) => `kubernetes-models/v1/${kind}`,
  'apps/v1': (kind) => `kubernetes-models/apps/v1/${kind}`,
  'batch/v1': (kind) => `kubernetes-models/batch/v1/${kind}`,
  'policy/v1': (kind) => `kubernetes-models/policy/v1/${kind}`,
  'autoscaling/v2': (kind) => `kubernetes-models/autoscaling/v2/${kind}`,
  'networking.k8s.io/v1': (kind) => `kubernetes-models/networking.k8s.io/v1/${kind}`,
  'monitoring.coreos.com/v1': (kind) => `@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/${kind}`,
};

const objects = JSON.parse(readFileSync(0, 'utf8'));
const results = [];
for (const object of objects) {
  const result = { kind: object.kind, name: object.metadata?.name };
  const path = modules[object.apiVersion]?.(object.kind);
  if (path === undefined) {
    result.error = `no schema for ${object.apiVersion} ${object.kind}`;
  } else {
    try {
      const model = await import(path);
      new model[object.kind](object).validate();
    } catch (error) {
      result.error = error instanceof Error ? error.message : String(error);
    }
  }
  results.push(result);
}
process.stdout.write(JSON.stringify(results));
