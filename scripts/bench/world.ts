// What the scenarios run in: the server, its accounts and proxies, the data sets built on it, and the
// shapes of tools, targets and scenarios.
import { join } from 'node:path';
import type { Sshd } from '../../__tests__/helpers/sshd.js';
import { emptyFolder, makeDump, makeFile, makeTree, type Account } from './datasets.js';
import type { DelayProxy } from './delay-proxy.js';
import type { Command, Measured } from './measure.js';
import type { Options } from './options.js';

// ---------------------------------------------------------------- constants

export const DOMAIN = 'bench.example';
export const SMALL = { folders: 40, perFolder: 50, size: 4096 }; // 2,000 × 4 KiB
export const LARGE = { folders: 400, perFolder: 50, size: 4096 }; // 20,000 × 4 KiB
export const BIG = 256 * 1024 * 1024;
export const DUMP = 128 * 1024 * 1024;
export const MB = 1_000_000;
export const RSS_LIMIT = 150 * MB;

// ---------------------------------------------------------------- the world

export interface World {
  opts: Options;
  server: Sshd;
  proxy: DelayProxy | undefined;
  /** Shaping proxies by rate in Mbit/s, started on first need (P7–P11). */
  links: Map<number, DelayProxy>;
  tmp: string;
  knownHostsFile: string;
  shell: Account;
  sftp: Account;
  /** rf-shell's folder on the server. */
  scratch: string;
  /** rf-sftp's data folder, as seen from outside the chroot ("/data" inside). */
  sftpData: string;
  /** index.js of the snapshot of the bundle being timed. */
  entry: string;
  /** index.js of each variant's snapshot. */
  variantEntries: Array<{ name: string; entry: string }>;
}

export interface Endpoint {
  user: 'rf-shell' | 'rf-sftp';
  port: number;
}

/** One thing that is timed: a tool with its preparation (untimed) and its check (untimed). */
export interface Tool {
  name: string;
  ours: boolean;
  /** Minutes rather than seconds (sftp -r through the delay proxy): left out of warm-up rounds. */
  slow?: boolean;
  prepare?: () => void | Promise<void>;
  command: () => Command;
  /** A problem with the run's result, or undefined. */
  check?: (m: Measured, outputs: Record<string, string>) => string | undefined;
}

export interface Target {
  label: string;
  /** wire: the median of each tool's `wire` output (bytes through the link) over the run, ours ÷ base. */
  kind: 'ratio' | 'rss' | 'bytes0' | 'wire';
  ours: string;
  base?: string;
  /** Several baselines: each round's fastest of them is the baseline (P8: the faster of rsync -a and -az). */
  bases?: string[];
  limit: number;
}

export interface Scenario {
  id: string;
  title: string;
  setup: (w: World) => Promise<void> | void;
  tools: (w: World) => Tool[];
  targets: Target[];
}

export const nSmall = SMALL.folders * SMALL.perFolder;
export const bytesSmall = nSmall * SMALL.size;
export const nLarge = LARGE.folders * LARGE.perFolder;
export const bytesLarge = nLarge * LARGE.size;

/** Server-side data sets, built once on first need. */
const built = new Set<string>();
export function need(
  w: World,
  what: 'p1' | 'p4' | 'big' | 'p6' | 'sp1' | 'sp4' | 'sbig' | 'dump' | 'dump9' | 'random',
): void {
  if (built.has(what)) return;
  const t0 = performance.now();
  switch (what) {
    case 'p1':
      makeTree(join(w.scratch, 'p1'), SMALL.folders, SMALL.perFolder, SMALL.size, w.shell);
      break;
    case 'p4':
      makeTree(join(w.scratch, 'p4'), SMALL.folders, SMALL.perFolder, SMALL.size, w.shell);
      break;
    case 'big':
      makeFile(join(w.scratch, 'big.bin'), BIG, w.shell);
      break;
    case 'p6':
      makeTree(join(w.scratch, 'p6'), LARGE.folders, LARGE.perFolder, LARGE.size, w.shell);
      break;
    case 'sp1':
      makeTree(join(w.sftpData, 'p1'), SMALL.folders, SMALL.perFolder, SMALL.size, w.sftp);
      break;
    case 'sp4':
      makeTree(join(w.sftpData, 'p4'), SMALL.folders, SMALL.perFolder, SMALL.size, w.sftp);
      break;
    case 'sbig':
      makeFile(join(w.sftpData, 'big.bin'), BIG, w.sftp);
      break;
    case 'dump':
    case 'dump9': {
      const dir = join(w.scratch, what === 'dump' ? 'p7' : 'p9');
      emptyFolder(dir, w.shell);
      makeDump(join(dir, 'dump.sql'), DUMP, w.shell);
      break;
    }
    case 'random':
      emptyFolder(join(w.scratch, 'p10'), w.shell);
      makeFile(join(w.scratch, 'p10', 'random.bin'), DUMP, w.shell);
      break;
  }
  built.add(what);
  console.log(`  data set ${what} built in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
}

export const shellEp = (w: World): Endpoint => ({ user: 'rf-shell', port: w.server.port });
export const sftpEp = (w: World): Endpoint => ({ user: 'rf-sftp', port: w.server.port });
export const proxyEp = (w: World): Endpoint => ({ user: 'rf-shell', port: w.proxy!.port });
export const linkEp = (w: World, mbit: number): Endpoint => ({ user: 'rf-shell', port: w.links.get(mbit)!.port });
