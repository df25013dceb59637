import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { readSettings } from '../../src/inputs.js';
import { verifyLogLines, verifyMarkdown, verifyOutputs } from '../../src/report/verify-report.js';
import { connect } from '../../src/ssh/connect.js';
import type { SshSession } from '../../src/ssh/session.js';
import { backup } from '../../src/transfer/backup.js';
import { chooseTransport } from '../../src/transfer/choose.js';
import type { Entry } from '../../src/transfer/entries.js';
import { LocalTree } from '../../src/transfer/local/tree.js';
import { readManifest } from '../../src/transfer/manifest/manifest.js';
import type { Transport } from '../../src/transfer/types.js';
import { judgeVerify, verify, type VerifyResult } from '../../src/transfer/verify.js';
import { rootSh, startSshd, type Sshd } from '../helpers/sshd.js';
import { testTempDir } from '../helpers/temp.js';

// Verify against a real OpenSSH server: a real backup() makes the stored copy in a temp folder, the
// test changes the server (this machine, as root or as the test account), and verify() must see
// exactly that change — and leave the server and the stored copy exactly as they were.

const DOMAIN = 'example.com';
let server: Sshd;
let srv: string; // the shell account's scratch folder: the "install dir"
const sessions: SshSession[] = [];

before(async () => {
  server = await startSshd({ hostKeyTypes: ['ed25519'] });
  srv = server.users.shell.scratch;
});
after(async () => {
  for (const s of sessions) s.close();
  await server?.stop();
});

/** A real connection and the transport chooseTransport picks for the account (tar for rf-shell, sftp for rf-sftp). */
async function open(username: string, transport = 'auto'): Promise<Transport> {
  const inputs: Record<string, string> = {
    mode: 'verify',
    domain: DOMAIN,
    'install-dir': srv,
    host: server.host,
    port: String(server.port),
    username,
    key: server.key.privateKey,
    transport,
  };
  const settings = readSettings((name) => inputs[name] ?? '', tmpdir());
  const session = await connect({
    target: { host: server.host, port: server.port, username, privateKey: server.key.privateKey },
    hostKeys: { knownHosts: server.knownHostsLine(), fingerprints: '', insecure: false },
    timeoutMs: 20_000,
    retries: 0,
  });
  sessions.push(session);
  return (await chooseTransport(session, settings)).transport;
}

/** As the shell account, so files belong to it as they would on a real server. */
function asShell(script: string): void {
  rootSh(`cd / && su -s /bin/sh rf-shell -c 'sh -s'`, `set -e\n${script}`);
}

/** A fresh stored copy of `entries`, made by the real backup. */
async function storedCopy(transport: Transport, entries: Entry[]): Promise<string> {
  const dir = testTempDir('rf-verify-');
  const r = await backup(entries, transport, new LocalTree(dir), readManifest(dir, DOMAIN), {
    checksum: false,
    delete: true,
    dryRun: false,
  });
  assert.ok(
    r.outcomes.every((o) => o.status !== 'denied' && o.denied.length === 0),
    `backup could read everything: ${JSON.stringify(r.outcomes)}`,
  );
  return dir;
}

/**
 * Everything about a tree that any write would change: type, size, mode, owner, mtime, ctime (which
 * moves with every chmod, chown, utime or write), link target and content. atime is left out: reading
 * a file to hash it is allowed to touch it.
 */
function snapshot(root: string): string[] {
  const out: string[] = [];
  const visit = (p: string) => {
    const st = lstatSync(p);
    const what = st.isSymbolicLink()
      ? `link ${readlinkSync(p)}`
      : st.isFile()
        ? `file ${createHash('sha256').update(readFileSync(p)).digest('hex')}`
        : st.isDirectory()
          ? 'dir'
          : 'other';
    out.push(`${p} ${what} ${st.size} ${st.mode} ${st.uid}:${st.gid} ${st.mtimeMs} ${st.ctimeMs}`);
    if (st.isDirectory()) for (const name of readdirSync(p).sort()) visit(join(p, name));
  };
  if (existsSync(root)) visit(root);
  return out;
}

/** verify(), asserting that neither the server folders nor the stored copy changed in any way. */
async function check(
  entries: Entry[],
  transport: Transport,
  stored: string,
  checksum: boolean,
  serverRoots: string[],
): Promise<VerifyResult> {
  const before = [...serverRoots.flatMap(snapshot), ...snapshot(stored)];
  assert.ok(before.length > 1, 'the snapshot sees the trees');
  const r = await verify(entries, transport, readManifest(stored, DOMAIN), { checksum });
  assert.deepEqual(
    [...serverRoots.flatMap(snapshot), ...snapshot(stored)],
    before,
    'verify changed nothing on the server or in the stored copy',
  );
  return r;
}

