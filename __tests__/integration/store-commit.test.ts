import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { after, describe, test } from 'node:test';
import { UserError } from '../../src/errors.js';
import { checkCommitSizes, CommitStore, type CommitOptions } from '../../src/store/commit.js';
import type { StoreContext } from '../../src/store/types.js';
import { testTempDir } from '../helpers/temp.js';

// The commit store against real git: every "origin" is a bare repository in a temp folder and every
// workspace a clone of it, as actions/checkout leaves one.

const root = testTempDir('rf-commit-');
after(() => rmSync(root, { recursive: true, force: true }));

const MiB = 1024 * 1024;
const DOMAIN = 'example.com';
let seq = 0;

/** git for the test's own setup, under a fixed identity so the store's author is told apart. */
function git(cwd: string, ...args: string[]): string {
  const env = { ...process.env };
  for (const k of [
    'GIT_AUTHOR_NAME',
    'GIT_AUTHOR_EMAIL',
    'GIT_COMMITTER_NAME',
    'GIT_COMMITTER_EMAIL',
    'GIT_DIR',
    'GIT_INDEX_FILE',
    'GIT_WORK_TREE',
  ])
    delete env[k];
  return execFileSync(
    'git',
    ['-c', 'user.name=Tester', '-c', 'user.email=tester@example.org', '-c', 'core.quotepath=off', ...args],
    { cwd, env, encoding: 'utf8' },
  ).trim();
}

/** A bare origin whose main holds a README and an older snapshot of example.com. */
function makeOrigin(): string {
  const origin = join(root, `origin-${++seq}.git`);
  git(root, 'init', '-q', '--bare', '-b', 'main', origin);
  const seed = join(root, `seed-${seq}`);
  git(root, 'init', '-q', '-b', 'main', seed);
  writeFiles(seed, { 'README.md': 'readme\n', [`data/${DOMAIN}/old.txt`]: 'old\n' });
  git(seed, 'add', '-A');
  git(seed, 'commit', '-q', '-m', 'seed');
  git(seed, 'push', '-q', origin, 'main');
  return origin;
}

function clone(origin: string): string {
  const ws = join(root, `ws-${++seq}`);
  git(root, 'clone', '-q', origin, ws);
  return ws;
}

function writeFiles(dir: string, files: Record<string, string>): void {
  for (const [rel, content] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, rel)), { recursive: true });
    writeFileSync(join(dir, rel), content);
  }
}

interface Ctx extends StoreContext {
  warnings: string[];
  infos: string[];
}

function context(ws: string, domain = DOMAIN): Ctx {
  const warnings: string[] = [];
  const infos: string[] = [];
  return {
    workspace: ws,
    dataDir: 'data',
    domain,
    domainDir: join(ws, 'data', domain),
    info: (m) => infos.push(m),
    warning: (m) => warnings.push(m),
    warnings,
    infos,
  };
}

function store(opts: Partial<CommitOptions> = {}): CommitStore {
  return new CommitStore({
    message: '',
    userName: '',
    userEmail: '',
    branch: '',
    push: true,
    pushAttempts: 5,
    env: {},
    ...opts,
  });
}

const status = (ws: string) =>
  execFileSync('git', ['status', '--porcelain', '--untracked-files=all'], { cwd: ws, encoding: 'utf8' })
    .split('\n')
    .filter(Boolean)
    .sort();
const tip = (origin: string, branch = 'main') => git(origin, 'rev-parse', `refs/heads/${branch}`);
const remoteFiles = (origin: string, rev: string, path = '.') =>
  git(origin, 'ls-tree', '-r', '--name-only', rev, '--', path).split('\n').filter(Boolean).sort();
const show = (origin: string, rev: string, path: string) => git(origin, 'show', `${rev}:${path}`);

