import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { runAction, type ActionResult } from '../helpers/run-action.js';
import { ok } from '../helpers/outcome.js';
import { asShell, rootSh, sshInputs, startSshd, type Sshd } from '../helpers/sshd.js';
import { testTempDir } from '../helpers/temp.js';

// Issue 21, through the bundle with a real sshd and a real bare origin: the most common failure of the
// workflow this action serves is backup → deploy fails → "Re-run jobs". The re-run checks out the
// triggering commit (without the salvage the first run pushed) and reaches the *rebuilt* server.

let server: Sshd;
let srv: string;
let holds = 0;
const DOMAIN = 'rerun.example';
const OTHER = 'other.example';
const ENV = { GITHUB_REF: 'refs/heads/main', GITHUB_REF_NAME: 'main' };

const git = (cwd: string, ...args: string[]) => execFileSync('git', ['-C', cwd, ...args], { encoding: 'utf8' }).trim();

before(async () => {
  server = await startSshd();
  srv = join(server.users.shell.scratch, 'rerun');
  asShell(`mkdir -p '${srv}'`);
});
after(async () => {
  // A test that failed while a backup was held must not leave it waiting forever.
  asShell(`rm -f '${srv}'/hold-*`);
  await server?.stop();
});

/** The old server's state: a 256 KiB database, a config, an upload. */
function oldServer(domain: string, conf = 'tuned\n'): void {
  asShell(
    `set -e; d='${srv}/${domain}'; rm -rf "$d"; mkdir -p "$d/uploads"
     head -c 262144 /dev/urandom > "$d/app.db"; printf '${conf}' > "$d/app.conf"; printf jpeg > "$d/uploads/a.jpg"`,
  );
}

/** A rebuild: the same names with a fresh install's content, and the login's home (with our marker) anew. */
function rebuild(domain: string): void {
  asShell(
    `set -e; d='${srv}/${domain}'; rm -rf "$d"; mkdir -p "$d/uploads"
     printf 'fresh schema' > "$d/app.db"; printf 'default\\n' > "$d/app.conf"; printf jpeg > "$d/uploads/a.jpg"
     rm -rf "$HOME/.local/state/remote-files"`,
  );
}

const serverFile = (domain: string, rel: string) => rootSh(`cat '${srv}/${domain}/${rel}'`);
const serverHash = (domain: string, rel: string) => rootSh(`sha256sum < '${srv}/${domain}/${rel}'`).split(' ')[0];

/**
 * A bare origin whose main holds the recipe; clones of it as actions/checkout makes them: the branch
 * `main` checked out at a given commit (a re-run's is the triggering one, not the tip).
 */
function repository(): { origin: string; first: string; clone: (at?: string) => string; tip: () => string } {
  const base = testTempDir('rf-rerun-');
  const origin = join(base, 'origin.git');
  execFileSync('git', ['init', '-q', '--bare', '-b', 'main', origin]);
  let n = 0;
  const clone = (at?: string) => {
    const dir = join(base, `clone-${n++}`);
    execFileSync('git', ['clone', '-q', origin, dir], { stdio: 'ignore' });
    if (at) git(dir, 'checkout', '-q', '-B', 'main', at);
    return dir;
  };
  const seed = join(base, 'seed');
  execFileSync('git', ['init', '-q', '-b', 'main', seed]);
  // The prepare command holds a backup (after it connected and took its baseline, before it fetches)
  // while `hold-<name>` exists on the server, `name` from input `vars`: how the tests make two runs
  // overlap, without timing.
  writeFileSync(
    join(seed, 'remote-files.yml'),
    `version: 1
recipes:
  App:
    remote_files:
      "\${install_dir}/\${domain}": app
    remote_prepare:
      - "if [ -e [% install_dir %]/hold-[% hold %] ]; then touch [% install_dir %]/held-[% hold %]; while [ -e [% install_dir %]/hold-[% hold %] ]; do sleep 0.1; done; fi"
`,
  );
  git(seed, 'add', '.');
  git(seed, '-c', 'user.name=t', '-c', 'user.email=t@t', 'commit', '-q', '-m', 'recipes');
  git(seed, 'push', '-q', origin, 'main');
  return { origin, first: git(origin, 'rev-parse', 'main'), clone, tip: () => git(origin, 'rev-parse', 'main') };
}

