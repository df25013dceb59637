import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { recipeWorkspace, runAction, type ActionResult } from '../helpers/run-action.js';
import { treePicture } from '../helpers/tree.js';
import { ok } from '../helpers/outcome.js';
import { rootSh, sshInputs, startSshd, type Sshd } from '../helpers/sshd.js';

// Issue #14, points 3, 4 and 6, end to end through the bundle (dist/) against a real sshd on 127.0.0.1:
// the partial-dump rule around remote_prepare commands, entries that name the same server path, and
// the commands around a restore (before-restore / after-restore and the recipes' own).

const DOMAIN = 'example.com';
let sshd: Sshd;
/** The install dir on the server: rf-shell's scratch folder of this sshd instance. */
let srv: string;

before(async () => {
  sshd = await startSshd({ hostKeyTypes: ['ed25519'] });
  srv = sshd.users.shell.scratch;
});

after(async () => {
  await sshd?.stop();
});

function workspace(recipes: string): string {
  return recipeWorkspace('rf-seed-prepare-', recipes);
}

function inputs(extra: Record<string, string> = {}): Record<string, string> {
  return sshInputs(
    sshd,
    { domain: DOMAIN, installDir: srv, pin: 'host-fingerprint' },
    { mode: 'backup', timeout: '20', retries: '0', store: 'none', ...extra },
  );
}

function failed(r: ActionResult): string {
  assert.notEqual(r.code, 0, `expected a failure\n${r.stdout}\n${r.stderr}`);
  return r.stdout + r.stderr;
}

/** Writes a server file as rf-shell would have (owned by it, so its commands may change it). */
function serverFile(rel: string, content: string): void {
  const path = join(srv, rel);
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, content);
  rootSh(`chown -R rf-shell: '${srv}'`);
}

interface ReportEntry {
  recipe: string;
  remote: string;
  local: string;
  status: string;
  files: number;
  unchanged: number;
  notes: string[];
}

function reportEntries(r: ActionResult): ReportEntry[] {
  return (JSON.parse(readFileSync(r.outputs.report!, 'utf8')) as { entries: ReportEntry[] }).entries;
}