describe('commit store: what is committed', () => {
  const origin = makeOrigin();
  const ws = clone(origin);
  let first = '';

  test('commits and pushes only the domain folder; other changes of the user stay as they were', async () => {
    writeFiles(ws, {
      'README.md': 'edited by the user\n',
      'notes.txt': 'untracked\n',
      'staged.txt': 'staged\n',
      '.gitignore': '.env\n',
    });
    git(ws, 'add', 'staged.txt');
    rmSync(join(ws, 'data', DOMAIN, 'old.txt'));
    writeFiles(join(ws, 'data', DOMAIN), {
      'app/ünï cödé.txt': 'unicode\n',
      'app/.env': 'SECRET=1\n',
      'db/db.sqlite': 'sqlite\n',
    });
    const prevHead = git(ws, 'rev-parse', 'HEAD');
    process.env.GIT_AUTHOR_NAME = 'Someone From The Environment';
    const ctx = context(ws);
    let r;
    try {
      r = await store().save(ctx, true);
    } finally {
      delete process.env.GIT_AUTHOR_NAME;
    }
    first = r.outputs['commit-sha']!;
    assert.match(first, /^[0-9a-f]{40}$/);
    assert.equal(r.outputs.pushed, 'true');
    assert.match(r.summary, new RegExp(`${first.slice(0, 7)}.*main`));
    assert.equal(tip(origin), first, 'origin/main is the new commit');
    assert.equal(git(ws, 'rev-parse', 'HEAD'), first, 'the checkout ends on the pushed commit');
    assert.equal(git(ws, 'rev-parse', `${first}^`), prevHead);
    assert.deepEqual(
      git(ws, 'show', '--name-status', '--format=', first).split('\n').sort(),
      [
        'A\tdata/example.com/app/.env',
        'A\tdata/example.com/app/ünï cödé.txt',
        'A\tdata/example.com/db/db.sqlite',
        'D\tdata/example.com/old.txt',
      ],
      'exactly the folder, deletions and git-ignored salvage included',
    );
    assert.equal(show(origin, 'main', 'README.md'), 'readme', 'the user edit is not pushed');
    assert.deepEqual(
      status(ws),
      [' M README.md', '?? .gitignore', '?? notes.txt', 'A  staged.txt'],
      'nothing of the folder left to stage',
    );
    assert.equal(readFileSync(join(ws, 'README.md'), 'utf8'), 'edited by the user\n');
    assert.deepEqual(ctx.warnings, []);
  });

  test('the default message names the domain and skips CI; the author is the bot, whatever the environment says', () => {
    assert.equal(git(origin, 'log', '-1', '--format=%s', first), 'remote-files: salvage of example.com [skip ci]');
    assert.equal(
      git(origin, 'log', '-1', '--format=%an <%ae>|%cn <%ce>', first),
      'github-actions[bot] <41898282+github-actions[bot]@users.noreply.github.com>|github-actions[bot] <41898282+github-actions[bot]@users.noreply.github.com>',
    );
  });

  test('nothing changed: no commit, no push', async () => {
    const r = await store().save(context(ws), false);
    assert.deepEqual(r.outputs, { 'commit-sha': '', pushed: 'false' });
    assert.match(r.summary, /nothing to commit/);
    assert.equal(tip(origin), first);
    assert.equal(git(ws, 'rev-parse', 'HEAD'), first);
  });

  test('message and author from the options; the repository config is left alone', async () => {
    writeFiles(join(ws, 'data', DOMAIN), { 'db/db.sqlite': 'sqlite v2\n' });
    const r = await store({ message: 'salvage: nightly', userName: 'Ops Bot', userEmail: 'ops@example.org' }).save(
      context(ws),
      true,
    );
    const sha = r.outputs['commit-sha']!;
    assert.equal(tip(origin), sha);
    assert.equal(git(origin, 'log', '-1', '--format=%B', sha), 'salvage: nightly');
    assert.equal(
      git(origin, 'log', '-1', '--format=%an <%ae>|%cn <%ce>', sha),
      'Ops Bot <ops@example.org>|Ops Bot <ops@example.org>',
    );
    assert.throws(() => git(ws, 'config', '--local', 'user.name'), 'no user.name written to .git/config');
  });

  test('push: false commits locally and leaves origin as it was', async () => {
    const before = tip(origin);
    writeFiles(join(ws, 'data', DOMAIN), { 'db/db.sqlite': 'sqlite v3\n' });
    const r = await store({ push: false }).save(context(ws), true);
    const sha = r.outputs['commit-sha']!;
    assert.match(sha, /^[0-9a-f]{40}$/);
    assert.equal(r.outputs.pushed, 'false');
    assert.equal(git(ws, 'rev-parse', 'HEAD'), sha);
    assert.equal(git(ws, 'show', `${sha}:data/example.com/db/db.sqlite`), 'sqlite v3');
    assert.equal(tip(origin), before);
  });

  test('a folder emptied by the salvage is removed from the branch', async () => {
    const before = tip(origin);
    rmSync(join(ws, 'data', DOMAIN), { recursive: true });
    mkdirSync(join(ws, 'data', DOMAIN));
    const r = await store().save(context(ws), true);
    assert.equal(tip(origin), r.outputs['commit-sha']);
    assert.equal(git(origin, 'rev-parse', 'main^'), git(ws, 'rev-parse', 'HEAD^'));
    assert.deepEqual(remoteFiles(origin, 'main'), ['README.md']);
    assert.notEqual(before, tip(origin));
  });

  test('load finds the committed copy by its manifest', async () => {
    assert.equal((await store().load(context(ws))).found, false);
    writeFiles(join(ws, 'data', DOMAIN), { '.remote-files/manifest.json': '{}' });
    const r = await store().load(context(ws));
    assert.equal(r.found, true);
    // The checkout's commit is the salvage's (its folder on origin's tip is the same: not behind).
    assert.deepEqual(Object.keys(r.outputs), ['salvage-commit', 'salvage-date']);
    assert.equal(r.outputs['salvage-commit'], git(ws, 'rev-parse', 'HEAD'));
    assert.equal((await store().load(context(ws, 'other.org'))).found, false);
  });
});

