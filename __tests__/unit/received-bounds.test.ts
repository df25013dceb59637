import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { logSafe } from '../../src/report/reporter.js';
import { LISTING_CAPS } from '../../src/transfer/listing-cap.js';
import { parseListing } from '../../src/transfer/tar/listing.js';
import { afterMark, ListingGuard } from '../../src/transfer/tar/listing-guard.js';
import { LIST_SCRIPT } from '../../src/transfer/tar/remote-scripts.js';
import { testTempDir } from '../helpers/temp.js';

// Issue #23: the bounds on what a server sends (the listing guard) must let every honest listing
// through, however its bytes are split; and the one escaping path for printed lines.

const scratch = testTempDir('rf-bounds-');
after(() => rmSync(scratch, { recursive: true, force: true }));

/** LIST_SCRIPT's real output for `paths`, made by this machine's GNU find. */
function realListing(paths: string[]): Buffer {
  return execFileSync('sh', ['-c', LIST_SCRIPT, 'sh', ...paths]);
}

function feedInPieces(guard: ListingGuard, out: Buffer, size: number): void {
  for (let i = 0; i < out.length; i += size) guard.feed(out.subarray(i, i + size));
}

test('an honest listing passes the guard in any split, and parses', () => {
  const root = join(scratch, 'site');
  mkdirSync(join(root, 'a b', 'deep'), { recursive: true });
  writeFileSync(join(root, 'a b', 'deep', 'name\nwith newline'), 'x');
  writeFileSync(join(root, 'plain.txt'), 'hello');
  symlinkSync('/etc/passwd', join(root, 'link'));
  const out = realListing([root, join(scratch, 'missing'), join(root, 'plain.txt')]);
  for (const size of [1, 2, 3, 7, 512, out.length]) feedInPieces(new ListingGuard(3), out, size);
  const parsed = parseListing(out, 3);
  assert.equal(parsed[0]!.status, 'ok');
  assert.equal(parsed[1]!.status, 'missing');
});

test('the guard refuses what is not a listing at once, and more entries or names than can be', () => {
  assert.throws(() => new ListingGuard(1).feed(Buffer.alloc(70 * 1024, 'x')), /a field far longer/);
  assert.throws(() => new ListingGuard(1).feed(Buffer.from('E\0M\0E\0M\0')), /more than the 1 entries asked for/);
  assert.throws(() => new ListingGuard(1).feed(Buffer.from('X\0')), /"X" where an entry or the owner names/);
  const names = Buffer.from('E\0R\0f\x001\x001\x00644\x000\x000\0\0\0\0\0N\0' + 'u\x000\0root\0'.repeat(19));
  assert.throws(() => new ListingGuard(1).feed(names), /more owner names than its files have owners/);
});

/** `count` unique well-formed file records, `f<n>` in the entry's root folder. */
function records(from: number, count: number): Buffer {
  const one = (n: number) => ['R', 'f', '1', '1', '644', '0', '0', '', '', `f${n}`, ''].join('\0') + '\0';
  return Buffer.from(Array.from({ length: count }, (_x, i) => one(from + i)).join(''));
}

test('well-formed records are no less a flood: the guard refuses the record past the cap, naming the entry', () => {
  const caps = { records: 1000, bytes: 2 ** 30 };
  const guard = new ListingGuard(2, { remotes: ['/srv/app', '/srv/other'], caps });
  // The first entry is done; the second streams records without end.
  guard.feed(Buffer.from('E\0M\0E\0R\0d\0' + '4096\x001\x00755\x000\x000\0\0\0\0\0'));
  guard.feed(records(0, 998));
  guard.feed(records(998, 1)); // the 1000th record: at the cap, still a listing
  assert.throws(
    () => guard.feed(records(999, 1)),
    /listing grew past its cap at \/srv\/other: more than 1,000 files and folders.*nothing was written/,
  );
  // Without the paths asked for, the entry is named by its number.
  const unnamed = new ListingGuard(1, { caps: { records: 5, bytes: 2 ** 30 } });
  assert.throws(() => unnamed.feed(Buffer.concat([Buffer.from('E\0'), records(0, 6)])), /at entry 1 of 1: more than 5/);
});

test('the listing caps hold for an honest listing at their edge, over records and bytes', () => {
  const root = join(scratch, 'edge');
  mkdirSync(join(root, 'sub'), { recursive: true });
  for (const name of ['a', 'b', 'sub/c']) writeFileSync(join(root, name), name);
  const out = realListing([root]);
  const exact = { records: 5, bytes: out.length }; // root, a, b, sub, sub/c
  for (const size of [1, 7, out.length]) feedInPieces(new ListingGuard(1, { remotes: [root], caps: exact }), out, size);
  assert.throws(
    () => new ListingGuard(1, { remotes: [root], caps: { ...exact, records: 4 } }).feed(out),
    /more than 4 files and folders/,
  );
  assert.throws(
    () => feedInPieces(new ListingGuard(1, { remotes: [root], caps: { ...exact, bytes: out.length - 1 } }), out, 7),
    /more than \d+ bytes of listing/,
  );
  // The real caps: what a server with millions of files lists, and no flood beyond it.
  assert.deepEqual(LISTING_CAPS, { records: 10_000_000, bytes: 2 ** 30 });
});

test('after the probe: a GNU server’s listing is checked, another server’s is dropped', () => {
  const mark = '\nremote-files listing:\n';
  const gnu = (p: string) => p.includes('GNU');
  const check = afterMark(mark, 1024, new ListingGuard(1), gnu);
  assert.equal(check(Buffer.from('GNU find\nGNU tar\n1000')), true);
  assert.throws(() => check(Buffer.from(`${mark}junk\0`)), /the server.s listing holds .*refusing it/);
  const busybox = afterMark(mark, 1024, new ListingGuard(1), gnu);
  assert.equal(busybox(Buffer.from(`BusyBox v1.36${mark}E\0`)), true);
  assert.equal(busybox(Buffer.from('anything at all, never kept')), false);
  assert.throws(
    () => afterMark(mark, 10, new ListingGuard(1), gnu)(Buffer.alloc(100, 'y')),
    /far more than a probe says/,
  );
});

test('logSafe: no line starts a workflow command, no control character reaches a terminal; text and line breaks stay', () => {
  assert.equal(
    logSafe('renamed a\n::add-mask::Connected\n  ::error::x\u001b[2J\rend\tok'),
    'renamed a\n: :add-mask::Connected\n  : :error::x\\x1b[2J\\x0dend\tok',
  );
  assert.equal(logSafe('plain: text :: inside'), 'plain: text :: inside');
  assert.equal(logSafe('c1\u009b31m'), 'c1\\x9b31m');
});
