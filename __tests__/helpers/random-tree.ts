// Random server trees for the round-trip property (round-trip-property.test.ts): a seeded generator, a
// builder that makes a tree on this machine (the test server's disk) as root, and a reader that
// pictures a tree in the terms README's "What comes back" promises.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  closeSync,
  existsSync,
  lchownSync,
  linkSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  symlinkSync,
  writeSync,
  ftruncateSync,
} from 'node:fs';
import { join } from 'node:path';

/** mulberry32: small, seedable, good enough to pick test cases; the same seed gives the same trees. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface NodeSpec {
  /** Relative to the tree's root, '/'-separated. */
  path: string;
  kind: 'file' | 'dir' | 'symlink' | 'hardlink' | 'fifo';
  mode: number;
  /** Seconds, possibly fractional and negative. */
  mtime: number;
  uid: number;
  gid: number;
  /** Files: content as base64. */
  content?: string;
  /** Files: a sparse file of this size, `content` written at `at`. */
  sparse?: { size: number; at: number };
  /** Symlinks: the target; hard links: the path of the file they link to. */
  target?: string;
}

export interface TreeSpec {
  seed: number;
  /** Tar with root (every mode, owner and time) or SFTP as its own unprivileged account. */
  transport: 'tar' | 'sftp';
  /** The entry's own folder: its owner (default root's) and time (default 2009-02-13), mode 0755. */
  root?: { uid: number; gid: number; mtime: number };
  nodes: NodeSpec[];
}

/**
 * What an SFTP account can hold and SFTP v3 can say: its own files, readable by it, times 1901–2106 (32
 * bits, which a backup reads as signed: 1901–2038).
 */
export interface Limits {
  transport: 'tar' | 'sftp';
  /** The SFTP account's ids (tar trees use any id). */
  uid: number;
  gid: number;
}

const NAME_CHARS = [
  ...'abcxyz019_.',
  ' ',
  '\t',
  '\n',
  "'",
  '"',
  '*',
  '?',
  '[',
  ']',
  '{',
  '}',
  '$',
  ';',
  '&',
  '|',
  '~',
  '#',
  '\\',
  '\r',
  'é', // NFC
  'e\u0301', // NFD
  'ß',
  '日',
  '🙂',
];
const GIT_NAMES = ['.git', '.GIT', '.Git', '.gitignore', '.GITIGNORE', '.gitattributes', '.gitmodules', '.GitModules'];
/** A backslash before one of git's names: git for Windows reads `\\` as a separator (issue #22, item 8). */
const BACKSLASH_GIT_NAMES = ['dir\\.git', 'a\\.GIT\\b', 'x\\.Gitmodules', '\\.git', 'a\\.git\\'];

function pick<T>(r: () => number, xs: readonly T[]): T {
  return xs[Math.floor(r() * xs.length)]!;
}

const bytes = (s: string) => Buffer.byteLength(s, 'utf8');

/**
 * One name: plain, full of what shells and globs read, prefixed with `%` or `-`, one of git's own names
 * in any case or behind a backslash, or exactly 255 bytes (some starting with `%`, which the stored
 * form's escape would make 256).
 */
function name(r: () => number): string {
  const roll = r();
  if (roll < 0.1) return pick(r, GIT_NAMES);
  if (roll < 0.14) return pick(r, BACKSLASH_GIT_NAMES);
  if (roll < 0.2) {
    // 255 bytes exactly: multibyte characters up to the last few, then ASCII.
    let n = r() < 0.4 ? '%' : '';
    while (bytes(n) < 240) n += pick(r, ['é', '日', 'a', '🙂', 'x']);
    return n + 'z'.repeat(255 - bytes(n));
  }
  let n = '';
  const length = 1 + Math.floor(r() * 12);
  for (let i = 0; i < length; i++) n += pick(r, NAME_CHARS);
  if (r() < 0.15) n = `%${n}`;
  else if (r() < 0.15) n = `-${n}`;
  if (n === '.' || n === '..') return `n${n}`;
  return n;
}

/** Seconds in 32 bits: SFTP v3 carries 0 to 2³²−1 on the wire; a backup reads them as −2³¹ to 2³¹−1. */
const TWO_31 = 2 ** 31;
const TWO_32 = 2 ** 32;

/**
 * A time: now-ish, the epoch's neighbours, before 1970, around 2038, past 2100; fractions often. Over
 * SFTP the whole range its 32 bits carry: 1901-12-13 (−2³¹) to 2106-02-07 (2³²−1), the 2038 edge on
 * both sides.
 */
