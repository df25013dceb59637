/** Uploading over SFTP: one restore written below its root without following links. */

import { randomBytes } from 'node:crypto';
import { constants, createReadStream, openSync } from 'node:fs';
import { posix } from 'node:path';
import type { Stats } from 'ssh2';
import { UserError } from '../../errors.js';
import { safeJoin } from '../../plan/paths.js';
import { safeText } from '../../report/reporter.js';
import { remotePathOf } from '../entries.js';
import type { OutgoingItem, UploadRequest, UploadResult } from '../types.js';
import { Download } from './download.js';
import {
  CHUNK,
  forEachLimited,
  messageOf,
  NO_SUCH_FILE,
  OP_UNSUPPORTED,
  REQUESTS_PER_FILE,
  Sftp,
  statusOf,
} from './io.js';
import { sftpWriteTime, typeOf } from './listing.js';

/**
 * One `upload` request: the previous contents kept aside, folders made (parents first), files and
 * links written to temp names beside their place and renamed over it (many at once), then the
 * folders' owners, modes and mtimes, which writing into them would have disturbed.
 *
 * Nothing below the root is followed, as on the tar side: a link where a folder goes is removed and a
 * real folder made (rsync's way), a file or link is renamed over whatever link holds its name, a
 * file root where the server has a folder is refused, and folders' owners, modes and times are set
 * with lsetstat (never through a link). The root itself, when it is a link, is followed only when the
 * link and every folder above it belong to root or the login user (see resolveRoot). SFTP works by
 * path only, so races remain with an account that swaps a folder below the root for a link at the
 * very moment: between a folder made or checked here and a file written into it, and, where the
 * server lacks lsetstat or refuses it for a mode (a chroot without /proc), between a folder's check
 * and its setstat.
 */
export class UploadJob {
  private readonly ownerNotSet: string[] = [];
  /** The root written to: the request's, or where the admin's link it is points (see resolveRoot). */
  private root: string;

  constructor(
    private readonly io: Sftp,
    private readonly req: UploadRequest,
    private readonly concurrency: number,
    private readonly window: number,
  ) {
    this.root = req.root;
  }

  async run(): Promise<UploadResult> {
    const { req } = this;
    if (req.rootType === 'dir') this.root = await this.resolveRoot(req.root);
    await this.keepPrevious();
    await this.makeDir(posix.dirname(this.root));
    if (req.rootType === 'dir') await this.makeRealDir(this.root);
    else if ((await this.lstatOrNull(this.root))?.isDirectory()) {
      throw new UserError(
        `${safeText(this.root)} is a folder on the server where the stored copy has a file: nothing was written in it`,
      );
    }
    const levels = byDepth(req.items.filter((i) => i.type === 'dir'));
    for (const level of levels)
      await this.each(
        level.filter((d) => d.rel !== ''),
        (d) => this.makeRealDir(this.place(d.rel)),
      );
    await this.each(
      req.items.filter((i) => i.type !== 'dir'),
      (item) => this.putItem(item),
    );
    // Deepest first: a parent made read-only or unsearchable would block its children's changes.
    for (const level of levels.reverse()) await this.each(level, (d) => this.finishDir(d));
    return { ownerNotSet: this.ownerNotSet };
  }

  private each<T>(items: readonly T[], task: (item: T) => Promise<void>): Promise<void> {
    return forEachLimited(items, this.concurrency, task);
  }

  private place(rel: string): string {
    const path = safeJoin(this.root, rel);
    if (path === null)
      throw new Error(`refusing to write "${safeText(rel)}": it would land outside ${safeText(this.root)}`);
    return path;
  }

