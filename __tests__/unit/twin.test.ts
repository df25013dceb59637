import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { readTwinRecipes } from '../../src/recipes/twin.js';

test('a YAML file holds several recipes with every hook', () => {
  const recipes = readTwinRecipes(
    `recipes:
  A:
    remote_files:
      /etc/a/: a/
      "/srv/\${domain}/db": a/db
    datadirs: [a]
    remote_skip: [tmp, /cache/]
    remote_prepare: ["a-dump > /srv/a.sql"]
    restores:
      /etc/a: { from: /srv/x/a, owner: "a:a", mode: "0700" }
  B:
    datadirs: [b]
`,
    'remote-files.yml',
  );
  assert.deepEqual(recipes, [
    {
      name: 'A',
      file: 'remote-files.yml',
      remoteFiles: [
        ['/etc/a/', 'a/'],
        ['/srv/${domain}/db', 'a/db'],
      ],
      datadirs: ['a'],
      skip: ['tmp', '/cache/'],
      prepare: ['a-dump > /srv/a.sql'],
      restores: [{ to: '/etc/a', from: '/srv/x/a', owner: 'a:a', mode: '0700' }],
    },
    { name: 'B', file: 'remote-files.yml', remoteFiles: null, datadirs: ['b'], skip: [], prepare: [], restores: [] },
  ]);
});

test('JSON twins read the same way', () => {
  const recipes = readTwinRecipes(
    '{"recipes":{"J":{"remote_files":{"/a":"b"},"restores":{"/x":{"from":"/y","mode":750}}}}}',
    'r.json',
  );
  assert.deepEqual(recipes[0]!.remoteFiles, [['/a', 'b']]);
  assert.equal(recipes[0]!.restores[0]!.mode, '0750');
});

test('before_restore and after_restore are read when given, absent otherwise', () => {
  const [a, b] = readTwinRecipes(
    'recipes:\n  A:\n    before_restore: ["systemctl stop a"]\n    after_restore: ["a-load /srv/a.sql", "systemctl start a"]\n  B: {}\n',
    'r.yml',
  );
  assert.deepEqual(a!.beforeRestore, ['systemctl stop a']);
  assert.deepEqual(a!.afterRestore, ['a-load /srv/a.sql', 'systemctl start a']);
  assert.equal('beforeRestore' in b!, false);
  assert.throws(
    () => readTwinRecipes('recipes:\n  A:\n    after_restore: "one string"\n', 'r.yml'),
    /r\.yml:3: recipes\.A\.after_restore must be array/,
  );
});

test('schema errors name the file, the line and the key path', () => {
  const bad = 'recipes:\n  A:\n    remote_files:\n      /etc/a: 3\n';
  assert.throws(
    () => readTwinRecipes(bad, 'r.yml'),
    /^RecipeError: r\.yml:4: recipes\.A\.remote_files\["\/etc\/a"\] must be string$/m,
  );
  assert.throws(
    () => readTwinRecipes('recipes:\n  A:\n    remote_file: {}\n', 'r.yml'),
    /r\.yml:3: recipes\.A has an unknown key "remote_file"/,
  );
  assert.throws(
    () => readTwinRecipes('recipes:\n  A:\n    restores:\n      /x: { owner: a }\n', 'r.yml'),
    /r\.yml:4: recipes\.A\.restores\["\/x"\] needs the key "from"/,
  );
  assert.throws(
    () => readTwinRecipes('recipes:\n  A:\n    restores:\n      /x: { from: /y, mode: "rwx" }\n', 'r.yml'),
    /mode must be an octal mode/,
  );
  assert.throws(
    () => readTwinRecipes('recipes: {}\nother: 1\n', 'r.yml'),
    /r\.yml:2: the top level has an unknown key "other"/,
  );
});

test('an unknown key gets the nearest known one of its level, and a recipe key at the top says where it goes', () => {
  assert.throws(
    () => readTwinRecipes('remote-files:\n  Shop:\n    remote_files: {}\n', 'r.yml'),
    /^RecipeError: r\.yml:1: the top level has an unknown key "remote-files": did you mean "remote_files"\? it belongs inside a recipe: "version: 1", then "recipes:", a recipe name/m,
  );
  assert.throws(
    () => readTwinRecipes('version: 1\nremote_files:\n  /a: b\n', 'r.yml'),
    /r\.yml:2: the top level has an unknown key "remote_files": it belongs inside a recipe/,
  );
  assert.throws(
    () => readTwinRecipes('recipe:\n  A: {}\n', 'r.yml'),
    /r\.yml:1: the top level has an unknown key "recipe": did you mean "recipes"\?/,
  );
  assert.throws(
    () => readTwinRecipes('recipes:\n  A:\n    remote-files: {}\n', 'r.yml'),
    /r\.yml:3: recipes\.A has an unknown key "remote-files": did you mean "remote_files"\?/,
  );
  assert.throws(
    () => readTwinRecipes('recipes:\n  A:\n    restores:\n      /x: { from: /y, onwer: a }\n', 'r.yml'),
    /has an unknown key "onwer": did you mean "owner"\?/,
  );
  assert.throws(
    () => readTwinRecipes('recipes: {}\nother: 1\n', 'r.yml'),
    /the top level has an unknown key "other" \(known here: version, recipes\)/,
  );
});

test('malformed YAML names file and line; duplicate keys are refused', () => {
  assert.throws(
    () => readTwinRecipes('recipes:\n  A: [unclosed\n', 'r.yml'),
    /^RecipeError: r\.yml:\d+: not valid YAML\/JSON/m,
  );
  assert.throws(() => readTwinRecipes('recipes:\n  A: {}\n  A: {}\n', 'r.yml'), /r\.yml:3: not valid YAML\/JSON/);
});

test('the JSON Schema in the repository is the one enforced', () => {
  const schema = JSON.parse(readFileSync('schema/remote-files.schema.json', 'utf8'));
  assert.deepEqual(Object.keys(schema.definitions.recipe.properties).sort(), [
    'after_restore',
    'before_restore',
    'datadirs',
    'remote_files',
    'remote_prepare',
    'remote_skip',
    'restores',
  ]);
});

test('the committed validator is what the schema compiles to (npm run gen-validator after a schema edit)', async () => {
  // @ts-expect-error: a plain .mjs script, no types
  const { TARGET, validatorSource } = (await import('../../scripts/gen-validator.mjs')) as {
    TARGET: string;
    validatorSource: () => string;
  };
  assert.equal(readFileSync(TARGET, 'utf8'), validatorSource(), `${TARGET} is stale: run npm run gen-validator`);
});
