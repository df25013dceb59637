// The machine section of the report: CPU, versions, load, and the ciphers both sides negotiate.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { sshOptions } from './baselines.js';
import { HAVE_GNU_TIME } from './measure.js';
import type { Options } from './options.js';
import type { MachineInfo } from './report.js';
import type { World } from './world.js';

export function machineInfo(opts: Options): MachineInfo {
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

export function negotiatedCipher(w: World): string {
  const r = spawnSync('ssh', ['-v', ...sshOptions(w), '-p', String(w.server.port), 'rf-shell@127.0.0.1', 'true'], {
    encoding: 'utf8',
  });
  return /server->client cipher: (\S+)/.exec(r.stderr)?.[1] ?? 'unknown';
}

/** The cipher order the bundle offers (its CIPHERS constant), first few names. */
export function bundleCiphers(bundle: string): string {
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
