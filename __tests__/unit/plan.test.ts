import assert from 'node:assert/strict';
import { posix } from 'node:path';
import { test } from 'node:test';
import { buildPlan, type PlanSettings } from '../../src/plan/plan.js';
import { checkLocalPath, checkRemotePath, safeJoin } from '../../src/plan/paths.js';
import { templateValues } from '../../src/recipes/template.js';
import type { RawRecipe } from '../../src/recipes/types.js';

const settings: PlanSettings = {
  domain: 'example.com',
  installDir: '/srv',
  dataDir: 'data',
  values: templateValues('example.com', '/srv', new Map([['spool', 'mail']])),
  dollarBraces: (f) => f.endsWith('.yml'),
};
const recipe = (over: Partial<RawRecipe>): RawRecipe => ({
  name: 'R',
  file: 'lib/R.pm',
  remoteFiles: [],
  datadirs: [],
  skip: [],
  prepare: [],
  restores: [],
  ...over,
});

test('files: trailing slashes mean nothing, templates resolve, path is <data-dir>/<domain>/<local>', () => {
  const plan = buildPlan(
    [
      recipe({
        remoteFiles: [
          ['/etc/app/keys/', 'app/keys/'],
          ['/var/spool/[% spool %]//', './app//spool'],
        ],
        datadirs: ['app/'],
        skip: ['/cache/'],
        prepare: ['dump [% domain %]'],
      }),
    ],
    settings,
  );
  assert.deepEqual(plan, {
    domain: 'example.com',
    installDir: '/srv',
    dataDir: 'data',
    recipes: [
      {
        name: 'R',
        file: 'lib/R.pm',
        files: [
          { remote: '/etc/app/keys', local: 'app/keys', path: 'data/example.com/app/keys' },
          { remote: '/var/spool/mail', local: 'app/spool', path: 'data/example.com/app/spool' },
        ],
        datadirs: ['app'],
        skip: ['/cache/'],
        prepare: ['dump example.com'],
        restores: [],
      },
    ],
  });
});

test('a local path that is absolute or climbs out is refused, naming recipe and path', () => {
  assert.throws(
    () => buildPlan([recipe({ remoteFiles: [['/a', '../../etc']] })], settings),
    /^RecipeError: lib\/R\.pm: recipe R: local path "\.\.\/\.\.\/etc" climbs out/m,
  );
  assert.throws(() => buildPlan([recipe({ remoteFiles: [['/a', 'x/../../y']] })], settings), /climbs out/);
  assert.throws(
    () => buildPlan([recipe({ remoteFiles: [['/a', '/abs']] })], settings),
    /local path "\/abs" is absolute/,
  );
  assert.throws(() => buildPlan([recipe({ remoteFiles: [['/a', './']] })], settings), /is empty/);
  assert.throws(() => buildPlan([recipe({ datadirs: ['..'] })], settings), /datadir "\.\." climbs out/);
  assert.throws(
    () => buildPlan([recipe({ remoteFiles: [['relative/x', 'x']] })], settings),
    /remote path "relative\/x" is not absolute/,
  );
});

test('restores: from maps to the stored local path; one outside <install_dir>/<domain> is refused', () => {
  const plan = buildPlan(
    [recipe({ restores: [{ to: '/etc/k/', from: '/srv/example.com/app/keys/', owner: 'a:b', mode: '0750' }] })],
    settings,
  );
  assert.deepEqual(plan.recipes[0]!.restores, [
    { to: '/etc/k', from: '/srv/example.com/app/keys', owner: 'a:b', mode: '0750', local: 'app/keys' },
  ]);
  assert.throws(
    () => buildPlan([recipe({ restores: [{ to: '/etc/k', from: '/elsewhere/k' }] })], settings),
    /restores "from" \/elsewhere\/k is not below \/srv\/example\.com\//,
  );
});

test('overlapping local paths from unrelated sources are refused; agreeing ones are fine', () => {
  assert.throws(
    () =>
      buildPlan(
        [recipe({ remoteFiles: [['/a', 'x']] }), recipe({ name: 'S', file: 'S.pm', remoteFiles: [['/b', 'x/y']] })],
        settings,
      ),
    /local paths overlap: "x" \(recipe R, lib\/R\.pm, from \/a\) and "x\/y" \(recipe S/,
  );
  const ok = buildPlan(
    [
      recipe({ remoteFiles: [['/a', 'x']] }),
      recipe({
        name: 'S',
        remoteFiles: [
          ['/a/', 'x'],
          ['/a/y', 'x/y'],
        ],
      }),
    ],
    settings,
  );
  assert.equal(ok.recipes.length, 2);
});

test('path rules', () => {
  assert.deepEqual(checkLocalPath('a/./b//c/'), { ok: true, path: 'a/b/c' });
  // The quick path for plain names must still refuse the manifest's own folder and climbing out.
  assert.deepEqual(checkLocalPath('a/b.c/.d'), { ok: true, path: 'a/b.c/.d' });
  assert.equal(checkLocalPath('.remote-files').ok, false);
  assert.equal(checkLocalPath('.remote-files/manifest.json').ok, false);
  assert.deepEqual(checkLocalPath('.remote-files2/x'), { ok: true, path: '.remote-files2/x' });
  assert.equal(checkLocalPath('a/..').ok, false);
  assert.equal(checkLocalPath('..').ok, false);
  assert.equal(checkLocalPath('').ok, false);
  assert.equal(checkLocalPath('/etc').ok, false);
  assert.equal(checkLocalPath('a\0b').ok, false);
  assert.deepEqual(checkRemotePath('/'), { ok: true, path: '/' });
  assert.equal(checkRemotePath('/a/../b').ok, false);
  assert.equal(safeJoin('/d', '../x'), null);
  assert.equal(safeJoin('/d', '/etc/passwd'), null);
  assert.equal(safeJoin('/d', 'a/./b'), '/d/a/b');
  assert.equal(safeJoin('/d', 'a\0b'), null);
});

test('safeJoin: the quick join of plain names agrees with the careful one for every kind of name', () => {
  const names = [
    'a',
    'a/b',
    'ä b/ç',
    '.hidden',
    '..x',
    'x..',
    'a/.b',
    'a/..b',
    '...',
    'a/...',
    '.',
    '..',
    'a/.',
    'a/..',
    './a',
    '../a',
    'a/./b',
    'a/../b',
    'a//b',
    'a/',
    '/a',
    '',
    'a\0b',
    'a\nb',
  ];
  for (const base of ['/d', '/', 'rel/dir', '']) {
    for (const name of names) {
      const parts = name.split('/').filter((p) => p !== '' && p !== '.');
      const careful =
        name.includes('\0') || name.startsWith('/') || parts.includes('..')
          ? null
          : parts.length === 0
            ? base
            : posix.join(base, ...parts);
      assert.equal(safeJoin(base, name), careful, `safeJoin(${JSON.stringify(base)}, ${JSON.stringify(name)})`);
    }
  }
});
