import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkManifest } from '../../src/transfer/manifest/check.js';
import {
  baseForm,
  exceptionForm,
  isExceptionForm,
  isPortableName,
  nameOfStored,
  PortableNames,
} from '../../src/transfer/manifest/portable-names.js';
import { portabilityProblems, SimulatedFs, windowsProblem } from '../helpers/portable-paths.js';

// Names a Linux server may hold that some other system cannot check out, or takes for one another.
const NFC = 'caf\u00e9';
const NFD = 'cafe\u0301';
const HARD = [
  'a:b',
  'what?.txt',
  'x<y>z',
  'say "hi"',
  'pipe|star*',
  'back\\slash',
  'dir\\.git',
  'a\\.GIT\\b',
  'aux.conf',
  'AUX',
  'con',
  'nul.tar.gz',
  'com1',
  'COM\u00b9.log',
  'lpt9 .txt',
  'conin$',
  'trailing.',
  'trailing ',
  'dots...',
  'tab\there',
  'nl\nhere',
  'bell\x07',
  'del\x7f',
  'Makefile',
  'makefile',
  'MAKEFILE',
  NFC,
  NFD,
  'CAF\u00c9',
  '.git',
  '.GIT',
  '.gitattributes',
  '.gitignore',
  '.gitmodules',
  '.git.',
  'git~1',
  '%',
  '%20',
  ' ',
  '%.git',
  `%${'x'.repeat(254)}`,
  'y'.repeat(255),
  `${'\u00e9'.repeat(127)}:`,
  `${'z'.repeat(250)}?`,
  'plain.txt',
  'README',
  '.github',
  'x%~1',
  '%x%~1',
];

function roundTrip(names: string[], fs: SimulatedFs): void {
  const paths = names.map((n) => `dir/${n}`);
  const writer = new PortableNames(undefined, paths);
  for (const p of paths) fs.write(writer.toDisk(p), `content of ${JSON.stringify(p)}`);
  // What the manifest keeps: the paths and the exceptions. A reader built from them alone maps back.
  const table = writer.table(paths);
  const reader = new PortableNames(table, paths);
  const listed = fs.list(writer.toDisk('dir'));
  assert.equal(listed.length, names.length, 'every name is its own file on a case-insensitive, Windows-rules disk');
  const back = listed.map((d) => reader.fromDisk('dir', d));
  assert.deepEqual([...back].sort(), [...names].sort(), 'the listing gives back every exact name');
  for (const p of paths) assert.equal(fs.read(reader.toDisk(p)), `content of ${JSON.stringify(p)}`, p);
}

test('every kind of name is stored portably and comes back exactly, on a simulated case-insensitive Windows disk', () => {
  roundTrip(HARD, new SimulatedFs());
  const writer = new PortableNames(undefined, HARD);
  assert.deepEqual(portabilityProblems(HARD.map((n) => writer.toDisk(n))), []);
  // The same names stored as they are break such a disk.
  assert.ok(portabilityProblems(HARD).length > 20);
  assert.throws(() => new SimulatedFs().write('a:b', ''), /a character Windows refuses/);
});

test('what each name is stored as', () => {
  const cases: Array<[string, string]> = [
    ['plain.txt', 'plain.txt'],
    ['a:b', '%a%3Ab'],
    ['aux.conf', '%aux.conf'],
    ['trailing.', '%trailing%2E'],
    ['trailing ', '%trailing%20'],
    ['.git', '%.git'],
    ['.git.', '%.git%2E'],
    ['dir\\.git', '%dir%5C.git'],
    ['%20', '%%2520'],
    [' ', '%%20'],
    [NFC, NFC],
    [NFD, '%cafe%CC%81'],
    ['nl\nhere', '%nl%0Ahere'],
  ];
  for (const [name, stored] of cases) {
    assert.equal(baseForm(name), stored, JSON.stringify(name));
    assert.equal(nameOfStored(stored), name, JSON.stringify(stored));
  }
  assert.ok(!isPortableName('COM\u00b9') && !isPortableName('lpt1 .txt') && isPortableName('com10'));
  // Names git still refused under git-safe-1 (issue #22, item 8): a backslash before .git.
  for (const name of ['dir\\.git', 'a\\.GIT\\b']) assert.equal(windowsProblem(baseForm(name)), undefined, name);
});

