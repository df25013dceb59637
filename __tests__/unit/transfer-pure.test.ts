import assert from 'node:assert/strict';
import { test } from 'node:test';
import { applyExcludes, makeExcludeTest } from '../../src/transfer/local/excludes.js';
import { OWN_TEMP_PATTERNS } from '../../src/transfer/entries.js';
import { parseListing } from '../../src/transfer/tar/listing.js';
import {
  emptyManifest,
  manifestChunks,
  sameManifest,
  serializeManifest,
} from '../../src/transfer/manifest/manifest.js';
import { shCommand, shQuote } from '../../src/transfer/shell.js';

test('excludes follow rsync: no slash = name at any depth, leading slash = anchored, trailing slash = folders only', () => {
  const skip = makeExcludeTest(['lock', '/tmp/', 'cache/', '*.log', 'a/b', '/c/d']);
  assert.equal(skip('lock', false), true);
  assert.equal(skip('x/y/lock', false), true);
  assert.equal(skip('tmp', true), true);
  assert.equal(skip('x/tmp', true), false, 'anchored at the top of the transfer');
  assert.equal(skip('tmp', false), false, 'trailing slash: folders only');
  assert.equal(skip('deep/cache', true), true);
  assert.equal(skip('deep/cache', false), false);
  assert.equal(skip('d/app.log', false), true);
  assert.equal(skip('a/b', false), true);
  assert.equal(skip('x/a/b', false), true, 'a slash that is not the first character does not anchor');
  assert.equal(skip('c/d', false), true);
  assert.equal(skip('x/c/d', false), false, 'a leading slash anchors at the top of the transfer');
  const files = [
    { rel: '', type: 'dir' },
    { rel: 'tmp', type: 'dir' },
    { rel: 'tmp/f', type: 'file' },
    { rel: 'keep', type: 'file' },
  ];
  assert.deepEqual(
    applyExcludes(files, skip).map((f) => f.rel),
    ['', 'keep'],
  );
});

test('listing parser: records, missing, denied; a truncated listing is an error', () => {
  const rec = (flag: string, type: string, rel: string, extra = '') =>
    [flag, type, '12', '1700000000.5', '640', '1000', '1000', 'u', 'g', rel, extra].join('\0') + '\0';
  const out = Buffer.from(
    'E\0' +
      rec('R', 'd', '') +
      rec('R', 'f', 'a b\nc') +
      rec('R', 'l', 'ln', '../x') +
      rec('U', 'd', 'secret') +
      'E\0M\0E\0D\0N\0',
  );
  const [ok, missing, denied] = parseListing(out, 3);
  assert.ok(ok && ok.status === 'ok');
  assert.deepEqual(
    ok.files.map((f) => [f.rel, f.type, f.readable]),
    [
      ['', 'dir', true],
      ['a b\nc', 'file', true],
      ['ln', 'symlink', true],
      ['secret', 'dir', false],
    ],
  );
  assert.equal(ok.files[1]!.mtime, 1700000000);
  assert.equal(ok.files[1]!.mode, 0o640);
  assert.equal(ok.files[2]!.target, '../x');
  assert.equal(missing!.status, 'missing');
  assert.equal(denied!.status, 'denied');
  assert.throws(() => parseListing(Buffer.from('E\0R\0f\0'), 1), /truncated/);
  assert.throws(() => parseListing(Buffer.from('E\0M\0'), 2), /expected 2/);
  const unreadableRoot = parseListing(Buffer.from('E\0' + rec('U', 'd', '') + 'N\0'), 1);
  assert.equal(unreadableRoot[0]!.status, 'denied');
});

test('shell quoting survives quotes, spaces and newlines', () => {
  assert.equal(shQuote("it's"), `'it'\\''s'`);
  assert.equal(shCommand('echo "$1"', ['a b'], true), `sudo -n 'sh' '-c' 'echo "$1"' 'sh' 'a b'`);
});

test('manifest serialisation is sorted, one line per file', () => {
  const m = emptyManifest('d');
  m.files['b'] = { type: 'file', size: 1, mtime: 2, mode: '0644', uid: 0, gid: 0, user: 'root', group: 'root' };
  m.files['a'] = { type: 'dir', size: 0, mtime: 2, mode: '0755', uid: 0, gid: 0, user: 'root', group: 'root' };
  const text = serializeManifest(m);
  assert.ok(text.indexOf('"a"') < text.indexOf('"b"'));
  assert.deepEqual(JSON.parse(text), m);
  assert.equal(text.split('\n').filter((l) => l.includes('"mode"')).length, 2);
});

