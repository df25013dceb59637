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
import { shrinkTree } from '../helpers/shrink-tree.js';
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
// trees (default 3 per transport, to stay within CI's time). The trees of a run go through a fixed
// schedule of stores, age and special-bits (WAYS), so every run tries each store over each transport,
// with and without age. A failing tree is shrunk (__tests__/helpers/shrink-tree.ts: nodes dropped, then
// names, times, modes, contents and owners made plain, while it still fails the same way, for at most
// RF_PROPERTY_SHRINK_RUNS round trips and 8 minutes) and printed as JSON: add it to
// __tests__/fixtures/round-trip-regressions.json, whose trees run every time.

const SEED = Number(process.env.RF_PROPERTY_SEED ?? randomInt(2 ** 31));
const TREES = Number(process.env.RF_PROPERTY_TREES ?? 3);
const SHRINK_RUNS = Number(process.env.RF_PROPERTY_SHRINK_RUNS ?? 40);
const SHRINK_MS = 8 * 60_000;
const REGRESSIONS = JSON.parse(
  readFileSync(join(import.meta.dirname, '../fixtures/round-trip-regressions.json'), 'utf8'),
) as Array<{ why: string; way: Way; tree: TreeSpec }>;

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
  /** The restore's `special-bits` input: false drops setuid, setgid and sticky (README's default). */
  specialBits: boolean;
}
const STORES: Store[] = ['commit', 'artifact', 'cache'];

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
        'special-bits': String(way.specialBits),
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
    return difference(promised(beforeBackup, tree.transport, way.specialBits), readTree(dir));
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

/** Which way a round trip failed: a shrunk tree must fail the same way, not find another fault. */
const failureKind = (problem: string) => /^(backup|restore) failed/.exec(problem)?.[1] ?? 'difference';

/**
 * The way tree `i` of a transport goes: a fixed schedule over the trees of a run, turned by the seed.
 * Three trees of a transport take the three stores in turn, age on and off alternately, and `special-bits`
 * in the opposite setting from the other transport's; six take every store with and without age.
 */
function wayFor(transport: 'tar' | 'sftp', i: number): Way {
  const k = (SEED % 6) + i;
  const t = transport === 'tar' ? 0 : 1;
  return { store: STORES[k % 3]!, age: (k + t) % 2 === 1, specialBits: (Math.floor(k / 3) + t) % 2 === 0 };
}

const describeWay = (tree: TreeSpec, way: Way) =>
  `${tree.transport}, store ${way.store}${way.age ? ', age' : ''}, special-bits ${way.specialBits}`;

async function check(tree: TreeSpec, way: Way, label: string, repeat: string): Promise<void> {
  const kinds = new Map<string, number>();
  for (const n of tree.nodes) kinds.set(n.kind, (kinds.get(n.kind) ?? 0) + 1);
  console.log(`tree ${tree.seed} (${describeWay(tree, way)}): ${[...kinds].map(([k, n]) => `${n} ${k}`).join(', ')}`);
  const problem = await roundTrip(tree, way, label);
  if (problem === null) return;
  const kind = failureKind(problem);
  const {
    tree: small,
    runs,
    cut,
  } = await shrinkTree(
    tree,
    async (candidate) => {
      const again = await roundTrip(candidate, way, label);
      return again !== null && failureKind(again) === kind;
    },
    { runs: SHRINK_RUNS, deadline: Date.now() + SHRINK_MS },
  );
  const regression = JSON.stringify({ why: problem.split('\n')[0], way, tree: small });
  assert.fail(
    `round trip of tree ${tree.seed} (${describeWay(tree, way)}) broke a promise:\n${problem}\n${repeat}\n` +
      `shrunk in ${runs} round trips${cut ? ' (stopped by its limit)' : ''} to ${small.nodes.length} of ` +
      `${tree.nodes.length} nodes; keep it in __tests__/fixtures/round-trip-regressions.json:\n${regression}`,
  );
}

// A failing tree's own test may take the first round trip, SHRINK_MS of shrinking and one more.
const TEST_TIMEOUT = SHRINK_MS + 4 * 60_000;

describe('round trip of random trees: what comes back is what README promises', { concurrency: 1 }, () => {
  for (const transport of ['tar', 'sftp'] as const) {
    for (let i = 0; i < TREES; i++) {
      test(`${transport}: random tree ${i + 1} of ${TREES}`, { timeout: TEST_TIMEOUT }, async () => {
        const seed = (SEED + i * 7919 + (transport === 'sftp' ? 104729 : 0)) >>> 0;
        const tree = randomTree(seed, limitsOf(transport));
        const trees = TREES === 3 ? '' : ` RF_PROPERTY_TREES=${TREES}`;
        const repeat = `run seed ${SEED}; repeat with RF_PROPERTY_SEED=${SEED}${trees} npm test -- round-trip-property`;
        await check(tree, wayFor(transport, i), `p${transport}${i}`, repeat);
      });
    }
  }
  for (const [i, { why, way, tree }] of REGRESSIONS.entries()) {
    test(`regression ${i + 1}: ${why}`, { timeout: TEST_TIMEOUT }, async () => {
      const fixed =
        tree.transport === 'sftp'
          ? {
              ...tree,
              root: { mtime: 1_234_567_890, ...tree.root, ...sftpOwner() },
              nodes: tree.nodes.map((n) => ({ ...n, ...sftpOwner() })),
            }
          : tree;
      const repeat = `regression ${i + 1} of __tests__/fixtures/round-trip-regressions.json runs in every run`;
      await check(fixed, way, `r${i}`, repeat);
    });
  }
});

/** A regression tree for SFTP names the account's ids as they are on the machine that runs it. */
function sftpOwner(): { uid: number; gid: number } {
  const { uid, gid } = limitsOf('sftp');
  return { uid, gid };
}
