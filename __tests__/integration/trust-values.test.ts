import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startCutProxy } from '../helpers/cut-proxy.js';
import { NODES, runAction, type ActionResult } from '../helpers/run-action.js';
import { ok } from '../helpers/outcome.js';
import { rootSh, sshFlags, sshInputs, startSshd, type Sshd } from '../helpers/sshd.js';
import { testTempDir } from '../helpers/temp.js';

// What a run trusts, attacked through the committed bundle against a real sshd. Values are not code:
// an `install-dir`, `domain` or `vars` value carrying shell syntax never runs on the server (a canary
// file it would create never appears), and a value that cannot be made safe fails the run with one
// `::error::` naming the input. A hostile server is bounded: a transfer it stalls while still
// answering keepalives ends within `timeout`, and a flood of command output is cut. Fingerprints
// pin one host each. The CLI's report is never written through a link planted in /tmp.

const DOMAIN = 'example.com';
const scratch: string[] = [];
let server: Sshd;
/** A second server: the jump host of the fingerprint tests. */
let jump: Sshd;
/** install-dir: rf-shell's folder on the server, holding app/ (a 24 MB file and a small one). */
let srv: string;

before(async () => {
  [server, jump] = await Promise.all([
    startSshd({ hostKeyTypes: ['ed25519'] }),
    startSshd({ hostKeyTypes: ['ed25519'] }),
  ]);
  srv = join(server.users.shell.scratch, 'trust');
  asShell(
    `rm -rf '${srv}' && mkdir -p '${srv}/app' && printf small > '${srv}/app/small.txt' && head -c 24000000 /dev/urandom > '${srv}/app/big.bin'`,
  );
});

after(async () => {
  await Promise.all([server?.stop(), jump?.stop()]);
  for (const dir of scratch) rmSync(dir, { recursive: true, force: true });
});

function asShell(script: string): string {
  return rootSh(`cd / && su -s /bin/sh rf-shell -c 'sh -s'`, script);
}

/** A fresh path in /tmp that a successful injection would create. */
function canary(): string {
  const path = `/tmp/canary-rf-${randomBytes(6).toString('hex')}`;
  scratch.push(path);
  return path;
}

function workspace(files: Record<string, string>): string {
  const ws = testTempDir('rf-trust-');
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(dirname(join(ws, name)), { recursive: true });
    writeFileSync(join(ws, name), text);
  }
  return ws;
}

const yamlRecipe = (prepare: string[]) =>
  `version: 1\nrecipes:\n  App:\n    remote_files:\n      "\${install_dir}/app": app\n    remote_prepare:\n${prepare.map((p) => `      - ${JSON.stringify(p)}\n`).join('')}`;

/** A Perl recipe whose remote_prepare interpolates $install_dir and $domain, and uses a template placeholder. */
const PERL_RECIPE = `package Provisioner::Recipe::Shop;
use parent 'Provisioner::Recipe';
sub remote_files { my ( $self, $install_dir, $domain ) = @_; return ( "$install_dir/app/small.txt" => 'shop/small.txt' ); }
sub remote_prepare {
    my ( $self, $install_dir, $domain ) = @_;
    return ( "ls $install_dir/$domain > /dev/null 2>&1; printf %s [% db %] > $install_dir/from-perl.txt" );
}
1;
`;

function inputs(extra: Record<string, string>): Record<string, string> {
  return sshInputs(
    server,
    { domain: DOMAIN, installDir: srv, pin: 'host-fingerprint' },
    { mode: 'backup', timeout: '10', retries: '0', store: 'none', ...extra },
  );
}

/** Exit 1 and one `::error::` line: its message. */
function oneError(r: ActionResult, context: string): string {
  assert.equal(r.code, 1, `${context}: exit ${r.code}\n${r.stdout}\n${r.stderr}`);
  const errors = r.stdout.split('\n').filter((l) => l.startsWith('::error::'));
  assert.equal(errors.length, 1, `${context}: one ::error:: line\n${r.stdout.slice(0, 5000)}\n${r.stderr}`);
  const msg = errors[0]!.slice('::error::'.length);
  assert.doesNotMatch(msg, /undefined|\bat .*:\d+:\d+/, `${context}: ${msg}`);
  return msg;
}

