import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { generateIdentity, identityToRecipient } from 'age-encryption';
import { startActionsServices, type ActionsServices } from '../helpers/actions-services.js';
import { buildTree, promised, randomTree, readTree, type Limits, type TreeSpec } from '../helpers/random-tree.js';
import { runAction, type ActionResult } from '../helpers/run-action.js';
import { rootSh, sshInputs, startSshd, type Sshd } from '../helpers/sshd.js';
import { testTempDir } from '../helpers/temp.js';

// The round-trip property (issue #22): a random server tree — names with newlines, quotes, globs, `%`
// and `-` prefixes, NFC beside NFD, 255 bytes, git's own names; empty, CRLF, NUL and sparse files; every
// mode and special bit; times before 1970 and past 2100 with fractions; ids above 262143; links
// relative, absolute and dangling; hard links; fifos — is backed up, stored (commit, restored from a
// fresh clone with core.autocrlf=true; artifact; cache; with or without age), restored onto an emptied
// server and compared with what README's "What comes back" promises for each kind.
//
// Seeded: the seed is printed, RF_PROPERTY_SEED=<seed> repeats a run, RF_PROPERTY_TREES=<n> tries more
// trees (default 3 per transport, to stay within CI's time). A failing tree is shrunk (nodes dropped
// while it still fails) and printed as JSON: add it to __tests__/fixtures/round-trip-regressions.json,
// whose trees run every time.

const SEED = Number(process.env.RF_PROPERTY_SEED ?? randomInt(2 ** 31));
const TREES = Number(process.env.RF_PROPERTY_TREES ?? 3);
const REGRESSIONS = JSON.parse(
  readFileSync(join(import.meta.dirname, '../fixtures/round-trip-regressions.json'), 'utf8'),
) as Array<{ why: string; tree: TreeSpec }>;

let server: Sshd;
let services: ActionsServices;
let runId = 7000;
let identity: string;
let recipient: string;
const scratch: string[] = [];

before(async () => {
  console.log(`round-trip property: seed ${SEED} (RF_PROPERTY_SEED=${SEED} repeats it), ${TREES} trees per transport`);
  [server, services] = await Promise.all([
    startSshd({ hostKeyTypes: ['ed25519'] }),
    startActionsServices({ firstRunId: runId }),
  ]);
  identity = await generateIdentity();
  recipient = await identityToRecipient(identity);
});
after(async () => {
  await Promise.all([server?.stop(), services?.stop()]);
  for (const dir of scratch) rmSync(dir, { recursive: true, force: true });
});

type Store = 'commit' | 'artifact' | 'cache';
interface Way {
  store: Store;
  age: boolean;
}

function limitsOf(transport: 'tar' | 'sftp'): Limits {
  const [uid, gid] = rootSh(`id -u ${server.users.sftp.username}; id -g ${server.users.sftp.username}`)
    .trim()
    .split('\n')
    .map(Number);
  return { transport, uid: uid!, gid: gid! };
}

/** Where a tree lives on this machine, and install-dir as its account sees it. */
function place(transport: 'tar' | 'sftp', label: string) {
  return transport === 'tar'
    ? { dir: join(server.users.shell.scratch, label), installDir: server.users.shell.scratch }
    : { dir: join(server.users.sftp.data, label), installDir: '/data' };
}