test('case and normalization collisions: all but the first in byte order take an exception form, recorded', () => {
  const n = new PortableNames(undefined, ['d/makefile', 'd/Makefile', 'd/MAKEFILE', `d/${NFC}`, `d/${'CAF\u00c9'}`]);
  assert.equal(n.toDisk('d/MAKEFILE'), 'd/MAKEFILE');
  assert.equal(n.toDisk('d/Makefile'), 'd/%Makefile%~1');
  assert.equal(n.toDisk('d/makefile'), 'd/%makefile%~2');
  assert.equal(n.toDisk(`d/${'CAF\u00c9'}`), 'd/CAF\u00c9');
  assert.equal(n.toDisk(`d/${NFC}`), 'd/%caf%C3%A9%~1');
  assert.deepEqual(Object.keys(n.table(['d/makefile', 'd/Makefile', 'd/MAKEFILE'])).sort(), [
    'd/Makefile',
    'd/makefile',
  ]);
  // A name already recorded keeps its form when a sibling that sorts first arrives later.
  const later = new PortableNames({ 'd/makefile': '%makefile%~1' }, ['d/Makefile', 'd/makefile']);
  later.decide(['d/MAKEFILE']);
  assert.equal(later.toDisk('d/Makefile'), 'd/Makefile', 'an old name keeps its form');
  assert.equal(later.toDisk('d/makefile'), 'd/%makefile%~1');
  assert.equal(later.toDisk('d/MAKEFILE'), 'd/%MAKEFILE%~2', 'the newcomer takes a free exception form');
  // Not pure decoding: a stale plain copy under a name now stored as an exception is not ours.
  assert.equal(later.fromDisk('d', '%makefile%~1'), 'makefile');
  assert.equal(later.fromDisk('d', 'makefile'), undefined);
  assert.equal(later.fromDisk('d', '.git'), undefined, 'a live .git is never ours');
  assert.equal(later.fromDisk('d', '%%2520'), '%20');
  assert.equal(later.fromDisk('d', '%%20x'), undefined, 'a form we never write for its name');
});

test('a name too long once escaped is stored under a short form, recorded (issue #22, item 7)', () => {
  const long = `%${'x'.repeat(254)}`;
  assert.equal(Buffer.byteLength(long), 255);
  const n = new PortableNames(undefined, [`d/${long}`, `d/${'\u00e9'.repeat(127)}:`]);
  const stored = n.toDisk(`d/${long}`).slice(2);
  assert.ok(Buffer.byteLength(stored) <= 255, stored);
  assert.equal(stored, exceptionForm(long, 1));
  const table = n.table([`d/${long}`]);
  assert.deepEqual(table, { [`d/${long}`]: stored });
  assert.equal(new PortableNames(table, [`d/${long}`]).fromDisk('d', stored), long);
});

test('a migrated or long-lived folder: the stored field is input, checked like the rest of the manifest', () => {
  const base = () => ({
    version: 1,
    domain: 'example.com',
    names: 'portable-1',
    entries: { www: { remote: '/srv/www', recipe: 'Web', type: 'dir' } },
    files: {
      www: { type: 'dir', size: 0, mtime: 1, mode: '0755', uid: 0, gid: 0, user: 'root', group: 'root' },
      'www/makefile': { type: 'dir', size: 0, mtime: 1, mode: '0755', uid: 0, gid: 0, user: 'root', group: 'root' },
    } as Record<string, unknown>,
    stored: { 'www/makefile': '%makefile%~1' } as Record<string, string>,
  });
  assert.doesNotThrow(() => checkManifest(base(), 'm.json'));
  const bad: Array<[string, (m: ReturnType<typeof base>) => void, RegExp]> = [
    ['another name', (m) => (m.stored['www/makefile'] = '%other%~1'), /is not the stored form portable-1 gives/],
    ['a climb', (m) => (m.stored['www/makefile'] = '..'), /is not the stored form/],
    ['an unrecorded path', (m) => (m.stored['www/x'] = '%x%~1'), /names no path the manifest records/],
    ['under git-safe-1', (m) => (m.names = 'git-safe-1'), /"stored" is set, but "names" is not "portable-1"/],
    [
      'two paths, one stored name',
      (m) => {
        m.files['www/Makefile'] = m.files['www/makefile'];
        m.stored['www/Makefile'] = '%Makefile%~1';
      },
      /is the stored form of another path in its folder too/,
    ],
  ];
  for (const [what, edit, message] of bad) {
    const m = base();
    edit(m);
    assert.throws(() => checkManifest(m, 'm.json'), message, what);
  }
});

