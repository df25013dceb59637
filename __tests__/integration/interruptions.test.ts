import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { execFileSync, spawnSync } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  lstatSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startCutProxy } from '../helpers/cut-proxy.js';
import { runAction, type ActionResult } from '../helpers/run-action.js';
import { ok, refused } from '../helpers/outcome.js';
import { rootSh, sshInputs, startSshd, type Sshd } from '../helpers/sshd.js';
import { testTempDir } from '../helpers/temp.js';

// Every interruption heals on a plain re-run (issue #22). The action is killed with SIGKILL, as a
// cancelled job ends, at many points of a first backup, a later backup, a restore (after N bytes on the
// wire, through a proxy) and of the commit store's git work (as git command k starts, or once it
// returned: a `git` first on PATH that counts its calls), and the connection is cut at the same byte
// points. Then the same step runs again, in the same workspace, and must succeed; after it the manifest
// describes exactly what the data folder holds, the branch on origin still has every commit it had and
// ends holding the server's tree, and nothing is left on the server: not beside the entry, not in the
// login's TMPDIR, not in its marker folder. A push is also cut while it is in flight (a pre-receive hook
// on origin kills the action, or the push's own git, as a lost connection does). Each byte scenario
// must actually interrupt its run at all points but one (a run that finished first proves nothing).
// More points: RF_KILL_POINTS=<n>.

const DOMAIN = 'interrupt.example';
const POINTS = Number(process.env.RF_KILL_POINTS ?? 6);
/** With more points asked for, every git call is killed both before and after; else the ones that write. */
const ALL_GIT_CALLS = POINTS >= 10;
const WRITING_GIT = /^(commit-tree|push|update-ref|update-index|read-tree|write-tree|add)$/;

/** The git command of a call's arguments, past its `-c name=value` settings. */
const subcommand = (call: string) =>
  call
    .replace(/(^|\s)-c \S+/g, '')
    .trim()
    .split(' ')[0] ?? '';
let server: Sshd;
const scratch: string[] = [];
const realGit = execFileSync('sh', ['-c', 'command -v git'], { encoding: 'utf8' }).trim();
/**
 * The shell login's TMPDIR and HOME, this sshd's own (SetEnv): so what a killed run leaves there is
 * this file's to see, and another suite that clears rf-shell's marker folder (a rebuilt server) does
 * not make a re-run here meet "another server".
 */
const login = { tmp: '', home: '' };
const markerFolder = () => join(login.home, '.local', 'state', 'remote-files');

before(async () => {
  const base = testTempDir('rf-interrupt-login-');
  scratch.push(base);
  chmodSync(base, 0o755);
  login.tmp = join(base, 'tmp');
  login.home = join(base, 'home');
  server = await startSshd({
    hostKeyTypes: ['ed25519'],
    extraConfig: `SetEnv TMPDIR=${login.tmp} HOME=${login.home}`,
  });
  rootSh(`mkdir -m 0700 '${login.tmp}' '${login.home}' && chown rf-shell: '${login.tmp}' '${login.home}'`);
});
after(async () => {
  await server?.stop();
  for (const dir of scratch) rmSync(dir, { recursive: true, force: true });
});

type Transport = 'tar' | 'sftp';

/** The tree on the server for a transport: where it is on this machine, install-dir as the account sees it. */
function site(transport: Transport) {
  return transport === 'tar'
    ? {
        dir: join(server.users.shell.scratch, 'app'),
        installDir: server.users.shell.scratch,
        username: server.users.shell.username,
      }
    : { dir: join(server.users.sftp.data, 'app'), installDir: '/data', username: server.users.sftp.username };
}

/** Version A of the tree, or B (every kind of change from A); owned by the login. */
function makeTree(transport: Transport, version: 'A' | 'B'): void {
  const { dir, username } = site(transport);
  rootSh(`rm -rf '${dir}' && mkdir -p '${dir}/sub/deep' && cd '${dir}'
    for i in 1 2 3 4 5 6; do printf "small $i" > s$i.txt; done
    printf deep > sub/deep/f && head -c 1500000 /dev/zero | tr '\\0' a > big.txt && ln -s s1.txt link
    ${
      version === 'B'
        ? `head -c 1500000 /dev/zero | tr '\\0' b > big.txt; printf changed > s2.txt; rm s3.txt; printf new > s9.txt
           ln -sfn s2.txt link; mkdir empty; head -c 800000 /dev/zero | tr '\\0' c > sub/more.txt`
        : ''
    }
    find . -exec touch -h -d '2022-02-0${version === 'A' ? 1 : 2} 00:00:00' {} +
    chown -hR ${username}: '${dir}'`);
}