const git = (cwd: string, ...args: string[]) =>
  execFileSync('git', ['-C', cwd, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();

/** A workspace for `way`: a clone of a fresh origin for commit, a plain folder otherwise. */
function workspaces(way: Way, recipe: string): { backup: string; restore: () => string } {
  const base = testTempDir('rf-prop-');
  scratch.push(base);
  if (way.store !== 'commit') {
    const plain = (name: string) => {
      const dir = join(base, name);
      execFileSync('mkdir', [dir]);
      writeFileSync(join(dir, 'remote-files.yml'), recipe);
      return dir;
    };
    return { backup: plain('backup'), restore: () => plain('restore') };
  }
  const origin = join(base, 'origin.git');
  execFileSync('git', ['init', '-q', '--bare', '-b', 'main', origin]);
  const first = join(base, 'backup');
  execFileSync('git', ['clone', '-q', origin, first], { stdio: 'ignore' });
  git(first, 'checkout', '-q', '-b', 'main');
  writeFileSync(join(first, 'remote-files.yml'), recipe);
  git(first, 'add', '.');
  git(first, '-c', 'user.name=t', '-c', 'user.email=t@t', 'commit', '-q', '-m', 'recipes');
  git(first, 'push', '-q', 'origin', 'main');
  return {
    backup: first,
    restore: () => {
      const dir = join(base, 'restore');
      execFileSync('git', ['clone', '-q', '-c', 'core.autocrlf=true', origin, dir], { stdio: 'ignore' });
      return dir;
    },
  };
}

async function run(
  ws: string,
  transport: 'tar' | 'sftp',
  domain: string,
  way: Way,
  mode: 'backup' | 'restore',
): Promise<ActionResult> {
  const at = place(transport, '');
  return runAction(
    sshInputs(
      server,
      { domain, installDir: at.installDir, pin: 'host-fingerprint' },
      {
        username: transport === 'tar' ? server.users.shell.username : server.users.sftp.username,
        mode,
        transport,
        compression: 'none',
        timeout: '30',
        store: way.store,
        'special-bits': 'true',
        ...(transport === 'tar' && { sudo: 'true' }),
        ...(way.store !== 'commit' && { 'github-token': services.githubToken }),
        ...(way.age && (mode === 'backup' ? { 'age-recipients': recipient } : { 'age-identity': identity })),
      },
    ),
    { workspace: ws, env: services.runEnv(runId++) },
  );
}

/** Backs `tree` up one `way`, empties the server, restores; the differences from the promise, or none. */
async function roundTrip(tree: TreeSpec, way: Way, label: string): Promise<string | null> {
  const { dir } = place(tree.transport, label);
  rootSh(`rm -rf '${dir}'`);
  buildTree(dir, tree);
  const beforeBackup = readTree(dir);
  const recipe = `version: 1\nrecipes:\n  Tree:\n    remote_files:\n      "\${install_dir}/${label}": tree\n`;
  const domain = `${label}.prop.example`;
  const ws = workspaces(way, recipe);
  try {
    const saved = await run(ws.backup, tree.transport, domain, way, 'backup');
    if (saved.code !== 0) return `backup failed (exit ${saved.code}): ${errorLine(saved)}`;
    rootSh(`rm -rf '${dir}'`);
    const restored = await run(ws.restore(), tree.transport, domain, way, 'restore');
    if (restored.code !== 0) return `restore failed (exit ${restored.code}): ${errorLine(restored)}`;
    return difference(promised(beforeBackup, tree.transport, true), readTree(dir));
  } finally {
    rootSh(`rm -rf '${dir}'`);
  }
}

function errorLine(r: ActionResult): string {
  return r.stdout.split('\n').find((l) => l.startsWith('::error::')) ?? r.stderr.slice(-500);
}

/** A short account of how `got` differs from `want`, or null. */
function difference(want: Map<string, unknown>, got: Map<string, unknown>): string | null {
  const lines: string[] = [];
  for (const [path, w] of want) {
    const g = got.get(path);
    if (JSON.stringify(g) !== JSON.stringify(w))
      lines.push(`${JSON.stringify(path)}: want ${JSON.stringify(w)}, got ${JSON.stringify(g) ?? 'nothing'}`);
  }
  for (const path of got.keys()) if (!want.has(path)) lines.push(`${JSON.stringify(path)}: not promised, yet there`);
  return lines.length === 0
    ? null
    : lines.slice(0, 12).join('\n') + (lines.length > 12 ? `\n… ${lines.length} in all` : '');
}

/**
 * Drops nodes (and what hangs below or on them) one at a time while the round trip still fails, for at
 * most `budget` further round trips: what is left is the tree to keep as a regression case.
 */
async function shrink(tree: TreeSpec, way: Way, label: string, budget = 12): Promise<TreeSpec> {
  let current = tree;
  for (let i = current.nodes.length - 1; i >= 0 && budget > 0; i--) {
    const gone = current.nodes[i];
    if (!gone) continue;
    const nodes = current.nodes.filter(
      (n) => n !== gone && !n.path.startsWith(`${gone.path}/`) && !(n.kind === 'hardlink' && n.target === gone.path),
    );
    budget--;
    const smaller = { ...current, nodes };
    if ((await roundTrip(smaller, way, label)) !== null) current = smaller;
  }
  return current;
}

/** The way a tree goes: store and age picked by the seed, so over many runs every pairing is tried. */
function wayFor(seed: number): Way {
  const stores: Store[] = ['commit', 'artifact', 'cache'];
  return { store: stores[seed % 3]!, age: Math.floor(seed / 3) % 2 === 1 };
}

async function check(tree: TreeSpec, way: Way, label: string): Promise<void> {
  const kinds = new Map<string, number>();
  for (const n of tree.nodes) kinds.set(n.kind, (kinds.get(n.kind) ?? 0) + 1);
  console.log(
    `tree ${tree.seed} (${tree.transport}, store ${way.store}${way.age ? ', age' : ''}): ${[...kinds].map(([k, n]) => `${n} ${k}`).join(', ')}`,
  );
  const problem = await roundTrip(tree, way, label);
  if (problem === null) return;
  const small = await shrink(tree, way, label);
  const regression = JSON.stringify({ why: problem.split('\n')[0], tree: small });
  assert.fail(
    `round trip of tree ${tree.seed} (${tree.transport}, store ${way.store}${way.age ? ', age' : ''}) broke a promise:\n${problem}\n` +
      `shrunk to ${small.nodes.length} of ${tree.nodes.length} nodes; keep it in __tests__/fixtures/round-trip-regressions.json:\n${regression}`,
  );
}

describe('round trip of random trees: what comes back is what README promises', { concurrency: 1 }, () => {
  for (const transport of ['tar', 'sftp'] as const) {
    for (let i = 0; i < TREES; i++) {
      test(`${transport}: random tree ${i + 1} of ${TREES}`, { timeout: 600_000 }, async () => {
        const seed = (SEED + i * 7919 + (transport === 'sftp' ? 104729 : 0)) >>> 0;
        const tree = randomTree(seed, limitsOf(transport));
        await check(tree, wayFor(seed), `p${transport}${i}`);
      });
    }
  }
  for (const [i, { why, tree }] of REGRESSIONS.entries()) {
    test(`regression ${i + 1}: ${why}`, { timeout: 600_000 }, async () => {
      const fixed =
        tree.transport === 'sftp'
          ? {
              ...tree,
              root: { mtime: 1_234_567_890, ...tree.root, ...sftpOwner() },
              nodes: tree.nodes.map((n) => ({ ...n, ...sftpOwner() })),
            }
          : tree;
      await check(fixed, wayFor(tree.seed), `r${i}`);
    });
  }
});

/** A regression tree for SFTP names the account's ids as they are on the machine that runs it. */
function sftpOwner(): { uid: number; gid: number } {
  const { uid, gid } = limitsOf('sftp');
  return { uid, gid };
}
