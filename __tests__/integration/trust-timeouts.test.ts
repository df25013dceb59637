import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { runAction, type ActionResult } from '../helpers/run-action.js';
import { ok } from '../helpers/outcome.js';
import { rootSh, type Sshd, sshInputs, startWrappedSshd } from '../helpers/sshd.js';
import { testTempDir } from '../helpers/temp.js';

// Issue #23: `command-timeout` bounds the commands around a restore, end to end through the bundle
// against a real sshd: a hung after-restore command (the restored files stay in place), and a server
// without coreutils' `timeout`, where only this side's backstop can end the wait. The server's
// commands go through a wrapper that, while `no-timeout` is in its folder, runs them with a PATH of
// every system command but `timeout`.

const DOMAIN = 'example.com';
let sshd: Sshd;
let work: string;
let srv: string;
const scratch: string[] = [];

before(async () => {
  ({ sshd, work } = await startWrappedSshd('timeouts', [
    'if [[ -f "$here/no-timeout" ]]; then export PATH="$here/bin"; fi',
  ]));
  // A PATH like the system's, less `timeout`: links to every command of the system folders.
  const bin = join(work, 'bin');
  mkdirSync(bin, { mode: 0o755 });
  for (const dir of ['/usr/local/bin', '/usr/bin', '/bin', '/usr/sbin', '/sbin']) {
    if (!existsSync(dir)) continue;
    for (const name of readdirSync(dir)) {
      if (name !== 'timeout' && !existsSync(join(bin, name))) symlinkSync(join(dir, name), join(bin, name));
    }
  }
  srv = sshd.users.shell.scratch;
});

after(async () => {
  await sshd?.stop();
  rmSync(work, { recursive: true, force: true });
  for (const dir of scratch) rmSync(dir, { recursive: true, force: true });
});

function workspace(extra = ''): string {
  const ws = testTempDir('rf-timeouts-');
  scratch.push(ws);
  writeFileSync(
    join(ws, 'remote-files.yml'),
    'version: 1\nrecipes:\n  Site:\n    remote_files:\n      "${install_dir}/site": site\n' + extra,
  );
  return ws;
}

function inputs(extra: Record<string, string> = {}): Record<string, string> {
  return sshInputs(
    sshd,
    { domain: DOMAIN, installDir: srv, pin: 'host-fingerprint' },
    {
      mode: 'backup',
      transport: 'tar',
      timeout: '20',
      retries: '0',
      store: 'none',
      compression: 'none',
      // Each test salvages this one server into a workspace of its own: the server rule
      // (rerun-safety.test.ts) would rightly refuse some of them. Not what this suite tests.
      'new-server': 'allow',
      ...extra,
    },
  );
}

/** The site on the server: two files with content, owned by the login; returns its folder. */
function plantSite(): string {
  const site = join(srv, 'site');
  rootSh(
    `rm -rf '${site}' && mkdir -p '${site}/db' && printf 'orders' > '${site}/db/orders.sql' && printf 'config' > '${site}/app.conf' && chown -R rf-shell: '${site}'`,
  );
  return site;
}

/** Salvages the site into a fresh workspace, then removes it from the server: a restore must bring it back. */
async function salvaged(): Promise<{ ws: string; site: string }> {
  const site = plantSite();
  const ws = workspace();
  ok(await runAction(inputs(), { workspace: ws }));
  rootSh(`rm -rf '${site}'`);
  return { ws, site };
}

function failedWith(r: ActionResult, pattern: RegExp): string {
  assert.equal(r.code, 1, `exit ${r.code}\n${r.stdout}\n${r.stderr}`);
  const errors = r.stdout.split('\n').filter((l) => l.startsWith('::error::'));
  assert.equal(errors.length, 1, r.stdout);
  assert.match(errors[0]!, pattern);
  return errors[0]!;
}

test('a hung after-restore command is stopped after `command-timeout`; the restored files are in place', async () => {
  const { ws, site } = await salvaged();
  const t0 = Date.now();
  const r = await runAction(inputs({ mode: 'restore', 'command-timeout': '3s', 'after-restore': 'sleep 600' }), {
    workspace: ws,
  });
  const took = Date.now() - t0;
  failedWith(
    r,
    /after-restore command failed \(stopped after `command-timeout`, 3 s\): sleep 600\. The data is in place: the restore itself finished/,
  );
  assert.ok(took < 60_000, `ended after ${took} ms, long before the command would (600 s)`);
  assert.equal(readFileSync(join(site, 'db/orders.sql'), 'utf8'), 'orders');
  assert.equal(readFileSync(join(site, 'app.conf'), 'utf8'), 'config');
});

test('on a server without `timeout`, a hung before-restore command is given up on 30 s after `command-timeout`', async () => {
  const { ws, site } = await salvaged();
  writeFileSync(join(work, 'no-timeout'), '');
  try {
    const t0 = Date.now();
    const r = await runAction(inputs({ mode: 'restore', 'command-timeout': '1', 'before-restore': 'sleep 600' }), {
      workspace: ws,
    });
    const took = Date.now() - t0;
    failedWith(
      r,
      /before-restore command failed \(still running after 31 s, `command-timeout` is 1 s: the server has no `timeout` command to stop it, so this side stopped waiting; it may still be running there\): sleep 600; nothing was restored/,
    );
    assert.ok(took >= 31_000 && took < 90_000, `ended after ${took} ms: the backstop is 1 + 30 s`);
    assert.ok(!existsSync(site), 'nothing was restored');
  } finally {
    rmSync(join(work, 'no-timeout'), { force: true });
  }
});

test('on a server without `timeout`, a hung remote_prepare command fails the backup naming its recipe; nothing is stored', async () => {
  plantSite();
  const ws = workspace('    remote_prepare: [ "sleep 600" ]\n');
  writeFileSync(join(work, 'no-timeout'), '');
  try {
    const r = await runAction(inputs({ 'command-timeout': '1' }), { workspace: ws });
    failedWith(
      r,
      /Site: prepare command failed \(still running after 31 s, `command-timeout` is 1 s: the server has no `timeout` command to stop it.*\): sleep 600\. Nothing was fetched/,
    );
    assert.ok(!existsSync(join(ws, 'data', DOMAIN, 'site')), 'nothing was stored');
  } finally {
    rmSync(join(work, 'no-timeout'), { force: true });
  }
});

test('an after-restore command that exits but leaves a background process holding its output: named as such, not as a missing `timeout`', async () => {
  const { ws, site } = await salvaged();
  try {
    const r = await runAction(inputs({ mode: 'restore', 'command-timeout': '1', 'after-restore': 'sleep 613 &' }), {
      workspace: ws,
    });
    failedWith(
      r,
      /after-restore command failed \(it exited \(status 0\), but a process it started still held its output open after 31 s .*`nohup svc >\/dev\/null 2>&1 &`\): sleep 613 &/,
    );
    assert.equal(readFileSync(join(site, 'app.conf'), 'utf8'), 'config', 'the restore itself finished');
  } finally {
    rootSh(`pkill -f 'sleep 61[3]' || true`); // [3]: not this shell's own command line
  }
});
