import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startCutProxy } from '../helpers/cut-proxy.js';
import { runAction, type ActionResult } from '../helpers/run-action.js';
import { ok } from '../helpers/outcome.js';
import { rootSh, sshInputs, startSshd, type Sshd } from '../helpers/sshd.js';
import { testTempDir } from '../helpers/temp.js';

// What a round trip keeps, one promise at a time (issue #22): times before 1970 and past 2038, mode
// 0000, ids above 262143, a folder's time beside a sibling named like it, over tar and SFTP; and the
// first backup that is cut or finds nothing. The bundle against a real sshd; the server's files are
// made and read here as root.

const DOMAIN = 'fidelity.example';
let server: Sshd;
const scratch: string[] = [];

before(async () => {
  server = await startSshd({ hostKeyTypes: ['ed25519'] });
});
after(async () => {
  await server?.stop();
  for (const dir of scratch) rmSync(dir, { recursive: true, force: true });
});

function workspace(remoteFiles: Record<string, string>): string {
  const ws = testTempDir('rf-fidelity-');
  scratch.push(ws);
  const lines = Object.entries(remoteFiles).map(([from, to]) => `      "${from}": ${to}\n`);
  writeFileSync(join(ws, 'remote-files.yml'), `version: 1\nrecipes:\n  App:\n    remote_files:\n${lines.join('')}`);
  return ws;
}

type Account = 'shell' | 'sftp';

function act(ws: string, account: Account, extra: Record<string, string> = {}, port = server.port) {
  return runAction(
    sshInputs(
      server,
      {
        domain: DOMAIN,
        installDir: account === 'shell' ? server.users.shell.scratch : server.users.sftp.dataInChroot,
        pin: 'host-fingerprint',
      },
      {
        port: String(port),
        username: account === 'shell' ? server.users.shell.username : server.users.sftp.username,
        mode: 'backup',
        transport: account === 'shell' ? 'tar' : 'sftp',
        compression: 'none',
        timeout: '20',
        store: 'none',
        ...extra,
      },
    ),
    { workspace: ws },
  );
}

interface Record_ {
  type: string;
  mtime: number;
  mode: string;
  uid: number;
  gid: number;
}

function manifest(ws: string): { entries: Record<string, unknown>; files: Record<string, Record_> } {
  return JSON.parse(readFileSync(join(ws, 'data', DOMAIN, '.remote-files', 'manifest.json'), 'utf8'));
}

/** `mtime mode uid gid` of each path below `dir` (links not followed), as the server's stat says. */
function serverStat(dir: string, rels: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const rel of rels) out[rel] = rootSh(`stat -c '%Y %a %u %g' -- '${join(dir, rel)}'`).trim();
  return out;
}

type RestoreRecord = { mtime: number; mode: string; uid: number; gid: number };

/** A data folder holding `app/<name>` (its content its name) for each record, and its manifest. */
function writeDataFolder(
  ws: string,
  records: Record<string, { mtime: number; mode: string; uid: number; gid: number }>,
) {
  const domainDir = join(ws, 'data', DOMAIN);
  mkdirSync(join(domainDir, 'app'), { recursive: true });
  mkdirSync(join(domainDir, '.remote-files'));
  const owner = { user: 'root', group: 'root' };
  const files: Record<string, unknown> = {
    app: { type: 'dir', size: 0, mtime: 1600000000, mode: '0755', uid: 0, gid: 0, ...owner },
  };
  for (const [name, r] of Object.entries(records)) {
    writeFileSync(join(domainDir, 'app', name), name);
    const sha256 = createHash('sha256').update(name).digest('hex');
    files[`app/${name}`] = {
      type: 'file',
      size: name.length,
      ...r,
      ...owner,
      user: String(r.uid),
      group: String(r.gid),
      sha256,
    };
  }
  const entries = { app: { remote: join(server.users.shell.scratch, 'app'), recipe: 'App', type: 'dir' } };
  writeFileSync(
    join(domainDir, '.remote-files', 'manifest.json'),
    JSON.stringify({ version: 1, domain: DOMAIN, names: 'git-safe-1', entries, files }),
  );
}

/** Times every store and transport must carry, in whole seconds. */
const TIMES = {
  'y2100.txt': 4102444800, // 2100-01-01: past the 32-bit field
  'y1944.txt': -820540800, // 1944: before 1970
  'y2040.txt': 2208988800, // 2040: just past 2038
  'y2286.txt': 10000000000, // past GNU tar's eleven octal digits
  'minus1.txt': -1, // 1969-12-31 23:59:59, all ones in 32 bits
};