const entry = (remote: string, local: string, skip: string[] = []): Entry => ({ recipe: 'App', remote, local, skip });

describe('verify over tar (shell account)', () => {
  let tar: Transport;
  before(async () => {
    tar = await open('rf-shell');
    assert.equal(tar.name, 'tar');
  });

  /** A fresh server folder `name` with a small tree, its stored copy, and the entries naming it. */
  async function fixture(name: string, skip: string[] = ['tmp/', '*.lock']) {
    const dir = join(srv, name);
    asShell(`
      mkdir -p '${dir}/sub/deeper' '${dir}/tmp' '${dir}/empty dir'
      printf alpha > '${dir}/a.txt'
      printf beta > '${dir}/sub/b.txt'
      printf gamma > '${dir}/sub/deeper/c.txt'
      printf junk > '${dir}/tmp/junk'
      printf lock > '${dir}/x.lock'
      ln -s a.txt '${dir}/link'
      printf db > '${dir}.db'
      touch -d '2021-05-06 07:08:09' '${dir}/a.txt' '${dir}/sub/b.txt' '${dir}.db'
    `);
    const entries = [entry(dir, `${name}/tree`, skip), entry(`${dir}.db`, `${name}/db`)];
    const stored = await storedCopy(tar, entries);
    return { dir, entries, stored, roots: [dir, `${dir}.db`] };
  }

  test('right after a backup: no drift, with and without checksums; excluded paths are ignored', async () => {
    const f = await fixture('same');
    assert.ok(!existsSync(join(f.stored, 'same/tree/tmp')), 'the backup skipped tmp/');
    for (const checksum of [false, true]) {
      const r = await check(f.entries, tar, f.stored, checksum, f.roots);
      assert.equal(r.drift, false, JSON.stringify(r));
      assert.deepEqual(
        r.entries.map((e) => e.status),
        ['same', 'same'],
      );
      assert.deepEqual(r.counts, { added: 0, removed: 0, changed: 0 });
    }
    // New and changed files under excluded names are none of verify's business, as they are none of backup's.
    asShell(
      `printf more > '${f.dir}/tmp/junk2'; printf changed > '${f.dir}/x.lock'; printf new > '${f.dir}/sub/y.lock'`,
    );
    const r = await check(f.entries, tar, f.stored, true, f.roots);
    assert.equal(r.drift, false, JSON.stringify(r));
  });

  test('a stored path that a newer exclude skips is not "removed"', async () => {
    const f = await fixture('newskip');
    asShell(`rm -r '${f.dir}/sub'`);
    const all = await check(f.entries, tar, f.stored, false, f.roots);
    assert.deepEqual(
      all.entries[0]!.removed,
      [`${f.dir}/sub/b.txt`, `${f.dir}/sub/deeper/c.txt`],
      'without the exclude the deletion is drift',
    );
    const skipping = [{ ...f.entries[0]!, skip: [...f.entries[0]!.skip, 'sub/'] }, f.entries[1]!];
    const r = await check(skipping, tar, f.stored, false, f.roots);
    assert.equal(r.drift, false, JSON.stringify(r));
  });

  test('added: new files, a new folder with files (listed by its files), a new empty folder', async () => {
    const f = await fixture('added');
    asShell(
      `printf new > '${f.dir}/new.txt'; mkdir -p '${f.dir}/newdir/inner' '${f.dir}/sub/new empty'; printf n > '${f.dir}/newdir/inner/n.txt'; ln -s nowhere '${f.dir}/newlink'`,
    );
    const r = await check(f.entries, tar, f.stored, false, f.roots);
    assert.equal(r.drift, true);
    assert.deepEqual(
      r.entries.map((e) => e.status),
      ['drift', 'same'],
    );
    assert.deepEqual(r.entries[0]!.added, [
      `${f.dir}/new.txt`,
      `${f.dir}/newdir/inner/n.txt`,
      `${f.dir}/newlink`,
      `${f.dir}/sub/new empty`,
    ]);
    assert.deepEqual([r.entries[0]!.removed, r.entries[0]!.changed], [[], []]);
    assert.deepEqual(r.counts, { added: 4, removed: 0, changed: 0 });
  });

  test('removed: a file, a folder with files, an empty folder, a single-file entry turned folder', async () => {
    const f = await fixture('removed');
    asShell(
      `rm '${f.dir}/a.txt'; rm -r '${f.dir}/sub/deeper' '${f.dir}/empty dir'; rm '${f.dir}.db'; mkdir '${f.dir}.db'`,
    );
    const r = await check(f.entries, tar, f.stored, false, f.roots);
    assert.deepEqual(r.entries[0]!.removed, [`${f.dir}/a.txt`, `${f.dir}/empty dir`, `${f.dir}/sub/deeper/c.txt`]);
    assert.deepEqual(r.entries[0]!.added, []);
    assert.deepEqual(r.entries[1]!.changed, [`${f.dir}.db`], 'a file that became a folder is a change of type');
    assert.deepEqual(r.counts, { added: 0, removed: 3, changed: 1 });
  });

  test('changed: by size, by mtime alone, by link target, by type', async () => {
    const f = await fixture('changed');
    asShell(`
      printf 'beta, longer' > '${f.dir}/sub/b.txt'; touch -d '2021-05-06 07:08:09' '${f.dir}/sub/b.txt'
      touch -d '2022-01-01 00:00:00' '${f.dir}/a.txt'
      ln -sfn sub/b.txt '${f.dir}/link'
      rm -r '${f.dir}/sub/deeper'; printf was-a-folder > '${f.dir}/sub/deeper'
    `);
    const r = await check(f.entries, tar, f.stored, false, f.roots);
    const e = r.entries[0]!;
    assert.deepEqual(e.changed, [`${f.dir}/a.txt`, `${f.dir}/link`, `${f.dir}/sub/b.txt`, `${f.dir}/sub/deeper`]);
    assert.deepEqual(e.removed, [`${f.dir}/sub/deeper/c.txt`], 'what was below the folder is gone');
    assert.equal(e.status, 'drift');
    assert.equal(r.entries[1]!.status, 'same');
  });

  test('a change of content alone (same size, same mtime) takes checksum: true', async () => {
    const f = await fixture('content');
    asShell(
      `printf ALPHA > '${f.dir}/a.new'; touch -r '${f.dir}/a.txt' '${f.dir}/a.new'; mv '${f.dir}/a.new' '${f.dir}/a.txt'`,
    );
    const quick = await check(f.entries, tar, f.stored, false, f.roots);
    assert.equal(quick.drift, false, 'size and mtime cannot see it');
    const sure = await check(f.entries, tar, f.stored, true, f.roots);
    assert.equal(sure.drift, true);
    assert.deepEqual(sure.entries[0]!.changed, [`${f.dir}/a.txt`]);
    assert.deepEqual(sure.counts, { added: 0, removed: 0, changed: 1 });
  });

  test('a missing entry is "missing", not the removal of all it stored; if-missing decides', async () => {
    const f = await fixture('missing');
    rootSh(`rm -r '${f.dir}'`);
    const r = await check(f.entries, tar, f.stored, true, [`${f.dir}.db`]);
    assert.deepEqual(
      r.entries.map((e) => e.status),
      ['missing', 'same'],
    );
    assert.deepEqual(r.entries[0]!.removed, []);
    assert.equal(r.drift, false);
    const opts = { allowDenied: false, failOnDrift: true, username: 'rf-shell' };
    assert.match(
      judgeVerify(r, { ...opts, ifMissing: 'error' }).problems.join('\n'),
      /^App: \S+\/missing is missing on the server$/,
    );
    assert.deepEqual(judgeVerify(r, { ...opts, ifMissing: 'warn' }).problems, []);
    assert.equal(judgeVerify(r, { ...opts, ifMissing: 'warn' }).warnings.length, 1);
  });

  test('denied: an unreadable entry, and an unreadable folder inside one, are reported, never drift', async () => {
    const f = await fixture('denied');
    rootSh(
      `chown -R rf-other: '${f.dir}/sub' && chmod 700 '${f.dir}/sub' && chown rf-other: '${f.dir}.db' && chmod 600 '${f.dir}.db'`,
    );
    const r = await check(f.entries, tar, f.stored, true, f.roots);
    assert.deepEqual(
      r.entries.map((e) => e.status),
      ['denied', 'denied'],
    );
    assert.deepEqual(r.entries[0]!.denied, [`${f.dir}/sub`]);
    assert.deepEqual(
      r.entries[0]!.removed,
      [],
      'what the stored copy has below the unreadable folder is not "removed"',
    );
    assert.deepEqual(r.entries[1]!.denied, [`${f.dir}.db`]);
    assert.equal(r.drift, false);
    const judged = judgeVerify(r, { ifMissing: 'warn', allowDenied: false, failOnDrift: true, username: 'rf-shell' });
    assert.equal(judged.problems.length, 2);
    assert.match(judged.problems[0]!, /not readable by rf-shell/);
    assert.deepEqual(
      judgeVerify(r, { ifMissing: 'warn', allowDenied: true, failOnDrift: true, username: 'rf-shell' }).problems,
      [],
    );
    // A real change next to the unreadable folder is still drift.
    asShell(`printf new > '${f.dir}/new.txt'`);
    const drifted = await check(f.entries, tar, f.stored, false, f.roots);
    assert.equal(drifted.entries[0]!.status, 'drift');
    assert.deepEqual(drifted.entries[0]!.added, [`${f.dir}/new.txt`]);
  });

  test('fail-on-drift turns drift into a problem; outputs are JSON lists of server paths', async () => {
    const f = await fixture('outputs');
    asShell(`printf new > '${f.dir}/new.txt'; rm '${f.dir}/a.txt'; printf longer > '${f.dir}/sub/b.txt'`);
    const r = await check(f.entries, tar, f.stored, false, f.roots);
    const base = { ifMissing: 'warn' as const, allowDenied: false, username: 'rf-shell' };
    assert.match(judgeVerify(r, { ...base, failOnDrift: true }).problems.join(), /1 added, 1 removed, 1 changed/);
    assert.deepEqual(judgeVerify(r, { ...base, failOnDrift: false }).problems, []);
    const out = verifyOutputs(r);
    assert.equal(out.drift, 'true');
    assert.deepEqual(JSON.parse(out.added), [`${f.dir}/new.txt`]);
    assert.deepEqual(JSON.parse(out.removed), [`${f.dir}/a.txt`]);
    assert.deepEqual(JSON.parse(out['changed-files']), [`${f.dir}/sub/b.txt`]);
  });

  test('server-made names cannot inject workflow commands or break the summary Markdown', async () => {
    const f = await fixture('hostile');
    asShell(`printf x > '${f.dir}/::error::pwned'; printf y > '${f.dir}/line
::warning::evil'; printf z > '${f.dir}/pipe | cell'`);
    const r = await check(f.entries, tar, f.stored, true, f.roots);
    assert.equal(r.entries[0]!.added.length, 3);
    assert.ok(r.entries[0]!.added.includes(`${f.dir}/line\n::warning::evil`), 'the name is reported as it is');
    const lines = verifyLogLines(r);
    assert.ok(
      lines.some((l) => l.includes('::error::pwned')),
      'the hostile names are shown',
    );
    for (const l of lines) {
      assert.ok(!l.startsWith('::') && !l.includes('\n'), `unsafe log line: ${JSON.stringify(l)}`);
    }
    const summary = verifyMarkdown('verify', r);
    assert.ok(!/^::/m.test(summary), 'no summary line starts a workflow command');
    const row = summary.split('\n').find((l) => l.includes('pipe'))!;
    assert.match(row, /pipe \\\| cell/, 'a "|" in a name is escaped');
  });

  test('the log and summary list the first N paths of each kind, and say how many more', async () => {
    const f = await fixture('many');
    asShell(`for i in $(seq 1 25); do printf $i > '${f.dir}/n'$i; done`);
    const r = await check(f.entries, tar, f.stored, false, f.roots);
    const lines = verifyLogLines(r, 20);
    assert.equal(lines.filter((l) => l.startsWith('  + ')).length, 21, '20 paths and one "more" line');
    assert.ok(lines.includes('  + …and 5 more'));
    assert.match(lines[0]!, /^drift +\S+many -> many\/tree: 25 added$/);
    assert.match(lines.at(-1)!, /^Drift: 25 added, 0 removed, 0 changed; 1 of 2 entries the same/);
    const summary = verifyMarkdown('verify', r, 10);
    assert.equal(summary.split('\n').filter((l) => l.startsWith('- `')).length, 10);
    assert.match(summary, /…and 15 more/);
  });
});

