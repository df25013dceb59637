import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { rootSh, startSshd, type Sshd } from '../helpers/sshd.js';
import { testTempDir } from '../helpers/temp.js';

// src/main.ts run by @github/local-action (GitHub's tool for running an action on a laptop), as the
// README shows it: `npx local-action run . src/main.ts .env`. It loads the TypeScript sources itself
// (tsx) and swaps @actions/core, @actions/artifact and @actions/cache for its own stand-ins, which keep
// artifacts and caches as files in the folders the .env names. A backup, then a restore from them.

const ROOT = resolve('.');
const BIN = join(ROOT, 'node_modules/@github/local-action/bin/local-action.js');
const DOMAIN = 'local.example';
const RECIPE = `version: 1\nrecipes:\n  Site:\n    remote_files:\n      "\${install_dir}/site": site\n`;

let server: Sshd;
let srv: string;
let base: string;

before(async () => {
  server = await startSshd();
  srv = server.users.shell.scratch;
  base = testTempDir('rf-local-action-');
});
after(async () => {
  await server?.stop();
  if (base) rmSync(base, { recursive: true, force: true });
});

interface Run {
  output: string;
  code: number | null;
  outputs: Record<string, string>;
}

/** Writes the .env file (dotenv syntax: a multi-line value in double quotes) and runs local-action on it. */
async function localAction(name: string, vars: Record<string, string>): Promise<Run> {
  const envFile = join(base, `${name}.env`);
  writeFileSync(
    envFile,
    Object.entries(vars)
      .map(([k, v]) => `${k}=${v.includes('\n') || v.includes(' ') ? `"${v}"` : v}`)
      .join('\n') + '\n',
  );
  // A clean environment: only what the .env file says reaches the action (plus what npm needs).
  // TMPDIR too: the action's report and temp folders go below the test run's, which npm test removes.
  const env = { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? base, TMPDIR: tmpdir(), NO_COLOR: '1' };
  const child = spawn(process.execPath, [BIN, 'run', ROOT, 'src/main.ts', envFile], { cwd: ROOT, env });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d));
  child.stderr.on('data', (d: Buffer) => (output += d));
  const timer = setTimeout(() => child.kill('SIGKILL'), 180_000);
  const code = await new Promise<number | null>((done) => child.on('close', done));
  clearTimeout(timer);
  const outputs: Record<string, string> = {};
  for (const m of output.matchAll(/^::set-output name=([^:]+)::(.*)$/gm)) outputs[m[1]!] = m[2]!;
  return { output, code, outputs };
}

function assertNoSecret(run: Run, key: string): void {
  assert.ok(!run.output.includes(key.trim()), 'the private key is printed');
  // Line by line too: a key printed through a multi-line table cell or a log line would show as lines.
  for (const line of key
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.length >= 20 && !l.startsWith('-----'))) {
    assert.ok(!run.output.includes(line), `a line of the private key is printed: ${line.slice(0, 12)}…`);
  }
}

describe('@github/local-action runs src/main.ts', () => {
  test(
    'backup to the artifact and cache stand-ins, then a restore from the cache; no secret printed',
    { timeout: 400_000 },
    async () => {
      rootSh(
        `cd / && su -s /bin/sh rf-shell -c 'sh -s'`,
        `rm -rf '${srv}/site' && mkdir -p '${srv}/site/keys' && printf 'db' > '${srv}/site/db.sqlite' && printf 'secret key' > '${srv}/site/keys/k' && chmod 600 '${srv}/site/keys/k'`,
      );
      const ws = join(base, 'ws');
      const artifacts = join(base, 'artifacts');
      const caches = join(base, 'caches');
      const scratch = join(base, 'local-action');
      for (const d of [ws, artifacts, caches, scratch]) mkdirSync(d, { recursive: true });
      writeFileSync(join(ws, 'remote-files.yml'), RECIPE);
      const vars = {
        INPUT_HOST: '127.0.0.1',
        INPUT_PORT: String(server.port),
        INPUT_USERNAME: 'rf-shell',
        INPUT_KEY: server.key.privateKey.trim(),
        'INPUT_KNOWN-HOSTS': server.knownHostsLine('ed25519'),
        INPUT_DOMAIN: DOMAIN,
        'INPUT_INSTALL-DIR': srv,
        INPUT_STORE: 'artifact,cache',
        GITHUB_WORKSPACE: ws,
        GITHUB_RUN_ID: '1001',
        GITHUB_REPOSITORY: 'octo/site',
        LOCAL_ACTION_WORKSPACE: scratch,
        LOCAL_ACTION_ARTIFACT_PATH: artifacts,
        LOCAL_ACTION_CACHE_PATH: caches,
      };

      const backup = await localAction('backup', { ...vars, INPUT_MODE: 'backup' });
      const log = `exit ${backup.code}\n${backup.output}`;
      assert.equal(backup.code, 0, log);
      // local-action exits 0 even when the action failed: an ::error:: line is how a failure shows.
      assert.doesNotMatch(backup.output, /^::error::/m, log);
      assert.match(backup.output, /Running Action/, log);
      assert.equal(backup.outputs.files, '2', log);
      assert.equal(backup.outputs['artifact-id'], '1', log);
      assert.equal(backup.outputs['cache-key'], `remote-files-${DOMAIN}-1001-1`, log);
      assert.ok(existsSync(join(artifacts, `remote-files-${DOMAIN}.zip`)), 'the artifact stand-in holds the upload');
      assert.equal(
        readdirSync(caches).filter((f) => f.startsWith(`remote-files-${DOMAIN}-1001-1-`) && f.endsWith('.cache'))
          .length,
        1,
        'the cache stand-in holds the entry',
      );
      assert.equal(readFileSync(join(ws, 'data', DOMAIN, 'site/keys/k'), 'utf8'), 'secret key');
      assertNoSecret(backup, server.key.privateKey);

      // The rebuild: the server and the workspace lose the files; the stand-ins keep theirs.
      rootSh(`rm -rf '${srv}/site' '${ws}/data'`);
      const restore = await localAction('restore', { ...vars, INPUT_MODE: 'restore' });
      const rlog = `exit ${restore.code}\n${restore.output}`;
      assert.equal(restore.code, 0, rlog);
      assert.doesNotMatch(restore.output, /^::error::/m, rlog);
      // local-action keeps artifacts only for the process that uploaded them: said, then the cache serves.
      assert.match(
        restore.output,
        /no artifact remote-files-local\.example found in this @github\/local-action run/,
        rlog,
      );
      assert.equal(restore.outputs['cache-hit'], 'true', rlog);
      assert.equal(restore.outputs.files, '2', rlog);
      assert.equal(restore.outputs.changed, 'true', rlog);
      assert.equal(readFileSync(join(srv, 'site/keys/k'), 'utf8'), 'secret key');
      assert.equal(statSync(join(srv, 'site/keys/k')).mode & 0o777, 0o600);
      assertNoSecret(restore, server.key.privateKey);
    },
  );
});
