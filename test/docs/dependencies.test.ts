/**
 * Docs that stay true: every package the project depends on (package.json) is named, with its reason,
 * in docs/development/dependencies.md — a dependency added without saying why fails here.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const root = join(__dirname, '..', '..');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { dependencies: Record<string, string>; devDependencies: Record<string, string> };
const table = readFileSync(join(root, 'docs', 'development', 'dependencies.md'), 'utf8');

test.each([...Object.keys(pkg.dependencies), ...Object.keys(pkg.devDependencies)])('%s is in docs/development/dependencies.md', (name) => {
  // The runtime pin is written `node@24` in the table.
  const named = table.includes(`\`${name}\``) || (name === 'node' && table.includes('`node@'));
  expect(named).toBe(true);
});
