import { createHash, randomBytes } from 'node:crypto';
import { constants, createReadStream, openSync } from 'node:fs';
import { posix } from 'node:path';
import { Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import type { Attributes, FileEntryWithStats, InputAttributes, OpenMode, SFTPWrapper, Stats } from 'ssh2';
import { HostileServerError, UserError } from '../errors.js';
import { safeJoin } from '../plan/paths.js';
import { safeText } from '../report/reporter.js';
import { remotePathOf } from './entries.js';
import type { EntryListing, FetchResult, IncomingFile, OutgoingItem, RemoteFile, Transport, UploadRequest, UploadResult } from './types.js';

/** Bytes per READ/WRITE request: what OpenSSH's own sftp client and ssh2's fastGet use. */
const CHUNK = 32 * 1024;
/** Requests in flight per file: enough to keep a long link busy (2 MiB per round trip). */
const REQUESTS_PER_FILE = 64;
/** Content read ahead by `fetch` for all files together, so a 2 GB file is streamed, never held. */
const FETCH_MEMORY = 64 * 1024 * 1024;
/** What each download's stream may hold beyond its window. */
const STREAM_BUFFER = 2 * CHUNK;

// SFTP v3 status codes (draft-ietf-secsh-filexfer-02 §7).
const NO_SUCH_FILE = 2;
const PERMISSION_DENIED = 3;
const OP_UNSUPPORTED = 8;

const TYPES: Record<number, RemoteFile['type']> = { 0o100000: 'file', 0o040000: 'dir', 0o120000: 'symlink' };

/**
 * The transport for accounts with no shell (a chrooted `internal-sftp`). SFTP pays a round trip per
 * request, so nothing here waits for one answer before asking the next question: folders are read in
 * parallel, every file has many reads or writes in flight, and several files move at once.
 */
export class SftpTransport implements Transport {
  readonly name = 'sftp' as const;
  readonly canRunCommands = false;
  private readonly io: Sftp;
  private readonly concurrency: number;
  /** Bytes each download may read ahead of its consumer: the fetch memory shared by the files in flight. */
  private readonly window: number;

  /** How the wire is compressed (the SSH layer's zlib, or not), for the log. */
  readonly compression: string | undefined;

  /** `lost`: the connection's loss once it is gone, to report instead of ssh2's "No response from server". */
  constructor(sftp: SFTPWrapper, opts: { concurrency: number; lost?: () => Error | undefined; compression?: string }) {
    this.compression = opts.compression;
    this.io = new Sftp(sftp, opts.lost);
    this.concurrency = Math.max(1, Math.floor(opts.concurrency));
    this.window = Math.max(CHUNK, Math.floor(FETCH_MEMORY / this.concurrency) - STREAM_BUFFER);
  }

  async list(remotes: string[]): Promise<EntryListing[]> {
    const ctx: ListContext = { limit: new Limiter(this.concurrency), names: new OwnerNames() };
    const listings = await Promise.all(remotes.map((root) => this.listRoot(root, ctx)));
    for (const l of listings) if (l.status === 'ok') l.files.forEach((f) => ctx.names.apply(f));
    return listings;
  }

  /** SFTP has no hashing: each file comes down (prefetched like `fetch`) and is hashed here. */
  async checksums(remotes: string[]): Promise<Map<string, string>> {
    const sums = new Map<string, string>();
    await this.fetch(remotes, async (file) => {
      const hash = createHash('sha256');
      for await (const chunk of file.stream) hash.update(chunk as Buffer);
      sums.set(file.remote, hash.digest('hex'));
    });
    return sums;
  }

  /**
   * Files are handed to `onFile` one at a time, in the order asked, while up to `concurrency` of them
   * (the one being consumed included) are open and reading ahead within the shared memory window.
   */
  async fetch(remotes: string[], onFile: (file: IncomingFile) => Promise<void>): Promise<FetchResult> {
    const notSent: string[] = [];
    const reasons: string[] = [];
    const live = new Set<Download>();
    const queue: Download[] = [];
    let next = 0;
    try {
      while (queue.length > 0 || next < remotes.length) {
        while (next < remotes.length && queue.length < this.concurrency) queue.push(track(live, new Download(this.io, remotes[next++]!, this.window)));
        const download = queue.shift()!;
        const file = await download.handOver();
        if (typeof file === 'string') {
          notSent.push(download.remote);
          reasons.push(file);
          continue;
        }
        await onFile(file);
        // Whatever the consumer left unread is drained, so the download completes and its handle closes.
        file.stream.resume();
        await finished(file.stream);
      }
    } finally {
      for (const d of live) d.abort();
      await Promise.all([...live].map((d) => d.closed));
    }
    return { notSent, message: reasons.join('\n') };
  }

  upload(req: UploadRequest): Promise<UploadResult> {
    return new UploadJob(this.io, req, this.concurrency, this.window).run();
  }

  async removeFiles(paths: string[]): Promise<void> {
    await forEachLimited(paths, this.concurrency, (path) =>
      this.io.unlink(path).catch((err: unknown) => {
        if (statusOf(err) !== NO_SUCH_FILE) throw err;
      }),
    );
  }

  run(): Promise<{ code: number | null; output: string }> {
    return Promise.reject(
      new UserError('this account only offers SFTP (no shell), so commands cannot run on the server; run them from an account with a shell, or go without'),
    );
  }

  private async listRoot(root: string, ctx: ListContext): Promise<EntryListing> {
    let attrs: Stats;
    try {
      attrs = await ctx.limit.run(() => this.io.lstat(root));
    } catch (err) {
      // As on the tar side: permission refused is "denied", any other refusal is "missing".
      if (statusOf(err) === PERMISSION_DENIED) return { status: 'denied', reason: 'permission denied on a parent folder' };
      if (statusOf(err) !== undefined) return { status: 'missing' };
      throw err;
    }
    const record = await this.describe(root, '', attrs, ctx);
    if (record.type === 'file') record.readable = await ctx.limit.run(() => this.canOpen(root));
    if (!record.readable) return { status: 'denied', reason: record.type === 'dir' ? 'folder not readable' : 'file not readable' };
    if (record.type !== 'dir') return { status: 'ok', files: [record] };
    const below = await this.walk(root, '', ctx);
    if (below === null) return { status: 'denied', reason: 'folder not readable' };
    return { status: 'ok', files: [record, ...below] };
  }

  /**
   * The records below a folder, pre-order (each folder before its contents), its subfolders read in
   * parallel; null when the folder cannot be listed. An unreadable subfolder is listed, flagged, and
   * not entered.
   */
  private async walk(dir: string, rel: string, ctx: ListContext): Promise<RemoteFile[] | null> {
    const entries = await ctx.limit.run(() => this.readFolder(dir));
    if (entries === null) return null;
    const nested = await Promise.all(
      entries.map(async (entry) => {
        const childRel = rel === '' ? entry.filename : `${rel}/${entry.filename}`;
        const childPath = remotePathOf(dir, entry.filename);
        ctx.names.learn(entry);
        const record = await this.describe(childPath, childRel, entry.attrs, ctx);
        if (record.type !== 'dir') return [record];
        const below = await this.walk(childPath, childRel, ctx);
        record.readable = below !== null;
        return [record, ...(below ?? [])];
      }),
    );
    return nested.flat();
  }

  /**
   * A folder's entries sorted by name; null when the login may not list it. OpenSSH answers a folder
   * it may read but not search (r without x) with no entries at all, so an empty answer is confirmed
   * by a stat of "folder/.", which needs search permission.
   */
  private async readFolder(dir: string): Promise<FileEntryWithStats[] | null> {
    try {
      const entries = (await this.io.readdir(dir)).filter((e) => isChildName(e.filename, dir));
      if (entries.length === 0) await this.io.stat(`${dir === '/' ? '' : dir}/.`);
      entries.sort((a, b) => (a.filename < b.filename ? -1 : a.filename > b.filename ? 1 : 0));
      // A name listed twice (say, a link to /tmp and a folder with files) would store files below a link.
      const twice = entries.find((e, i) => i > 0 && entries[i - 1]!.filename === e.filename);
      if (twice) throw new HostileServerError(`the server listed "${safeText(twice.filename)}" twice in ${safeText(dir)}; refusing the listing`);
      return entries;
    } catch (err) {
      if (statusOf(err) !== undefined) return null;
      throw err;
    }
  }

  /** A record from a server's attributes; a link's target is read (a link that cannot be read is flagged). */
  private async describe(path: string, rel: string, attrs: Attributes, ctx: ListContext): Promise<RemoteFile> {
    const record = toRecord(rel, attrs);
    if (record.type !== 'symlink') return record;
    try {
      record.target = await ctx.limit.run(() => this.io.readlink(path));
    } catch (err) {
      if (statusOf(err) === undefined) throw err;
      record.target = '';
      record.readable = false;
    }
    return record;
  }

  /**
   * Only entry roots are opened to learn whether they are readable (one round trip each, as the tar
   * side reports a denied root file); files below a folder are found out by `fetch`.
   */
  private async canOpen(path: string): Promise<boolean> {
    try {
      await this.io.close(await this.io.open(path, 'r'));
      return true;
    } catch (err) {
      if (statusOf(err) === undefined) throw err;
      return false;
    }
  }
}

interface ListContext {
  limit: Limiter;
  names: OwnerNames;
}

/** Keeps a name from a folder listing: "." and ".." are skipped; anything but one plain name is refused. */
function isChildName(name: string, dir: string): boolean {
  if (name === '.' || name === '..') return false;
  if (name === '' || name.includes('/') || name.includes('\0')) {
    throw new HostileServerError(`the server listed "${safeText(name)}" in ${safeText(dir)}, which is not a plain file name; refusing the listing`);
  }
  return true;
}

function typeOf(mode: number): RemoteFile['type'] {
  return TYPES[mode & 0o170000] ?? 'other';
}

function toRecord(rel: string, a: Attributes): RemoteFile {
  // A server may leave attributes out (their flag unset); ssh2 then leaves them undefined.
  const mode = a.mode ?? 0;
  const uid = a.uid ?? 0;
  const gid = a.gid ?? 0;
  return {
    rel,
    type: typeOf(mode),
    size: a.size ?? 0,
    mtime: Math.floor(a.mtime ?? 0),
    mode: mode & 0o7777,
    uid,
    gid,
    user: String(uid),
    group: String(gid),
    readable: true,
  };
}

// OpenSSH's longname: `drwxr-xr-x    2 user     group        4096 Jan  1 12:00 name`.
const LONGNAME = /^[-a-zA-Z]{10}\S?\s+\d+\s+(\S+)\s+(\S+)\s+(\d+)\s/;
const OWNER_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]*\$?$/;

