import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, lstatSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startCutProxy, type CutProxyOptions } from '../helpers/cut-proxy.js';
import { runAction, type ActionResult } from '../helpers/run-action.js';
import { ok } from '../helpers/outcome.js';
import { rootSh, sshInputs, startSshd, type Sshd } from '../helpers/sshd.js';
import { testTempDir } from '../helpers/temp.js';

// Network faults, end to end: the committed bundle talks to a real sshd through a proxy that cuts the
// TCP connection after N bytes. N is swept across the bytes an uncut run moves, so cuts land in the
// key exchange, the login, the listing, the archive and the goodbye. Whatever the moment, a run ends
// as a success (a connect is retried) or as one clear error; it never leaves a half-written file in the
// data folder or on the server; and the next run, without the proxy, finishes the job. A server that
// stops answering without closing anything (frozen: no RST) trips the `timeout` input instead of hanging.

const DOMAIN = 'example.com';
/** The tar site's server: the one the freeze tests stop. */
let server: Sshd;
let sftpServer: Sshd;

/** One server account and its tree: the shell account (tar transport) or the chrooted SFTP-only one. */
interface Site {
  transport: 'tar' | 'sftp';
  /** Its own sshd, so the two sweeps can run side by side and each can tell when its server is idle. */
  sshd: Sshd;
  /** Cut points per sweep: the tar path is the default and gets the most. */
  points: number;
  username: string;
  /** The tree's folder on this machine, and install-dir as the account sees it. */
  dir: string;
  installDir: string;
  /** The tree before (A) and after (B) the change each backup has to salvage. */
  versionA: Snapshot;
  versionB: Snapshot;
  /** A workspace holding a complete backup of A: each cut backup starts from a copy of it. */
  baselineA: string;
  /** A root-kept copy of B (owners and times preserved), to reset the server from. */
  pristineB: string;
}

const sites: Partial<Record<Site['transport'], Site>> = {};

before(async () => {
  [server, sftpServer] = await Promise.all([
    startSshd({ hostKeyTypes: ['ed25519'] }),
    startSshd({ hostKeyTypes: ['ed25519'] }),
  ]);
  [sites.tar, sites.sftp] = await Promise.all([
    makeSite(server, 'tar', 22, 'rf-shell', server.users.shell.scratch, server.users.shell.scratch),
    makeSite(sftpServer, 'sftp', 8, 'rf-sftp', sftpServer.users.sftp.data, '/data'),
  ]);
});

after(async () => {
  server?.thaw();
  await Promise.all([server?.stop(), sftpServer?.stop()]);
});

/** Builds version A of a mixed tree, backs it up, then changes it into version B. */
async function makeSite(
  sshd: Sshd,
  transport: Site['transport'],
  points: number,
  username: string,
  root: string,
  installDir: string,
): Promise<Site> {
  const dir = join(root, 'app');
  // The SFTP account has no shell: root builds its tree and hands it over.
  const build = (script: string) => {
    if (transport === 'tar') rootSh(`cd / && su -s /bin/sh ${username} -c 'sh -s'`, script);
    else rootSh(`${script}\nchown -hR ${username}: '${dir}'`);
  };
  build(`
    set -e
    mkdir -p '${dir}/sub/deep' '${dir}/empty'
    for i in 1 2 3 4 5 6 7 8; do printf "small $i" > "${dir}/s$i.txt"; done
    printf deep > '${dir}/sub/deep/f'
    head -c 3000000 /dev/urandom > '${dir}/big.bin'
    ln -s s1.txt '${dir}/link'
    ln -s /etc/hostname '${dir}/outside'
    # Older than anything B writes: a change must show in size or mtime (checksum is off).
    find '${dir}' -exec touch -h -d '2021-01-01 00:00:00' {} +
  `);
  const site: Site = {
    sshd,
    transport,
    points,
    username,
    dir,
    installDir,
    versionA: snapshot(dir),
    versionB: new Map(),
    baselineA: workspace(),
    pristineB: join(sshd.dir, 'pristine-b'),
  };
  ok(await act(site, site.baselineA, sshd.port));
  // Every kind of change at once: new content (large and small), a new file, a deleted one, a link
  // pointing elsewhere, a new empty folder.
  build(`
    set -e
    head -c 3000000 /dev/urandom > '${dir}/big.bin'
    for i in 2 3 4; do printf "changed $i" > "${dir}/s$i.txt"; done
    rm '${dir}/s5.txt'
    printf new > '${dir}/s9.txt'
    ln -sfn s2.txt '${dir}/link'
    mkdir '${dir}/empty2'
  `);
  site.versionB = snapshot(dir);
  rootSh(`cp -a '${dir}' '${site.pristineB}'`);
  return site;
}

