import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import { BlockFeed, ShortError } from '../../src/transfer/delta/local.js';
import {
  askEarly,
  blockSizeFor,
  changedRuns,
  EARLY_AFTER,
  EARLY_SHARE,
  fromHexLines,
  MAX_BLOCKS,
  parseAppend,
  parseChunk,
  parseHeader,
  parseSum,
  parseTool,
  requestSpec,
  RunFinder,
  runBytes,
  storedSpec,
} from '../../src/transfer/delta/plan.js';
import { FrameReader, ProtocolError } from '../../src/transfer/delta/remote.js';

// The delta transfer's pure rules: what a server's answer may say (every number bounded before it sizes
// anything), which blocks differ, and how the block stream is read when it lies about its lengths.

test('a block header holds together or is refused', () => {
  assert.deepEqual(parseHeader('F 10000000 1700000000 4096 2442'), {
    size: 10_000_000,
    mtime: 1_700_000_000,
    blockSize: 4096,
    count: 2442,
  });
  assert.deepEqual(parseHeader('F 0 -5 4096 0'), { size: 0, mtime: -5, blockSize: 4096, count: 0 });
  for (const bad of [
    'F 10000000 1700000000 4096 2443', // one block more than the size needs
    'F 10000000 1700000000 4095 2443', // not a power of two
    'F 10000000 1700000000 2048 4883', // below the smallest block
    `F ${4096 * (MAX_BLOCKS + 1)} 0 4096 ${MAX_BLOCKS + 1}`, // above the block cap
    'F 99999999999999999 0 4096 1', // beyond a safe integer
    'F 1 2 3',
    'F 10 0 4096 1 extra',
    ' F 10 0 4096 1',
  ])
    assert.equal(parseHeader(bad), null, bad);
});

test('tool, checksum and piece lines', () => {
  assert.equal(parseTool('T perl'), 'perl');
  assert.equal(parseTool('T none'), 'none');
  assert.equal(parseTool('T bash'), null);
  const sha = 'a'.repeat(64);
  assert.deepEqual(parseSum(`S ${sha} 10 1700000000`), { sha256: sha, size: 10, mtime: 1_700_000_000 });
  assert.deepEqual(parseSum(`S ${sha} -1 -1`), { sha256: sha, size: -1, mtime: -1 });
  assert.equal(parseSum(`S ${'A'.repeat(64)} 10 1`), null);
  assert.equal(parseSum('S  10 1'), null);
  assert.equal(parseChunk('E'), 'end');
  assert.equal(parseChunk('D 4096'), 4096);
  assert.equal(parseChunk('D 0'), null);
  assert.equal(parseChunk('D 99999999999'), null);
  assert.equal(parseChunk('D -1'), null);
});

test('hex digests (the coreutils fallback) are checked line by line', () => {
  assert.deepEqual(
    fromHexLines(Buffer.from('0011223344556677\n8899aabbccddeeff\n'), 2)!.toString('hex'),
    '00112233445566778899aabbccddeeff',
  );
  assert.equal(fromHexLines(Buffer.from('0011223344556677\nzz99aabbccddeeff\n'), 2), null);
  assert.equal(fromHexLines(Buffer.from('0011223344556677 8899aabbccddeeff\n'), 2), null);
});

test('changed runs: differing blocks, and every block beyond a shorter stored copy', () => {
  const d = (...bytes: number[]) => Buffer.concat(bytes.map((b) => Buffer.alloc(8, b)));
  assert.deepEqual(changedRuns(d(1, 2, 3, 4), d(1, 9, 9, 4), 4), [{ first: 1, count: 2 }]);
  assert.deepEqual(changedRuns(d(1, 2), d(1, 2, 3, 4), 4), [{ first: 2, count: 2 }]);
  assert.deepEqual(changedRuns(d(1, 2, 3), d(1, 2, 3), 3), []);
  assert.deepEqual(changedRuns(d(), d(5, 6), 2), [{ first: 0, count: 2 }]);
  assert.deepEqual(changedRuns(d(1, 2, 3, 4, 5), d(9, 2, 9, 4, 9), 5), [
    { first: 0, count: 1 },
    { first: 2, count: 1 },
    { first: 4, count: 1 },
  ]);
  // The last block of a file is short.
  assert.equal(runBytes({ first: 2, count: 2 }, 4096, 4096 * 3 + 10), 4096 + 10);
  assert.equal(runBytes({ first: 0, count: 1 }, 4096, 0), 0);
});

test('requests are cut into pieces of at most 8 MiB', () => {
  assert.equal(requestSpec([{ first: 1, count: 2 }], 4096), '4096 1+2');
  assert.equal(requestSpec([{ first: 0, count: 4096 }], 4096), '4096 0+2048 2048+2048');
  assert.equal(requestSpec([{ first: 3, count: 2 }], 16 << 20), `${16 << 20} 3+1 4+1`);
});