/**
 * SFTP v3 carries ids only, but a listing's "longname" (an `ls -l` line) names owner and group as
 * the server resolves them. Names are learnt from lines that parse unambiguously (the size matches)
 * and applied to every record with that id, entry roots included; otherwise the id is the name.
 */
class OwnerNames {
  private readonly users = new Map<number, string>();
  private readonly groups = new Map<number, string>();

  learn(entry: FileEntryWithStats): void {
    const m = LONGNAME.exec(entry.longname ?? '');
    if (!m || Number(m[3]) !== entry.attrs.size) return;
    if (OWNER_NAME.test(m[1]!)) this.users.set(entry.attrs.uid, m[1]!);
    if (OWNER_NAME.test(m[2]!)) this.groups.set(entry.attrs.gid, m[2]!);
  }

  apply(f: RemoteFile): void {
    f.user = this.users.get(f.uid) ?? f.user;
    f.group = this.groups.get(f.gid) ?? f.group;
  }
}

/**
 * One remote file read with up to REQUESTS_PER_FILE reads in flight, its bytes handed out in order
 * through `stream`. At most `window` bytes are asked for but not yet passed to the stream, so files
 * read ahead of their turn cost bounded memory. A failure before the file is handed over is the
 * file's own (`notSent`); after, it breaks the stream. A lost connection is never the file's own.
 */
