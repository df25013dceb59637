import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as cache from '@actions/cache';
import { generateIdentity, identityToRecipient } from 'age-encryption';
import { isAgeFile } from '../../src/store/age.js';
import { sealOf, sealSecret, sha256File } from '../../src/store/cache-seal.js';
import { packSnapshot, withProcessEnv } from '../../src/store/snapshot.js';
import { applyEnv, startActionsServices, type ActionsServices } from '../helpers/actions-services.js';
import { NODES, runAction } from '../helpers/run-action.js';
import { ok } from '../helpers/outcome.js';
import { treePicture } from '../helpers/tree.js';
import { rootSh, sshInputs, startSshd, type Sshd } from '../helpers/sshd.js';
import { testTempDir } from '../helpers/temp.js';

// Stores and encryption at rest through the committed bundle, run as the runner runs it, against a real
// sshd and a real git remote (a bare repository).

let server: Sshd;
let srv: string;
const DOMAIN = 'stores.example';

before(async () => {
  server = await startSshd();
  srv = server.users.shell.scratch;
  rootSh(
    `cd / && su -s /bin/sh rf-shell -c 'sh -s'`,
    `mkdir -p '${srv}/site/keys' && printf 'db' > '${srv}/site/db.sqlite' && printf 'secret key' > '${srv}/site/keys/k' && chmod 600 '${srv}/site/keys/k' && ln -s keys/k '${srv}/site/current'`,
  );
});
after(async () => {
  await server?.stop();
});

const RECIPE = `version: 1\nrecipes:\n  Site:\n    remote_files:\n      "\${install_dir}/site": site\n`;

function inputs(extra: Record<string, string> = {}): Record<string, string> {
  // One server for every store and workspace, each salvaging and restoring it in turn: the server rule
  // (rerun-safety.test.ts) would rightly see "restored from another salvage". Not what this suite tests.
  return sshInputs(server, { domain: DOMAIN, installDir: srv }, { mode: 'backup', 'new-server': 'allow', ...extra });
}

const git = (cwd: string, ...args: string[]) => execFileSync('git', ['-C', cwd, ...args], { encoding: 'utf8' }).trim();

/** A bare origin with the recipe committed, and a clone of it as the workspace (as actions/checkout leaves it). */
function repository(): { origin: string; clone: () => string } {
  const base = testTempDir('rf-store-');
  const origin = join(base, 'origin.git');
  execFileSync('git', ['init', '-q', '--bare', '-b', 'main', origin]);
  let n = 0;
  const clone = () => {
    const dir = join(base, `clone-${n++}`);
    execFileSync('git', ['clone', '-q', origin, dir], { stdio: 'ignore' });
    return dir;
  };
  const first = clone();
  writeFileSync(join(first, 'remote-files.yml'), RECIPE);
  git(first, 'checkout', '-q', '-b', 'main');
  git(first, 'add', '.');
  git(first, '-c', 'user.name=t', '-c', 'user.email=t@t', 'commit', '-q', '-m', 'recipes');
  git(first, 'push', '-q', 'origin', 'main');
  return { origin, clone };
}

