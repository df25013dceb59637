import assert from 'node:assert/strict';
import {
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import tar from 'tar-stream';
import { NODES, recipeWorkspace, runAction, type ActionResult } from '../helpers/run-action.js';
import { ok } from '../helpers/outcome.js';
import { asShell, rootSh, sshInputs, startSshd, startSshdWithWrapper, type Sshd } from '../helpers/sshd.js';
import { testTempDir } from '../helpers/temp.js';

// Backup and restore end to end: the committed dist/ bundle, run as the runner runs it, against a real
// OpenSSH server on 127.0.0.1. The "server" is this machine, so the tests set up and inspect server files
// directly (as root), and log in as unprivileged test accounts.

let server: Sshd;
let srv: string; // install-dir on the server: the shell account's scratch folder
const DOMAIN = 'example.com';

before(async () => {
  server = await startSshd();
  srv = server.users.shell.scratch;
});
after(async () => {
  await server?.stop();
});

const node20 = NODES[0]!.path;

/** A fresh workspace with one YAML recipe file. */
function workspace(recipes: string): string {
  return recipeWorkspace('rf-ws-', recipes);
}

function baseInputs(extra: Record<string, string> = {}): Record<string, string> {
  return sshInputs(
    server,
    { domain: DOMAIN, installDir: srv },
    { mode: 'backup', timeout: '20', store: 'none', ...extra },
  );
}

async function act(ws: string, inputs: Record<string, string>, node = node20): Promise<ActionResult> {
  return runAction(inputs, { workspace: ws, node });
}

function failed(r: ActionResult, pattern: RegExp): ActionResult {
  assert.equal(r.code, 1, `expected failure, got exit ${r.code}\n${r.stdout}`);
  assert.match(r.stdout, pattern);
  return r;
}

function readManifest(ws: string): {
  files: Record<
    string,
    {
      type: string;
      size: number;
      mtime: number;
      mode: string;
      user: string;
      uid: number;
      target?: string;
      sha256?: string;
    }
  >;
} {
  return JSON.parse(readFileSync(join(ws, 'data', DOMAIN, '.remote-files', 'manifest.json'), 'utf8'));
}

const stored = (ws: string, rel: string) => join(ws, 'data', DOMAIN, rel);

describe('backup and restore over tar (shell account)', () => {
  let ws: string;
  let app: string;
  const recipe = (name: string) => `  ${name}:
    remote_files:
      "\${install_dir}/app": app
      "\${install_dir}/big.bin": big/big.bin
      "\${install_dir}/db.sqlite": db/db.sqlite
      "\${install_dir}/nope": nope
    remote_skip: [tmp/, "*.lock"]
    remote_prepare:
      - "date > \${install_dir}/app/prepared.txt"
      - "echo broken >&2; exit 3"
    restores:
      "\${install_dir}/restored-app":
        from: "\${install_dir}/\${domain}/app"
        owner: rf-other:rf-other
        mode: 750
`;

  before(() => {
    ws = workspace(recipe('App'));
    app = join(srv, 'app');
    asShell(`
      set -e
      mkdir -p '${app}/empty dir' '${app}/ünï cödé' '${app}/tmp' '${app}/deep/er'
      : > '${app}/empty'
      printf 'spaces' > '${app}/ünï cödé/file with spaces.txt'
      printf 'key' > '${app}/secret.key'; chmod 600 '${app}/secret.key'
      ln -s secret.key '${app}/link'
      ln -s /etc/passwd '${app}/outside'
      printf junk > '${app}/tmp/junk'
      printf lock > '${app}/x.lock'
      printf deep > '${app}/deep/er/file'
      touch -d '2020-01-02 03:04:05' '${app}/deep/er/file'
      head -c 104857600 /dev/urandom > '${srv}/big.bin'
      printf 'sqlite' > '${srv}/db.sqlite'
    `);
  });

  test('first backup salvages the tree: empty files and folders, unicode, 0600, symlinks, 100 MB', async () => {
    const r = ok(await act(ws, baseInputs()));
    assert.match(
      r.stdout,
      /prepare command failed \(exit 3\)[\s\S]*broken/,
      'a failing prepare command is a warning with its output',
    );
    assert.match(r.stdout, /::warning::.*nope is missing/);
    assert.equal(r.outputs.missing, '1');
    assert.equal(r.outputs.denied, '0');
    assert.equal(r.outputs.changed, 'true');
    assert.ok(Number(r.outputs.bytes) > 104857600);
    assert.ok(existsSync(stored(ws, 'app/prepared.txt')), 'prepare ran before the fetch');
    assert.equal(readFileSync(stored(ws, 'app/ünï cödé/file with spaces.txt'), 'utf8'), 'spaces');
    assert.equal(statSync(stored(ws, 'app/empty')).size, 0);
    assert.ok(statSync(stored(ws, 'app/empty dir')).isDirectory());
    assert.equal(statSync(stored(ws, 'app/secret.key')).mode & 0o777, 0o600);
    assert.equal(readlinkSync(stored(ws, 'app/link')), 'secret.key');
    assert.equal(
      readlinkSync(stored(ws, 'app/outside')),
      '/etc/passwd',
      'a link out of the entry is recorded, never followed',
    );
    assert.ok(readFileSync(stored(ws, 'big/big.bin')).equals(readFileSync(join(srv, 'big.bin'))));
    assert.equal(readFileSync(stored(ws, 'db/db.sqlite'), 'utf8'), 'sqlite');
    assert.ok(!existsSync(stored(ws, 'app/tmp')), 'remote_skip tmp/ (a folder)');
    assert.ok(!existsSync(stored(ws, 'app/x.lock')), 'remote_skip *.lock (a basename anywhere)');
    const m = readManifest(ws).files;
    assert.equal(m['app/secret.key']!.mode, '0600');
    assert.equal(m['app/secret.key']!.user, 'rf-shell');
    assert.equal(m['app/link']!.type, 'symlink');
    assert.equal(m['app/link']!.target, 'secret.key');
    assert.equal(m['app/deep/er/file']!.mtime, Math.floor(new Date('2020-01-02T03:04:05').getTime() / 1000));
    assert.match(m['db/db.sqlite']!.sha256!, /^[0-9a-f]{64}$/);
    const report = JSON.parse(readFileSync(r.outputs.report!, 'utf8'));
    assert.equal(report.totals.missing, 1);
    assert.match(r.summary, /\| App \|/);
    // No temp files are left behind anywhere in the data folder.
    assert.deepEqual(
      walk(join(ws, 'data')).filter((p) => p.includes('.rf-tmp-')),
      [],
    );
  });

  test('nothing changed: no bytes move and the manifest is not rewritten', async () => {
    const before = statSync(join(ws, 'data', DOMAIN, '.remote-files', 'manifest.json')).mtimeMs;
    const r = ok(await act(ws, baseInputs({ prepare: 'false' })));
    assert.equal(r.outputs.bytes, '0');
    assert.equal(r.outputs.files, '0');
    assert.equal(r.outputs.changed, 'false');
    assert.equal(r.outputs.unchanged, '7', 'seven files, every one unchanged');
    assert.equal(statSync(join(ws, 'data', DOMAIN, '.remote-files', 'manifest.json')).mtimeMs, before);
  });

  test('a stored file removed, damaged, or replaced by another type, is fetched again though the server did not change', async () => {
    writeFileSync(stored(ws, 'db/db.sqlite'), 'version https://git-lfs.github.com/spec/v1\n'); // what a checkout without LFS leaves
    rmSync(stored(ws, 'app/secret.key'));
    rmSync(stored(ws, 'app/empty'));
    mkdirSync(stored(ws, 'app/empty'));
    rmSync(stored(ws, 'app/link'));
    writeFileSync(stored(ws, 'app/link'), 'not a link');
    const r = ok(await act(ws, baseInputs({ prepare: 'false' })));
    assert.equal(r.outputs.files, '3', 'db.sqlite, secret.key and empty');
    assert.equal(r.outputs.unchanged, '4');
    assert.equal(readFileSync(stored(ws, 'db/db.sqlite'), 'utf8'), 'sqlite');
    assert.equal(readFileSync(stored(ws, 'app/secret.key'), 'utf8'), 'key');
    assert.ok(statSync(stored(ws, 'app/empty')).isFile());
    assert.equal(readlinkSync(stored(ws, 'app/link')), 'secret.key');
  });

  test('a manifest that is not valid JSON fails the backup and the restore, naming it; nothing is written', async () => {
    const path = join(ws, 'data', DOMAIN, '.remote-files', 'manifest.json');
    const good = readFileSync(path);
    writeFileSync(path, '{"version": 1, "files": {');
    try {
      const before = walk(join(ws, 'data'));
      // Backup reads it while the server lists; restore before it connects.
      failed(await act(ws, baseInputs({ prepare: 'false' })), /manifest\.json: the manifest is not valid JSON/);
      failed(await act(ws, baseInputs({ mode: 'restore' })), /manifest\.json: the manifest is not valid JSON/);
      assert.deepEqual(walk(join(ws, 'data')), before);
    } finally {
      writeFileSync(path, good);
    }
  });

  test('a restore from a damaged stored copy is refused before anything is uploaded', async () => {
    const path = stored(ws, 'db/db.sqlite');
    const good = readFileSync(path);
    writeFileSync(path, 'version https://git-lfs.github.com/spec/v1\n');
    rmSync(stored(ws, 'app/deep/er/file'));
    const serverState = () => rootSh(`cd '${srv}' && find . -printf '%p %y %s %T@\\n' | sort | md5sum`);
    const serverBefore = serverState();
    try {
      const r = failed(
        await act(ws, baseInputs({ mode: 'restore' })),
        /the stored copy is damaged, nothing was restored: /,
      );
      assert.match(r.stdout, /app\/deep\/er\/file \(missing\)/);
      assert.match(r.stdout, /db\/db\.sqlite \(43 bytes, the manifest records 6\)/);
      assert.match(r.stdout, /lfs: true/);
      assert.equal(serverState(), serverBefore, 'nothing on the server changed');
    } finally {
      writeFileSync(path, good);
      mkdirSync(stored(ws, 'app/deep/er'), { recursive: true });
      writeFileSync(stored(ws, 'app/deep/er/file'), 'deep');
    }
  });

  test('checksum: true confirms by SHA-256 a change that keeps size and mtime', async () => {
    asShell(
      `printf SQLITE > '${srv}/db.sqlite.new' && touch -r '${srv}/db.sqlite' '${srv}/db.sqlite.new' && mv '${srv}/db.sqlite.new' '${srv}/db.sqlite'`,
    );
    const quick = ok(await act(ws, baseInputs({ prepare: 'false' })));
    assert.equal(quick.outputs.changed, 'false', 'size + mtime cannot see it');
    const sure = ok(await act(ws, baseInputs({ prepare: 'false', checksum: 'true' })));
    assert.equal(sure.outputs.changed, 'true');
    assert.equal(readFileSync(stored(ws, 'db/db.sqlite'), 'utf8'), 'SQLITE');
  });

  test('dry run reports what would move and moves nothing', async () => {
    asShell(`printf changed > '${app}/empty'; printf new > '${app}/new.txt'`);
    const r = ok(await act(ws, baseInputs({ prepare: 'false', 'dry-run': 'true' })));
    assert.equal(r.outputs.changed, 'true');
    assert.match(r.summary, /dry run/);
    assert.equal(statSync(stored(ws, 'app/empty')).size, 0);
    assert.ok(!existsSync(stored(ws, 'app/new.txt')));
  });

  test('changes and deletions are mirrored; delete: false keeps what the server dropped', async () => {
    asShell(`rm '${app}/new.txt' '${app}/ünï cödé/file with spaces.txt'`);
    const keep = ok(await act(ws, baseInputs({ prepare: 'false', delete: 'false' })));
    assert.equal(keep.outputs.changed, 'true');
    assert.equal(readFileSync(stored(ws, 'app/empty'), 'utf8'), 'changed');
    assert.ok(existsSync(stored(ws, 'app/ünï cödé/file with spaces.txt')));
    ok(await act(ws, baseInputs({ prepare: 'false' })));
    assert.ok(!existsSync(stored(ws, 'app/ünï cödé/file with spaces.txt')));
    assert.ok(!existsSync(stored(ws, 'app/new.txt')));
    assert.equal(readManifest(ws).files['app/ünï cödé/file with spaces.txt'], undefined);
  });

  test('a folder the server turned into a file, and a file turned into a folder, are stored as their new type', async () => {
    asShell(`set -e; mkdir -p '${app}/shape1/sub'; printf old > '${app}/shape1/sub/f'; printf old > '${app}/shape2'`);
    ok(await act(ws, baseInputs({ prepare: 'false' })));
    assert.equal(readFileSync(stored(ws, 'app/shape1/sub/f'), 'utf8'), 'old');
    asShell(
      `set -e; rm -r '${app}/shape1' '${app}/shape2'; printf 'now a file' > '${app}/shape1'; mkdir '${app}/shape2'; printf inner > '${app}/shape2/inner'`,
    );
    ok(await act(ws, baseInputs({ prepare: 'false' })));
    assert.equal(readFileSync(stored(ws, 'app/shape1'), 'utf8'), 'now a file');
    assert.equal(readFileSync(stored(ws, 'app/shape2/inner'), 'utf8'), 'inner');
    const m = readManifest(ws);
    assert.equal(m.files['app/shape1']?.type, 'file');
    assert.equal(m.files['app/shape1/sub/f'], undefined);
    assert.equal(m.files['app/shape2']?.type, 'dir');
    assert.deepEqual(
      readdirSync(stored(ws, 'app')).filter((n) => n.startsWith('.rf-tmp-')),
      [],
    );
    asShell(`rm -r '${app}/shape1' '${app}/shape2'`);
    ok(await act(ws, baseInputs({ prepare: 'false' })));
    assert.ok(!existsSync(stored(ws, 'app/shape1')) && !existsSync(stored(ws, 'app/shape2')));
  });

  test('a missing entry keeps what was stored for it; if-missing: error fails naming it', async () => {
    mkdirSync(stored(ws, 'nope'), { recursive: true });
    writeFileSync(stored(ws, 'nope/old.txt'), 'old');
    const r = failed(
      await act(ws, baseInputs({ prepare: 'false', 'if-missing': 'error' })),
      /::error::.*App: .*\/nope is missing/,
    );
    assert.equal(r.outputs.missing, '1');
    assert.equal(readFileSync(stored(ws, 'nope/old.txt'), 'utf8'), 'old');
    rmSync(stored(ws, 'nope'), { recursive: true });
  });

  test('restore puts the tree back with modes, times and links; restores apply owner and mode', async () => {
    rootSh(`rm -rf '${app}' '${srv}/db.sqlite' '${srv}/restored-app'`);
    const r = ok(await act(ws, baseInputs({ mode: 'restore', sudo: 'true' })));
    assert.equal(r.outputs.changed, 'true');
    assert.equal(readFileSync(join(app, 'empty'), 'utf8'), 'changed');
    assert.equal(statSync(join(app, 'secret.key')).mode & 0o777, 0o600);
    assert.equal(readlinkSync(join(app, 'link')), 'secret.key');
    assert.equal(readlinkSync(join(app, 'outside')), '/etc/passwd');
    assert.ok(statSync(join(app, 'empty dir')).isDirectory());
    assert.equal(statSync(join(app, 'deep/er/file')).mtime.getTime(), new Date('2020-01-02T03:04:05').getTime());
    assert.equal(ownerOf(join(app, 'secret.key')), 'rf-shell');
    assert.equal(readFileSync(join(srv, 'db.sqlite'), 'utf8'), 'SQLITE');
    // restores: the salvage copied to its destination with the recipe's owner and mode.
    assert.equal(ownerOf(join(srv, 'restored-app')), 'rf-other');
    assert.equal(statSync(join(srv, 'restored-app')).mode & 0o777, 0o750);
    assert.equal(readFileSync(join(srv, 'restored-app/deep/er/file'), 'utf8'), 'deep');
    assert.equal(ownerOf(join(srv, 'restored-app/deep/er/file')), 'rf-other');
    assert.deepEqual(
      walk(srv).filter((p) => p.includes('.rf-tmp-') || p.includes('.rf-stage')),
      [],
      'no staging left on the server',
    );
  });

  test('restores never overwrite live state (the framework rule)', async () => {
    rootSh(`echo live > '${srv}/restored-app/live.txt'; rm -f '${srv}/restored-app/empty'`);
    const r = ok(await act(ws, baseInputs({ mode: 'restore', sudo: 'true' })));
    assert.match(r.summary, /already holds state/);
    assert.ok(!existsSync(join(srv, 'restored-app/empty')), 'left as it is');
  });

  test('conflict: fail writes nothing; keep leaves the server file; overwrite keeps the old content aside', async () => {
    asShell(`printf 'server edit' > '${app}/secret.key'`);
    const fail = failed(
      await act(ws, baseInputs({ mode: 'restore', conflict: 'fail' })),
      /conflict: fail.*secret\.key/,
    );
    assert.notEqual(fail.outputs.changed, 'true');
    assert.equal(readFileSync(join(app, 'secret.key'), 'utf8'), 'server edit');

    const keep = ok(await act(ws, baseInputs({ mode: 'restore', conflict: 'keep' })));
    assert.match(keep.summary, /conflict: keep/);
    assert.equal(readFileSync(join(app, 'secret.key'), 'utf8'), 'server edit');

    const dry = ok(await act(ws, baseInputs({ mode: 'restore', 'dry-run': 'true' })));
    assert.equal(dry.outputs.files, '1');
    assert.equal(readFileSync(join(app, 'secret.key'), 'utf8'), 'server edit', 'dry run writes nothing');

    const over = ok(await act(ws, baseInputs({ mode: 'restore' })));
    assert.equal(readFileSync(join(app, 'secret.key'), 'utf8'), 'key');
    assert.match(over.summary, /Previous content of 1 replaced file\(s\) kept on the server in/);
    const kept = walk(join(server.users.shell.home, '.remote-files')).filter((p) => p.endsWith('secret.key'));
    assert.ok(
      kept.some((p) => readFileSync(p, 'utf8') === 'server edit'),
      `previous content kept: ${kept.join(', ')}`,
    );
  });
});

describe('denied files (another account owns them)', () => {
  test('a denied entry is reported and fails the run, and its stored copy is kept; allow-denied passes', async () => {
    const priv = join(srv, 'private');
    rootSh(
      `mkdir -p '${priv}/inner' && echo s > '${priv}/s.txt' && chown -R rf-other: '${priv}' && chmod 700 '${priv}'`,
    );
    rootSh(
      `mkdir -p '${srv}/mixed/locked' && echo a > '${srv}/mixed/a' && echo b > '${srv}/mixed/locked/b' && chown -R rf-shell: '${srv}/mixed' && chown rf-other: '${srv}/mixed/locked' && chmod 700 '${srv}/mixed/locked'`,
    );
    const ws = workspace(
      `  Priv:\n    remote_files:\n      "\${install_dir}/private": private\n      "\${install_dir}/mixed": mixed\n`,
    );
    mkdirSync(stored(ws, 'private'), { recursive: true });
    writeFileSync(stored(ws, 'private/old.txt'), 'old');
    mkdirSync(stored(ws, 'mixed/locked'), { recursive: true });
    writeFileSync(stored(ws, 'mixed/locked/b'), 'stored b');
    const r = failed(await act(ws, baseInputs()), /::error::.*not readable by rf-shell/);
    assert.equal(r.outputs.denied, '2');
    assert.equal(r.outputs.missing, '0');
    assert.equal(
      readFileSync(stored(ws, 'private/old.txt'), 'utf8'),
      'old',
      'a denied folder never erases its stored copy',
    );
    assert.equal(readFileSync(stored(ws, 'mixed/locked/b'), 'utf8'), 'stored b', 'nor does a denied subfolder');
    assert.equal(readFileSync(stored(ws, 'mixed/a'), 'utf8'), 'a\n');
    ok(await act(ws, baseInputs({ 'allow-denied': 'true' })));
    const sudo = ok(await act(ws, baseInputs({ sudo: 'true' })));
    assert.equal(sudo.outputs.denied, '0');
    assert.equal(readFileSync(stored(ws, 'private/s.txt'), 'utf8'), 's\n');
  });
});

describe('host keys and connections', () => {
  const ws = () => workspace(`  One:\n    remote_files:\n      "\${install_dir}/one.txt": one.txt\n`);
  before(() => asShell(`echo one > '${srv}/one.txt'`));

  test('an unknown server is refused with the command that pins it', async () => {
    const r = failed(await act(ws(), baseInputs({ 'known-hosts': '' })), /ssh-keyscan -p \d+ 127\.0\.0\.1/);
    assert.match(r.stdout, /host-fingerprint/);
  });

  test('a mismatched key is refused', async () => {
    const other = join(testTempDir('rf-otherkey-'), 'k');
    rootSh(`ssh-keygen -q -t ed25519 -N '' -C '' -f '${other}'`);
    const wrong = `[127.0.0.1]:${server.port} ${readFileSync(`${other}.pub`, 'utf8').trim()}`;
    failed(
      await act(ws(), baseInputs({ 'known-hosts': '', 'host-fingerprint': 'SHA256:' + 'A'.repeat(43) })),
      /host key/i,
    );
    failed(await act(ws(), baseInputs({ 'known-hosts': wrong })), /host key/i);
  });

  test('pinned by fingerprint (any key type) or by a hashed known_hosts line', async () => {
    const byFp = ok(
      await act(ws(), baseInputs({ 'known-hosts': '', 'host-fingerprint': server.fingerprint('ed25519') })),
    );
    assert.equal(byFp.outputs.files, '1');
    const hashedFile = join(testTempDir('rf-kh-'), 'known_hosts');
    writeFileSync(hashedFile, server.knownHostsLine('ed25519') + '\n');
    rootSh(`ssh-keygen -H -f '${hashedFile}' >/dev/null 2>&1`);
    const hashed = readFileSync(hashedFile, 'utf8');
    assert.match(hashed, /^\|1\|/);
    ok(await act(ws(), baseInputs({ 'known-hosts': hashed })));
  });

  test('insecure-ignore-host-key connects with a warning', async () => {
    const r = ok(await act(ws(), baseInputs({ 'known-hosts': '', 'insecure-ignore-host-key': 'true' })));
    assert.match(r.stdout, /::warning::.*host key/i);
  });

  test('through a jump host, both keys verified; secrets never reach the log', async () => {
    const jump = {
      'proxy-host': '127.0.0.1',
      'proxy-port': String(server.port),
      'proxy-username': 'rf-shell',
      'proxy-key': server.key.privateKey,
    };
    const r = ok(await act(ws(), baseInputs(jump)));
    assert.equal(r.outputs.files, '1');
    assert.equal(r.stdout.match(/Host key of 127\.0\.0\.1:\d+ verified/g)?.length, 2, 'the jump host and the target');
    const keyLines = server.key.privateKey.split('\n').filter((l) => l.length > 20);
    const logged = r.stdout.split('\n').filter((l) => !l.startsWith('::add-mask::'));
    assert.deepEqual(
      logged.filter((l) => keyLines.some((k) => l.includes(k))),
      [],
      'no key line reaches the log',
    );
    assert.ok(
      keyLines.every((k) => r.stdout.includes(`::add-mask::${k}\n`)),
      'every key line is masked',
    );
    failed(
      await act(
        ws(),
        baseInputs({
          ...jump,
          'known-hosts': '',
          'host-fingerprint': 'SHA256:' + 'B'.repeat(43),
        }),
      ),
      /host key/i,
    );
  });

  test('an encrypted key with its passphrase, and a password, log in', async () => {
    ok(
      await act(ws(), baseInputs({ key: server.encryptedKey.privateKey, passphrase: server.encryptedKey.passphrase })),
    );
    ok(await act(ws(), baseInputs({ key: '', password: server.password })));
    failed(await act(ws(), baseInputs({ key: '', password: 'wrong' })), /authentication/i);
  });
});

describe('SFTP-only account (chrooted internal-sftp)', () => {
  test('auto picks sftp; round trip with folders, links and modes; prepare is skipped with a warning', async () => {
    const data = server.users.sftp.data;
    rootSh(
      `mkdir -p '${data}/site/sub' '${data}/site/empty' && printf cfg > '${data}/site/sub/c.conf' && chmod 640 '${data}/site/sub/c.conf' && ln -s sub/c.conf '${data}/site/link' && printf 'ü' > '${data}/site/ü name' && chown -R rf-sftp: '${data}/site'`,
    );
    const ws = workspace(`  Site:\n    remote_files:\n      /data/site: site\n    remote_prepare: [ "true" ]\n`);
    const inputs = baseInputs({ username: 'rf-sftp' });
    const r = ok(await act(ws, inputs));
    assert.match(r.stdout, /transport sftp/);
    assert.match(r.stdout, /::warning::.*remote_prepare.*skipped/);
    assert.equal(readFileSync(stored(ws, 'site/sub/c.conf'), 'utf8'), 'cfg');
    assert.equal(statSync(stored(ws, 'site/sub/c.conf')).mode & 0o777, 0o640);
    assert.equal(readlinkSync(stored(ws, 'site/link')), 'sub/c.conf');
    assert.ok(statSync(stored(ws, 'site/empty')).isDirectory());
    const again = ok(await act(ws, inputs));
    assert.equal(again.outputs.bytes, '0');
    rootSh(`rm -rf '${data}/site'`);
    ok(await act(ws, { ...inputs, mode: 'restore' }));
    assert.equal(readFileSync(join(data, 'site/sub/c.conf'), 'utf8'), 'cfg');
    assert.equal(statSync(join(data, 'site/sub/c.conf')).mode & 0o777, 0o640);
    assert.equal(readlinkSync(join(data, 'site/link')), 'sub/c.conf');
    assert.equal(readFileSync(join(data, 'site/ü name'), 'utf8'), 'ü');
    failed(await act(ws, { ...inputs, transport: 'tar' }), /transport: tar needs a shell/);
  });
});

describe('a hostile server', () => {
  let evil: Sshd;
  let work: string;
  before(async () => {
    // The shell account's every command goes through a script that answers honestly except for the
    // archive, which it replaces with a crafted one: names that climb out, absolute names, links.
    ({ sshd: evil, work } = await startSshdWithWrapper('hostile', {
      script: `#!/bin/bash\nif [[ "$SSH_ORIGINAL_COMMAND" == *--hard-dereference* ]]; then cat >/dev/null; cat "$(dirname "$0")/$RF_ARCHIVE"; exit 0; fi\nexec bash -c "$SSH_ORIGINAL_COMMAND"\n`,
      matchConfig: ['SetEnv RF_ARCHIVE=current.tar'],
    }));
    asShell(`mkdir -p '${srv}/victim' && echo fine > '${srv}/victim/a.txt'`);
  });
  after(async () => {
    await evil?.stop();
  });

  for (const [name, members] of [
    ['a name that climbs out', [['../../../escaped.txt', 'file', 'x']]],
    ['an absolute name', [['/tmp/rf-escaped-abs.txt', 'file', 'x']]],
    [
      'a link, then a file through it',
      [
        [`${'SRV'}/victim/a.txt`, 'symlink', '/tmp'],
        ['SRV/victim/a.txt/rf-escaped-link.txt', 'file', 'x'],
      ],
    ],
    ['a file nobody asked for', [['SRV/victim/other.txt', 'file', 'x']]],
  ] as const) {
    test(`refuses ${name}, and writes nothing outside the data folder`, async () => {
      const archive = await craftTar(
        members.map(([n, t, c]) => ({ name: n.replace('SRV', srv), type: t, content: c })),
      );
      writeFileSync(join(work, 'current.tar'), archive);
      const ws = workspace(`  Victim:\n    remote_files:\n      "\${install_dir}/victim": victim\n`);
      const r = await runAction(
        {
          ...baseInputs(),
          port: String(evil.port),
          key: evil.key.privateKey,
          'known-hosts': evil.knownHostsLine('ed25519'),
          transport: 'tar',
          // The crafted archive is raw: with a codec (auto may pick one on a loaded machine) it would be
          // refused as undecodable before its names were ever checked.
          compression: 'none',
        },
        { workspace: ws, node: node20 },
      );
      assert.equal(r.code, 1, r.stdout);
      assert.match(r.stdout, /::error::.*(unexpected|refus|hostile|not requested)/i);
      assert.ok(!existsSync('/tmp/rf-escaped-abs.txt') && !existsSync('/tmp/rf-escaped-link.txt'));
      assert.deepEqual(
        walk(ws).filter((p) => /escaped|other\.txt/.test(p)),
        [],
      );
      assert.ok(!existsSync(join(ws, '..', 'escaped.txt')));
    });
  }
});

describe('the bundle on node 24', () => {
  test('backup and restore run on the runner’s Node', { skip: NODES.length < 2 }, async () => {
    asShell(`mkdir -p '${srv}/n24' && echo 24 > '${srv}/n24/f'`);
    const ws = workspace(`  N:\n    remote_files:\n      "\${install_dir}/n24": n24\n`);
    const r = ok(await act(ws, baseInputs(), NODES[1]!.path));
    assert.equal(r.outputs.files, '1');
    rootSh(`rm -rf '${srv}/n24'`);
    ok(await act(ws, baseInputs({ mode: 'restore' }), NODES[1]!.path));
    assert.equal(readFileSync(join(srv, 'n24/f'), 'utf8'), '24\n');
  });
});

function ownerOf(path: string): string {
  return rootSh(`stat -c %U '${path}'`).trim();
}

function walk(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    return [p, ...(e.isDirectory() && !lstatSync(p).isSymbolicLink() ? walk(p) : [])];
  });
}

/** The archive a hostile server sends, built with the same tar library the action parses with. */
async function craftTar(members: Array<{ name: string; type: string; content: string }>): Promise<Buffer> {
  const pack = tar.pack();
  const collected = (async () => {
    const chunks: Buffer[] = [];
    for await (const c of pack) chunks.push(c as Buffer);
    return Buffer.concat(chunks);
  })();
  for (const m of members) {
    if (m.type === 'symlink') pack.entry({ name: m.name, type: 'symlink', linkname: m.content });
    else pack.entry({ name: m.name, type: 'file', mode: 0o644 }, m.content);
  }
  pack.finalize();
  return collected;
}