class Download {
  readonly stream: Readable;
  readonly closed: Promise<void>;
  private readonly opened: Promise<void>;
  private markClosed!: () => void;
  private handle: Buffer | undefined;
  private size = 0;
  private mtime = 0;
  /** Where the content ends: the size fstat gave, lowered if the file turns out shorter. */
  private end = 0;
  private issued = 0;
  private delivered = 0;
  private inFlight = 0;
  private readonly arrived = new Map<number, Buffer>();
  /** The stream asked for data and has not refused a push since. */
  private wanted = true;
  private ended = false;
  private handed = false;
  /** No more requests: failed or aborted. */
  private stopped = false;
  private closing = false;
  private failure: string | undefined;
  private fatal: Error | undefined;

  constructor(
    private readonly io: Sftp,
    readonly remote: string,
    private readonly window: number,
  ) {
    this.stream = new Readable({
      highWaterMark: STREAM_BUFFER,
      read: () => {
        this.wanted = true;
        this.pump();
      },
    });
    // A failure reaches the consumer through the stream's state (iterating it or finished() rethrows);
    // this only keeps one raised before the consumer attaches from crashing the process.
    this.stream.on('error', () => undefined);
    this.closed = new Promise((done) => (this.markClosed = done));
    this.opened = this.open();
  }

