import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { NODES, runAction, type ActionResult } from '../helpers/run-action.js';
import { ok } from '../helpers/outcome.js';
import { asShell, rootSh, sshInputs, startSshd, type Sshd } from '../helpers/sshd.js';
import { testTempDir } from '../helpers/temp.js';

// restores(%opts) and the framework's restore rules, through the committed bundle against a real sshd:
// the configuration reaches %opts (with and without `vars`), and each rule of restore_state holds.

let server: Sshd;
let srv: string;
const DOMAIN = 'example.com';

before(async () => {
  server = await startSshd();
  srv = server.users.shell.scratch;
});
after(async () => {
  await server?.stop();
});

const OPTS_PM = `package Provisioner::Recipe::Opts;
use strict;
use warnings;

sub remote_files {
    my ( $class, $install_dir, $domain ) = @_;
    return (
        "$install_dir/app/"      => 'app',
        "$install_dir/emptydir/" => 'emptydir',
        "$install_dir/zero.conf" => 'zero.conf',
        "$install_dir/one.conf"  => 'one.conf',
    );
}

sub restores {
    my ( $class, %opts ) = @_;
    my $base  = "$opts{install_dir}/$opts{domain}";
    my $owner = $opts{user} // $opts{admin_user};
    return (
        "$opts{install_dir}/out/z-app"      => { from => "$base/app", owner => "$owner:$owner", mode => '0750' },
        "$opts{install_dir}/out/a-sub"      => { from => "$base/app/data/sub", owner => $opts{admin_user} },
        "$opts{install_dir}/out/n"          => { from => "$base/app" },
        "$opts{install_dir}/out/n/data/sub" => { from => "$base/app/data/sub", mode => '0700' },
        "$opts{install_dir}/out/empty"      => { from => "$base/emptydir" },
        "$opts{install_dir}/out/zero"       => { from => "$base/zero.conf" },
        "$opts{install_dir}/out/missing"    => { from => "$base/nothing-here" },
        "$opts{install_dir}/out/live"       => { from => "$base/app" },
        "$opts{install_dir}/out/into-empty" => { from => "$base/app/data" },
        "$opts{install_dir}/out/one.conf"   => { from => "$base/one.conf", owner => 'rf-no-such-user', mode => '0640' },
    );
}

1;
`;

const TWIN = `version: 1
recipes:
  Twin:
    remote_files:
      "\${install_dir}/two.conf": two.conf
    restores:
      "\${install_dir}/out/twin.conf":
        from: "\${install_dir}/\${domain}/two.conf"
        owner: "\${admin_user}:[% admin_user %]"
`;

function workspace(extra: Record<string, string> = {}): string {
  const ws = testTempDir('rf-seed-');
  mkdirSync(join(ws, 'lib/Provisioner/Recipe'), { recursive: true });
  writeFileSync(join(ws, 'lib/Provisioner/Recipe/Opts.pm'), OPTS_PM);
  writeFileSync(join(ws, 'remote-files.yml'), TWIN);
  for (const [rel, text] of Object.entries(extra)) writeFileSync(join(ws, rel), text);
  return ws;
}

function inputs(extra: Record<string, string> = {}): Record<string, string> {
  return sshInputs(server, { domain: DOMAIN, installDir: srv }, { timeout: '20', store: 'none', ...extra });
}

const act = (ws: string, extra: Record<string, string>) =>
  runAction(inputs(extra), { workspace: ws, node: NODES[0]!.path });

function failed(r: ActionResult, pattern: RegExp): ActionResult {
  assert.equal(r.code, 1, `expected failure, got exit ${r.code}\n${r.stdout}`);
  assert.match(r.stdout, pattern);
  return r;
}

const stat = (path: string) => rootSh(`stat -c '%U:%G %a' '${path}'`).trim();

