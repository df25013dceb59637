// Shrinking a random tree that breaks the round-trip property (round-trip-property.test.ts) to one a
// person can read: fewer nodes, then plainer names, times, modes, contents and owners — each step kept
// only while the failure persists. Pure apart from the clock: whether a tree still fails is the
// caller's predicate, so the shrinker is tested with synthetic ones (__tests__/unit/shrink-tree.test.ts).
import type { NodeSpec, TreeSpec } from './random-tree.js';

export interface ShrinkLimits {
  /** At most this many calls of the predicate (each is a backup and a restore in the property test). */
  runs: number;
  /** No new call after this moment (Date.now() milliseconds). */
  deadline?: number;
}

export interface Shrunk {
  tree: TreeSpec;
  /** Calls of the predicate made. */
  runs: number;
  /** True when a limit stopped the shrinking before it was done. */
  cut: boolean;
}

/** A round time every transport carries exactly: 2017-07-14 02:40:00 UTC. */
export const PLAIN_TIME = 1_500_000_000;

const depth = (path: string) => path.split('/').length;
const under = (path: string, dir: string) => path === dir || path.startsWith(`${dir}/`);

/** The nodes deepest first (a folder's children before it), later nodes first among equals. */
export function childrenFirst(nodes: readonly NodeSpec[]): string[] {
  return nodes
    .map((n, i) => ({ path: n.path, i }))
    .sort((a, b) => depth(b.path) - depth(a.path) || b.i - a.i)
    .map((n) => n.path);
}

/** `tree` without the nodes at `paths`, what lies below them, and hard links to any of those. */
export function withoutNodes(tree: TreeSpec, paths: readonly string[]): TreeSpec {
  const gone = new Set<string>();
  for (const n of tree.nodes) if (paths.some((p) => under(n.path, p))) gone.add(n.path);
  // A hard link's target is a file, never a folder; a link to a link does not occur.
  const nodes = tree.nodes.filter((n) => !gone.has(n.path) && !(n.kind === 'hardlink' && gone.has(n.target!)));
  return { ...tree, nodes };
}

/** `tree` with the node at `path` named `to` (a plain name), what lies below it and hard links following. */
export function renamed(tree: TreeSpec, path: string, to: string): TreeSpec {
  const slash = path.lastIndexOf('/');
  const next = slash < 0 ? to : `${path.slice(0, slash)}/${to}`;
  const move = (p: string) => (under(p, path) ? next + p.slice(path.length) : p);
  const nodes = tree.nodes.map((n) => ({
    ...n,
    path: move(n.path),
    ...(n.kind === 'hardlink' && { target: move(n.target!) }),
  }));
  return { ...tree, nodes };
}

const PLAIN_NAME = /^[a-z][a-z0-9]{0,7}$/;

/** What the shrinker makes plain in a node, one at a time, in this order. */
export const ATTRIBUTES = ['name', 'time', 'mode', 'content', 'owner'] as const;
type Attribute = (typeof ATTRIBUTES)[number];

/** `tree` with one attribute of the node at `path` made plain, or null when it is as plain as it gets. */
export function plainer(tree: TreeSpec, path: string, what: Attribute): TreeSpec | null {
  const node = tree.nodes.find((n) => n.path === path);
  if (!node) return null;
  const change = (patch: Partial<NodeSpec>, drop?: keyof NodeSpec): TreeSpec => ({
    ...tree,
    nodes: tree.nodes.map((n) => {
      if (n !== node) return n;
      const changed: NodeSpec = { ...n, ...patch };
      if (drop) delete changed[drop];
      return changed;
    }),
  });
  // Hard links share their file's inode: their own time, mode and owner are never applied.
  const own = node.kind !== 'hardlink';
  switch (what) {
    case 'name': {
      if (PLAIN_NAME.test(path.slice(path.lastIndexOf('/') + 1))) return null;
      const taken = new Set(tree.nodes.map((n) => n.path));
      const parent = path.slice(0, Math.max(path.lastIndexOf('/'), 0));
      let k = 1;
      while (taken.has(parent ? `${parent}/n${k}` : `n${k}`)) k++;
      return renamed(tree, path, `n${k}`);
    }
    case 'time':
      return own && node.mtime !== PLAIN_TIME ? change({ mtime: PLAIN_TIME }) : null;
    case 'mode': {
      // 0755 for folders: 0644 would shut an SFTP account out of its own folder, a different failure.
      const plain = node.kind === 'dir' ? 0o755 : 0o644;
      return own && node.kind !== 'symlink' && node.mode !== plain ? change({ mode: plain }) : null;
    }
    case 'content':
      return node.kind === 'file' && ((node.content ?? '') !== '' || node.sparse)
        ? change({ content: '' }, 'sparse')
        : null;
    case 'owner':
      // Over SFTP every node is the account's own: only tar trees have owners to simplify.
      return own && tree.transport === 'tar' && (node.uid !== 0 || node.gid !== 0) ? change({ uid: 0, gid: 0 }) : null;
  }
}

