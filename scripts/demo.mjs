// `npm run demo`: the whole story on this machine, touching nothing outside one temp folder.
// A throwaway OpenSSH server on 127.0.0.1 (run as you, with its own keys and config), sample Perl and
// YAML recipes in a temporary git repository, then: salvage → commit → wipe the server side → restore
// → verify. It drives dist/cli.js, the same engine the action runs.
// Usage: npm run demo [-- --keep]   (--keep leaves the temp folder for a look around)
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const SSHD = ['/usr/sbin/sshd', '/usr/local/sbin/sshd'].find((p) => existsSync(p));
if (!SSHD) {
  console.error(
    "The demo needs OpenSSH's server binary (sshd). Install it, e.g.:\n  sudo apt-get install -y openssh-server   # Debian/Ubuntu\n  sudo dnf install -y openssh-server       # Fedora\n  brew install openssh                     # macOS",
  );
  process.exit(1);
}
const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const cli = join(repoRoot, 'dist', 'cli.js');
const keep = process.argv.includes('--keep');
const tmp = mkdtempSync(join(tmpdir(), 'remote-files-demo-'));
const user = userInfo().username;
const domain = 'demo.example';
const srv = join(tmp, 'server', 'srv');
let sshd;

const step = (title) => console.log(`\n\x1b[1m━━ ${title}\x1b[0m`);
const sh = (cmd, args, opts = {}) => execFileSync(cmd, args, { encoding: 'utf8', ...opts });

