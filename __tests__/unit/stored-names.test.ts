import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkManifest } from '../../src/transfer/manifest/check.js';
import {
  escapeName,
  escapePath,
  isGitSensitive,
  unescapeName,
  unescapePath,
} from '../../src/transfer/manifest/stored-names.js';

test('names git interprets are escaped, in every form git itself guards against', () => {
  for (const name of [
    '.git',
    '.GIT',
    '.Git',
    '.gitattributes',
    '.GitIgnore',
    '.gitmodules',
    '.git.',
    '.git  ',
    '.git::$INDEX_ALLOCATION',
    '.g\u200cit',
    'git~1',
    'GIT~2',
    'gitmod~1',
    'gi7eba~1',
  ]) {
    assert.ok(isGitSensitive(name), name);
    assert.equal(escapeName(name), `%${name}`);
  }
  for (const name of ['.github', '.gitkeep', 'git', 'x.git', 'bare.git', '.gitlab-ci.yml', 'gitattributes', 'README']) {
    assert.ok(!isGitSensitive(name), name);
    assert.equal(escapeName(name), name);
  }
});

test('a real name that looks escaped is escaped too, so every name comes back', () => {
  for (const name of ['%', '%.git', '%%x', '%20', '.git', 'plain', '.gitattributes', '%.gitattributes']) {
    assert.equal(unescapeName(escapeName(name)), name, name);
  }
  assert.equal(escapeName('%.git'), '%%.git');
  assert.notEqual(escapeName('%.git'), escapeName('.git'));
  const path = 'www/.git/hooks/%x/.gitattributes/a.txt';
  assert.equal(escapePath(path), 'www/%.git/hooks/%%x/%.gitattributes/a.txt');
  assert.equal(unescapePath(escapePath(path)), path);
  assert.equal(escapePath('plain/path/file.txt'), 'plain/path/file.txt');
  assert.equal(escapePath('www/a\\.git'), 'www/%a\\.git', 'a backslash name git reads as holding .git');
  assert.ok(isGitSensitive('x\\.GITMODULES') && !isGitSensitive('a\\b'));
});

const good = () => ({
  version: 1,
  domain: 'example.com',
  names: 'git-safe-1',
  entries: { www: { remote: '/srv/www', recipe: 'Web', type: 'dir' } },
  files: {
    www: {
      type: 'dir',
      size: 0,
      mtime: 1700000000,
      mode: '0755',
      uid: 33,
      gid: 33,
      user: 'www-data',
      group: 'www-data',
    },
    'www/a': {
      type: 'file',
      size: 3,
      mtime: 1700000000,
      mode: '0644',
      uid: 33,
      gid: 33,
      user: 'www-data',
      group: 'www-data',
      sha256: 'a'.repeat(64),
    },
    'www/l': {
      type: 'symlink',
      size: 0,
      mtime: 1700000000,
      mode: '0777',
      uid: 0,
      gid: 0,
      user: 'root',
      group: 'root',
      target: 'a',
    },
  },
});

test('the manifest is input: each field is checked, the message names it', () => {
  assert.doesNotThrow(() => checkManifest(good(), 'm.json'));
  const bad: Array<[string, (m: ReturnType<typeof good>) => void, RegExp]> = [
    [
      'a path that climbs out',
      (m) => ((m.files as Record<string, unknown>)['www/../../etc'] = m.files['www/a']),
      /files\["www\/\.\.\/\.\.\/etc"\] is not a path inside the data folder/,
    ],
    [
      'an absolute path',
      (m) => ((m.files as Record<string, unknown>)['/etc/passwd'] = m.files['www/a']),
      /is not a path inside the data folder: it is absolute/,
    ],
    [
      'a path outside every entry',
      (m) => ((m.files as Record<string, unknown>)['other/x'] = m.files['www/a']),
      /files\["other\/x"\] lies in no entry/,
    ],
    [
      'a mode that is not octal',
      (m) => (m.files['www/a'].mode = '6755x'),
      /files\["www\/a"\]\.mode is not four octal digits/,
    ],
    ['a negative size', (m) => (m.files['www/a'].size = -1), /\.size is not a byte count/],
    ['a uid out of range', (m) => (m.files['www/a'].uid = 2 ** 40), /\.uid is not a user id/],
    [
      'a user name with a newline',
      (m) => (m.files['www/a'].user = 'root\n::error::x'),
      /\.user is not an account name/,
    ],
    ['a link without a target', (m) => delete (m.files['www/l'] as { target?: string }).target, /\.target is missing/],
    ['an unknown type', (m) => (m.files['www/a'].type = 'device'), /\.type is not file, dir, symlink or other/],
    [
      'a relative entry remote',
      (m) => (m.entries.www.remote = 'srv/www'),
      /entries\["www"\]\.remote is not an absolute/,
    ],
    ['an unknown names scheme', (m) => (m.names = 'v9'), /"names" is "v9"/],
    ['a bad hash', (m) => (m.files['www/a'].sha256 = 'zz'), /\.sha256 is not 64 hex digits/],
  ];
  for (const [what, edit, message] of bad) {
    const m = good();
    edit(m);
    assert.throws(() => checkManifest(m, 'm.json'), message, what);
  }
});