/** `tree` with its entry folder's time, or (tar) owner, made plain; null when it is plain already. */
function plainerRoot(tree: TreeSpec, what: 'time' | 'owner'): TreeSpec | null {
  const root = tree.root;
  if (!root) return null;
  if (what === 'time') return root.mtime !== PLAIN_TIME ? { ...tree, root: { ...root, mtime: PLAIN_TIME } } : null;
  return tree.transport === 'tar' && (root.uid !== 0 || root.gid !== 0)
    ? { ...tree, root: { ...root, uid: 0, gid: 0 } }
    : null;
}

/**
 * Shrinks `tree`, which `stillFails`, for as long as it still does, within `limits`:
 * 1. drops nodes (with what lies below them and hard links to them), children before their folders:
 *    first in groups (half the tree, then a quarter, …), then one at a time, sweeping again until a
 *    whole sweep drops nothing;
 * 2. makes each node that is left plainer: a short plain name, a round time, mode 0644 (folders 0755),
 *    no content, owner root (tar) — one attribute at a time.
 * Every candidate is a call of `stillFails`; a limit reached ends the shrinking with the smallest tree
 * found so far.
 */
export async function shrinkTree(
  tree: TreeSpec,
  stillFails: (candidate: TreeSpec) => Promise<boolean>,
  limits: ShrinkLimits,
): Promise<Shrunk> {
  let current = tree;
  let runs = 0;
  let cut = false;
  const fails = async (candidate: TreeSpec): Promise<boolean> => {
    if (runs >= limits.runs || (limits.deadline !== undefined && Date.now() >= limits.deadline)) {
      cut = true;
      return false;
    }
    runs++;
    return stillFails(candidate);
  };

  let size = Math.max(1, Math.ceil(current.nodes.length / 2));
  for (;;) {
    let dropped = false;
    const order = childrenFirst(current.nodes);
    for (let start = 0; start < order.length && !cut; start += size) {
      const candidate = withoutNodes(current, order.slice(start, start + size));
      // Nodes an earlier step of this sweep dropped already: nothing new to try.
      if (candidate.nodes.length === current.nodes.length) continue;
      if (await fails(candidate)) {
        current = candidate;
        dropped = true;
      }
    }
    if (cut || (size === 1 && !dropped) || current.nodes.length === 0) break;
    size = Math.max(1, Math.ceil(Math.min(size, current.nodes.length) / 2));
  }

  // Children first, so a folder's rename (which moves what lies below it) comes after its children's:
  // every path in this order still names its node when its turn comes.
  for (let path of childrenFirst(current.nodes)) {
    for (const what of ATTRIBUTES) {
      if (cut) break;
      const candidate = plainer(current, path, what);
      if (candidate && (await fails(candidate))) {
        const at = current.nodes.findIndex((n) => n.path === path);
        current = candidate;
        path = current.nodes[at]!.path;
      }
    }
  }
  for (const what of ['time', 'owner'] as const) {
    const candidate = plainerRoot(current, what);
    if (!cut && candidate && (await fails(candidate))) current = candidate;
  }
  return { tree: current, runs, cut };
}