  /**
   * The root as followed: while it is a link, the link must belong to root or the login user, and so
   * must every folder above it (else anyone who may write there could point it anywhere); a
   * provisioner's /var/lib/mysql -> /data/mysql is followed, as rsync follows its transfer root.
   */
  private async resolveRoot(root: string): Promise<string> {
    let trusted: Set<number> | undefined;
    for (let hops = 0; ; hops++) {
      const st = await this.lstatOrNull(root);
      if (!st?.isSymbolicLink()) return root;
      const target = await this.io.readlink(root);
      const through = `refusing to restore through ${safeText(root)}: it is a link to ${safeText(target)}`;
      if (hops >= 8) throw new UserError(`${through}, one link too many`);
      trusted ??= await this.trustedOwners();
      for (let up = root; up !== '/' && up !== '.'; up = posix.dirname(up)) {
        const owner = up === root ? st.uid : (await this.io.lstat(up)).uid;
        if (trusted.has(owner)) continue;
        const what = up === root ? 'the link belongs to' : `${safeText(up)}, a folder above it, belongs to`;
        throw new UserError(
          `${through} and ${what} uid ${owner}; a destination that is a link is followed only when the link and every folder above it belong to root or the login user`,
        );
      }
      root = (target.startsWith('/') ? posix.normalize(target) : posix.join(posix.dirname(root), target)).replace(
        /(.)\/+$/,
        '$1',
      );
    }
  }

  /**
   * Root and the login user. SFTP does not say who the login is: the owner of the folder the session
   * starts in (the home) stands for it; in a chroot that is root, which only trusts less.
   */
  private async trustedOwners(): Promise<Set<number>> {
    return new Set([0, (await this.io.stat('.')).uid]);
  }

  private async lstatOrNull(path: string): Promise<Stats | null> {
    try {
      return await this.io.lstat(path);
    } catch (err) {
      if (statusOf(err) !== NO_SUCH_FILE) throw err;
      return null;
    }
  }

  /**
   * A real folder at `path` (the root or below it): a link there is removed, never followed, and a
   * folder made in its place, as rsync does; anything else in the way is an error.
   */
  private async makeRealDir(path: string): Promise<void> {
    const st = await this.lstatOrNull(path);
    if (st?.isDirectory()) return;
    try {
      if (st?.isSymbolicLink()) await this.io.unlink(path);
      await this.io.mkdir(path);
    } catch (err) {
      // Another task may create it meanwhile.
      if ((await this.lstatOrNull(path))?.isDirectory()) return;
      throw new Error(`cannot create the folder ${safeText(path)}: ${safeText(messageOf(err))}`);
    }
  }

  /** A folder about to be changed by path must still be one (not a link swapped in since). */
  private async mustBeRealDir(path: string): Promise<void> {
    if ((await this.lstatOrNull(path))?.isDirectory()) return;
    throw new UserError(
      `${safeText(path)} is not a real folder on the server (a link, or replaced meanwhile): nothing was written through it`,
    );
  }

  /** True when every folder from the root down to `rel`'s is a real folder, not a link. */
  private async reachedWithoutLinks(rel: string): Promise<boolean> {
    let path = this.root;
    for (const part of rel.split('/').slice(0, -1)) {
      path = posix.join(path, part);
      if (!(await this.lstatOrNull(path))?.isDirectory()) return false;
    }
    return true;
  }

  /**
   * Each file or link about to be replaced goes to previousDir + its absolute path, linked if possible.
   * One reached only through a link below the root is not the destination's: it is not kept.
   */
  private async keepPrevious(): Promise<void> {
    if (this.req.keepPrevious.length === 0) return;
    const dir = await this.expandHome(this.req.previousDir);
    await this.each(this.req.keepPrevious, async (rel) => {
      const from = this.place(rel);
      const to = posix.join(dir, remotePathOf(this.req.root, rel));
      if (!(await this.reachedWithoutLinks(rel))) return;
      try {
        await this.makeDir(posix.dirname(to));
        // A hard link costs nothing; across filesystems, or where the server refuses it, copy.
        await this.io.hardlink(from, to).catch((err: unknown) => {
          if (statusOf(err) === undefined) throw err;
          return this.copy(from, to);
        });
      } catch (err) {
        throw new Error(
          `could not keep the previous content of ${safeText(from)} in ${safeText(dir)}: ${safeText(messageOf(err))}`,
        );
      }
    });
  }

