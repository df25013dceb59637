// README against action.yml: every input has its row in the Inputs tables (and nothing else does), and no
// example uses a tag that does not exist yet.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { parse } from 'yaml';

const readme = readFileSync('README.md', 'utf8');
const declared = Object.keys((parse(readFileSync('action.yml', 'utf8')) as { inputs: Record<string, unknown> }).inputs);

/** The `## Inputs` section, up to the next `## ` heading (its `###` groups included). */
function inputsSection(): string {
  const start = readme.indexOf('\n## Inputs\n');
  assert.ok(start >= 0, 'README has an Inputs section');
  const end = readme.indexOf('\n## ', start + 1);
  return readme.slice(start, end < 0 ? undefined : end);
}

test('every input of action.yml has exactly one row in the README Inputs tables, and every row is an input', () => {
  const rows = [...inputsSection().matchAll(/^\| `([a-z0-9-]+)` \|/gm)].map((m) => m[1]!);
  const twice = rows.filter((r, i) => rows.indexOf(r) !== i);
  assert.deepEqual(twice, [], 'inputs with two rows');
  assert.deepEqual(
    declared.filter((i) => !rows.includes(i)),
    [],
    'inputs of action.yml without a README row',
  );
  assert.deepEqual(
    rows.filter((r) => !declared.includes(r)),
    [],
    'README rows that are not inputs',
  );
});

test('README examples use a ref that exists before the first release (no @v0 while CHANGELOG says nothing is released)', () => {
  const released = /^## \[\d+\.\d+\.\d+\]/m.test(readFileSync('CHANGELOG.md', 'utf8'));
  if (released) return;
  const uses = [...readme.matchAll(/^\s*(?:- )?uses: remote-files\/remote-files@(\S+)/gm)].map((m) => m[1]!);
  assert.ok(uses.length > 0, 'README has examples');
  assert.deepEqual(
    uses.filter((ref) => ref !== 'main'),
    [],
    'example refs other than @main',
  );
  assert.match(readme, /## Start here[\s\S]*no `v0` tag/, 'Start here says there is no release yet');
});
