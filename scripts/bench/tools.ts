// Our side of a scenario: the bundle spawned as the runner spawns it, its workspace and outputs, the
// checks of each run, and the usual set of download tools (ours and the baselines).
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { rsyncDown, scpDown, sftpBatch } from './baselines.js';
import { countFiles } from './datasets.js';
import { measure, type Command, type Measured } from './measure.js';
import { DOMAIN, type Endpoint, type Tool, type World } from './world.js';

const baseEnv = (): Record<string, string> => ({
  PATH: process.env.PATH ?? '/usr/bin:/bin',
  HOME: process.env.HOME ?? '/root',
  LANG: 'C.UTF-8',
});
/** The bundle, spawned like the runner spawns it: INPUT_* variables, GITHUB_OUTPUT and friends. */
export function ours(w: World, ws: string, ep: Endpoint, inputs: Record<string, string>): Command {
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

export function outputsOf(cmd: Command): Record<string, string> {
  const file = cmd.env?.GITHUB_OUTPUT;
  if (!file || !existsSync(file)) return {};
  const outputs: Record<string, string> = {};
  for (const m of readFileSync(file, 'utf8').matchAll(/^([^\n<]+)<<(\S+)\n([\s\S]*?)\n\2$/gm)) outputs[m[1]!] = m[3]!;
  return outputs;
}

/** A workspace with one YAML recipe naming `entries` (remote → local). */
export function workspace(w: World, name: string, entries: Record<string, string>): string {
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

export const dataDir = (ws: string): string => join(ws, 'data');
export const stored = (ws: string, local: string): string => join(ws, 'data', DOMAIN, local);

// ---------------------------------------------------------------- checks

export const expectOutputs =
  (want: { files?: number; bytes?: number }) =>
  (m: Measured, o: Record<string, string>): string | undefined => {
    if (m.code !== 0) return `exit ${m.code}: ${lastLines(m.stdout + m.stderr)}`;
    if (want.files !== undefined && o.files !== String(want.files))
      return `files output ${o.files ?? '(none)'}, expected ${want.files}`;
    if (want.bytes !== undefined && o.bytes !== String(want.bytes))
      return `bytes output ${o.bytes ?? '(none)'}, expected ${want.bytes}`;
    return undefined;
  };

export const expectTree =
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

/** An untimed run of the bundle that must succeed (seeding a workspace). */
export async function seed(
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

/** Download tools for a tree: ours (fresh workspace each run) and the baselines (fresh folder each run). */
export function downloadTools(
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
