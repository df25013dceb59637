import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, lstatSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { readManifest } from '../../src/transfer/manifest/manifest.js';
import { namesOf } from '../../src/transfer/manifest/portable-names.js';
import { runAction } from '../helpers/run-action.js';
import { ok } from '../helpers/outcome.js';
import { rootSh, sshInputs, startSshd, type Sshd } from '../helpers/sshd.js';
import { testTempDir } from '../helpers/temp.js';
import { gitOrigin, type GitOrigin } from '../helpers/git-origin.js';

// The commit store keeps every byte of whatever git would make something of — salvaged checkouts, bare
// repositories, attributes, ignores, submodule files, CRLF — through push, a fresh clone (also with
// core.autocrlf=true) and a restore; and git never runs anything the salvage brought, nor sees an input.
// Runs the bundle against a real sshd and a real bare remote.

let server: Sshd;
let srv: string;
let canary: string;
const DOMAIN = 'git-shapes.example';
const SECRET_MARK = 'rf-canary-secret-7f3a';

/**
 * Builds the shapes below `dir/app` as rf-shell. `all` adds what the previous version could not commit
 * at all (git refused it): a `.git` with no commit yet, names Windows reads as `.git`, and attributes
 * git cannot apply (an encoding the file is not in).
 */
function makeShapes(dir: string, all: boolean): void {
  const hooks = [
    'pre-commit',
    'post-commit',
    'pre-push',
    'post-checkout',
    'reference-transaction',
    'post-index-change',
    'pre-auto-gc',
    'fsmonitor-watchman',
    'post-rewrite',
  ];
  const script = `
set -e
mkdir -p '${dir}/app' && cd '${dir}/app'
G='git -c user.name=s -c user.email=s@s -c init.defaultBranch=main'
$G init -q checkout && cd checkout
printf 'hello\\r\\nworld\\n' > index.php && printf '$Id$\\n' > id.txt
$G add . && $G commit -qm one && printf two > b.txt && $G add . && $G commit -qm two
git config core.fsmonitor 'touch ${canary}/fsmonitor-ran; echo'
for h in ${hooks.join(' ')}; do printf '#!/bin/sh\\ntouch ${canary}/hook-%s-ran\\n' "$h" > .git/hooks/$h; chmod 755 .git/hooks/$h; done
cd .. && $G init -q --bare bare.git
${all ? "$G init -q nocommit && printf 'n' > nocommit/file" : ':'}
printf '[submodule "x"]\\n\\tpath = x\\n\\turl = https://example.invalid/x\\n' > .gitmodules
printf '* text eol=crlf\\n${all ? '*.php filter=evil ident\\n*.txt working-tree-encoding=UTF-16\\n' : ''}' > .gitattributes
printf '*.log\\nignored/\\n' > .gitignore
printf 'a\\r\\nb\\r\\n' > crlf.txt && printf 'a\\nb\\r\\nc\\rd' > mixed.txt && printf '$Id$ x\\n' > ident.txt
printf log > x.log && mkdir ignored && printf ig > ignored/y.txt
mkdir -p empty/deeper caps
${all ? "printf C > caps/.GIT && printf E > 'caps/git~1'" : ':'} && printf D > caps/.Gitignore && printf F > caps/%literal && printf G > 'caps/%%.git'
printf '#!/bin/sh\\n' > run.sh && chmod 755 run.sh && printf s > secret && chmod 600 secret
ln -s crlf.txt link && ln -s checkout/.git/HEAD head-link
`;
  rootSh(`cd / && su -s /bin/sh rf-shell -c 'sh -s'`, script);
}

/** Every path below `dir` with type, mode, size, link target, file mtime and content hash: what must survive. */
function serverState(dir: string): string {
  return rootSh(
    `cd '${dir}' && find . -mindepth 1 \\( -type f -printf '%P\\t%y\\t%m\\t%s\\t%Ts\\t' -exec sh -c 'sha256sum < "$1" | cut -c1-64' _ {} \\; \\) -o \\( ! -type f -printf '%P\\t%y\\t%m\\t%l\\n' \\) | LC_ALL=C sort`,
  );
}