type Node = { type: 'file'; sha: string } | { type: 'dir' } | { type: 'symlink'; target: string };

/** Every path below `root`: type, content hash, link target. Names starting `skip` are left out. */
function picture(root: string, skip = '\0'): Map<string, Node> {
  const out = new Map<string, Node>();
  if (!existsSync(root)) return out;
  const visit = (rel: string) => {
    for (const name of readdirSync(join(root, rel)).sort()) {
      if (name.startsWith(skip)) continue;
      const r = rel ? `${rel}/${name}` : name;
      const st = lstatSync(join(root, r));
      if (st.isSymbolicLink()) out.set(r, { type: 'symlink', target: readlinkSync(join(root, r)) });
      else if (st.isDirectory()) {
        out.set(r, { type: 'dir' });
        visit(r);
      } else
        out.set(r, {
          type: 'file',
          sha: createHash('sha256')
            .update(readFileSync(join(root, r)))
            .digest('hex'),
        });
    }
  };
  visit('');
  return out;
}

const git = (cwd: string, ...args: string[]) =>
  execFileSync(realGit, ['-C', cwd, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();

/** A bare origin whose main holds the recipe, and a way to clone it as actions/checkout does. */
function origin(): { url: string; clone: () => string } {
  const base = testTempDir('rf-interrupt-');
  scratch.push(base);
  const url = join(base, 'origin.git');
  execFileSync(realGit, ['init', '-q', '--bare', '-b', 'main', url]);
  let n = 0;
  const clone = () => {
    const dir = join(base, `clone-${n++}`);
    execFileSync(realGit, ['clone', '-q', url, dir], { stdio: 'ignore' });
    return dir;
  };
  const first = clone();
  git(first, 'checkout', '-q', '-b', 'main');
  writeFileSync(
    join(first, 'remote-files.yml'),
    'version: 1\nrecipes:\n  App:\n    remote_files:\n      "${install_dir}/app": app\n',
  );
  git(first, 'add', '.');
  git(first, '-c', 'user.name=t', '-c', 'user.email=t@t', 'commit', '-q', '-m', 'recipes');
  git(first, 'push', '-q', 'origin', 'main');
  return { url, clone };
}

/**
 * The origin a backup of `phase` starts from, and the server's tree it is to salvage: for a first
 * backup, tree A and an origin holding only the recipe; for a later one, tree B and an origin holding
 * the backup of A. Each interrupted run gets a copy (`fresh`), so every one starts from the same place.
 */
async function startingPoint(
  transport: Transport,
  phase: 'first' | 'later',
): Promise<() => { url: string; clone: () => string }> {
  makeTree(transport, 'A');
  const pristine = origin();
  if (phase === 'later') {
    ok(await act(pristine.clone(), transport), 'backup of A');
    makeTree(transport, 'B');
  }
  let n = 0;
  return () => {
    const url = `${pristine.url}-copy-${n++}`;
    execFileSync('cp', ['-a', pristine.url, url]);
    let k = 0;
    return {
      url,
      clone: () => {
        const dir = `${url}-clone-${k++}`;
        execFileSync(realGit, ['clone', '-q', url, dir], { stdio: 'ignore' });
        return dir;
      },
    };
  };
}

/**
 * A folder holding a `git` that runs the real one and counts its calls (`calls`, one line each); at
 * call `killAt` it kills the action (its parent) with SIGKILL, before git runs or once it returned.
 * Git runs with an allow-listed environment, so the plan is read from files beside the script.
 */
function gitShim(): { path: string; calls: () => string[]; killAt: (call: number, when: 'before' | 'after') => void } {
  const dir = testTempDir('rf-gitshim-');
  scratch.push(dir);
  writeFileSync(
    join(dir, 'git'),
    `#!/bin/sh
here=$(dirname "$0")
echo "$*" >> "$here/calls"
n=$(wc -l < "$here/calls")
at=$(cat "$here/kill-at" 2>/dev/null)
if [ "$at" = "$n before" ]; then kill -KILL $PPID; exit 137; fi
'${realGit}' "$@"; rc=$?
if [ "$at" = "$n after" ]; then kill -KILL $PPID; fi
exit $rc
`,
  );
  chmodSync(join(dir, 'git'), 0o755);
  return {
    path: dir,
    calls: () => (existsSync(join(dir, 'calls')) ? readFileSync(join(dir, 'calls'), 'utf8').trim().split('\n') : []),
    killAt: (call, when) => {
      rmSync(join(dir, 'calls'), { force: true });
      writeFileSync(join(dir, 'kill-at'), `${call} ${when}`);
    },
  };
}

function act(
  ws: string,
  transport: Transport,
  extra: Record<string, string> = {},
  how: { port?: number; path?: string; onSpawn?: (pid: number) => void } = {},
): Promise<ActionResult> {
  const s = site(transport);
  return runAction(
    sshInputs(
      server,
      { domain: DOMAIN, installDir: s.installDir, pin: 'host-fingerprint' },
      {
        port: String(how.port ?? server.port),
        username: s.username,
        mode: 'backup',
        transport,
        compression: 'none',
        timeout: '20',
        retries: '1',
        store: 'commit',
        ...extra,
      },
    ),
    {
      workspace: ws,
      ...(how.path && { env: { PATH: `${how.path}:${process.env.PATH ?? ''}` } }),
      ...(how.onSpawn && { onSpawn: how.onSpawn }),
    },
  );
}

const domainDir = (ws: string) => join(ws, 'data', DOMAIN);

/** The manifest describes exactly what the data folder holds: every record there, nothing there unrecorded. */
function assertManifestIsFolder(ws: string, context: string): void {
  const m = JSON.parse(readFileSync(join(domainDir(ws), '.remote-files', 'manifest.json'), 'utf8')) as {
    files: Record<string, { type: string; sha256?: string; target?: string }>;
  };
  const held = picture(domainDir(ws));
  held.delete('.gitattributes');
  for (const p of [...held.keys()]) if (p === '.remote-files' || p.startsWith('.remote-files/')) held.delete(p);
  const recorded = new Map(
    Object.entries(m.files).map(([p, r]) => [
      p,
      r.type === 'file'
        ? { type: 'file', sha: r.sha256 }
        : r.type === 'symlink'
          ? { type: 'symlink', target: r.target }
          : { type: r.type },
    ]),
  );
  assert.deepEqual(held, recorded, `${context}: the manifest and the data folder differ`);
}

/**
 * Leftovers of a killed run on the server: tar's staging folders and SFTP's temp files beside the
 * entry; the listing's and the block reader's temp files in the login's TMPDIR; the marker's temp file.
 */
function serverLeftovers(transport: Transport): string[] {
  const { dir } = site(transport);
  const parent = join(dir, '..');
  const beside = [...picture(parent).keys()].filter((p) => p.split('/').some((n) => n.startsWith('.remote-files-')));
  const inTmp = readdirSync(login.tmp).map((n) => `TMPDIR/${n}`);
  const markers = existsSync(markerFolder()) ? readdirSync(markerFolder()) : [];
  return [...beside, ...inTmp, ...markers.filter((n) => n.startsWith('.')).map((n) => `marker folder/${n}`)];
}

/** How many of a scenario's interruptions hit their run: all but one must (a run may end a little early). */
function assertMostHit(hit: number, tried: number, context: string): void {
  console.log(`interruptions: ${context}: ${hit} of ${tried} points hit`);
  assert.ok(tried >= 2 && hit >= tried - 1, `${context}: only ${hit} of ${tried} points interrupted their run`);
}

/**
 * Waits until the server is done with a killed run's session: sshd leaves a command running after its
 * client has gone (the upload script still unpacking or cleaning up), and only then is its cleanup due.
 */
async function settle(transport: Transport): Promise<void> {
  const busy = () =>
    (transport === 'tar'
      ? spawnSync('pgrep', ['-f', site('tar').dir])
      : spawnSync('pgrep', ['-u', site('sftp').username])
    ).status === 0;
  for (let i = 0; i < 100 && busy(); i++) await new Promise((r) => setTimeout(r, 100));
  assert.ok(!busy(), 'the killed run’s server side ended within 10 s');
}

/** `count` byte offsets: half on a log scale over the first 100 kB (handshake, listing), half spread evenly. */
function bytePoints(total: number, count: number): number[] {
  const half = Math.max(1, Math.ceil(count / 2));
  const log = Array.from({ length: half }, (_, i) =>
    Math.floor(300 * Math.pow(Math.min(100_000, total / 4) / 300, half === 1 ? 0 : i / (half - 1))),
  );
  const linear = Array.from({ length: half }, (_, i) => Math.floor((total * (i + 0.5)) / half));
  return [...new Set([...log, ...linear])].sort((a, b) => a - b);
}

/** Runs `body` with a proxy that, at `at` bytes, kills the action (`kill`) or cuts the connection. */
async function interrupted(
  at: number,
  how: 'kill' | 'cut',
  body: (port: number, onSpawn: (pid: number) => void) => Promise<ActionResult>,
): Promise<{ result: ActionResult; hit: boolean }> {
  let pid = 0;
  let hit = false;
  const proxy = await startCutProxy({
    port: server.port,
    cutAfter: how === 'cut' ? at : Infinity,
    onBytes: (bytes) => {
      if (how !== 'kill' || hit || bytes < at || pid === 0) return;
      hit = true;
      process.kill(pid, 'SIGKILL');
    },
  });
  try {
    const result = await body(proxy.port, (p) => (pid = p));
    return { result, hit: how === 'cut' ? proxy.cutCount > 0 : hit };
  } finally {
    await proxy.close();
  }
}

/** A run that was interrupted ended either killed or as a failure (or, a connect retried, a success). */
function assertEnded(r: ActionResult, how: 'kill' | 'cut', context: string): void {
  if (how === 'kill') assert.equal(r.code, null, `${context}: the action was killed\n${r.stdout}`);
  else assert.ok(r.code === 0 || r.code === 1, `${context}: exit ${r.code}\n${r.stdout}\n${r.stderr}`);
}

/** The branch's commits on origin, oldest first (read in the bare repository). */
const originCommits = (url: string) => git(url, 'rev-list', '--reverse', 'main').split('\n');

/** The branch on origin: its commits (oldest first) and, in a fresh clone, the stored tree. */
function originState(url: string): { commits: string[]; stored: Map<string, Node> } {
  const dir = testTempDir('rf-interrupt-check-');
  try {
    execFileSync(realGit, ['clone', '-q', url, join(dir, 'c')], { stdio: 'ignore' });
    const commits = git(join(dir, 'c'), 'rev-list', '--reverse', 'main').split('\n');
    return { commits, stored: picture(join(dir, 'c', 'data', DOMAIN, 'app')) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** After the re-run of a backup: whole, recorded, pushed, nothing lost on origin, nothing left on the server. */
function assertHealedBackup(transport: Transport, ws: string, url: string, before: string[], context: string): void {
  const want = picture(site(transport).dir);
  assert.deepEqual(picture(join(domainDir(ws), 'app')), want, `${context}: the data folder holds the server's tree`);
  assertManifestIsFolder(ws, context);
  const after = originState(url);
  assert.deepEqual(after.commits.slice(0, before.length), before, `${context}: origin lost commits`);
  // Git keeps no empty folder (the manifest records it, and a restore makes it): files and links compared.
  const noDirs = (m: Map<string, Node>) => new Map([...m].filter(([, n]) => n.type !== 'dir'));
  assert.deepEqual(noDirs(after.stored), noDirs(want), `${context}: origin holds the server's tree`);
  assert.deepEqual(serverLeftovers(transport), [], `${context}: temp files left on the server`);
}

/**
 * A pre-receive hook on origin that, once (it removes its plan), cuts the push in flight: the pack is
 * on origin, the ref not yet moved. It SIGKILLs the action (`action`), or the push's own `git`, the
 * action's child among the hook's ancestors, as a lost connection ends the client (`git`); then it
 * waits a second and lets the push land (exit 0) or refuses it (exit 1). `arm` writes the plan once the
 * action's pid is known; `fired` says whether the hook cut a push.
 */
function pushCutter(url: string, what: 'action' | 'git', lands: boolean) {
  const hook = join(url, 'hooks', 'pre-receive');
  writeFileSync(
    hook,
    `#!/bin/sh
PATH=/usr/bin:/bin
cat > /dev/null
[ -f kill-plan ] || exit 0
set -- $(cat kill-plan); rm -f kill-plan
if [ "$1" = action ]; then
  kill -KILL "$2"
else
  p=$$
  while [ "$p" -gt 1 ]; do
    pp=$(sed -n 's/^PPid:[[:space:]]*//p' /proc/$p/status)
    if [ "$pp" = "$2" ]; then kill -KILL "$p"; break; fi
    p=$pp
  done
fi
touch fired
sleep 1
exit $3
`,
  );
  chmodSync(hook, 0o755);
  return {
    arm: (pid: number) => writeFileSync(join(url, 'kill-plan'), `${what} ${pid} ${lands ? 0 : 1}\n`),
    fired: () => existsSync(join(url, 'fired')),
  };
}

describe('killed or cut, a plain re-run heals', { concurrency: 1 }, () => {
  for (const transport of ['tar', 'sftp'] as const) {
    // SFTP's runs are slower and its byte stream simpler (no shell scripts): fewer points.
    const points = transport === 'tar' ? POINTS : Math.ceil(POINTS / 3);

    for (const phase of ['first', 'later'] as const) {
      test(
        `${transport}: a ${phase} backup, killed or cut after N bytes, then re-run`,
        { timeout: 600_000 },
        async () => {
          const fresh = await startingPoint(transport, phase);
          const measuring = fresh().clone();
          const measured = await startCutProxy({ port: server.port, cutAfter: Infinity });
          ok(await act(measuring, transport, { push: 'false' }, { port: measured.port }), 'a measured run');
          const total = measured.bytes;
          await measured.close();
          // The faults suite cuts later backups at many points already: cuts here are for first ones.
          for (const how of phase === 'first' ? (['kill', 'cut'] as const) : (['kill'] as const)) {
            const at = bytePoints(total, points);
            let hit = 0;
            for (const n of at) {
              const context = `${transport} ${phase} backup, ${how} at ${n} of ${total} bytes`;
              const { url, clone } = fresh();
              const before = originCommits(url);
              const ws = clone();
              const run = await interrupted(n, how, (port, onSpawn) => act(ws, transport, {}, { port, onSpawn }));
              if (!run.hit) continue; // the run finished first: counted below
              hit++;
              assertEnded(run.result, how, context);
              await settle(transport);
              ok(await act(ws, transport), `${context}: the re-run`);
              assertHealedBackup(transport, ws, url, before, context);
            }
            assertMostHit(hit, at.length, `${transport} ${phase} backup, ${how}`);
          }
        },
      );
    }

    test(
      `${transport}: a restore onto an emptied server, killed or cut after N bytes, then re-run`,
      { timeout: 600_000 },
      async () => {
        makeTree(transport, 'B');
        const want = picture(site(transport).dir);
        const { clone } = origin();
        const ws = clone();
        ok(await act(ws, transport), 'backup');
        const restore = { mode: 'restore' };
        rootSh(`rm -rf '${site(transport).dir}'`);
        const measured = await startCutProxy({ port: server.port, cutAfter: Infinity });
        ok(await act(ws, transport, restore, { port: measured.port }), 'a measured restore');
        const total = measured.bytes;
        await measured.close();
        // Cut restores are the faults suite's: here the action is killed.
        for (const how of ['kill'] as const) {
          const at = bytePoints(total, points);
          let hit = 0;
          for (const n of at) {
            const context = `${transport} restore, ${how} at ${n} of ${total} bytes`;
            rootSh(`rm -rf '${site(transport).dir}'`);
            const run = await interrupted(n, how, (port, onSpawn) => act(ws, transport, restore, { port, onSpawn }));
            if (!run.hit) continue;
            hit++;
            assertEnded(run.result, how, context);
            await settle(transport);
            ok(await act(ws, transport, restore), `${context}: the re-run`);
            assert.deepEqual(picture(site(transport).dir), want, `${context}: the server's tree after the re-run`);
            assert.deepEqual(serverLeftovers(transport), [], `${context}: temp files left on the server`);
          }
          assertMostHit(hit, at.length, `${transport} restore, ${how}`);
        }
      },
    );
  }

  test(
    'the commit store: killed as each git command starts or once it returned, then re-run',
    { timeout: 600_000 },
    async () => {
      for (const phase of ['first', 'later'] as const) {
        const fresh = await startingPoint('tar', phase);
        const counter = gitShim();
        ok(await act(fresh().clone(), 'tar', {}, { path: counter.path }), 'a counted run');
        const calls = counter.calls();
        console.log(`interruptions: a ${phase} backup's git calls: ${calls.map(subcommand).join(' ')}`);
        assert.ok(calls.length >= 4, `the commit store runs git several times: ${calls.join(' | ')}`);
        const points = Array.from({ length: calls.length }, (_, i) => i + 1).filter(
          (k) => ALL_GIT_CALLS || k === 1 || WRITING_GIT.test(subcommand(calls[k - 1]!)),
        );
        // A first backup is killed as each call starts, a later one once each returned (both, with more points).
        const moments: Array<'before' | 'after'> = ALL_GIT_CALLS
          ? ['before', 'after']
          : phase === 'first'
            ? ['before']
            : ['after'];
        let killed = 0;
        for (const k of points) {
          for (const when of moments) {
            const { url, clone } = fresh();
            const ws = clone();
            const before = originCommits(url);
            // A shim of its own: a git call of an earlier killed run still ending must not count here.
            const shim = gitShim();
            shim.killAt(k, when);
            const r = await act(ws, 'tar', {}, { path: shim.path });
            const context = `${phase} backup killed ${when} git call ${k} (${subcommand(calls[k - 1]!)})`;
            // Git calls made side by side may come in another order: a run that made fewer is whole.
            if (r.code !== null) {
              ok(r, `${context}: not killed, so a whole run`);
              continue;
            }
            killed++;
            ok(await act(ws, 'tar'), `${context}: the re-run`);
            assertHealedBackup('tar', ws, url, before, context);
          }
        }
        const tried = points.length * moments.length;
        console.log(`interruptions: a ${phase} backup: ${killed} of ${tried} git calls killed the run`);
        assert.ok(killed >= Math.ceil(tried * 0.75), `${phase} backup: only ${killed} of ${tried} git kill points hit`);
      }
    },
  );

  test(
    'a push cut in flight: the action or its git killed as origin receives it, then re-run',
    { timeout: 600_000 },
    async () => {
      const cases = [
        { phase: 'later', what: 'action', lands: true },
        { phase: 'later', what: 'action', lands: false },
        { phase: 'first', what: 'action', lands: true },
        { phase: 'later', what: 'git', lands: true },
      ] as const;
      for (const phase of ['first', 'later'] as const) {
        const fresh = await startingPoint('tar', phase);
        for (const c of cases.filter((x) => x.phase === phase)) {
          const context = `${phase} backup, ${c.what === 'action' ? 'the action' : 'its git push'} killed mid-push, the push ${c.lands ? 'landing' : 'refused'}`;
          const { url, clone } = fresh();
          const ws = clone();
          const before = originCommits(url);
          const cutter = pushCutter(url, c.what, c.lands);
          // A lost connection, with one push attempt (the default retries would heal it in the same run),
          // is a failure the action reports: the salvage is in the workspace, not stored.
          const attempts: Record<string, string> = c.what === 'git' ? { 'push-attempts': '1' } : {};
          const r = await act(ws, 'tar', attempts, { onSpawn: cutter.arm });
          assert.ok(cutter.fired(), `${context}: the hook cut the push\n${r.stdout}`);
          if (c.what === 'action') assert.equal(r.code, null, `${context}: the action was killed\n${r.stdout}`);
          else
            refused(
              r,
              /store: commit could not push data\/interrupt\.example to main after 1 attempt: .+ The backup itself succeeded/,
              context,
            );
          assert.deepEqual(originCommits(url).slice(0, before.length), before, `${context}: origin lost commits`);
          await settle('tar');
          ok(await act(ws, 'tar'), `${context}: the re-run`);
          assertHealedBackup('tar', ws, url, before, context);
        }
      }
    },
  );
});