function inputs(mode: string, domain = DOMAIN, extra: Record<string, string> = {}): Record<string, string> {
  return sshInputs(
    server,
    { domain, installDir: srv },
    { mode, timeout: '30s', retries: '0', vars: 'hold=none', ...extra },
  );
}

const run = (ws: string, mode: string, domain = DOMAIN, extra: Record<string, string> = {}) =>
  runAction(inputs(mode, domain, extra), { workspace: ws, env: ENV });

function errorLine(r: ActionResult): string {
  assert.equal(r.code, 1, `exit ${r.code}\n${r.stdout}\n${r.stderr}`);
  const errors = r.stdout.split('\n').filter((l) => l.startsWith('::error::'));
  assert.equal(errors.length, 1, r.stdout);
  return errors[0]!.replace(/%0A/g, '\n').replace(/%25/g, '%');
}

/** The stored file as origin's main has it. */
const onOrigin = (origin: string, domain: string, rel: string) =>
  execFileSync('git', ['-C', origin, 'show', `main:data/${domain}/app/${rel}`]);

describe('a re-run never overwrites the salvage', () => {
  test('re-run from the triggering commit onto the rebuilt server: refused, the tip intact; skip → restore puts the salvage back → the next backup goes on', async () => {
    oldServer(DOMAIN);
    const dbHash = serverHash(DOMAIN, 'app.db');
    const repo = repository();
    const first = ok(await run(repo.clone(repo.first), 'backup'));
    assert.equal(first.outputs.pushed, 'true');
    assert.equal(first.outputs['server-check'], 'first');
    const salvaged = repo.tip();

    // The deploy rebuilt the server, then failed. "Re-run jobs": the same triggering commit, checked out again.
    rebuild(DOMAIN);
    const rerun = repo.clone(repo.first);
    const refused = await run(rerun, 'backup');
    const line = errorLine(refused);
    assert.match(line, /refusing the backup, nothing was written and the stored salvage \(made \S+\) is untouched/);
    assert.match(
      line,
      /this is not the server it came from: the marker remote-files left on it at the last backup is gone/,
    );
    assert.match(line, /`new-server: skip`.*`new-server: allow`/);
    assert.match(
      refused.stdout,
      new RegExp(
        `is behind main on origin for data/${DOMAIN.replace('.', '\\.')}: working from the salvage at the branch's tip, ${salvaged.slice(0, 7)}`,
      ),
    );
    assert.equal(repo.tip(), salvaged, 'nothing was pushed');
    assert.equal(
      createHashOf(onOrigin(repo.origin, DOMAIN, 'app.db')),
      dbHash,
      "the tip's salvage is the old server's",
    );

    // `new-server: skip`: the step succeeds without a backup, so the workflow goes on to its restore.
    const skipped = ok(await run(rerun, 'backup', DOMAIN, { 'new-server': 'skip' }));
    assert.equal(skipped.outputs['server-check'], 'skipped');
    assert.match(skipped.stdout, /::warning::backup skipped \(new-server: skip\)/);
    assert.equal(repo.tip(), salvaged, 'nothing was pushed');
    // The restore in the same job (its checkout still at the triggering commit, its data folder the tip's).
    const restored = ok(await run(rerun, 'restore'));
    assert.equal(restored.outputs['salvage-commit'], salvaged);
    assert.match(restored.stdout, new RegExp(`Restoring the salvage made \\S+ \\(commit ${salvaged.slice(0, 7)}\\)`));
    assert.equal(serverHash(DOMAIN, 'app.db'), dbHash, 'the old database is back');
    assert.equal(serverFile(DOMAIN, 'app.conf'), 'tuned\n');

    // The next backup knows the restored server holds this very salvage; the one after, that it is the same.
    const next = ok(await run(repo.clone(), 'backup'));
    assert.equal(next.outputs['server-check'], 'restored');
    const again = ok(await run(repo.clone(), 'backup'));
    assert.equal(again.outputs['server-check'], 'same');
  });

  test('checkout at the tip, host key kept across the rebuild: refused; `new-server: allow` backs the new server up on purpose', async () => {
    oldServer(DOMAIN);
    const repo = repository();
    ok(await run(repo.clone(), 'backup', DOMAIN, { 'new-server': 'allow' }));
    const salvaged = repo.tip();
    rebuild(DOMAIN);
    const ws = repo.clone();
    const line = errorLine(await run(ws, 'backup'));
    assert.match(line, /the marker remote-files left on it at the last backup is gone/);
    assert.doesNotMatch(line, /host key changed/, 'the host key was kept');
    assert.equal(repo.tip(), salvaged);

    const allowed = ok(await run(ws, 'backup', DOMAIN, { 'new-server': 'allow' }));
    assert.equal(allowed.outputs['server-check'], 'new');
    assert.equal(allowed.outputs.pushed, 'true');
    assert.match(allowed.stdout, /::warning::backing up a new server, as `new-server: allow` says/);
    assert.equal(onOrigin(repo.origin, DOMAIN, 'app.db').toString(), 'fresh schema');
    // From now on this is the salvage's server.
    assert.equal(ok(await run(repo.clone(), 'backup')).outputs['server-check'], 'same');
  });

  test('a backup that would replace most of the stored bytes is refused though no file is deleted', async () => {
    oldServer(DOMAIN);
    const repo = repository();
    ok(await run(repo.clone(), 'backup', DOMAIN, { 'new-server': 'allow' }));
    const salvaged = repo.tip();
    // The same server (its marker kept), but its database replaced by a near-empty one.
    asShell(`printf 'fresh schema' > '${srv}/${DOMAIN}/app.db'`);
    const line = errorLine(await run(repo.clone(), 'backup'));
    assert.match(
      line,
      /the backup would shrink the stored files from \d+ to \d+ bytes, losing 100% \(more than 50%; max-delete: 50%\)/,
    );
    assert.equal(repo.tip(), salvaged);
    // A raised max-delete takes it.
    ok(await run(repo.clone(), 'backup', DOMAIN, { 'max-delete': '100%' }));
    assert.equal(onOrigin(repo.origin, DOMAIN, 'app.db').toString(), 'fresh schema');
  });
});

