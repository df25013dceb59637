import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, test } from 'node:test';
import { NODES, runAction } from '../helpers/run-action.js';
import { testTempDir } from '../helpers/temp.js';

// The shipped bundle, run as the runner runs it, on every Node we support.
const workspace = resolve('__tests__/fixtures/workspace');
const inputs = { mode: 'plan', domain: 'example.com', 'install-dir': '/srv', vars: 'spool_name=postfix' };

const expectedPlan = {
  domain: 'example.com',
  installDir: '/srv',
  dataDir: 'data',
  recipes: [
    {
      name: 'Mail',
      file: 'lib/Provisioner/Recipe/Mail.pm',
      files: [
        { remote: '/etc/opendkim/keys', local: 'mail/dkim', path: 'data/example.com/mail/dkim' },
        { remote: '/srv/example.com/mail.db', local: 'mail/mail.db', path: 'data/example.com/mail/mail.db' },
        { remote: '/var/spool/postfix', local: 'mail/spool', path: 'data/example.com/mail/spool' },
      ],
      datadirs: ['mail'],
      skip: ['lock', '/tmp/'],
      prepare: ['postqueue -f'],
      restores: [
        {
          to: '/etc/opendkim/keys',
          from: '/srv/example.com/mail/dkim',
          owner: 'opendkim:opendkim',
          mode: '0750',
          local: 'mail/dkim',
        },
      ],
    },
    {
      name: 'Redis',
      file: 'lib/Provisioner/Recipe/Ubuntu/Redis.pm',
      files: [{ remote: '/var/lib/redis/dump.rdb', local: 'redis/dump.rdb', path: 'data/example.com/redis/dump.rdb' }],
      datadirs: [],
      skip: [],
      prepare: [],
      restores: [],
    },
    {
      name: 'Shop',
      file: 'remote-files.yml',
      files: [
        { remote: '/srv/shop.example.com_data', local: 'shop', path: 'data/example.com/shop' },
        { remote: '/srv/example.com/media', local: 'shop-media', path: 'data/example.com/shop-media' },
      ],
      datadirs: [],
      skip: ['cache'],
      prepare: [],
      restores: [
        {
          to: '/srv/shop/data',
          from: '/srv/example.com/shop',
          owner: 'www-data:www-data',
          mode: '0750',
          local: 'shop',
        },
      ],
    },
  ],
};

test('dist/ is what the sources build', () => {
  const r = spawnSync(process.execPath, ['scripts/bundle.mjs', '--check'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
});

for (const node of NODES) {
  describe(`dist/index.js plan on ${node.name}`, () => {
    test('reads Perl and YAML recipes and outputs the plan, log table and summary', async () => {
      const r = await runAction(inputs, { node: node.path, workspace });
      assert.equal(r.code, 0, r.stdout + r.stderr);
      assert.deepEqual(JSON.parse(r.outputs.plan!), expectedPlan);
      assert.match(r.stdout, /\/etc\/opendkim\/keys\s+->\s+data\/example\.com\/mail\/dkim/);
      assert.match(r.summary, /\| Mail \| `\/etc\/opendkim\/keys` \| `data\/example\.com\/mail\/dkim` \|/);
      assert.match(
        r.summary,
        /\| Shop \| `\/srv\/shop\/data` \| `\/srv\/example\.com\/shop` \| www-data:www-data \| 0750 \|/,
      );
    });

    test('only selects recipes; an unknown name fails naming the input', async () => {
      const ok = await runAction({ ...inputs, only: 'Redis' }, { node: node.path, workspace });
      assert.deepEqual(
        JSON.parse(ok.outputs.plan!).recipes.map((r: { name: string }) => r.name),
        ['Redis'],
      );
      const bad = await runAction({ ...inputs, only: 'Nope' }, { node: node.path, workspace });
      assert.equal(bad.code, 1);
      assert.match(bad.stdout, /::error::input `only`: no recipe named "Nope" \(found: Mail, Nginx, Redis, Shop\)/);
    });

    test('an unknown placeholder and a bad mode each fail with one message', async () => {
      const noVar = await runAction({ ...inputs, vars: '' }, { node: node.path, workspace });
      assert.equal(noVar.code, 1);
      assert.match(noVar.stdout, /::error::lib\/Provisioner\/Recipe\/Mail\.pm: unknown placeholder "spool_name"/);
      const badMode = await runAction({ ...inputs, mode: 'sync' }, { node: node.path, workspace });
      assert.equal(badMode.code, 1);
      assert.match(badMode.stdout, /::error::input `mode`: "sync" is not one of/);
      assert.equal(badMode.stdout.match(/::error::/g)?.length, 1);
    });

    test('a recipes path that matches nothing is an error; absent defaults are fine', async () => {
      const bad = await runAction({ ...inputs, recipes: 'nowhere/' }, { node: node.path, workspace });
      assert.match(bad.stdout, /::error::input `recipes`: "nowhere\/" matches no recipe file/);
      const empty = await runAction({ ...inputs }, { node: node.path, workspace: resolve('__tests__') });
      assert.equal(empty.code, 0, empty.stdout);
      assert.deepEqual(JSON.parse(empty.outputs.plan!).recipes, []);
    });
  });
}

// Chunks loaded lazily (stores, encryption) are not loaded by a plan run: load each one here, so a
// chunk that cannot even be parsed (a name clash with the banner) fails a test, not a user's restore.
for (const node of NODES) {
  test(`every chunk of dist/ loads on ${node.name}`, () => {
    const script = `for (const f of (await import('node:fs')).readdirSync('dist/chunks')) await import('./dist/chunks/' + f);`;
    const r = spawnSync(node.path, ['--input-type=module', '-e', script], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
  });
}

describe('recipes are repository code: perl sees no input', () => {
  test('a Perl hook evaluated by perl reads no INPUT_* variable (the key stays out of it)', async () => {
    const ws = testTempDir('rf-perl-env-');
    const dir = join(ws, 'lib/Provisioner/Recipe');
    mkdirSync(dir, { recursive: true });
    // The `if` makes the hook dynamic: the static reader hands it to perl.
    writeFileSync(
      join(dir, 'Peek.pm'),
      `package Provisioner::Recipe::Peek;\nuse strict;\nsub remote_files {\n  my ($self, $install_dir, $domain) = @_;\n  my $seen = join('-', sort grep { /^INPUT_/ } keys %ENV) || 'none';\n  return ("/srv/peek-$seen" => 'peek') if 1;\n}\n1;\n`,
    );
    const r = await runAction(
      { mode: 'plan', domain: 'example.com', 'install-dir': '/srv', key: 'rf-canary-perl-env' },
      { workspace: ws },
    );
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /\/srv\/peek-none\s/, 'perl saw no INPUT_* variable');
  });
});
