// Runs every test file under __tests__/ with Node's own test runner, TypeScript loaded through tsx.
// Usage: npm test [-- <filter substring>...] (paths compared with `/`, on every system)
// Off Linux (the unit suite runs on macOS and Windows in CI too), a file that needs Linux says so in a
// `// linux-only: <why>` line among its first lines, and is reported skipped with that reason; the
// integration suites (a real sshd, local accounts, root) are Linux only as a whole.
//
// It leaves the machine as it found it: every temp folder of the run (the tests', the action's, git's,
// tsx's) is made below one folder (TMPDIR), removed at the end; the test accounts the integration
// tests create (rf-shell, rf-other, rf-sftp, see __tests__/helpers/sshd.ts) are removed at the end when
// this run created them. Both happen here, after every file ran: files run in parallel and share them.
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, sep } from 'node:path';

const ACCOUNTS = ['rf-shell', 'rf-other', 'rf-sftp'];
const ACCOUNTS_LOCK = '/run/lock/rf-test-accounts.lock';
const SSHD_BASE = '/var/lib/rf-test-sshd';

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

if (process.getuid?.() !== 0 && files.some((f) => f.includes('integration'))) {
  console.error(
    'npm test needs root: the integration tests start their own sshd on 127.0.0.1 and create the local\n' +
      'accounts rf-shell, rf-other and rf-sftp (removed again at the end). Run `sudo npm test`, or\n' +
      '`npm test -- unit` for the unit tests alone.',
  );
  process.exit(2);
}

const accountsBefore = ACCOUNTS.filter((a) => spawnSync('id', ['-u', a], { stdio: 'ignore' }).status === 0);
// Like /tmp (sticky, world-writable): the test accounts write below it too.
const tmp = mkdtempSync(join(tmpdir(), 'rf-test-run-'));
chmodSync(tmp, 0o1777);

// The load suite measures peak memory, which depends on how busy the machine is: it runs alone, after
// the rest, so no other test file competes with it for the two cores.
const alone = files.filter((f) => f.endsWith('load.test.ts'));
const together = files.filter((f) => !alone.includes(f));

// Ctrl-C reaches the test runner too (same process group); this process waits for it, then cleans up.
process.on('SIGINT', () => {});
process.on('SIGTERM', () => {});

let status = 0;
try {
  for (const batch of [together, alone]) {
    if (batch.length === 0) continue;
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', '--test', '--test-concurrency=2', '--test-reporter=spec', ...batch],
      // Node's tmpdir() reads TMPDIR on Linux and macOS, TEMP and TMP on Windows.
      { stdio: 'inherit', env: { ...process.env, TMPDIR: tmp, TEMP: tmp, TMP: tmp } },
    );
    const code = await new Promise((done) => child.on('close', (c) => done(c ?? 1)));
    status ||= code;
  }
} finally {
  rmSync(tmp, { recursive: true, force: true });
  removeAccounts();
}
process.exit(status);

/**
 * The test accounts, when this run created them (none existed when it started) and no test server of
 * another run is up (each has a folder in SSHD_BASE while it runs): under the lock that creates them.
 */
function removeAccounts() {
  if (accountsBefore.length > 0) return;
  if (!ACCOUNTS.some((a) => spawnSync('id', ['-u', a], { stdio: 'ignore' }).status === 0)) return;
  if (existsSync(SSHD_BASE) && readdirSync(SSHD_BASE).some((n) => n.startsWith('i-'))) {
    console.error(`test accounts left in place: a test sshd of another run is up (${SSHD_BASE})`);
    return;
  }
  const script = `
    # -r removes the homes useradd -m made (/home/rf-shell, /home/rf-other); rf-sftp's "home" (/data)
    # was never made and is never touched.
    for u in rf-shell rf-other; do
      if id -u "$u" >/dev/null 2>&1; then userdel -r "$u" >/dev/null 2>&1 || userdel "$u"; fi
    done
    if id -u rf-sftp >/dev/null 2>&1; then userdel rf-sftp; fi
    rm -f /etc/sudoers.d/rf-shell
    rmdir ${SSHD_BASE} 2>/dev/null || true
  `;
  const r = spawnSync('flock', [ACCOUNTS_LOCK, 'sh', '-c', script], { stdio: ['ignore', 'ignore', 'inherit'] });
  if (r.status !== 0) console.error('removing the test accounts failed: remove rf-shell, rf-other and rf-sftp by hand');
}
