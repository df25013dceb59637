// README against action.yml: every input has its row in the Inputs tables and every output its row in the
// Outputs table (and nothing else does), and no example uses a tag that does not exist yet.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { parse } from 'yaml';

const readme = readFileSync('README.md', 'utf8');
const action = parse(readFileSync('action.yml', 'utf8')) as {
  inputs: Record<string, unknown>;
  outputs: Record<string, unknown>;
};

/** The `## <heading>` section, up to the next `## ` heading (its `###` groups included). */
function section(heading: string): string {
  const start = readme.indexOf(`\n## ${heading}\n`);
  assert.ok(start >= 0, `README has an ${heading} section`);
  const end = readme.indexOf('\n## ', start + 1);
  return readme.slice(start, end < 0 ? undefined : end);
}

/** The names of a section's table rows: a first cell that is one `name` in backticks. */
function rowNames(heading: string): string[] {
  return [...section(heading).matchAll(/^\| `([a-z0-9-]+)` \|/gm)].map((m) => m[1]!);
}

for (const [kind, heading] of [
  ['inputs', 'Inputs'],
  ['outputs', 'Outputs'],
] as const) {
  test(`every ${kind.slice(0, -1)} of action.yml has exactly one row in the README ${heading} tables, and every row is one`, () => {
    const declared = Object.keys(action[kind]);
    assert.ok(declared.length > 0, `action.yml declares ${kind}`);
    const rows = rowNames(heading);
    const twice = rows.filter((r, i) => rows.indexOf(r) !== i);
    assert.deepEqual(twice, [], `${kind} with two rows`);
    assert.deepEqual(
      declared.filter((i) => !rows.includes(i)),
      [],
      `${kind} of action.yml without a README row`,
    );
    assert.deepEqual(
      rows.filter((r) => !declared.includes(r)),
      [],
      `README rows that are not ${kind}`,
    );
  });
}

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
