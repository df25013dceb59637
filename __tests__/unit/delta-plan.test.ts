import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import { BlockFeed, ShortError } from '../../src/transfer/delta/local.js';
import {
  changedRuns,
  fromHexLines,
  MAX_BLOCKS,
  parseChunk,
  parseHeader,
  parseSum,
  parseTool,
  requestSpec,
  runBytes,
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
