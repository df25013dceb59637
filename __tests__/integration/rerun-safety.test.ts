import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { runAction, type ActionResult } from '../helpers/run-action.js';
import { ok } from '../helpers/outcome.js';
import { asShell, rootSh, sshInputs, startSshd, type Sshd } from '../helpers/sshd.js';
import { testTempDir } from '../helpers/temp.js';
import { treePicture } from '../helpers/tree.js';

// Issue 21, through the bundle with a real sshd and a real bare origin: the most common failure of the
// workflow this action serves is backup → deploy fails → "Re-run jobs". The re-run checks out the
// triggering commit (without the salvage the first run pushed) and reaches the *rebuilt* server.

let server: Sshd;
let srv: string;
let holds = 0;
// The marker a backup leaves lives in the login's real home, one file per domain, shared by every sshd
// the tests start: names of this run's own keep another run of this file (another checkout's) out of it.
const RUN = randomBytes(3).toString('hex');
const DOMAIN = `rerun-${RUN}.example`;
const OTHER = `other-${RUN}.example`;
/** A domain's data folder as it appears in a RegExp. */
const folderRe = (domain: string) => `data/${domain.replace(/\./g, '\\.')}`;
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

/**
 * A rebuild: the same names with a fresh install's content, and the login's home anew — for this
 * domain, that is its marker gone (only its own: other suites' backups use the same login meanwhile).
 */
function rebuild(domain: string): void {
  asShell(
    `set -e; d='${srv}/${domain}'; rm -rf "$d"; mkdir -p "$d/uploads"
     printf 'fresh schema' > "$d/app.db"; printf 'default\\n' > "$d/app.conf"; printf jpeg > "$d/uploads/a.jpg"
     rm -f "$HOME/.local/state/remote-files/${domain}"`,
  );
}

const serverFile = (domain: string, rel: string) => rootSh(`cat '${srv}/${domain}/${rel}'`);
const serverHash = (domain: string, rel: string) => rootSh(`sha256sum < '${srv}/${domain}/${rel}'`).split(' ')[0];

/** How a workspace is checked out; see repository(). */
type Checkout = 'full' | 'shallow';

/**
 * A bare origin whose main holds the recipe; clones of it as actions/checkout makes them: the branch
 * `main` checked out at a given commit (a re-run's is the triggering one, not the tip). `full`: a whole
 * clone whose origin/main is the tip. `shallow`: what actions/checkout really makes (fetch-depth 1): the
 * one commit fetched by id, origin/main set to it, main checked out from it — the history that would show
 * how the commit and the tip relate is not there (see isBehind in src/store/commit-baseline.ts).
 * `seedDate`: the recipe commit's author and committer date (the triggering commit of the tests' re-runs).
 */
