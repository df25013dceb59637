import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { parse } from 'yaml';
import { readSettings } from '../../src/inputs.js';

const base: Record<string, string> = { mode: 'plan', domain: 'example.com', 'install-dir': '/srv' };
const read = (over: Record<string, string> = {}) => readSettings((n) => ({ ...base, ...over })[n] ?? '', '/ws');

test('defaults', () => {
  const s = read();
  assert.equal(s.mode, 'plan');
  assert.equal(s.dataDir, 'data');
  assert.deepEqual(s.recipes, ['lib/Provisioner/Recipe', 'remote-files.yml']);
  assert.equal(s.recipesAreDefault, true);
  assert.equal(s.ssh.port, 22);
  assert.equal(s.ssh.timeoutMs, 30000);
  assert.equal(s.delete, true);
  assert.equal(s.transport, 'auto');
});

test('lists split on newlines and commas', () => {
  const s = read({ recipes: 'a.yml, b/\nc/*.pm\n', only: 'A,B' });
  assert.deepEqual(s.recipes, ['a.yml', 'b/', 'c/*.pm']);
  assert.deepEqual(s.only, ['A', 'B']);
});

const bad: Array<[Record<string, string>, RegExp]> = [
  [{ mode: 'copy' }, /input `mode`: "copy" is not one of backup, restore, verify, plan$/],
  [{ transport: 'ftp' }, /input `transport`: "ftp" is not one of auto, tar, sftp/],
  [{ 'if-missing': 'skip' }, /input `if-missing`/],
  [{ conflict: 'merge' }, /input `conflict`/],
  [{ store: 'none,s3' }, /input `store`: "s3"/],
  [{ checksum: 'yes' }, /input `checksum`: "yes" is not a boolean/],
  [{ port: '0' }, /input `port`: "0" is not a whole number from 1 to 65535/],
  [{ port: '22x' }, /input `port`/],
  [{ timeout: '-1' }, /input `timeout`/],
  [{ concurrency: '1000' }, /input `concurrency`/],
  [{ domain: '' }, /input `domain` is required/],
  [{ domain: '../etc' }, /input `domain`: "\.\.\/etc" is not a domain name/],
  [{ domain: 'a/b' }, /input `domain`/],
  [{ 'install-dir': 'srv' }, /input `install-dir`: "srv" must be an absolute server path/],
  [{ 'data-dir': '../out' }, /input `data-dir`: "\.\.\/out" must be a folder inside the workspace/],
  [{ 'data-dir': '/abs' }, /input `data-dir`/],
  [{ vars: 'novalue' }, /input `vars`:1/],
  [{ mode: 'backup' }, /input `host` is required/],
  [{ mode: 'backup', host: 'h', username: 'u' }, /input `key` or `password` is required/],
  [{ sudo: 'true', transport: 'sftp' }, /input `sudo`: true needs a shell/],
];
for (const [over, message] of bad) {
  test(`bad input ${JSON.stringify(over)} fails naming the input`, () => {
    assert.throws(() => read(over), message);
  });
}

test('every input action.yml declares is read, and nothing undeclared is', () => {
  const declared = Object.keys(parse(readFileSync('action.yml', 'utf8')).inputs).sort();
  const asked = new Set<string>();
  readSettings((n) => {
    asked.add(n);
    return (
      ({ ...base, mode: 'backup', host: 'h', username: 'u', key: 'k', 'proxy-host': 'p' } as Record<string, string>)[
        n
      ] ?? ''
    );
  }, '/ws');
  assert.deepEqual([...asked].sort(), declared);
});

test('salvage-ref is a commit id, branch or tag, never something git would read as an option; new-server takes fail, skip or allow', () => {
  assert.equal(read({ 'salvage-ref': ' 0123abc ' }).commit.salvageRef, '0123abc');
  assert.equal(read({ 'salvage-ref': 'release/v1.2' }).commit.salvageRef, 'release/v1.2');
  for (const bad of ['--upload-pack=touch /tmp/x', '-x', '.hidden', 'a b', 'a;b', `a${'b'.repeat(200)}`])
    assert.throws(() => read({ 'salvage-ref': bad }), /input `salvage-ref`: .* is not a commit id, branch or tag/);
  assert.equal(read().newServer, 'fail');
  assert.equal(read({ 'new-server': 'skip' }).newServer, 'skip');
  assert.throws(() => read({ 'new-server': 'yes' }), /new-server/);
});
