import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { runAction, type ActionResult } from '../helpers/run-action.js';
import { rootSh, sshInputs, startSshd, type Sshd } from '../helpers/sshd.js';
import { testTempDir } from '../helpers/temp.js';
import { manifestRecord } from '../helpers/manifest-record.js';

// The repository's data folder and manifest are input: anyone who can push writes them. A restore must
// never read outside the data folder (links to /proc/self or a runner folder), and a crafted manifest
// must not make a setuid-root file. Each attack runs the bundle against a real sshd, with canaries: a
// secret variable in the runner's environment, a secret file in a runner folder.

const DOMAIN = 'trust.example';
const CANARY = 'rf-canary-8d1e5b';

let server: Sshd;
let srv: string;
let runnerSecrets: string;

before(async () => {
  server = await startSshd();
  srv = server.users.shell.scratch;
  runnerSecrets = testTempDir('rf-runner-secrets-');
  writeFileSync(join(runnerSecrets, 'key'), `${CANARY}-file`);
});
after(async () => {
  await server?.stop();
});

function workspace(name: string): { ws: string; domainDir: string; dest: string } {
  const ws = testTempDir('rf-trust-ws-');
  const dest = join(srv, `trust-${name}`);
  writeFileSync(
    join(ws, 'remote-files.yml'),
    `version: 1\nrecipes:\n  Web:\n    remote_files:\n      "${dest}": www\n`,
  );
  return { ws, domainDir: join(ws, 'data', DOMAIN), dest };
}

const record = manifestRecord;

function writeManifest(domainDir: string, dest: string, files: Record<string, object>): void {
  mkdirSync(join(domainDir, '.remote-files'), { recursive: true });
  const m = {
    version: 1,
    domain: DOMAIN,
    names: 'git-safe-1',
    entries: { www: { remote: dest, recipe: 'Web', type: 'dir' } },
    files,
  };
  writeFileSync(join(domainDir, '.remote-files/manifest.json'), JSON.stringify(m));
}

function restore(ws: string, extra: Record<string, string> = {}): Promise<ActionResult> {
  return runAction(
    sshInputs(server, { domain: DOMAIN, installDir: srv }, { mode: 'restore', store: 'none', ...extra }),
    { workspace: ws, env: { RF_RUNNER_CANARY: CANARY } },
  );
}

/** Everything the server's destination holds, for "nothing was uploaded". */
function serverTree(dest: string): string {
  return rootSh(`[ -e '${dest}' ] && cd '${dest}' && find . -printf '%p %y %m %s\\n' | sort; true`);
}

function assertRefused(r: ActionResult, pattern: RegExp, dest: string, before: string): void {
  assert.notEqual(r.code, 0, r.stdout);
  const errors = r.stdout.split('\n').filter((l) => l.startsWith('::error::'));
  assert.equal(errors.length, 1, `one clear error\n${r.stdout}`);
  assert.match(errors[0]!, pattern);
  assert.equal(serverTree(dest), before, 'nothing was uploaded');
  const leaked = rootSh(`grep -rl '${CANARY}' '${srv}' 2>/dev/null; true`).trim();
  assert.equal(leaked, '', 'no runner secret reached the server');
}