describe('the partial-dump rule: remote_prepare between two readings of the recipe paths', () => {
  const recipes = [
    '  Db:',
    '    remote_files:',
    '      "${install_dir}/db/dumps": db',
    '    remote_prepare: [ "sh ${install_dir}/prep.sh" ]',
    '',
  ].join('\n');
  let ws: string;
  let domainDir: string;

  before(async () => {
    serverFile('db/dumps/shop.sql', 'good dump 1\n');
    serverFile('db/dumps/complete', '');
    serverFile('prep.sh', 'exit 0\n');
    ws = workspace(recipes);
    domainDir = join(ws, 'data', DOMAIN);
    ok(await runAction(inputs(), { workspace: ws }));
    assert.equal(readFileSync(join(domainDir, 'db/shop.sql'), 'utf8'), 'good dump 1\n');
  });

  for (const sudo of ['false', 'true']) {
    test(`a command that fails after changing a dump fails the run before anything is fetched (sudo: ${sudo})`, async () => {
      const before = treePicture(ws, { modes: true, fileTimes: true });
      // The dump is half written, then the command fails: a partial dump.
      serverFile('prep.sh', `printf 'partial' > ${srv}/db/dumps/shop.sql; echo 'dump failed: disk full' >&2; exit 3\n`);
      const out = failed(await runAction(inputs({ sudo }), { workspace: ws }));
      assert.match(out, /Db: prepare command failed \(exit 3\) after changing [^\n]*db\/dumps/);
      assert.match(out, /sh [^\n]*prep\.sh/);
      assert.match(out, /partial dump/);
      assert.match(out, /nothing was fetched/);
      assert.match(out, /dump failed: disk full/);
      // Stored copy and data folder byte-identical (contents, modes, mtimes, manifest).
      assert.deepEqual(treePicture(ws, { modes: true, fileTimes: true }), before);
      assert.equal(readFileSync(join(domainDir, 'db/shop.sql'), 'utf8'), 'good dump 1\n');
      serverFile('db/dumps/shop.sql', 'good dump 1\n');
    });
  }

  test('a command that fails and changed nothing is a warning; the backup proceeds', async () => {
    // The dump changed before the run (yesterday's successful dump), the command fails without writing.
    // Of another size: a change within the same second as the last run must not look unchanged.
    serverFile('db/dumps/shop.sql', 'good dump 2, newer\n');
    serverFile('prep.sh', `echo 'cannot connect to the database' >&2; exit 2\n`);
    const r = ok(await runAction(inputs(), { workspace: ws }));
    assert.match(
      r.stdout,
      /::warning::Db: prepare command failed \(exit 2\) and changed nothing under [^\n]*db\/dumps: the salvage is as old as the last time/,
    );
    assert.match(r.stdout, /cannot connect to the database/);
    assert.equal(readFileSync(join(domainDir, 'db/shop.sql'), 'utf8'), 'good dump 2, newer\n');
    assert.equal(r.outputs.changed, 'true');
  });

  test('a command that succeeds and changes the dump: the new dump is fetched', async () => {
    serverFile('prep.sh', `printf 'good dump 3, a longer one\\n' > ${srv}/db/dumps/shop.sql\n`);
    const r = ok(await runAction(inputs({ sudo: 'true' }), { workspace: ws }));
    assert.match(r.stdout, /Db: sh [^\n]*prep\.sh — ok/);
    assert.equal(readFileSync(join(domainDir, 'db/shop.sql'), 'utf8'), 'good dump 3, a longer one\n');
  });
});

