import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { parse } from 'yaml';
import { INPUTS, keyInput, nearMissNote, parseDuration, readSettings, unknownInputs } from '../../src/inputs.js';
import { editDistance, nearestName } from '../../src/nearest.js';
import { cannotSucceed } from '../../src/store/commit.js';
import { judgeEntries } from '../../src/transfer/judge.js';
import {
  byteShrinkProblem,
  parseMaxDelete,
  shrinkProblems,
  type ShrinkCounts,
} from '../../src/transfer/shrink-guard.js';
import { testTempDir } from '../helpers/temp.js';

const base: Record<string, string> = { mode: 'plan', domain: 'example.com', 'install-dir': '/srv' };
const read = (over: Record<string, string> = {}) => readSettings((n) => ({ ...base, ...over })[n] ?? '', '/ws');

test('mode has no default: an empty mode fails naming the input and its four values', () => {
  assert.throws(() => read({ mode: '' }), /^UserError: input `mode` is required: backup, restore, verify, plan/);
  assert.throws(() => read({ mode: ' ' }), /input `mode` is required/);
  assert.equal(read({ mode: 'Plan' }).mode, 'plan');
});

test("INPUTS is action.yml's list of inputs, one source for the CLI flags and the unknown-input check", () => {
  const yml = (parse(readFileSync('action.yml', 'utf8')) as { inputs: Record<string, unknown> }).inputs;
  assert.deepEqual(Object.keys(INPUTS).sort(), Object.keys(yml).sort());
});

test('max-delete: a percentage or a count; 100% is off; anything else names the input', () => {
  assert.deepEqual(parseMaxDelete(''), { kind: 'percent', value: 50 });
  assert.deepEqual(parseMaxDelete('25%'), { kind: 'percent', value: 25 });
  assert.deepEqual(parseMaxDelete(' 12.5 % '), { kind: 'percent', value: 12.5 });
  assert.deepEqual(parseMaxDelete('100'), { kind: 'count', value: 100 });
  assert.deepEqual(parseMaxDelete('0'), { kind: 'count', value: 0 });
  for (const bad of ['101%', '-1', 'half', '5 files', '1e3'])
    assert.throws(
      () => parseMaxDelete(bad),
      /input `max-delete`: ".*" is not a percentage from 0% to 100% or a whole number/,
      bad,
    );
  assert.deepEqual(read({ 'max-delete': '10' }).maxDelete, { kind: 'count', value: 10 });
  assert.deepEqual(read().maxDelete, { kind: 'percent', value: 50 });
});

test('the shrink guard: over the share or count, or nothing with content left, fails naming the entry and the counts', () => {
  const c = (over: Partial<ShrinkCounts>): ShrinkCounts => ({
    entry: 'recipe App (/srv/app => app)',
    stored: 10,
    deleted: 0,
    emptied: 0,
    left: 10,
    storedBytes: 1000,
    lostBytes: 0,
    ...over,
  });
  const half = parseMaxDelete('50%');
  assert.deepEqual(shrinkProblems([c({ deleted: 5, left: 5 })], half), [], 'exactly the limit is allowed');
  assert.deepEqual(shrinkProblems([c({ deleted: 6, left: 4 })], half), [
    'recipe App (/srv/app => app): the backup would delete 6 of its 10 stored file(s) (max-delete: 50%)',
  ]);
  assert.deepEqual(shrinkProblems([c({ deleted: 3, emptied: 3, left: 4 })], half), [
    'recipe App (/srv/app => app): the backup would delete 3 and empty 3 of its 10 stored file(s) (max-delete: 50%)',
  ]);
  // An entry left with nothing fails whatever the limit, unless the guard is off.
  assert.match(
    shrinkProblems([c({ stored: 1, emptied: 1, left: 0 })], parseMaxDelete('100'))[0]!,
    /empty 1 of its 1 stored file\(s\), leaving none with content \(max-delete: 100\)/,
  );
  assert.deepEqual(shrinkProblems([c({ deleted: 10, left: 0 })], parseMaxDelete('100%')), []);
  // A count: more than that many per entry.
  assert.equal(shrinkProblems([c({ deleted: 3, left: 7 })], parseMaxDelete('2')).length, 1);
  assert.equal(shrinkProblems([c({ deleted: 2, left: 8 })], parseMaxDelete('2')).length, 0);
  assert.equal(shrinkProblems([c({ deleted: 1, left: 9 })], parseMaxDelete('0')).length, 1, '0 allows none');
  // Nothing stored before, or nothing taken: no opinion.
  assert.deepEqual(shrinkProblems([c({ stored: 0, left: 0 }), c({ left: 0 })], half), []);
});

