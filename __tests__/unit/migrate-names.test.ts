// linux-only: makes names Windows refuses on the real disk
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { readManifest, writeManifest, type Manifest } from '../../src/transfer/manifest/manifest.js';
import { migrateStoredNames } from '../../src/transfer/manifest/migrate-names.js';
import { manifestRecord } from '../helpers/manifest-record.js';
import { testTempDir } from '../helpers/temp.js';
import { treePicture } from '../helpers/tree.js';

const record = manifestRecord;

/** A folder git-safe-1 wrote: ` ` (whose new form `%%20` is git-safe-1's form of `%20`), case twins, `a:b`. */
function gitSafeFolder(): { dir: string; m: Manifest } {
  const dir = testTempDir('rf-migrate-');
  mkdirSync(join(dir, 'www/%.git'), { recursive: true });
  const disk: Record<string, string> = {
    'www/ ': 'space',
    'www/%%20': 'percent-20',
    'www/Makefile': 'upper',
    'www/makefile': 'lower',
    'www/a:b': 'colon',
    'www/%.git/HEAD': 'head',
  };
  for (const [p, content] of Object.entries(disk)) writeFileSync(join(dir, p), content);
  const files: Manifest['files'] = { www: record('dir'), 'www/.git': record('dir') };
  for (const p of ['www/ ', 'www/%20', 'www/Makefile', 'www/makefile', 'www/a:b', 'www/.git/HEAD'])
    files[p] = record('file');
  const m: Manifest = {
    version: 1,
    domain: 'm.example',
    names: 'git-safe-1',
    entries: { www: { remote: '/srv/www', recipe: 'W', type: 'dir' } },
    files,
  };
  writeManifest(dir, m);
  return { dir, m };
}

const WANT = new Map([
  ['www/%%20', 'space'],
  ['www/%%2520', 'percent-20'],
  ['www/Makefile', 'upper'],
  ['www/%makefile%~1', 'lower'],
  ['www/%a%3Ab', 'colon'],
  ['www/%.git/HEAD', 'head'],
]);

function files(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const [p, what] of treePicture(join(dir, 'www')))
    if (what.startsWith('file')) out.set(`www/${p}`, readFileSync(join(dir, 'www', p), 'utf8'));
  return out;
}

test('a git-safe-1 folder moves to portable-1 names once; a second run renames nothing', () => {
  const { dir, m } = gitSafeFolder();
  const first = migrateStoredNames(dir, m);
  assert.deepEqual(files(dir), WANT);
  assert.equal(first.manifest.names, 'portable-1');
  assert.deepEqual(first.manifest.stored, { 'www/makefile': '%makefile%~1' });
  assert.deepEqual(readManifest(dir, 'm.example'), first.manifest);
  const again = migrateStoredNames(dir, readManifest(dir, 'm.example'));
  assert.deepEqual(again.notes, []);
  assert.deepEqual(files(dir), WANT);
});

test('cut off before the manifest was marked, at any point, the next run finishes the move', () => {
  // Every rename done, the manifest not yet written.
  const all = gitSafeFolder();
  migrateStoredNames(all.dir, all.m);
  writeManifest(all.dir, all.m);
  migrateStoredNames(all.dir, all.m);
  assert.deepEqual(files(all.dir), WANT);
  // Only the first renames done (`%20` out of `%%20`, the folder `.git`): ` ` must still move to `%%20`.
  const some = gitSafeFolder();
  renameSync(join(some.dir, 'www/%%20'), join(some.dir, 'www/%%2520'));
  migrateStoredNames(some.dir, some.m);
  assert.deepEqual(files(some.dir), WANT);
});
