import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, beforeEach, describe, test } from 'node:test';
import { generateIdentity, identityToRecipient } from 'age-encryption';
import { ok } from '../helpers/outcome.js';
import { testTempDir } from '../helpers/temp.js';
import { runAction, type ActionResult } from '../helpers/run-action.js';
import { rootSh, sshInputs, startSshdWithWrapper, type Sshd } from '../helpers/sshd.js';

// Delta transfer (issue #25), end to end through the committed bundle against a real sshd: a changed
// database file, an appended log and a shifted dump on an honest server; then a server that changes or
// truncates the file at each step, lies in its digests, or has none of the digest tools. Every case ends
// with the stored file byte for byte the server's (or the entry reported), and the honest cases prove,
// from the log's "bytes fetched", that only the changed blocks moved. Never timed.

// A domain of its own: the login's server marker (issue #21) is per domain, and other suites restore example.com.
const DOMAIN = 'delta.example.com';
const PAGE = 4096;
let sshd: Sshd;
/** The wrapper's folder: `mode` says how the server misbehaves on the delta commands, `target` on which file. */
let work: string;
let srv: string;

before(async () => {
  // Every command of the shell account goes through this script: honest unless `mode` says otherwise,
  // and then only for the two delta commands (told apart by the marker in their first line).
  ({ sshd, work } = await startSshdWithWrapper('delta', {
    script: `#!/bin/bash
here=$(dirname "$0")
mode=$(cat "$here/mode" 2>/dev/null)
target=$(cat "$here/target" 2>/dev/null)
# A server with no perl at all (every command): the restore's tar then reads its usual 64 KiB pipe.
if [ "$mode" = noperl-all ]; then PATH=$here/noperl exec /bin/bash -c "$SSH_ORIGINAL_COMMAND"; fi
case "$SSH_ORIGINAL_COMMAND" in
  *"remote-files delta digests"*)
    echo "digests $mode" >> "$here/seen"
    case $mode in
      notools|noperl|coreutils) PATH=$here/$mode exec /bin/bash -c "$SSH_ORIGINAL_COMMAND";;
      truncate-listed) truncate -s 1000000 "$target";;
      change-during) PATH=$here/shadow:$PATH; export PATH;;
      lie-*) /bin/bash -c "$SSH_ORIGINAL_COMMAND" | perl "$here/lie.pl" "$mode" "$here"; exit 0;;
    esac;;
  *"remote-files delta blocks"*)
    echo "blocks $mode" >> "$here/seen"
    case $mode in
      noperl|coreutils) PATH=$here/$mode exec /bin/bash -c "$SSH_ORIGINAL_COMMAND";;
      stall-blocks) sleep 60;;
      truncate-blocks) truncate -s 3000000 "$target";;
      change-blocks) printf 'CHANGED!' | dd of="$target" bs=1 seek=$((500 * 4096 + 100)) conv=notrunc 2>/dev/null;;
    esac;;
esac
exec /bin/bash -c "$SSH_ORIGINAL_COMMAND"
`,
    prepare: (work) => {
      // The digests, rewritten: the same blocks as the stored copy (lie.bin), a block count that does not
      // fit the size, a whole-file SHA-256 of zeros, an appended tail with five bytes more, or one said to be
      // in a codec that was not asked for.
      writeFileSync(
        join(work, 'lie.pl'),
        `my ($mode, $here) = @ARGV; binmode STDIN; binmode STDOUT;
my $t = <STDIN>; print $t;
while (defined(my $l = <STDIN>)) {
  if ($l =~ /^A /) {
    $l =~ s/ none$/ zstd/ if $mode eq 'lie-codec';
    print $l;
    while (defined(my $c = <STDIN>)) {
      if ($c =~ /^D (\\d+)$/) { read(STDIN, my $b, $1); print $c, $b; next }
      print "D 5\\nXXXXX" if $mode eq 'lie-tail';
      print $c;
      last;
    }
    next;
  }
  if ($l !~ /^F (\\d+) (-?\\d+) (\\d+) (\\d+)$/) { print $l; next }
  my ($size, $mtime, $bs, $n) = ($1, $2, $3, $4);
  read(STDIN, my $d, $n * 8);
  if ($mode eq 'lie-header') { print "F $size $mtime $bs ", $n + 1, "\\n", $d; next }
  if ($mode eq 'lie-same') { open(my $f, '<', "$here/lie.bin"); binmode $f; local $/; my $s = <$f>; $d = substr($s . ("\\0" x ($n * 8)), 0, $n * 8) }
  print $l, $d;
  my $s = <STDIN>;
  $s =~ s/^S [0-9a-f]{64}/'S ' . ('0' x 64)/e if $mode eq 'lie-sha';
  print $s;
}
`,
      );
      // sha256sum and openssl that first change the file (same size, another mtime): a change while its
      // blocks are read (perl runs one of them beside its block loop).
      mkdirSync(join(work, 'shadow'));
      for (const tool of ['sha256sum', 'openssl'])
        writeFileSync(
          join(work, 'shadow', tool),
          `#!/bin/sh
t=$(cat "${work}/target")
printf 'CHANGED WHILE READ' | dd of="$t" bs=1 seek=5000 conv=notrunc 2>/dev/null
touch -d '2001-02-03 04:05:06' "$t"
exec /usr/bin/${tool} "$@"
`,
          { mode: 0o755 },
        );
      // PATHs without perl; without perl and python3 (coreutils left); without any digest tool.
      for (const [name, without] of [
        ['noperl', 'perl|perl5*'],
        ['coreutils', 'perl|perl5*|python3*'],
        ['notools', 'perl|perl5*|python3*|sha1sum|split'],
      ]) {
        mkdirSync(join(work, name!));
        rootSh(
          `cd /usr/bin && for f in *; do case "$f" in ${without}) ;; *) ln -s "/usr/bin/$f" '${work}/${name}/'"$f";; esac; done`,
        );
      }
      rootSh(`chmod -R a+rX '${work}'`);
    },
  }));
  srv = sshd.users.shell.scratch;
});