describe('tar: times, modes and ids come back exactly', () => {
  const dir = () => join(server.users.shell.scratch, 'app');

  test('backup records times before 1970 and past 2038, mode 0000 and ids above 262143 exactly', async () => {
    const app = dir();
    rootSh(`rm -rf '${app}' && mkdir -p '${app}/olddir' && cd '${app}'
      ${Object.entries(TIMES)
        .map(([name, t]) => `printf '${name}' > ${name} && touch -d @${t} ${name}`)
        .join('\n')}
      printf secret > secret && chmod 0000 secret
      printf big-ids > ids.txt && chown 300000:4000000000 ids.txt
      printf x > olddir/f && touch -d @-1.5 olddir/f olddir && ln -s y1944.txt link && touch -h -d @-0.25 link`);
    const ws = workspace({ '${install_dir}/app': 'app' });
    ok(await act(ws, 'shell', { sudo: 'true' }), 'backup');
    const files = manifest(ws).files;
    const times = Object.fromEntries(Object.keys(TIMES).map((name) => [name, files[`app/${name}`]?.mtime]));
    assert.deepEqual(times, TIMES);
    // find's %T@ prints -1.5 s as "-2.5"; the whole second below is -2 (and -1 for -0.25).
    assert.equal(files['app/olddir']?.mtime, -2, 'manifest: a folder at -1.5 s');
    assert.equal(files['app/olddir/f']?.mtime, -2, 'manifest: a file at -1.5 s');
    assert.equal(files['app/link']?.mtime, -1, 'manifest: a link at -0.25 s');
    assert.equal(files['app/secret']?.mode, '0000');
    assert.deepEqual([files['app/ids.txt']?.uid, files['app/ids.txt']?.gid], [300000, 4000000000]);
  });

  const restoreCases: Array<[string, Record<string, RestoreRecord>]> = [
    [
      'times before 1970 and past 2038',
      Object.fromEntries(Object.entries(TIMES).map(([name, mtime]) => [name, { mtime, mode: '0644', uid: 0, gid: 0 }])),
    ],
    [
      'mode 0000 and ids above 262143',
      {
        secret: { mtime: 1600000000, mode: '0000', uid: 0, gid: 0 },
        'ids.txt': { mtime: 1600000000, mode: '0640', uid: 300000, gid: 4000000000 },
      },
    ],
  ];
  for (const [what, records] of restoreCases) {
    test(`restore writes ${what} exactly`, async () => {
      // The data folder is written here, not by a backup: the restore alone is under test.
      const ws = workspace({ '${install_dir}/app': 'app' });
      writeDataFolder(ws, records);
      const app = dir();
      rootSh(`rm -rf '${app}'`);
      ok(await act(ws, 'shell', { mode: 'restore', sudo: 'true' }), 'restore');
      const want = Object.fromEntries(
        Object.entries(records).map(([name, r]) => [
          name,
          `${r.mtime} ${parseInt(r.mode, 8).toString(8)} ${r.uid} ${r.gid}`,
        ]),
      );
      assert.deepEqual(serverStat(app, Object.keys(records)), want);
    });
  }

  test("a folder's time survives a sibling named like it plus a character that sorts before '/'", async () => {
    const app = dir();
    rootSh(`rm -rf '${app}' && mkdir -p '${app}/backup' '${app}/conf' && cd '${app}'
      printf a > backup/x && printf b > backup.tar && printf c > backup-old && printf d > conf/y && printf e > conf.d
      touch -d @1500000000 backup conf backup.tar backup-old backup/x conf/y conf.d`);
    const ws = workspace({ '${install_dir}/app': 'app' });
    ok(await act(ws, 'shell'), 'backup');
    rootSh(`rm -rf '${app}'`);
    ok(await act(ws, 'shell', { mode: 'restore' }), 'restore');
    assert.equal(rootSh(`cd '${app}' && stat -c '%n %Y' backup conf`), 'backup 1500000000\nconf 1500000000\n');
  });
});

describe('empty folders', () => {
  test('an entry holding only empty folders comes back onto an emptied server', async () => {
    const app = join(server.users.shell.scratch, 'app');
    rootSh(`rm -rf '${app}' && mkdir -p '${app}/a/b' '${app}/c' && chown -R ${server.users.shell.username}: '${app}'`);
    const ws = workspace({ '${install_dir}/app': 'app' });
    ok(await act(ws, 'shell'), 'backup');
    rootSh(`rm -rf '${app}'`);
    ok(await act(ws, 'shell', { mode: 'restore' }), 'restore');
    assert.equal(rootSh(`cd '${app}' && find . | LC_ALL=C sort`), '.\n./a\n./a/b\n./c\n');
  });
});