test('random folders of look-alike names (seeded): unique on the simulated disk, read back exactly, stable across runs', () => {
  let seed = 26;
  const random = (n: number) => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed % n;
  };
  const alphabet = [
    'a',
    'A',
    'c',
    'C',
    'o',
    'n',
    'N',
    ':',
    '.',
    ' ',
    '%',
    '~',
    '1',
    '\u00e9',
    'e\u0301',
    '\u00c9',
    '\\',
    '?',
    '\t',
  ];
  const randomName = () => {
    if (random(20) === 0) return '%'.repeat(1 + random(3)) + 'x'.repeat(250);
    let name = '';
    for (let i = 0, n = 1 + random(5); i < n; i++) name += alphabet[random(alphabet.length)];
    return name;
  };
  for (let round = 0; round < 200; round++) {
    const names = new Set<string>();
    for (let i = 0, n = 2 + random(12); i < n; i++) names.add(randomName());
    const list = [...names];
    roundTrip(list, new SimulatedFs());
    // A later backup: some names gone, some new; the ones still there keep their stored form.
    const first = list.map((n) => `d/${n}`);
    const before = new PortableNames(undefined, first);
    const kept = first.filter(() => random(3) > 0);
    const added = [randomName(), randomName()].map((n) => `d/${n}`).filter((p) => !first.includes(p));
    const after = new PortableNames(before.table(kept), kept);
    after.decide(added);
    for (const p of kept) assert.equal(after.toDisk(p), before.toDisk(p), p);
    const fs = new SimulatedFs();
    for (const p of [...kept, ...added]) fs.write(after.toDisk(p), p);
    const reader = new PortableNames(after.table([...kept, ...added]), [...kept, ...added]);
    for (const p of [...kept, ...added]) assert.equal(fs.read(reader.toDisk(p)), p);
  }
});

test('a name that starts with `~` is escaped to `%~…`, and is no exception form for that (seed 1087585775)', () => {
  // `~|aß'\*` is stored escaped as `%~%7Caß'%5C%2A`, which begins like the `%~<n>` mark. Taken for an
  // exception, it went into the manifest's stored field, and the check refused it on the next restore.
  const name = "~|aß'\\*";
  const twin = "~|ASS'\\*"; // ß folds to ss: one file on a case-insensitive disk.
  assert.equal(baseForm(name), "%~%7Caß'%5C%2A");
  assert.ok(!isExceptionForm(baseForm(name)));
  assert.equal(nameOfStored(baseForm(name)), name);
  assert.ok(isExceptionForm(exceptionForm(name, 1)) && isExceptionForm(exceptionForm('~', 12)));
  for (const names of [[name], [name, twin], [name, twin, '~', '~1', '~%~1', '%~1']])
    roundTrip(names, new SimulatedFs());

  const manifest = (names: string[]) => {
    const paths = ['tree', ...names.map((n) => `tree/${n}`)];
    const table = new PortableNames(undefined, paths).table(paths);
    const file = { type: 'file', size: 0, mtime: 1, mode: '0644', uid: 0, gid: 0, user: 'root', group: 'root' };
    return {
      version: 1,
      domain: 'example.com',
      names: 'portable-1',
      entries: { tree: { remote: '/srv/tree', recipe: 'Tree', type: 'dir' } },
      files: Object.fromEntries(paths.map((p) => [p, p === 'tree' ? { ...file, type: 'dir' } : file])),
      ...(Object.keys(table).length > 0 && { stored: table }),
    } as Record<string, unknown> & { stored?: Record<string, string> };
  };
  // What a backup writes, the check takes.
  assert.equal(manifest([name]).stored, undefined, 'no exception to record');
  const twins = manifest([name, twin]);
  assert.deepEqual(twins.stored, { [`tree/${name}`]: exceptionForm(name, 1) });
  assert.doesNotThrow(() => checkManifest(twins, 'm.json'));
  // Still strict: a record holding the plain escaped form, or another name's, is refused.
  for (const wrong of [baseForm(name), exceptionForm(twin, 1), `${baseForm(name)}%~1`]) {
    const m = manifest([name, twin]);
    m.stored![`tree/${name}`] = wrong;
    assert.throws(() => checkManifest(m, 'm.json'), /is not the stored form portable-1 gives/, wrong);
  }
});