  /** "~/" is where the SFTP session starts: the home, or the start folder of a chroot. */
  private async expandHome(dir: string): Promise<string> {
    if (!dir.startsWith('~/')) return dir;
    return posix.join(await this.io.realpath('.'), dir.slice(2));
  }

  /** `cp -p` over SFTP: a link is made anew; a file's bytes come down and go back up with its mode and mtime. */
  private async copy(from: string, to: string): Promise<void> {
    const st = await this.io.lstat(from);
    if (typeOf(st.mode) === 'symlink') return this.putSymlink(to, await this.io.readlink(from));
    const download = new Download(this.io, from, this.window);
    try {
      const file = await download.handOver();
      if (typeof file === 'string') throw new Error(file);
      await this.putContent(to, () => file.stream, { mode: st.mode & 0o7777, mtime: st.mtime });
    } finally {
      download.abort();
      await download.closed;
    }
  }

  /** mkdir -p: an existing folder (or a link to one) will do; anything else in the way is an error. */
  private async makeDir(path: string): Promise<void> {
    try {
      await this.io.mkdir(path);
    } catch (err) {
      if (await this.isDir(path)) return;
      if (statusOf(err) !== NO_SUCH_FILE || path === '/')
        throw new Error(`cannot create the folder ${safeText(path)}: ${safeText(messageOf(err))}`);
      await this.makeDir(posix.dirname(path));
      // Another task may create it meanwhile (keepPrevious makes shared parents in parallel).
      await this.io.mkdir(path).catch(async (again: unknown) => {
        if (!(await this.isDir(path))) throw again;
      });
    }
  }

  private async isDir(path: string): Promise<boolean> {
    try {
      return typeOf((await this.io.stat(path)).mode) === 'dir';
    } catch (err) {
      if (statusOf(err) === undefined) throw err;
      return false;
    }
  }

  private async putItem(item: OutgoingItem): Promise<void> {
    const dest = this.place(item.rel);
    const progress = this.req.progress;
    if (item.type === 'symlink') await this.putSymlink(dest, item.target ?? '', item);
    else
      await this.putContent(
        dest,
        () => {
          const source = createReadStream('', {
            fd: openSync(item.source!, constants.O_RDONLY | constants.O_NOFOLLOW),
            highWaterMark: 8 * CHUNK,
          });
          return progress ? counted(source, progress.bytes) : source;
        },
        item,
        item,
      );
    progress?.fileDone();
  }

  /**
   * Content to a temp file beside `dest`, then owner, mode, mtime, then renamed over `dest` atomically.
   * The content is opened only once the temp file is, so nothing can fail unobserved meanwhile.
   */
  private async putContent(
    dest: string,
    content: () => AsyncIterable<Buffer>,
    meta: { mode: number; mtime: number },
    owner?: OutgoingItem,
  ): Promise<void> {
    const temp = tempBeside(dest);
    try {
      // Exclusive create: a link planted at the temp name is never followed.
      const handle = await this.io.open(temp, 'wx', { mode: 0o600 });
      try {
        await writeAll(this.io, handle, content());
        // Owner before mode: chown clears the setuid and setgid bits.
        await this.setOwner(owner, (uid, gid) => this.io.fchown(handle, uid, gid));
        const time = sftpWriteTime(meta.mtime);
        await this.io.fsetstat(handle, { mode: meta.mode, atime: time, mtime: time });
      } catch (err) {
        await this.io.close(handle).catch(() => undefined);
        throw err;
      }
      await this.io.close(handle);
      await this.io.rename(temp, dest);
    } catch (err) {
      await this.io.unlink(temp).catch(() => undefined);
      throw err;
    }
  }

  private async putSymlink(dest: string, target: string, owner?: OutgoingItem): Promise<void> {
    const temp = tempBeside(dest);
    try {
      await this.io.symlink(target, temp);
      await this.setOwner(owner, (uid, gid) => this.io.lsetstat(temp, { uid, gid }));
      if (owner) await this.setLinkTime(temp, owner.mtime);
      await this.io.rename(temp, dest);
    } catch (err) {
      await this.io.unlink(temp).catch(() => undefined);
      throw err;
    }
  }