describe('a crafted data folder cannot make a restore read outside it', () => {
  test('www -> /proc/self with a manifest listing www/environ: refused, naming the link', async () => {
    const { ws, domainDir, dest } = workspace('proc');
    mkdirSync(domainDir, { recursive: true });
    symlinkSync('/proc/self', join(domainDir, 'www'));
    writeManifest(domainDir, dest, { www: record('dir'), 'www/environ': record('file') });
    const before = serverTree(dest);
    const r = await restore(ws);
    assertRefused(
      r,
      /symbolic links where its manifest records files or folders, nothing was restored: www\b/,
      dest,
      before,
    );
  });

  test('a link one level down to a runner folder, sizes matching: refused, naming it', async () => {
    const { ws, domainDir, dest } = workspace('runner');
    mkdirSync(join(domainDir, 'www'), { recursive: true });
    symlinkSync(runnerSecrets, join(domainDir, 'www', 'conf'));
    const size = readFileSync(join(runnerSecrets, 'key')).length;
    writeManifest(domainDir, dest, {
      www: record('dir'),
      'www/conf': record('dir'),
      'www/conf/key': record('file', { size }),
    });
    const before = serverTree(dest);
    assertRefused(await restore(ws), /nothing was restored: www\/conf\b/, dest, before);
  });

  test('a stored file that is a link to a runner file: refused, naming it', async () => {
    const { ws, domainDir, dest } = workspace('filelink');
    mkdirSync(join(domainDir, 'www'), { recursive: true });
    symlinkSync(join(runnerSecrets, 'key'), join(domainDir, 'www', 'key'));
    writeManifest(domainDir, dest, {
      www: record('dir'),
      'www/key': record('file', { size: readFileSync(join(runnerSecrets, 'key')).length }),
    });
    const before = serverTree(dest);
    assertRefused(await restore(ws), /nothing was restored: www\/key\b/, dest, before);
  });

  test('the domain folder itself a link to a runner folder: refused before connecting', async () => {
    const { ws, dest } = workspace('domainlink');
    mkdirSync(join(ws, 'data'), { recursive: true });
    symlinkSync(runnerSecrets, join(ws, 'data', DOMAIN));
    const before = serverTree(dest);
    const r = await restore(ws);
    assertRefused(r, /the data folder's data\/trust\.example is a symbolic link/, dest, before);
    assert.doesNotMatch(r.stdout, /Connected to/);
  });

  test('a manifest path that climbs out of its entry is refused, naming the field', async () => {
    const { ws, domainDir, dest } = workspace('climb');
    mkdirSync(join(domainDir, 'www'), { recursive: true });
    writeManifest(domainDir, dest, { www: record('dir'), 'www/../../../etc/passwd': record('file') });
    const before = serverTree(dest);
    assertRefused(
      await restore(ws),
      /files\["www\/\.\.\/\.\.\/\.\.\/etc\/passwd"\] is not a path inside the data folder/,
      dest,
      before,
    );
  });

  test('a manifest mode 6755 with uid 0 (restored with sudo) makes no setuid-root file unless special-bits is set', async () => {
    const { ws, domainDir, dest } = workspace('setuid');
    mkdirSync(join(domainDir, 'www'), { recursive: true });
    writeFileSync(join(domainDir, 'www', 'tool'), '#!/bin/sh\n');
    writeManifest(domainDir, dest, { www: record('dir'), 'www/tool': record('file', { size: 10, mode: '6755' }) });
    const r = await restore(ws, { sudo: 'true' });
    assert.equal(r.code, 0, r.stdout);
    assert.equal(rootSh(`stat -c '%a %u' '${dest}/tool'`).trim(), '755 0');
    assert.match(
      r.stdout,
      /::warning::setuid, setgid or sticky bit not restored on 1 path\(s\) \(set special-bits: true to restore them as recorded\): www\/tool/,
    );
    rootSh(`rm -rf '${dest}'`);
    const allowed = await restore(ws, { sudo: 'true', 'special-bits': 'true' });
    assert.equal(allowed.code, 0, allowed.stdout);
    assert.equal(rootSh(`stat -c '%a %u' '${dest}/tool'`).trim(), '6755 0', 'asked for, the bits come back');
  });
});

describe('a crafted data folder cannot make a backup write or rename outside it', () => {
  /** A folder outside the workspace with a file in it; returns a snapshot function. */
  function victim(): { dir: string; state: () => string } {
    const dir = testTempDir('rf-victim-');
    writeFileSync(join(dir, '.git'), 'victim');
    return {
      dir,
      state: () => rootSh(`cd '${dir}' && find . -printf '%p %y %s\\n' | sort && cat .git 2>/dev/null; true`),
    };
  }

  test('the manifest folder a link to a runner folder: refused before connecting, nothing written there', async () => {
    const { ws, domainDir } = workspace('metalink');
    const v = victim();
    const before = v.state();
    mkdirSync(domainDir, { recursive: true });
    symlinkSync(v.dir, join(domainDir, '.remote-files'));
    const r = await restore(ws, { mode: 'backup' });
    assert.notEqual(r.code, 0, r.stdout);
    assert.match(r.stdout, /::error::the data folder's data\/trust\.example\/\.remote-files is a symbolic link/);
    assert.doesNotMatch(r.stdout, /Connected to/);
    assert.equal(v.state(), before, 'nothing written in the folder the link points to');
  });

  test('migrating an older data folder never renames through a link (x -> a runner folder with a .git)', async () => {
    const { ws, domainDir, dest } = workspace('migratelink');
    const v = victim();
    const before = v.state();
    rootSh(`cd / && su -s /bin/sh rf-shell -c 'mkdir -p "${dest}" && printf new > "${dest}/file"'`);
    mkdirSync(join(domainDir, 'www'), { recursive: true });
    symlinkSync(v.dir, join(domainDir, 'www', 'x'));
    // A manifest of the previous version (no "names"): www/x/.git would be renamed to www/x/%.git.
    mkdirSync(join(domainDir, '.remote-files'), { recursive: true });
    const files = { www: record('dir'), 'www/x': record('dir'), 'www/x/.git': record('file', { size: 6 }) };
    writeFileSync(
      join(domainDir, '.remote-files/manifest.json'),
      JSON.stringify({
        version: 1,
        domain: DOMAIN,
        entries: { www: { remote: dest, recipe: 'Web', type: 'dir' } },
        files,
      }),
    );
    await restore(ws, { mode: 'backup' });
    assert.equal(v.state(), before, 'the folder the link points to is untouched');
  });
});