  /** The open file for its consumer, or the reason it cannot be sent; throws when the connection is gone. */
  async handOver(): Promise<IncomingFile | string> {
    await this.opened;
    if (this.fatal) throw this.fatal;
    if (this.failure !== undefined) return this.failure;
    this.handed = true;
    return { remote: this.remote, size: this.size, mtime: this.mtime, stream: this.stream };
  }

  abort(): void {
    this.stopped = true;
    this.arrived.clear();
    this.stream.destroy();
    this.closeWhenIdle();
  }

  private async open(): Promise<void> {
    try {
      this.handle = await this.io.open(this.remote, 'r');
      const st = await this.io.fstat(this.handle);
      // The file may have been replaced by a folder or a device since it was listed.
      if (typeOf(st.mode) !== 'file') throw new StatusError('not a regular file', NO_SUCH_FILE);
      this.size = this.end = st.size;
      this.mtime = Math.floor(st.mtime);
    } catch (err) {
      this.fail(err);
    }
    this.pump();
  }

  private pump(): void {
    while (!this.stopped && this.handle && this.inFlight < REQUESTS_PER_FILE && this.issued < this.end && this.issued - this.delivered < this.window) {
      const length = Math.min(CHUNK, this.end - this.issued);
      this.request(this.issued, length);
      this.issued += length;
    }
    this.deliver();
  }

  private request(position: number, length: number): void {
    this.inFlight++;
    this.io.read(this.handle!, position, length).then(
      (data) => {
        this.inFlight--;
        this.arrive(position, length, data);
      },
      (err: unknown) => {
        this.inFlight--;
        this.fail(err);
      },
    );
  }

  private arrive(position: number, length: number, data: Buffer): void {
    // Reading stops at the size fstat gave, as tar does; an early end means the file shrank meanwhile.
    if (data.length === 0) this.end = Math.min(this.end, position);
    else {
      this.arrived.set(position, data);
      // A server may send fewer bytes than asked without being at the end: ask for the rest.
      if (data.length < length && !this.stopped) this.request(position + data.length, length - data.length);
    }
    this.pump();
  }