describe('the server rule is the same in every store', () => {
  test('the workspace as the store (store: none; artifact and cache load into it the same way): a rebuilt server is refused', async () => {
    oldServer(DOMAIN);
    const ws = testTempDir('rf-rerun-none-');
    writeFileSync(
      join(ws, 'remote-files.yml'),
      `version: 1\nrecipes:\n  App:\n    remote_files:\n      "\${install_dir}/\${domain}": app\n`,
    );
    const none = { store: 'none', 'new-server': 'allow' };
    ok(await runAction(inputs('backup', DOMAIN, none), { workspace: ws }));
    const manifest = readFileSync(join(ws, 'data', DOMAIN, '.remote-files', 'manifest.json'), 'utf8');
    assert.match(
      manifest,
      /"server": \{"hostKey":"ssh-ed25519 SHA256:[^"]+","machine":"[0-9a-f]{64}","instance":"[0-9a-f]{32}"\}/,
    );
    rebuild(DOMAIN);
    const line = errorLine(await runAction(inputs('backup', DOMAIN, { store: 'none' }), { workspace: ws }));
    assert.match(
      line,
      /this is not the server it came from: the marker remote-files left on it at the last backup is gone/,
    );
    assert.equal(readFileSync(join(ws, 'data', DOMAIN, '.remote-files', 'manifest.json'), 'utf8'), manifest);
  });
});

describe('pushes that race', () => {
  test("another domain's backup pushed meanwhile: re-applied on the new tip; the same domain's: stopped, its salvage kept", async () => {
    oldServer(DOMAIN);
    oldServer(OTHER);
    const repo = repository();
    ok(await run(repo.clone(), 'backup', DOMAIN, { 'new-server': 'allow' }));

    // OTHER's backup is held after its baseline while DOMAIN's pushes.
    const held = await holding(repo.clone(), OTHER);
    asShell(`printf 'tuned twice\\n' > '${srv}/${DOMAIN}/app.conf'`);
    ok(await run(repo.clone(), 'backup'));
    const other = ok(await held.release());
    assert.equal(other.outputs.pushed, 'true');
    assert.match(
      other.stdout,
      /Push to main failed \(attempt 1 of 5\), re-applying data\/other\.example on the branch's tip/,
    );
    assert.equal(onOrigin(repo.origin, DOMAIN, 'app.conf').toString(), 'tuned twice\n');
    assert.ok(onOrigin(repo.origin, OTHER, 'app.db').length > 0, 'both domains are on main');

    // Two backups of one domain: the one that pushes second must not replace what the first pushed.
    const second = await holding(repo.clone(), DOMAIN);
    asShell(`printf 'third\\n' > '${srv}/${DOMAIN}/app.conf'`);
    ok(await run(repo.clone(), 'backup'));
    const pushedFirst = repo.tip();
    asShell(`printf 'fourth\\n' > '${srv}/${DOMAIN}/app.conf'`);
    const line = errorLine(await second.release());
    assert.match(
      line,
      new RegExp(
        `store: commit stopped: data/rerun\\.example changed on main while this backup ran \\(now at ${pushedFirst.slice(0, 7)}`,
      ),
    );
    assert.equal(repo.tip(), pushedFirst);
    assert.equal(onOrigin(repo.origin, DOMAIN, 'app.conf').toString(), 'third\n');

    // The same from a detached checkout (a pull request's, a tag's), whose commit goes on the fetched tip.
    const detached = repo.clone();
    git(detached, 'checkout', '-q', '--detach');
    const third = await holding(detached, DOMAIN);
    asShell(`printf 'fifth\n' > '${srv}/${DOMAIN}/app.conf'`);
    ok(await run(repo.clone(), 'backup'));
    const pushedSecond = repo.tip();
    asShell(`printf 'sixth\n' > '${srv}/${DOMAIN}/app.conf'`);
    assert.match(errorLine(await third.release()), /store: commit stopped: data\/rerun\.example changed on main/);
    assert.equal(repo.tip(), pushedSecond);
    assert.equal(onOrigin(repo.origin, DOMAIN, 'app.conf').toString(), 'fifth\n');
  });
});