try {
  step('A throwaway SSH server on 127.0.0.1');
  for (const name of ['host', 'client'])
    sh('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', '', '-f', join(tmp, name)]);
  writeFileSync(join(tmp, 'authorized_keys'), readFileSync(join(tmp, 'client.pub')), { mode: 0o600 });
  const port = await freePort();
  const root = process.getuid?.() === 0;
  if (root) mkdirSync('/run/sshd', { recursive: true, mode: 0o755 }); // privilege separation folder
  writeFileSync(
    join(tmp, 'sshd_config'),
    [
      `Port ${port}`,
      'ListenAddress 127.0.0.1',
      `HostKey ${join(tmp, 'host')}`,
      `PidFile ${join(tmp, 'sshd.pid')}`,
      `AuthorizedKeysFile ${join(tmp, 'authorized_keys')}`,
      'UsePAM no',
      'StrictModes no',
      'PasswordAuthentication no',
      `PermitRootLogin ${root ? 'prohibit-password' : 'no'}`,
      'Subsystem sftp internal-sftp',
      '',
    ].join('\n'),
  );
  sshd = spawn(SSHD, ['-D', '-e', '-f', join(tmp, 'sshd_config')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let sshdLog = '';
  sshd.stderr.on('data', (d) => (sshdLog += d));
  await waitForPort(port, () => sshdLog);
  const knownHosts = join(tmp, 'known_hosts');
  writeFileSync(knownHosts, `[127.0.0.1]:${port} ${readFileSync(join(tmp, 'host.pub'), 'utf8')}`);
  console.log(`sshd on 127.0.0.1:${port}, logging in as ${user}; host key pinned in ${knownHosts}`);

  step("The server's state worth keeping");
  const site = join(srv, domain);
  mkdirSync(join(site, 'db'), { recursive: true });
  mkdirSync(join(site, 'uploads', '2026', 'empty folder'), { recursive: true });
  mkdirSync(join(site, 'keys'), { recursive: true });
  writeFileSync(join(site, 'db', 'shop.sqlite'), 'orders: 42\n');
  writeFileSync(join(site, 'uploads', '2026', 'cat picture.jpg'), Buffer.alloc(200_000, 7));
  writeFileSync(join(site, 'uploads', 'cache.tmp'), 'skip me');
  writeFileSync(join(site, 'keys', 'dkim.private'), 'not really a key\n', { mode: 0o600 });
  sh('ln', ['-s', 'dkim.private', join(site, 'keys', 'current')]);
  console.log(sh('find', [site, '-printf', '%M %8s %P\n']).trim());

  step('A repository with one Perl recipe and one YAML recipe');
  const origin = join(tmp, 'origin.git');
  const repo = join(tmp, 'repo');
  sh('git', ['init', '-q', '--bare', '-b', 'main', origin]);
  sh('git', ['clone', '-q', origin, repo], { stdio: 'ignore' });
  mkdirSync(join(repo, 'lib', 'Provisioner', 'Recipe'), { recursive: true });
  writeFileSync(
    join(repo, 'lib', 'Provisioner', 'Recipe', 'Shop.pm'),
    `package Provisioner::Recipe::Shop;
use 5.041;
use parent 'Provisioner::Recipe';

sub remote_files {
    my ( $self, $install_dir, $domain ) = @_;
    return (
        "$install_dir/$domain/db"   => 'shop/db',
        "$install_dir/$domain/keys" => 'shop/keys',
    );
}

1;
`,
  );
  writeFileSync(
    join(repo, 'remote-files.yml'),
    `version: 1
recipes:
  Media:
    remote_files:
      "\${install_dir}/\${domain}/uploads": media
    remote_skip: ["*.tmp"]
`,
  );
  const git = (...args) =>
    sh('git', ['-C', repo, '-c', 'user.name=demo', '-c', 'user.email=demo@example.invalid', ...args]);
  git('checkout', '-q', '-b', 'main');
  git('add', '.');
  git('commit', '-q', '-m', 'recipes');
  git('push', '-q', 'origin', 'main');
  console.log(sh(process.execPath, [cli, 'plan', '--domain', domain, '--install-dir', srv], { cwd: repo }).trim());

  const common = [
    '--domain',
    domain,
    '--install-dir',
    srv,
    '--host',
    '127.0.0.1',
    '--port',
    String(port),
    '--username',
    user,
    '--key-file',
    join(tmp, 'client'),
    '--known-hosts-file',
    knownHosts,
  ];
  const run = (mode, ...extra) => {
    // RUNNER_TEMP: the CLI writes its JSON report there; keep it inside the demo's folder.
    const r = spawnSync(process.execPath, [cli, mode, ...common, ...extra], {
      cwd: repo,
      encoding: 'utf8',
      env: { ...process.env, RUNNER_TEMP: tmp },
    });
    process.stdout.write(r.stdout);
    process.stderr.write(r.stderr);
    if (r.status !== 0) throw new Error(`remote-files ${mode} exited with ${r.status}`);
  };

  step('Salvage before the "deploy", committed and pushed (store: commit)');
  run('backup', '--store', 'commit');
  console.log(git('log', '--stat', '--format=%h %s', '-1').trim());

  step('The "deploy" wipes the server side');
  rmSync(site, { recursive: true, force: true });
  console.log(`${site} is gone`);

  step('Restore after the deploy (from a fresh clone of the repository)');
  rmSync(repo, { recursive: true, force: true });
  sh('git', ['clone', '-q', origin, repo], { stdio: 'ignore' });
  run('restore', '--store', 'commit');
  console.log(sh('find', [site, '-printf', '%M %8s %P\n']).trim());

  step('Verify: the server and the stored copy agree');
  run('verify', '--store', 'commit', '--fail-on-drift', 'true');

  const same =
    readFileSync(join(site, 'db', 'shop.sqlite'), 'utf8') === 'orders: 42\n' &&
    readFileSync(join(site, 'uploads', '2026', 'cat picture.jpg')).length === 200_000;
  if (!same) throw new Error('the restored files differ from the originals');
  step('Done: salvaged, committed, wiped, restored and verified.');
} catch (err) {
  console.error(`\ndemo failed: ${err.message}`);
  process.exitCode = 1;
} finally {
  if (sshd && sshd.exitCode === null) {
    // Wait for sshd to go: it removes its pid file on the way out, which would race the cleanup below.
    const gone = new Promise((done) => sshd.once('exit', done));
    sshd.kill('SIGTERM');
    await gone;
  }
  if (keep) console.log(`\nkept ${tmp}`);
  else rmSync(tmp, { recursive: true, force: true });
}

function freePort() {
  return new Promise((done, fail) => {
    const s = net.createServer();
    s.once('error', fail);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => done(port));
    });
  });
}

async function waitForPort(port, log) {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const up = await new Promise((done) => {
      const c = net.connect(port, '127.0.0.1', () => {
        c.destroy();
        done(true);
      });
      c.once('error', () => done(false));
    });
    if (up) return;
    if (Date.now() > deadline || sshd.exitCode !== null) throw new Error(`sshd did not start:\n${log()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