after(async () => {
  await sshd?.stop();
});

function misbehave(mode: string, target = ''): void {
  writeFileSync(join(work, 'mode'), mode);
  writeFileSync(join(work, 'target'), target);
  // The wrapper runs as rf-shell and notes each delta command here.
  writeFileSync(join(work, 'seen'), '');
  chmodSync(join(work, 'seen'), 0o666);
}

function seen(): string {
  try {
    return readFileSync(join(work, 'seen'), 'utf8');
  } catch {
    return '';
  }
}

/** A server folder and a workspace whose recipe salvages it as `name`. */
function setup(name: string): { dir: string; ws: string; stored: (file: string) => string } {
  const dir = `${srv}/${name}`;
  rootSh(`rm -rf '${dir}' && mkdir -p '${dir}' && chown rf-shell: '${dir}'`);
  const ws = testTempDir('rf-delta-');
  writeFileSync(
    join(ws, 'remote-files.yml'),
    `version: 1\nrecipes:\n  App:\n    remote_files:\n      "\${install_dir}/${name}": ${name}\n`,
  );
  return { dir, ws, stored: (file) => join(ws, 'data', DOMAIN, name, file) };
}

/** Writes a server file as its owner would, with an mtime the quick check sees as changed. */
function serverWrite(path: string, content: Buffer, mtime: string): void {
  writeFileSync(path, content);
  rootSh(`chown rf-shell: '${path}' && touch -d '${mtime}' '${path}'`);
}

function inputs(extra: Record<string, string> = {}): Record<string, string> {
  return sshInputs(
    sshd,
    { domain: DOMAIN, installDir: srv, pin: 'host-fingerprint' },
    { mode: 'backup', transport: 'tar', timeout: '30', retries: '0', store: 'none', compression: 'none', ...extra },
  );
}

async function backup(ws: string, extra: Record<string, string> = {}): Promise<ActionResult> {
  return ok(await runAction(inputs(extra), { workspace: ws }));
}

