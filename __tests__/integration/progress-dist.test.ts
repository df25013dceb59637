import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startCutProxy, type CutProxy } from '../helpers/cut-proxy.js';
import { ok } from '../helpers/outcome.js';
import { runAction, type ActionResult } from '../helpers/run-action.js';
import { rootSh, sshInputs, startSshd, type Sshd } from '../helpers/sshd.js';
import { testTempDir } from '../helpers/temp.js';

// The Actions log of a transfer that takes a while: the committed bundle, through a proxy that carries
// 1 MiB/s, moves 3 MiB, so each direction takes three seconds or more however fast the machine is;
// with REMOTE_FILES_PROGRESS_MS at 200 ms, progress lines are due many times over. Each line is inside
// its group (Salvage, Restore), and each group's own lines too: what loading the stored copy said comes
// before the restore it describes, a comparison's lines inside Verify.

const DOMAIN = 'example.com';
const RATE = 1024 * 1024;
let server: Sshd;
let proxy: CutProxy;
let app: string;

before(async () => {
  server = await startSshd({ hostKeyTypes: ['ed25519'] });
  proxy = await startCutProxy({ port: server.port, cutAfter: Infinity, bytesPerSecond: RATE });
  app = join(server.users.shell.scratch, 'app');
  for (const [dir, owner] of [
    [app, 'rf-shell'],
    [join(server.users.sftp.data, 'app'), 'rf-sftp'],
  ])
    rootSh(`
      set -e
      mkdir -p '${dir}'
      head -c 3145728 /dev/urandom > '${dir}/big.bin'
      for i in 1 2 3; do printf "small $i" > "${dir}/s$i.txt"; done
      chown -R ${owner}: '${dir}'
    `);
});

after(async () => {
  await proxy?.close();
  await server?.stop();
});

function act(ws: string, inputs: Record<string, string>, port = proxy.port): Promise<ActionResult> {
  return runAction(
    sshInputs(
      server,
      { domain: DOMAIN, installDir: server.users.shell.scratch, pin: 'host-fingerprint' },
      { port: String(port), transport: 'tar', compression: 'none', retries: '0', ...inputs },
    ),
    { workspace: ws, env: { REMOTE_FILES_PROGRESS_MS: '200' } },
  );
}

/** Each log group's title and lines, in order; lines outside any group under the title ''. */
function groups(stdout: string): Array<{ title: string; lines: string[] }> {
  const out: Array<{ title: string; lines: string[] }> = [{ title: '', lines: [] }];
  let current = out[0]!;
  for (const line of stdout.split('\n')) {
    if (line.startsWith('::group::')) {
      current = { title: line.slice('::group::'.length), lines: [] };
      out.push(current);
    } else if (line === '::endgroup::') {
      current = { title: '', lines: [] };
      out.push(current);
    } else current.lines.push(line);
  }
  return out;
}

function linesOf(stdout: string, title: string): string[] {
  return groups(stdout)
    .filter((g) => g.title === title)
    .flatMap((g) => g.lines);
}

const PROGRESS = (verb: string) =>
  new RegExp(
    `^${verb} \\d+(\\.\\d)? (B|KiB|MiB) of 3\\.0 MiB \\(\\d+%\\), \\d of 4 file\\(s\\), \\d+(\\.\\d)? (B|KiB|MiB)/s, (about \\d+:\\d\\d left|time left unknown|all handed over, finishing)$`,
  );

describe('progress in the Actions log, through a link slowed to 1 MiB/s', () => {
  const ws = testTempDir('rf-progress-');

  before(() => {
    writeFileSync(
      join(ws, 'remote-files.yml'),
      'version: 1\nrecipes:\n  App:\n    remote_files:\n      "${install_dir}/app": app\n',
    );
  });

  test('backup: progress lines with bytes and files of the listing, rate and time left, inside Salvage', async () => {
    const r = ok(await act(ws, { mode: 'backup', store: 'none' }));
    const inside = linesOf(r.stdout, 'Salvage').filter((l) => PROGRESS('received').test(l));
    assert.ok(inside.length >= 2, `progress lines inside Salvage:\n${r.stdout}`);
    const elsewhere = groups(r.stdout)
      .filter((g) => g.title !== 'Salvage')
      .flatMap((g) => g.lines)
      .filter((l) => /^received /.test(l));
    assert.deepEqual(elsewhere, [], 'no progress line outside its group');
    assert.ok(
      inside.some((l) => !/\(100%\)/.test(l) && /left$/.test(l)),
      `a line during the transfer, with the time left:\n${inside.join('\n')}`,
    );
    assert.ok(new Set(inside.map((l) => l.split(' of ')[0])).size >= 2, `bytes grow:\n${inside.join('\n')}`);
  });

  test('restore: progress lines inside Restore; the stored copy it uses is named before, in its own group', async () => {
    rootSh(`rm -rf '${app}'`);
    const r = ok(await act(ws, { mode: 'restore', store: 'commit' }));
    const inside = linesOf(r.stdout, 'Restore').filter((l) => PROGRESS('sent').test(l));
    assert.ok(inside.length >= 2, `progress lines inside Restore:\n${r.stdout}`);
    const all = groups(r.stdout);
    const load = all.findIndex((g) => g.title === 'Load the stored copy');
    const restore = all.findIndex((g) => g.title === 'Restore');
    assert.ok(load >= 0 && load < restore, `the load group comes before the restore:\n${r.stdout}`);
    assert.deepEqual(
      all[load]!.lines.filter((l) => /committed copy/.test(l)),
      [`using the committed copy in data/${DOMAIN}`],
    );
    const later = all.slice(restore).flatMap((g) => g.lines);
    assert.ok(!later.some((l) => /committed copy/.test(l)), `not said again after the restore:\n${r.stdout}`);
    assert.match(r.summary, /using the committed copy/, 'the step summary still says it');
  });

  test('over SFTP too: progress lines inside Salvage and Restore', async () => {
    const sftpWs = testTempDir('rf-progress-sftp-');
    writeFileSync(
      join(sftpWs, 'remote-files.yml'),
      'version: 1\nrecipes:\n  App:\n    remote_files:\n      "${install_dir}/app": app\n',
    );
    const sftp = { username: 'rf-sftp', 'install-dir': '/data', transport: 'sftp' };
    const backup = ok(await act(sftpWs, { mode: 'backup', store: 'none', ...sftp }));
    assert.ok(
      linesOf(backup.stdout, 'Salvage').filter((l) => PROGRESS('received').test(l)).length >= 2,
      `progress lines inside Salvage:\n${backup.stdout}`,
    );
    rootSh(`rm -rf '${join(server.users.sftp.data, 'app')}'`);
    const restore = ok(await act(sftpWs, { mode: 'restore', store: 'none', ...sftp }));
    assert.ok(
      linesOf(restore.stdout, 'Restore').filter((l) => PROGRESS('sent').test(l)).length >= 2,
      `progress lines inside Restore:\n${restore.stdout}`,
    );
  });

  test('verify: the comparison lines inside Verify', async () => {
    const r = ok(await act(ws, { mode: 'verify', store: 'commit' }, server.port));
    assert.ok(
      linesOf(r.stdout, 'Verify').some((l) => /^same +\S+\/app -> app$/.test(l)),
      `the entry line inside Verify:\n${r.stdout}`,
    );
    assert.ok(
      linesOf(r.stdout, 'Verify').some((l) => /^No drift: /.test(l)),
      `the total inside Verify:\n${r.stdout}`,
    );
  });
});