  private deliver(): void {
    if (!this.stopped) {
      let chunk: Buffer | undefined;
      while (this.wanted && this.delivered < this.end && (chunk = this.arrived.get(this.delivered))) {
        this.arrived.delete(this.delivered);
        this.delivered += chunk.length;
        this.wanted = this.stream.push(chunk);
      }
      if (this.handle && this.delivered >= this.end && !this.ended) {
        this.ended = true;
        this.stream.push(null);
      }
    }
    this.closeWhenIdle();
  }

  private fail(err: unknown): void {
    const error = err instanceof Error ? err : new Error(String(err));
    if (this.handed) this.stream.destroy(error);
    else if (statusOf(error) !== undefined) this.failure ??= `${safeText(this.remote)}: ${safeText(error.message)}`;
    else this.fatal ??= error;
    this.stopped = true;
    this.closeWhenIdle();
  }

  private closeWhenIdle(): void {
    if (this.closing || this.inFlight > 0 || !(this.stopped || this.ended)) return;
    this.closing = true;
    const closing = this.handle ? this.io.close(this.handle).catch(() => undefined) : Promise.resolve();
    void closing.then(this.markClosed);
  }
}

function track(live: Set<Download>, d: Download): Download {
  live.add(d);
  void d.closed.then(() => live.delete(d));
  return d;
}

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
class UploadJob {
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
      throw new UserError(`${safeText(this.root)} is a folder on the server where the stored copy has a file: nothing was written in it`);
    }
    const levels = byDepth(req.items.filter((i) => i.type === 'dir'));
    for (const level of levels) await this.each(level.filter((d) => d.rel !== ''), (d) => this.makeRealDir(this.place(d.rel)));
    await this.each(req.items.filter((i) => i.type !== 'dir'), (item) => this.putItem(item));
    // Deepest first: a parent made read-only or unsearchable would block its children's changes.
    for (const level of levels.reverse()) await this.each(level, (d) => this.finishDir(d));
    return { ownerNotSet: this.ownerNotSet };
  }

  private each<T>(items: readonly T[], task: (item: T) => Promise<void>): Promise<void> {
    return forEachLimited(items, this.concurrency, task);
  }

  private place(rel: string): string {
    const path = safeJoin(this.root, rel);
    if (path === null) throw new Error(`refusing to write "${safeText(rel)}": it would land outside ${safeText(this.root)}`);
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
        throw new UserError(`${through} and ${what} uid ${owner}; a destination that is a link is followed only when the link and every folder above it belong to root or the login user`);
      }
      root = (target.startsWith('/') ? posix.normalize(target) : posix.join(posix.dirname(root), target)).replace(/(.)\/+$/, '$1');
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
    throw new UserError(`${safeText(path)} is not a real folder on the server (a link, or replaced meanwhile): nothing was written through it`);
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
        throw new Error(`could not keep the previous content of ${safeText(from)} in ${safeText(dir)}: ${safeText(messageOf(err))}`);
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
      if (statusOf(err) !== NO_SUCH_FILE || path === '/') throw new Error(`cannot create the folder ${safeText(path)}: ${safeText(messageOf(err))}`);
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
    if (item.type === 'symlink') return this.putSymlink(dest, item.target ?? '', item);
    await this.putContent(dest, () => createReadStream('', { fd: openSync(item.source!, constants.O_RDONLY | constants.O_NOFOLLOW), highWaterMark: 8 * CHUNK }), item, item);
  }

  /**
   * Content to a temp file beside `dest`, then owner, mode, mtime, then renamed over `dest` atomically.
   * The content is opened only once the temp file is, so nothing can fail unobserved meanwhile.
   */
  private async putContent(dest: string, content: () => AsyncIterable<Buffer>, meta: { mode: number; mtime: number }, owner?: OutgoingItem): Promise<void> {
    const temp = tempBeside(dest);
    try {
      // Exclusive create: a link planted at the temp name is never followed.
      const handle = await this.io.open(temp, 'wx', { mode: 0o600 });
      try {
        await writeAll(this.io, handle, content());
        // Owner before mode: chown clears the setuid and setgid bits.
        await this.setOwner(owner, (uid, gid) => this.io.fchown(handle, uid, gid));
        await this.io.fsetstat(handle, { mode: meta.mode, atime: meta.mtime, mtime: meta.mtime });
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
      await this.io.rename(temp, dest);
    } catch (err) {
      await this.io.unlink(temp).catch(() => undefined);
      throw err;
    }
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
    const attrs = { mode: item.mode, atime: item.mtime, mtime: item.mtime };
    try {
      await this.io.lsetstat(path, attrs);
    } catch (err) {
      if (statusOf(err) === undefined) throw err;
      await this.mustBeRealDir(path);
      await this.io.setstat(path, attrs);
    }
  }

  /** Owner and group when asked for; a refusal (the login is not root) is reported, not fatal. */
  private async setOwner(item: OutgoingItem | undefined, apply: (uid: number, gid: number) => Promise<void>): Promise<void> {
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

/** At most `size` tasks at once; the others wait their turn, first come first served. */
class Limiter {
  private active = 0;
  private readonly waiting: Array<() => void> = [];

  constructor(private readonly size: number) {}

  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.active < this.size) this.active++;
    else await new Promise<void>((go) => this.waiting.push(go));
    try {
      return await task();
    } finally {
      // A finishing task hands its slot straight to the next one waiting.
      const next = this.waiting.shift();
      if (next) next();
      else this.active--;
    }
  }
}