describe('values are not code', () => {
  test('install-dir and domain carrying shell syntax: refused before connecting, naming the input; the canary never appears', async () => {
    const ws = workspace({
      'remote-files.yml': yamlRecipe(['ls ${install_dir} [% domain %]']),
      'lib/Provisioner/Recipe/Shop.pm': PERL_RECIPE,
    });
    for (const [input, value] of [
      ['install-dir', `${srv};touch ${canary()};#`],
      ['install-dir', `${srv}/$(touch ${canary()})`],
      ['install-dir', `${srv}\`touch ${canary()}\``],
      ['domain', `example.com;touch ${canary()}`],
      ['domain', `$(touch ${canary()}).example.com`],
    ] as const) {
      const r = await runAction(inputs({ [input]: value, vars: 'db=shop' }), { workspace: ws });
      const msg = oneError(r, `${input}=${value}`);
      assert.match(msg, new RegExp(`^input \`${input}\`: `), msg);
      assert.match(
        msg,
        input === 'domain'
          ? /is not a domain name: it holds .*Give the site's DNS name/
          : /holds .*only letters, digits .*Give the server folder/,
        msg,
      );
      assert.doesNotMatch(r.stdout, /^Connected to/m, 'nothing ran: it never connected');
    }
    for (const path of scratch.filter((p) => p.startsWith('/tmp/canary-rf-')))
      assert.equal(existsSync(path), false, `${path} must not exist`);
  });

  test('a vars value with shell syntax in an unquoted placeholder is one literal argument (YAML and Perl); the canary never appears', async () => {
    const mark = canary();
    const value = `x;touch ${mark};echo 'q' "$(touch ${mark})" \`touch ${mark}\``;
    const ws = workspace({
      'remote-files.yml': yamlRecipe([
        'printf %s [% db %] > ${install_dir}/from-yaml.txt',
        'printf %s ${db} > ${install_dir}/from-yaml-2.txt',
      ]),
      'lib/Provisioner/Recipe/Shop.pm': PERL_RECIPE,
    });
    const r = ok(await runAction(inputs({ vars: `db=${value}` }), { workspace: ws }));
    assert.doesNotMatch(r.stdout, /prepare command failed/, r.stdout);
    for (const f of ['from-yaml.txt', 'from-yaml-2.txt', 'from-perl.txt'])
      assert.equal(readFileSync(join(srv, f), 'utf8'), value, f);
    assert.equal(existsSync(mark), false, 'the injected command never ran');
  });

  test('a vars value with shell syntax where quoting cannot work (inside quotes): the run fails naming recipe, file, value and `vars`; nothing runs', async () => {
    const mark = canary();
    const before = join(srv, 'first-command-ran.txt');
    rmSync(before, { force: true });
    for (const [file, text] of [
      ['remote-files.yml', yamlRecipe([`touch ${before}`, 'printf %s "[% db %]" > /dev/null'])],
      ['lib/Provisioner/Recipe/Shop.pm', PERL_RECIPE.replace('printf %s [% db %]', "sh -c 'printf %s [% db %]'")],
    ] as const) {
      const ws = workspace({ [file]: text });
      const r = await runAction(inputs({ vars: `db=x";touch ${mark};"` }), { workspace: ws });
      const msg = oneError(r, file);
      assert.match(
        msg,
        new RegExp(
          `^${file.replace(/[./]/g, '\\$&')}: recipe (App|Shop): remote_prepare command .* stands inside (".*"|'.*') quotes, and its value from input \`vars\`, .*touch ${mark}.*refused, nothing was run`,
        ),
        msg,
      );
      assert.doesNotMatch(r.stdout, /^Connected to/m, 'refused while planning, before connecting');
    }
    assert.equal(existsSync(before), false, 'no command of the plan ran');
    assert.equal(existsSync(mark), false, 'the injected command never ran');
  });
});

test('nested quoting ("${X:-"[% v %]"}") and values beginning with - are refused before anything runs (issue #23)', async () => {
  const mark = canary();
  const victim = join(srv, 'victim.txt');
  asShell(`printf keep > '${victim}'`);
  for (const [prepare, value, expect] of [
    [`echo "\${X:-"[% db %]"}" > /dev/null`, `$(touch ${mark})`, /\$\{…\} opened inside "…" quotes/],
    [`rm [% db %] ${victim}.none`, '-f', /begins with "-", which the command would read as an option/],
    [`cp [% db %] ${victim} /dev/null`, `--remove-destination`, /begins with "-"/],
  ] as const) {
    const ws = workspace({ 'remote-files.yml': yamlRecipe([prepare]) });
    const r = await runAction(inputs({ vars: `db=${value}` }), { workspace: ws });
    const msg = oneError(r, prepare);
    assert.match(msg, expect, msg);
    assert.match(msg, /refused, nothing was run/);
    assert.doesNotMatch(r.stdout, /^Connected to/m, 'refused while planning, before connecting');
  }
  assert.equal(existsSync(mark), false, 'the injected command never ran');
  assert.equal(readFileSync(victim, 'utf8'), 'keep');
});

