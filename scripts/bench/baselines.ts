// The baselines' commands (rsync, scp, sftp, ssh cat) and the shaping proxies they and ours run through.
import { appendFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startDelayProxy } from './delay-proxy.js';
import type { Command } from './measure.js';
import type { Endpoint, World } from './world.js';

// ---------------------------------------------------------------- commands

export function sshOptions(w: World): string[] {
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

const at = (ep: Endpoint): string => `${ep.user}@127.0.0.1`;

export function rsyncDown(w: World, ep: Endpoint, src: string, dest: string, flags = '-a'): Command {
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
export function rsyncFile(w: World, ep: Endpoint, src: string, dest: string): Command {
  return {
    argv: ['rsync', '-a', '-e', ['ssh', ...sshOptions(w), '-p', String(ep.port)].join(' '), `${at(ep)}:${src}`, dest],
  };
}
export function rsyncUp(w: World, ep: Endpoint, src: string, dest: string, flags = '-a'): Command {
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
export function scpDown(w: World, ep: Endpoint, src: string, dest: string): Command {
  return { argv: ['scp', '-r', '-q', ...sshOptions(w), '-P', String(ep.port), `${at(ep)}:${src}`, dest] };
}
export function scpUp(w: World, ep: Endpoint, src: string, dest: string): Command {
  return { argv: ['scp', '-r', '-q', ...sshOptions(w), '-P', String(ep.port), src, `${at(ep)}:${dest}`] };
}
/** `sftp -b` with one batch line (get -r / put -r / get). */
export function sftpBatch(w: World, ep: Endpoint, line: string): Command {
  const batch = join(w.tmp, `batch-${Math.random().toString(36).slice(2)}`);
  writeFileSync(batch, `${line}\n`);
  return { argv: ['sftp', '-q', '-b', batch, ...sshOptions(w), '-P', String(ep.port), at(ep)] };
}
export function sshCat(w: World, ep: Endpoint, src: string, dest: string): Command {
  return { argv: ['ssh', ...sshOptions(w), '-p', String(ep.port), at(ep), 'cat', src], stdoutFile: dest };
}
/** The shaping proxy of `mbit` Mbit/s per direction (and the link delay), started once; its port is added to known_hosts. */
export async function needLink(w: World, mbit: number): Promise<void> {
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