/**
 * Runs `task` over the items, `limit` at a time. After a failure no new task starts; the running
 * ones finish (and clean up their temp files) before the first error is thrown.
 */
async function forEachLimited<T>(items: readonly T[], limit: number, task: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failure: { error: unknown } | undefined;
  const worker = async () => {
    while (failure === undefined && next < items.length) {
      try {
        await task(items[next++]!);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failure) throw failure.error;
}

/** An SFTP status answer (a per-file refusal), as opposed to a lost connection or a protocol error. */
class StatusError extends Error {
  constructor(
    message: string,
    readonly code: number,
  ) {
    super(message);
  }
}

/** The SFTP status code of a server's refusal; undefined for anything else (the connection is gone). */
function statusOf(err: unknown): number | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return err instanceof Error && typeof code === 'number' ? code : undefined;
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

type Cb<T> = (err?: Error | null, value?: T) => void;

/**
 * ssh2's SFTP calls as promises. Once the channel has ended ssh2 would leave new requests unanswered
 * forever, so they fail at once instead; ssh2 itself fails the requests in flight at that moment.
 */
class Sftp {
  private lost: Error | undefined;
  /** The rejecters of the requests still waiting for an answer. */
  private readonly pending = new Set<(err: Error) => void>();

  constructor(
    private readonly raw: SFTPWrapper,
    /** The connection's loss, which names host and cause, once the session knows of it. */
    private readonly connectionLost: () => Error | undefined = () => undefined,
  ) {
    const onLost = (err?: Error) => {
      this.lost ??= err ?? new Error('the SFTP connection closed');
      // ssh2 fails the requests in flight when the channel ends, but the follow-ups its own callbacks
      // send meanwhile (readdir closing its handle after a failed read) are never answered: fail
      // whatever still waits, or the run would wait forever.
      const loss = this.connectionLost() ?? this.lost;
      for (const fail of [...this.pending]) fail(loss);
      this.pending.clear();
    };
    raw.once('end', () => onLost());
    raw.once('close', () => onLost());
    // Without a listener a protocol error would crash the process; the calls in flight fail instead.
    raw.on('error', (err: Error) => onLost(err));
  }

  lstat = (path: string) => this.call<Stats>((cb) => this.raw.lstat(path, cb));
  stat = (path: string) => this.call<Stats>((cb) => this.raw.stat(path, cb));
  readdir = (path: string) => this.call<FileEntryWithStats[]>((cb) => this.raw.readdir(path, cb));
  readlink = (path: string) => this.call<string>((cb) => this.raw.readlink(path, cb));
  realpath = (path: string) => this.call<string>((cb) => this.raw.realpath(path, cb));
  open = (path: string, flags: OpenMode, attrs: InputAttributes = {}) => this.call<Buffer>((cb) => this.raw.open(path, flags, attrs, cb));
  fstat = (handle: Buffer) => this.call<Stats>((cb) => this.raw.fstat(handle, cb));
  close = (handle: Buffer) => this.call<void>((cb) => this.raw.close(handle, cb));
  write = (handle: Buffer, data: Buffer, position: number) => this.call<void>((cb) => this.raw.write(handle, data, 0, data.length, position, cb));
  fsetstat = (handle: Buffer, attrs: InputAttributes) => this.call<void>((cb) => this.raw.fsetstat(handle, attrs, cb));
  fchown = (handle: Buffer, uid: number, gid: number) => this.call<void>((cb) => this.raw.fchown(handle, uid, gid, cb));
  setstat = (path: string, attrs: InputAttributes) => this.call<void>((cb) => this.raw.setstat(path, attrs, cb));
  chown = (path: string, uid: number, gid: number) => this.call<void>((cb) => this.raw.chown(path, uid, gid, cb));
  mkdir = (path: string) => this.call<void>((cb) => this.raw.mkdir(path, cb));
  symlink = (target: string, path: string) => this.call<void>((cb) => this.raw.symlink(target, path, cb));
  unlink = (path: string) => this.call<void>((cb) => this.raw.unlink(path, cb));
  hardlink = (from: string, to: string) => this.extension('hardlink@openssh.com', (cb) => this.raw.ext_openssh_hardlink(from, to, cb));
  lsetstat = (path: string, attrs: InputAttributes) => this.extension('lsetstat@openssh.com', (cb) => this.raw.ext_openssh_lsetstat(path, attrs, cb));

  /** Bytes from `position` (fewer at the end of the file, none past it). */
  read(handle: Buffer, position: number, length: number): Promise<Buffer> {
    const buffer = Buffer.allocUnsafe(length);
    return this.call<number>((cb) => this.raw.read(handle, buffer, 0, length, position, (err, n) => cb(err, n))).then((n) => buffer.subarray(0, n));
  }

  /** Replaces `to` atomically (posix-rename@openssh.com); without the extension a plain rename, which may refuse to replace. */
  async rename(from: string, to: string): Promise<void> {
    try {
      await this.extension('posix-rename@openssh.com', (cb) => this.raw.ext_openssh_rename(from, to, cb));
    } catch (err) {
      if (statusOf(err) !== OP_UNSUPPORTED) throw err;
      await this.call<void>((cb) => this.raw.rename(from, to, cb));
    }
  }

  private call<T>(start: (cb: Cb<T>) => void): Promise<T> {
    if (this.lost) return Promise.reject(this.connectionLost() ?? this.lost);
    // A request the dead connection left unanswered fails with ssh2's "No response from server",
    // which names neither host nor cause: report the loss instead. A server's status answer stays.
    const explain = (err: Error) => (statusOf(err) === undefined ? (this.connectionLost() ?? err) : err);
    return new Promise<T>((done, fail) => {
      this.pending.add(fail);
      start((err, value) => {
        this.pending.delete(fail);
        if (err) fail(explain(err));
        else done(value as T);
      });
    });
  }

  /** ssh2 throws at once when the server lacks an extension; that is the server's "unsupported" answer. */
  private extension(name: string, start: (cb: Cb<void>) => void): Promise<void> {
    return this.call<void>((cb) => {
      try {
        start(cb);
      } catch {
        cb(new StatusError(`the server does not support ${name}`, OP_UNSUPPORTED));
      }
    });
  }
}
