import { randomBytes } from 'node:crypto';
import {
  constants,
  createReadStream,
  createWriteStream,
  closeSync,
  fstatSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readlinkSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  chmodSync,
  utimesSync,
  lutimesSync,
  readSync,
} from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import tar, { type Header, type Pack } from 'tar-stream';
import { TEMP_MARK } from '../transfer/local/tree.js';
import { formatBytes } from '../report/outcome-report.js';

/**
 * A store keeps the domain folder as ONE tar file (its "snapshot") rather than as a zip or a tree of
 * files: zip loses modes and symlinks, and a cache archive extracted in place by GNU tar applies the
 * umask and merges into what is there. A snapshot is written by us and read only through the strict
 * unpacker below, because its content came from a server: a salvaged symlink to /etc/passwd must stay
 * a symlink, and no member may ever be written outside the folder or through a link.
 */

export interface SnapshotStats {
  files: number;
  dirs: number;
  symlinks: number;
  /** Bytes of file content. */
  bytes: number;
}

/** An archive member the unpacker refuses; nothing of the archive reaches the domain folder. */
export class UnsafeSnapshotError extends Error {
  override name = 'UnsafeSnapshotError';
}

const BLOCK = 512;
/** tar-stream ends every archive with two zero blocks; a snapshot without them was cut short. */
const END_OF_ARCHIVE = 2 * BLOCK;

/**
 * Packs `dir` (its contents, not the folder itself) into a new tar file `outFile`. Links are stored as
 * links and never followed, modes and whole-second mtimes kept. Anything that is neither a file, a
 * folder nor a symlink (a socket, a fifo) cannot be restored by any store and is reported to `onSkip`.
 */
export async function packSnapshot(
  dir: string,
  outFile: string,
  onSkip: (rel: string, why: string) => void = () => undefined,
): Promise<SnapshotStats> {
  const st = lstatSync(dir, { throwIfNoEntry: false });
  if (!st?.isDirectory()) throw new Error(`${dir}: nothing to store (the folder does not exist)`);
  const stats: SnapshotStats = { files: 0, dirs: 0, symlinks: 0, bytes: 0 };
  const pack = tar.pack();
  // 'wx': never write through something already at that name.
  const written = pipeline(pack, createWriteStream(outFile, { flags: 'wx', mode: 0o600 }));
  const add = (header: Partial<Header> & { name: string }, content?: Buffer) =>
    new Promise<void>((resolve, reject) => {
      const cb = (err?: Error | null) => (err ? reject(err) : resolve());
      if (content) pack.entry(header, content, cb);
      else pack.entry(header, cb);
    });

  const visit = async (rel: string): Promise<void> => {
    const abs = rel === '' ? dir : join(dir, rel);
    for (const name of readdirSync(abs).sort()) {
      const childRel = rel === '' ? name : `${rel}/${name}`;
      // A leftover of a run cut off mid-write (LocalTree's temp names): not part of the salvage.
      if (name.startsWith(TEMP_MARK)) continue;
      const childAbs = join(abs, name);
      const cst = lstatSync(childAbs);
      const base = { mode: cst.mode & 0o777, mtime: wholeSeconds(cst.mtimeMs) };
      if (cst.isDirectory()) {
        await add({ ...base, name: `${childRel}/`, type: 'directory' });
        stats.dirs++;
        await visit(childRel);
      } else if (cst.isSymbolicLink()) {
        await add({ ...base, name: childRel, type: 'symlink', linkname: readlinkSync(childAbs) });
        stats.symlinks++;
      } else if (cst.isFile()) {
        stats.bytes += await addFile(pack, childAbs, childRel);
        stats.files++;
      } else {
        onSkip(childRel, 'neither a file, a folder nor a symlink');
      }
    }
  };

  try {
    await visit('');
    pack.finalize();
  } catch (err) {
    pack.destroy(err as Error);
    await written.catch(() => undefined);
    rmSync(outFile, { force: true });
    throw err;
  }
  await written;
  return stats;
}

