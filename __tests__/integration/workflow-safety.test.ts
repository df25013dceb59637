import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { runAction, type ActionResult } from '../helpers/run-action.js';
import { ok } from '../helpers/outcome.js';
import { asShell, rootSh, sshFlags, sshInputs, startSshd, type Sshd } from '../helpers/sshd.js';
import { testTempDir } from '../helpers/temp.js';

// Issue 15, points 1–6, through the bundle (dist/) as the runner runs it, against a real sshd: safe by
// default for the person writing the workflow, and inputs people bring from other actions.

let server: Sshd;
let srv: string;
const DOMAIN = 'safety.example';

before(async () => {
  server = await startSshd();
  srv = join(server.users.shell.scratch, 'safety');
  asShell(`mkdir -p '${srv}'`);
});
after(async () => {
  await server?.stop();
});

function workspace(recipes?: string): string {
  const ws = testTempDir('rf-safety-');
  if (recipes !== undefined) writeFileSync(join(ws, 'remote-files.yml'), `version: 1\nrecipes:\n${recipes}`);
  return ws;
}

function inputs(extra: Record<string, string> = {}): Record<string, string> {
  return sshInputs(
    server,
    { domain: DOMAIN, installDir: srv },
    { mode: 'backup', timeout: '20s', retries: '0', store: 'none', ...extra },
  );
}

/** Fails with exactly one ::error:: line matching `pattern`; returns that line. */
function failed(r: ActionResult, pattern: RegExp): string {
  assert.equal(r.code, 1, `exit ${r.code}\n${r.stdout}\n${r.stderr}`);
  // Workflow commands escape %, CR and LF.
  const errors = r.stdout
    .split('\n')
    .filter((l) => l.startsWith('::error::'))
    .map((l) => l.replace(/%0A/g, '\n').replace(/%0D/g, '\r').replace(/%25/g, '%'));
  assert.equal(errors.length, 1, r.stdout);
  assert.match(errors[0]!, pattern);
  return errors[0]!;
}

const stored = (ws: string, rel: string) => join(ws, 'data', DOMAIN, rel);
const manifest = (ws: string) => readFileSync(stored(ws, '.remote-files/manifest.json'), 'utf8');

describe('1. mode has no default', () => {
  test('a step without mode fails naming `mode` and its four values, and connects to nothing', async () => {
    const ws = workspace(`  App:\n    remote_files:\n      "\${install_dir}/m": m\n`);
    const { mode: _, ...rest } = inputs();
    const r = await runAction(rest, { workspace: ws });
    failed(r, /^::error::input `mode` is required: backup, restore, verify, plan/);
    assert.doesNotMatch(r.stdout, /Connected to/);
    assert.equal(existsSync(join(ws, 'data')), false);
  });
});

