import assert from 'node:assert/strict';
import {
  chmodSync,
  existsSync,
  lstatSync,
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
import * as cache from '@actions/cache';
import { UserError } from '../../src/errors.js';
import { CacheStore } from '../../src/store/cache.js';
import { sealOf, sealSecret, sha256File } from '../../src/store/cache-seal.js';
import { packSnapshot, withProcessEnv } from '../../src/store/snapshot.js';
import type { StoreContext } from '../../src/store/types.js';
import { testTempDir } from '../helpers/temp.js';
import { treePicture } from '../helpers/tree.js';
import { applyEnv, startActionsServices, type ActionsServices } from '../helpers/actions-services.js';

// The cache store with the real @actions/cache client (cache service v2: Twirp + Azure blob, GNU tar +
// zstd from PATH) against Azurite and the results-service double. The cache client has no env option, so
// each step runs with process.env set to the run it plays.

/** The login credential the workflow's backups and restores share (an SSH private key, as text). */
const CREDENTIAL = '-----BEGIN OPENSSH PRIVATE KEY-----\nthe workflow key\n-----END OPENSSH PRIVATE KEY-----\n';

let svc: ActionsServices;

before(async () => {
  svc = await startActionsServices({ firstRunId: 3000 });
});
after(async () => {
  await svc?.stop();
});

function context(domain: string): StoreContext {
  return svc.storeContext(domain);
}

/** Runs `fn` as run `runId` would see the world. */
async function asRun<T>(runId: number, fn: () => Promise<T>, attempt = 1): Promise<T> {
  const restore = applyEnv(svc.runEnv(runId, { attempt }));
  try {
    return await fn();
  } finally {
    restore();
  }
}

function fill(dir: string, variant: string): void {
  mkdirSync(join(dir, 'keys'), { recursive: true });
  writeFileSync(join(dir, 'keys/dkim.key'), `key ${variant}\n`);
  // 0664: a mode GNU tar would turn into 0644 under the usual umask when extracting in place.
  chmodSync(join(dir, 'keys/dkim.key'), 0o664);
  writeFileSync(join(dir, 'hook.sh'), '#!/bin/sh\n');
  chmodSync(join(dir, 'hook.sh'), 0o770);
  symlinkSync('/etc/shadow', join(dir, 'shadow-link'));
  utimesSync(join(dir, 'keys/dkim.key'), 1_650_000_000, 1_650_000_000);
}

/** Each path's type, mode, mtime (files, whole seconds), content hash or link target, in path order. */
const tree = (dir: string) => Object.fromEntries(treePicture(dir, { modes: true, fileTimes: true, seconds: true }));

describe('cache store', () => {
  test('a miss is found=false and leaves the folder alone', async () => {
    const ctx = context('miss.example');
    mkdirSync(ctx.domainDir, { recursive: true });
    writeFileSync(join(ctx.domainDir, 'mine'), 'keep');
    const r = await asRun(3001, () => new CacheStore({ key: '', credential: CREDENTIAL }).load(ctx));
    assert.equal(r.found, false);
    assert.equal(r.outputs['cache-hit'], 'false');
    assert.equal(r.outputs['cache-key'], undefined);
    assert.deepEqual(readdirSync(ctx.domainDir), ['mine']);
  });

  test('save under the run key, then an exact hit in the same run', async () => {
    const ctx = context('exact.example');
    fill(ctx.domainDir, 'A');
    const expected = tree(ctx.domainDir);
    const saved = await asRun(3100, () => new CacheStore({ key: '', credential: CREDENTIAL }).save(ctx, true));
    assert.equal(saved.outputs['cache-key'], 'remote-files-exact.example-3100-1');
    const entry = svc.caches().find((c) => c.key === 'remote-files-exact.example-3100-1');
    assert.ok(entry?.finalized && entry.size > 0, 'the entry was uploaded and finalized');

    const again = context('exact.example');
    mkdirSync(again.domainDir, { recursive: true });
    writeFileSync(join(again.domainDir, 'stale'), 'x');
    const r = await asRun(3100, () => new CacheStore({ key: '', credential: CREDENTIAL }).load(again));
    assert.equal(r.found, true);
    assert.deepEqual(r.outputs, { 'cache-key': 'remote-files-exact.example-3100-1', 'cache-hit': 'true' });
    assert.deepEqual(tree(again.domainDir), expected);
    assert.deepEqual(readdirSync(join(again.workspace, 'data')), ['exact.example']);
  });

  test('a later run restores the newest entry of the domain by prefix (not an exact hit)', async () => {
    const ctx = context('prefix.example');
    const trees: string[] = [];
    for (const [run, variant] of [
      [3201, 'old'],
      [3202, 'new'],
    ] as const) {
      rmSync(ctx.domainDir, { recursive: true, force: true });
      fill(ctx.domainDir, variant);
      trees.push(JSON.stringify(tree(ctx.domainDir)));
      await asRun(run, () => new CacheStore({ key: '', credential: CREDENTIAL }).save(ctx, true));
    }
    // Another domain saved later must not be picked.
    const other = context('prefix.example.org');
    fill(other.domainDir, 'other');
    await asRun(3203, () => new CacheStore({ key: '', credential: CREDENTIAL }).save(other, true));

    const later = context('prefix.example');
    const r = await asRun(3210, () => new CacheStore({ key: '', credential: CREDENTIAL }).load(later));
    assert.equal(r.found, true);
    assert.deepEqual(r.outputs, { 'cache-key': 'remote-files-prefix.example-3202-1', 'cache-hit': 'false' });
    assert.equal(JSON.stringify(tree(later.domainDir)), trees[1]);
    assert.equal(readlinkSync(join(later.domainDir, 'shadow-link')), '/etc/shadow');
    assert.equal(lstatSync(join(later.domainDir, 'keys/dkim.key')).mode & 0o777, 0o664);
  });

  test('a fixed key that is taken is an error that says why', async () => {
    const ctx = context('fixed.example');
    fill(ctx.domainDir, 'f');
    const s = new CacheStore({ key: 'my-fixed-key', credential: CREDENTIAL });
    assert.equal((await asRun(3300, () => s.save(ctx, true))).outputs['cache-key'], 'my-fixed-key');
    await assert.rejects(
      asRun(3301, () => s.save(ctx, true)),
      (err: Error) => err instanceof UserError && /already exists/.test(err.message) && /cache-key/.test(err.message),
    );
    // The custom key is still what a load tries first.
    const r = await asRun(3302, () => s.load(context('fixed.example')));
    assert.deepEqual(r.outputs, { 'cache-key': 'my-fixed-key', 'cache-hit': 'true' });
    assert.throws(() => new CacheStore({ key: 'a,b', credential: CREDENTIAL }).key('d'), UserError);
  });

  test('no cache service in the environment is a clear error', async () => {
    const ctx = context('noservice.example');
    fill(ctx.domainDir, 'n');
    const restore = applyEnv({ ...svc.runEnv(3400), ACTIONS_RESULTS_URL: '', ACTIONS_CACHE_URL: '' });
    try {
      await assert.rejects(
        new CacheStore({ key: '', credential: CREDENTIAL }).save(ctx, true),
        (err: Error) => err instanceof UserError && /cache service/.test(err.message),
      );
    } finally {
      restore();
    }
    assert.ok(existsSync(join(ctx.domainDir, 'hook.sh')));
  });

  test('the key text is the same credential with other line endings; without any credential the store says so', async () => {
    const ctx = context('crlf.example');
    fill(ctx.domainDir, 'c');
    await asRun(3500, () => new CacheStore({ key: '', credential: CREDENTIAL }).save(ctx, true));
    const r = await asRun(3501, () =>
      new CacheStore({ key: '', credential: CREDENTIAL.replace(/\n/g, '\r\n') + '  ' }).load(context('crlf.example')),
    );
    assert.equal(r.found, true);
    await assert.rejects(
      asRun(3502, () => new CacheStore({ key: '', credential: '' }).check(context('crlf.example'), false)),
      (err: Error) => err instanceof UserError && /neither `key` nor `password`/.test(err.message),
    );
  });
});

/**
 * An entry written the way another job could: the real toolkit's saveCache under the domain's prefix,
 * from a folder holding `files` (name → content), with `extra` absolute paths added to its archive (a
 * `tar` first on PATH that passes them to the real one, as a hand-made archive would hold them).
 */
async function foreignEntry(runId: number, key: string, files: Record<string, Buffer | string>, extra: string[] = []) {
  const dir = mkdtempSync(join(svc.scratch, 'foreign-'));
  for (const [name, content] of Object.entries(files)) writeFileSync(join(dir, name), content);
  const bin = mkdtempSync(join(svc.scratch, 'foreign-bin-'));
  writeFileSync(join(bin, 'tar'), `#!/bin/sh\nexec /usr/bin/tar "$@" ${extra.map((p) => `'${p}'`).join(' ')}\n`, {
    mode: 0o755,
  });
  const id = await asRun(runId, () =>
    withProcessEnv({ GITHUB_WORKSPACE: dir, PATH: `${bin}:${process.env.PATH}` }, dir, () =>
      cache.saveCache(Object.keys(files), key),
    ),
  );
  assert.ok(id > 0, `the foreign entry ${key} was saved`);
}

async function snapshotOf(variant: string): Promise<{ tar: Buffer; sha: string }> {
  const dir = mkdtempSync(join(svc.scratch, 'snap-'));
  fill(join(dir, 'd'), variant);
  await packSnapshot(join(dir, 'd'), join(dir, 's.tar'));
  return { tar: readFileSync(join(dir, 's.tar')), sha: await sha256File(join(dir, 's.tar')) };
}

describe('cache entries this workflow did not write (issue #23)', () => {
  test('an entry saved by a job without the credential is never restored, in the old layout or with a forged seal', async () => {
    const domain = 'poisoned.example';
    const ctx = context(domain);
    fill(ctx.domainDir, 'genuine');
    await asRun(3600, () => new CacheStore({ key: '', credential: CREDENTIAL }).save(ctx, true));
    const genuine = tree(ctx.domainDir);
    const evil = await snapshotOf('evil');
    // The snapshot alone (what this store wrote before seals), and one with a seal made with another key.
    await foreignEntry(3601, `remote-files-${domain}-3601-1`, { 'remote-files.snapshot.tar': evil.tar });
    await foreignEntry(3602, `remote-files-${domain}-3602-1`, {
      'remote-files.snapshot.tar': evil.tar,
      'remote-files.seal': sealOf(sealSecret('another key'), domain, evil.sha),
    });
    const victim = context(domain);
    mkdirSync(victim.domainDir, { recursive: true });
    writeFileSync(join(victim.domainDir, 'mine'), 'keep');
    await assert.rejects(
      asRun(3610, () => new CacheStore({ key: '', credential: CREDENTIAL }).load(victim)),
      (err: Error) =>
        err instanceof UserError &&
        /cache entry "remote-files-poisoned\.example-3602-1" was not written by this workflow for poisoned\.example/.test(
          err.message,
        ),
    );
    assert.deepEqual(readdirSync(victim.domainDir), ['mine'], 'the data folder is untouched');
    // A genuine entry saved after them is what a restore takes.
    await asRun(3620, () => new CacheStore({ key: '', credential: CREDENTIAL }).save(ctx, true));
    const later = context(domain);
    const r = await asRun(3621, () => new CacheStore({ key: '', credential: CREDENTIAL }).load(later));
    assert.equal(r.outputs['cache-key'], `remote-files-${domain}-3620-1`);
    assert.deepEqual(tree(later.domainDir), genuine);
  });

  test("an entry holding absolute names is never extracted by the toolkit's tar -P: nothing lands outside", async () => {
    const domain = 'escape.example';
    const target = testTempDir('rf-cache-escape-');
    const planted = join(target, 'planted.txt');
    writeFileSync(planted, 'written by a poisoned cache entry');
    const snap = await snapshotOf('s');
    const seal = sealOf(sealSecret(CREDENTIAL), domain, snap.sha);
    // Correctly sealed (a writer that has the credential still may not reach outside the entry), in
    // this layout and in the one before seals.
    await foreignEntry(
      3700,
      `remote-files-${domain}-3700-1`,
      { 'remote-files.snapshot.tar': snap.tar, 'remote-files.seal': seal },
      [planted],
    );
    await foreignEntry(3701, `remote-files-${domain}-3701-1`, { 'remote-files.snapshot.tar': snap.tar }, [planted]);
    rmSync(target, { recursive: true });
    try {
      const victim = context(domain);
      await assert.rejects(
        asRun(3710, () => new CacheStore({ key: '', credential: CREDENTIAL }).load(victim)),
        /cache entry "remote-files-escape\.example-3700-1" holds ".*planted\.txt", which remote-files never stores there: refused/,
      );
      assert.ok(!existsSync(target), `nothing was written at ${planted}`);
      assert.ok(!existsSync(victim.domainDir), 'nothing was restored');
    } finally {
      rmSync(target, { recursive: true, force: true });
    }
  });
});
