/**
 * Writes the `config` value of helm/coffer-gateway/values.schema.json from the gateway's own
 * configuration schema (src/config/json-schema.ts). Run after changing src/config/schema.ts:
 *   npm run chart-schema
 * The chart tests fail while the committed file differs from what this generates.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { chartConfigJsonSchema } from '../src/config/json-schema';

/** values.schema.json's text with its `config` value replaced by the generated one. */
export function regeneratedValuesSchema(current: string): string {
  const schema = JSON.parse(current) as { properties: Record<string, unknown> };
  schema.properties['config'] = chartConfigJsonSchema();
  return `${JSON.stringify(schema, null, 2)}\n`;
}

if (require.main === module) {
  // Run from dist/scripts (npm run chart-schema).
  const VALUES_SCHEMA = join(__dirname, '..', '..', 'helm', 'coffer-gateway', 'values.schema.json');
  const current = readFileSync(VALUES_SCHEMA, 'utf8');
  const next = regeneratedValuesSchema(current);
  if (next === current) {
    process.stdout.write(`${VALUES_SCHEMA}: up to date\n`);
  } else {
    writeFileSync(VALUES_SCHEMA, next);
    process.stdout.write(`${VALUES_SCHEMA}: config schema regenerated\n`);
  }
}