/** Streams one file into the archive; O_NOFOLLOW so a file swapped for a link after lstat is refused, not read. */
async function addFile(pack: Pack, abs: string, rel: string): Promise<number> {
  const fd = openSync(abs, constants.O_RDONLY | constants.O_NOFOLLOW);
  let closed = false;
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new Error(`${abs}: changed while it was being stored`);
    let settle: (err?: Error | null) => void = () => undefined;
    // tar-stream calls back once the entry is written, or with why it failed (a size mismatch).
    const done = new Promise<void>((resolve, reject) => {
      settle = (err) => (err ? reject(err) : resolve());
    });
    const entry = pack.entry(
      { name: rel, type: 'file', size: st.size, mode: st.mode & 0o777, mtime: wholeSeconds(st.mtimeMs) },
      (err) => settle(err),
    );
    // Failures arrive through the callback; without a listener an 'error' event would be thrown.
    entry.on('error', () => undefined);
    // The read stream owns the descriptor from here on and closes it.
    closed = true;
    const input = createReadStream('', { fd, autoClose: true });
    for await (const chunk of input) {
      // tar-stream's entry is a streamx stream: honour its back-pressure by hand.
      if (!entry.write(chunk as Buffer))
        await Promise.race([new Promise<void>((resolve) => entry.once('drain', () => resolve())), done]);
    }
    // tar-stream fails the entry if the file grew or shrank since fstat: the archive never lies about a size.
    entry.end(null);
    await done;
    return st.size;
  } finally {
    if (!closed) closeSync(fd);
  }
}

function wholeSeconds(ms: number): Date {
  return new Date(Math.max(0, Math.floor(ms / 1000)) * 1000);
}

interface PendingDir {
  abs: string;
  mode: number;
  mtime: Date;
}

/**
 * Unpacks a snapshot into `destDir`, which must be missing or empty (a fresh folder), and refuses the whole
 * archive at the first unsafe member: an absolute name, a `..`, a name that is not in canonical form,
 * a duplicate, a member below anything but a folder of this archive (so nothing is ever written through a
 * symlink), a type other than file, folder or symlink, or a size that does not match. Files are written
 * to a temp name and renamed. On error `destDir` may hold a part of the archive: callers unpack into a
 * temp folder and drop it (see `restoreSnapshot`).
 */
