import assert from 'node:assert/strict';
import { once } from 'node:events';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import ssh2, { type Attributes, type FileEntry, type SFTPWrapper } from 'ssh2';
import { SftpTransport } from '../../src/transfer/sftp/transport.js';
import { runAction } from '../helpers/run-action.js';
import { rootSh, type Sshd, sshInputs, startSshd } from '../helpers/sshd.js';
import { testTempDir } from '../helpers/temp.js';

// Issue #23: a listing of well-formed records is no less a flood than junk. Every record below passes
// every check of its shape (unique names, in the entry's folder); only the listing caps end it:
// through the bundle against a real sshd whose listing command a wrapper replaces, and over SFTP
// against a server that never says a folder is done.

const DOMAIN = 'example.com';
let sshd: Sshd;
let work: string;
let srv: string;
const scratch: string[] = [];

before(async () => {
  mkdirSync('/var/lib/rf-test-sshd', { recursive: true, mode: 0o755 });
  work = mkdtempSync('/var/lib/rf-test-sshd/flood-');
  chmodSync(work, 0o755);
  // The listing (alone, or riding along with the probe) is whatever list.sh prints; the rest is honest.
  writeFileSync(
    join(work, 'wrap.sh'),
    [
      '#!/bin/bash',
      'here=$(dirname "$0")',
      'c=$SSH_ORIGINAL_COMMAND',
      'if [[ "$c" == *-readable* && -f "$here/list.sh" ]]; then',
      '  if [[ "$c" == *--version* ]]; then find --version | head -n 1; tar --version | head -n 1; id -u; printf "\\nremote-files listing:\\n"; fi',
      '  bash "$here/list.sh"; exit 0',
      'fi',
      'exec bash -c "$c"',
      '',
    ].join('\n'),
    { mode: 0o755 },
  );
  sshd = await startSshd({
    hostKeyTypes: ['ed25519'],
    extraConfig: `Match User rf-shell\n  ForceCommand ${join(work, 'wrap.sh')}`,
  });
  srv = sshd.users.shell.scratch;
});

after(async () => {
  await sshd?.stop();
  rmSync(work, { recursive: true, force: true });
  for (const dir of scratch) rmSync(dir, { recursive: true, force: true });
});

function inputs(extra: Record<string, string> = {}): Record<string, string> {
  return sshInputs(
    sshd,
    { domain: DOMAIN, installDir: srv, pin: 'host-fingerprint' },
    {
      mode: 'backup',
      transport: 'tar',
      timeout: '60',
      retries: '0',
      store: 'none',
      compression: 'none',
      // One server for every workspace here: the server rule (rerun-safety.test.ts) is not tested here.
      'new-server': 'allow',
      ...extra,
    },
  );
}

// 512 MiB of unique file records in the entry's root folder (`f0`, `f1`, …; ~28 bytes each, so the
// 10,000,000 records cap comes at about 280 MB): each one a record the guard must let through.
const FLOOD = [
  `perl -e 'print join("\\0", qw(E R d 4096 1 755 0 0), "", "", "", ""), "\\0";`,
  `for (my $i = 0; ; $i++) { print join("\\0", qw(R f 1 1 644 0 0), "", "", "f$i", ""), "\\0" }'`,
  '| head -c 536870912',
].join(' ');

test('a listing of endless well-formed records is refused at the records cap, naming the entry: memory stays bounded (with and without sudo)', async () => {
  const site = join(srv, 'site');
  rootSh(`rm -rf '${site}' && mkdir -p '${site}' && printf x > '${site}/a' && chown -R rf-shell: '${site}'`);
  const ws = testTempDir('rf-flood-');
  scratch.push(ws);
  writeFileSync(
    join(ws, 'remote-files.yml'),
    'version: 1\nrecipes:\n  Site:\n    remote_files:\n      "${install_dir}/site": site\n',
  );
  writeFileSync(join(work, 'list.sh'), `${FLOOD}\n`);
  try {
    for (const sudo of ['false', 'true']) {
      const r = await runAction(inputs({ sudo }), { workspace: ws });
      assert.equal(r.code, 1, `exit ${r.code}\n${r.stdout}\n${r.stderr}`);
      const errors = r.stdout.split('\n').filter((l) => l.startsWith('::error::'));
      assert.equal(errors.length, 1, r.stdout);
      assert.match(
        errors[0]!,
        new RegExp(`listing grew past its cap at ${site}: more than 10,000,000 files and folders.*nothing was written`),
      );
      // The records are kept as they arrive up to the cap (~280 MB of them: measured peaks of 352–354
      // MiB), then dropped; before the caps the whole 512 MiB was kept and parsed, past 2 GB.
      const peak = Math.round(r.peakRss / 2 ** 20);
      assert.ok(r.peakRss < 480 * 2 ** 20, `peak ${peak} MiB with sudo: ${sudo}`);
    }
  } finally {
    rmSync(join(work, 'list.sh'), { force: true });
    rootSh(`rm -rf '${site}'`);
  }
});

/**
 * An SFTP server (ssh2's server side, on a real socket) whose folders answer in batches of `batch`
 * names: `/flood` never says it is done, `/honest` holds three folders of 1,500 files each. With
 * `long` a name and its `ls -l` line take 64 KiB; with `empty`, `/flood` answers every READDIR with
 * only "." and ".." (which ssh2 drops). Counts the READDIR requests and the folders closed.
 */
