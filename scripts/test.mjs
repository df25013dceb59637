// Runs every test file under __tests__/ with Node's own test runner, TypeScript loaded through tsx.
// Usage: npm test [-- <filter substring>...]
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';

const filters = process.argv.slice(2);
const walk = (dir) =>
  readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory()
      ? e.name === 'fixtures'
        ? []
        : walk(join(dir, e.name))
      : e.name.endsWith('.test.ts')
        ? [join(dir, e.name)]
        : [],
  );
const files = walk('__tests__')
  .sort()
  .filter((f) => filters.length === 0 || filters.some((s) => f.includes(s)));
// The load suite measures peak memory, which depends on how busy the machine is: it runs alone, after
// the rest, so no other test file competes with it for the two cores.
const alone = files.filter((f) => f.endsWith('load.test.ts'));
const together = files.filter((f) => !alone.includes(f));
let status = 0;
for (const batch of [together, alone]) {
  if (batch.length === 0) continue;
  const result = spawnSync(
    process.execPath,
    ['--import', 'tsx', '--test', '--test-concurrency=2', '--test-reporter=spec', ...batch],
    { stdio: 'inherit' },
  );
  status ||= result.status ?? 1;
}
process.exit(status);