describe('commit store: branches', () => {
  test('detached HEAD: the branch comes from GITHUB_HEAD_REF, else GITHUB_REF_NAME, else an error naming commit-branch', async () => {
    const origin = makeOrigin();
    // A pull request's head branch that has moved on from main: the salvage goes on its tip, not on the
    // detached checkout (which, for a pull request, is a merge commit that must not be pushed).
    const other = clone(origin);
    git(other, 'checkout', '-q', '-b', 'feature');
    writeFiles(other, { 'feature.txt': 'feature\n' });
    git(other, 'add', '-A');
    git(other, 'commit', '-q', '-m', 'feature work');
    git(other, 'push', '-q', 'origin', 'feature');
    const featureTip = tip(origin, 'feature');

    const ws = clone(origin);
    git(ws, 'checkout', '-q', '--detach');
    const detachedAt = git(ws, 'rev-parse', 'HEAD');
    writeFiles(join(ws, 'data', DOMAIN), { 'a.txt': 'a\n' });

    const r = await store({
      env: { GITHUB_HEAD_REF: 'feature', GITHUB_REF: 'refs/pull/7/merge', GITHUB_REF_NAME: '7/merge' },
    }).save(context(ws), true);
    const sha = r.outputs['commit-sha']!;
    assert.equal(tip(origin, 'feature'), sha);
    assert.equal(git(origin, 'rev-parse', `${sha}^`), featureTip);
    assert.equal(show(origin, sha, 'feature.txt'), 'feature');
    assert.equal(show(origin, sha, 'data/example.com/a.txt'), 'a');
    assert.equal(tip(origin), git(origin, 'rev-parse', `${detachedAt}`), 'main is untouched');
    assert.equal(git(ws, 'rev-parse', 'HEAD'), sha);
    assert.throws(() => git(ws, 'symbolic-ref', '-q', 'HEAD'), 'the checkout stays detached');

    writeFiles(join(ws, 'data', DOMAIN), { 'a.txt': 'a2\n' });
    const r2 = await store({ env: { GITHUB_REF: 'refs/heads/main', GITHUB_REF_NAME: 'main' } }).save(context(ws), true);
    assert.equal(tip(origin), r2.outputs['commit-sha']);
    assert.equal(show(origin, 'main', 'data/example.com/a.txt'), 'a2');
    assert.equal(git(origin, 'rev-parse', 'main^'), detachedAt);

    writeFiles(join(ws, 'data', DOMAIN), { 'a.txt': 'a3\n' });
    for (const env of [{}, { GITHUB_REF: 'refs/tags/v1.0', GITHUB_REF_NAME: 'v1.0' }]) {
      await assert.rejects(store({ env }).save(context(ws), true), (err: Error) => {
        assert.ok(err instanceof UserError);
        assert.match(err.message, /detached/);
        assert.match(err.message, /`commit-branch`/);
        return true;
      });
    }
    assert.equal(show(origin, 'main', 'data/example.com/a.txt'), 'a2', 'nothing pushed on error');

    const r3 = await store({ branch: 'salvage', env: {} }).save(context(ws), true);
    assert.equal(
      tip(origin, 'salvage'),
      r3.outputs['commit-sha'],
      'commit-branch works in a detached checkout and creates the branch',
    );
    assert.equal(show(origin, 'salvage', 'data/example.com/a.txt'), 'a3');
  });

  test('a rejected push is re-applied on the new tip, replacing only our folder and keeping the rest', async () => {
    const origin = makeOrigin();
    // Shallow, as actions/checkout clones by default.
    const ws = join(root, `ws-${++seq}`);
    git(root, 'clone', '-q', '--depth', '1', `file://${origin}`, ws);
    const other = clone(origin);
    writeFiles(other, {
      'other.txt': 'pushed first\n',
      'data/other.org/x.txt': 'other domain\n',
      [`data/${DOMAIN}/from-other.txt`]: 'stale copy\n',
    });
    git(other, 'add', '-A');
    git(other, 'commit', '-q', '-m', 'other clone');
    git(other, 'push', '-q', 'origin', 'main');
    const otherTip = tip(origin);

    rmSync(join(ws, 'data', DOMAIN, 'old.txt'));
    writeFiles(join(ws, 'data', DOMAIN), { 'new.txt': 'ours\n' });
    const ctx = context(ws);
    const r = await store().save(ctx, true);
    const sha = r.outputs['commit-sha']!;
    assert.equal(r.outputs.pushed, 'true');
    assert.equal(tip(origin), sha);
    assert.equal(git(origin, 'rev-parse', `${sha}^`), otherTip, 'built on the tip the other clone pushed');
    assert.deepEqual(remoteFiles(origin, sha), [
      'README.md',
      'data/example.com/new.txt',
      'data/other.org/x.txt',
      'other.txt',
    ]);
    assert.match(ctx.infos.join('\n'), /attempt 1 of 5/);
    assert.ok(!ctx.infos.join('\n').includes(origin), 'the remote URL is not logged');
    assert.match(r.summary, /attempt 2/);
    assert.equal(git(ws, 'rev-parse', 'HEAD'), sha, 'the local branch follows what was pushed');
    assert.ok(!existsSync(join(ws, 'other.txt')), 'the working tree is not reset or checked out');
    assert.equal(readFileSync(join(ws, 'data', DOMAIN, 'new.txt'), 'utf8'), 'ours\n');
  });

  test('a push that keeps failing ends in a UserError with git’s message and no credentials', async () => {
    const origin = makeOrigin();
    const ws = clone(origin);
    git(ws, 'remote', 'set-url', 'origin', 'https://x-access-token:s3cr3t-t0ken@127.0.0.1:9/nowhere.git');
    writeFiles(join(ws, 'data', DOMAIN), { 'a.txt': 'a\n' });
    const before = git(ws, 'rev-parse', 'HEAD');
    await assert.rejects(store({ pushAttempts: 2 }).save(context(ws), true), (err: Error) => {
      assert.ok(err instanceof UserError);
      assert.match(err.message, /after 2 attempts: .*(unable to access|Failed to connect|Could not connect)/is);
      assert.doesNotMatch(err.message, /s3cr3t/);
      assert.doesNotMatch(err.message, /nowhere\.git/, 'the remote URL is shown as origin');
      return true;
    });
    assert.equal(git(ws, 'rev-parse', 'HEAD'), before, 'the checkout does not claim a push that never happened');
  });
});

