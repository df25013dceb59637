import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import {
  chmodSync,
  chownSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  statSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { UserError } from '../../src/errors.js';
import { connect } from '../../src/ssh/connect.js';
import type { SshSession } from '../../src/ssh/session.js';
import { SftpTransport } from '../../src/transfer/sftp/transport.js';
import type { OutgoingItem, RemoteFile } from '../../src/transfer/types.js';
import { startSshd, type Sshd } from '../helpers/sshd.js';
import { testTempDir } from '../helpers/temp.js';

// The chrooted SFTP-only account sees its writable folder as /data; as root we build the fixtures
// straight in the local folder behind it (`local`).
let sshd: Sshd;
let session: SshSession;
let sftp: SftpTransport;
let local: string;
let uid: number;
let gid: number;
const T = 1_600_000_000;

before(async () => {
  sshd = await startSshd({ hostKeyTypes: ['ed25519'] });
  local = sshd.users.sftp.data;
  ({ uid, gid } = statSync(local));
  session = await connect({
    target: { host: sshd.host, port: sshd.port, username: sshd.users.sftp.username, privateKey: sshd.key.privateKey },
    hostKeys: { knownHosts: sshd.knownHostsLine(), fingerprints: '', insecure: false },
    timeoutMs: 10_000,
    retries: 0,
  });
  sftp = new SftpTransport(await session.sftp(), { concurrency: 8 });
});

after(async () => {
  session?.close();
  await sshd?.stop();
});

const sha = (data: Buffer | string) => createHash('sha256').update(data).digest('hex');

/** A file in the server's folder, with fixed mtime, mode and owner (the SFTP account unless said). */
function put(
  rel: string,
  content: Buffer | string,
  opts: { mode?: number; owner?: number; mtime?: number } = {},
): void {
  const path = join(local, rel);
  mkdirSync(join(path, '..'), { recursive: true });
  writeFileSync(path, content);
  chmodSync(path, opts.mode ?? 0o644);
  chownSync(path, opts.owner ?? uid, opts.owner ?? gid);
  utimesSync(path, opts.mtime ?? T, opts.mtime ?? T);
}

function folder(rel: string, mode: number, owner = uid): void {
  mkdirSync(join(local, rel), { recursive: true });
  chmodSync(join(local, rel), mode);
  chownSync(join(local, rel), owner, owner);
}

test('list: a tree with an empty folder, a link, unicode and spaces, a 0600 file, unreadable folders', async () => {
  put('tree/a.txt', 'alpha');
  folder('tree/empty', 0o755);
  symlinkSync('../a.txt', join(local, 'tree/empty-link'));
  put('tree/sub dir/ünï cödé ☃.txt', 'unicode');
  put('tree/private', 'mine', { mode: 0o600 });
  put('tree/locked/inner', 'hidden', { owner: 0 });
  folder('tree/locked', 0o700, 0);
  put('tree/no-search/inner', 'hidden', { owner: 0 });
  folder('tree/no-search', 0o744, 0);
  utimesSync(join(local, 'tree/empty'), T + 5, T + 5);

  const [tree, missing, underLocked, locked] = await sftp.list([
    '/data/tree',
    '/data/nope',
    '/data/tree/locked/inner',
    '/data/tree/locked',
  ]);
  assert.equal(tree!.status, 'ok');
  const files = (tree as { files: RemoteFile[] }).files;
  assert.deepEqual(
    files.map((f) => [f.rel, f.type, f.readable]),
    [
      ['', 'dir', true],
      ['a.txt', 'file', true],
      ['empty', 'dir', true],
      ['empty-link', 'symlink', true],
      ['locked', 'dir', false],
      ['no-search', 'dir', false],
      ['private', 'file', true],
      ['sub dir', 'dir', true],
      ['sub dir/ünï cödé ☃.txt', 'file', true],
    ],
  );
  const byRel = new Map(files.map((f) => [f.rel, f]));
  assert.deepEqual(pick(byRel.get('private')!), { size: 4, mtime: T, mode: 0o600, uid, gid });
  assert.equal(byRel.get('empty')!.mtime, T + 5);
  assert.equal(byRel.get('empty-link')!.target, '../a.txt');
  assert.equal(byRel.get('locked')!.uid, 0);
  // Names when the server resolves them inside its chroot, the id otherwise.
  assert.ok(['rf-sftp', String(uid)].includes(byRel.get('private')!.user), byRel.get('private')!.user);
  assert.deepEqual(missing, { status: 'missing' });
  assert.equal(underLocked!.status, 'denied');
  assert.deepEqual(locked, { status: 'denied', reason: 'folder not readable' });
});

function pick(f: RemoteFile) {
  return { size: f.size, mtime: f.mtime, mode: f.mode, uid: f.uid, gid: f.gid };
}

test('fetch: a 20 MB file and 500 small ones arrive intact; an unreadable one is reported, not sent', async () => {
  const wanted = new Map<string, string>();
  const big = randomBytes(20 * 1024 * 1024);
  put('bulk/big', big, { mtime: T + 1 });
  wanted.set('/data/bulk/big', sha(big));
  for (let i = 0; i < 500; i++) {
    const data = randomBytes(i * 37);
    put(`bulk/small/f${i}`, data);
    wanted.set(`/data/bulk/small/f${i}`, sha(data));
  }
  put('bulk/secret', 'root only', { mode: 0o600, owner: 0 });

  const got = new Map<string, string>();
  const started = Date.now();
  const r = await sftp.fetch([...wanted.keys(), '/data/bulk/secret'], async (file) => {
    const hash = createHash('sha256');
    for await (const chunk of file.stream) hash.update(chunk as Buffer);
    got.set(file.remote, hash.digest('hex'));
    if (file.remote === '/data/bulk/big') assert.deepEqual([file.size, file.mtime], [big.length, T + 1]);
  });
  const elapsed = Date.now() - started;
  assert.deepEqual(r.notSent, ['/data/bulk/secret']);
  assert.equal(r.message, '/data/bulk/secret: Permission denied');
  assert.deepEqual(got, wanted);
  assert.ok(elapsed < 15_000, `fetch took ${elapsed} ms`);

  const sums = await sftp.checksums(['/data/bulk/big', '/data/bulk/small/f3', '/data/bulk/secret']);
  assert.deepEqual(
    sums,
    new Map([
      ['/data/bulk/big', sha(big)],
      ['/data/bulk/small/f3', wanted.get('/data/bulk/small/f3')],
    ]),
  );
});

test('upload: content, modes and mtimes land; a replaced file is kept in previousDir; no temp file is left', async () => {
  const src = testTempDir('rf-sftp-up-');
  try {
    writeFileSync(join(src, 'app.ini'), 'new settings');
    writeFileSync(join(src, 'run.sh'), '#!/bin/sh\n');
    writeFileSync(join(src, 'big'), randomBytes(3 * 1024 * 1024 + 17));
    writeFileSync(join(src, 'root.txt'), 'new root');
    // Already on the server: two files about to be replaced, one of them root's (a hard link to it is
    // refused under protected_hardlinks, so it is kept by copying).
    folder('site', 0o755);
    folder('site/conf', 0o755);
    put('site/conf/app.ini', 'old settings', { mtime: T - 100 });
    put('site/root.txt', 'old root', { owner: 0, mtime: T - 200 });
    chownSync(join(local, 'site'), uid, gid);

    const mine = { uid, gid, user: String(uid), group: String(gid), size: 0 };
    const items: OutgoingItem[] = [
      { ...mine, rel: '', type: 'dir', mtime: T + 10, mode: 0o751 },
      { ...mine, rel: 'conf', type: 'dir', mtime: T + 11, mode: 0o750 },
      { ...mine, rel: 'conf/app.ini', type: 'file', mtime: T + 12, mode: 0o640, source: join(src, 'app.ini') },
      { ...mine, rel: 'current', type: 'symlink', mtime: T, mode: 0o777, target: 'conf/app.ini' },
      { ...mine, rel: 'deep', type: 'dir', mtime: T + 13, mode: 0o700 },
      { ...mine, rel: 'deep/er', type: 'dir', mtime: T + 14, mode: 0o500 },
      { ...mine, rel: 'deep/er/big', type: 'file', mtime: T + 15, mode: 0o600, source: join(src, 'big') },
      { ...mine, rel: 'root.txt', type: 'file', mtime: T + 16, mode: 0o644, source: join(src, 'root.txt') },
      {
        ...mine,
        uid: 0,
        user: 'root',
        rel: 'run.sh',
        type: 'file',
        mtime: T + 17,
        mode: 0o4755,
        source: join(src, 'run.sh'),
      },
    ];
    const r = await sftp.upload({
      root: '/data/site',
      rootType: 'dir',
      items,
      keepPrevious: ['conf/app.ini', 'root.txt'],
      previousDir: '~/previous/run1',
      chown: true,
    });
    assert.deepEqual(r.ownerNotSet, ['run.sh'], 'only the chown to root is refused');

    for (const item of items) {
      const path = join(local, 'site', item.rel);
      const st = lstatSync(path);
      if (item.type === 'symlink') {
        assert.equal(readlinkSync(path), item.target);
        continue;
      }
      assert.equal((st.mode & 0o7777).toString(8), item.mode.toString(8), `mode of "${item.rel}"`);
      assert.equal(Math.floor(st.mtimeMs / 1000), item.mtime, `mtime of "${item.rel}"`);
      if (item.type === 'file')
        assert.equal(sha(readFileSync(path)), sha(readFileSync(item.source!)), `content of ${item.rel}`);
    }
    const kept = join(local, 'previous/run1/data/site');
    assert.equal(readFileSync(join(kept, 'conf/app.ini'), 'utf8'), 'old settings');
    assert.equal(readFileSync(join(kept, 'root.txt'), 'utf8'), 'old root');
    assert.equal(Math.floor(statSync(join(kept, 'root.txt')).mtimeMs / 1000), T - 200, 'a copy keeps the mtime');
    assert.deepEqual(temps(join(local, 'site')), []);

    // A file entry: the root itself is the one file, its folder created as needed.
    const one = await sftp.upload({
      root: '/data/single/dir/app.ini',
      rootType: 'file',
      items: [{ ...items[2]!, rel: '' }],
      keepPrevious: [],
      previousDir: '~/previous/run1',
      chown: false,
    });
    assert.deepEqual(one.ownerNotSet, []);
    assert.equal(readFileSync(join(local, 'single/dir/app.ini'), 'utf8'), 'new settings');
  } finally {
    rmSync(src, { recursive: true, force: true });
  }
});

test('upload: a failed file leaves no temp file behind and fails the upload', async () => {
  const items: OutgoingItem[] = [
    { rel: '', type: 'dir', size: 0, mtime: T, mode: 0o755, uid, gid, user: '', group: '' },
    {
      rel: 'gone',
      type: 'file',
      size: 1,
      mtime: T,
      mode: 0o644,
      uid,
      gid,
      user: '',
      group: '',
      source: '/nonexistent/rf-source',
    },
  ];
  await assert.rejects(
    sftp.upload({ root: '/data/failing', rootType: 'dir', items, keepPrevious: [], previousDir: '~/p', chown: false }),
    /ENOENT/,
  );
  assert.deepEqual(temps(join(local, 'failing')), []);
});

function temps(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((p) =>
    p.split('/').pop()!.startsWith('.remote-files-'),
  );
}

test('run: an SFTP-only account cannot run commands', async () => {
  assert.equal(sftp.canRunCommands, false);
  await assert.rejects(sftp.run(), (err: Error) => err instanceof UserError && /SFTP/.test(err.message));
});

// Last: it kills every session of this server.
test('fetch: a connection dropped mid-file rejects rather than reporting files as not sent', async () => {
  let read = 0;
  const fetching = sftp.fetch(['/data/bulk/big', '/data/bulk/small/f1'], async (file) => {
    for await (const chunk of file.stream) {
      read += (chunk as Buffer).length;
      if (read > 1 << 20 && read - (chunk as Buffer).length <= 1 << 20) sshd.killSessions();
    }
  });
  await assert.rejects(fetching);
  assert.ok(read < 20 * 1024 * 1024, `read ${read} bytes`);
  await assert.rejects(sftp.list(['/data']), 'later calls fail at once instead of hanging');
});