export async function unpackSnapshot(tarFile: string, destDir: string): Promise<SnapshotStats> {
  mkdirSync(destDir, { recursive: true });
  if (readdirSync(destDir).length > 0) throw new Error(`${destDir}: a snapshot is only unpacked into an empty folder`);
  const stats: SnapshotStats = { files: 0, dirs: 0, symlinks: 0, bytes: 0 };
  /** What this archive created, by canonical name: the only folders a member may go into. */
  const seen = new Map<string, 'dir' | 'file' | 'symlink'>([['', 'dir']]);
  const dirs: PendingDir[] = [];
  /** Where the data of the last member ends: everything after it must be the end-of-archive blocks. */
  let dataEnd = 0;

  const extract = tar.extract();
  const source = createReadStream(tarFile);
  source.on('error', (err) => extract.destroy(err));
  source.pipe(extract);

  for await (const entry of extract) {
    const h = entry.header;
    const refuse = (why: string): never => {
      entry.destroy();
      extract.destroy();
      source.destroy();
      throw new UnsafeSnapshotError(`${tarFile}: refusing member "${printable(h.name)}": ${why}`);
    };
    const type = h.type === 'directory' ? 'dir' : h.type === 'file' ? 'file' : h.type === 'symlink' ? 'symlink' : null;
    if (type === null) refuse(`its type (${h.type ?? 'unknown'}) is not a file, folder or symlink`);
    const name = canonicalName(h.name, type === 'dir');
    if (typeof name !== 'string') return refuse(name.why);
    if (seen.has(name)) refuse('it appears twice in the archive');
    const slash = name.lastIndexOf('/');
    const parent = slash < 0 ? '' : name.slice(0, slash);
    if (seen.get(parent) !== 'dir')
      refuse(
        seen.has(parent)
          ? `"${printable(parent)}" is not a folder of this archive (nothing is written through a link)`
          : `its folder "${printable(parent)}" is not in the archive before it`,
      );
    const size = h.size ?? 0;
    if (type !== 'file' && size !== 0) refuse(`a ${type} cannot carry ${size} bytes of content`);
    const mode = (h.mode ?? 0o644) & 0o777;
    const mtime = h.mtime ?? new Date(0);
    // tar-stream reports where each member's data starts; the truncation check below depends on it.
    const offset = (h as Header & { byteOffset?: number }).byteOffset;
    if (typeof offset !== 'number') throw new Error('tar-stream did not report the offset of an archive member');
    dataEnd = Math.max(dataEnd, offset + Math.ceil(size / BLOCK) * BLOCK);
    const abs = join(destDir, ...name.split('/'));
    seen.set(name, type as 'dir' | 'file' | 'symlink');

    if (type === 'dir') {
      entry.resume();
      // Owner access stays, so the folder can be filled now and replaced or removed later.
      mkdirSync(abs, { mode: 0o700 });
      dirs.push({ abs, mode: mode | 0o700, mtime });
      stats.dirs++;
    } else if (type === 'symlink') {
      entry.resume();
      const target = h.linkname ?? '';
      if (target === '' || target.includes('\0')) refuse('a symlink needs a target without NUL bytes');
      symlinkSync(target, abs);
      lutimesSync(abs, mtime, mtime);
      stats.symlinks++;
    } else {
      const tmp = join(dirname(abs), `${TEMP_MARK}${randomBytes(6).toString('hex')}`);
      let got = 0;
      try {
        await pipeline(
          entry,
          async function* (chunks: AsyncIterable<unknown>) {
            for await (const c of chunks) {
              const chunk = c as Buffer;
              got += chunk.length;
              if (got > size)
                throw new UnsafeSnapshotError(
                  `${tarFile}: member "${printable(name)}" holds more than its declared ${size} bytes`,
                );
              yield chunk;
            }
          },
          createWriteStream(tmp, { flags: 'wx', mode: 0o600 }),
        );
        if (got !== size)
          throw new UnsafeSnapshotError(
            `${tarFile}: member "${printable(name)}" holds ${got} bytes, its header declares ${size}`,
          );
        // Same rule as the LocalTree: the permission bits, and always readable and writable by us.
        chmodSync(tmp, mode | 0o600);
        utimesSync(tmp, mtime, mtime);
        renameSync(tmp, abs);
      } catch (err) {
        rmSync(tmp, { force: true });
        extract.destroy();
        source.destroy();
        throw err;
      }
      stats.files++;
      stats.bytes += size;
    }
  }

  checkComplete(tarFile, dataEnd);
  // Deepest first, after their contents: creating a member changes its folder's mtime.
  for (const d of dirs.reverse()) {
    chmodSync(d.abs, d.mode);
    utimesSync(d.abs, d.mtime, d.mtime);
  }
  return stats;
}

/**
 * tar-stream skips zero blocks and stops quietly at the end of the input, so an archive cut off right
 * after a member would unpack as a smaller but valid-looking copy. A whole snapshot ends with the two
 * zero blocks after its last member: demand them.
 */
function checkComplete(tarFile: string, dataEnd: number): void {
  const size = statSync(tarFile).size;
  const tail = size - dataEnd;
  if (tail < END_OF_ARCHIVE)
    throw new UnsafeSnapshotError(
      `${tarFile}: the snapshot is truncated (no end-of-archive marker after its last member)`,
    );
  const fd = openSync(tarFile, 'r');
  try {
    const buf = Buffer.alloc(Math.min(tail, 1 << 20));
    for (let pos = dataEnd; pos < size;) {
      const n = readSync(fd, buf, 0, Math.min(buf.length, size - pos), pos);
      if (n <= 0) break;
      if (buf.subarray(0, n).some((b) => b !== 0))
        throw new UnsafeSnapshotError(`${tarFile}: unexpected data after the end of the snapshot`);
      pos += n;
    }
  } finally {
    closeSync(fd);
  }
}