describe('verify over SFTP (chrooted SFTP-only account)', () => {
  test('no drift, a change by size, and a change of content alone with checksum: true', async () => {
    const sftp = await open('rf-sftp');
    assert.equal(sftp.name, 'sftp');
    const data = server.users.sftp.data;
    rootSh(
      `mkdir -p '${data}/site/sub' && printf cfg > '${data}/site/sub/c.conf' && printf keep > '${data}/site/k.txt' && ln -s sub/c.conf '${data}/site/link' && chown -R rf-sftp: '${data}/site'`,
    );
    const entries = [entry('/data/site', 'site')];
    const stored = await storedCopy(sftp, entries);
    const roots = [join(data, 'site')];
    const same = await check(entries, sftp, stored, true, roots);
    assert.equal(same.drift, false, JSON.stringify(same));
    rootSh(
      `printf CFG > '${data}/site/sub/c.new' && touch -r '${data}/site/sub/c.conf' '${data}/site/sub/c.new' && mv '${data}/site/sub/c.new' '${data}/site/sub/c.conf' && printf 'keep more' > '${data}/site/k.txt'`,
    );
    const quick = await check(entries, sftp, stored, false, roots);
    assert.deepEqual(quick.entries[0]!.changed, ['/data/site/k.txt']);
    const sure = await check(entries, sftp, stored, true, roots);
    assert.deepEqual(sure.entries[0]!.changed, ['/data/site/k.txt', '/data/site/sub/c.conf']);
  });
});
