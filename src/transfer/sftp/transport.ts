import { createHash } from 'node:crypto';
import { finished } from 'node:stream/promises';
import type { Attributes, FileEntryWithStats, SFTPWrapper, Stats } from 'ssh2';
import { HostileServerError, UserError } from '../../errors.js';
import { safeText } from '../../report/reporter.js';
import { remotePathOf } from '../entries.js';
import {
  deniedLine,
  WriteDeniedError,
  type EntryListing,
  type FetchResult,
  type IncomingFile,
  type RemoteFile,
  type Transport,
  type UploadRequest,
  type UploadResult,
} from '../types.js';
import { Download, track } from './download.js';
import {
  CHUNK,
  FETCH_MEMORY,
  forEachLimited,
  Limiter,
  messageOf,
  NO_SUCH_FILE,
  PERMISSION_DENIED,
  Sftp,
  statusOf,
  STREAM_BUFFER,
} from './io.js';
import { ListingBudget, SFTP_LISTING_CAPS, type ListingCaps } from '../listing-cap.js';
import { countBatch, isChildName, type ListContext, OwnerNames, toRecord } from './listing.js';
import { UploadJob } from './upload.js';

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

  /** How big a listing may grow (listing-cap.ts); smaller only in tests. */
  private readonly caps: ListingCaps;

  /** `lost`: the connection's loss once it is gone, to report instead of ssh2's "No response from server". */
  constructor(
    sftp: SFTPWrapper,
    opts: { concurrency: number; lost?: () => Error | undefined; compression?: string; caps?: ListingCaps },
  ) {
    this.compression = opts.compression;
    this.caps = opts.caps ?? SFTP_LISTING_CAPS;
    this.io = new Sftp(sftp, opts.lost);
    this.concurrency = Math.max(1, Math.floor(opts.concurrency));
    this.window = Math.max(CHUNK, Math.floor(FETCH_MEMORY / this.concurrency) - STREAM_BUFFER);
  }

  async list(remotes: string[]): Promise<EntryListing[]> {
    const ctx: ListContext = {
      limit: new Limiter(this.concurrency),
      names: new OwnerNames(),
      budget: new ListingBudget(this.caps),
    };
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
        while (next < remotes.length && queue.length < this.concurrency)
          queue.push(track(live, new Download(this.io, remotes[next++]!, this.window)));
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
    return new UploadJob(this.io, req, this.concurrency, this.window).run().catch((err: unknown) => {
      // A folder or file the login user may not write: that entry is denied, the others go on.
      const line =
        statusOf(err) === PERMISSION_DENIED
          ? `${safeText(req.root)}: ${safeText(messageOf(err))}`
          : err instanceof Error && !(err instanceof UserError)
            ? deniedLine(err.message)
            : undefined;
      throw line === undefined ? err : new WriteDeniedError(line);
    });
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
      new UserError(
        'this account only offers SFTP (no shell), so commands cannot run on the server; run them from an account with a shell, or go without',
      ),
    );
  }

  private async listRoot(root: string, ctx: ListContext): Promise<EntryListing> {
    let attrs: Stats;
    try {
      attrs = await ctx.limit.run(() => this.io.lstat(root));
    } catch (err) {
      // As on the tar side: permission refused is "denied", any other refusal is "missing".
      if (statusOf(err) === PERMISSION_DENIED)
        return { status: 'denied', reason: 'permission denied on a parent folder' };
      if (statusOf(err) !== undefined) return { status: 'missing' };
      throw err;
    }
    const record = await this.describe(root, '', attrs, ctx);
    if (record.type === 'file') record.readable = await ctx.limit.run(() => this.canOpen(root));
    if (!record.readable)
      return { status: 'denied', reason: record.type === 'dir' ? 'folder not readable' : 'file not readable' };
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
    const entries = await ctx.limit.run(() => this.readFolder(dir, ctx));
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
  private async readFolder(dir: string, ctx: ListContext): Promise<FileEntryWithStats[] | null> {
    try {
      const listed = await this.io.readdir(dir, (batch) => countBatch(ctx.budget, dir, batch));
      const entries = listed.filter((e) => isChildName(e.filename, dir));
      if (entries.length === 0) await this.io.stat(`${dir === '/' ? '' : dir}/.`);
      entries.sort((a, b) => (a.filename < b.filename ? -1 : a.filename > b.filename ? 1 : 0));
      // A name listed twice (say, a link to /tmp and a folder with files) would store files below a link.
      const twice = entries.find((e, i) => i > 0 && entries[i - 1]!.filename === e.filename);
      if (twice)
        throw new HostileServerError(
          `the server listed "${safeText(twice.filename)}" twice in ${safeText(dir)}; refusing the listing`,
        );
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