describe('commit store: concurrent writers', () => {
  test('8 domains and 2 writers of one domain, each from its own clone, all land on one branch', async () => {
    const origin = makeOrigin();
    const domains = Array.from({ length: 8 }, (_, i) => `site${i}.example`);
    const writers = domains.map((domain, i) => {
      const ws = clone(origin);
      writeFiles(join(ws, 'data', domain), { 'file.txt': `writer ${i}\n`, [`deep/w${i}.txt`]: `${i}\n` });
      return { ws, domain };
    });
    const shared = ['X', 'Y'].map((who) => {
      const ws = clone(origin);
      writeFiles(join(ws, 'data', 'shared.example'), { 'a.txt': `${who}\n`, [`only-${who}.txt`]: `${who}\n` });
      return { ws, domain: 'shared.example' };
    });

    const results = await Promise.all(
      [...writers, ...shared].map(({ ws, domain }) => store({ pushAttempts: 12 }).save(context(ws, domain), true)),
    );

    const final = tip(origin);
    for (const r of results) {
      assert.equal(r.outputs.pushed, 'true');
      execFileSync('git', ['merge-base', '--is-ancestor', r.outputs['commit-sha']!, final], { cwd: origin }); // throws when not
    }
    domains.forEach((domain, i) => {
      assert.deepEqual(remoteFiles(origin, final, `data/${domain}`), [
        `data/${domain}/deep/w${i}.txt`,
        `data/${domain}/file.txt`,
      ]);
      assert.equal(show(origin, final, `data/${domain}/file.txt`), `writer ${i}`);
    });
    const who = show(origin, final, 'data/shared.example/a.txt');
    assert.ok(who === 'X' || who === 'Y');
    assert.deepEqual(
      remoteFiles(origin, final, 'data/shared.example'),
      ['data/shared.example/a.txt', `data/shared.example/only-${who}.txt`],
      'one snapshot, whole',
    );
    assert.equal(show(origin, final, 'README.md'), 'readme');
    assert.deepEqual(
      remoteFiles(origin, final, `data/${DOMAIN}`),
      [`data/${DOMAIN}/old.txt`],
      'a domain nobody wrote is kept',
    );
  });
});

