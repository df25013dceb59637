import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { spawn } from 'node:child_process';
import { existsSync, lstatSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { NODES, runAction, type ActionResult } from '../helpers/run-action.js';
import { ok, refused } from '../helpers/outcome.js';
import { asShell, rootSh, sshInputs, startSshd, type Sshd } from '../helpers/sshd.js';
import { testTempDir } from '../helpers/temp.js';

// Issue #13 point 3: a restore never follows a link on the server below a destination's root. The
// committed bundle runs against a real sshd; an account that owns a folder below a destination (here
// rf-other) has replaced it with a link to a victim folder outside every destination. The victim is a
// canary: owned by rf-other, mode 0757 (so even rf-shell without root could write into it, which is
// what an SFTP restore would have done), with a file and a subfolder; after every restore its
// contents, modes, owners and times must be exactly as before. Each attack is played as root (tar with
// `sudo: true`) and over SFTP, at the destination's first level and one level down. The root itself
// may be an admin's link (followed when root owns it) but not one another account made (refused,
// naming the link and its target); a file entry whose place is now a folder is refused.

const DOMAIN = 'example.com';
const node20 = NODES[0]!.path;
let server: Sshd;
let srv: string;
let victim: string;
/** Root-owned folder holding the target of the admin's root link. */
let disk: string;
let ws: string;

/** The server tree the stored copy was made from: a folder entry and a file entry. */
function plantSite(): void {
  rootSh(`rm -rf '${srv}/site' '${srv}/conf.php'`);
  asShell(`
    set -e
    mkdir -p '${srv}/site/uploads/cache'
    printf top > '${srv}/site/top.txt'
    printf upload > '${srv}/site/uploads/a.txt'
    printf cached > '${srv}/site/uploads/cache/c.txt'
    printf '<?php' > '${srv}/conf.php'
    chmod 0750 '${srv}/site/uploads'
    chmod 0700 '${srv}/site/uploads/cache'
    touch -d '2020-01-02 03:04:05' '${srv}/site/uploads/cache'
  `);
}

/** A link at `path` (whatever was there removed) to `target`, made by rf-other as an attack would be. */
function plantLink(path: string, target: string): void {
  rootSh(`rm -rf '${path}' && ln -s '${target}' '${path}' && chown -h rf-other:rf-other '${path}'`);
}

const CACHE_MTIME = new Date('2020-01-02T03:04:05').getTime();

/** A folder the restore made where a link was: real, with the stored mode, owner and (cache) time. */
function assertRestoredFolder(path: string, mode: number, mtime?: number): void {
  const st = lstatSync(path);
  assert.ok(st.isDirectory(), `${path} is a real folder`);
  assert.equal((st.mode & 0o7777).toString(8), mode.toString(8), `${path}: mode`);
  assert.equal(st.uid, Number(rootSh('id -u rf-shell').trim()), `${path}: owner`);
  if (mtime !== undefined) assert.equal(st.mtimeMs, mtime, `${path}: mtime`);
}

/** The server side changed since the backup: the stored copy now differs, so a restore writes. */
/**
 * Server-side edits a restore must undo. Their sizes differ from the stored files': a restore, like
 * rsync's quick check, takes same size and same mtime second for unchanged, and a test fast enough to
 * plant and edit within the second of the backup would otherwise see its edit kept.
 */
function editSite(): void {
  asShell(
    `printf 'edited on the server' > '${srv}/site/top.txt'; printf 'edited on the server' > '${srv}/site/uploads/a.txt'; printf 'edited on the server' > '${srv}/site/uploads/cache/c.txt'`,
  );
}

before(async () => {
  server = await startSshd({ hostKeyTypes: ['ed25519'] });
  srv = server.users.shell.scratch;
  const tag = randomBytes(4).toString('hex');
  victim = `/var/lib/rf-victim-${tag}`;
  disk = `/var/lib/rf-disk-${tag}`;
  rootSh(`
    set -e
    mkdir -p '${victim}/sub' '${disk}'
    printf canary > '${victim}/keep.txt'
    printf deeper > '${victim}/sub/deep.txt'
    chown -R rf-other:rf-other '${victim}'
    chmod 0757 '${victim}' '${victim}/sub'
    chmod 0644 '${victim}/keep.txt' '${victim}/sub/deep.txt'
    touch -d '2021-03-04 05:06:07' '${victim}/keep.txt' '${victim}/sub/deep.txt' '${victim}/sub' '${victim}'
  `);
  ws = testTempDir('rf-links-');
  writeFileSync(
    join(ws, 'remote-files.yml'),
    'version: 1\nrecipes:\n  Site:\n    remote_files:\n      "${install_dir}/site": site\n      "${install_dir}/conf.php": conf/conf.php\n',
  );
  plantSite();
  ok(await act({ transport: 'tar' }), 'backup');
});

after(async () => {
  await server?.stop();
  rmSync(victim, { recursive: true, force: true });
  rmSync(disk, { recursive: true, force: true });
});

function inputs(extra: Record<string, string>): Record<string, string> {
  return sshInputs(
    server,
    { domain: DOMAIN, installDir: srv },
    { mode: 'backup', timeout: '20', retries: '0', store: 'none', ...extra },
  );
}

function act(extra: Record<string, string>): Promise<ActionResult> {
  return runAction(inputs(extra), { workspace: ws, node: node20 });
}

/** Every path below (and including) `root`: type, mode, owner, group, mtime, content hash. */
function picture(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  const visit = (path: string, rel: string) => {
    const st = lstatSync(path);
    const kind = st.isDirectory()
      ? 'dir'
      : st.isFile()
        ? `file ${createHash('sha256').update(readFileSync(path)).digest('hex')}`
        : st.isSymbolicLink()
          ? 'link'
          : 'other';
    out[rel || '.'] = `${kind} ${(st.mode & 0o7777).toString(8)} ${st.uid}:${st.gid} ${st.mtimeMs}`;
    if (st.isDirectory())
      for (const name of readdirSync(path).sort()) visit(join(path, name), rel ? `${rel}/${name}` : name);
  };
  visit(root, '');
  return out;
}

const victimBefore = () => picture(victim);

function assertVictimIntact(before: Record<string, string>, context: string): void {
  assert.deepEqual(picture(victim), before, `${context}: the victim folder changed`);
}

function read(path: string): string {
  return readFileSync(path, 'utf8');
}

const transports: Array<{ name: string; extra: Record<string, string> }> = [
  { name: 'tar as root (sudo: true)', extra: { transport: 'tar', sudo: 'true' } },
  { name: 'sftp', extra: { transport: 'sftp' } },
];

for (const { name, extra } of transports) {
  describe(`restore over ${name} follows no link below a destination's root`, () => {
    test('a link where a first-level folder goes is replaced by a real folder; nothing lands in its target', async () => {
      plantSite();
      editSite();
      plantLink(`${srv}/site/uploads`, victim);
      const before = victimBefore();
      const r = ok(await act({ ...extra, mode: 'restore' }), name);
      assertVictimIntact(before, name);
      const uploads = join(srv, 'site/uploads');
      assertRestoredFolder(uploads, 0o750);
      assertRestoredFolder(join(uploads, 'cache'), 0o700, CACHE_MTIME);
      assert.equal(read(join(uploads, 'a.txt')), 'upload');
      assert.equal(read(join(uploads, 'cache/c.txt')), 'cached');
      assert.equal(read(join(srv, 'site/top.txt')), 'top');
      assert.equal(r.outputs.changed, 'true');
    });

    test('a link one level down (uploads/cache) is replaced the same way', async () => {
      plantSite();
      editSite();
      plantLink(`${srv}/site/uploads/cache`, victim);
      const before = victimBefore();
      ok(await act({ ...extra, mode: 'restore' }), name);
      assertVictimIntact(before, name);
      const cache = join(srv, 'site/uploads/cache');
      assertRestoredFolder(cache, 0o700, CACHE_MTIME);
      assert.equal(read(join(cache, 'c.txt')), 'cached');
      assert.equal(read(join(srv, 'site/uploads/a.txt')), 'upload');
    });

    test('a link at a stored file’s name is replaced by the file, its target left alone', async () => {
      plantSite();
      plantLink(`${srv}/site/uploads/a.txt`, `${victim}/keep.txt`);
      const before = victimBefore();
      ok(await act({ ...extra, mode: 'restore' }), name);
      assertVictimIntact(before, name);
      assert.ok(lstatSync(join(srv, 'site/uploads/a.txt')).isFile());
      assert.equal(read(join(srv, 'site/uploads/a.txt')), 'upload');
    });

    test('a root that is a link another account owns is refused, naming the link and its target', async () => {
      plantSite();
      plantLink(`${srv}/site`, victim);
      const before = victimBefore();
      const line = refused(
        await act({ ...extra, mode: 'restore' }),
        /refusing to restore through .*\/site: it is a link to \/var\/lib\/rf-victim-/,
        name,
      );
      assert.match(line, /the link belongs to (rf-other|uid \d+)/);
      assertVictimIntact(before, name);
      assert.ok(lstatSync(join(srv, 'site')).isSymbolicLink(), 'the link is left as it is');
    });

    test('a root that is a link root made (an admin’s data disk) is followed', async () => {
      plantSite();
      const target = join(disk, `site-${name.split(' ')[0]}`);
      rootSh(
        `rm -rf '${srv}/site' '${target}' && mkdir '${target}' && chown rf-shell:rf-shell '${target}' && ln -s '${target}/' '${srv}/site'`,
      );
      const before = victimBefore();
      ok(await act({ ...extra, mode: 'restore' }), name);
      assertVictimIntact(before, name);
      assert.ok(lstatSync(join(srv, 'site')).isSymbolicLink(), 'the admin’s link stays');
      assert.equal(read(join(target, 'top.txt')), 'top');
      assert.equal(read(join(target, 'uploads/cache/c.txt')), 'cached');
    });

    test('a file entry whose server path is now a folder is refused, and nothing is written in the folder', async () => {
      plantSite();
      rootSh(
        `rm -f '${srv}/conf.php' && mkdir '${srv}/conf.php' && printf mine > '${srv}/conf.php/x' && chown -R rf-other:rf-other '${srv}/conf.php'`,
      );
      const folder = picture(join(srv, 'conf.php'));
      refused(
        await act({ ...extra, mode: 'restore' }),
        /the server has a folder where the stored copy has a file, nothing was restored: .*\/conf\.php/,
        name,
      );
      assert.deepEqual(picture(join(srv, 'conf.php')), folder, 'the folder is untouched');
      rootSh(`rm -rf '${srv}/conf.php'`);
    });
  });
}

describe('a link swapped in while a restore runs (tar as root)', () => {
  test('uploads flipping between a real folder and a link to the victim: every folder is checked after entering it', async () => {
    const stop = join(ws, 'stop-flipping');
    for (let round = 0; round < 5; round++) {
      plantSite();
      editSite();
      const before = victimBefore();
      const up = `${srv}/site/uploads`;
      // Runs as root for the whole restore; ended through its stop file, then awaited by its own exit.
      const flipper = spawn(
        'sh',
        [
          '-c',
          `while [ ! -e '${stop}' ]; do mv '${up}' '${up}.real' 2>/dev/null; ln -s '${victim}' '${up}' 2>/dev/null; rm -f '${up}' 2>/dev/null; mv '${up}.real' '${up}' 2>/dev/null; done`,
        ],
        { stdio: 'ignore' },
      );
      const exited = new Promise((done) => flipper.on('exit', done));
      try {
        const r = await act({ transport: 'tar', sudo: 'true', mode: 'restore' });
        // Either the restore won every check, or it refused a folder that was a link when entered.
        if (r.code !== 0)
          refused(
            r,
            /is not a real folder on the server \(a link, or replaced meanwhile\)|writing .* on the server failed/,
            `round ${round}`,
          );
      } finally {
        writeFileSync(stop, '');
        await exited;
        rmSync(stop, { force: true });
      }
      assertVictimIntact(before, `round ${round}`);
    }
  });
});

describe('the root link rule, as root', () => {
  test('a root link root owns, in a folder another account owns, is refused naming that folder', async () => {
    plantSite();
    const open = join(srv, 'open');
    rootSh(
      `rm -rf '${open}' && mkdir '${open}' && chown rf-other:rf-other '${open}' && ln -s '${victim}' '${open}/site'`,
    );
    writeFileSync(
      join(ws, 'remote-files.yml'),
      'version: 1\nrecipes:\n  Site:\n    remote_files:\n      "${install_dir}/open/site": site\n',
    );
    try {
      const before = victimBefore();
      const line = refused(
        await act({ transport: 'tar', sudo: 'true', mode: 'restore' }),
        /refusing to restore through .*\/open\/site: it is a link to \/var\/lib\/rf-victim-/,
        'folder above',
      );
      assert.match(line, /\/open, a folder above it, belongs to rf-other/);
      assertVictimIntact(before, 'folder above');
      assert.ok(!existsSync(join(victim, 'top.txt')));
    } finally {
      writeFileSync(
        join(ws, 'remote-files.yml'),
        'version: 1\nrecipes:\n  Site:\n    remote_files:\n      "${install_dir}/site": site\n      "${install_dir}/conf.php": conf/conf.php\n',
      );
      rootSh(`rm -rf '${open}'`);
    }
  });
});
