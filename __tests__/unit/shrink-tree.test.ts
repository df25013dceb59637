import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { NodeSpec, TreeSpec } from '../helpers/random-tree.js';
import { childrenFirst, PLAIN_TIME, shrinkTree, withoutNodes } from '../helpers/shrink-tree.js';

// The round-trip property's shrinker (__tests__/helpers/shrink-tree.ts), with synthetic predicates in
// place of a backup and a restore: it runs only when a random tree fails, so it is proven here.

const LONG_PERCENT = `%${'x'.repeat(254)}`;

function node(path: string, kind: NodeSpec['kind'], extra: Partial<NodeSpec> = {}): NodeSpec {
  return {
    path,
    kind,
    mode: kind === 'dir' ? 0o2711 : 0o4600,
    mtime: -12.5,
    uid: 300000,
    gid: 4_294_967_294,
    ...extra,
  };
}

/** Twenty-odd nodes: folders three deep, files with content, links, a hard link, a fifo. */
function bigTree(transport: 'tar' | 'sftp' = 'tar'): TreeSpec {
  const nodes: NodeSpec[] = [
    node('a b', 'dir'),
    node('a b/c\nd', 'dir'),
    node('a b/c\nd/secret', 'file', { mode: 0, content: 'c2VjcmV0' }),
    node('a b/c\nd/other', 'file', { content: 'eA==' }),
    node('a b/ln', 'symlink', { mode: 0o777, target: '../x' }),
    node(LONG_PERCENT, 'file', { content: 'eQ==', sparse: { size: 3_000_000, at: 1_000_000 } }),
    node('hard', 'hardlink', { mode: 0, target: 'a b/c\nd/other' }),
    node('fifo', 'fifo', { mode: 0o600 }),
  ];
  for (let i = 0; i < 16; i++) nodes.push(node(`f${i}.txt`, 'file', { content: 'eg==' }));
  return { seed: 1, transport, root: { uid: 1000, gid: 1000, mtime: 4_102_444_800.5 }, nodes };
}

const paths = (t: TreeSpec) => t.nodes.map((n) => n.path).sort();

test('children come before their folders, later nodes first among equals', () => {
  const t = bigTree();
  const order = childrenFirst(t.nodes);
  assert.deepEqual(order.slice(0, 2), ['a b/c\nd/other', 'a b/c\nd/secret']);
  for (const n of t.nodes)
    for (const m of t.nodes)
      if (m.path.startsWith(`${n.path}/`)) assert.ok(order.indexOf(m.path) < order.indexOf(n.path), m.path);
});

test('dropping a node drops what lies below it and hard links to what is gone', () => {
  const smaller = withoutNodes(bigTree(), ['a b/c\nd']);
  assert.ok(!smaller.nodes.some((n) => n.path.startsWith('a b/c\nd') || n.path === 'hard'));
  assert.ok(smaller.nodes.some((n) => n.path === 'a b/ln'));
});

test('one failing node: everything else is dropped, its folders kept and made plain with it', async () => {
  // Fails while a file of mode 0000 is in the tree, wherever it is and whatever it is called.
  let calls = 0;
  const { tree, runs, cut } = await shrinkTree(
    bigTree(),
    async (t) => {
      calls++;
      return t.nodes.some((n) => n.kind === 'file' && n.mode === 0);
    },
    { runs: 200 },
  );
  assert.equal(cut, false);
  assert.equal(runs, calls);
  // Its two folders stay (dropping one drops the file); each got a plain name, the file's path follows
  // (its own name, `secret`, is plain already).
  assert.deepEqual(paths(tree), ['n1', 'n1/n1', 'n1/n1/secret']);
  const file = tree.nodes.find((n) => n.kind === 'file')!;
  // The attribute that makes it fail stays; every other one is plain.
  assert.deepEqual(file, {
    path: 'n1/n1/secret',
    kind: 'file',
    mode: 0,
    mtime: PLAIN_TIME,
    uid: 0,
    gid: 0,
    content: '',
  });
  for (const d of tree.nodes.filter((n) => n.kind === 'dir'))
    assert.deepEqual([d.mode, d.mtime, d.uid, d.gid], [0o755, PLAIN_TIME, 0, 0]);
  assert.deepEqual(tree.root, { uid: 0, gid: 0, mtime: PLAIN_TIME });
  // Bounded by the tree: 24 nodes, far fewer runs than trying every subset.
  assert.ok(runs < 80, `${runs} runs`);
});

test('two nodes that fail only together both stay; the name the failure needs is kept', async () => {
  const { tree } = await shrinkTree(
    bigTree(),
    async (t) => t.nodes.some((n) => n.path === LONG_PERCENT) && t.nodes.some((n) => n.kind === 'fifo'),
    { runs: 200 },
  );
  assert.deepEqual(paths(tree), [LONG_PERCENT, 'fifo']);
  const long = tree.nodes.find((n) => n.path === LONG_PERCENT)!;
  assert.equal(long.content, '');
  assert.equal(long.sparse, undefined, 'a sparse file made plain is a plain empty file');
});

test('a hard link kept: its target follows the rename of the file and its folders', async () => {
  const { tree } = await shrinkTree(bigTree(), async (t) => t.nodes.some((n) => n.kind === 'hardlink'), { runs: 200 });
  const link = tree.nodes.find((n) => n.kind === 'hardlink')!;
  assert.ok(
    tree.nodes.some((n) => n.kind === 'file' && n.path === link.target),
    `${link.target} in ${paths(tree).join(', ')}`,
  );
  assert.equal(link.target, 'n1/n1/other', 'the folders `a b` and `c\\nd` above it renamed');
  assert.equal(tree.nodes.length, 4, paths(tree).join(', '));
});

test("over SFTP owners are left alone: every node is the account's own", async () => {
  const { tree } = await shrinkTree(bigTree('sftp'), async (t) => t.nodes.some((n) => n.kind === 'fifo'), {
    runs: 200,
  });
  assert.deepEqual(
    tree.nodes.map((n) => [n.path, n.uid, n.gid, n.mode]),
    [['fifo', 300000, 4_294_967_294, 0o644]],
  );
  assert.deepEqual(tree.root, { uid: 1000, gid: 1000, mtime: PLAIN_TIME });
});

test('a tree that fails whatever is done shrinks to no node at all', async () => {
  const { tree, cut } = await shrinkTree(bigTree(), async () => true, { runs: 200 });
  assert.equal(cut, false);
  assert.deepEqual(tree.nodes, []);
});

test('the run limit and the deadline stop it with the smallest tree found so far', async () => {
  let calls = 0;
  const limited = await shrinkTree(
    bigTree(),
    async (t) => {
      calls++;
      return t.nodes.some((n) => n.mode === 0 && n.kind === 'file');
    },
    { runs: 4 },
  );
  assert.equal(calls, 4);
  assert.deepEqual([limited.runs, limited.cut], [4, true]);
  assert.ok(
    limited.tree.nodes.some((n) => n.mode === 0 && n.kind === 'file'),
    'still a failing tree',
  );
  assert.ok(limited.tree.nodes.length < bigTree().nodes.length);

  const late = await shrinkTree(bigTree(), async () => assert.fail('called after the deadline'), {
    runs: 100,
    deadline: Date.now() - 1,
  });
  assert.deepEqual([late.runs, late.cut, late.tree], [0, true, bigTree()]);
});