function time(r: () => number, limits: Limits): number {
  const whole = pick(r, [
    1_700_000_000 + Math.floor(r() * 1e8),
    0,
    -1,
    -Math.floor(r() * 2e9),
    TWO_31 - 1,
    TWO_31,
    ...(limits.transport === 'tar'
      ? [4_102_444_800 + Math.floor(r() * 1e9), 10_000_000_000]
      : [-TWO_31, TWO_31 + Math.floor(r() * TWO_31), 2_524_608_000 /* 2050 */, TWO_32 - 1]),
  ]);
  return r() < 0.5 ? whole : whole + Math.floor(r() * 1000) / 1000;
}

/** Every permission pattern, special bits included; over SFTP what the owner can still read (and enter). */
function mode(r: () => number, kind: 'file' | 'dir', limits: Limits): number {
  const m = Math.floor(r() * 0o10000);
  if (limits.transport === 'tar') return m;
  return kind === 'dir' ? m | 0o700 : (m | 0o600) & 0o1777;
}

function content(r: () => number): Buffer {
  const roll = r();
  if (roll < 0.15) return Buffer.alloc(0);
  if (roll < 0.3) return Buffer.from('line one\r\nline two\r\n\r\nno newline at the end');
  if (roll < 0.4) return Buffer.from('a\0b\0\0c\n');
  if (roll < 0.5) return Buffer.from('\r\n');
  const n = Math.floor(r() * 3000);
  return Buffer.from(Array.from({ length: n }, () => Math.floor(r() * 256)));
}

/** A random tree for `limits`: folders to a depth of 7, files, links of every sort, hard links, fifos. */
export function randomTree(seed: number, limits: Limits): TreeSpec {
  const r = prng(seed);
  const ids = () =>
    limits.transport === 'tar'
      ? { uid: pick(r, [0, 1000, 262144, 300000, 4_000_000_000]), gid: pick(r, [0, 100, 262144, 4_294_967_294]) }
      : { uid: limits.uid, gid: limits.gid };
  const nodes: NodeSpec[] = [];
  const dirs = [''];
  const taken = new Set<string>();
  const count = 10 + Math.floor(r() * 40);
  const files: string[] = [];
  for (let i = 0; i < count; i++) {
    const parent = pick(r, dirs);
    // Within PATH_MAX with room: a deep tree of long names is not what this is about.
    if (parent.split('/').length >= 7 || bytes(parent) > 2500) continue;
    let n = name(r);
    // NFC and NFD side by side: the same-looking name in both forms.
    if (r() < 0.1) n = r() < 0.5 ? 'caf\u00e9' : 'cafe\u0301';
    const path = parent ? `${parent}/${n}` : n;
    if (taken.has(path)) continue;
    taken.add(path);
    const roll = r();
    const base = { path, mtime: time(r, limits), ...ids() };
    if (roll < 0.25) {
      nodes.push({ ...base, kind: 'dir', mode: mode(r, 'dir', limits) });
      dirs.push(path);
    } else if (roll < 0.7) {
      const data = content(r);
      const sparse = limits.transport === 'tar' && r() < 0.15 ? { size: 3_000_000, at: 1_000_000 } : undefined;
      nodes.push({
        ...base,
        kind: 'file',
        mode: mode(r, 'file', limits),
        content: data.toString('base64'),
        ...(sparse && { sparse }),
      });
      files.push(path);
    } else if (roll < 0.85) {
      const target = pick(r, [
        pick(r, files.length > 0 ? files : ['missing'])
          .split('/')
          .pop()!,
        '../' + name(r),
        '/etc/hostname',
        'dangling/nowhere',
        'a\nb',
      ]);
      nodes.push({ ...base, kind: 'symlink', mode: 0o777, target });
    } else if (roll < 0.93 && files.length > 0) {
      nodes.push({ ...base, kind: 'hardlink', mode: 0, target: pick(r, files) });
    } else if (limits.transport === 'tar') {
      nodes.push({ ...base, kind: 'fifo', mode: mode(r, 'file', limits) & 0o777 });
    }
  }
  return { seed, transport: limits.transport, root: { ...ids(), mtime: time(r, limits) }, nodes };
}