async function collect(feed: BlockFeed, n: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const p of feed.take(n)) parts.push(p);
  return Buffer.concat(parts);
}

const stream = (...parts: string[]) => Readable.from(parts.map((p) => Buffer.from(p, 'latin1')));

test('the block stream: exact, short, too long, or broken', async () => {
  // Two files: the first exact over two pieces, the second short.
  let feed = new BlockFeed(new FrameReader(stream('D 3\nabcD', ' 2\nde', 'E\nD 1\nxE\n')));
  feed.begin();
  assert.equal((await collect(feed, 5)).toString(), 'abcde');
  assert.equal(await feed.finish(), true);
  feed.begin();
  await assert.rejects(collect(feed, 4), ShortError);
  assert.equal(await feed.finish(), true, 'the E was read: the next file can follow');
  // More than asked for: skipped up to the E, reported.
  feed = new BlockFeed(new FrameReader(stream('D 4\nabcdD 2\nxyE\nD 1\nzE\n')));
  feed.begin();
  assert.equal((await collect(feed, 2)).toString(), 'ab');
  assert.equal(await feed.finish(), false);
  feed.begin();
  assert.equal((await collect(feed, 1)).toString(), 'z');
  assert.equal(await feed.finish(), true);
  // A piece header that is no header, a stream that ends, a line without end.
  for (const bad of ['X 3\nabcE\n', 'D 3\nab', 'D 999999999999\n', 'D 3'.padEnd(1000, '3')]) {
    feed = new BlockFeed(new FrameReader(stream(bad)));
    feed.begin();
    await assert.rejects(collect(feed, 3), ProtocolError, bad.slice(0, 20));
  }
});

test('an appended answer holds together or is refused; the stored copy is told as size and SHA-256', () => {
  assert.deepEqual(parseAppend('A 68157440 1700003600 zstd'), {
    size: 68_157_440,
    mtime: 1_700_003_600,
    codec: 'zstd',
  });
  assert.deepEqual(parseAppend('A 10 -5 none'), { size: 10, mtime: -5, codec: 'none' });
  for (const bad of ['A 10 5 xz', 'A 10 5', 'A 99999999999999999 0 none', 'A 10 5 none extra', 'F 10 5 none'])
    assert.equal(parseAppend(bad), null, bad);
  const sha = 'a'.repeat(64);
  assert.equal(storedSpec(1024, sha), `1024 ${sha}`);
  // Anything but 64 lower-case hex digits from the manifest is not passed on to the server.
  for (const odd of [undefined, 'A'.repeat(64), `${sha} x`, 'a'.repeat(63)])
    assert.equal(storedSpec(1024, odd), '1024 -');
});

test('runs found as the digests come are the runs found at once; closed runs can be asked for early', () => {
  const count = 64;
  const local = Buffer.alloc(count * 8);
  const remote = Buffer.alloc(count * 8);
  for (const i of [1, 2, 3, 10, 40, 41, 63]) remote[i * 8] = 1;
  const finder = new RunFinder();
  finder.feed(local, remote, 3);
  assert.deepEqual(finder.runs, [{ first: 1, count: 2 }]);
  assert.equal(finder.closed, 0, 'run 1+2 may still grow');
  finder.feed(local, remote, 20);
  assert.equal(finder.closed, 2);
  finder.feed(local, remote, count);
  assert.deepEqual(finder.runs, changedRuns(local, remote, count));
  assert.equal(finder.changed, 7);
  // A stored copy shorter than the server's file: every block beyond it differs.
  const short = new RunFinder();
  short.feed(local.subarray(0, 60 * 8), remote, count);
  assert.deepEqual(short.runs.at(-1), { first: 60, count: 4 });
});

test('blocks are asked for early only after enough are compared, and while few differ', () => {
  assert.equal(askEarly(EARLY_AFTER - 1, 0), false);
  assert.equal(askEarly(EARLY_AFTER, Math.floor(EARLY_AFTER * EARLY_SHARE)), true);
  assert.equal(askEarly(EARLY_AFTER, Math.floor(EARLY_AFTER * EARLY_SHARE) + 1), false);
});

test('the block size the scripts choose: perl and python3 up to 2^18 blocks, coreutils up to 512 of 64 KiB', () => {
  assert.equal(blockSizeFor(128 << 20, 'perl'), 4096);
  assert.equal(blockSizeFor(1 << 30, 'python3'), 4096);
  assert.equal(blockSizeFor((1 << 30) + 1, 'perl'), 8192);
  assert.equal(blockSizeFor(4 << 20, 'coreutils'), 65536);
  assert.equal(blockSizeFor((32 << 20) + 1, 'coreutils'), 131072);
});
