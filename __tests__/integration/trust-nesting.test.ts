import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { recipeWorkspace, runAction } from '../helpers/run-action.js';
import { manifestRecord } from '../helpers/manifest-record.js';
import { testTempDir } from '../helpers/temp.js';
import { treePicture } from '../helpers/tree.js';
import { ok } from '../helpers/outcome.js';
import { listingRecord, rootSh, sshInputs, startWrappedSshd, type Sshd } from '../helpers/sshd.js';
import { assertNoRecordBelowLink } from '../../src/transfer/nesting.js';
import { LocalTree } from '../../src/transfer/local/tree.js';
import { emptyManifest, type ManifestFile } from '../../src/transfer/manifest/manifest.js';

// Entries whose local paths nest (issue #13, point 2), end to end through the bundle against a real
// sshd on 127.0.0.1. The honest case is a Capistrano layout: `site/shared` a link to a folder outside
// the site, one entry for the site and one for `site/shared/uploads`, reached through the link. Every
// file of both must be stored and come back. A server whose listings disagree about a path both
// entries reach (a link for one, a folder for the other) is refused before anything is written. The
// shell account's commands go through a wrapper that swaps the listing for a crafted one on demand.

const DOMAIN = 'example.com';
let sshd: Sshd;
/** The wrapper's folder: `current.list`, when present, replaces the output of every listing. */
let work: string;
let srv: string;

before(async () => {
  ({ sshd, work } = await startWrappedSshd('nesting', [
    // The SFTP subsystem arrives here too (ForceCommand): the server's own sftp-server answers it.
    'if [[ "$SSH_ORIGINAL_COMMAND" == sftp || "$SSH_ORIGINAL_COMMAND" == internal-sftp ]]; then exec /usr/lib/openssh/sftp-server; fi',
  ]));
  srv = sshd.users.shell.scratch;
});

after(async () => {
  await sshd?.stop();
});

function workspace(recipes: string): string {
  return recipeWorkspace('rf-nesting-', recipes);
}

function inputs(extra: Record<string, string> = {}): Record<string, string> {
  return sshInputs(
    sshd,
    { domain: DOMAIN, installDir: srv, pin: 'host-fingerprint' },
    { mode: 'backup', timeout: '20', retries: '0', store: 'none', ...extra },
  );
}

const sha = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');

