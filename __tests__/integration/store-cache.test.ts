import assert from 'node:assert/strict';
import {
  chmodSync,
  existsSync,
  lstatSync,
  mkdirSync,
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
import { UserError } from '../../src/errors.js';
import { CacheStore } from '../../src/store/cache.js';
import type { StoreContext } from '../../src/store/types.js';
import { applyEnv, startActionsServices, type ActionsServices } from '../helpers/actions-services.js';

// The cache store with the real @actions/cache client (cache service v2: Twirp + Azure blob, GNU tar +
// zstd from PATH) against Azurite and the results-service double. The cache client has no env option, so
// each step runs with process.env set to the run it plays.

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

function tree(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (rel: string) => {
    for (const name of readdirSync(join(dir, rel)).sort()) {
      const r = rel ? `${rel}/${name}` : name;
      const st = lstatSync(join(dir, r));
      if (st.isSymbolicLink()) out[r] = `link ${readlinkSync(join(dir, r))}`;
      else if (st.isDirectory()) {
        out[r] = `dir ${(st.mode & 0o777).toString(8)}`;
        walk(r);
      } else
        out[r] =
          `file ${(st.mode & 0o777).toString(8)} ${Math.floor(st.mtimeMs / 1000)} ${readFileSync(join(dir, r), 'utf8')}`;
    }
  };
  walk('');
  return out;
}

describe('cache store', () => {
  test('a miss is found=false and leaves the folder alone', async () => {
    const ctx = context('miss.example');
    mkdirSync(ctx.domainDir, { recursive: true });
    writeFileSync(join(ctx.domainDir, 'mine'), 'keep');
    const r = await asRun(3001, () => new CacheStore({ key: '' }).load(ctx));
    assert.equal(r.found, false);
    assert.equal(r.outputs['cache-hit'], 'false');
    assert.equal(r.outputs['cache-key'], undefined);
    assert.deepEqual(readdirSync(ctx.domainDir), ['mine']);
  });

  test('save under the run key, then an exact hit in the same run', async () => {
    const ctx = context('exact.example');
    fill(ctx.domainDir, 'A');
    const expected = tree(ctx.domainDir);
    const saved = await asRun(3100, () => new CacheStore({ key: '' }).save(ctx, true));
    assert.equal(saved.outputs['cache-key'], 'remote-files-exact.example-3100-1');
    const entry = svc.caches().find((c) => c.key === 'remote-files-exact.example-3100-1');
    assert.ok(entry?.finalized && entry.size > 0, 'the entry was uploaded and finalized');

    const again = context('exact.example');
    mkdirSync(again.domainDir, { recursive: true });
    writeFileSync(join(again.domainDir, 'stale'), 'x');
    const r = await asRun(3100, () => new CacheStore({ key: '' }).load(again));
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
      await asRun(run, () => new CacheStore({ key: '' }).save(ctx, true));
    }
    // Another domain saved later must not be picked.
    const other = context('prefix.example.org');
    fill(other.domainDir, 'other');
    await asRun(3203, () => new CacheStore({ key: '' }).save(other, true));

    const later = context('prefix.example');
    const r = await asRun(3210, () => new CacheStore({ key: '' }).load(later));
    assert.equal(r.found, true);
    assert.deepEqual(r.outputs, { 'cache-key': 'remote-files-prefix.example-3202-1', 'cache-hit': 'false' });
    assert.equal(JSON.stringify(tree(later.domainDir)), trees[1]);
    assert.equal(readlinkSync(join(later.domainDir, 'shadow-link')), '/etc/shadow');
    assert.equal(lstatSync(join(later.domainDir, 'keys/dkim.key')).mode & 0o777, 0o664);
  });

  test('a fixed key that is taken is an error that says why', async () => {
    const ctx = context('fixed.example');
    fill(ctx.domainDir, 'f');
    const s = new CacheStore({ key: 'my-fixed-key' });
    assert.equal((await asRun(3300, () => s.save(ctx, true))).outputs['cache-key'], 'my-fixed-key');
    await assert.rejects(
      asRun(3301, () => s.save(ctx, true)),
      (err: Error) => err instanceof UserError && /already exists/.test(err.message) && /cache-key/.test(err.message),
    );
    // The custom key is still what a load tries first.
    const r = await asRun(3302, () => s.load(context('fixed.example')));
    assert.deepEqual(r.outputs, { 'cache-key': 'my-fixed-key', 'cache-hit': 'true' });
    assert.throws(() => new CacheStore({ key: 'a,b' }).key('d'), UserError);
  });

  test('no cache service in the environment is a clear error', async () => {
    const ctx = context('noservice.example');
    fill(ctx.domainDir, 'n');
    const restore = applyEnv({ ...svc.runEnv(3400), ACTIONS_RESULTS_URL: '', ACTIONS_CACHE_URL: '' });
    try {
      await assert.rejects(
        new CacheStore({ key: '' }).save(ctx, true),
        (err: Error) => err instanceof UserError && /cache service/.test(err.message),
      );
    } finally {
      restore();
    }
    assert.ok(existsSync(join(ctx.domainDir, 'hook.sh')));
  });
});
