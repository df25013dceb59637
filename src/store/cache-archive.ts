import { spawn } from 'node:child_process';
import { closeSync, createReadStream, createWriteStream, openSync, readSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import tar from 'tar-stream';
import { safeText } from '../report/reporter.js';
import { UnsafeSnapshotError } from './snapshot.js';

/**
 * @actions/cache extracts an entry with `tar -x -P -C <workspace>`: absolute names and `..` in a poisoned
 * entry would be written anywhere on the runner before any check of ours. So the toolkit is never let
 * extract: while it restores, the `tar` it finds first on PATH is this shim, which only keeps a copy of
 * the downloaded archive. Our own reader then takes from that copy exactly the files the cache store
 * writes, as regular files, into a private folder, and refuses the entry for anything else.
 */
export function tarShim(dir: string, keep: string): string {
  const script = [
    '#!/bin/sh',
    '# remote-files: the cache archive is copied for our own strict reader, never extracted here (see cache-archive.ts).',
    'while [ $# -gt 0 ]; do',
    '  case $1 in',
    `    -xf) cp -- "$2" '${keep.replace(/'/g, `'\\''`)}'; exit $?;;`,
    '    -tf) exit 0;;',
    '  esac',
    '  shift',
    'done',
    'echo "remote-files: this tar only keeps a cache archive" >&2',
    'exit 2',
    '',
  ].join('\n');
  writeFileSync(join(dir, 'tar'), script, { mode: 0o700 });
  return dir;
}

/** Reads the archive's first bytes: zstd and gzip are what the toolkit writes. */
function codecOf(path: string): 'zstd' | 'gzip' | 'none' {
  const head = Buffer.alloc(4);
  const fd = openSync(path, 'r');
  try {
    readSync(fd, head, 0, 4, 0);
  } finally {
    closeSync(fd);
  }
  if (head.equals(Buffer.from([0x28, 0xb5, 0x2f, 0xfd]))) return 'zstd';
  if (head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  return 'none';
}

function decompressed(path: string): { stream: Readable; done: Promise<void> } {
  const codec = codecOf(path);
  if (codec === 'zstd') {
    // The toolkit compresses with --long=30; Node 20's zlib has no zstd, so the runner's zstd reads it.
    const z = spawn('zstd', ['-d', '--long=30', '-c', '--', path], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    z.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8').slice(0, 4096)));
    const done = new Promise<void>((resolve, reject) => {
      z.on('error', reject);
      z.on('close', (code) =>
        code === 0 ? resolve() : reject(new Error(`zstd could not read the cache archive: ${safeText(stderr.trim())}`)),
      );
    });
    // Awaited once the archive was read whole; refused before that, zstd's broken pipe is no news.
    done.catch(() => undefined);
    return { stream: z.stdout, done };
  }
  const raw = createReadStream(path);
  if (codec === 'none') return { stream: raw, done: Promise.resolve() };
  const gunzip = createGunzip();
  raw.on('error', (err) => gunzip.destroy(err));
  return { stream: raw.pipe(gunzip), done: Promise.resolve() };
}

/**
 * Takes from the cache archive exactly the `wanted` names (each a regular file, each once, each at most
 * its byte limit) into `outDir`, which the caller made private and empty. Any other member (an absolute
 * name, a `..`, a link, a second copy) refuses the entry: nothing of it is used.
 */
export async function readCacheArchive(
  archive: string,
  outDir: string,
  wanted: Map<string, number>,
  key: string,
): Promise<void> {
  const { stream, done } = decompressed(archive);
  const extract = tar.extract();
  stream.on('error', (err) => extract.destroy(err));
  stream.pipe(extract as unknown as Writable);
  const seen = new Set<string>();
  const refuse = (why: string): never => {
    stream.destroy();
    extract.destroy();
    throw new UnsafeSnapshotError(`cache entry "${safeText(key)}" ${why}: refused, nothing of it was used`);
  };
  for await (const entry of extract) {
    const { name, type, size = 0 } = entry.header;
    const limit = wanted.get(name);
    if (limit === undefined) refuse(`holds "${safeText(name)}", which remote-files never stores there`);
    if (type !== 'file') refuse(`holds "${safeText(name)}" as a ${type ?? 'unknown'} entry, not a file`);
    if (seen.has(name)) refuse(`holds "${safeText(name)}" twice`);
    if (size > limit!) refuse(`holds "${safeText(name)}" of ${size} bytes, more than it can be`);
    seen.add(name);
    await pipeline(entry, createWriteStream(join(outDir, name), { flags: 'wx', mode: 0o600 }));
  }
  await done;
}
