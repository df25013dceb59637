import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { NODES, runAction } from '../helpers/run-action.js';
import { rootSh, sshInputs, startSshd, type Sshd } from '../helpers/sshd.js';
import { testTempDir } from '../helpers/temp.js';

// Load, through the bundle as the runner runs it: many files, one huge file, many clients at once.
// Memory is the promise here (≤ 200 MB resident), not speed: speed is the benchmarks' business.

const MAX_RSS = 200 * 1024 * 1024;
// The runner's Node: what users' memory looks like.
const RUNNER_NODE = NODES.at(-1)!.path;
const MANY = 50_000;
const HUGE = 2 * 1024 * 1024 * 1024;
let server: Sshd;
let srv: string;

before(async () => {
  server = await startSshd();
  srv = server.users.shell.scratch;
});
after(async () => {
  rootSh(`rm -rf '${srv}/many' '${srv}/huge.bin' '${srv}/shared'`);
  await server?.stop();
});

function workspace(entries: Record<string, string>): string {
  const ws = testTempDir('rf-load-');
  const lines = Object.entries(entries).map(([remote, local]) => `      "${remote}": ${local}`);
  writeFileSync(
    join(ws, 'remote-files.yml'),
    `version: 1\nrecipes:\n  Load:\n    remote_files:\n${lines.join('\n')}\n`,
  );
  return ws;
}

const inputs = (extra: Record<string, string> = {}) =>
  sshInputs(
    server,
    { domain: 'load.example', installDir: srv },
    { mode: 'backup', store: 'none', timeout: '60', ...extra },
  );

const mb = (n: number) => `${(n / 1024 / 1024).toFixed(0)} MB`;

describe('load', () => {
  test(`${MANY.toLocaleString('en')} files: salvaged within ${mb(MAX_RSS)}; the no-change re-run moves nothing`, async () => {
    const many = join(srv, 'many');
    for (let d = 0; d < 500; d++) {
      mkdirSync(join(many, `d${d}`), { recursive: true });
      for (let f = 0; f < MANY / 500; f++) writeFileSync(join(many, `d${d}`, `f${f}.txt`), `${d}/${f}\n`);
    }
    rootSh(`chown -R rf-shell: '${many}'`);
    const ws = workspace({ [many]: 'many' });
    const r = await runAction(inputs(), { workspace: ws, node: RUNNER_NODE });
    assert.equal(r.code, 0, r.stdout);
    assert.equal(r.outputs.files, String(MANY));
    assert.equal(readFileSync(join(ws, 'data/load.example/many/d499/f99.txt'), 'utf8'), '499/99\n');
    console.log(`load: ${MANY} files salvaged, peak RSS ${mb(r.peakRss)}`);
    assert.ok(r.peakRss > 0 && r.peakRss <= MAX_RSS, `peak RSS ${mb(r.peakRss)}`);
    const again = await runAction(inputs(), { workspace: ws, node: RUNNER_NODE });
    assert.equal(again.code, 0, again.stdout);
    assert.equal(again.outputs.bytes, '0');
    assert.equal(again.outputs.unchanged, String(MANY));
    console.log(`load: ${MANY} files unchanged re-run, peak RSS ${mb(again.peakRss)}`);
    assert.ok(again.peakRss <= MAX_RSS, `peak RSS ${mb(again.peakRss)}`);
    rmSync(ws, { recursive: true, force: true });
  });

  test(`a 2 GB file: salvaged within ${mb(MAX_RSS)}`, async () => {
    // Sparse on the server (no disk needed there); tar still streams every one of its 2 GB.
    rootSh(`truncate -s ${HUGE} '${srv}/huge.bin' && chown rf-shell: '${srv}/huge.bin'`);
    const ws = workspace({ [`${srv}/huge.bin`]: 'huge.bin' });
    const r = await runAction(inputs(), { workspace: ws, node: RUNNER_NODE });
    assert.equal(r.code, 0, r.stdout);
    assert.equal(r.outputs.bytes, String(HUGE));
    assert.equal(statSync(join(ws, 'data/load.example/huge.bin')).size, HUGE);
    console.log(`load: 2 GB file salvaged, peak RSS ${mb(r.peakRss)}`);
    assert.ok(r.peakRss > 0 && r.peakRss <= MAX_RSS, `peak RSS ${mb(r.peakRss)}`);
    rmSync(ws, { recursive: true, force: true });
  });

  test('10 concurrent backups against one server all complete', async () => {
    const shared = join(srv, 'shared');
    for (let i = 0; i < 200; i++) {
      mkdirSync(join(shared, `s${i % 10}`), { recursive: true });
      writeFileSync(join(shared, `s${i % 10}`, `f${i}`), Buffer.alloc(8192, i));
    }
    rootSh(`chown -R rf-shell: '${shared}'`);
    const runs = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        runAction(inputs({ domain: `c${i}.example` }), {
          workspace: workspace({ [shared]: 'shared' }),
          node: RUNNER_NODE,
        }),
      ),
    );
    runs.forEach((r, i) => {
      assert.equal(r.code, 0, `backup ${i}: ${r.stdout}`);
      assert.equal(r.outputs.files, '200', `backup ${i}`);
    });
    console.log(
      `load: 10 concurrent backups complete, peak RSS of the largest ${mb(Math.max(...runs.map((r) => r.peakRss)))}`,
    );
  });
});
