import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, beforeEach, describe, test } from 'node:test';
import { BLOCKS_ARGS, BLOCKS_SCRIPT } from '../../src/transfer/delta/scripts.js';
import { WRITE_SCRIPT } from '../../src/transfer/identity/probe.js';
import { LIST_SCRIPT } from '../../src/transfer/tar/remote-scripts.js';
import { shCommand } from '../../src/transfer/shell.js';
import { rootSh, startSshd, type Sshd } from '../helpers/sshd.js';
import { testTempDir } from '../helpers/temp.js';

// The server-side scripts that make temp files remove them however they end, not only on a normal exit
// (issue #22). A killed action (SIGKILL, as a cancelled job ends) closes its connection; sshd then
// closes the command's pipes, and the script's next write kills it with SIGPIPE. dash, Debian's and
// Ubuntu's /bin/sh, runs no EXIT trap for a signal that ends the shell: each script traps the signals
// too. Here each script runs through a real sshd as the login would, its client is SIGKILLed
// mid-stream (or the script is sent TERM, as coreutils' `timeout` ends it), and the login's own
// TMPDIR and marker folder must be empty once the script on the server has ended.

let server: Sshd;
/** The login's TMPDIR and HOME, this instance's own (sshd's SetEnv): other suites share rf-shell's /tmp and home. */
let loginTmp: string;
let loginHome: string;
/** First on the login's PATH: an `mv` that, while `cut-mv` exists beside it, TERMs the shell that ran it. */
let shims: string;
let keyFile: string;

before(async () => {
  const base = testTempDir('rf-temp-cleanup-');
  chmodSync(base, 0o755);
  loginTmp = join(base, 'tmp');
  loginHome = join(base, 'home');
  shims = join(base, 'shims');
  for (const d of [loginTmp, loginHome, shims]) mkdirSync(d);
  writeFileSync(
    join(shims, 'mv'),
    `#!/bin/sh
if [ -e '${shims}/cut-mv' ]; then kill -TERM $PPID; exit 1; fi
exec /bin/mv "$@"
`,
  );
  chmodSync(join(shims, 'mv'), 0o755);
  server = await startSshd({
    hostKeyTypes: ['ed25519'],
    extraConfig: `SetEnv TMPDIR=${loginTmp} HOME=${loginHome} PATH=${shims}:/usr/local/bin:/usr/bin:/bin`,
  });
  rootSh(`chown rf-shell: '${loginTmp}' '${loginHome}'`);
  keyFile = join(base, 'key');
  writeFileSync(keyFile, server.key.privateKey, { mode: 0o600 });
});
after(async () => {
  await server?.stop();
});

/** What the scripts left: the login's TMPDIR, and temp files in the marker folder. */
function leftovers(): string[] {
  const markers = join(loginHome, '.local', 'state', 'remote-files');
  return [
    ...readdirSync(loginTmp).map((n) => `TMPDIR/${n}`),
    ...(existsSync(markers) ? readdirSync(markers).filter((n) => n.startsWith('.')) : []).map((n) => `marker/${n}`),
  ];
}

// Each case starts with nothing there: a leftover is that case's own.
beforeEach(() => rootSh(`rm -rf '${loginTmp}'/* '${loginHome}'/.local/state/remote-files/.[!.]*`));

/** Waits until no process of the login's has `tag` on its command line (the killed script ended). */
async function settle(tag: string): Promise<void> {
  const busy = () => spawnSync('pgrep', ['-u', 'rf-shell', '-f', tag]).status === 0;
  for (let i = 0; i < 100 && busy(); i++) await new Promise((r) => setTimeout(r, 100));
  assert.ok(!busy(), `the script on the server ended within 10 s (${tag})`);
}

/**
 * Runs `command` on the server as rf-shell through OpenSSH's client, `input` on its stdin; once
 * `killAfter` bytes of its output arrived, SIGKILLs the client (as a cancelled job's action dies).
 * Resolves with the bytes seen and whether the client was killed.
 */
function sshUntil(command: string, input: Buffer, killAfter: number): Promise<{ bytes: number; killed: boolean }> {
  const child = spawn(
    'ssh',
    [
      ...['-i', keyFile, '-p', String(server.port), '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=no'],
      ...['-o', 'UserKnownHostsFile=/dev/null', '-o', 'LogLevel=ERROR', 'rf-shell@127.0.0.1', command],
    ],
    { stdio: ['pipe', 'pipe', 'ignore'] },
  );
  let bytes = 0;
  let killed = false;
  child.stdout.on('data', (d: Buffer) => {
    bytes += d.length;
    if (!killed && bytes >= killAfter) {
      killed = true;
      child.kill('SIGKILL');
    }
  });
  child.stdin.on('error', () => undefined);
  child.stdin.end(input);
  return new Promise((done) => child.on('close', () => done({ bytes, killed })));
}

describe('temp files on the server are gone however a script ends', { concurrency: 1 }, () => {
  test('the tar listing, its client killed mid-stream', async () => {
    // The listing of /usr, four times over, is megabytes: far more than the pipes between hold.
    const tag = `/nonexistent-${randomBytes(6).toString('hex')}`;
    const r = await sshUntil(
      shCommand(LIST_SCRIPT, ['/usr', '/usr', '/usr', '/usr', tag], false),
      Buffer.alloc(0),
      65536,
    );
    assert.ok(r.killed, `the listing was cut mid-stream (${r.bytes} bytes came)`);
    await settle(tag);
    assert.deepEqual(leftovers(), [], 'the listing’s temp folder is gone');
  });

  test('the delta blocks of the coreutils reader, its client killed mid-stream', async () => {
    // Four ranges of 2 MiB of one file: the reader stages each in a temp file and is cut in the first.
    const file = join(loginHome, `blocks-${randomBytes(6).toString('hex')}`);
    rootSh(`head -c 8388608 /dev/zero > '${file}' && chown rf-shell: '${file}'`);
    const request = Buffer.from(`${file}\0${65536} 0+32 32+32 64+32 96+32\0`);
    const r = await sshUntil(shCommand(BLOCKS_SCRIPT, ['coreutils', '', ...BLOCKS_ARGS], false), request, 65536);
    assert.ok(r.killed, `the blocks were cut mid-stream (${r.bytes} bytes came)`);
    await settle(file);
    assert.deepEqual(leftovers(), [], 'the block reader’s temp file is gone');
  });

  test('the marker write, TERMed before its rename', async () => {
    const domain = `cut-${randomBytes(6).toString('hex')}.example`;
    writeFileSync(join(shims, 'cut-mv'), '');
    try {
      await sshUntil(shCommand(WRITE_SCRIPT, [domain, 'a'.repeat(32), '', ''], false), Buffer.alloc(0), Infinity);
      await settle(domain);
    } finally {
      spawnSync('rm', ['-f', join(shims, 'cut-mv')]);
    }
    assert.ok(!existsSync(join(loginHome, '.local', 'state', 'remote-files', domain)), 'the rename was cut');
    assert.deepEqual(leftovers(), [], 'the marker’s temp file is gone');
  });
});