test('our own leftovers (SFTP temp files, tar staging folders) are never salvaged; look-alikes are', () => {
  const skip = makeExcludeTest(OWN_TEMP_PATTERNS);
  assert.equal(skip('d/.remote-files-0123456789ab.tmp', false), true);
  assert.equal(skip('.remote-files-Ab12Cd', true), true);
  assert.equal(skip('.remote-files-Ab12Cd', false), false, 'a file of that name is data');
  assert.equal(skip('.remote-files-notes.txt', false), false);
});

test('a large manifest is written in pieces that join to the same JSON, one line per file, keys sorted', () => {
  const m = emptyManifest('big.example');
  // Over 1 MB of lines, so more than one piece; inserted in reverse to check the sort.
  for (let i = 12_000; i > 0; i--)
    m.files[`d/f${String(i).padStart(6, '0')}`] = {
      type: 'file',
      size: i,
      mtime: 1700000000,
      mode: '0644',
      uid: 1000,
      gid: 1000,
      user: 'app',
      group: 'app',
      sha256: 'a'.repeat(64),
    };
  const pieces = [...manifestChunks(m)];
  assert.ok(pieces.length > 3, `${pieces.length} pieces`);
  const text = pieces.join('');
  assert.equal(text, serializeManifest(m));
  assert.deepEqual(JSON.parse(text), m);
  const lines = text.split('\n').filter((l) => l.startsWith('    "d/'));
  assert.equal(lines.length, 12_000);
  assert.ok(lines[0]!.startsWith('    "d/f000001"'), lines[0]);
});

test('sameManifest: property order does not matter; a changed, added or removed record does', () => {
  const record = {
    type: 'file' as const,
    size: 1,
    mtime: 2,
    mode: '0644',
    uid: 0,
    gid: 0,
    user: 'root',
    group: 'root',
    sha256: 'b'.repeat(64),
  };
  const a = emptyManifest('x');
  a.files['f'] = record;
  const b = JSON.parse(JSON.stringify(a)) as typeof a;
  b.files['f'] = {
    sha256: record.sha256,
    group: 'root',
    user: 'root',
    gid: 0,
    uid: 0,
    mode: '0644',
    mtime: 2,
    size: 1,
    type: 'file',
  };
  assert.equal(sameManifest(a, b), true);
  assert.equal(sameManifest(a, { ...b, files: { f: { ...record, mtime: 3 } } }), false);
  assert.equal(sameManifest(a, { ...b, files: { ...b.files, g: record } }), false);
  assert.equal(sameManifest(a, { ...b, files: {} }), false);
  assert.equal(sameManifest(a, { ...b, encryption: 'age:x' }), false);
  assert.equal(sameManifest(a, { ...b, entries: { e: { remote: '/e', recipe: 'R', type: 'dir' } } }), false);
});

test('listing tokens read one at a time: every field of every record, and a missing final NUL still ends the last token', () => {
  const rec = (rel: string, type: string) => [
    'R',
    type,
    '4',
    '1700000000.5',
    '644',
    '1000',
    '1000',
    'app',
    'app',
    rel,
    '',
  ];
  const tokens = ['E', ...rec('', 'd'), ...rec('a', 'f'), ...rec('b', 'f'), 'E', 'M', 'N'];
  const [first, second] = parseListing(Buffer.from(tokens.join('\0'), 'utf8'), 2);
  assert.equal(second!.status, 'missing');
  assert.equal(first!.status, 'ok');
  const files = first!.status === 'ok' ? first!.files : [];
  assert.deepEqual(
    files.map((f) => [f.rel, f.type, f.mtime, f.mode, f.user]),
    [
      ['', 'dir', 1700000000, 0o644, 'app'],
      ['a', 'file', 1700000000, 0o644, 'app'],
      ['b', 'file', 1700000000, 0o644, 'app'],
    ],
  );
  assert.throws(
    () => parseListing(Buffer.from(['E', ...rec('', 'd').slice(0, 5)].join('\0')), 1),
    /truncated server listing/,
  );
});