describe('the honest Capistrano layout: a link above a nested entry', () => {
  const recipes = [
    '  App:',
    '    remote_files:',
    '      "${install_dir}/cap/site": site',
    '  Uploads:',
    '    remote_files:',
    '      "${install_dir}/cap/site/shared/uploads": site/shared/uploads',
    '',
  ].join('\n');
  /** The files a restore must bring back, server paths relative to cap/site (read through the link). */
  const FILES = [
    'index.html',
    'config/app.yml',
    'shared/uploads/a.jpg',
    'shared/uploads/2024/b.bin',
    'shared/uploads/2024/c.txt',
  ];

  for (const transport of ['tar', 'sftp']) {
    test(`${transport}: both entries are stored, a re-run changes nothing, a restore to a wiped server brings every file back byte for byte`, async () => {
      const cap = join(srv, 'cap');
      rootSh(`rm -rf '${cap}'`);
      mkdirSync(join(cap, 'site', 'config'), { recursive: true });
      mkdirSync(join(cap, 'shared_real', 'uploads', '2024'), { recursive: true });
      writeFileSync(join(cap, 'site', 'index.html'), '<h1>shop</h1>\n');
      writeFileSync(join(cap, 'site', 'config', 'app.yml'), 'db: shop\n');
      writeFileSync(join(cap, 'shared_real', 'uploads', 'a.jpg'), randomBytes(70_000));
      writeFileSync(join(cap, 'shared_real', 'uploads', '2024', 'b.bin'), randomBytes(2_000_000));
      writeFileSync(join(cap, 'shared_real', 'uploads', '2024', 'c.txt'), 'upload\n');
      writeFileSync(join(cap, 'shared_real', 'log.txt'), 'not in any entry\n');
      symlinkSync(join(cap, 'shared_real'), join(cap, 'site', 'shared'));
      rootSh(`chown -R rf-shell: '${cap}'`);
      const original = new Map(FILES.map((f) => [f, sha(join(cap, 'site', f))]));

      const ws = workspace(recipes);
      const data = join(ws, 'data', DOMAIN);
      const r = ok(await runAction(inputs({ transport }), { workspace: ws }));
      assert.equal(r.outputs.changed, 'true');
      // Every file of both entries is in the data folder, below a real folder (never the link).
      assert.ok(lstatSync(join(data, 'site', 'shared')).isDirectory(), 'site/shared is a folder in the data folder');
      for (const [f, hash] of original) assert.equal(sha(join(data, 'site', f)), hash, `stored ${f}`);
      const manifest = JSON.parse(readFileSync(join(data, '.remote-files', 'manifest.json'), 'utf8')) as {
        files: Record<string, ManifestFile>;
      };
      assert.equal(manifest.files['site/shared']?.type, 'symlink', 'the link is recorded');
      assert.equal(manifest.files['site/shared']?.target, join(cap, 'shared_real'));
      for (const f of FILES) assert.equal(manifest.files[`site/${f}`]?.type, 'file', `recorded site/${f}`);
      for (const path of Object.keys(manifest.files))
        assert.ok(
          existsSync(join(data, path)) || manifest.files[path]!.type === 'symlink',
          `${path} is recorded and stored`,
        );

      // A second run: nothing moves, nothing is deleted (the outer entry leaves the nested one's files alone).
      const before2 = treePicture(data);
      const again = ok(await runAction(inputs({ transport }), { workspace: ws }));
      assert.equal(again.outputs.changed, 'false', again.stdout);
      assert.equal(again.outputs.files, '0');
      assert.deepEqual(treePicture(data), before2);

      // The server rebuilt from nothing: the site and the shared folder both gone.
      rootSh(`rm -rf '${cap}' && mkdir '${cap}' && chown rf-shell: '${cap}'`);
      ok(await runAction(inputs({ transport, mode: 'restore' }), { workspace: ws }));
      for (const [f, hash] of original) assert.equal(sha(join(cap, 'site', f)), hash, `restored ${f}`);
      assert.ok(
        !lstatSync(join(cap, 'site', 'shared')).isSymbolicLink(),
        'the link is not recreated over the nested entry (its target is gone)',
      );

      // Restored onto a deployed server (the link in place, its folder empty): the files go through the link.
      rootSh(
        `rm -rf '${cap}' && mkdir -p '${cap}/site' '${cap}/shared_real' && ln -s '${cap}/shared_real' '${cap}/site/shared' && chown -hR rf-shell: '${cap}'`,
      );
      ok(await runAction(inputs({ transport, mode: 'restore' }), { workspace: ws }));
      assert.ok(lstatSync(join(cap, 'site', 'shared')).isSymbolicLink(), 'the deployed link stays');
      for (const [f, hash] of original) assert.equal(sha(join(cap, 'site', f)), hash, `restored ${f} through the link`);
      assert.ok(existsSync(join(cap, 'shared_real', 'uploads', '2024', 'b.bin')), 'the uploads are in the link target');
      rootSh(`rm -rf '${cap}'`);
    });
  }
});

test('a data folder left with the link in place of the nested folder (by an older version) is made whole, nothing read through the link', async () => {
  const cap = join(srv, 'cap2');
  rootSh(`rm -rf '${cap}'`);
  mkdirSync(join(cap, 'site'), { recursive: true });
  mkdirSync(join(cap, 'shared_real', 'uploads'), { recursive: true });
  writeFileSync(join(cap, 'site', 'index.html'), 'home\n');
  writeFileSync(join(cap, 'shared_real', 'uploads', 'a.txt'), 'the real upload\n');
  symlinkSync(join(cap, 'shared_real'), join(cap, 'site', 'shared'));
  rootSh(`chown -hR rf-shell: '${cap}'`);
  const ws = workspace(
    '  App:\n    remote_files:\n      "${install_dir}/cap2/site": site\n  Uploads:\n    remote_files:\n      "${install_dir}/cap2/site/shared/uploads": site/shared/uploads\n',
  );
  const data = join(ws, 'data', DOMAIN);
  ok(await runAction(inputs({ transport: 'tar' }), { workspace: ws }));
  // What the old version left: the link stored over the folder, pointing at a decoy of the same sizes.
  const decoy = testTempDir('rf-nesting-decoy-');
  mkdirSync(join(decoy, 'uploads'));
  writeFileSync(join(decoy, 'uploads', 'a.txt'), 'a decoy, 16 byte');
  rmSync(join(data, 'site', 'shared'), { recursive: true });
  symlinkSync(decoy, join(data, 'site', 'shared'));
  const decoyBefore = treePicture(decoy);
  ok(await runAction(inputs({ transport: 'tar' }), { workspace: ws }));
  assert.ok(lstatSync(join(data, 'site', 'shared')).isDirectory(), 'the link is replaced by a real folder');
  assert.equal(readFileSync(join(data, 'site', 'shared', 'uploads', 'a.txt'), 'utf8'), 'the real upload\n');
  assert.deepEqual(treePicture(decoy), decoyBefore, 'nothing below the link was touched');
  rootSh(`rm -rf '${cap}'`);
});

