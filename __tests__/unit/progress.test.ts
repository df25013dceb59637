import assert from 'node:assert/strict';
import { test } from 'node:test';
import { clock, progressLine, withProgress } from '../../src/report/progress.js';
import type { Reporter } from '../../src/report/reporter.js';

test('a progress line: bytes and files of the total, rate, time left', () => {
  assert.equal(
    progressLine('received', { doneBytes: 10 * 1024 * 1024, bytes: 40 * 1024 * 1024, doneFiles: 3, files: 12 }, 5000),
    'received 10.0 MiB of 40.0 MiB (25%), 3 of 12 file(s), 2.0 MiB/s, about 0:15 left',
  );
  assert.equal(
    progressLine('sent', { doneBytes: 0, bytes: 100, doneFiles: 0, files: 1 }, 2000),
    'sent 0 B of 100 B (0%), 0 of 1 file(s), 0 B/s, time left unknown',
  );
  assert.equal(
    progressLine('sent', { doneBytes: 100, bytes: 100, doneFiles: 1, files: 1 }, 2000),
    'sent 100 B of 100 B (100%), 1 of 1 file(s), 50 B/s, all handed over, finishing',
  );
  assert.equal(clock(59), '0:59');
  assert.equal(clock(3723), '1:02:03');
});

/** A reporter that keeps what it is told. */
function recorder(): Reporter & { lines: string[]; done: number } {
  const r = {
    lines: [] as string[],
    done: 0,
    info: (m: string) => r.lines.push(`info ${m}`),
    warning: () => {},
    debug: () => {},
    group: <T>(_t: string, body: () => Promise<T>) => body(),
    setOutput: () => {},
    summary: async () => {},
    progress: (line: string) => r.lines.push(line),
    progressDone: () => {
      r.done++;
    },
  };
  return r;
}

/** Resolves once `cond` holds (checked on every turn of the event loop): no time bound of its own. */
async function until(cond: () => boolean): Promise<void> {
  while (!cond()) await new Promise((r) => setImmediate(r));
}

test('withProgress prints through the reporter while the body runs, nothing before the totals are known, and stops after', async () => {
  const out = recorder();
  const result = await withProgress(
    out,
    'received',
    async (p) => {
      // Nothing planned yet: ticks print nothing.
      await new Promise((r) => setTimeout(r, 20));
      assert.deepEqual(out.lines, []);
      p.planned(2, 2048);
      p.bytes(1024);
      p.fileDone();
      await until(() => out.lines.length >= 2);
      return 'done';
    },
    1,
  );
  assert.equal(result, 'done');
  assert.match(out.lines[0]!, /^received 1\.0 KiB of 2\.0 KiB \(50%\), 1 of 2 file\(s\), /);
  assert.equal(out.done, 1, 'told the lines ended');
  const count = out.lines.length;
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(out.lines.length, count, 'no line after the body ended');
});

test('without a progress method the lines go to info; REMOTE_FILES_PROGRESS_MS sets the period', async () => {
  const out = recorder();
  delete (out as Partial<Reporter>).progress;
  process.env.REMOTE_FILES_PROGRESS_MS = '1';
  try {
    await withProgress(out, 'sent', async (p) => {
      p.planned(1, 1);
      await until(() => out.lines.length >= 1);
    });
  } finally {
    delete process.env.REMOTE_FILES_PROGRESS_MS;
  }
  assert.match(out.lines[0]!, /^info sent 0 B of 1 B/);
});