describe('2. the shrink guard (max-delete)', () => {
  test('a backup that would delete or empty too much fails before writing, naming the entry and the counts', async () => {
    asShell(
      `mkdir -p '${srv}/shrink/app' && cd '${srv}/shrink' && for f in a b c d; do echo "$f content" > app/$f; done && echo rows > db.sqlite`,
    );
    const ws = workspace(
      `  App:\n    remote_files:\n      "\${install_dir}/shrink/app": app\n      "\${install_dir}/shrink/db.sqlite": db.sqlite\n`,
    );
    ok(await runAction(inputs(), { workspace: ws }));
    const before = manifest(ws);

    // The server "rebuilt": three of four files gone, the database emptied.
    asShell(`cd '${srv}/shrink' && rm app/a app/b app/c && : > db.sqlite`);
    const r = await runAction(inputs(), { workspace: ws });
    const line = failed(r, /refusing the backup, nothing was written and the stored copy is untouched: /);
    assert.match(
      line,
      /recipe App \(\S+\/shrink\/app => app\): the backup would delete 3 of its 4 stored file\(s\) \(max-delete: 50%\)/,
    );
    assert.match(
      line,
      /recipe App \(\S+\/shrink\/db\.sqlite => db\.sqlite\): the backup would empty 1 of its 1 stored file\(s\), leaving none with content/,
    );
    assert.equal(manifest(ws), before, 'the manifest is untouched');
    for (const f of ['a', 'b', 'c']) assert.equal(readFileSync(stored(ws, `app/${f}`), 'utf8'), `${f} content\n`);
    assert.equal(readFileSync(stored(ws, 'db.sqlite'), 'utf8'), 'rows\n');

    // A dry run says the same.
    failed(await runAction(inputs({ 'dry-run': 'true' }), { workspace: ws }), /refusing the backup/);
    // A count: 3 deletions are allowed by max-delete: 3, but the emptied database still leaves its entry with nothing.
    failed(
      await runAction(inputs({ 'max-delete': '3' }), { workspace: ws }),
      /^(?!.*shrink\/app).*db\.sqlite.*leaving none with content \(max-delete: 3\)/,
    );
    // 100% turns the guard off: the backup mirrors the server.
    ok(await runAction(inputs({ 'max-delete': '100%' }), { workspace: ws }));
    assert.equal(existsSync(stored(ws, 'app/a')), false);
    assert.equal(readFileSync(stored(ws, 'db.sqlite'), 'utf8'), '');
    failed(
      await runAction(inputs({ 'max-delete': 'lots' }), { workspace: ws }),
      /input `max-delete`: "lots" is not a percentage/,
    );
  });
});

describe('3. nothing found is an error', () => {
  test('no recipe (no actions/checkout): backup, restore and verify fail before connecting; plan warns', async () => {
    const ws = workspace();
    for (const mode of ['backup', 'restore', 'verify']) {
      const r = await runAction(inputs({ mode }), { workspace: ws });
      failed(
        r,
        new RegExp(`nothing to ${mode}: no recipe that names remote files found in the workspace .*actions/checkout`),
      );
      assert.doesNotMatch(r.stdout, /Connected to/);
    }
    const plan = ok(await runAction({ mode: 'plan', domain: DOMAIN, 'install-dir': srv }, { workspace: ws }));
    assert.match(plan.stdout, /::warning::nothing would be moved: no recipe/);
  });

  test('a restore with nothing stored fails with the same message in every store, none included', async () => {
    const recipe = `  App:\n    remote_files:\n      "\${install_dir}/never": never\n`;
    const none = await runAction(inputs({ mode: 'restore' }), { workspace: workspace(recipe) });
    failed(
      none,
      new RegExp(
        `no stored copy of ${DOMAIN.replace('.', '\\.')} in store none \\(the workspace's data folder\\): nothing to restore or compare\\. Run a backup first`,
      ),
    );
    assert.doesNotMatch(none.stdout, /is missing/, 'no warning that reads as if server paths were missing');
    assert.doesNotMatch(none.stdout, /Connected to/);
    const commit = await runAction(inputs({ mode: 'restore', store: 'commit' }), { workspace: workspace(recipe) });
    failed(
      commit,
      new RegExp(
        `no stored copy of ${DOMAIN.replace('.', '\\.')} in store commit: nothing to restore or compare\\. Run a backup first`,
      ),
    );
  });
});