describe('listings that disagree about a path two nested entries reach are refused, nothing written', () => {
  const rec = listingRecord;
  const entry = (...records: string[]) => `E\0${records.join('')}`;
  const cases: Array<{ name: string; recipes: string; list: string; expect: RegExp }> = [
    {
      name: 'a link to /proc/self for the outer entry, a folder for the nested one',
      recipes:
        '  App:\n    remote_files:\n      "${install_dir}/site": site\n  Shared:\n    remote_files:\n      "${install_dir}/site/shared": site/shared\n',
      list:
        entry(rec('d', ''), rec('f', 'index.html'), rec('l', 'shared', '/proc/self')) +
        entry(rec('d', ''), rec('f', 'environ')) +
        'N\0',
      expect:
        /"site\/shared": a symlink for recipe App \(.*\/site => site\), a folder for recipe Shared \(.*\/site\/shared => site\/shared\)/,
    },
    {
      name: 'a folder for the outer entry, a link for the nested one',
      recipes:
        '  Shared:\n    remote_files:\n      "${install_dir}/site/shared": site/shared\n  App:\n    remote_files:\n      "${install_dir}/site": site\n',
      list: entry(rec('l', '', '/etc')) + entry(rec('d', ''), rec('d', 'shared'), rec('f', 'shared/passwd')) + 'N\0',
      expect:
        /"site\/shared": a folder for recipe App \(.*\/site => site\), a symlink for recipe Shared \(.*\/site\/shared => site\/shared\)/,
    },
    {
      name: 'a file where the nested entry needs a folder',
      recipes:
        '  App:\n    remote_files:\n      "${install_dir}/site": site\n  Uploads:\n    remote_files:\n      "${install_dir}/site/shared/uploads": site/shared/uploads\n',
      list: entry(rec('d', ''), rec('f', 'shared')) + entry(rec('d', ''), rec('f', 'a.jpg')) + 'N\0',
      expect:
        /"site\/shared": a file for recipe App \(.*\/site => site\), a folder holding its files for recipe Uploads \(.*\/site\/shared\/uploads => site\/shared\/uploads\)/,
    },
  ];
  for (const c of cases) {
    test(`refuses ${c.name}`, async () => {
      writeFileSync(join(work, 'current.list'), c.list);
      try {
        const ws = workspace(c.recipes);
        const before = treePicture(ws);
        const r = await runAction(inputs({ transport: 'tar' }), { workspace: ws });
        assert.equal(r.code, 1, `exit ${r.code}\n${r.stdout}\n${r.stderr}`);
        const errors = r.stdout.split('\n').filter((l) => l.startsWith('::error::'));
        assert.equal(errors.length, 1, `one ::error:: line\n${r.stdout}`);
        assert.match(errors[0]!, c.expect);
        assert.match(errors[0]!, /Nothing was written/);
        assert.doesNotMatch(r.stdout + r.stderr, /\n\s+at |undefined/, 'no stack, no "undefined"');
        // Nothing in the data folder (no file, no link, no manifest); the rest of the workspace as it was.
        assert.deepEqual(
          [...treePicture(join(ws, 'data')).keys()].filter((p) => p !== DOMAIN),
          [],
          'nothing written to the data folder',
        );
        assert.deepEqual(new Map([...treePicture(ws)].filter(([p]) => !p.startsWith('data'))), before);
      } finally {
        rmSync(join(work, 'current.list'), { force: true });
      }
    });
  }
});

describe('the invariant checked before the manifest is written', () => {
  const record = (type: ManifestFile['type'], target?: string) => manifestRecord(type, target ? { target } : {});

  test('a recorded file below a symlink in the data folder fails the run; below a real folder it passes', () => {
    const root = testTempDir('rf-nesting-tree-');
    mkdirSync(join(root, 'site', 'shared', 'uploads'), { recursive: true });
    writeFileSync(join(root, 'site', 'shared', 'uploads', 'a.jpg'), '');
    const m = emptyManifest(DOMAIN);
    m.files = {
      site: record('dir'),
      'site/shared': record('symlink', '/srv/shared'),
      'site/shared/uploads': record('dir'),
      'site/shared/uploads/a.jpg': record('file'),
    };
    // A link recorded where the data folder has a real folder (the shadowed link) is fine.
    assertNoRecordBelowLink(new LocalTree(root), m);
    // The link on disk, the files' records kept: refused, naming the file and the link.
    rmSync(join(root, 'site', 'shared'), { recursive: true });
    symlinkSync('/proc/self', join(root, 'site', 'shared'));
    assert.throws(
      () => assertNoRecordBelowLink(new LocalTree(root), m),
      /2 recorded path\(s\) lie below a symlink in the data folder \(site\/shared\/uploads below site\/shared, site\/shared\/uploads\/a\.jpg below site\/shared\)/,
    );
  });
});
