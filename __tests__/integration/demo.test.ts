import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { test } from 'node:test';

// `npm run demo` is what a newcomer runs first: it must run to completion and leave nothing behind.
test('the demo salvages, commits, wipes, restores and verifies, and cleans up after itself', () => {
  const before = new Set(readdirSync(tmpdir()).filter((n) => n.startsWith('remote-files-demo-')));
  const r = spawnSync(process.execPath, ['scripts/demo.mjs'], { encoding: 'utf8', timeout: 120_000 });
  assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
  assert.match(r.stdout, /Done: salvaged, committed, wiped, restored and verified\./);
  assert.match(r.stdout, /No drift/);
  assert.match(r.stdout, /salvage of demo\.example \[skip ci\]/);
  const after = readdirSync(tmpdir()).filter((n) => n.startsWith('remote-files-demo-') && !before.has(n));
  assert.deepEqual(after, [], 'the temp folder is removed');
});