describe('restores(%opts) and the restore rules, through the bundle', () => {
  let ws: string;

  before(() => {
    ws = workspace();
    asShell(`
      set -e
      mkdir -p '${srv}/app/data/sub' '${srv}/emptydir' '${srv}/out/live' '${srv}/out/into-empty'
      printf a > '${srv}/app/data/a.txt'
      printf b > '${srv}/app/data/sub/b.txt'
      : > '${srv}/zero.conf'
      printf one > '${srv}/one.conf'
      printf two > '${srv}/two.conf'
      printf live > '${srv}/out/live/keep.txt'
      chmod 0755 '${srv}/out/into-empty'
    `);
  });

  test('without vars, a recipe reading $opts{admin_user} fails naming recipe, file, line, key and the vars input', async () => {
    const r = failed(
      await act(ws, { mode: 'plan' }),
      /::error::lib\/Provisioner\/Recipe\/Opts\.pm:\d+: recipe Opts: restores reads \$opts\{admin_user\}, which is not set/,
    );
    assert.match(r.stdout, /add admin_user=VALUE to `vars`/);
  });

  test('with vars, %opts holds them: `$opts{user} // $opts{admin_user}` works as in Perl; a twin’s ${name} resolves too', async () => {
    const plan = (vars: string) =>
      act(ws, { mode: 'plan', vars }).then(
        (r) =>
          JSON.parse(ok(r).outputs.plan!) as {
            recipes: Array<{ name: string; restores: Array<{ to: string; owner: string | null }> }>;
          },
      );
    const owners = async (vars: string) =>
      Object.fromEntries(
        (await plan(vars)).recipes.flatMap((x) => x.restores).map((x) => [x.to.slice(srv.length), x.owner]),
      );
    const admin = await owners('admin_user=rf-other');
    assert.equal(admin['/out/z-app'], 'rf-other:rf-other');
    assert.equal(admin['/out/twin.conf'], 'rf-other:rf-other');
    assert.equal((await owners('admin_user=rf-other\nuser=rf-shell'))['/out/z-app'], 'rf-shell:rf-shell');
  });

  test('two recipes giving one destination different specs: the run fails naming both', async () => {
    const clash = workspace({
      'clash.yml': `version: 1\nrecipes:\n  Clash:\n    remote_files: { "\${install_dir}/one.conf": one.conf }\n    restores:\n      "\${install_dir}/out/one.conf": { from: "\${install_dir}/\${domain}/one.conf", mode: "0600" }\n`,
    });
    failed(
      await act(clash, {
        mode: 'plan',
        vars: 'admin_user=rf-other',
        recipes: 'lib/Provisioner/Recipe\nremote-files.yml\nclash.yml',
      }),
      /::error::restores: two recipes give .*\/out\/one\.conf different specs: recipe Opts \(lib\/Provisioner\/Recipe\/Opts\.pm\).*recipe Clash \(clash\.yml\)/,
    );
  });

  test('restore applies each rule of the framework’s restore_state', async () => {
    ok(await act(ws, { mode: 'backup', vars: 'admin_user=rf-other' }));
    const r = ok(await act(ws, { mode: 'restore', sudo: 'true', vars: 'admin_user=rf-other' }));
    const out = join(srv, 'out');
    // A folder salvage: owner and mode recursively (chown -R, chmod -R), files included.
    assert.equal(readFileSync(join(out, 'z-app/data/sub/b.txt'), 'utf8'), 'b');
    for (const p of ['z-app', 'z-app/data', 'z-app/data/a.txt', 'z-app/data/sub/b.txt'])
      assert.equal(stat(join(out, p)), 'rf-other:rf-other 750', p);
    // `from` a subfolder of a salvage; owner `user` alone keeps the salvaged group.
    assert.equal(readFileSync(join(out, 'a-sub/b.txt'), 'utf8'), 'b');
    assert.equal(stat(join(out, 'a-sub/b.txt')).split(' ')[0], 'rf-other:rf-shell');
    // Sorted order, each destination judged when its turn comes: out/n first, so out/n/data/sub then holds state.
    assert.equal(readFileSync(join(out, 'n/data/sub/b.txt'), 'utf8'), 'b');
    assert.notEqual(
      stat(join(out, 'n/data/sub')).split(' ')[1],
      '700',
      'the nested destination was left as out/n put it',
    );
    assert.match(r.stdout, /out\/n\/data\/sub already holds state; left as it is/);
    // Nothing salvaged, an empty folder, a 0-byte file: nothing happens.
    assert.ok(!existsSync(join(out, 'missing')) && !existsSync(join(out, 'empty')) && !existsSync(join(out, 'zero')));
    assert.match(r.stdout, /nothing salvaged in nothing-here/);
    assert.match(r.stdout, /the salvage emptydir is an empty folder/);
    assert.match(r.stdout, /the salvage zero\.conf is an empty file/);
    // A destination that holds anything is left as it is.
    assert.deepEqual(rootSh(`ls '${join(out, 'live')}'`).trim(), 'keep.txt');
    assert.match(r.stdout, /out\/live already holds state/);
    // An existing empty folder is filled and keeps its own top mode and owner (cp -a salvage/. dest/).
    assert.equal(readFileSync(join(out, 'into-empty/sub/b.txt'), 'utf8'), 'b');
    assert.equal(stat(join(out, 'into-empty')), 'rf-shell:rf-shell 755');
    // An owner account that does not exist yet: a warning, the rest applied (mode), salvaged owner left.
    assert.match(
      r.stdout,
      /::warning::Opts: restores .*out\/one\.conf: the account "rf-no-such-user" does not exist on the server yet; left as salvaged/,
    );
    assert.equal(readFileSync(join(out, 'one.conf'), 'utf8'), 'one');
    assert.equal(stat(join(out, 'one.conf')), 'rf-shell:rf-shell 640');
    // The twin's owner from vars.
    assert.equal(stat(join(out, 'twin.conf')).split(' ')[0], 'rf-other:rf-other');
  });
});