/** The data folder's files and links by their server names (as the manifest reads them back), with content hashes. */
function storedState(domainDir: string, sub: string): Map<string, string> {
  const names = namesOf(readManifest(domainDir, DOMAIN));
  const out = new Map<string, string>();
  const visit = (disk: string, rel: string) => {
    for (const stored of readdirSync(join(domainDir, disk))) {
      const name = names.fromDisk(rel, stored);
      assert.ok(name !== undefined, `${disk}/${stored} is a name the manifest reads back`);
      const child = `${rel}/${name}`;
      const at = join(domainDir, disk, stored);
      const st = lstatSync(at);
      if (st.isDirectory()) visit(`${disk}/${stored}`, child);
      else if (st.isSymbolicLink()) out.set(child, `link:${readlinkSync(at)}`);
      else out.set(child, createHash('sha256').update(readFileSync(at)).digest('hex'));
    }
  };
  visit(sub, sub);
  return out;
}

function serverFiles(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of serverState(dir).split('\n').filter(Boolean)) {
    const [path, type, , sizeOrTarget, , hash] = line.split('\t');
    if (type === 'f') out.set(`app/${path}`, hash!);
    else if (type === 'l') out.set(`app/${path}`, `link:${sizeOrTarget}`);
  }
  return out;
}

const git = (cwd: string, ...args: string[]) => execFileSync('git', ['-C', cwd, ...args], { encoding: 'utf8' }).trim();

/** A bare origin whose main holds the recipe and `* text=auto`; clones of it as actions/checkout makes them. */
function repository(installDir: string): GitOrigin {
  return gitOrigin('rf-gitfid-', {
    'remote-files.yml': `version: 1\nrecipes:\n  Shapes:\n    remote_files:\n      "${installDir}/app": app\n`,
    '.gitattributes': '* text=auto\n',
  });
}

function inputs(installDir: string, mode: string): Record<string, string> {
  return sshInputs(server, { domain: DOMAIN, installDir }, { mode, vars: `canary=${SECRET_MARK}` });
}

function assertNoCanary(): void {
  assert.deepEqual(readdirSync(canary), [], 'nothing from the salvaged repository ran on the runner');
}

function assertNoGitlinks(origin: string): void {
  const tree = git(origin, 'ls-tree', '-r', 'main');
  assert.doesNotMatch(tree, /^160000 /m, 'no gitlink: every file of a salvaged checkout is stored');
}

before(async () => {
  server = await startSshd();
  srv = server.users.shell.scratch;
  canary = testTempDir('rf-canary-');
  chmodSync(canary, 0o1777);
});
after(async () => {
  await server?.stop();
});