function resetServer(site: Site): void {
  rootSh(`rm -rf '${site.dir}' && cp -a '${site.pristineB}' '${site.dir}'`);
}

/** A copy of `from` (or an empty workspace) with the one-recipe YAML file. */
function workspace(from?: string): string {
  const ws = testTempDir('rf-faults-');
  if (from) execFileSync('cp', ['-a', `${from}/.`, ws]);
  else
    writeFileSync(
      join(ws, 'remote-files.yml'),
      'version: 1\nrecipes:\n  App:\n    remote_files:\n      "${install_dir}/app": app\n',
    );
  return ws;
}

/** One run of the bundle against `port` (the server's own, or a proxy's): the key is pinned by fingerprint, so either port will do. */
function act(site: Site, ws: string, port: number, extra: Record<string, string> = {}): Promise<ActionResult> {
  return runAction(
    sshInputs(
      site.sshd,
      { domain: DOMAIN, installDir: site.installDir, pin: 'host-fingerprint' },
      {
        port: String(port),
        username: site.username,
        mode: 'backup',
        transport: site.transport,
        timeout: '3',
        retries: '1',
        store: 'none',
        // One server serves every workspace here, each salvaging and restoring it in turn: the server rule
        // (rerun-safety.test.ts) would rightly see "restored from another salvage". Not what this suite tests.
        'new-server': 'allow',
        // Never `auto`: on a loaded machine it may measure loopback as a slow link, and which path a cut
        // hits would then vary from run to run. Restores compress (see below), backups do not.
        compression: 'none',
        ...extra,
      },
    ),
    { workspace: ws },
  );
}

/** A failed run says why in one `::error::` line a person can act on: no stack, no "undefined". */
function clearFailure(r: ActionResult, context: string): string {
  assert.equal(r.code, 1, `${context}: exit ${r.code}\n${r.stdout}\n${r.stderr}`);
  const errors = r.stdout.split('\n').filter((l) => l.startsWith('::error::'));
  assert.equal(errors.length, 1, `${context}: one ::error:: line\n${r.stdout}\n${r.stderr}`);
  const msg = errors[0]!.slice('::error::'.length);
  assert.ok(msg.length > 10, `${context}: an error that says something: ${msg}`);
  assert.doesNotMatch(msg, /undefined|\bat .*:\d+:\d+|%0A\s+at |No response from server/, `${context}: ${msg}`);
  assert.doesNotMatch(r.stderr, /^\s+at /m, `${context}: no stack on stderr\n${r.stderr}`);
  return msg;
}

