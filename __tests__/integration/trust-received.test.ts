import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import {
  createWriteStream,
  mkdirSync,
  existsSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { finished } from 'node:stream/promises';
import type { Writable } from 'node:stream';
import { once } from 'node:events';
import { after, before, test } from 'node:test';
import tar from 'tar-stream';
import { runAction, type ActionResult } from '../helpers/run-action.js';
import { ok } from '../helpers/outcome.js';
import { testTempDir } from '../helpers/temp.js';
import { treePicture } from '../helpers/tree.js';
import { rootSh, sshFlags, sshInputs, startSshdWithWrapper, type Sshd } from '../helpers/sshd.js';

// Issue #23: what a hostile server sends is held to what it listed, end to end through the bundle
// against a real sshd whose commands go through a wrapper. The wrapper is honest until the test puts
// a crafted answer in its folder: `fetch.tar` (or `fetch.tar.gz` for a gzip-compressed fetch (Node 20 has no zstd)) replaces
// every archive, `list.out` every listing.

const DOMAIN = 'example.com';
let sshd: Sshd;
let work: string;
let srv: string;

before(async () => {
  ({ sshd, work } = await startSshdWithWrapper('received', {
    script: [
      '#!/bin/bash',
      'here=$(dirname "$0")',
      'c=$SSH_ORIGINAL_COMMAND',
      'if [[ "$c" == *--hard-dereference* && -f "$here/fetch.sh" ]]; then cat >/dev/null; bash "$here/fetch.sh"; exit 0; fi',
      'if [[ "$c" == *--hard-dereference* ]]; then',
      '  if [[ "$c" == *"\'gzip\'" && -f "$here/fetch.tar.gz" ]]; then cat >/dev/null; cat "$here/fetch.tar.gz"; exit 0; fi',
      '  if [[ -f "$here/fetch.tar" ]]; then cat >/dev/null; cat "$here/fetch.tar"; exit 0; fi',
      'fi',
      'if [[ "$c" == *sha256sum* && -f "$here/sums.sh" ]]; then cat >/dev/null; bash "$here/sums.sh"; exit 0; fi',
      'if [[ "$c" == *-readable* && -f "$here/list.sh" ]]; then',
      '  if [[ "$c" == *--version* ]]; then find --version | head -n 1; tar --version | head -n 1; id -u; printf "\\nremote-files listing:\\n"; fi',
      '  bash "$here/list.sh"; exit 0',
      'fi',
      'if [[ "$c" == *-readable* && -f "$here/list.out" ]]; then',
      '  if [[ "$c" == *--version* ]]; then find --version | head -n 1; tar --version | head -n 1; id -u; printf "\\nremote-files listing:\\n"; fi',
      '  cat "$here/list.out"; exit 0',
      'fi',
      'exec bash -c "$c"',
      '',
    ].join('\n'),
  }));
  srv = sshd.users.shell.scratch;
});

after(async () => {
  await sshd?.stop();
});

function crafted(): void {
  for (const f of ['fetch.tar', 'fetch.tar.gz', 'list.out', 'list.sh', 'sums.sh', 'fetch.sh'])
    rmSync(join(work, f), { force: true });
}

function workspace(): string {
  const ws = testTempDir('rf-received-');
  writeFileSync(
    join(ws, 'remote-files.yml'),
    'version: 1\nrecipes:\n  Site:\n    remote_files:\n      "${install_dir}/site": site\n',
  );
  return ws;
}

function inputs(extra: Record<string, string> = {}): Record<string, string> {
  return sshInputs(
    sshd,
    { domain: DOMAIN, installDir: srv, pin: 'host-fingerprint' },
    {
      mode: 'backup',
      transport: 'tar',
      timeout: '20',
      retries: '0',
      store: 'none',
      compression: 'none',
      // One server for every workspace here, each salvaging it in turn: the server rule
      // (rerun-safety.test.ts) would rightly refuse some of them. Not what this suite tests.
      'new-server': 'allow',
      ...extra,
    },
  );
}

/** The site on the server: three files with content, owned by the login. */
function plantSite(): string {
  const site = join(srv, 'site');
  rootSh(
    `rm -rf '${site}' && mkdir -p '${site}/db' && printf 'orders' > '${site}/db/orders.sql' && printf 'users!' > '${site}/db/users.sql' && printf 'config' > '${site}/app.conf' && chown -R rf-shell: '${site}'`,
  );
  return site;
}

/** A tar of absolute-named members whose bodies are `size` zero bytes each (the header says so). */
async function zeroTar(path: string, members: Array<{ name: string; size: number }>, codec?: 'gzip'): Promise<void> {
  const pack = tar.pack();
  const out = createWriteStream(path);
  const z = codec ? spawn('gzip', ['-1', '-c'], { stdio: ['pipe', 'pipe', 'inherit'] }) : undefined;
  if (z) {
    pack.pipe(z.stdin);
    z.stdout.pipe(out);
  } else pack.pipe(out);
  const chunk = Buffer.alloc(1 << 20);
  for (const m of members) {
    const entry = pack.entry({
      name: m.name,
      size: m.size,
      mode: 0o644,
      mtime: new Date(1_700_000_000_000),
    }) as unknown as Writable;
    for (let left = m.size; left > 0; left -= chunk.length) {
      if (!entry.write(left >= chunk.length ? chunk : chunk.subarray(0, left))) await once(entry, 'drain');
    }
    entry.end();
  }
  pack.finalize();
  await finished(out);
}

function failedWith(r: ActionResult, pattern: RegExp): void {
  assert.equal(r.code, 1, `exit ${r.code}\n${r.stdout}\n${r.stderr}`);
  const errors = r.stdout.split('\n').filter((l) => l.startsWith('::error::'));
  assert.equal(errors.length, 1, r.stdout);
  assert.match(errors[0]!, pattern);
}

test('files listed with their sizes but sent empty never replace the stored copy (the shrink guard sees bytes)', async () => {
  crafted();
  const site = plantSite();
  const ws = workspace();
  ok(await runAction(inputs(), { workspace: ws }));
  const data = join(ws, 'data', DOMAIN);
  const stored = treePicture(data);
  // The server's files changed (same sizes, new times): the listing is honest, the archive sends nothing.
  rootSh(`touch -d '2030-01-01' '${site}/db/orders.sql' '${site}/db/users.sql' '${site}/app.conf'`);
  await zeroTar(
    join(work, 'fetch.tar'),
    ['app.conf', 'db/orders.sql', 'db/users.sql'].map((f) => ({ name: `${site}/${f}`, size: 0 })),
  );
  try {
    const r = await runAction(inputs(), { workspace: ws });
    failedWith(
      r,
      /3 file\(s\) arrived with another size than the server listed, and were not stored .*app\.conf \(listed 6 B, sent 0 B\)/,
    );
    assert.deepEqual(treePicture(data), stored, 'the stored copy (files and manifest) is untouched');
  } finally {
    crafted();
  }
});

test('a file listed as 5 bytes that arrives as 256 MiB of compressed zeros is cut off, nothing of it stored', async () => {
  crafted();
  const site = plantSite();
  writeFileSync(join(site, 'small.txt'), 'small');
  const ws = workspace();
  await zeroTar(
    join(work, 'fetch.tar.gz'),
    [
      { name: `${site}/app.conf`, size: 6 },
      { name: `${site}/small.txt`, size: 256 << 20 },
    ],
    'gzip',
  );
  try {
    const r = await runAction(inputs({ compression: 'gzip' }), { workspace: ws });
    failedWith(r, /small\.txt \(listed 5 B, sent 268435456 B\)\. The transfer was cut off there/);
    const data = join(ws, 'data', DOMAIN);
    const sizes = readdirSync(data, { recursive: true, withFileTypes: true })
      .filter((d) => d.isFile())
      .map((d) => ({ name: d.name, size: statSync(join(d.parentPath, d.name)).size }));
    assert.ok(
      sizes.every((s) => s.size < 1 << 20),
      `nothing large was stored: ${JSON.stringify(sizes)}`,
    );
    assert.ok(!sizes.some((s) => s.name === 'small.txt' || s.name.includes('.rf-tmp-')), JSON.stringify(sizes));
  } finally {
    crafted();
  }
});

test('names migrated from an older data folder print as text, never as workflow commands or terminal escapes (action and CLI)', async () => {
  crafted();
  plantSite();
  const ws = workspace();
  ok(await runAction(inputs(), { workspace: ws }));
  // What an older version left: raw names, no `names` mark; a folder whose name carries commands and
  // an escape sequence, holding a salvaged checkout's `.git` that the migration renames and names.
  const data = join(ws, 'data', DOMAIN);
  const evil = 'x\n::add-mask::Connected\n::error::pwned\u001b]0;title\u0007\u001b[2J';
  mkdirSync(join(data, 'site', evil, '.git'), { recursive: true });
  writeFileSync(join(data, 'site', evil, '.git', 'HEAD'), 'ref: refs/heads/main\n');
  const path = join(data, '.remote-files', 'manifest.json');
  const m = JSON.parse(readFileSync(path, 'utf8')) as {
    names?: string;
    files: Record<string, Record<string, unknown>>;
  };
  delete m.names;
  const dir = m.files.site!;
  m.files[`site/${evil}`] = dir;
  m.files[`site/${evil}/.git`] = dir;
  m.files[`site/${evil}/.git/HEAD`] = { ...m.files['site/app.conf'], size: 21 };
  writeFileSync(path, JSON.stringify(m));
  const copy = testTempDir('rf-received-cli-');
  rootSh(`cp -a '${ws}/.' '${copy}/'`);

  const r = await runAction(inputs({ 'max-delete': '100%' }), { workspace: ws });
  assert.match(r.stdout, /data folder moved to portable names/, r.stdout);
  assert.match(r.stdout, /^Connected to rf-shell@/m, 'the line a mask would have hidden is there');
  const commands = r.stdout.split('\n').filter(
    // The server rule's own warning (this file's server was restored by an earlier test) is the action's too.
    (l) =>
      /^\s*::/.test(l) &&
      !/^::(add-mask::-----|add-mask::[A-Za-z0-9+/=]{20,}$|group::|endgroup::|warning::backing up a new server, as `new-server: allow` says: )/.test(
        l,
      ),
  );
  assert.deepEqual(commands, [], 'no workflow command but the action’s own');
  assert.ok(!r.stdout.includes('\u001b'), 'no terminal escape');

  const keyFile = join(copy, 'id');
  writeFileSync(keyFile, sshd.key.privateKey, { mode: 0o600 });
  const cli = await new Promise<{ out: string; code: number | null }>((done) => {
    const child = spawn(
      process.execPath,
      [
        resolve('dist/cli.js'),
        'backup',
        ...sshFlags(sshd, { domain: DOMAIN, installDir: srv, keyFile }),
        ...['--host-fingerprint', sshd.fingerprint('ed25519')],
        ...['--transport', 'tar', '--compression', 'none', '--max-delete', '100%'],
        // As the action's runs in this file: another suite may restore this domain onto the same login
        // meanwhile (the marker lives in its home), which the server rule would rightly refuse.
        ...['--new-server', 'allow'],
      ],
      { cwd: copy, env: { PATH: process.env.PATH ?? '', HOME: copy, TMPDIR: tmpdir() } },
    );
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d));
    child.stderr.on('data', (d: Buffer) => (out += d));
    child.on('close', (code) => done({ out, code }));
  });
  assert.match(cli.out, /data folder moved to portable names/, cli.out);
  assert.ok(!cli.out.includes('\u001b'), `no terminal escape in the CLI's output:\n${JSON.stringify(cli.out)}`);
  assert.deepEqual(
    cli.out.split('\n').filter((l) => /^\s*::/.test(l)),
    [],
    'no line a runner would obey',
  );
});