describe('a hostile server is bounded', () => {
  /** Process ids below the sshd listener (its sessions and their commands) whose name is `name`. */
  function serverProcesses(sshd: Sshd, name: string): number[] {
    const parent = new Map<number, number>();
    const comm = new Map<number, string>();
    for (const entry of readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      try {
        const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
        const m = /^\d+ \((.*)\) \S+ (\d+)/s.exec(stat);
        if (m) {
          comm.set(Number(entry), m[1]!);
          parent.set(Number(entry), Number(m[2]));
        }
      } catch {
        // Gone meanwhile.
      }
    }
    const below = (pid: number): boolean => {
      for (let p = parent.get(pid); p !== undefined && p > 1; p = parent.get(p)) if (p === sshd.pid) return true;
      return false;
    };
    return [...comm].filter(([pid, c]) => c === name && below(pid)).map(([pid]) => pid);
  }

  /**
   * Runs `mode` through a proxy and, once `after` bytes went through, stops the server's `tar` with
   * SIGSTOP: sshd still answers keepalives, the transfer makes no progress. Returns the run and how long
   * it took after the stop.
   */
  async function stalled(
    mode: 'backup' | 'restore',
    ws: string,
  ): Promise<{ r: ActionResult; afterStop: number; stopped: number[] }> {
    let stoppedAt = 0;
    const stopped: number[] = [];
    const proxy = await startCutProxy({
      port: server.port,
      cutAfter: Infinity,
      onBytes: (bytes) => {
        if (stoppedAt !== 0 || bytes < 3_000_000) return;
        const pids = serverProcesses(server, 'tar');
        if (pids.length === 0) return;
        for (const pid of pids) process.kill(pid, 'SIGSTOP');
        stopped.push(...pids);
        stoppedAt = Date.now();
      },
    });
    try {
      const r = await runAction(inputs({ mode, port: String(proxy.port), timeout: '3', transport: 'tar' }), {
        workspace: ws,
      });
      return { r, afterStop: stoppedAt ? Date.now() - stoppedAt : -1, stopped };
    } finally {
      for (const pid of stopped) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // Already gone.
        }
      }
      await proxy.close();
    }
  }

  for (const mode of ['backup', 'restore'] as const) {
    test(
      `a ${mode} the server stalls (keepalives still answered) ends within timeout + a few seconds, naming host and \`timeout\``,
      { timeout: 120_000 },
      async () => {
        const ws = workspace({
          'remote-files.yml': 'version: 1\nrecipes:\n  App:\n    remote_files:\n      "${install_dir}/app": app\n',
        });
        if (mode === 'restore') {
          ok(await runAction(inputs({}), { workspace: ws }));
          asShell(`rm -rf '${srv}/app.restored' && mv '${srv}/app' '${srv}/app.restored'`);
        }
        try {
          const { r, afterStop, stopped } = await stalled(mode, ws);
          assert.ok(stopped.length > 0, `the server's tar was stopped mid-${mode}\n${r.stdout}`);
          const msg = oneError(r, `stalled ${mode}`);
          assert.match(
            msg,
            /connection to 127\.0\.0\.1:\d+ lost \(no progress for 3 s: the server sent nothing and acknowledged nothing of ours .*the `timeout` input \(3 s\) bounds this\)/,
            msg,
          );
          assert.ok(afterStop < 3000 + 10_000, `ended ${afterStop} ms after the stall`);
          console.log(`trust-values: stalled ${mode} ended ${afterStop} ms after the server's tar stopped: ${msg}`);
        } finally {
          if (mode === 'restore') asShell(`rm -rf '${srv}/app' && mv '${srv}/app.restored' '${srv}/app'`);
        }
      },
    );
  }

  test(
    'a remote_prepare command that floods its output: 1 MiB kept in the log, then "…output truncated"',
    { timeout: 60_000 },
    async () => {
      const ws = workspace({
        'remote-files.yml': yamlRecipe([
          'head -c 30000000 /dev/zero | tr "\\0" y; head -c 30000000 /dev/zero | tr "\\0" z >&2; exit 3',
        ]),
      });
      const r = ok(await runAction(inputs({}), { workspace: ws }));
      const warning = r.stdout.split('\n').find((l) => l.startsWith('::warning::App: prepare command failed (exit 3)'));
      assert.ok(warning, r.stdout.slice(0, 2000));
      assert.match(warning, /y{1000}.*…output truncated.*z{1000}.*…output truncated/);
      assert.ok(r.stdout.length < 3 * 1024 * 1024, `the log holds ${r.stdout.length} bytes`);
      assert.ok(r.peakRss < 400 * 1024 * 1024, `peak RSS ${r.peakRss}`);
    },
  );
});