/** A run cut by the network says so: not a wrong diagnosis (such as "no shell") or a parse error. */
function networkFailure(r: ActionResult, context: string): string {
  const msg = clearFailure(r, context);
  assert.match(
    msg,
    /^connection to 127\.0\.0\.1:\d+ lost \(|^Cannot connect to 127\.0\.0\.1:\d+: /,
    `${context}: ${msg}`,
  );
  return msg;
}

type Node = { type: 'file'; sha: string } | { type: 'dir' } | { type: 'symlink'; target: string };
type Snapshot = Map<string, Node>;

const sha = (data: Buffer) => createHash('sha256').update(data).digest('hex');
/** Temp names the SFTP upload writes beside a file before renaming it into place. */
const SFTP_TEMP = /^\.remote-files-[0-9a-f]{12}\.tmp$/;

/** Every path below `root` (relative), with content hash or link target; names `skip` accepts are left out. */
function snapshot(root: string, skip: (name: string) => boolean = () => false): Snapshot {
  const out: Snapshot = new Map();
  const visit = (rel: string) => {
    for (const name of readdirSync(join(root, rel)).sort()) {
      if (skip(name)) continue;
      const r = rel ? `${rel}/${name}` : name;
      const abs = join(root, r);
      const st = lstatSync(abs);
      if (st.isSymbolicLink()) out.set(r, { type: 'symlink', target: readlinkSync(abs) });
      else if (st.isDirectory()) {
        out.set(r, { type: 'dir' });
        visit(r);
      } else out.set(r, { type: 'file', sha: sha(readFileSync(abs)) });
    }
  };
  visit('');
  return out;
}

const domainDir = (ws: string) => join(ws, 'data', DOMAIN);

interface ManifestFile {
  type: string;
  target?: string;
  sha256?: string;
}

function manifestFiles(ws: string): Record<string, ManifestFile> {
  return (
    JSON.parse(readFileSync(join(domainDir(ws), '.remote-files', 'manifest.json'), 'utf8')) as {
      files: Record<string, ManifestFile>;
    }
  ).files;
}

/**
 * The data folder after any run, finished or cut: no temp file; every regular file whole (the
 * content of A or of B, never a mix or a prefix); and the manifest describes what is on disk — a
 * manifest that vouches for content the folder does not hold would restore new bytes with old metadata.
 */
function assertDataFolderSound(site: Site, ws: string, context: string): void {
  const tree = snapshot(domainDir(ws));
  const temps = [...tree.keys()].filter((p) => p.includes('.rf-tmp-'));
  assert.deepEqual(temps, [], `${context}: temp files left in the data folder`);
  for (const [rel, node] of tree) {
    if (node.type !== 'file' || !rel.startsWith('app/')) continue;
    const key = rel.slice('app/'.length);
    const known = [site.versionA.get(key), site.versionB.get(key)].flatMap((n) => (n?.type === 'file' ? [n.sha] : []));
    assert.ok(
      known.includes(node.sha),
      `${context}: ${rel} is neither version A nor B of the server's file (partial or corrupt)`,
    );
  }
  for (const [rel, rec] of Object.entries(manifestFiles(ws))) {
    const have = tree.get(rel);
    assert.equal(
      have?.type,
      rec.type,
      `${context}: manifest says ${rel} is a ${rec.type}, the folder has ${have?.type ?? 'nothing'}`,
    );
    if (have?.type === 'file') {
      assert.match(rec.sha256 ?? '', /^[0-9a-f]{64}$/, `${context}: ${rel} has no sha256 in the manifest`);
      assert.equal(have.sha, rec.sha256, `${context}: ${rel}'s content differs from its manifest sha256`);
    }
    if (have?.type === 'symlink') assert.equal(have.target, rec.target, `${context}: ${rel}'s link target`);
  }
}

/** After a finished run: the stored copy is exactly the server's tree B, manifest included. */
function assertCompleteCopy(site: Site, ws: string, context: string): void {
  assertDataFolderSound(site, ws, context);
  assert.deepEqual(
    snapshot(join(domainDir(ws), 'app')),
    site.versionB,
    `${context}: the stored copy is not the server's tree`,
  );
  const paths = Object.keys(manifestFiles(ws)).filter((p) => p !== 'app');
  assert.deepEqual(
    paths.map((p) => p.slice('app/'.length)).sort(),
    [...site.versionB.keys()].sort(),
    `${context}: manifest paths`,
  );
}

/**
 * Where a restore of lane `lane` lands. Lanes run side by side (each run is mostly waiting on a
 * process start and a handshake); each restores to its own install-dir so they never meet.
 */
function target(site: Site, lane: number): { dir: string; inputs: Record<string, string> } {
  if (lane === 0) return { dir: site.dir, inputs: {} };
  return {
    dir: join(site.dir, '..', `lane${lane}`, 'app'),
    inputs: { 'install-dir': `${site.installDir}/lane${lane}` },
  };
}

/** Leftovers of an interrupted restore on the server: tar's staging folders, SFTP's temp files. */
function serverLeftovers(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const staging = readdirSync(join(dir, '..')).filter((n) => n.startsWith('.remote-files-'));
  const temps = [...snapshot(dir).keys()].filter((p) => p.split('/').some((n) => n.startsWith('.remote-files-')));
  return [...staging, ...temps];
}

/**
 * Waits until the server side of a cut session is done. Without a terminal, sshd leaves a command
 * running after its client has gone, and the upload script may still be unpacking, moving or cleaning
 * up: its processes carry the destination in their arguments. An SFTP session is sshd's own child
 * (the SFTP site has its sshd to itself and runs one lane, so any child will do).
 */
async function settle(site: Site, dir: string): Promise<void> {
  const busy = () =>
    (site.transport === 'tar' ? spawnSync('pgrep', ['-f', dir]) : spawnSync('pgrep', ['-P', String(site.sshd.pid)]))
      .status === 0;
  for (let i = 0; i < 50; i++) {
    if (!busy()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.fail(
    `server-side processes still running 5 s after the cut: ${spawnSync('pgrep', ['-af', dir], { encoding: 'utf8' }).stdout}`,
  );
}

/** `body` for every point, `lanes` at a time; each call knows its lane. */
async function inLanes(
  points: number[],
  lanes: number,
  body: (n: number, lane: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: lanes }, async (_, lane) => {
      while (next < points.length) await body(points[next++]!, lane);
    }),
  );
}

/**
 * Cut points: half spread evenly over the total, half on a log scale up to 100 kB, so the few
 * kilobytes of key exchange, login, probe and listing get as many cuts as the megabytes of content.
 */
function cutPoints(total: number, count: number): number[] {
  const half = Math.ceil(count / 2);
  const linear = Array.from({ length: half }, (_, i) => Math.floor((total * (i + 0.5)) / half));
  const log = Array.from({ length: half }, (_, i) =>
    Math.floor(40 * Math.pow(Math.min(100_000, total / 4) / 40, i / (half - 1))),
  );
  return [...new Set([...log, ...linear])].sort((a, b) => a - b);
}

async function throughProxy<T>(
  site: Site,
  opts: Omit<CutProxyOptions, 'port'>,
  body: (port: number) => Promise<T>,
): Promise<{ result: T; bytes: number; cut: boolean }> {
  const proxy = await startCutProxy({ port: site.sshd.port, ...opts });
  try {
    const result = await body(proxy.port);
    return { result, bytes: proxy.bytes, cut: proxy.cutCount > 0 };
  } finally {
    await proxy.close();
  }
}

// The two sweeps run side by side (each on its own server); within one, backup then restore.
describe('a connection cut after N bytes', { concurrency: 2 }, () => {
  for (const transport of ['tar', 'sftp'] as const) {
    const lanes = transport === 'tar' ? 2 : 1;

    // Backup, then restore: they share the server's tree (a suite would inherit the parent's concurrency).
    describe(transport, { concurrency: 1 }, () => {
      test(
        'backup: every cut ends in success or one clear error, a sound data folder, and a clean re-run',
        { timeout: 180_000 },
        async () => {
          const site = sites[transport]!;
          resetServer(site);
          const measured = await throughProxy(site, { cutAfter: Infinity }, (port) =>
            act(site, workspace(site.baselineA), port),
          );
          ok(measured.result);
          const points = cutPoints(measured.bytes, site.points);
          assert.ok(points.length >= site.points, `${points.length} cut points`);
          let survived = 0;
          const errors = new Set<string>();
          // A backup only reads the server: the lanes share its tree.
          await inLanes(points, lanes, async (n) => {
            const ws = workspace(site.baselineA);
            const cutRun = await throughProxy(site, { cutAfter: n }, (port) => act(site, ws, port));
            const context = `${transport} backup cut at ${n} of ${measured.bytes} bytes`;
            assert.ok(cutRun.cut, `${context}: the proxy cut nothing`);
            if (cutRun.result.code === 0) {
              // A success after a cut (the connect retried) is a whole success, not a quiet partial copy.
              survived++;
              assertCompleteCopy(site, ws, `${context}, reported a success`);
            } else errors.add(networkFailure(cutRun.result, context).replace(/\d+/g, 'N'));
            assertDataFolderSound(site, ws, context);
            ok(await act(site, ws, site.sshd.port));
            assertCompleteCopy(site, ws, `${context}, then re-run`);
            rmSync(ws, { recursive: true, force: true });
          });
          console.log(
            `faults: ${points.length} ${transport} backup cuts over ${measured.bytes} bytes: ${survived} survived, ${points.length - survived} failed cleanly (${[...errors].join(' | ')})`,
          );
          assert.ok(survived > 0, 'a cut during the key exchange is retried and the run succeeds');
        },
      );

      test(
        'restore: every cut ends in success or one clear error, no partial file on the server, and a clean re-run',
        { timeout: 180_000 },
        async () => {
          const site = sites[transport]!;
          resetServer(site);
          const stored = workspace(site.baselineA);
          ok(await act(site, stored, site.sshd.port));
          assertCompleteCopy(site, stored, 'the copy restores start from');
          // Every other cut compressed: gzip on the tar stream, the SSH layer's zlib for SFTP (a cut there
          // once surfaced as ssh2's "Invalid Zlib instance" instead of the lost connection); the rest as
          // `auto` sends on a fast link. The cut points come from the compressed run: the content is
          // random, so the uncompressed one is as long or longer and every point still cuts it.
          const restore = { mode: 'restore', compression: 'gzip' };
          rootSh(`rm -rf '${site.dir}'`);
          const measured = await throughProxy(site, { cutAfter: Infinity }, (port) => act(site, stored, port, restore));
          ok(measured.result);
          assert.deepEqual(snapshot(site.dir), site.versionB);
          const points = cutPoints(measured.bytes, site.points);
          let survived = 0;
          let leftBehind = 0;
          const errors = new Set<string>();
          await inLanes(points, lanes, async (n, lane) => {
            const { dir, inputs } = target(site, lane);
            const compression = points.indexOf(n) % 2 === 0 ? 'gzip' : 'none';
            const run = { ...restore, ...inputs, compression };
            rootSh(`rm -rf '${dir}'`);
            const cutRun = await throughProxy(site, { cutAfter: n }, (port) => act(site, stored, port, run));
            const context = `${transport} restore (compression ${compression}) cut at ${n} of ${measured.bytes} bytes`;
            assert.ok(cutRun.cut, `${context}: the proxy cut nothing`);
            if (cutRun.result.code === 0) {
              survived++;
              assert.deepEqual(snapshot(dir), site.versionB, `${context}, reported a success: the server's tree`);
            } else errors.add(networkFailure(cutRun.result, context).replace(/\d+/g, 'N'));
            await settle(site, dir);
            // Whatever is in place is whole: files are renamed into place only once complete.
            if (existsSync(dir)) {
              for (const [rel, node] of snapshot(dir, (name) => name.startsWith('.remote-files-'))) {
                if (node.type === 'file')
                  assert.deepEqual(
                    node,
                    site.versionB.get(rel),
                    `${context}: ${rel} on the server is partial or corrupt`,
                  );
              }
            }
            const leftovers = serverLeftovers(dir);
            if (leftovers.length > 0) leftBehind++;
            // tar stages in a folder its script removes whatever happens; an SFTP temp file can only be
            // removed over the connection that was just cut, so the re-run removes it.
            if (transport === 'tar') assert.deepEqual(leftovers, [], `${context}: staging left on the server`);
            else
              assert.ok(
                leftovers.every((p) => SFTP_TEMP.test(p.slice(p.lastIndexOf('/') + 1))),
                `${context}: ${leftovers.join(', ')}`,
              );
            const rerun = await act(site, stored, site.sshd.port, run);
            ok(rerun);
            assert.deepEqual(snapshot(dir), site.versionB, `${context}, then re-run: the server's tree`);
            assert.deepEqual(serverLeftovers(dir), [], `${context}, then re-run: temp files left on the server`);
            if (leftovers.length > 0)
              assert.match(rerun.stdout, /removed \d+ temp file\(s\) an interrupted restore left/, context);
          });
          assertDataFolderSound(site, stored, 'the stored copy the restores read');
          console.log(
            `faults: ${points.length} ${transport} restore cuts over ${measured.bytes} bytes: ${survived} survived, ${points.length - survived} failed cleanly (${[...errors].join(' | ')}); ${leftBehind} left temp files on the server${leftBehind > 0 ? ', every one removed by the re-run' : ''}`,
          );
          assert.ok(survived > 0, 'a cut during the key exchange is retried and the run succeeds');
        },
      );
    });
  }
});

describe('a server that stops answering (no RST)', () => {
  /** The run, or a failure after `ms`; the server is thawed either way, so nothing is left waiting. */
  async function bounded(run: Promise<ActionResult>, ms: number): Promise<{ r: ActionResult; elapsed: number }> {
    const t0 = Date.now();
    let timer: NodeJS.Timeout | undefined;
    const hung = new Promise<'hung'>((done) => (timer = setTimeout(() => done('hung'), ms)));
    const r = await Promise.race([run, hung]);
    clearTimeout(timer);
    const elapsed = Date.now() - t0;
    server.thaw();
    if (r === 'hung') {
      await run;
      assert.fail(`the run was still going after ${ms} ms against a frozen server`);
    }
    return { r, elapsed };
  }

  test(
    'frozen before the connection: the timeout trips, retried once, then one clear error',
    { timeout: 60_000 },
    async () => {
      const site = sites.tar!;
      resetServer(site);
      const ws = workspace(site.baselineA);
      server.freeze();
      const { r, elapsed } = await bounded(act(site, ws, server.port), 25_000);
      const msg = clearFailure(r, 'frozen at connect');
      // Retried once (`retries: 1`): the default of 3 would also fit in the loose time bound below.
      assert.match(msg, /no answer within 3 s.*\(2 attempts\)$/);
      // Two attempts of 3 s and one retry pause of 1 s, plus the process start.
      assert.ok(elapsed < 20_000, `took ${elapsed} ms`);
      assertDataFolderSound(site, ws, 'frozen at connect');
      console.log(`faults: frozen at connect failed after ${elapsed} ms: ${msg}`);
    },
  );

  for (const mode of ['backup', 'restore'] as const) {
    test(
      `frozen in the middle of a ${mode}: the keepalive timeout ends it with one clear error`,
      { timeout: 60_000 },
      async () => {
        const site = sites.tar!;
        resetServer(site);
        const ws = workspace(site.baselineA);
        if (mode === 'restore') {
          ok(await act(site, ws, server.port));
          rootSh(`rm -rf '${site.dir}'`);
        }
        let frozenAt = 0;
        const t = await throughProxy(
          site,
          {
            cutAfter: Infinity,
            // A third of the way into the 3 MB file.
            onBytes: (bytes) => {
              if (frozenAt === 0 && bytes > 1_000_000) {
                frozenAt = bytes;
                server.freeze();
              }
            },
          },
          (port) => bounded(act(site, ws, port, { mode }), 25_000),
        );
        const { r, elapsed } = t.result;
        assert.ok(frozenAt > 0, 'the server was frozen mid-transfer');
        const msg = clearFailure(r, `frozen mid-${mode}`);
        // The keepalive (about 3 s) or the idle watchdog (3 s without progress): whichever notices first.
        assert.match(
          msg,
          /lost \((Keepalive timeout|no progress for 3 s: .*the `timeout` input \(3 s\) bounds this)\)/,
        );
        // Three keepalive intervals of a second, plus the process start.
        assert.ok(elapsed < 20_000, `took ${elapsed} ms`);
        assertDataFolderSound(site, ws, `frozen mid-${mode}`);
        // The thawed sessions wake up to a closed connection; let them finish or clean up first.
        await settle(site, site.dir);
        assert.deepEqual(serverLeftovers(site.dir), [], 'no staging left on the server');
        ok(await act(site, ws, server.port, { mode }));
        if (mode === 'backup') assertCompleteCopy(site, ws, 'after the freeze, re-run');
        else assert.deepEqual(snapshot(site.dir), site.versionB);
        console.log(`faults: frozen mid-${mode} after ${frozenAt} bytes failed after ${elapsed} ms: ${msg}`);
      },
    );
  }
});