test('the byte guard: a backup losing more than the share of the stored bytes fails, though no file is deleted', () => {
  const c = (storedBytes: number, lostBytes: number): ShrinkCounts => ({
    entry: 'recipe App (/srv/app => app)',
    stored: 1,
    deleted: 0,
    emptied: 0,
    left: 1,
    storedBytes,
    lostBytes,
  });
  const half = parseMaxDelete('50%');
  // A fresh install's 4 KiB database in place of a salvaged 1 MiB one: one changed file, 99.6% of the bytes.
  assert.match(
    byteShrinkProblem([c(1 << 20, (1 << 20) - 4096), c(100, 0)], half)!,
    /shrink the stored files from 1048676 to 4196 bytes, losing 100% \(more than 50%; max-delete: 50%\)/,
  );
  assert.equal(byteShrinkProblem([c(1000, 500)], half), undefined, 'exactly the share is allowed');
  assert.equal(byteShrinkProblem([c(1000, 501)], parseMaxDelete('60%')), undefined);
  assert.ok(byteShrinkProblem([c(1000, 501)], parseMaxDelete('10')), 'a count keeps 50% for bytes');
  assert.equal(byteShrinkProblem([c(1000, 1000)], parseMaxDelete('100%')), undefined, '100% turns it off');
  assert.equal(byteShrinkProblem([c(0, 0)], half), undefined, 'nothing stored: no opinion');
});

test('timeout: seconds, or a duration as other actions write it', () => {
  assert.equal(parseDuration('30'), 30);
  assert.equal(parseDuration('30s'), 30);
  assert.equal(parseDuration('5m'), 300);
  assert.equal(parseDuration('1h'), 3600);
  assert.equal(parseDuration('1m30s'), 90);
  assert.equal(parseDuration(' 2M '), 120);
  for (const bad of ['', 's', '30 sec', '1.5m', '-3', '30ms', '1d']) assert.equal(parseDuration(bad), undefined, bad);
  const ssh = (t: string) => read({ mode: 'backup', host: 'h', username: 'u', key: 'k', timeout: t }).ssh.timeoutMs;
  assert.equal(ssh('5m'), 300_000);
  assert.equal(ssh('45'), 45_000);
  assert.throws(
    () => ssh('2h'),
    /input `timeout`: "2h" is not a duration from 1 to 3600 seconds \(seconds, or with a unit: 30s, 5m, 1h\)/,
  );
  assert.throws(() => ssh('0s'), /input `timeout`/);
});

test('nearest name: edit distance, with case, _ and - ignored; nothing when nothing is near', () => {
  assert.equal(editDistance('kitten', 'sitting'), 3);
  assert.equal(editDistance('', 'abc'), 3);
  const known = Object.keys(INPUTS);
  assert.equal(nearestName('proxy_host', known), 'proxy-host');
  assert.equal(nearestName('PROXY_PORT', known), 'proxy-port');
  assert.equal(nearestName('stor', known), 'store');
  assert.equal(nearestName('timeout_ms', known), 'timeout');
  assert.equal(nearestName('privatekey', ['key', 'port']), 'key');
  assert.equal(nearestName('zzzzzzzzzz', known), undefined);
});

test('unknown INPUT_* variables are named with the nearest real input; known ones (any spelling the runner makes) are not', () => {
  const env = {
    INPUT_TIMEOUT: '30s',
    'INPUT_PROXY-HOST': 'j',
    INPUT_PROXY_HOST: 'j',
    INPUT_SCRIPT: 'x',
    INPUT_MODE: 'backup',
    PATH: '/bin',
  };
  assert.deepEqual(unknownInputs(env), [
    { name: 'proxy_host', nearest: 'proxy-host' },
    { name: 'script', nearest: undefined },
  ]);
});

test('a key given as a file path is read, or the error says it looks like a path', () => {
  const file = join(testTempDir('rf-key-'), 'id_ed25519');
  writeFileSync(file, '-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n-----END OPENSSH PRIVATE KEY-----\n');
  assert.match(keyInput('key', file), /BEGIN OPENSSH PRIVATE KEY/);
  assert.throws(
    () => keyInput('key', '~/.ssh/nope_rf_test'),
    /input `key` looks like a file path \("~\/\.ssh\/nope_rf_test"\), not a private key, and there is no such file on the runner/,
  );
  assert.throws(
    () => read({ mode: 'backup', host: 'h', username: 'u', key: '/nonexistent/id_rsa' }),
    /input `key` looks like a file path/,
  );
  assert.equal(keyInput('key', '-----BEGIN KEY-----\n/x\n'), '-----BEGIN KEY-----\n/x\n', 'a key is left alone');
  assert.equal(read({ mode: 'backup', host: 'h', username: 'u', key: file }).ssh.key.includes('abc'), true);
});