/** The member name in canonical form (no trailing slash), or why it is refused. */
function canonicalName(raw: string, isDir: boolean): string | { why: string } {
  if (raw.includes('\0')) return { why: 'its name holds a NUL byte' };
  if (raw.startsWith('/')) return { why: 'its name is absolute' };
  const name = isDir && raw.endsWith('/') ? raw.slice(0, -1) : raw;
  const parts = name.split('/');
  if (parts.includes('..')) return { why: 'its name climbs out with ".."' };
  if (name === '' || parts.some((p) => p === '' || p === '.'))
    return { why: 'its name is empty or not in canonical form (".", "//" or a trailing "/")' };
  return name;
}

/** Member names come from a server: shown with control characters escaped, never raw in a log. */
function printable(s: string | undefined): string {
  return JSON.stringify(s ?? '')
    .slice(1, -1)
    .replace(/[\u007f-\u009f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/**
 * Replaces `domainDir` with the snapshot's content, never leaving a half-replaced folder: the archive is
 * unpacked (and validated) into a temp folder beside it, then the two are swapped by renames. If anything
 * fails before the swap, the domain folder is untouched.
 */
export async function restoreSnapshot(tarFile: string, domainDir: string): Promise<SnapshotStats> {
  const parent = dirname(domainDir);
  const base = basename(domainDir);
  mkdirSync(parent, { recursive: true });
  // Beside the target, so the swap is a rename on one filesystem.
  const fresh = mkdtempSync(join(parent, `.${base}.rf-new-`));
  let stats: SnapshotStats;
  try {
    stats = await unpackSnapshot(tarFile, fresh);
    const old = lstatSync(domainDir, { throwIfNoEntry: false });
    chmodSync(fresh, old?.isDirectory() ? old.mode & 0o777 : 0o755);
    if (!old) {
      renameSync(fresh, domainDir);
      return stats;
    }
    const aside = join(parent, `.${base}.rf-old-${randomBytes(6).toString('hex')}`);
    renameSync(domainDir, aside);
    try {
      renameSync(fresh, domainDir);
    } catch (err) {
      renameSync(aside, domainDir);
      throw err;
    }
    rmSync(aside, { recursive: true, force: true });
    return stats;
  } catch (err) {
    rmSync(fresh, { recursive: true, force: true });
    throw err;
  }
}

/** "12 files, 3 folders, 1 symlink, 4.1 MiB": for summaries. */
export function describeStats(s: SnapshotStats): string {
  const n = (k: number, one: string, many: string) => `${k} ${k === 1 ? one : many}`;
  return `${n(s.files, 'file', 'files')}, ${n(s.dirs, 'folder', 'folders')}, ${n(s.symlinks, 'symlink', 'symlinks')}, ${formatBytes(s.bytes)}`;
}

/**
 * The toolkit clients read their configuration from process.env (and @actions/cache also from the
 * working directory). Runs `fn` with `overlay` applied to process.env (an undefined value removes the
 * variable) and, if given, with `cwd` as working directory; both are put back afterwards. Stores run one
 * after another, so nothing else observes the change.
 */
export async function withProcessEnv<T>(
  overlay: Record<string, string | undefined>,
  cwd: string | undefined,
  fn: () => Promise<T>,
): Promise<T> {
  const saved = new Map<string, string | undefined>();
  for (const [k, v] of Object.entries(overlay)) {
    if (process.env[k] === v) continue;
    saved.set(k, process.env[k]);
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  const oldCwd = process.cwd();
  if (cwd !== undefined) process.chdir(cwd);
  try {
    return await fn();
  } finally {
    if (cwd !== undefined) process.chdir(oldCwd);
    for (const [k, v] of saved) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  }
}