  /**
   * A link's own time, as tar sets it: lsetstat never follows the link (OpenSSH: utimensat with
   * AT_SYMLINK_NOFOLLOW). Without it (or refused), the link keeps the time it was made at, as
   * `rsync -a` leaves it: not worth failing a restore for.
   */
  private async setLinkTime(path: string, mtime: number): Promise<void> {
    const time = sftpWriteTime(mtime);
    await this.io.lsetstat(path, { atime: time, mtime: time }).catch((err: unknown) => {
      if (statusOf(err) === undefined) throw err;
    });
  }

  /**
   * lsetstat never follows a link (OpenSSH: lchown, and fchmodat and utimensat with
   * AT_SYMLINK_NOFOLLOW), so a link swapped in since the folder was made is left alone. Where the
   * server lacks it or refuses it, the folder is checked first and changed by path.
   */
  private async finishDir(item: OutgoingItem): Promise<void> {
    const path = this.place(item.rel);
    await this.setOwner(item, (uid, gid) =>
      this.io.lsetstat(path, { uid, gid }).catch(async (err: unknown) => {
        if (statusOf(err) !== OP_UNSUPPORTED) throw err;
        await this.mustBeRealDir(path);
        await this.io.chown(path, uid, gid);
      }),
    );
    const time = sftpWriteTime(item.mtime);
    const attrs = { mode: item.mode, atime: time, mtime: time };
    try {
      await this.io.lsetstat(path, attrs);
    } catch (err) {
      if (statusOf(err) === undefined) throw err;
      await this.mustBeRealDir(path);
      await this.io.setstat(path, attrs);
    }
  }

  /** Owner and group when asked for; a refusal (the login is not root) is reported, not fatal. */
  private async setOwner(
    item: OutgoingItem | undefined,
    apply: (uid: number, gid: number) => Promise<void>,
  ): Promise<void> {
    if (!this.req.chown || !item) return;
    try {
      await apply(ownerId(item.user, item.uid), ownerId(item.group, item.gid));
    } catch (err) {
      if (statusOf(err) === undefined) throw err;
      this.ownerNotSet.push(item.rel);
    }
  }
}

/** SFTP cannot look names up: a numeric name (an owner given as "33:33") is the id, else the stored id. */
function ownerId(name: string, id: number): number {
  return /^\d+$/.test(name) ? Number(name) : id;
}

/** Folders grouped by depth, shallowest first (the root, rel '', is depth 0). */
function byDepth(dirs: OutgoingItem[]): OutgoingItem[][] {
  const levels: OutgoingItem[][] = [];
  for (const d of dirs) (levels[d.rel === '' ? 0 : d.rel.split('/').length] ??= []).push(d);
  return levels.filter((l) => l !== undefined);
}

function tempBeside(path: string): string {
  return posix.join(posix.dirname(path), `.remote-files-${randomBytes(6).toString('hex')}.tmp`);
}

/** Writes a stream at increasing offsets with up to REQUESTS_PER_FILE writes in flight. */
async function writeAll(io: Sftp, handle: Buffer, content: AsyncIterable<Buffer>): Promise<void> {
  const pending = new Set<Promise<void>>();
  let failure: { error: unknown } | undefined;
  let position = 0;
  for await (const data of content) {
    for (let at = 0; at < data.length; at += CHUNK) {
      const piece = data.subarray(at, at + CHUNK);
      const sent: Promise<void> = io.write(handle, piece, position).then(
        () => void pending.delete(sent),
        (error: unknown) => {
          failure ??= { error };
          pending.delete(sent);
        },
      );
      pending.add(sent);
      position += piece.length;
      if (pending.size >= REQUESTS_PER_FILE) await Promise.race(pending);
      if (failure) throw failure.error;
    }
  }
  await Promise.all(pending);
  if (failure) throw failure.error;
}

/** The chunks of `source`, each told to `onBytes` as it is taken. */
async function* counted(source: AsyncIterable<Buffer>, onBytes: (n: number) => void): AsyncIterable<Buffer> {
  for await (const chunk of source) {
    onBytes(chunk.length);
    yield chunk;
  }
}