describe('4. denied on restore', () => {
  for (const transport of ['tar', 'sftp']) {
    test(`${transport}: a destination the login may not write is reported as denied with the sudo hint; the other entries are restored`, async () => {
      const base = `${srv}/denied-${transport}`;
      asShell(`mkdir -p '${base}/open' && echo open > '${base}/open/o.txt'`);
      // A root-owned folder the login may read but not write: the backup works, the restore cannot stage there.
      rootSh(
        `mkdir -p '${base}/locked/conf' && echo locked > '${base}/locked/conf/l.txt' && chmod 755 '${base}/locked' '${base}/locked/conf'`,
      );
      const ws = workspace(
        `  App:\n    remote_files:\n      "\${install_dir}/denied-${transport}/locked/conf": conf\n      "\${install_dir}/denied-${transport}/open": open\n`,
      );
      ok(await runAction(inputs({ transport }), { workspace: ws }));
      rootSh(`rm -rf '${base}/open' '${base}/locked/conf'`);

      const r = await runAction(inputs({ mode: 'restore', transport }), { workspace: ws });
      const line = failed(
        r,
        new RegExp(
          `App: \\S+/locked/conf not writable by rf-shell; not restored\\. Use sudo: true or allow-denied: true`,
        ),
      );
      assert.doesNotMatch(line, /mktemp|Permission denied/, 'no raw error stops the run');
      assert.match(r.stdout, /^denied +\S+\/locked\/conf -> conf/m);
      assert.equal(r.outputs.denied, '1');
      assert.match(r.summary, /denied/);
      assert.equal(readFileSync(`${base}/open/o.txt`, 'utf8'), 'open\n', 'the other entry was restored');
      assert.equal(existsSync(`${base}/locked/conf`), false);

      rootSh(`rm -rf '${base}/open'`);
      const allowed = ok(
        await runAction(inputs({ mode: 'restore', transport, 'allow-denied': 'true' }), { workspace: ws }),
      );
      assert.match(allowed.stdout, /::warning::App: \S+\/locked\/conf not writable by rf-shell/);
      assert.equal(readFileSync(`${base}/open/o.txt`, 'utf8'), 'open\n');
    });
  }
});

