// P12–P14 (issue #25): a re-backup of a big file that changed a little, against `rsync -az` through the
// 100 Mbit/s shaping proxy. Both start each run from the same stored copy (ours: the data folder as the
// previous backup left it; rsync: the old file in its destination, with its old mtime), and the server
// holds the changed file. Each run's bytes on the wire are the proxy's count over that run.
import { spawnSync } from 'node:child_process';
import { createHash, randomFillSync } from 'node:crypto';
import {
  closeSync,
  mkdirSync,
  openSync,
  readSync,
  rmSync,
  statSync,
  truncateSync,
  utimesSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { needLink, rsyncDown } from './baselines.js';
import { emptyFolder, makeDump, makeFile } from './datasets.js';
import type { Measured } from './measure.js';
import { expectOutputs, ours, seed, stored, workspace } from './tools.js';
import { linkEp, MB, shellEp, type Scenario, type Target, type Tool, type World } from './world.js';

const MiB = 1024 * 1024;
const PAGE = 4096;
const OLD_MTIME = 1_700_000_000;
const NEW_MTIME = OLD_MTIME + 3600;

interface Case {
  id: string;
  /** The server file's old content, written at `path` (owned by rf-shell). */
  make: (w: World, path: string) => void;
  /** Turns the old content at `path` into the new one. */
  change: (w: World, path: string) => void;
}

/** What setup prepared for the tools of one scenario. */
interface Prepared {
  ws: string;
  /** The data folder as the previous backup left it, copied into the workspace before each of our runs. */
  pristine: string;
  /** The old file, copied into rsync's destination before each of its runs. */
  oldFile: string;
  remoteDir: string;
  size: number;
  sha256: string;
}
const prepared = new Map<string, Prepared>();

function sh(argv: string[]): void {
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${argv.join(' ')} failed: ${r.stderr}`);
}

function sha256Of(path: string): string {
  const h = createHash('sha256');
  const buf = Buffer.allocUnsafe(8 * MiB);
  const fd = openSync(path, 'r');
  try {
    for (let n; (n = readSync(fd, buf, 0, buf.length, null)) > 0;) h.update(buf.subarray(0, n));
  } finally {
    closeSync(fd);
  }
  return h.digest('hex');
}

/** Rewrites `share` of the file's 4 KiB pages with random bytes (pages picked by a fixed xorshift). */
function rewritePages(path: string, share: number): void {
  let s = 0x2545f491;
  const rnd = (): number => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 4294967296;
  };
  const fd = openSync(path, 'r+');
  try {
    const pages = Math.floor(statSync(path).size / PAGE);
    const page = Buffer.alloc(PAGE);
    for (let i = 0; i < Math.round(pages * share); i++) {
      randomFillSync(page);
      writeSync(fd, page, 0, PAGE, Math.floor(rnd() * pages) * PAGE);
    }
  } finally {
    closeSync(fd);
  }
}

/** Builds the server file, seeds our workspace over the direct port (untimed), then changes the server file. */
async function setupCase(w: World, c: Case): Promise<void> {
  await needLink(w, 100);
  if (prepared.has(c.id)) return;
  const t0 = performance.now();
  const id = c.id.toLowerCase();
  const remoteDir = join(w.scratch, id);
  emptyFolder(remoteDir, w.shell);
  const file = join(remoteDir, 'data.bin');
  c.make(w, file);
  utimesSync(file, OLD_MTIME, OLD_MTIME);
  const ws = workspace(w, `${id}-tar`, { [`\${install_dir}/${id}`]: 'tree' });
  const size0 = statSync(file).size;
  await seed(w, ws, shellEp(w), { transport: 'tar', 'new-server': 'allow' }, { files: 1, bytes: size0 });
  const pristine = join(w.tmp, `${id}-pristine`);
  rmSync(pristine, { recursive: true, force: true });
  sh(['cp', '-a', '--reflink=auto', join(ws, 'data'), pristine]);
  const oldFile = join(w.tmp, `${id}-old.bin`);
  sh(['cp', '-p', '--reflink=auto', file, oldFile]);
  c.change(w, file);
  utimesSync(file, NEW_MTIME, NEW_MTIME);
  const size = statSync(file).size;
  prepared.set(c.id, { ws, pristine, oldFile, remoteDir, size, sha256: sha256Of(file) });
  console.log(`  data set ${id} built and seeded in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
}

/** Ours and rsync -az through the 100 Mbit/s link, each run's bytes on the wire noted as output `wire`. */
function deltaTools(w: World, c: Case): Tool[] {
  const p = prepared.get(c.id)!;
  const link = w.links.get(100)!;
  const ep = linkEp(w, 100);
  const dest = join(w.tmp, 'dl', `${c.id.toLowerCase()}-rsync`);
  let before = 0;
  const wire = (o: Record<string, string>): void => {
    o.wire = String(link.bytes - before);
  };
  const same = (path: string): string | undefined =>
    sha256Of(path) === p.sha256 ? undefined : `${path} is not the server's file`;
  return [
    {
      name: 'ours (tar)',
      ours: true,
      prepare: () => {
        rmSync(join(p.ws, 'data'), { recursive: true, force: true });
        sh(['cp', '-a', '--reflink=auto', p.pristine, join(p.ws, 'data')]);
        before = link.bytes;
      },
      // P4 and P9 restore onto this server in the same run: its marker then names their salvage (issue #21).
      command: () => ours(w, p.ws, ep, { transport: 'tar', 'new-server': 'allow' }),
      check: (m: Measured, o) => {
        wire(o);
        // A run that fell back to the whole file would be timed as if delta worked: refused.
        if (!m.lines.some((l) => /^delta: .* bytes fetched/.test(l.line)))
          return `no "delta: … bytes fetched" line: the file did not move by delta\n${m.stdout.slice(-2000)}`;
        return expectOutputs({ files: 1, bytes: p.size })(m, o) ?? same(join(stored(p.ws, 'tree'), 'data.bin'));
      },
    },
    {
      name: 'rsync -az',
      ours: false,
      prepare: () => {
        rmSync(dest, { recursive: true, force: true });
        mkdirSync(dest, { recursive: true });
        sh(['cp', '-p', '--reflink=auto', p.oldFile, join(dest, 'data.bin')]);
        before = link.bytes;
      },
      command: () => rsyncDown(w, ep, p.remoteDir, dest, '-az'),
      check: (m: Measured, o) => {
        wire(o);
        if (m.code !== 0) return `exit ${m.code}: ${m.stderr.slice(-500)}`;
        return same(join(dest, 'data.bin'));
      },
    },
  ];
}

const targets = (id: string, what: string, extra: Target[] = []): Target[] => [
  {
    label: `${id} ours (tar) ≤ 1.0 × rsync -az (${what}, 100 Mbit/s)`,
    kind: 'ratio',
    ours: 'ours (tar)',
    base: 'rsync -az',
    limit: 1.0,
  },
  {
    label: `${id} ours (tar) bytes on the wire, beside rsync -az's`,
    kind: 'wire',
    ours: 'ours (tar)',
    base: 'rsync -az',
    limit: 1.0,
  },
  ...extra,
];

const P12: Case = {
  id: 'P12',
  make: (w, path) => makeFile(path, 128 * MiB, w.shell),
  change: (_w, path) => rewritePages(path, 0.01),
};
// makeDump is deterministic: the old mailbox is the first 64 MiB of a 65 MiB dump, the new one all of
// it, so the appended MiB is new text (a second dump appended would repeat the file's start, which
// rsync's rolling checksum finds).
const P13: Case = {
  id: 'P13',
  make: (w, path) => {
    makeDump(path, 65 * MiB, w.shell);
    truncateSync(path, 64 * MiB);
  },
  change: (w, path) => makeDump(path, 65 * MiB, w.shell),
};
const P14: Case = { ...P12, id: 'P14', make: (w, path) => makeFile(path, 1024 * MiB, w.shell) };

function scenario(c: Case, title: string, what: string, extra: Target[] = []): Scenario {
  return {
    id: c.id,
    title,
    setup: (w) => setupCase(w, c),
    tools: (w) => deltaTools(w, c),
    targets: targets(c.id, what, extra),
  };
}

export const DELTA_SCENARIOS: Scenario[] = [
  scenario(
    P12,
    'P12: re-backup of a 128 MiB page file (random 4 KiB pages), 1% of its pages rewritten, 100 Mbit/s, 10 ms each way (tar)',
    '128 MiB, 1% of pages',
  ),
  scenario(
    P13,
    'P13: re-backup of a 64 MiB mailbox (SQL-like text) with 1 MiB appended, 100 Mbit/s, 10 ms each way (tar)',
    '64 MiB + 1 MiB appended',
  ),
  scenario(P14, 'P14: P12 at 1 GiB, 100 Mbit/s, 10 ms each way (tar)', '1 GiB, 1% of pages', [
    { label: 'P14 ours (tar) peak RSS ≤ 200 MB', kind: 'rss', ours: 'ours (tar)', limit: 200 * MB },
  ]),
];