describe('store: commit (the default) through dist/', () => {
  test('backup commits and pushes the domain folder; a fresh checkout restores from it', async () => {
    const { origin, clone } = repository();
    const ws = clone();
    const r = ok(await runAction(inputs(), { workspace: ws }));
    assert.match(r.outputs['commit-sha']!, /^[0-9a-f]{40}$/);
    assert.equal(r.outputs.pushed, 'true');
    assert.equal(git(origin, 'rev-parse', 'main'), r.outputs['commit-sha']);
    assert.match(
      git(origin, 'log', '-1', '--format=%s%n%an', 'main'),
      /stores\.example.*\[skip ci\]\ngithub-actions\[bot\]/,
    );
    assert.match(git(origin, 'ls-tree', '-r', '--name-only', 'main'), /data\/stores\.example\/site\/db\.sqlite/);

    const again = ok(await runAction(inputs(), { workspace: ws }));
    assert.equal(again.outputs['commit-sha'], '', 'nothing changed: no commit');

    rootSh(`rm -rf '${srv}/site'`);
    const fresh = clone();
    ok(await runAction(inputs({ mode: 'restore' }), { workspace: fresh }));
    assert.equal(readFileSync(join(srv, 'site/keys/k'), 'utf8'), 'secret key');
    assert.equal(
      statSync(join(srv, 'site/keys/k')).mode & 0o777,
      0o600,
      'the mode git cannot keep comes from the manifest',
    );
  });

  test('a failed backup commits nothing; a file over 100 MB is refused naming it', async () => {
    const { origin, clone } = repository();
    const ws = clone();
    const tip = git(origin, 'rev-parse', 'main');
    rootSh(`mkdir -p '${srv}/locked' && chown rf-other: '${srv}/locked' && chmod 700 '${srv}/locked'`);
    writeFileSync(join(ws, 'remote-files.yml'), RECIPE + `      "\${install_dir}/locked": locked\n`);
    const denied = await runAction(inputs(), { workspace: ws });
    assert.equal(denied.code, 1);
    assert.match(denied.summary, /Nothing was stored \(commit\)/);
    assert.equal(git(origin, 'rev-parse', 'main'), tip, 'nothing pushed');

    rootSh(`cd / && su -s /bin/sh rf-shell -c 'truncate -s 101M ${srv}/site/huge.bin'`);
    writeFileSync(join(ws, 'remote-files.yml'), RECIPE);
    const big = await runAction(inputs(), { workspace: ws });
    rootSh(`rm -f '${srv}/site/huge.bin'`);
    assert.equal(big.code, 1, big.stdout);
    assert.match(big.stdout, /::error::.*data\/stores\.example\/site\/huge\.bin.*(store: artifact|exclude)/);
    assert.equal(git(origin, 'rev-parse', 'main'), tip, 'nothing pushed');
  });
});

describe('encryption at rest (age) through dist/', () => {
  for (const node of NODES) {
    test(`encrypted round trip, no churn, wrong or missing identity (${node.name})`, async () => {
      const identity = await generateIdentity();
      const recipient = await identityToRecipient(identity);
      const other = await generateIdentity();
      const ws = testTempDir('rf-age-');
      writeFileSync(join(ws, 'remote-files.yml'), RECIPE);
      const stored = join(ws, 'data', DOMAIN, 'site', 'keys', 'k');
      const run = (extra: Record<string, string>) =>
        runAction(inputs({ store: 'none', ...extra }), { workspace: ws, node: node.path });

      ok(await run({ 'age-recipients': `# ops team\n${recipient}\n` }));
      assert.ok(isAgeFile(stored), 'stored content is ciphertext');
      assert.ok(!readFileSync(stored).includes('secret key'));
      assert.match(
        readFileSync(join(ws, 'data', DOMAIN, '.remote-files', 'manifest.json'), 'utf8'),
        /"encryption": "age:/,
      );
      const before = statSync(stored).mtimeMs;
      const again = ok(await run({ 'age-recipients': recipient }));
      assert.equal(again.outputs.bytes, '0');
      assert.equal(statSync(stored).mtimeMs, before, 'unchanged files are not re-encrypted');

      rootSh(`rm -rf '${srv}/site'`);
      const missing = await run({ mode: 'restore' });
      assert.equal(missing.code, 1);
      assert.match(missing.stdout, /::error::.*encrypted \(age\); set the `age-identity` input/);
      const wrong = await run({ mode: 'restore', 'age-identity': other });
      assert.equal(wrong.code, 1);
      assert.match(wrong.stdout, /::error::.*age-identity/);
      assert.ok(!wrong.stdout.replace(/^::add-mask::.*$/gm, '').includes(other), 'the identity never reaches the log');
      assert.ok(!existsSync(join(srv, 'site/keys/k')), 'nothing restored without the right identity');

      ok(await run({ mode: 'restore', 'age-identity': identity }));
      assert.equal(readFileSync(join(srv, 'site/keys/k'), 'utf8'), 'secret key');
      assert.equal(readFileSync(join(srv, 'site/db.sqlite'), 'utf8'), 'db');
      rootSh(`cd / && su -s /bin/sh rf-shell -c 'sh -s'`, `mkdir -p '${srv}/site'`);
    });
  }
});