test('an ignored near-miss input is named again in an error it could explain, and only there', () => {
  const ignored = [
    { name: 'known_hosts', nearest: 'known-hosts' },
    { name: 'proxy_host', nearest: 'proxy-host' },
    { name: 'script', nearest: undefined },
  ];
  assert.equal(
    nearMissNote('Host key of h:22 does not match: …', ignored),
    '. Note: inputs `known_hosts` (did you mean `known-hosts`?), `proxy_host` (did you mean `proxy-host`?) were ignored: not inputs of remote-files',
  );
  assert.match(
    nearMissNote('Cannot connect to h:22: connection refused (1 attempts)', ignored),
    /^\. Note: input `proxy_host` /,
  );
  assert.match(
    nearMissNote('Authentication as u@h:22 failed', [{ name: 'ssh_key', nearest: 'key' }]),
    /`ssh_key` \(did you mean `key`\?\) was ignored/,
  );
  assert.match(
    nearMissNote('input `max-delete`: "x" is not …', [{ name: 'max_delete', nearest: 'max-delete' }]),
    /max_delete/,
  );
  assert.equal(nearMissNote('input `domain` is required', ignored), '');
});

test('a public key given as `key` (or `proxy-key`) has its own message, whether pasted or read from a .pub file', () => {
  const pub = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIL5kJfC7qGWA0a83pU5bw7XTZVuuF64Qae/EwIpunEFl me@laptop';
  const said =
    /holds a public key \(ssh-ed25519 AAAA…\), not a private key: give the private key, the file without \.pub .*authorized_keys/;
  assert.throws(
    () => read({ mode: 'backup', host: 'h', username: 'u', key: `${pub}\n` }),
    new RegExp(`: input \`key\` ${said.source}`),
  );
  assert.throws(
    () => read({ mode: 'backup', host: 'h', username: 'u', key: 'x', 'proxy-host': 'j', 'proxy-key': pub }),
    new RegExp(`: input \`proxy-key\` ${said.source}`),
  );
  assert.throws(() => keyInput('key', `restrict ${pub}`), said, 'an authorized_keys line with options');
  assert.throws(
    () => keyInput('key', '-----BEGIN PUBLIC KEY-----\nMCow\n-----END PUBLIC KEY-----'),
    /holds a public key \(-----BEGIN PUBLIC KEY-----\)/,
  );
  const file = join(testTempDir('rf-key-pub-'), 'id_ed25519.pub');
  writeFileSync(file, `${pub}\n`);
  assert.throws(() => keyInput('key', file), new RegExp(`: input \`key\` \\(read from ${file}\\) ${said.source}`));
  assert.doesNotThrow(() =>
    keyInput('key', '-----BEGIN OPENSSH PRIVATE KEY-----\nssh-ed25519 AAAA\n-----END OPENSSH PRIVATE KEY-----'),
  );
});

test('a push that cannot succeed is told apart from one worth retrying', () => {
  assert.ok(
    cannotSucceed(
      "fatal: '/tmp/nowhere' does not appear to be a git repository\nfatal: Could not read from remote repository.",
    ),
  );
  assert.ok(cannotSucceed('remote: Repository not found.'));
  assert.ok(cannotSucceed('remote: Permission to o/r.git denied to github-actions[bot].'));
  assert.ok(cannotSucceed('The requested URL returned error: 403'));
  assert.ok(!cannotSucceed(' ! [rejected]        main -> main (fetch first)'));
  assert.ok(!cannotSucceed("fatal: unable to access 'https://x/': Could not resolve host: x"));
});

test('one judge for every mode: if-missing and allow-denied, the wording a parameter', () => {
  const items = [
    { recipe: 'App', remote: '/srv/a', missing: true, wholeDenied: false, denied: [] },
    { recipe: 'App', remote: '/srv/b', missing: false, wholeDenied: true, denied: [] },
    { recipe: 'App', remote: '/srv/c', missing: false, wholeDenied: false, denied: ['c/1', 'c/2'] },
  ];
  const wording = { missing: ' on the server', denied: 'not writable by', consequence: 'not restored' };
  const strict = judgeEntries(items, { ifMissing: 'error', allowDenied: false, username: 'deploy' }, wording);
  assert.deepEqual(strict.problems, [
    'App: /srv/a is missing on the server',
    'App: /srv/b not writable by deploy; not restored. Use sudo: true or allow-denied: true',
    'App: 2 path(s) in /srv/c (c/1, c/2) not writable by deploy; not restored. Use sudo: true or allow-denied: true',
  ]);
  const lax = judgeEntries(items, { ifMissing: 'ignore', allowDenied: true, username: 'deploy' }, wording);
  assert.deepEqual(lax.problems, []);
  assert.equal(lax.warnings.length, 2);
});