describe('entries that name the same server path', () => {
  const recipes = [
    '  A:',
    '    remote_files:',
    '      "${install_dir}/ov/etc/app/app.conf": a/app.conf',
    '  B:',
    '    remote_files:',
    '      "${install_dir}/ov/etc/app/app.conf": b/app.conf',
    '      "${install_dir}/ov/etc/app": b/app',
    '  C:',
    '    remote_files:',
    '      "${install_dir}/ov/etc/app": c/app',
    '      "${install_dir}/ov/etc/app/app.conf": c/app/app.conf',
    '',
  ].join('\n');
  let ws: string;
  let domainDir: string;
  const conf = () => join(srv, 'ov/etc/app/app.conf');

  before(() => {
    serverFile('ov/etc/app/app.conf', 'listen 80\n');
    serverFile('ov/etc/app/other.txt', 'other\n');
    ws = workspace(recipes);
    domainDir = join(ws, 'data', DOMAIN);
  });

  for (const transport of ['tar', 'sftp']) {
    test(`the first backup stores the file at each local path and reports each entry as changed (${transport})`, async () => {
      rmSync(join(ws, 'data'), { recursive: true, force: true });
      const r = ok(await runAction(inputs({ transport }), { workspace: ws }));
      for (const local of ['a/app.conf', 'b/app.conf', 'b/app/app.conf', 'c/app/app.conf']) {
        assert.equal(readFileSync(join(domainDir, local), 'utf8'), 'listen 80\n', local);
      }
      assert.equal(readFileSync(join(domainDir, 'b/app/other.txt'), 'utf8'), 'other\n');
      assert.equal(readFileSync(join(domainDir, 'c/app/other.txt'), 'utf8'), 'other\n');
      const entries = reportEntries(r);
      assert.equal(entries.length, 5);
      for (const e of entries) assert.equal(e.status, 'changed', `${e.recipe} ${e.local}: ${JSON.stringify(e)}`);
      const byLocal = new Map(entries.map((e) => [e.local, e]));
      assert.equal(byLocal.get('a/app.conf')!.files, 1);
      assert.equal(byLocal.get('b/app.conf')!.files, 1);
      assert.equal(byLocal.get('b/app')!.files, 2);
      assert.equal(byLocal.get('c/app')!.files, 2);
      assert.equal(byLocal.get('c/app/app.conf')!.files, 1);
      const manifest = JSON.parse(readFileSync(join(domainDir, '.remote-files/manifest.json'), 'utf8')) as {
        files: Record<string, { sha256?: string }>;
      };
      for (const local of ['a/app.conf', 'b/app.conf', 'b/app/app.conf', 'c/app/app.conf'])
        assert.ok(manifest.files[local]?.sha256, local);

      // The next run finds everything as stored.
      const again = ok(await runAction(inputs({ transport }), { workspace: ws }));
      assert.equal(again.outputs.changed, 'false', again.stdout);
      for (const e of reportEntries(again)) assert.equal(e.status, 'unchanged', JSON.stringify(e));
    });
  }

  test('verify finds no drift, then the same change once per entry that names it', async () => {
    rmSync(join(ws, 'data'), { recursive: true, force: true });
    ok(await runAction(inputs(), { workspace: ws }));
    const same = ok(await runAction(inputs({ mode: 'verify' }), { workspace: ws }));
    assert.equal(same.outputs.drift, 'false', same.stdout);
    serverFile('ov/etc/app/app.conf', 'listen 8080\n');
    const drift = ok(await runAction(inputs({ mode: 'verify' }), { workspace: ws }));
    assert.equal(drift.outputs.drift, 'true');
    const report = JSON.parse(readFileSync(drift.outputs.report!, 'utf8')) as {
      entries: Array<{ local: string; changed: string[]; added: string[]; removed: string[] }>;
    };
    for (const e of report.entries) {
      assert.deepEqual(e.changed, [conf()], `${e.local}: ${JSON.stringify(e)}`);
      assert.deepEqual([...e.added, ...e.removed], [], e.local);
    }
    serverFile('ov/etc/app/app.conf', 'listen 80\n');
  });

  test('restore puts the file back once: one kept previous, no conflict with itself', async () => {
    rmSync(join(ws, 'data'), { recursive: true, force: true });
    ok(await runAction(inputs(), { workspace: ws }));
    serverFile('ov/etc/app/app.conf', 'changed on the server\n');
    const fail = failed(await runAction(inputs({ mode: 'restore', conflict: 'fail' }), { workspace: ws }));
    assert.match(fail, /conflict: fail — 1 file\(s\) on the server differ/);
    assert.equal(readFileSync(conf(), 'utf8'), 'changed on the server\n');

    const r = ok(await runAction(inputs({ mode: 'restore' }), { workspace: ws }));
    assert.equal(readFileSync(conf(), 'utf8'), 'listen 80\n');
    assert.equal(r.outputs.files, '1', r.stdout);
    assert.match(r.stdout, /Previous content of 1 replaced file\(s\) kept on the server/);
    const entries = reportEntries(r);
    assert.equal(entries.filter((e) => e.status === 'changed').length, 1, JSON.stringify(entries));
    for (const e of entries.filter((x) => x.status !== 'changed')) {
      assert.equal(e.status, 'unchanged', JSON.stringify(e));
      assert.ok(
        e.notes.some((n) => /is restored once, from/.test(n)),
        JSON.stringify(e),
      );
    }
    // And the server now matches every entry's stored copy.
    const verify = ok(await runAction(inputs({ mode: 'verify' }), { workspace: ws }));
    assert.equal(verify.outputs.drift, 'false', verify.stdout);
  });
});

