import assert from 'node:assert/strict';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { runAction } from '../helpers/run-action.js';
import { ok } from '../helpers/outcome.js';
import { testTempDir } from '../helpers/temp.js';

// Issue #23: what was salvaged never becomes code or commands on the runner. These runs need no
// server (mode: plan, or stores checked before connecting), through the committed bundle.

const DOMAIN = 'example.com';

function workspace(): string {
  const ws = testTempDir('rf-runner-');
  return ws;
}

test('recipe discovery never looks inside the data folder: a salvaged .pm is not compiled, a salvaged .yml is no recipe', async () => {
  const ws = workspace();
  const marker = join(ws, 'compiled-by-perl');
  mkdirSync(join(ws, 'lib', 'Provisioner', 'Recipe'), { recursive: true });
  writeFileSync(
    join(ws, 'lib', 'Provisioner', 'Recipe', 'App.pm'),
    "package Provisioner::Recipe::App;\nsub remote_files { return ('/srv/app' => 'app'); }\n1;\n",
  );
  mkdirSync(join(ws, 'conf'));
  writeFileSync(
    join(ws, 'conf', 'more.yml'),
    'version: 1\nrecipes:\n  Conf:\n    remote_files:\n      /srv/conf: conf\n',
  );
  // What a server sent: a module whose BEGIN block runs as perl compiles it, and a twin recipe.
  const salvaged = join(ws, 'data', DOMAIN, 'app', 'lib');
  mkdirSync(salvaged, { recursive: true });
  writeFileSync(
    join(salvaged, 'Evil.pm'),
    `package Provisioner::Recipe::Evil;\nBEGIN { open(my $f, '>', '${marker}'); print $f "ran"; close $f; }\nsub remote_files { my @x = map { "/srv/$_" } qw(a); return ($x[0] => 'evil'); }\n1;\n`,
  );
  writeFileSync(
    join(salvaged, 'remote-files.yml'),
    'version: 1\nrecipes:\n  Salvaged:\n    remote_files:\n      /etc/shadow: shadow\n',
  );
  const cases: Array<[string, string[]]> = [
    ['**/*.pm', ['App']],
    ['**/*.pm\n**/*.yml', ['App', 'Conf']],
    ['.', ['App', 'Conf']],
  ];
  for (const [recipes, expected] of cases) {
    const r = ok(await runAction({ mode: 'plan', domain: DOMAIN, 'install-dir': '/srv', recipes }, { workspace: ws }));
    const names = (JSON.parse(r.outputs.plan!) as { recipes: Array<{ name: string }> }).recipes.map((x) => x.name);
    assert.deepEqual(names.sort(), expected, `recipes: ${JSON.stringify(recipes)}: only the workspace's own recipe`);
    assert.ok(!existsSync(marker), `recipes: ${JSON.stringify(recipes)}: the salvaged module was never compiled`);
  }
  // Named outright, a file inside the data folder matches nothing, and says why.
  const r = await runAction(
    { mode: 'plan', domain: DOMAIN, 'install-dir': '/srv', recipes: `data/${DOMAIN}/app/lib/Evil.pm` },
    { workspace: ws },
  );
  assert.equal(r.code, 1, r.stdout);
  assert.match(r.stdout, /matches no recipe file .*outside the data folder data, which holds salvaged files/);
  assert.ok(!existsSync(marker), 'never compiled');
});