describe('commit store: file sizes', () => {
  test('a file over 100 MiB is refused by name and size, and nothing is committed', async () => {
    const origin = makeOrigin();
    const ws = clone(origin);
    const dir = join(ws, 'data', DOMAIN);
    writeFiles(dir, { 'small.txt': 'small\n', 'media/big.bin': '' });
    truncateSync(join(dir, 'media/big.bin'), 101 * MiB); // sparse: no 100 MiB actually written
    symlinkSync('big.bin', join(dir, 'media/link-to-big'));
    assert.deepEqual(
      checkCommitSizes(dir, ws),
      { refuse: ['data/example.com/media/big.bin (101.0 MiB)'], warn: [], gitNames: [] },
      'the link is not followed',
    );

    const before = git(ws, 'rev-parse', 'HEAD');
    await assert.rejects(store().save(context(ws), true), (err: Error) => {
      assert.ok(err instanceof UserError);
      assert.match(err.message, /data\/example\.com\/media\/big\.bin \(101\.0 MiB\)/);
      assert.match(err.message, /store: artifact/);
      assert.match(err.message, /`exclude`/);
      return true;
    });
    assert.equal(git(ws, 'rev-parse', 'HEAD'), before);
    assert.equal(tip(origin), before);
    assert.equal(git(ws, 'diff', '--cached', '--name-only'), '', 'nothing staged');
  });

  test('a file over 50 MiB is committed with a warning', async () => {
    const origin = makeOrigin();
    const ws = clone(origin);
    const dir = join(ws, 'data', DOMAIN);
    writeFiles(dir, { 'dump.sql': '' });
    truncateSync(join(dir, 'dump.sql'), 60 * MiB);
    const ctx = context(ws);
    const r = await store().save(ctx, true);
    assert.equal(ctx.warnings.length, 1);
    assert.match(ctx.warnings[0]!, /data\/example\.com\/dump\.sql \(60\.0 MiB\)/);
    assert.equal(r.outputs.pushed, 'true');
    assert.equal(git(origin, 'cat-file', '-s', `main:data/${DOMAIN}/dump.sql`), String(60 * MiB));
  });
});