describe('the commit store keeps every byte, and git runs nothing of the salvage', () => {
  test('backup → push → fresh clones (also core.autocrlf=true) → server wiped → restore gives the same tree', async () => {
    const installDir = join(srv, 'fidelity');
    makeShapes(installDir, true);
    const before = serverState(join(installDir, 'app'));
    const { origin, clone } = repository(installDir);

    // The first backup, from a checkout whose push runs a receive-pack that records its environment.
    const wsA = clone();
    const envDump = join(canary, '..', `${canary.split('/').pop()}-env`);
    git(wsA, 'config', 'remote.origin.receivepack', `env > '${envDump}'; git-receive-pack`);
    writeFileSync(join(wsA, '.git/hooks/pre-push'), `#!/bin/sh\ntouch '${canary}/workspace-pre-push-ran'\n`, {
      mode: 0o755,
    });
    const first = ok(await runAction(inputs(installDir, 'backup'), { workspace: wsA }));
    assert.equal(first.outputs.pushed, 'true', first.stdout);
    assertNoCanary();
    const childEnv = readFileSync(envDump, 'utf8');
    assert.doesNotMatch(childEnv, /^INPUT_/m, 'git and its children see no input');
    assert.ok(!childEnv.includes(SECRET_MARK) && !childEnv.includes('PRIVATE KEY'), 'no secret reaches git');
    assertNoGitlinks(origin);
    const names = git(origin, 'ls-tree', '-r', '--name-only', 'main');
    for (const p of [
      'app/checkout/%.git/HEAD',
      'app/%.gitattributes',
      'app/%.gitignore',
      'app/%.gitmodules',
      'app/nocommit/%.git/HEAD',
      'app/caps/%.GIT',
      'app/caps/%git~1',
      'app/caps/%%25literal',
      'app/caps/%%25%25.git',
      'app/x.log',
      'app/ignored/y.txt',
    ]) {
      assert.ok(names.includes(`data/${DOMAIN}/${p}`), `${p} is committed\n${names}`);
    }
    assert.equal(readFileSync(join(wsA, 'data', DOMAIN, '.gitattributes'), 'utf8').includes('-text'), true);

    // Fresh clones see exactly the salvaged bytes; a second backup from one finds nothing to do.
    const wsB = clone();
    assert.deepEqual(storedState(join(wsB, 'data', DOMAIN), 'app'), serverFiles(join(installDir, 'app')));
    const second = ok(await runAction(inputs(installDir, 'backup'), { workspace: wsB }));
    assert.equal(second.outputs.changed, 'false', second.stdout);
    assertNoCanary();
    const wsC = clone(['core.autocrlf=true']);
    assert.deepEqual(
      storedState(join(wsC, 'data', DOMAIN), 'app'),
      serverFiles(join(installDir, 'app')),
      'core.autocrlf=true changes nothing',
    );

    // The server is rebuilt: the restore from the autocrlf clone puts back the very same tree.
    rootSh(`rm -rf '${installDir}/app'`);
    ok(await runAction(inputs(installDir, 'restore'), { workspace: wsC }));
    assert.equal(serverState(join(installDir, 'app')), before);
    assertNoCanary();
  });

  test('a data folder the previous version wrote (a gitlink, a live .gitattributes) is repaired by the next backup', async (t) => {
    // The previous version's own bundle, from this repository's history.
    const old = testTempDir('rf-old-dist-');
    try {
      execFileSync('sh', ['-c', `git archive ${PREVIOUS} dist | tar -x -C '${old}'`], { stdio: 'pipe' });
    } catch {
      t.skip(`commit ${PREVIOUS} (the previous version's bundle) is not in this clone's history`);
      return;
    }
    const installDir = join(srv, 'migration');
    makeShapes(installDir, false);
    const before = serverState(join(installDir, 'app'));
    const { origin, clone } = repository(installDir);
    ok(await runAction(inputs(installDir, 'backup'), { workspace: clone(), entry: join(old, 'dist/index.js') }));
    assert.match(
      git(origin, 'ls-tree', '-r', 'main'),
      /^160000 commit \w+\tdata\/git-shapes\.example\/app\/checkout$/m,
      'the previous version stored a gitlink',
    );

    const ws = clone();
    const r = ok(await runAction(inputs(installDir, 'backup'), { workspace: ws }));
    assert.match(
      r.stdout,
      /data folder moved to portable names .*renamed \d+ path\(s\): .*app\/\.gitattributes → app\/%\.gitattributes/,
    );
    assert.match(
      r.stdout,
      /app\/checkout holds a git checkout, which an earlier version's commit store kept as a gitlink without its files: they are salvaged again/,
    );
    assert.equal(r.outputs.pushed, 'true');
    assertNoGitlinks(origin);
    assertNoCanary();
    assert.match(
      readFileSync(join(ws, 'data', DOMAIN, '.remote-files/manifest.json'), 'utf8'),
      /"names": "portable-1"/,
    );

    const fresh = clone(['core.autocrlf=true']);
    rootSh(`rm -rf '${installDir}/app'`);
    ok(await runAction(inputs(installDir, 'restore'), { workspace: fresh }));
    assert.equal(serverState(join(installDir, 'app')), before);
    assert.ok(existsSync(join(fresh, 'data', DOMAIN, 'app/checkout/%.git/HEAD')));
  });
});

/** The last commit of the version before git-safe names. */
const PREVIOUS = 'cd9d44b';
