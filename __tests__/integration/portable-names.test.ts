import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { generateIdentity, identityToRecipient } from 'age-encryption';
import { portabilityProblems } from '../helpers/portable-paths.js';
import { ok } from '../helpers/outcome.js';
import { runAction } from '../helpers/run-action.js';
import { testTempDir } from '../helpers/temp.js';
import { treePicture } from '../helpers/tree.js';
import { gitOrigin, type GitOrigin } from '../helpers/git-origin.js';
import { rootSh, sshInputs, startSshd, type Sshd } from '../helpers/sshd.js';

// Issue #26 (and #22 items 7, 8): a salvage whose names other systems cannot check out is committed
// under names that check out on Linux, macOS and Windows, and comes back byte for byte. Runs the bundle
// against a real sshd and a real bare remote.

let server: Sshd;
let srv: string;
const DOMAIN = 'portable.example';

const NFC = 'caf\u00e9';
const NFD = 'cafe\u0301';
/** Every kind of name issue #26 lists, git's own names, and ordinary ones; all of them git-safe-1 could commit. */
const NAMES = [
  'a:b',
  'what?.txt',
  'x<y>z|"q"*',
  'aux.conf',
  'AUX',
  'con',
  'nul.tar.gz',
  'COM1',
  'com\u00b9.log',
  'lpt3 .txt',
  'trailing.',
  'trailing ',
  'tab\there',
  'nl\nhere',
  'bell\x07',
  'Makefile',
  'makefile',
  'MAKEFILE',
  NFC,
  NFD,
  '%20',
  ' ',
  '%.git',
  '.gitignore',
  '.gitattributes',
  'plain.txt',
  'README',
];
/** What git-safe-1 could not store at all: a 255-byte name starting with `%` (item 7), `\` before `.git` (item 8). */
const NEW_ONLY = [`%${'x'.repeat(254)}`, 'dir\\.git', 'a\\.GIT\\b', `${'\u00e9'.repeat(120)}?`];

/** The server tree: each name as a file, folders that differ only in case, a checkout's `.git`, a link. */
function makeTree(app: string, names: string[]): void {
  mkdirSync(app, { recursive: true });
  for (const [i, name] of names.entries()) writeFileSync(join(app, name), `file ${i}: ${JSON.stringify(name)}\r\n`);
  for (const dir of ['Docs', 'docs', 'aux', 'sub.']) {
    mkdirSync(join(app, dir));
    writeFileSync(join(app, dir, 'Readme'), `in ${dir}`);
    writeFileSync(join(app, dir, 'readme'), `in ${dir}, lower case`);
  }
  mkdirSync(join(app, 'checkout/.git/refs'), { recursive: true });
  writeFileSync(join(app, 'checkout/.git/HEAD'), 'ref: refs/heads/main\n');
  symlinkSync('a:b', join(app, 'link:to'));
  rootSh(`chown -R rf-shell: '${join(app, '..')}'`);
}

/** Every path below `root` with type, mode, mtime (files), content hash or link target: what must come back. */
const picture = (root: string) => treePicture(root, { modes: true, fileTimes: true, seconds: true });

const git = (cwd: string, ...args: string[]) => execFileSync('git', ['-C', cwd, ...args], { encoding: 'utf8' }).trim();

/** A bare origin whose main holds the recipe; clones of it as actions/checkout makes them. */
function repository(installDir: string): GitOrigin {
  return gitOrigin('rf-portable-', {
    'remote-files.yml': `version: 1\nrecipes:\n  Names:\n    remote_files:\n      "${installDir}/app": app\n`,
  });
}

function inputs(installDir: string, mode: string): Record<string, string> {
  return sshInputs(server, { domain: DOMAIN, installDir }, { mode });
}

/** The committed tree checks out on Windows and macOS, and git reads none of the salvage as its own. */
function assertPortableCommit(origin: string): string[] {
  const paths = git(origin, 'ls-tree', '-r', '-z', '--name-only', 'main').split('\0').filter(Boolean);
  assert.deepEqual(portabilityProblems(paths), [], 'every committed path checks out on Windows and macOS');
  const gitNames = paths.filter(
    (p) =>
      p !== `data/${DOMAIN}/.gitattributes` &&
      p.split('/').some((c) => ['.git', '.gitattributes', '.gitignore', '.gitmodules'].includes(c.toLowerCase())),
  );
  assert.deepEqual(gitNames, [], 'no salvaged name is one git reads');
  assert.doesNotMatch(git(origin, 'ls-tree', '-r', 'main'), /^160000 /m, 'no gitlink');
  return paths;
}

before(async () => {
  server = await startSshd();
  srv = server.users.shell.scratch;
});
after(async () => {
  await server?.stop();
});