describe('mode: verify through dist/', () => {
  test('no drift, then each kind of drift; fail-on-drift fails; neither side changes', async () => {
    const ws = testTempDir('rf-verify-');
    writeFileSync(join(ws, 'remote-files.yml'), RECIPE);
    ok(await runAction(inputs({ store: 'none' }), { workspace: ws }));
    const same = ok(
      await runAction(inputs({ store: 'none', mode: 'verify', 'fail-on-drift': 'true' }), { workspace: ws }),
    );
    assert.equal(same.outputs.drift, 'false');

    rootSh(
      `cd / && su -s /bin/sh rf-shell -c 'sh -s'`,
      `printf new > '${srv}/site/added.txt' && printf 'db2' > '${srv}/site/db.sqlite' && mv '${srv}/site/current' '${srv}/site/current.off'`,
    );
    const manifestBefore = readFileSync(join(ws, 'data', DOMAIN, '.remote-files', 'manifest.json'), 'utf8');
    const drift = ok(await runAction(inputs({ store: 'none', mode: 'verify' }), { workspace: ws }));
    assert.equal(drift.outputs.drift, 'true');
    assert.match(drift.outputs.added!, /added\.txt/);
    assert.match(drift.outputs.removed!, /site\/current"/);
    assert.match(drift.outputs['changed-files']!, /db\.sqlite/);
    assert.match(drift.summary, /added\.txt/);
    const failing = await runAction(inputs({ store: 'none', mode: 'verify', 'fail-on-drift': 'true' }), {
      workspace: ws,
    });
    assert.equal(failing.code, 1);
    assert.match(failing.stdout, /::error::.*drift/i);
    assert.equal(
      readFileSync(join(ws, 'data', DOMAIN, '.remote-files', 'manifest.json'), 'utf8'),
      manifestBefore,
      'the stored copy is untouched',
    );
    assert.ok(existsSync(join(srv, 'site/added.txt')), 'the server is untouched');
    rootSh(
      `cd / && su -s /bin/sh rf-shell -c 'sh -s'`,
      `rm '${srv}/site/added.txt' && printf db > '${srv}/site/db.sqlite' && mv '${srv}/site/current.off' '${srv}/site/current'`,
    );
  });
});

describe('store: artifact and cache through dist/ (real clients, Azurite and a results-service double)', () => {
  let svc: ActionsServices;
  before(async () => {
    svc = await startActionsServices({ firstRunId: 9100 });
  });
  after(async () => {
    await svc?.stop();
  });

  for (const store of ['artifact', 'cache'] as const) {
    test(`${store}: backup in one run, restore in a later run on a fresh workspace`, async () => {
      const ws = testTempDir(`rf-${store}-`);
      writeFileSync(join(ws, 'remote-files.yml'), RECIPE);
      const saved = ok(
        await runAction(inputs({ store, 'github-token': svc.githubToken }), {
          workspace: ws,
          env: svc.runEnv(store === 'artifact' ? 9101 : 9201),
        }),
      );
      if (store === 'artifact') assert.match(saved.outputs['artifact-id']!, /^\d+$/);
      else assert.equal(saved.outputs['cache-key'], 'remote-files-stores.example-9201-1');

      rootSh(`rm -rf '${srv}/site'`);
      const later = testTempDir(`rf-${store}-later-`);
      writeFileSync(join(later, 'remote-files.yml'), RECIPE);
      const restored = ok(
        await runAction(inputs({ store, mode: 'restore', 'github-token': svc.githubToken }), {
          workspace: later,
          env: svc.runEnv(store === 'artifact' ? 9102 : 9202),
        }),
      );
      if (store === 'cache') {
        assert.equal(restored.outputs['cache-hit'], 'false', 'a prefix hit, not the exact key of this run');
        assert.equal(restored.outputs['cache-key'], 'remote-files-stores.example-9201-1');
      } else assert.equal(restored.outputs['artifact-id'], saved.outputs['artifact-id']);
      assert.equal(readFileSync(join(srv, 'site/keys/k'), 'utf8'), 'secret key');
      assert.equal(statSync(join(srv, 'site/keys/k')).mode & 0o777, 0o600);
      assert.equal(readFileSync(join(srv, 'site/db.sqlite'), 'utf8'), 'db');
    });
  }

  // Run ids grow with time, as GitHub's do: these come before the poisoning test's (94xx).
  for (const [store, run] of [
    ['artifact', 9351],
    ['cache', 9361],
  ] as const) {
    test(`${store}: a data folder that is a link (data -> elsewhere) gets nothing unpacked through it (issue #23)`, async () => {
      const ws = testTempDir(`rf-linked-${store}-`);
      writeFileSync(join(ws, 'remote-files.yml'), RECIPE);
      ok(await runAction(inputs({ store, 'github-token': svc.githubToken }), { workspace: ws, env: svc.runEnv(run) }));
      const later = testTempDir(`rf-linked-${store}-later-`);
      writeFileSync(join(later, 'remote-files.yml'), RECIPE);
      const elsewhere = testTempDir(`rf-linked-${store}-elsewhere-`);
      mkdirSync(join(elsewhere, DOMAIN));
      writeFileSync(join(elsewhere, DOMAIN, 'not-ours.txt'), 'someone else’s');
      writeFileSync(join(elsewhere, 'keep.txt'), 'keep');
      symlinkSync(elsewhere, join(later, 'data'));
      const before = treePicture(elsewhere);
      const r = await runAction(inputs({ store, mode: 'restore', 'github-token': svc.githubToken }), {
        workspace: later,
        env: svc.runEnv(run + 1),
      });
      assert.equal(r.code, 1, r.stdout);
      assert.match(r.stdout, /::error::the data folder's data is a symbolic link/);
      assert.deepEqual(treePicture(elsewhere), before, 'nothing was written, renamed or deleted through the link');
    });
  }

  test('artifact listing flood: 1,000 newer artifacts of the same name from other runs do not hide the genuine one (issue #23)', async () => {
    const name = 'rf-flood-test';
    // A workflow of its own: the other tests' runs stay out of its listing.
    const FLOOD_WORKFLOW = '.github/workflows/flood.yml';
    const ws = testTempDir('rf-flood-');
    writeFileSync(join(ws, 'remote-files.yml'), RECIPE);
    const saved = ok(
      await runAction(inputs({ store: 'artifact', 'artifact-name': name, 'github-token': svc.githubToken }), {
        workspace: ws,
        env: svc.runEnv(9801, { workflow: FLOOD_WORKFLOW }),
      }),
    );
    // Newer, all of them: other workflows' runs on main (a pull_request_target job's, say), and fork
    // pull requests running this very workflow with a head branch named main.
    for (let i = 0; i < 1000; i++) {
      const run = 9802 + i;
      if (i % 10 < 7)
        svc.plantArtifact(run, { workflow: '.github/workflows/other.yml', event: 'pull_request_target' }, name);
      else
        svc.plantArtifact(
          run,
          { workflow: FLOOD_WORKFLOW, event: 'pull_request', branch: 'main', fork: `mallory${i}/remote-files-fixture` },
          name,
        );
    }
    rootSh(`rm -rf '${srv}/site'`);
    const later = testTempDir('rf-flood-restore-');
    writeFileSync(join(later, 'remote-files.yml'), RECIPE);
    const restored = ok(
      await runAction(
        inputs({ store: 'artifact', mode: 'restore', 'artifact-name': name, 'github-token': svc.githubToken }),
        { workspace: later, env: svc.runEnv(12000, { workflow: FLOOD_WORKFLOW }) },
      ),
    );
    assert.equal(restored.outputs['artifact-id'], saved.outputs['artifact-id'], 'the genuine artifact was restored');
    assert.equal(readFileSync(join(srv, 'site/db.sqlite'), 'utf8'), 'db');
  });

  test("artifact poisoning: a fork's newer artifact of the same name is never restored", async () => {
    const asShell = (script: string) => rootSh(`cd / && su -s /bin/sh rf-shell -c 'sh -s'`, script);
    const ws = testTempDir('rf-poison-own-');
    writeFileSync(join(ws, 'remote-files.yml'), RECIPE);
    ok(
      await runAction(inputs({ store: 'artifact', 'github-token': svc.githubToken }), {
        workspace: ws,
        env: svc.runEnv(9401),
      }),
    );
    // A fork's pull request runs the fork's copy of the workflow in this repository and uploads an
    // artifact of the same name, holding whatever it likes (here: what its server says).
    asShell(`printf poison > '${srv}/site/db.sqlite'`);
    const forkWs = testTempDir('rf-poison-fork-');
    writeFileSync(join(forkWs, 'remote-files.yml'), RECIPE);
    ok(
      await runAction(inputs({ store: 'artifact', 'github-token': svc.githubToken }), {
        workspace: forkWs,
        env: svc.runEnv(9402, { event: 'pull_request', branch: 'main', fork: 'mallory/remote-files-fixture' }),
      }),
    );

    rootSh(`rm -rf '${srv}/site'`);
    const later = testTempDir('rf-poison-restore-');
    writeFileSync(join(later, 'remote-files.yml'), RECIPE);
    const restored = ok(
      await runAction(inputs({ store: 'artifact', mode: 'restore', 'github-token': svc.githubToken }), {
        workspace: later,
        env: svc.runEnv(9403),
      }),
    );
    assert.equal(
      readFileSync(join(srv, 'site/db.sqlite'), 'utf8'),
      'db',
      "this repository's own salvage, not the fork's",
    );
    assert.match(restored.stdout, /::warning::.*skipped 1 .*from a fork's or a pull_request_target run \(run 9402\)/);
  });

  test('child processes (the cache store runs tar and zstd) see no input: not the key, not any INPUT_*', async () => {
    const bin = testTempDir('rf-env-bin-');
    const dump = join(bin, 'tar.env');
    const realTar = execFileSync('sh', ['-c', 'command -v tar'], { encoding: 'utf8' }).trim();
    writeFileSync(join(bin, 'tar'), `#!/bin/sh\nenv >> '${dump}'\nexec '${realTar}' "$@"\n`, { mode: 0o755 });
    const ws = testTempDir('rf-env-');
    writeFileSync(join(ws, 'remote-files.yml'), RECIPE);
    ok(
      await runAction(inputs({ store: 'cache' }), {
        workspace: ws,
        env: { ...svc.runEnv(9501), PATH: `${bin}:${process.env.PATH ?? ''}` },
      }),
    );
    const seen = readFileSync(dump, 'utf8');
    assert.match(seen, /^PATH=/m, 'the wrapper ran');
    assert.doesNotMatch(seen, /^INPUT_/m);
    assert.ok(!seen.includes('PRIVATE KEY'), 'the key never reaches a child process');
  });

  // The server rule (issue #21) in the stores whose "newest" is the baseline. The marker a backup leaves
  // is one file per domain in the login's real home, which every sshd the tests start shares: a domain of
  // this run's own keeps another run of this file out of it (and its artifact name and cache keys apart).
  for (const [store, run] of [
    ['artifact', 9601],
    ['cache', 9701],
  ] as const) {
    test(`${store}: a rebuilt server's backup without \`new-server: allow\` is refused, nothing stored; a restore puts the salvage back`, async () => {
      const asShell = (script: string) => rootSh(`cd / && su -s /bin/sh rf-shell -c 'sh -s'`, script);
      const domain = `rebuilt-${store}-${randomBytes(3).toString('hex')}.example`;
      const id = store === 'artifact' ? 'artifact-id' : 'cache-key';
      const entries = () => (store === 'artifact' ? svc.artifacts().length : svc.caches().length);
      const workspace = () => {
        const ws = testTempDir(`rf-${store}-rebuilt-`);
        writeFileSync(join(ws, 'remote-files.yml'), RECIPE);
        return ws;
      };
      const saved = ok(
        await runAction(inputs({ store, domain, 'github-token': svc.githubToken }), {
          workspace: workspace(),
          env: svc.runEnv(run),
        }),
      );
      const salvage = treePicture(join(srv, 'site'));

      // The rebuild: a fresh install's database, and the login's home without the marker remote-files left.
      asShell(`rm -f "$HOME/.local/state/remote-files/${domain}" && printf 'fresh' > '${srv}/site/db.sqlite'`);
      const before = entries();
      const refused = await runAction(
        inputs({ store, domain, 'new-server': 'fail', 'github-token': svc.githubToken }),
        {
          workspace: workspace(),
          env: svc.runEnv(run + 1),
        },
      );
      assert.equal(refused.code, 1, refused.stdout);
      const errors = refused.stdout.split('\n').filter((l) => l.startsWith('::error::'));
      assert.equal(errors.length, 1, refused.stdout);
      assert.match(
        errors[0]!,
        /this is not the server it came from: the marker remote-files left on it at the last backup is gone/,
      );
      assert.equal(entries(), before, `no ${store} was stored`);
      // The only artifact-id / cache-key output is the one the backup loaded as its baseline: the first salvage's.
      assert.equal(refused.outputs[id], saved.outputs[id]);
      assert.equal(readFileSync(join(srv, 'site/db.sqlite'), 'utf8'), 'fresh', 'the server is untouched');

      const restored = ok(
        await runAction(inputs({ store, domain, mode: 'restore', 'github-token': svc.githubToken }), {
          workspace: workspace(),
          env: svc.runEnv(run + 2),
        }),
      );
      assert.equal(restored.outputs[id], saved.outputs[id]);
      assert.deepEqual(treePicture(join(srv, 'site')), salvage, 'the first salvage is back');
    });
  }

  test("cache poisoning: a newer entry under the domain's prefix that this workflow did not seal is refused, the server untouched", async () => {
    const ws = testTempDir('rf-cache-poison-');
    writeFileSync(join(ws, 'remote-files.yml'), RECIPE);
    const saved = ok(await runAction(inputs({ store: 'cache' }), { workspace: ws, env: svc.runEnv(9751) }));
    // Another job of the repository (no login credential) saves an entry of its own under the prefix:
    // the genuine snapshot's layout with its own database, sealed with a key that is not the login's.
    const evil = join(svc.scratch, 'evil');
    cpSync(join(ws, 'data', DOMAIN), evil, { recursive: true });
    writeFileSync(join(evil, 'site', 'db.sqlite'), 'pw');
    const tar = join(svc.scratch, 'evil.tar');
    await packSnapshot(evil, tar);
    const forged = sealOf(
      sealSecret('-----BEGIN OPENSSH PRIVATE KEY-----\nanother key\n'),
      DOMAIN,
      await sha256File(tar),
    );
    const key = `remote-files-${DOMAIN}-9752-1`;
    await plantCacheEntry(9752, key, { 'remote-files.snapshot.tar': readFileSync(tar), 'remote-files.seal': forged });

    // The server drifted: any restore would write its database (the foreign entry's `pw` included).
    rootSh(`cd / && su -s /bin/sh rf-shell -c 'sh -s'`, `printf 'drifted' > '${srv}/site/db.sqlite'`);
    const server = treePicture(join(srv, 'site'));
    const later = testTempDir('rf-cache-poison-restore-');
    writeFileSync(join(later, 'remote-files.yml'), RECIPE);
    const r = await runAction(inputs({ store: 'cache', mode: 'restore' }), { workspace: later, env: svc.runEnv(9753) });
    assert.equal(r.code, 1, r.stdout);
    assert.match(
      r.stdout,
      new RegExp(
        `::error::.*cache entry "${key.replace(/\./g, '\\.')}" was not written by this workflow for stores\\.example`,
      ),
    );
    assert.deepEqual(treePicture(join(srv, 'site')), server, 'nothing was restored');
    assert.ok(!existsSync(join(later, 'data', DOMAIN)), 'nothing was unpacked into the workspace');

    // A genuine backup after it is what a restore takes (and what the tests after this one find newest).
    rootSh(`cd / && su -s /bin/sh rf-shell -c 'sh -s'`, `printf 'db' > '${srv}/site/db.sqlite'`);
    const again = ok(await runAction(inputs({ store: 'cache' }), { workspace: ws, env: svc.runEnv(9754) }));
    assert.notEqual(again.outputs['cache-key'], saved.outputs['cache-key']);
    const after = testTempDir('rf-cache-poison-after-');
    writeFileSync(join(after, 'remote-files.yml'), RECIPE);
    const fine = ok(
      await runAction(inputs({ store: 'cache', mode: 'restore' }), { workspace: after, env: svc.runEnv(9755) }),
    );
    assert.equal(fine.outputs['cache-key'], `remote-files-${DOMAIN}-9754-1`);
    assert.equal(readFileSync(join(srv, 'site/db.sqlite'), 'utf8'), 'db');
  });

  /**
   * An entry saved as another job of the repository could save it: the real toolkit's saveCache under
   * `key`, from a folder holding `files` (as store-cache.test.ts plants them).
   */
  async function plantCacheEntry(runId: number, key: string, files: Record<string, Buffer | string>): Promise<void> {
    const dir = mkdtempSync(join(svc.scratch, 'foreign-'));
    for (const [name, content] of Object.entries(files)) writeFileSync(join(dir, name), content);
    const restoreEnv = applyEnv(svc.runEnv(runId));
    try {
      const id = await withProcessEnv({ GITHUB_WORKSPACE: dir }, dir, () => cache.saveCache(Object.keys(files), key));
      assert.ok(id > 0, `the foreign entry ${key} was saved`);
    } finally {
      restoreEnv();
    }
  }

  test('restore with nothing stored fails with one clear message', async () => {
    const ws = testTempDir('rf-nothing-');
    writeFileSync(join(ws, 'remote-files.yml'), RECIPE.replace('Site', 'Other'));
    const r = await runAction(inputs({ store: 'cache', mode: 'restore', domain: 'never.example' }), {
      workspace: ws,
      env: svc.runEnv(9300),
    });
    assert.equal(r.code, 1);
    assert.match(r.stdout, /::error::no stored copy of never\.example in store cache/);
  });
});
