// Runs every test file under __tests__/ with Node's own test runner, TypeScript loaded through tsx.
// Usage: npm test [-- <filter substring>...] (paths compared with `/`, on every system)
// Off Linux (the unit suite runs on macOS and Windows in CI too), a file that needs Linux says so in a
// `// linux-only: <why>` line among its first lines, and is reported skipped with that reason; the
// integration suites (a real sshd, local accounts, root) are Linux only as a whole.
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join, sep } from 'node:path';

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
const posixPath = (f) => f.split(sep).join('/');
const linuxOnly = (f) =>
  posixPath(f).startsWith('__tests__/integration/')
    ? 'a real sshd, local accounts and root'
    : /^\/\/ linux-only: (.*)$/m.exec(readFileSync(f, 'utf8').split('\n').slice(0, 5).join('\n'))?.[1];
const files = walk('__tests__')
  .sort()
  .filter((f) => filters.length === 0 || filters.some((s) => posixPath(f).includes(s)))
  .filter((f) => {
    const why = process.platform === 'linux' ? undefined : linuxOnly(f);
    if (why) console.log(`skipped on ${process.platform}: ${posixPath(f)} (Linux only: ${why})`);
    return !why;
  });
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