describe('restore says what it restores', () => {
  test('a checkout behind the tip fails naming both commits; `salvage-ref` restores the older salvage on purpose', async () => {
    oldServer(DOMAIN, 'version one\n');
    const repo = repository();
    ok(await run(repo.clone(), 'backup', DOMAIN, { 'new-server': 'allow' }));
    const one = repo.tip();
    asShell(`printf 'version two\\n' > '${srv}/${DOMAIN}/app.conf'`);
    ok(await run(repo.clone(), 'backup'));
    const two = repo.tip();

    const stale = repo.clone(one);
    const line = errorLine(await run(stale, 'restore'));
    assert.match(
      line,
      new RegExp(
        `the checkout \\(${one.slice(0, 7)} \\(\\S+\\)\\) is behind main on origin \\(${two.slice(0, 7)} \\(\\S+\\)\\) for data/rerun\\.example`,
      ),
    );
    assert.match(line, new RegExp(`set \`salvage-ref: ${one.slice(0, 7)}\``));
    assert.equal(serverFile(DOMAIN, 'app.conf'), 'version two\n', 'nothing was restored');

    const older = ok(await run(stale, 'restore', DOMAIN, { 'salvage-ref': one }));
    assert.equal(older.outputs['salvage-commit'], one);
    assert.match(older.outputs['salvage-date'] ?? '', /^\d{4}-\d\d-\d\dT/);
    assert.match(older.summary, new RegExp(`from commit ${one.slice(0, 7)}.*as .salvage-ref: ${one}. asks`));
    assert.equal(serverFile(DOMAIN, 'app.conf'), 'version one\n');

    const newest = ok(await run(repo.clone(), 'restore'));
    assert.equal(newest.outputs['salvage-commit'], two);
    assert.match(
      newest.summary,
      new RegExp(`using the committed copy in data/rerun\\.example from commit ${two.slice(0, 7)}`),
    );
    assert.equal(serverFile(DOMAIN, 'app.conf'), 'version two\n');

    const unknown = errorLine(await run(stale, 'restore', DOMAIN, { 'salvage-ref': 'no-such-ref' }));
    assert.match(unknown, /input `salvage-ref`: "no-such-ref" names no commit here or on origin/);
  });
});

/** Starts a backup held in its prepare command (see repository) and returns once it is held. */
async function holding(ws: string, domain: string): Promise<{ release: () => Promise<ActionResult> }> {
  const name = `${domain}-${holds++}`;
  const hold = `${srv}/hold-${name}`;
  const held = `${srv}/held-${name}`;
  asShell(`touch '${hold}'`);
  const running = run(ws, 'backup', domain, { vars: `hold=${name}` });
  for (let i = 0; !existsSync(held); i++) {
    if (i > 600) throw new Error(`the backup of ${domain} never reached its prepare command`);
    await sleep(100);
  }
  return {
    release: async () => {
      asShell(`rm -f '${hold}' '${held}'`);
      return running;
    },
  };
}

function createHashOf(data: Buffer): string {
  return execFileSync('sha256sum', { input: data, encoding: 'utf8' }).split(' ')[0]!;
}
