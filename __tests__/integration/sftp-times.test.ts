import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ok } from '../helpers/outcome.js';
import { runAction } from '../helpers/run-action.js';
import { rootSh, startSshd, type Sshd } from '../helpers/sshd.js';
import { testTempDir } from '../helpers/temp.js';

// SFTP v3 carries a time in 32 bits (issue #22). A backup reads them as signed, so times before 1970
// survive and a server time after 2038-01-19 03:14:07 UTC is recorded 2³² seconds (136 years)
// earlier; a restore writes them as OpenSSH's server takes them, unsigned: a recorded time from 1970
// to 2106-02-07 exactly, an earlier one as 1970-01-01, a later one as 2106-02-07 06:28:15. README,
// "What comes back". The bundle against a real sshd, over its SFTP-only (internal-sftp, chroot) login.

const DOMAIN = 'sftp-times.example';
const Y2038_LAST = 2 ** 31 - 1; // 2038-01-19 03:14:07
const Y2050 = 2_524_608_000; // 2050-01-01
const Y2106_LAST = 2 ** 32 - 1; // 2106-02-07 06:28:15
let server: Sshd;
const scratch: string[] = [];

before(async () => {
  server = await startSshd({ hostKeyTypes: ['ed25519'] });
});
after(async () => {
  await server?.stop();
  for (const dir of scratch) rmSync(dir, { recursive: true, force: true });
});

const app = () => join(server.users.sftp.data, 'app');

function workspace(): string {
  const ws = testTempDir('rf-sftp-times-');
  scratch.push(ws);
  writeFileSync(
    join(ws, 'remote-files.yml'),
    'version: 1\nrecipes:\n  App:\n    remote_files:\n      "${install_dir}/app": app\n',
  );
  return ws;
}

function act(ws: string, mode: 'backup' | 'restore') {
  return runAction(
    {
      host: '127.0.0.1',
      port: String(server.port),
      username: server.users.sftp.username,
      key: server.key.privateKey,
      'host-fingerprint': server.fingerprint('ed25519'),
      mode,
      domain: DOMAIN,
      'install-dir': server.users.sftp.dataInChroot,
      transport: 'sftp',
      compression: 'none',
      timeout: '20',
      store: 'none',
    },
    { workspace: ws },
  );
}

const manifestPath = (ws: string) => join(ws, 'data', DOMAIN, '.remote-files', 'manifest.json');
type Manifest = { files: Record<string, { mtime: number }> };
const readManifest = (ws: string) => JSON.parse(readFileSync(manifestPath(ws), 'utf8')) as Manifest;

/** Files below the server's `app` made as the SFTP account's own, each dated as given. */
function makeFiles(times: Record<string, number>): void {
  const made = Object.entries(times).map(([name, t]) => `printf '${name}' > ${name} && touch -d @${t} ${name}`);
  rootSh(`rm -rf '${app()}' && mkdir -p '${app()}' && cd '${app()}'
    ${made.join('\n')}
    chown -R ${server.users.sftp.username}: '${app()}'`);
}

/** Each file's mtime on the server, in whole seconds. */
function serverTimes(names: string[]): Record<string, number> {
  return Object.fromEntries(names.map((n) => [n, Number(rootSh(`stat -c %Y -- '${join(app(), n)}'`).trim())]));
}

describe('SFTP: times past 2038', () => {
  test('a file dated 2050 is recorded 136 years earlier and, restored over SFTP, comes back as 1970-01-01', async () => {
    makeFiles({ 'y2050.txt': Y2050, 'y2038.txt': Y2038_LAST, 'now.txt': 1_700_000_000 });
    const ws = workspace();
    ok(await act(ws, 'backup'), 'backup');
    const files = readManifest(ws).files;
    assert.deepEqual(
      [files['app/y2050.txt']?.mtime, files['app/y2038.txt']?.mtime, files['app/now.txt']?.mtime],
      [Y2050 - 2 ** 32, Y2038_LAST, 1_700_000_000],
      'manifest: 2050 as 1913-11-26, the last second of 2038 and now as they are',
    );
    rootSh(`rm -rf '${app()}'`);
    ok(await act(ws, 'restore'), 'restore');
    // The recorded 1913 is before 1970: SFTP cannot write it, 1970-01-01 is the nearest it can.
    assert.deepEqual(serverTimes(['y2050.txt', 'y2038.txt', 'now.txt']), {
      'y2050.txt': 0,
      'y2038.txt': Y2038_LAST,
      'now.txt': 1_700_000_000,
    });
  });

  test('a recorded time after 2038 (as a tar backup records it) is written exactly up to 2106, later as 2106', async () => {
    const recorded = {
      'y2040.txt': 2_208_988_800,
      'y2106.txt': Y2106_LAST,
      'y2106-next.txt': 2 ** 32,
      'y2286.txt': 1e10,
    };
    makeFiles(Object.fromEntries(Object.keys(recorded).map((name) => [name, 1_600_000_000])));
    const ws = workspace();
    ok(await act(ws, 'backup'), 'backup');
    // The manifest as a tar backup of the same files dated as `recorded` would have written it.
    const m = readManifest(ws);
    for (const [name, t] of Object.entries(recorded)) m.files[`app/${name}`]!.mtime = t;
    writeFileSync(manifestPath(ws), JSON.stringify(m));
    rootSh(`rm -rf '${app()}'`);
    ok(await act(ws, 'restore'), 'restore');
    assert.deepEqual(serverTimes(Object.keys(recorded)), {
      'y2040.txt': 2_208_988_800,
      'y2106.txt': Y2106_LAST,
      'y2106-next.txt': Y2106_LAST,
      'y2286.txt': Y2106_LAST,
    });
  });
});