describe('commands around a restore', () => {
  const log = () => join(srv, 'svc/log');
  const recipes = [
    '  Svc:',
    '    remote_files:',
    '      "${install_dir}/svc/data": svc',
    '    before_restore: [ "echo recipe-before >> ${install_dir}/svc/log" ]',
    '    after_restore: [ "echo recipe-after $(cat ${install_dir}/svc/data/state.txt) >> ${install_dir}/svc/log" ]',
    '',
  ].join('\n');
  let ws: string;

  before(async () => {
    serverFile('svc/data/state.txt', 'loaded');
    ws = workspace(recipes);
    ok(await runAction(inputs(), { workspace: ws }));
  });

  const reset = () => {
    rootSh(`rm -f '${join(srv, 'svc/data/state.txt')}' '${log()}'`);
    serverFile('svc/log', '');
  };

  test("order: before-restore, the recipe's before_restore, the restore, its after_restore, after-restore", async () => {
    reset();
    const r = ok(
      await runAction(
        inputs({
          mode: 'restore',
          sudo: 'true',
          'before-restore': `echo input-before-1 >> ${log()}\necho "input-before-2 $(test -e ${srv}/svc/data/state.txt && echo present || echo absent) $(id -u)" >> ${log()}`,
          'after-restore': `echo input-after >> ${log()}`,
        }),
        { workspace: ws },
      ),
    );
    assert.equal(
      readFileSync(log(), 'utf8'),
      'input-before-1\ninput-before-2 absent 0\nrecipe-before\nrecipe-after loaded\ninput-after\n',
    );
    assert.equal(readFileSync(join(srv, 'svc/data/state.txt'), 'utf8'), 'loaded');
    assert.equal(r.outputs.files, '1');
  });

  test('a failing before-restore stops the restore before anything is written', async () => {
    reset();
    const out = failed(
      await runAction(
        inputs({
          mode: 'restore',
          'before-restore': `echo input-before >> ${log()}\necho 'service will not stop' >&2; exit 5\necho never >> ${log()}`,
        }),
        { workspace: ws },
      ),
    );
    assert.match(out, /before-restore command failed \(exit 5\)/);
    assert.match(out, /service will not stop/);
    assert.match(out, /nothing was restored \(nothing was written\)/);
    assert.match(out, /2 later command\(s\) not run/);
    assert.equal(existsSync(join(srv, 'svc/data/state.txt')), false);
    assert.equal(readFileSync(log(), 'utf8'), 'input-before\n');
  });

  test('a failing after-restore fails the step with the data in place, and says so', async () => {
    reset();
    const r = await runAction(
      inputs({
        mode: 'restore',
        'after-restore': `echo 'dump will not load' >&2; exit 4\necho input-after >> ${log()}`,
      }),
      { workspace: ws },
    );
    const out = failed(r);
    assert.match(
      out,
      /::error::[^\n]*after-restore command failed \(exit 4\)[^\n]*dump will not load[^\n]*The data is in place/,
    );
    assert.equal(readFileSync(join(srv, 'svc/data/state.txt'), 'utf8'), 'loaded');
    assert.equal(readFileSync(log(), 'utf8'), 'recipe-before\nrecipe-after loaded\n');
    assert.equal(r.outputs.files, '1');
  });

  test('an SFTP-only account with such commands is a clear error before anything is written', async () => {
    // A stored copy, so that the run gets as far as the server (nothing stored fails before connecting).
    const ws = workspace(recipes);
    mkdirSync(join(ws, 'data', DOMAIN, '.remote-files'), { recursive: true });
    writeFileSync(
      join(ws, 'data', DOMAIN, '.remote-files', 'manifest.json'),
      JSON.stringify({ version: 1, domain: DOMAIN, names: 'git-safe-1', entries: {}, files: {} }),
    );
    const out = failed(
      await runAction(
        inputs({
          mode: 'restore',
          username: 'rf-sftp',
          'install-dir': '/data',
          'before-restore': 'systemctl stop app',
        }),
        { workspace: ws },
      ),
    );
    assert.match(
      out,
      /commands around the restore are configured \(before-restore, Svc: before_restore, Svc: after_restore\), but this account only offers SFTP/,
    );
  });
});