async function floodServer(opts: { batch: number; long?: boolean; empty?: boolean }) {
  const seen = { readdirs: 0, closed: [] as string[] };
  const attrs = (mode: number): Attributes => ({ mode, uid: 1000, gid: 1000, size: 1, atime: 1, mtime: 1 });
  const entry = (filename: string, mode: number): FileEntry => ({
    filename,
    longname: `-rw-r--r-- 1 u g 1 Jan 1 00:00 ${filename}`.padEnd(opts.long ? 64 * 1024 - filename.length : 0),
    attrs: attrs(mode),
  });
  /** What each folder holds, in full (`/flood` is made up as it is read). */
  const tree = new Map<string, FileEntry[]>([
    ['/honest', ['a', 'b', 'c'].map((d) => entry(d, 0o040755))],
    ...['a', 'b', 'c'].map((d): [string, FileEntry[]] => [
      `/honest/${d}`,
      Array.from({ length: 1500 }, (_x, i) => entry(`f${i}`, 0o100644)),
    ]),
  ]);
  const server = new ssh2.Server({ hostKeys: [ssh2.utils.generateKeyPairSync('ed25519').private] }, (client) => {
    client.on('authentication', (ctx) => ctx.accept());
    client.on('session', (accept) => {
      accept().on('sftp', (acceptSftp) => {
        const sftp = acceptSftp();
        const open = new Map<string, { path: string; at: number }>();
        sftp.on('LSTAT', (id) => sftp.attrs(id, attrs(0o040755)));
        sftp.on('OPENDIR', (id, path) => {
          const handle = Buffer.from(String(open.size));
          open.set(handle.toString(), { path, at: 0 });
          sftp.handle(id, handle);
        });
        sftp.on('READDIR', (id, handle) => {
          seen.readdirs++;
          const dir = open.get(handle.toString())!;
          const all = tree.get(dir.path);
          const names = all
            ? all.slice(dir.at, dir.at + opts.batch)
            : opts.empty
              ? [entry('.', 0o040755), entry('..', 0o040755)]
              : Array.from({ length: opts.batch }, (_x, i) => entry(`f${dir.at + i}`, 0o100644));
          dir.at += names.length;
          if (names.length === 0) sftp.status(id, ssh2.utils.sftp.STATUS_CODE.EOF);
          else sftp.name(id, names);
        });
        sftp.on('CLOSE', (id, handle) => {
          seen.closed.push(open.get(handle.toString())!.path);
          sftp.status(id, ssh2.utils.sftp.STATUS_CODE.OK);
        });
      });
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const client = new ssh2.Client();
  client.connect({ host: '127.0.0.1', port: (server.address() as AddressInfo).port, username: 'flood' });
  await once(client, 'ready');
  const raw = await new Promise<SFTPWrapper>((done, fail) => client.sftp((err, s) => (err ? fail(err) : done(s))));
  return {
    seen,
    transport: (caps: { records: number; bytes: number }) => new SftpTransport(raw, { concurrency: 4, caps }),
    close: () => {
      client.end();
      server.close();
    },
  };
}

test('sftp: a folder that never ends is refused at the records cap, read no further and closed; the count spans folders', async () => {
  const server = await floodServer({ batch: 1000 });
  try {
    const caps = { records: 50_000, bytes: 2 ** 30 };
    await assert.rejects(
      server.transport(caps).list(['/flood']),
      /listing grew past its cap at \/flood: more than 50,000 files and folders.*nothing was written/,
    );
    // The 51st batch went past the cap: no READDIR after it, and the folder was closed.
    await new Promise((done) => setTimeout(done, 200));
    assert.equal(server.seen.readdirs, 51);
    assert.deepEqual(server.seen.closed, ['/flood']);

    // 4,503 records in four folders, each within the cap: listed whole at 4,503, refused at 4,502.
    const [honest] = await server.transport({ records: 4503, bytes: 2 ** 30 }).list(['/honest']);
    assert.equal(honest!.status === 'ok' && honest!.files.length, 4504, 'the root and its 4,503 records');
    await assert.rejects(
      server.transport({ records: 4502, bytes: 2 ** 30 }).list(['/honest']),
      /listing grew past its cap at \/honest\/[abc]: more than 4,502 files and folders/,
    );
  } finally {
    server.close();
  }
});

test('sftp: a folder of endless long names is refused at the bytes cap', async () => {
  // Two names of 64 KiB a batch (ssh2 takes SFTP packets of up to 256 KiB).
  const server = await floodServer({ batch: 2, long: true });
  try {
    await assert.rejects(
      server.transport({ records: 10_000_000, bytes: 2 ** 22 }).list(['/flood']),
      /listing grew past its cap at \/flood: more than 4 MiB of listing/,
    );
    await new Promise((done) => setTimeout(done, 200));
    // 128 KiB a batch: the 33rd (past 4 MiB) is the last asked for.
    assert.equal(server.seen.readdirs, 33);
    assert.deepEqual(server.seen.closed, ['/flood']);
  } finally {
    server.close();
  }
});

test('sftp: a folder answered with nothing, batch after batch, never ending, is refused and closed', async () => {
  const server = await floodServer({ batch: 2, empty: true });
  try {
    await assert.rejects(
      server.transport({ records: 10_000_000, bytes: 2 ** 30 }).list(['/flood']),
      /listed \/flood as batch after batch of nothing, never ending it; refusing it, nothing was written/,
    );
    await new Promise((done) => setTimeout(done, 200));
    // An honest server's first batch may be only "." and "..": 16 such in a row are let through, not 17.
    assert.equal(server.seen.readdirs, 17);
    assert.deepEqual(server.seen.closed, ['/flood']);
  } finally {
    server.close();
  }
});