test('a listing flooded with junk is refused as it arrives: memory stays bounded (with and without sudo)', async () => {
  crafted();
  plantSite();
  const ws = workspace();
  const floods: Array<[string, RegExp]> = [
    // 512 MiB without a NUL: one endless field.
    ['yes junk | head -c 536870912', /a field far longer than any listing holds/],
    // Entries beyond those asked for, and owner names beyond the files' owners: tokens of a listing.
    [`perl -e 'while (1) { print "E\\0M\\0" x 65536 }' | head -c 536870912`, /more than the 1 entries asked for/],
    [
      "printf '%s\\0' E R f 1 1 644 0 0 '' '' '' '' N; yes u | tr '\\n' '\\0' | head -c 536870912",
      /more owner names than its files have owners|where an owner or group was expected/,
    ],
  ];
  try {
    for (const sudo of ['false', 'true']) {
      for (const [script, expect] of floods) {
        writeFileSync(join(work, 'list.sh'), `${script}\n`);
        const r = await runAction(inputs({ sudo }), { workspace: ws });
        failedWith(r, expect);
        assert.match(r.stdout, /the server's listing holds/);
        assert.ok(
          r.peakRss < 400 * 2 ** 20,
          `peak ${Math.round(r.peakRss / 2 ** 20)} MiB with sudo: ${sudo} (${script})`,
        );
      }
    }
  } finally {
    crafted();
  }
});

test('checksum output is kept up to one line per file asked for: a flood of it costs no memory, the files are fetched again', async () => {
  crafted();
  plantSite();
  const ws = workspace();
  ok(await runAction(inputs(), { workspace: ws }));
  writeFileSync(join(work, 'sums.sh'), 'yes "$(printf %064d 0)  /etc/passwd" | head -c 536870912\n');
  try {
    const r = ok(await runAction(inputs({ checksum: 'true' }), { workspace: ws }));
    assert.equal(r.outputs.files, '3', 'no checksum matched: every file fetched again');
    assert.ok(r.peakRss < 400 * 2 ** 20, `peak ${Math.round(r.peakRss / 2 ** 20)} MiB`);
  } finally {
    crafted();
  }
});

test('a server that trickles a byte every 2 s cannot outlast `timeout`: too little progress ends the run', async () => {
  crafted();
  const site = plantSite();
  const ws = workspace();
  // 60 s of trickle (a byte every 2 s: the old watchdog saw it as alive) before a broken archive.
  writeFileSync(join(work, 'fetch.sh'), 'for i in $(seq 30); do printf x; sleep 2; done\n');
  try {
    const t0 = Date.now();
    const r = await runAction(inputs({ timeout: '4' }), { workspace: ws });
    const took = Date.now() - t0;
    failedWith(r, /too little progress: \d+ byte\(s\) moved in 4 s .*the `timeout` input \(4 s\) bounds this/);
    assert.ok(took < 40_000, `ended after ${took} ms, well before the trickle would (60 s)`);
    assert.ok(existsSync(join(site, 'app.conf')));
  } finally {
    crafted();
  }
});

test('a hung remote_prepare or before-restore command is stopped after `command-timeout`', async () => {
  crafted();
  plantSite();
  const ws = workspace();
  writeFileSync(
    join(ws, 'remote-files.yml'),
    `version: 1\nrecipes:\n  Site:\n    remote_files:\n      "\${install_dir}/site": site\n    remote_prepare:\n      - sleep 60\n`,
  );
  let t0 = Date.now();
  const backup = ok(await runAction(inputs({ 'command-timeout': '3s' }), { workspace: ws }));
  assert.ok(Date.now() - t0 < 40_000, 'the prepare command did not run its 60 s');
  // It changed nothing below the entry's paths: a warning, and the backup goes on.
  assert.match(backup.stdout, /::warning::Site: prepare command failed \(stopped after `command-timeout`, 3 s\)/);
  assert.equal(backup.outputs.changed, 'true');

  t0 = Date.now();
  const r = await runAction(inputs({ mode: 'restore', 'command-timeout': '3', 'before-restore': 'sleep 60' }), {
    workspace: ws,
  });
  assert.ok(Date.now() - t0 < 40_000, 'the before-restore command did not run its 60 s');
  failedWith(r, /before-restore command failed \(stopped after `command-timeout`, 3 s\): sleep 60/);
});