function repository(seedDate?: string): {
  origin: string;
  first: string;
  clone: (at?: string, how?: Checkout) => string;
  tip: () => string;
} {
  const base = testTempDir('rf-rerun-');
  const origin = join(base, 'origin.git');
  execFileSync('git', ['init', '-q', '--bare', '-b', 'main', origin]);
  let n = 0;
  const clone = (at?: string, how: Checkout = 'full') => {
    const dir = join(base, `clone-${n++}`);
    if (how === 'shallow') {
      const sha = at ?? git(origin, 'rev-parse', 'main');
      execFileSync('git', ['init', '-q', '-b', 'main', dir]);
      git(dir, 'remote', 'add', 'origin', `file://${origin}`);
      git(dir, 'fetch', '-q', '--no-tags', '--depth=1', 'origin', `+${sha}:refs/remotes/origin/main`);
      git(dir, 'checkout', '-q', '--force', '-B', 'main', 'refs/remotes/origin/main');
      return dir;
    }
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
  const dated = seedDate ? { GIT_AUTHOR_DATE: seedDate, GIT_COMMITTER_DATE: seedDate } : {};
  execFileSync('git', ['-C', seed, '-c', 'user.name=t', '-c', 'user.email=t@t', 'commit', '-q', '-m', 'recipes'], {
    env: { ...process.env, ...dated },
  });
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
  for (const how of ['full', 'shallow'] as const) {
    test(`re-run from the triggering commit (${how === 'full' ? 'a full clone' : "actions/checkout's depth-1 fetch"}) onto the rebuilt server: refused, the tip intact; skip → restore puts the salvage back → the next backup goes on`, async () => {
      oldServer(DOMAIN);
      const dbHash = serverHash(DOMAIN, 'app.db');
      // The triggering commit was pushed before the workflow ran: a shallow checkout tells a newer tip by its date.
      const repo = repository(minutesAgo(60));
      const first = ok(await run(repo.clone(repo.first, how), 'backup'));
      assert.equal(first.outputs.pushed, 'true');
      assert.equal(first.outputs['server-check'], 'first');
      const salvaged = repo.tip();

      // The deploy rebuilt the server, then failed. "Re-run jobs": the same triggering commit, checked out again.
      rebuild(DOMAIN);
      const rerun = repo.clone(repo.first, how);
      if (how === 'shallow') assert.equal(git(rerun, 'rev-parse', '--is-shallow-repository'), 'true');
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
          `is behind main on origin for ${folderRe(DOMAIN)}: working from the salvage at the branch's tip, ${salvaged.slice(0, 7)}`,
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
      const next = ok(await run(repo.clone(undefined, how), 'backup'));
      assert.equal(next.outputs['server-check'], 'restored');
      const again = ok(await run(repo.clone(undefined, how), 'backup'));
      assert.equal(again.outputs['server-check'], 'same');
    });
  }

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

  test('a backup that would replace most of the stored bytes is refused though no file is deleted, before anything is written; `new-server: allow` left set keeps the guard for the same server', async () => {
    oldServer(DOMAIN);
    const repo = repository();
    ok(await run(repo.clone(), 'backup', DOMAIN, { 'new-server': 'allow' }));
    const salvaged = repo.tip();
    // The same server (its marker kept), but its database replaced by a near-empty one.
    asShell(`printf 'fresh schema' > '${srv}/${DOMAIN}/app.db'`);
    // One workspace that holds the salvage: what a refused backup would have written, it would have written here.
    const ws = repo.clone();
    const untouched = workspacePicture(ws);
    assert.ok(untouched.folder.has('app/app.db') && untouched.folder.has('.remote-files/manifest.json'));
    const shrink =
      /the backup would shrink the stored files from \d+ to \d+ bytes, losing 100% \(more than 50%; max-delete: 50%\)/;
    const refused = await run(ws, 'backup');
    assert.match(errorLine(refused), shrink);
    assert.equal(refused.outputs['server-check'], 'same');
    assert.deepEqual(workspacePicture(ws), untouched, 'nothing was written to the data folder, the index or HEAD');
    assert.equal(repo.tip(), salvaged);

    // `new-server: allow` left set in the workflow lifts the guard only for a server it lets in as new:
    // this is the salvage's own server, so its shrunk database is refused all the same.
    const allowLeftSet = await run(ws, 'backup', DOMAIN, { 'new-server': 'allow' });
    assert.match(errorLine(allowLeftSet), shrink);
    assert.equal(allowLeftSet.outputs['server-check'], 'same');
    assert.doesNotMatch(allowLeftSet.stdout, /backing up a new server/);
    assert.deepEqual(workspacePicture(ws), untouched, 'nothing was written to the data folder, the index or HEAD');
    assert.equal(repo.tip(), salvaged);

    // A raised max-delete takes it.
    ok(await run(ws, 'backup', DOMAIN, { 'max-delete': '100%' }));
    assert.equal(onOrigin(repo.origin, DOMAIN, 'app.db').toString(), 'fresh schema');
  });
});