/** Makes `spec` below `root` (which must not exist), as root: content, links, then modes, owners and times. */
export function buildTree(root: string, spec: TreeSpec): void {
  mkdirSync(root, { recursive: true });
  chmodSync(root, 0o755);
  const at = (p: string) => join(root, p);
  for (const n of spec.nodes) {
    if (n.kind === 'dir') mkdirSync(at(n.path));
    else if (n.kind === 'file') {
      const fd = openSync(at(n.path), 'wx');
      const data = Buffer.from(n.content ?? '', 'base64');
      if (n.sparse) {
        ftruncateSync(fd, n.sparse.size);
        writeSync(fd, data, 0, data.length, n.sparse.at);
      } else writeSync(fd, data);
      closeSync(fd);
    } else if (n.kind === 'symlink') symlinkSync(n.target!, at(n.path));
    else if (n.kind === 'hardlink') linkSync(at(n.target!), at(n.path));
    else execFileSync('mkfifo', ['--', at(n.path)]);
  }
  // Deepest first, so setting a folder's time comes after everything inside it was made.
  const order = [...spec.nodes].sort((a, b) => b.path.split('/').length - a.path.split('/').length);
  for (const n of order) {
    // A hard link shares its file's inode: the file's own metadata stands.
    if (n.kind === 'hardlink') continue;
    lchownSync(at(n.path), n.uid, n.gid);
    if (n.kind !== 'symlink') chmodSync(at(n.path), n.mode);
    // Not fs.lutimesSync: Node takes a negative time for "now".
    execFileSync('touch', ['-h', '-d', `@${n.mtime}`, '--', at(n.path)]);
  }
  const top = spec.root ?? { uid: 0, gid: 0, mtime: 1_234_567_890 };
  lchownSync(root, top.uid, top.gid);
  execFileSync('touch', ['-d', `@${top.mtime}`, '--', root]);
}

export interface Seen {
  type: 'file' | 'dir' | 'symlink' | 'other';
  mode?: number;
  uid: number;
  gid: number;
  mtime: number;
  sha?: string;
  target?: string;
}

/** Every path below `root` as lstat sees it: whole-second times, modes without the type, content hashes. */
export function readTree(root: string): Map<string, Seen> {
  const out = new Map<string, Seen>();
  if (!existsSync(root)) return out;
  // The entry's own folder is ''.
  const see = (path: string) => {
    const abs = join(root, path);
    const st = lstatSync(abs, { bigint: true });
    const base = { uid: Number(st.uid), gid: Number(st.gid), mtime: Number(st.mtimeNs / 1_000_000_000n) };
    // BigInt division rounds toward zero: a time before 1970 with a fraction is a second lower.
    if (st.mtimeNs < 0n && st.mtimeNs % 1_000_000_000n !== 0n) base.mtime -= 1;
    const mode = Number(st.mode) & 0o7777;
    if (st.isSymbolicLink()) out.set(path, { ...base, type: 'symlink', target: readlinkSync(abs) });
    else if (st.isDirectory()) {
      out.set(path, { ...base, type: 'dir', mode });
      visit(path);
    } else if (st.isFile())
      out.set(path, {
        ...base,
        type: 'file',
        mode,
        sha: createHash('sha256').update(readFileSync(abs)).digest('hex'),
      });
    else out.set(path, { ...base, type: 'other', mode });
  };
  const visit = (rel: string) => {
    for (const n of readdirSync(join(root, rel)).sort()) see(rel ? `${rel}/${n}` : n);
  };
  see('');
  return out;
}

/**
 * What README promises comes back of a tree read before the backup, per transport: files (hard links
 * as separate files of the same content), folders and links with their names; modes with the special
 * bits only with `special-bits: true`; owners over tar as root; times to the second. Over SFTP a time
 * is 32 bits a backup reads as signed (one past 2038-01-19 comes back 2³² seconds, 136 years, earlier)
 * and a restore writes as unsigned (one before 1970 is written as 1970-01-01). Fifos, sockets and
 * devices are recorded, not copied.
 */
export function promised(
  before: Map<string, Seen>,
  transport: 'tar' | 'sftp',
  specialBits: boolean,
): Map<string, Seen> {
  const out = new Map<string, Seen>();
  for (const [path, seen] of before) {
    if (seen.type === 'other') continue;
    const kept = { ...seen };
    if (kept.mode !== undefined && !specialBits) kept.mode &= 0o777;
    if (transport === 'sftp') kept.mtime = sftpRoundTrip(kept.mtime);
    out.set(path, kept);
  }
  return out;
}

/** A whole-second time 1901–2106 after an SFTP backup (32 bits read as signed) and restore (written from 0). */
export function sftpRoundTrip(seconds: number): number {
  const wire = ((seconds % TWO_32) + TWO_32) % TWO_32;
  const read = wire >= TWO_31 ? wire - TWO_32 : wire;
  return Math.max(read, 0);
}
