// linux-only: compares with the rsync binary
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { lstatSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { excludeRel } from '../../src/transfer/entries.js';
import { applyExcludes, makeExcludeTest } from '../../src/transfer/local/excludes.js';
import { testTempDir } from '../helpers/temp.js';

// Our selection against real `rsync -a --exclude=PATTERN src/ dst/`, pattern by pattern, on one tree.

const TREE = [
  'a/b',
  'x/a/b',
  'x/a/b2/c',
  'x/dir/h',
  'tmp/a.pid',
  'tmp/keep',
  'sub/tmp/b.pid',
  'sub/tmp/deep/c.pid',
  'sub/x.pid',
  'app.txt',
  'bpp.txt',
  'cpp.txt',
  'notes/app.txt',
  'notes/zz.txt',
  'dir/f',
  'dir/sub/g',
  'cache/c1',
  'deep/cache',
  'lock',
  'y/lock',
  'y/lock.d/z',
  '.hidden',
  'y/.hidden',
  'logs/app.log',
  'logs/old/app.log.1',
  'secrets.key',
  'keys/secrets.key',
  'keys/old/secrets.key',
  'café/menu',
  'é.txt',
  '[x]',
  '1st',
  'back\\slash',
];
const EMPTY_DIRS = ['empty', 'x/empty'];

const PATTERNS = [
  'lock',
  '/lock',
  'lock/',
  'a/b',
  '/a/b',
  'x/a/b',
  'tmp/*.pid',
  'tmp/',
  '/tmp/',
  'tmp',
  '*.log',
  '*.log*',
  '[!a]*.txt',
  '[^a]*.txt',
  '[ab]pp.txt',
  '[a-b]pp.txt',
  '?pp.txt',
  'dir/**',
  'dir/***',
  '/dir/***',
  'dir/*',
  '**/cache',
  'cache/',
  'deep/cache',
  '**.pid',
  '**/*.pid',
  'sub/**/c.pid',
  'sub/**/*.pid',
  'sub/**',
  '*/tmp',
  'x/*/b',
  'x/*',
  '.hidden',
  '.*',
  'secrets.key',
  'keys/secrets.key',
  '/keys/secrets.key',
  'keys/**/secrets.key',
  '/x/a/',
  'logs/**/app.log*',
  '[[:digit:]]*',
  '[[:alpha:]]',
  'caf?/',
  'é.txt',
  '?.txt',
  'x/a/b2/',
  '*',
  '**',
  'a',
  'b*',
  '*a*/',
  '\\[x\\]',
  '[x]',
  'back\\slash',
  'empty/',
  '*/empty',
  'y/lock*/',
  '/*/*/b',
];

const base = testTempDir('rf-excludes-rsync-');
after(() => rmSync(base, { recursive: true, force: true }));
const src = join(base, 'src');
for (const f of TREE) {
  mkdirSync(join(src, f, '..'), { recursive: true });
  writeFileSync(join(src, f), f);
}
for (const d of EMPTY_DIRS) mkdirSync(join(src, d), { recursive: true });

/** Pre-order, parents first (as our listings are), relative to `root`. */
function walk(root: string, rel = ''): Array<{ rel: string; type: string }> {
  const out: Array<{ rel: string; type: string }> = [{ rel, type: 'dir' }];
  for (const name of readdirSync(join(root, rel)).sort()) {
    const r = rel ? `${rel}/${name}` : name;
    if (lstatSync(join(root, r)).isDirectory()) out.push(...walk(root, r));
    else out.push({ rel: r, type: 'file' });
  }
  return out;
}

const show = (items: Array<{ rel: string; type: string }>) =>
  items
    .filter((i) => i.rel !== '')
    .map((i) => `${i.rel}${i.type === 'dir' ? '/' : ''}`)
    .sort();

let run = 0;
function rsync(patterns: string[], from: string): string {
  const dst = join(base, `dst${run++}`);
  mkdirSync(dst);
  const r = spawnSync('rsync', ['-a', ...patterns.map((p) => `--exclude=${p}`), from, `${dst}/`], { encoding: 'utf8' });
  assert.equal(r.status, 0, `rsync ${patterns.join(' ')}: ${r.stderr}`);
  return dst;
}

test('rsync is installed (scripts/setup.sh)', () => {
  assert.equal(spawnSync('rsync', ['--version']).status, 0);
  assert.ok(PATTERNS.length >= 25);
});

const tree = walk(src);
for (const pattern of PATTERNS) {
  test(`folder entry, --exclude=${pattern}: our selection is rsync's`, () => {
    const expected = show(walk(rsync([pattern], `${src}/`)));
    const ours = show(applyExcludes(tree, makeExcludeTest([pattern])));
    assert.deepEqual(ours, expected);
  });
}

test('several patterns at once: our selection is rsync’s', () => {
  const set = ['lock', 'tmp/*.pid', '[!a]*.txt', 'dir/**', '/x/a/', '.*', 'é.txt'];
  assert.deepEqual(show(applyExcludes(tree, makeExcludeTest(set))), show(walk(rsync(set, `${src}/`))));
});

// A single-file entry: rsync's transfer top is the file's folder, so the file's name is what patterns see.
for (const [file, pattern] of [
  ['app.txt', 'app.txt'],
  ['app.txt', '/app.txt'],
  ['app.txt', '*.txt'],
  ['app.txt', '[!a]*.txt'],
  ['app.txt', 'app.txt/'],
  ['app.txt', 'notes/app.txt'],
  ['app.txt', '**/app.txt'],
  ['app.txt', 'app.txt/***'],
  ['notes/zz.txt', 'notes/zz.txt'],
  ['notes/zz.txt', 'zz.*'],
  ['notes/zz.txt', '/zz.txt'],
] as const) {
  test(`single-file entry ${file}, --exclude=${pattern}: as rsync`, () => {
    const arrived = readdirSync(rsync([pattern], join(src, file))).length === 1;
    const remote = `/srv/${file}`;
    const listing = [{ rel: '', type: 'file' }];
    const kept = applyExcludes(listing, makeExcludeTest([pattern]), (f) => excludeRel(remote, f.rel, false));
    assert.equal(kept.length === 1, arrived);
  });
}

test('applyExcludes is linear in excluded folders: 40,000 of them in a listing of 160,000 (issue #23)', () => {
  const listing: Array<{ rel: string; type: string }> = [];
  for (let i = 0; i < 40_000; i++) {
    listing.push({ rel: `d${i}`, type: 'dir' }, { rel: `d${i}/cache`, type: 'dir' });
    listing.push({ rel: `d${i}/cache/x`, type: 'file' }, { rel: `d${i}/keep`, type: 'file' });
  }
  const t0 = performance.now();
  const kept = applyExcludes(listing, makeExcludeTest(['cache/']));
  const ms = performance.now() - t0;
  assert.equal(kept.length, 80_000);
  assert.ok(kept.every((f) => !f.rel.includes('cache')));
  // The scan of every excluded folder took 15.7 s for this; the walk up a path's parents takes well under 1 s.
  assert.ok(ms < 5000, `took ${Math.round(ms)} ms`);
});