describe('fingerprints pin one host each', () => {
  const through = (extra: Record<string, string>) =>
    runAction(
      inputs({
        'proxy-host': '127.0.0.1',
        'proxy-port': String(jump.port),
        'proxy-username': 'rf-shell',
        'proxy-key': jump.key.privateKey,
        ...extra,
      }),
      {
        workspace: workspace({
          'remote-files.yml':
            'version: 1\nrecipes:\n  App:\n    remote_files:\n      "${install_dir}/app/small.txt": small.txt\n',
        }),
      },
    );

  test('host-fingerprint for the server and proxy-fingerprint for the jump host: connects', async () => {
    const r = ok(
      await through({
        'host-fingerprint': server.fingerprint('ed25519'),
        'proxy-fingerprint': jump.fingerprint('ed25519'),
      }),
    );
    assert.match(r.stdout, new RegExp(`Host key of 127\\.0\\.0\\.1:${jump.port} verified`));
    assert.match(r.stdout, new RegExp(`Host key of 127\\.0\\.0\\.1:${server.port} verified`));
  });

  test('one list for both hosts in host-fingerprint: the jump host is not authenticated by it', async () => {
    const msg = oneError(
      await through({ 'host-fingerprint': `${server.fingerprint('ed25519')}\n${jump.fingerprint('ed25519')}` }),
      'one list',
    );
    assert.match(
      msg,
      new RegExp(
        `^Host key of jump host 127\\.0\\.0\\.1:${jump.port} is not verified\\. Pin it with .*\`proxy-fingerprint\`.*Its fingerprint is in \`host-fingerprint\`, which pins the target server only`,
      ),
      msg,
    );
  });

  test('swapped: the jump host refuses host-fingerprint, the server refuses proxy-fingerprint', async () => {
    const swapped = oneError(
      await through({
        'host-fingerprint': jump.fingerprint('ed25519'),
        'proxy-fingerprint': server.fingerprint('ed25519'),
      }),
      'swapped',
    );
    assert.match(swapped, new RegExp(`^Host key of jump host 127\\.0\\.0\\.1:${jump.port} does not match`), swapped);
    // The jump host pinned right, the server's pin only in proxy-fingerprint: the server is refused.
    const target = oneError(
      await through({
        'host-fingerprint': '',
        'proxy-fingerprint': `${jump.fingerprint('ed25519')}\n${server.fingerprint('ed25519')}`,
      }),
      'server by proxy-fingerprint',
    );
    assert.match(
      target,
      new RegExp(
        `^Host key of 127\\.0\\.0\\.1:${server.port} is not verified.*Its fingerprint is in \`proxy-fingerprint\`, which pins the jump host only`,
      ),
      target,
    );
  });
});

describe('the CLI report outside Actions', () => {
  test('is created in a private folder, exclusively, mode 0600: never through a link planted at a predictable /tmp name', async () => {
    const tmp = testTempDir('rf-trust-tmp-');
    const victim = join(tmp, 'victim');
    writeFileSync(victim, 'untouched');
    // Where the report used to go: a name anyone could predict, and plant a link at.
    symlinkSync(victim, join(tmp, `remote-files-${DOMAIN}-backup-report.json`));
    const ws = workspace({
      'remote-files.yml':
        'version: 1\nrecipes:\n  App:\n    remote_files:\n      "${install_dir}/app/small.txt": small.txt\n',
    });
    const child = spawn(
      NODES[0]!.path,
      [
        resolve('dist/cli.js'),
        'backup',
        ...sshFlags(server, { domain: DOMAIN, installDir: srv, keyFile: server.key.path }),
        '--host-fingerprint',
        server.fingerprint('ed25519'),
        '--store',
        'none',
        '--retries',
        '0',
      ],
      {
        cwd: ws,
        // No RUNNER_TEMP: the temp folder is os.tmpdir(), here TMPDIR.
        env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? tmp, TMPDIR: tmp },
      },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d));
    child.stderr.on('data', (d: Buffer) => (stderr += d));
    const code = await new Promise<number | null>((done) => child.on('close', done));
    assert.equal(code, 0, `${stdout}\n${stderr}`);
    assert.equal(readFileSync(victim, 'utf8'), 'untouched', 'nothing was written through the planted links');
    const report = /^report: (.+)$/m.exec(stdout)?.[1];
    assert.ok(report, stdout);
    assert.equal(dirname(dirname(report)), tmp, 'in a folder of its own below the temp folder');
    assert.equal(lstatSync(report).isFile(), true);
    assert.equal(lstatSync(report).mode & 0o777, 0o600);
    assert.equal(statSync(dirname(report)).mode & 0o777, 0o700);
    assert.equal(JSON.parse(readFileSync(report, 'utf8')).mode, 'backup');
  });
});
