import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RecipeError } from '../../src/errors.js';
import { parseVars, resolveTemplate, templateValues } from '../../src/recipes/template.js';

const values = templateValues('example.com', '/srv', new Map([['site', 'blog']]));

test('[% name %] resolves in any recipe format, with or without inner spaces', () => {
  assert.equal(resolveTemplate('/srv/[% domain %]/[%site%]/x', values, 'a.pm', false), '/srv/example.com/blog/x');
  assert.equal(resolveTemplate('[% install_dir %]/a', values, 'a.yml', true), '/srv/a');
});

test('${name} resolves only where the format allows it (YAML/JSON), never in Perl strings', () => {
  assert.equal(resolveTemplate('${install_dir}/${domain}', values, 'a.yml', true), '/srv/example.com');
  assert.equal(resolveTemplate('${install_dir}/x', values, 'a.pm', false), '${install_dir}/x');
});

test('an unknown placeholder is an error naming the file and the name, never an empty string', () => {
  assert.throws(
    () => resolveTemplate('/var/[% nope %]/x', values, 'lib/R.pm', false),
    (e: unknown) => {
      assert.ok(e instanceof RecipeError);
      assert.match(e.message, /^lib\/R\.pm: unknown placeholder "nope"/);
      assert.match(e.message, /vars/);
      return true;
    },
  );
  assert.throws(() => resolveTemplate('${missing}', values, 'r.yml', true), /r\.yml: unknown placeholder "missing"/);
});

test('vars: KEY=VALUE lines, comments and blanks skipped, a bad line names input and line', () => {
  assert.deepEqual(
    [...parseVars('a=1\n\n# c\n b = two words \nc=')],
    [
      ['a', '1'],
      ['b', 'two words'],
      ['c', ''],
    ],
  );
  assert.throws(() => parseVars('ok=1\nnot a pair'), /input `vars`:2: expected KEY=VALUE/);
});

test('vars cannot shadow domain or install_dir', () => {
  const v = templateValues('d.example', '/opt', new Map([['domain', 'evil']]));
  assert.equal(v.get('domain'), 'd.example');
});