describe('portable names: the data folder checks out on every system and gives back every name', () => {
  test('backup → commit → checks for Windows and macOS → fresh clone → server wiped → restore gives the same tree', async () => {
    const installDir = join(srv, 'portable');
    const app = join(installDir, 'app');
    makeTree(app, [...NAMES, ...NEW_ONLY]);
    const beforeTree = picture(app);
    const { origin, clone } = repository(installDir);

    const first = ok(await runAction(inputs(installDir, 'backup'), { workspace: clone() }));
    assert.equal(first.outputs.pushed, 'true', first.stdout);
    const paths = assertPortableCommit(origin);
    for (const p of ['app/%a%3Ab', 'app/%aux.conf', 'app/MAKEFILE', 'app/%Makefile%~1', 'app/%dir%5C.git'])
      assert.ok(paths.includes(`data/${DOMAIN}/${p}`), `${p} is committed\n${paths.join('\n')}`);
    const manifest = JSON.parse(git(origin, 'show', `main:data/${DOMAIN}/.remote-files/manifest.json`)) as {
      names: string;
      stored: Record<string, string>;
    };
    assert.equal(manifest.names, 'portable-1');
    assert.equal(manifest.stored['app/makefile'], '%makefile%~2', 'the exceptions are recorded');
    assert.ok(
      Object.keys(manifest.stored).includes(`app/%${'x'.repeat(254)}`),
      'the 255-byte name starting with % is stored under a recorded short form',
    );

    // A second backup from a fresh clone (core.autocrlf=true) changes nothing.
    const fresh = clone(['core.autocrlf=true']);
    const second = ok(await runAction(inputs(installDir, 'backup'), { workspace: fresh }));
    assert.equal(second.outputs.changed, 'false', second.stdout);

    rootSh(`rm -rf '${app}'`);
    ok(await runAction(inputs(installDir, 'restore'), { workspace: fresh }));
    assert.deepEqual(picture(app), beforeTree, 'every name, byte, mode and time comes back');
  });

  test('encrypted at rest, over SFTP: the same names come back through the decrypted copy', async () => {
    const installDir = join(srv, 'encrypted');
    const app = join(installDir, 'app');
    makeTree(app, [...NAMES, ...NEW_ONLY]);
    const beforeTree = picture(app);
    const identity = await generateIdentity();
    const ws = testTempDir('rf-portable-age-');
    writeFileSync(
      join(ws, 'remote-files.yml'),
      `version: 1\nrecipes:\n  Names:\n    remote_files:\n      "${installDir}/app": app\n`,
    );
    const run = (mode: string, extra: Record<string, string>) =>
      runAction({ ...inputs(installDir, mode), store: 'none', transport: 'sftp', ...extra }, { workspace: ws });
    ok(await run('backup', { 'age-recipients': await identityToRecipient(identity) }));
    assert.deepEqual(portabilityProblems(readdirSync(join(ws, 'data', DOMAIN, 'app')).map((n) => `app/${n}`)), []);
    rootSh(`rm -rf '${app}'`);
    ok(await run('restore', { 'age-identity': identity }));
    assert.deepEqual(picture(app), beforeTree);
  });

  test('a data folder git-safe-1 wrote moves to portable names once; a second run changes nothing', async (t) => {
    const old = testTempDir('rf-gitsafe-dist-');
    try {
      execFileSync('sh', ['-c', `git archive ${GIT_SAFE_VERSION} dist | tar -x -C '${old}'`], { stdio: 'pipe' });
    } catch {
      t.skip(`commit ${GIT_SAFE_VERSION} (the git-safe-1 bundle) is not in this clone's history`);
      return;
    }
    const installDir = join(srv, 'migration');
    const app = join(installDir, 'app');
    makeTree(app, NAMES);
    const beforeTree = picture(app);
    const { origin, clone } = repository(installDir);
    ok(await runAction(inputs(installDir, 'backup'), { workspace: clone(), entry: join(old, 'dist/index.js') }));
    const oldPaths = git(origin, 'ls-tree', '-r', '-z', '--name-only', 'main').split('\0').filter(Boolean);
    assert.ok(portabilityProblems(oldPaths).length > 10, 'git-safe-1 committed names other systems refuse');

    const ws = clone();
    const r = ok(await runAction(inputs(installDir, 'backup'), { workspace: ws }));
    assert.match(r.stdout, /data folder moved to portable names .*renamed \d+ path\(s\): /);
    assert.equal(r.outputs.pushed, 'true', r.stdout);
    assertPortableCommit(origin);
    const head = git(origin, 'rev-parse', 'main');

    const again = clone();
    const r2 = ok(await runAction(inputs(installDir, 'backup'), { workspace: again }));
    assert.doesNotMatch(r2.stdout, /moved to portable names/);
    assert.equal(r2.outputs.changed, 'false', r2.stdout);
    assert.equal(git(origin, 'rev-parse', 'main'), head, 'nothing new is committed');
    assert.ok(existsSync(join(again, 'data', DOMAIN, 'app', '%makefile%~2')));

    rootSh(`rm -rf '${app}'`);
    ok(await runAction(inputs(installDir, 'restore'), { workspace: clone(['core.autocrlf=true']) }));
    assert.deepEqual(picture(app), beforeTree);
  });
});

/** The last commit whose bundle wrote git-safe-1 names. */
const GIT_SAFE_VERSION = '4c6b1b4';
