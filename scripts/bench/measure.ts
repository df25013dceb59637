// Runs one command and measures it: wall time from spawn to exit, and the peak RSS of the process (and
// of the children it waited for) as /usr/bin/time reports it, or by polling /proc when that is absent.
import { spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';

const GNU_TIME = '/usr/bin/time';
export const HAVE_GNU_TIME = existsSync(GNU_TIME);

export interface Command {
  argv: string[];
  cwd?: string;
  env?: Record<string, string>;
  /** Send stdout to this file (e.g. `ssh host cat file > out`); otherwise stdout is collected. */
  stdoutFile?: string;
}

export interface Measured {
  ms: number;
  /** Peak resident set size in KiB; undefined when it could not be measured. */
  rssKiB: number | undefined;
  code: number | null;
  stdout: string;
  stderr: string;
  /** ms since spawn of each stdout line (ours: to split the run into phases). */
  lines: Array<{ t: number; line: string }>;
}

export async function measure(cmd: Command, tmp: string): Promise<Measured> {
  const rssFile = join(tmp, `rss-${process.pid}-${Math.random().toString(36).slice(2)}`);
  const argv = HAVE_GNU_TIME ? [GNU_TIME, '-f', '%M', '-o', rssFile, ...cmd.argv] : cmd.argv;
  const outFd = cmd.stdoutFile ? openSync(cmd.stdoutFile, 'w') : undefined;
  const start = performance.now();
  const child = spawn(argv[0]!, argv.slice(1), {
    cwd: cmd.cwd,
    env: cmd.env ?? { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/root' },
    stdio: ['ignore', outFd ?? 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  let partial = '';
  const lines: Measured['lines'] = [];
  child.stdout?.on('data', (d: Buffer) => {
    const t = performance.now() - start;
    const text = d.toString('utf8');
    stdout += text;
    const parts = (partial + text).split('\n');
    partial = parts.pop()!;
    for (const line of parts) lines.push({ t, line });
  });
  child.stderr!.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString('utf8')).slice(-100_000);
  });
  const poll = HAVE_GNU_TIME ? undefined : pollRss(child.pid!);
  const exited = new Promise<{ code: number | null; ms: number }>((resolve) =>
    child.once('exit', (code) => resolve({ code, ms: performance.now() - start })),
  );
  const closed = new Promise<void>((resolve) => child.once('close', () => resolve()));
  const { code, ms } = await exited;
  await closed;
  if (outFd !== undefined) closeSync(outFd);
  let rssKiB: number | undefined;
  if (poll) rssKiB = poll.stop();
  else {
    try {
      // GNU time prints "Command exited with non-zero status N" before the number when the command fails.
      rssKiB = Number(readFileSync(rssFile, 'utf8').trim().split('\n').at(-1));
      if (!Number.isFinite(rssKiB)) rssKiB = undefined;
    } catch {
      rssKiB = undefined;
    }
    rmSync(rssFile, { force: true });
  }
  return { ms, rssKiB, code, stdout, stderr, lines };
}

/** Fallback: samples VmHWM of the process every 20 ms (misses children; fine for our own process). */
function pollRss(pid: number): { stop(): number | undefined } {
  let peak: number | undefined;
  const sample = (): void => {
    try {
      const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
      if (m) peak = Math.max(peak ?? 0, Number(m[1]));
    } catch {
      // Gone.
    }
  };
  const timer = setInterval(sample, 20);
  return {
    stop: () => {
      clearInterval(timer);
      return peak;
    },
  };
}

export function median(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}