test('owner and group names come once per id after the records; an id without a name keeps its number', () => {
  const rec = (rel: string, uid: string, gid: string) => [
    'R',
    rel === '' ? 'd' : 'f',
    '1',
    '1700000000',
    '644',
    uid,
    gid,
    '',
    '',
    rel,
    '',
  ];
  const tokens = [
    'E',
    ...rec('', '0', '0'),
    ...rec('a', '1000', '1001'),
    ...rec('b', '4242', '1001'),
    'N',
    'u',
    '0',
    'root',
    'u',
    '1000',
    'app',
    'u',
    '4242',
    '',
    'g',
    '0',
    'root',
    'g',
    '1001',
    'staff',
  ];
  const [only] = parseListing(Buffer.from(tokens.join('\0') + '\0', 'utf8'), 1);
  const files = only!.status === 'ok' ? only!.files : [];
  assert.deepEqual(
    files.map((f) => [f.rel, f.user, f.group]),
    [
      ['', 'root', 'root'],
      ['a', 'app', 'staff'],
      ['b', '4242', 'staff'],
    ],
  );
  assert.throws(
    () => parseListing(Buffer.from([...tokens.slice(0, 12), 'N', 'u', 'x', 'root'].join('\0')), 1),
    /truncated owner names/,
  );
  assert.throws(
    () => parseListing(Buffer.from([...tokens.slice(0, 12), 'N', 'u', '0'].join('\0')), 1),
    /truncated owner names/,
  );
});

test('listing numbers are read from their digits: times round down (before 1970 too), anything else is refused', () => {
  const listing = (size: string, mtime: string, mode = '644', uid = '0') =>
    Buffer.from(['E', 'R', 'f', size, mtime, mode, uid, '0', 'u', 'g', '', '', 'N'].join('\0') + '\0');
  const file = (b: Buffer) => {
    const [only] = parseListing(b, 1);
    return only!.status === 'ok' ? only!.files[0]! : undefined;
  };
  assert.deepEqual(
    [file(listing('9007199254740991', '1700000000.9999999999'))!.size, file(listing('0', '1700000000'))!.mtime],
    [2 ** 53 - 1, 1700000000],
  );
  assert.equal(file(listing('1', '-1.5'))!.mtime, -2, 'as Math.floor');
  assert.equal(file(listing('1', '-2.0000000000'))!.mtime, -2);
  assert.equal(file(listing('1', '5', '4755'))!.mode, 0o4755);
  for (const bad of [
    listing('9'.repeat(400), '1'),
    listing('1', '1', '644', '9007199254740993'),
    listing('1e3', '1'),
    listing('', '1'),
    listing('-1', '1'),
    listing('1', '1.5x'),
    listing('1', '1', '648'),
    listing('1', '1', '644', '+1'),
    listing(' 1', '1'),
  ]) {
    assert.throws(() => parseListing(bad, 1), /unexpected server listing/);
  }
});

test('a listing is refused without its end; an entry find printed nothing for is denied, never empty', () => {
  const rec = (rel: string, type = 'd') =>
    ['R', type, '0', '1700000000', '755', '0', '0', '', '', rel, ''].join('\0') + '\0';
  // Cut at a record boundary: the missing records would read as files deleted on the server.
  assert.throws(
    () => parseListing(Buffer.from('E\0' + rec('') + rec('a', 'f')), 1),
    /its end \(the owner names section\) is missing/,
  );
  const [vanished, after] = parseListing(Buffer.from('E\0E\0' + rec('') + 'N\0'), 2);
  assert.deepEqual(vanished, {
    status: 'denied',
    reason: 'the server listed nothing for it (it vanished, or find failed on it)',
  });
  assert.equal(after!.status, 'ok');
  const [last] = parseListing(Buffer.from('E\0N\0'), 1);
  assert.equal(last!.status, 'denied');
  // Type letters are looked up as own keys only.
  const [odd] = parseListing(Buffer.from('E\0' + rec('') + rec('x', '__proto__') + rec('y', 'constructor') + 'N\0'), 1);
  assert.deepEqual(odd!.status === 'ok' && odd!.files.map((f) => f.type), ['dir', 'other', 'other']);
});