describe('depth-1 checkouts: ancestry decides; only where the history is cut off (a merge) does the date', () => {
  test("a pull request's merge checkout (detached at a merge of the tip) is not behind: its own salvage is restored", async () => {
    oldServer(DOMAIN, 'version one\n');
    const repo = repository(minutesAgo(60));
    ok(await run(repo.clone(), 'backup', DOMAIN, { 'new-server': 'allow' }));
    const tip = repo.tip();
    // The pull request edits the stored config (same size: the manifest's sizes still hold); GitHub merges
    // it with main's tip into refs/pull/1/merge, whose folder then differs from the tip's.
    const author = repo.clone();
    git(author, 'checkout', '-q', '-b', 'feature');
    writeFileSync(join(author, 'data', DOMAIN, 'app', 'app.conf'), 'version PR1\n');
    git(author, '-c', 'user.name=t', '-c', 'user.email=t@t', 'commit', '-q', '-am', 'tune the stored config');
    git(author, 'checkout', '-q', '--detach', tip);
    git(
      author,
      '-c',
      'user.name=t',
      '-c',
      'user.email=t@t',
      'merge',
      '-q',
      '--no-ff',
      '-m',
      'Merge pull request #1',
      'feature',
    );
    git(author, 'push', '-q', 'origin', 'feature', 'HEAD:refs/pull/1/merge');
    const merge = git(author, 'rev-parse', 'HEAD');
    assert.equal(git(author, 'rev-parse', 'HEAD^1'), tip);

    // actions/checkout on pull_request: the merge commit alone, detached.
    const ws = join(testTempDir('rf-rerun-pr-'), 'ws');
    execFileSync('git', ['init', '-q', ws]);
    git(ws, 'remote', 'add', 'origin', `file://${repo.origin}`);
    git(ws, 'fetch', '-q', '--no-tags', '--depth=1', 'origin', `+${merge}:refs/remotes/pull/1/merge`);
    git(ws, 'checkout', '-q', '--force', 'refs/remotes/pull/1/merge');
    assert.equal(git(ws, 'rev-parse', '--is-shallow-repository'), 'true');
    const pr = {
      GITHUB_REF: 'refs/pull/1/merge',
      GITHUB_REF_NAME: '1/merge',
      GITHUB_HEAD_REF: 'feature',
      GITHUB_BASE_REF: 'main',
    };
    // Checked against main (commit-branch), whose tip the checkout cannot show to be its parent. The
    // server's config drifted (another size), so the restore writes the stored one: the merge's.
    asShell(`printf 'drifted on the server\\n' > '${srv}/${DOMAIN}/app.conf'`);
    const restored = ok(
      await runAction(inputs('restore', DOMAIN, { 'commit-branch': 'main' }), { workspace: ws, env: pr }),
    );
    assert.equal(restored.outputs['salvage-commit'], merge);
    assert.doesNotMatch(restored.stdout, /is behind/);
    assert.equal(readFileSync(join(ws, 'data', DOMAIN, 'app', 'app.conf'), 'utf8'), 'version PR1\n');
    assert.equal(serverFile(DOMAIN, 'app.conf'), 'version PR1\n');
    assert.equal(repo.tip(), tip);
  });

  // Found by this test: isBehind once decided by committer dates in a depth-1 checkout, and a triggering
  // commit dated after the salvage (a clock ahead; the same second also) passed as not behind, so the
  // re-run's push was re-applied on the tip, replacing the salvage (exit 0). Ancestry decides now.
  test("a re-run whose triggering commit is dated after the salvage (its committer's clock ahead): refused all the same, the tip intact", async () => {
    oldServer(DOMAIN);
    const dbHash = serverHash(DOMAIN, 'app.db');
    const repo = repository(minutesAgo(-30));
    ok(await run(repo.clone(repo.first, 'shallow'), 'backup', DOMAIN, { 'new-server': 'allow' }));
    const salvaged = repo.tip();
    rebuild(DOMAIN);
    const rerun = await run(repo.clone(repo.first, 'shallow'), 'backup');
    assert.equal(repo.tip(), salvaged, `nothing was pushed\n${rerun.stdout}`);
    assert.equal(createHashOf(onOrigin(repo.origin, DOMAIN, 'app.db')), dbHash);
    assert.match(errorLine(rerun), /the marker remote-files left on it at the last backup is gone/);
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
    const stored = treePicture(join(ws, 'data', DOMAIN));
    rebuild(DOMAIN);
    const line = errorLine(await runAction(inputs('backup', DOMAIN, { store: 'none' }), { workspace: ws }));
    assert.match(
      line,
      /this is not the server it came from: the marker remote-files left on it at the last backup is gone/,
    );
    assert.equal(readFileSync(join(ws, 'data', DOMAIN, '.remote-files', 'manifest.json'), 'utf8'), manifest);
    assert.deepEqual(treePicture(join(ws, 'data', DOMAIN)), stored, 'no stored file was written or removed');
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
      new RegExp(`Push to main failed \\(attempt 1 of 5\\), re-applying ${folderRe(OTHER)} on the branch's tip`),
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
        `store: commit stopped: ${folderRe(DOMAIN)} changed on main while this backup ran \\(now at ${pushedFirst.slice(0, 7)}`,
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
    assert.match(
      errorLine(await third.release()),
      new RegExp(`store: commit stopped: ${folderRe(DOMAIN)} changed on main`),
    );
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
        `the checkout \\(${one.slice(0, 7)} \\(\\S+\\)\\) is behind main on origin \\(${two.slice(0, 7)} \\(\\S+\\)\\) for ${folderRe(DOMAIN)}`,
      ),
    );
    assert.match(line, new RegExp(`set \`salvage-ref: ${one.slice(0, 7)}\``));
    assert.equal(serverFile(DOMAIN, 'app.conf'), 'version two\n', 'nothing was restored');

    const older = ok(await run(stale, 'restore', DOMAIN, { 'salvage-ref': one }));
    assert.equal(older.outputs['salvage-commit'], one);
    // The summary names the salvage by its commit and the commit's date; `salvage-date` is when the
    // salvage was made (the manifest's time, README's Outputs).
    const oneDate = git(repo.origin, 'show', '-s', '--format=%cI', one);
    assert.match(oneDate, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d/);
    const madeOne = older.outputs['salvage-date'];
    assert.match(madeOne ?? '', /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d/);
    assert.match(
      older.stdout,
      new RegExp(`Restoring the salvage made ${escape(madeOne!)} \\(commit ${one.slice(0, 7)}\\)`),
    );
    assert.match(
      older.summary,
      new RegExp(`from commit ${one.slice(0, 7)} \\(${escape(oneDate)}\\).*as .salvage-ref: ${one}. asks`),
    );
    assert.equal(serverFile(DOMAIN, 'app.conf'), 'version one\n');

    const newest = ok(await run(repo.clone(), 'restore'));
    assert.equal(newest.outputs['salvage-commit'], two);
    assert.match(
      newest.summary,
      new RegExp(
        `using the committed copy in ${folderRe(DOMAIN)} from commit ${two.slice(0, 7)} \\(\\d{4}-\\d\\d-\\d\\dT[^)]+\\)`,
      ),
    );
    assert.equal(serverFile(DOMAIN, 'app.conf'), 'version two\n');

    // A tag or a branch on origin names the older salvage too, from a checkout that has neither
    // (actions/checkout fetches one commit, no tags): an annotated tag is taken as the commit it tags.
    git(repo.origin, '-c', 'user.name=t', '-c', 'user.email=t@t', 'tag', '-a', '-m', 'the first salvage', 'v1', one);
    git(repo.origin, 'branch', 'keep-one', one);
    for (const ref of ['v1', 'keep-one']) {
      asShell(`printf 'version two\\n' > '${srv}/${DOMAIN}/app.conf'`);
      const ws = repo.clone(undefined, 'shallow');
      const byName = ok(await run(ws, 'restore', DOMAIN, { 'salvage-ref': ref }));
      assert.equal(byName.outputs['salvage-commit'], one, ref);
      assert.equal(byName.outputs['salvage-date'], madeOne, ref);
      assert.match(
        byName.summary,
        new RegExp(`from commit ${one.slice(0, 7)} \\(${escape(oneDate)}\\).*as .salvage-ref: ${ref}. asks`),
      );
      assert.equal(serverFile(DOMAIN, 'app.conf'), 'version one\n', `salvage-ref: ${ref} restored the older salvage`);
    }

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

/**
 * What a refused backup must leave as it was: every file of the domain's data folder (content hashes,
 * the manifest among them), what git has staged, and HEAD.
 */
function workspacePicture(ws: string): { folder: Map<string, string>; status: string; head: string } {
  return {
    folder: treePicture(join(ws, 'data', DOMAIN)),
    status: git(ws, 'status', '--porcelain', '--untracked-files=all'),
    head: git(ws, 'rev-parse', 'HEAD'),
  };
}

/** `text` matched literally in a RegExp. */
function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** An ISO 8601 date `n` minutes before now, as git takes it for a commit's date. */
function minutesAgo(n: number): string {
  return new Date(Date.now() - n * 60_000).toISOString();
}

function createHashOf(data: Buffer): string {
  return execFileSync('sha256sum', { input: data, encoding: 'utf8' }).split(' ')[0]!;
}