describe('5. stores are checked before connecting; a store failing after the transfer', () => {
  const recipe = () => {
    asShell(`mkdir -p '${srv}/store' && echo s > '${srv}/store/s.txt'`);
    return `  App:\n    remote_files:\n      "\${install_dir}/store": store\n`;
  };
  const git = (cwd: string, ...args: string[]) => execFileSync('git', ['-C', cwd, ...args], { encoding: 'utf8' });

  test('commit without a work tree, or without a remote to push to, and artifact or cache without the runtime fail before connecting', async () => {
    const noRepo = await runAction(inputs({ store: 'commit' }), { workspace: workspace(recipe()) });
    failed(noRepo, /store: commit needs a git checkout in the workspace/);
    assert.doesNotMatch(noRepo.stdout, /Connected to/);

    const ws = workspace(recipe());
    git(ws, 'init', '-q', '-b', 'main');
    const noRemote = await runAction(inputs({ store: 'commit' }), { workspace: ws });
    failed(noRemote, /store: commit has no remote to push to: .* has no `origin`/);
    assert.doesNotMatch(noRemote.stdout, /Connected to/);
    ok(await runAction(inputs({ store: 'commit', push: 'false' }), { workspace: ws }));

    for (const store of ['artifact', 'cache']) {
      const r = await runAction(inputs({ store }), { workspace: workspace(recipe()) });
      failed(r, new RegExp(`store: ${store} needs the Actions`));
      assert.doesNotMatch(r.stdout, /Connected to/);
    }
  });

  test('a remote that does not exist fails a backup before it connects; a push to one is not retried: the summary and outputs are written and the message says where the salvage is', async () => {
    const ws = workspace(recipe());
    git(ws, 'init', '-q', '-b', 'main');
    git(ws, 'remote', 'add', 'origin', join(tmpdir(), 'rf-no-such-remote.git'));
    // The backup fetches the branch's tip first (its baseline): a remote that is not there fails before connecting.
    const early = await runAction(inputs({ store: 'commit' }), { workspace: ws });
    failed(early, /store: commit could not fetch main from origin: .*does not appear to be a git repository/s);
    assert.doesNotMatch(early.stdout, /Connected to/);
    // Fetched from an empty origin, pushed to one that is not there: the push fails after the transfer.
    const empty = testTempDir('rf-empty-origin-');
    git(empty, 'init', '-q', '--bare', '-b', 'main');
    git(ws, 'remote', 'set-url', 'origin', empty);
    git(ws, 'remote', 'set-url', '--push', 'origin', join(tmpdir(), 'rf-no-such-remote.git'));
    const r = await runAction(inputs({ store: 'commit' }), { workspace: ws });
    rmSync(empty, { recursive: true, force: true });
    failed(
      r,
      /store: commit could not push data\/safety\.example to main \(not retried: .*\): .*does not appear to be a git repository.* The backup itself succeeded: the salvage is in the workspace's data\/safety\.example, not stored \(commit\)/s,
    );
    assert.doesNotMatch(r.stdout, /attempt 2/);
    assert.equal(r.outputs.files, '1');
    assert.ok(r.outputs.report, 'the report output is set');
    assert.match(r.summary, /remote-files backup of `safety\.example`/);
    assert.match(r.summary, /not stored \(commit\)/);
    assert.equal(readFileSync(stored(ws, 'store/s.txt'), 'utf8'), 's\n');
  });

  test('a key given as a file path is read; a path that is not there says so', async () => {
    const dir = testTempDir('rf-keyfile-');
    writeFileSync(join(dir, 'id'), server.key.privateKey, { mode: 0o600 });
    ok(await runAction(inputs({ key: join(dir, 'id') }), { workspace: workspace(recipe()) }));
    failed(
      await runAction(inputs({ key: '~/.ssh/rf_no_such_key' }), { workspace: workspace(recipe()) }),
      /input `key` looks like a file path \("~\/\.ssh\/rf_no_such_key"\), not a private key/,
    );
  });

  test('the CLI stores nothing unless asked (--store none by default) and names the nearest flag for an unknown one', () => {
    const ws = workspace(recipe());
    git(ws, 'init', '-q', '-b', 'main');
    const keyFile = join(ws, '..', `${ws.split('/').pop()}-key`);
    writeFileSync(keyFile, server.key.privateKey, { mode: 0o600 });
    const hosts = `${keyFile}-hosts`;
    writeFileSync(hosts, server.knownHostsLine('ed25519') + '\n');
    const cli = (...args: string[]) =>
      spawnSync(process.execPath, [resolve('dist/cli.js'), ...args], {
        cwd: ws,
        encoding: 'utf8',
        env: { PATH: process.env.PATH ?? '', HOME: tmpdir(), TMPDIR: tmpdir() },
      });
    const args = [...sshFlags(server, { domain: DOMAIN, installDir: srv, keyFile }), '--known-hosts-file', hosts];
    const r = cli('backup', ...args);
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.equal(readFileSync(stored(ws, 'store/s.txt'), 'utf8'), 's\n');
    assert.equal(
      spawnSync('git', ['-C', ws, 'rev-parse', '-q', '--verify', 'HEAD']).status,
      1,
      'nothing was committed',
    );
    const byFlag = cli('--mode', 'verify', ...args);
    assert.equal(byFlag.status, 0, byFlag.stdout + byFlag.stderr);
    const typo = cli('backup', ...args, '--stor', 'commit');
    assert.equal(typo.status, 2);
    assert.match(typo.stderr, /unknown flag --stor \(did you mean --store\?\)/);
    const none = cli(...args);
    assert.equal(none.status, 2);
    assert.match(none.stderr, /no mode given: the first argument \(or --mode\) is plan, backup, restore or verify/);
  });
});

describe('6. inputs people bring from other actions', () => {
  test('timeout takes durations; an unknown input is named with the nearest real one', async () => {
    const ws = workspace(`  App:\n    remote_files:\n      "\${install_dir}/x": x\n`);
    const r = ok(
      await runAction(
        { mode: 'plan', domain: DOMAIN, 'install-dir': srv, timeout: '5m', proxy_host: 'jump.example', script: 'ls' },
        { workspace: ws },
      ),
    );
    assert.match(
      r.stdout,
      /::warning::input `proxy_host` is not an input of remote-files and is ignored: did you mean `proxy-host`\?/,
    );
    assert.match(r.stdout, /::warning::input `script` is not an input of remote-files and is ignored\n/);
    assert.doesNotMatch(r.stdout, /input `(timeout|mode|domain|install-dir)` is not/);
    failed(
      await runAction(inputs({ timeout: '2 minutes' }), { workspace: ws }),
      /input `timeout`: "2 minutes" is not a duration from 1 to 3600 seconds/,
    );
  });
});