describe('SFTP: times before 1970', () => {
  test('are recorded as they are on the server, not wrapped to the 2100s', async () => {
    const app = join(server.users.sftp.data, 'app');
    rootSh(`rm -rf '${app}' && mkdir -p '${app}/d' && cd '${app}'
      printf a > y1944.txt && touch -d @-820540800 y1944.txt
      printf b > minus1.txt && touch -d @-1 minus1.txt
      printf c > d/f && touch -d @-100 d/f d
      chown -R ${server.users.sftp.username}: '${app}'`);
    const ws = workspace({ '${install_dir}/app': 'app' });
    ok(await act(ws, 'sftp'), 'backup');
    const files = manifest(ws).files;
    assert.equal(files['app/y1944.txt']?.mtime, -820540800);
    assert.equal(files['app/minus1.txt']?.mtime, -1);
    assert.equal(files['app/d']?.mtime, -100);
    assert.equal(files['app/d/f']?.mtime, -100);
  });
});

describe('SFTP: what a restore writes', () => {
  test('a link keeps its own time; a time before 1970 is written as 1970, not as one in the 2100s', async () => {
    const app = join(server.users.sftp.data, 'app');
    rootSh(`rm -rf '${app}' && mkdir -p '${app}' && cd '${app}'
      printf a > old.txt && touch -d @-820540800 old.txt
      printf b > b.txt && ln -s b.txt link && touch -h -d @1500000000 link b.txt
      chown -hR ${server.users.sftp.username}: '${app}'`);
    const ws = workspace({ '${install_dir}/app': 'app' });
    ok(await act(ws, 'sftp'), 'backup');
    rootSh(`rm -rf '${app}'`);
    ok(await act(ws, 'sftp', { mode: 'restore' }), 'restore');
    assert.equal(
      rootSh(`cd '${app}' && stat -c '%n %Y' link b.txt old.txt`),
      'link 1500000000\nb.txt 1500000000\nold.txt 0\n',
    );
  });
});

describe('first backups that store nothing whole', () => {
  test('a first backup cut mid-archive leaves a manifest the next backup and a restore accept', async () => {
    const app = join(server.users.shell.scratch, 'cut-first');
    // Many files of one size: whichever order find lists them in, a cut at half the bytes falls after
    // some of them arrived whole.
    rootSh(`rm -rf '${app}' && mkdir -p '${app}/sub' && cd '${app}'
      for i in 1 2 3 4 5 6 7 8; do head -c 400000 /dev/urandom > f$i.bin; done
      printf small > sub/s.txt
      chown -R ${server.users.shell.username}: '${app}'`);
    const recipe = { '${install_dir}/cut-first': 'app', '${install_dir}/cut-first/sub/s.txt': 'single.txt' };
    const measuring = workspace(recipe);
    const proxy0 = await startCutProxy({ port: server.port, cutAfter: Infinity });
    ok(await act(measuring, 'shell', {}, proxy0.port), 'an uncut run, measured');
    await proxy0.close();
    const ws = workspace(recipe);
    const proxy = await startCutProxy({ port: server.port, cutAfter: Math.floor(proxy0.bytes * 0.6) });
    let cut: ActionResult;
    try {
      cut = await act(ws, 'shell', { retries: '1' }, proxy.port);
    } finally {
      await proxy.close();
    }
    assert.equal(cut.code, 1, `the cut run fails\n${cut.stdout}`);
    const partial = manifest(ws);
    const stored = Object.keys(partial.files).filter((p) => p.endsWith('.bin'));
    assert.ok(stored.length > 0, `some files arrived before the cut: ${Object.keys(partial.files).join(', ')}`);
    assert.ok(partial.entries.app, 'the entry of the files stored is recorded');
    // A restore from the cut backup puts back what it holds.
    const elsewhere = join(server.users.shell.scratch, 'cut-first-restored');
    rootSh(`rm -rf '${elsewhere}'`);
    ok(await act(ws, 'shell', { mode: 'restore', 'install-dir': elsewhere }), 'restore');
    for (const p of stored)
      assert.ok(existsSync(join(elsewhere, 'cut-first', p.slice('app/'.length))), `restored: ${p}`);
    ok(await act(ws, 'shell'), 'the next backup');
    const whole = manifest(ws);
    assert.equal(Object.keys(whole.files).filter((p) => p.endsWith('.bin')).length, 8);
    assert.ok(whole.files['single.txt'], 'the other entry is stored too');
  });

  test('a first backup where every entry is missing reports each one missing', async () => {
    const ws = workspace({ '${install_dir}/nope-a': 'a', '${install_dir}/nope-b/file': 'b/file' });
    const r = ok(await act(ws, 'shell'), 'backup');
    assert.doesNotMatch(r.stdout + r.stderr, /ENOENT/);
    assert.equal(r.outputs.missing, '2', r.stdout);
    assert.ok(existsSync(join(ws, 'data', DOMAIN, '.gitattributes')), 'the data folder is set up');
  });
});