function sha(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

/** The stored copy is the server's, byte for byte. */
function same(stored: string, server: string, context: string): void {
  assert.equal(sha(stored), sha(server), `${context}: the stored file differs from the server's`);
}

/** The "delta: …" lines of a run. */
function deltaLines(r: ActionResult): string[] {
  return r.stdout.split('\n').filter((l) => l.startsWith('delta'));
}

/** From the delta line of `file`: bytes fetched and the file's size; fails if the file did not move by delta. */
function fetched(r: ActionResult, file: string): { moved: number; size: number } {
  const line = deltaLines(r).find((l) => l.includes(file) && /bytes fetched/.test(l));
  assert.ok(line, `no delta line for ${file}; the log:\n${r.stdout}`);
  const m = / (\d+) of (\d+) bytes fetched/.exec(line)!;
  return { moved: Number(m[1]), size: Number(m[2]) };
}

/** A page-structured file: `pages` random 4 KiB pages. */
function pages(count: number): Buffer {
  return randomBytes(count * PAGE);
}

/** The runner's digests of a content (SHA-1's first 8 bytes per 4 KiB block), as lie.bin wants them. */
function digestsOf(content: Buffer): Buffer {
  const parts: Buffer[] = [];
  for (let o = 0; o < content.length; o += PAGE)
    parts.push(
      createHash('sha1')
        .update(content.subarray(o, o + PAGE))
        .digest()
        .subarray(0, 8),
    );
  return Buffer.concat(parts);
}

describe('delta transfer on an honest server', () => {
  beforeEach(() => misbehave(''));

  test('a database file with 1% of its pages rewritten moves only those pages (zstd on the wire)', async () => {
    const { dir, ws, stored } = setup('db');
    const db = pages(2048); // 8 MiB
    serverWrite(`${dir}/app.sqlite`, db, '2024-01-01 00:00:00');
    await backup(ws, { compression: 'zstd' });
    same(stored('app.sqlite'), `${dir}/app.sqlite`, 'first backup');
    for (let i = 0; i < 20; i++) randomBytes(PAGE).copy(db, ((i * 101 + 7) % 2048) * PAGE);
    serverWrite(`${dir}/app.sqlite`, db, '2024-01-01 00:00:05');
    const r = await backup(ws, { compression: 'zstd' });
    same(stored('app.sqlite'), `${dir}/app.sqlite`, 'after the change');
    const { moved, size } = fetched(r, 'app.sqlite');
    assert.equal(size, db.length);
    assert.equal(moved, 20 * PAGE, `exactly the 20 rewritten pages move\n${r.stdout}`);
    assert.match(r.stdout, /20 of 2048 blocks of 4096 bytes changed/);
    assert.match(seen(), /blocks/, 'the blocks were asked for');
  });

  /** A log of 60,000 lines backed up, then `tail` appended on the server. */
  async function appendedLog(
    name: string,
    tail: Buffer,
  ): Promise<{ dir: string; ws: string; log: Buffer; stored: string }> {
    const { dir, ws, stored } = setup(name);
    const lines = Array.from({ length: 60_000 }, (_, i) => `2026-12-07T07:${i} GET /item/${i} 200\n`).join('');
    const log = Buffer.from(lines);
    serverWrite(`${dir}/access.log`, log, '2024-01-01 00:00:00');
    await backup(ws);
    serverWrite(`${dir}/access.log`, Buffer.concat([log, tail]), '2024-01-01 00:01:00');
    return { dir, ws, log, stored: stored('access.log') };
  }
  const TAIL = Buffer.from('2026-12-07T08:00 POST /login 302\n'.repeat(2000));

  // The server checks the stored copy's SHA-256 against the file's first bytes and sends the tail alone,
  // compressed (perl), or as it is (python3): no block digests.
  for (const [mode, tool, compression] of [
    ['', 'perl', 'zstd'],
    ['', 'perl', 'gzip'],
    ['noperl', 'python3', 'gzip'],
  ] as const) {
    test(`an appended log moves only its tail (${tool}, ${compression} asked for)`, async () => {
      misbehave('');
      const { dir, ws, stored } = await appendedLog(`log-${tool}-${compression}`, TAIL);
      misbehave(mode);
      const r = await backup(ws, { compression });
      same(stored, `${dir}/access.log`, 'after the append');
      assert.match(
        deltaLines(r).join('\n'),
        new RegExp(`access\\.log: appended to, ${TAIL.length} of \\d+ bytes fetched \\(${tool}\\)`),
      );
      assert.equal(seen(), `digests ${mode}\n`, 'one command: no blocks asked for');
    });
  }

  test('an appended log whose stored copy was altered in the data folder: the SHA-256 check refuses it, fetched whole', async () => {
    const { dir, ws, stored } = await appendedLog('log-altered', TAIL);
    // Same size, other bytes: the manifest's SHA-256 (which the server finds as the prefix) no longer describes it.
    const altered = readFileSync(stored);
    altered.write('TAMPERED', 100);
    writeFileSync(stored, altered);
    const r = await backup(ws);
    same(stored, `${dir}/access.log`, 'after the append');
    assert.match(
      deltaLines(r).join('\n'),
      /access\.log: the file put together does not have the server's SHA-256.*; fetched whole/,
    );
  });

  test('an appended tail longer than the file grew: the answer is refused, the file fetched whole', async () => {
    misbehave('');
    const { dir, ws, stored } = await appendedLog('log-lie-tail', TAIL);
    misbehave('lie-tail');
    const r = await backup(ws);
    same(stored, `${dir}/access.log`, 'after the lying tail');
    assert.match(
      deltaLines(r).join('\n'),
      /the server's digests were refused: an appended tail longer than the file grew; 1 file\(s\) fetched whole/,
    );
  });

  test('an appended tail in a codec not asked for: refused, fetched whole, and its temp copy removed', async () => {
    misbehave('');
    const { dir, ws, stored } = await appendedLog('log-lie-codec', TAIL);
    misbehave('lie-codec');
    const r = await backup(ws);
    same(stored, `${dir}/access.log`, 'after the lying codec');
    assert.match(
      deltaLines(r).join('\n'),
      /the server's digests were refused: a tail in zstd, which was not asked for; 1 file\(s\) fetched whole/,
    );
    const left = readdirSync(join(stored, '..')).filter((n) => n.startsWith('.rf-tmp-'));
    assert.deepEqual(left, [], 'no temp copy of the stored file is left in the data folder');
  });

  test('a log changed near its start and appended to: its blocks are compared instead', async () => {
    const { dir, ws, log, stored } = await appendedLog('log-edited', TAIL);
    const edited = Buffer.concat([log, TAIL]);
    edited.write('EDITED', 10);
    serverWrite(`${dir}/access.log`, edited, '2024-01-01 00:02:00');
    const r = await backup(ws);
    same(stored, `${dir}/access.log`, 'after the edit');
    assert.match(deltaLines(r).join('\n'), /access\.log: \d+ of \d+ blocks of 4096 bytes changed/);
    const { moved } = fetched(r, 'access.log');
    assert.ok(moved <= TAIL.length + 2 * PAGE, `${moved} bytes fetched for a ${TAIL.length}-byte tail and one page`);
  });

  test('a dump with rows inserted at its start falls back to the whole file, and says why', async () => {
    const { dir, ws, stored } = setup('dump');
    const rows = (from: number, n: number) =>
      Array.from({ length: n }, (_, i) => `INSERT INTO t VALUES (${from + i}, '${(from + i) % 97}');\n`).join('');
    const dump = rows(1000, 60_000);
    serverWrite(`${dir}/dump.sql`, Buffer.from(dump), '2024-01-01 00:00:00');
    await backup(ws);
    serverWrite(`${dir}/dump.sql`, Buffer.from(rows(0, 3) + dump), '2024-01-01 00:02:00');
    const r = await backup(ws);
    same(stored('dump.sql'), `${dir}/dump.sql`, 'after the insert');
    assert.match(
      deltaLines(r).join('\n'),
      /dump\.sql: \d+% of its blocks differ \(data shifted, or rewritten\); fetched whole/,
    );
  });

  for (const [mode, tool, block] of [
    ['noperl', 'python3', PAGE],
    ['coreutils', 'coreutils', 64 << 10],
  ] as const) {
    test(`a server without perl: ${tool} computes the digests and reads the blocks`, async () => {
      misbehave('');
      const { dir, ws, stored } = setup(`tool-${tool}`);
      const old = pages(1024);
      serverWrite(`${dir}/f.bin`, old, '2024-01-01 00:00:00');
      await backup(ws);
      for (const p of [3, 500, 1000]) randomBytes(PAGE).copy(old, p * PAGE);
      serverWrite(`${dir}/f.bin`, old, '2024-01-01 00:00:09');
      misbehave(mode);
      const r = await backup(ws, { compression: 'gzip' });
      same(stored('f.bin'), `${dir}/f.bin`, tool);
      assert.match(
        deltaLines(r).join('\n'),
        new RegExp(
          `3 of \\d+ blocks of ${block} bytes changed, ${3 * block} of ${old.length} bytes fetched \\(${tool}\\)`,
        ),
      );
      assert.equal(seen(), `digests ${mode}\nblocks ${mode}\n`);
    });
  }

  test('with checksum: a same-size, same-mtime change is found by its SHA-256 and moves by delta', async () => {
    const { dir, ws, stored } = setup('checksum');
    const content = pages(512);
    serverWrite(`${dir}/c.bin`, content, '2024-01-01 00:00:00');
    await backup(ws, { checksum: 'true' });
    randomBytes(PAGE).copy(content, PAGE * 100);
    serverWrite(`${dir}/c.bin`, content, '2024-01-01 00:00:00');
    const r = await backup(ws, { checksum: 'true' });
    same(stored('c.bin'), `${dir}/c.bin`, 'checksum');
    assert.equal(fetched(r, 'c.bin').moved, PAGE);
  });

  test('a file whose content is unchanged (only touched) moves no byte', async () => {
    const { dir, ws, stored } = setup('touched');
    const content = pages(300);
    serverWrite(`${dir}/t.bin`, content, '2024-01-01 00:00:00');
    await backup(ws);
    rootSh(`touch -d '2024-01-01 00:03:00' '${dir}/t.bin'`);
    const r = await backup(ws);
    same(stored('t.bin'), `${dir}/t.bin`, 'after the touch');
    assert.equal(fetched(r, 't.bin').moved, 0);
  });
});

describe('where delta transfer does not apply, whole files', () => {
  beforeEach(() => misbehave(''));

  test('an encrypted stored copy: the changed file moves whole (a backup cannot read the old plaintext)', async () => {
    const { dir, ws } = setup('encrypted');
    const recipient = await identityToRecipient(await generateIdentity());
    const content = pages(512);
    serverWrite(`${dir}/f.bin`, content, '2024-01-01 00:00:00');
    await backup(ws, { 'age-recipients': recipient });
    randomBytes(PAGE).copy(content, 0);
    serverWrite(`${dir}/f.bin`, content, '2024-01-01 00:00:09');
    const r = await backup(ws, { 'age-recipients': recipient });
    assert.deepEqual(deltaLines(r), []);
    assert.equal(seen(), '', 'no delta command ran');
    assert.match(r.stdout, /1 file\(s\), 2\.0 MiB/);
  });

  test('an SFTP-only account: the changed file moves whole, as before', async () => {
    const data = sshd.users.sftp.data;
    rootSh(`rm -rf '${data}/sf' && mkdir -p '${data}/sf'`);
    const ws = testTempDir('rf-delta-');
    writeFileSync(
      join(ws, 'remote-files.yml'),
      'version: 1\nrecipes:\n  App:\n    remote_files:\n      "/data/sf": sf\n',
    );
    const content = pages(512);
    const write = (mtime: string) => {
      writeFileSync(`${data}/sf/f.bin`, content);
      rootSh(`chown -R rf-sftp: '${data}/sf' && touch -d '${mtime}' '${data}/sf/f.bin'`);
    };
    write('2024-01-01 00:00:00');
    const sftp = { username: 'rf-sftp', 'install-dir': '/data', transport: 'sftp' };
    await backup(ws, sftp);
    randomBytes(PAGE).copy(content, PAGE * 9);
    write('2024-01-01 00:00:09');
    const r = await backup(ws, sftp);
    same(join(ws, 'data', DOMAIN, 'sf', 'f.bin'), `${data}/sf/f.bin`, 'over SFTP');
    assert.deepEqual(deltaLines(r), []);
  });
});

describe('a restore (the tar it unpacks with)', () => {
  // Where the server has perl, tar reads the archive through a 1 MiB pipe (F_SETPIPE_SZ); where it has
  // none, through the usual one: the same files either way.
  for (const mode of ['', 'noperl-all'])
    test(`puts every file back ${mode ? 'on a server without perl' : 'through the wide pipe'}`, async () => {
      misbehave('');
      const name = `restore-${mode || 'perl'}`;
      const { dir, ws, stored } = setup(name);
      const files = Array.from({ length: 300 }, (_, i) => [`f${i}.bin`, randomBytes(1 + ((i * 997) % 9000))] as const);
      for (const [f, content] of files) serverWrite(`${dir}/${f}`, content, '2024-01-01 00:00:00');
      await backup(ws);
      rootSh(`rm -rf '${dir}'/*`);
      misbehave(mode);
      ok(await runAction(inputs({ mode: 'restore' }), { workspace: ws }));
      for (const [f] of files) same(stored(f), `${dir}/${f}`, `${f} restored`);
      assert.equal(readdirSync(dir).length, files.length);
    });
});

describe('delta transfer on a server that changes the file or lies', () => {
  /** A stored 4 MiB file, then a server copy with 3 pages changed and the given misbehaviour. */
  async function scenario(
    name: string,
    mode: string,
    prepare?: (dir: string, old: Buffer) => void,
    expectFailure = false,
  ): Promise<{ r: ActionResult; dir: string; stored: string; old: Buffer; ws: string }> {
    misbehave('');
    const { dir, ws, stored } = setup(name);
    const old = pages(1024);
    serverWrite(`${dir}/f.bin`, old, '2024-01-01 00:00:00');
    await backup(ws);
    const next = Buffer.from(old);
    for (const p of [3, 500, 1000]) randomBytes(PAGE).copy(next, p * PAGE);
    serverWrite(`${dir}/f.bin`, next, '2024-01-01 00:00:09');
    prepare?.(dir, old);
    misbehave(mode, `${dir}/f.bin`);
    const r = expectFailure ? await runAction(inputs(), { workspace: ws }) : await backup(ws);
    return { r, dir, stored: stored('f.bin'), old, ws };
  }

  /**
   * A file that shrank after it was listed: the whole fetch that delta falls back to gets fewer bytes
   * than listed, which the size rule (issue #23: a server cannot empty the stored copy by sending less)
   * refuses. The run fails naming it, the stored copy is the old one, and a plain re-run stores the new.
   */
  async function shrankAfterListing(name: string, mode: string, context: string): Promise<ActionResult> {
    const { r, dir, stored, old, ws } = await scenario(name, mode, undefined, true);
    assert.equal(r.code, 1, r.stdout);
    assert.match(r.stdout, /::error::.*arrived with another size than the server listed, and were not stored.*f\.bin/);
    assert.equal(sha(stored), createHash('sha256').update(old).digest('hex'), `${context}: the old copy is kept`);
    misbehave('');
    // The re-run stores the shrunk file; a 4 MiB file cut to 1 MB is a loss the byte guard (issue #21)
    // refuses unless max-delete allows it.
    await backup(ws, { 'max-delete': '100%' });
    same(stored, `${dir}/f.bin`, `${context}, then re-run`);
    return r;
  }

  test('a file truncated between the listing and the fetch', async () => {
    const r = await shrankAfterListing('trunc1', 'truncate-listed', 'truncated before its digests');
    assert.match(deltaLines(r).join('\n'), /f\.bin: it changed on the server since it was listed; fetched whole/);
  });

  test('a file truncated between its digests and its blocks', async () => {
    const r = await shrankAfterListing('trunc2', 'truncate-blocks', 'truncated before its blocks');
    assert.match(deltaLines(r).join('\n'), /f\.bin: .*; fetched whole/);
  });

  test('a file changed while its blocks are read', async () => {
    const { r, dir, stored } = await scenario('during', 'change-during');
    assert.match(readFileSync(`${dir}/f.bin`).toString('latin1'), /CHANGED WHILE READ/);
    same(stored, `${dir}/f.bin`, 'changed while read');
    assert.match(
      deltaLines(r).join('\n'),
      /f\.bin: it changed on the server while its blocks were read; fetched whole/,
    );
  });

  // A change to a block that is not fetched is the next backup's (the record keeps the listed mtime);
  // one to a fetched block makes the file put together differ from the server's SHA-256.
  test('a file changed between its digests and its blocks', async () => {
    const { r, dir, stored } = await scenario('between', 'change-blocks');
    same(stored, `${dir}/f.bin`, 'changed before its blocks');
    assert.match(
      deltaLines(r).join('\n'),
      /f\.bin: the file put together does not have the server's SHA-256.*; fetched whole/,
    );
  });

  test('digests that say nothing changed', async () => {
    const { r, dir, stored } = await scenario('lie-same', 'lie-same', (_dir, old) =>
      writeFileSync(join(work, 'lie.bin'), digestsOf(old)),
    );
    same(stored, `${dir}/f.bin`, 'lying digests');
    assert.match(deltaLines(r).join('\n'), /does not have the server's SHA-256.*; fetched whole/);
  });

  test('a block count that does not fit the size', async () => {
    const { r, dir, stored } = await scenario('lie-header', 'lie-header');
    same(stored, `${dir}/f.bin`, 'lying header');
    assert.match(
      deltaLines(r).join('\n'),
      /the server's digests were refused: a block header that does not hold together/,
    );
  });

  test('a whole-file SHA-256 that is not the file', async () => {
    const { r, dir, stored } = await scenario('lie-sha', 'lie-sha');
    same(stored, `${dir}/f.bin`, 'lying checksum');
    assert.match(deltaLines(r).join('\n'), /does not have the server's SHA-256.*; fetched whole/);
  });

  test('a server that stalls before sending its blocks: one clear error, the old copy intact, a clean re-run', async () => {
    misbehave('');
    const { dir, ws, stored } = setup('stall');
    const old = pages(1024);
    serverWrite(`${dir}/f.bin`, old, '2024-01-01 00:00:00');
    await backup(ws);
    const next = Buffer.from(old);
    randomBytes(PAGE).copy(next, 77 * PAGE);
    serverWrite(`${dir}/f.bin`, next, '2024-01-01 00:00:09');
    misbehave('stall-blocks', `${dir}/f.bin`);
    const r = await runAction(inputs({ timeout: '3' }), { workspace: ws });
    assert.equal(r.code, 1, r.stdout);
    assert.equal(r.stdout.split('\n').filter((l) => l.startsWith('::error::')).length, 1, r.stdout);
    assert.match(r.stdout, /::error::.*timeout/);
    assert.equal(sha(stored('f.bin')), createHash('sha256').update(old).digest('hex'), 'the old copy is intact');
    assert.deepEqual(
      readdirSync(join(ws, 'data', DOMAIN, 'stall')).filter((n) => n.startsWith('.rf-tmp-')),
      [],
      'no temp file left',
    );
    misbehave('');
    const again = await backup(ws);
    same(stored('f.bin'), `${dir}/f.bin`, 'the re-run');
    assert.equal(fetched(again, 'f.bin').moved, PAGE);
  });

  test('a server without the digest tools: whole files, said once', async () => {
    misbehave('');
    const { dir, ws, stored } = setup('notools');
    const a = pages(512);
    const b = pages(512);
    serverWrite(`${dir}/a.bin`, a, '2024-01-01 00:00:00');
    serverWrite(`${dir}/b.bin`, b, '2024-01-01 00:00:00');
    await backup(ws);
    randomBytes(PAGE).copy(a, 0);
    randomBytes(PAGE).copy(b, PAGE * 7);
    serverWrite(`${dir}/a.bin`, a, '2024-01-01 00:00:09');
    serverWrite(`${dir}/b.bin`, b, '2024-01-01 00:00:09');
    misbehave('notools');
    const r = await backup(ws);
    same(stored('a.bin'), `${dir}/a.bin`, 'a.bin');
    same(stored('b.bin'), `${dir}/b.bin`, 'b.bin');
    const lines = deltaLines(r);
    assert.equal(lines.length, 1, `one line:\n${lines.join('\n')}`);
    assert.match(lines[0]!, /delta transfer unavailable: the server has none of perl/);
    assert.equal(seen(), 'digests notools\n', 'digests asked for once, no blocks');
  });
});
