import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { lstatSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { runAction } from '../helpers/run-action.js';
import { ok } from '../helpers/outcome.js';
import { treePicture } from '../helpers/tree.js';
import { rootSh, sshInputs, startSshd, type Sshd } from '../helpers/sshd.js';
import { testTempDir } from '../helpers/temp.js';

// Issue #23, first finding: two entries whose server paths nest (`app` and `app/www`), the inner one
// recorded as a symlink (a crafted manifest, or a backup from a server that listed it as a link). The
// outer entry's restore makes `app/www` a real folder; the inner entry's staged link must then never be
// entered nor searched through on the server: a link root goes back only where nothing is. The link
// points at a root-owned canary standing in for /etc, which must come through every restore untouched.
// SFTP cannot run as root: there the restore runs as the login user, and its canary is a folder that
// user owns (and so could change, were the link followed); upload.ts has its own refusal branch.

const DOMAIN = 'example.com';
let sshd: Sshd;
let srv: string;
let rootCanary: string;
let userCanary: string;
const scratch: string[] = [];

before(async () => {
  sshd = await startSshd({ hostKeyTypes: ['ed25519'] });
  srv = sshd.users.shell.scratch;
  rootCanary = `/var/lib/rf-canary-${randomBytes(4).toString('hex')}`;
  userCanary = `/var/lib/rf-canary-user-${randomBytes(4).toString('hex')}`;
  for (const dir of [rootCanary, userCanary])
    rootSh(`mkdir -p '${dir}/sub' && printf 'root:x:0:0' > '${dir}/passwd' && printf secret > '${dir}/sub/shadow'`);
  rootSh(`chown -R rf-shell: '${userCanary}'`);
});

after(async () => {
  await sshd?.stop();
  rootSh(`rm -rf '${rootCanary}' '${userCanary}'`);
  for (const dir of scratch) rmSync(dir, { recursive: true, force: true });
});

const recipes = [
  'version: 1',
  'recipes:',
  '  App:',
  '    remote_files:',
  '      "${install_dir}/app": app',
  '  Www:',
  '    remote_files:',
  '      "${install_dir}/app/www": www',
  '',
].join('\n');

function inputs(extra: Record<string, string>): Record<string, string> {
  return sshInputs(
    sshd,
    { domain: DOMAIN, installDir: srv, pin: 'host-fingerprint' },
    { timeout: '20', retries: '0', store: 'none', sudo: 'true', ...extra },
  );
}

// tar as root (sudo: true), where following the link would reach anything; SFTP as the login user.
const cases = [
  { transport: 'tar', sudo: 'true', target: () => rootCanary },
  { transport: 'sftp', sudo: 'false', target: () => userCanary },
];

for (const { transport, sudo, target } of cases) {
  test(`${transport}: a stored link at a nested entry's root is never entered: the folder it points at stays whole`, async () => {
    const canary = target();
    const app = join(srv, 'app');
    rootSh(
      `rm -rf '${app}' && mkdir -p '${app}/www' && printf home > '${app}/index.html' && printf page > '${app}/www/page.html' && chown -R rf-shell: '${app}'`,
    );
    const ws = testTempDir('rf-root-links-');
    scratch.push(ws);
    writeFileSync(join(ws, 'remote-files.yml'), recipes);
    ok(await runAction(inputs({ mode: 'backup', transport, sudo }), { workspace: ws }));

    // The crafted data folder: the inner entry's root recorded as a link to the canary.
    const data = join(ws, 'data', DOMAIN);
    const path = join(data, '.remote-files', 'manifest.json');
    const manifest = JSON.parse(readFileSync(path, 'utf8')) as { files: Record<string, Record<string, unknown>> };
    for (const p of Object.keys(manifest.files)) if (p.startsWith('www/')) delete manifest.files[p];
    manifest.files.www = { ...manifest.files.www, type: 'symlink', size: 0, mode: '0777', target: canary };
    writeFileSync(path, JSON.stringify(manifest, null, 2));
    rmSync(join(data, 'www'), { recursive: true });

    const canaryBefore = treePicture(canary, { modes: true });
    assert.equal(canaryBefore.size, 3, 'the canary holds its files');
    rootSh(`rm -rf '${app}'`);
    const r = await runAction(inputs({ mode: 'restore', transport, sudo }), { workspace: ws });
    assert.deepEqual(treePicture(canary, { modes: true }), canaryBefore, `the canary is untouched\n${r.stdout}`);
    // The outer entry's folder is there (with its own file); no file of the canary reached it.
    assert.ok(lstatSync(join(app, 'www')).isDirectory(), "app/www is the outer entry's real folder");
    assert.deepEqual([...treePicture(join(app, 'www')).keys()], ['page.html']);
    assert.match(r.stdout, /is put back only where the server has nothing/);
    rootSh(`rm -rf '${app}'`);
  });

  test(`${transport}: a stored link root onto a missing path is put back as the link, never followed`, async () => {
    const canary = target();
    const app = join(srv, `app2-${transport}`);
    rootSh(`rm -rf '${app}' && mkdir -p '${app}' && ln -s '${canary}' '${app}/www' && chown -hR rf-shell: '${app}'`);
    const ws = testTempDir('rf-root-links-');
    scratch.push(ws);
    writeFileSync(join(ws, 'remote-files.yml'), recipes.replace(/\/app/g, `/app2-${transport}`));
    ok(await runAction(inputs({ mode: 'backup', transport, sudo }), { workspace: ws }));
    const canaryBefore = treePicture(canary, { modes: true });
    rootSh(`rm -rf '${app}'`);
    ok(await runAction(inputs({ mode: 'restore', transport, sudo }), { workspace: ws }));
    assert.ok(lstatSync(join(app, 'www')).isSymbolicLink(), 'the link is back');
    assert.equal(readlinkSync(join(app, 'www')), canary, 'pointing where it did');
    assert.deepEqual(treePicture(canary, { modes: true }), canaryBefore, 'the canary is untouched');
    rootSh(`rm -rf '${app}'`);
  });
}
