import { closeSync, constants, createReadStream, lstatSync, openSync, readFileSync } from 'node:fs';
import { Writable, type Readable } from 'node:stream';
import tar from 'tar-stream';
import { HostileServerError, UserError } from '../../errors.js';
import { safeText } from '../../report/reporter.js';
import { EXIT_GRACE_MS, exitAlreadySent } from '../../ssh/session.js';
import { decoder, encoder, mostlyCompressed, type Codec } from '../compression.js';
import { ShellDelta } from '../delta/remote.js';
import { parseListing } from './listing.js';
import { archiveTime, memberHeader, type MemberHeader } from './member-header.js';
import { ListingGuard } from './listing-guard.js';
import {
  CHECKSUM_SCRIPT,
  FETCH_SCRIPT,
  KEEP_PREVIOUS_SCRIPT,
  LIST_SCRIPT,
  TIME_LIMIT_SCRIPT,
  TIMED_OUT,
  UPLOAD_SCRIPT,
} from './remote-scripts.js';
import {
  deniedLine,
  WriteDeniedError,
  type EntryListing,
  type FetchResult,
  type IncomingFile,
  type OutgoingItem,
  type Transport,
  type UploadRequest,
  type UploadResult,
} from '../types.js';

import { shCommand, type ShellChannel, type ShellRunner } from '../shell.js';

const SMALL_FILE = 1 << 20;

/**
 * The fast path: each operation is one command over an exec channel; file contents travel as one tar
 * stream, parsed here with tar-stream and checked member by member.
 */
export class TarTransport implements Transport {
  readonly name = 'tar' as const;
  readonly canRunCommands = true;

  constructor(
    private readonly shell: ShellRunner,
    private readonly sudo: boolean,
    /** A listing already made together with the probe (see chooseTransport); used once, for the same paths. */
    private prefetched?: { remotes: string[]; stdout: Buffer; code: number | null; stderr: string },
    /** Compression on the wire (see chooseCodec); `adaptive` (auto) sends already-compressed formats as they are. */
    private readonly wire: { codec: Codec; adaptive: boolean; reason?: string } = { codec: 'none', adaptive: false },
  ) {}

  get compression(): string | undefined {
    return this.wire.reason;
  }

  /** Delta transfer's server side (see delta/): its scripts over the same exec channels, compressed alike. */
  get delta(): ShellDelta {
    return new ShellDelta(this.shell, this.sudo, (names) => this.codecFor(names));
  }

  /** The codec for moving these files. */
  private codecFor(names: string[]): Codec {
    return this.wire.adaptive && mostlyCompressed(names) ? 'none' : this.wire.codec;
  }

  async list(remotes: string[]): Promise<EntryListing[]> {
    if (remotes.length === 0) return [];
    const ready = this.prefetched;
    this.prefetched = undefined;
    const guard = new ListingGuard(remotes.length, { remotes });
    const same = ready && ready.remotes.length === remotes.length && ready.remotes.every((r, i) => r === remotes[i]);
    const r = same
      ? ready
      : await this.shell.exec(shCommand(LIST_SCRIPT, remotes, this.sudo), {
          check: (chunk) => guard.feed(chunk),
        });
    if (r.code !== 0 && r.stdout.length === 0)
      throw new Error(`listing on the server failed (exit ${r.code}): ${safeText(r.stderr.trim())}`);
    return parseListing(r.stdout, remotes.length);
  }

  async checksums(remotes: string[]): Promise<Map<string, string>> {
    const sums = new Map<string, string>();
    if (remotes.length === 0) return sums;
    // One line per file asked for (a name sha256sum escapes takes up to twice its bytes): beyond that
    // the server is not answering the question, and its output is not kept.
    const most = remotes.reduce((n, r) => n + 2 * Buffer.byteLength(r) + 80, 0);
    const r = await this.shell.exec(shCommand(CHECKSUM_SCRIPT, [], this.sudo), {
      stdin: nulList(remotes),
      maxStdout: most,
    });
    for (const line of r.stdout.toString('utf8').split('\n')) {
      // sha256sum escapes a name holding "\" or a newline and marks that line with a leading "\".
      const m = /^(\\?)([0-9a-f]{64}) [ *](.*)$/s.exec(line);
      if (!m) continue;
      const name = m[1] ? m[3]!.replace(/\\(\\|n)/g, (_x, c: string) => (c === 'n' ? '\n' : '\\')) : m[3]!;
      sums.set(name, m[2]!);
    }
    return sums;
  }

  async fetch(remotes: string[], onFile: (file: IncomingFile) => Promise<void>): Promise<FetchResult> {
    if (remotes.length === 0) return { notSent: [], message: '' };
    const codec = this.codecFor(remotes);
    const channel = await this.shell.execStream(shCommand(FETCH_SCRIPT, codec === 'none' ? [] : [codec], this.sudo));
    let stderr = '';
    channel.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
    const exited = exitOf(channel);
    channel.end(nulList(remotes));
    const requested = new Set(remotes);
    // What is still to come: a requested name no longer in it was already received.
    const wanted = new Set(remotes);
    const extract = tar.extract();
    let lost: Error | undefined;
    let parseError: Error | undefined;
    let member: string | undefined;
    channel.on('error', (err: Error) => {
      lost ??= err;
      extract.destroy(err);
    });
    extract.on('error', (err: Error) => (parseError ??= err));
    if (codec === 'none') channel.pipe(extract as unknown as Writable);
    else {
      // A stream that does not decompress is as broken as an archive that does not parse.
      const unpack = decoder(codec);
      unpack.on('error', (err: Error) => {
        parseError ??= err;
        extract.destroy(err);
      });
      channel.pipe(unpack).pipe(extract as unknown as Writable);
    }
    try {
      for await (const entry of extract) {
        const h = entry.header;
        // We asked for exact absolute names: anything else (other names, "..", links, devices, a second
        // copy) is refused before a byte of it is written.
        if (requested.has(h.name) && !wanted.has(h.name))
          throw new HostileServerError(`the server sent "${safeText(h.name)}" twice; refusing the archive`);
        if (!wanted.has(h.name))
          throw new HostileServerError(
            `the server sent "${safeText(h.name)}", which was not requested; refusing the archive`,
          );
        if (h.type !== 'file' && h.type !== 'contiguous-file') {
          throw new HostileServerError(
            `the server sent "${safeText(h.name)}" as a ${h.type ?? 'unknown'} entry where a regular file was requested; refusing the archive`,
          );
        }
        wanted.delete(h.name);
        member = h.name;
        await onFile({
          remote: h.name,
          size: h.size ?? 0,
          mtime: archiveTime(h),
          stream: entry as unknown as Readable,
        });
        entry.resume();
        member = undefined;
      }
    } catch (err) {
      // The connection's loss explains whatever broke after it. tar-stream's own errors ("Unexpected
      // end of data", "Invalid tar header") name neither the server nor the file: say which.
      if (lost) throw lost;
      if (!parseError || err !== parseError) throw err;
      const said = stderr.trim() ? ` (the server said: ${safeText(stderr.trim())})` : '';
      throw new HostileServerError(
        `the archive the server sent is broken${member ? ` in "${safeText(member)}"` : ''}: ${parseError.message}${said}; refusing it`,
      );
    }
    const code = await exited;
    if (code !== 0 && code !== 1 && wanted.size === 0)
      throw new Error(`tar on the server failed (exit ${code}): ${safeText(stderr.trim())}`);
    return { notSent: [...wanted], message: stderr.trim() };
  }

  async upload(req: UploadRequest): Promise<UploadResult> {
    if (req.keepPrevious.length > 0) {
      const kept = await this.shell.exec(
        shCommand(KEEP_PREVIOUS_SCRIPT, [req.previousDir, req.root, req.rootType], this.sudo),
        { stdin: nulList(req.keepPrevious) },
      );
      if (kept.code !== 0)
        throw (
          refusal(kept.stderr) ??
          writeDenied(kept.stderr) ??
          new Error(
            `could not keep the previous content of ${req.keepPrevious.length} file(s) in ${req.previousDir}: ${safeText(kept.stderr.trim())}`,
          )
        );
    }
    const codec = this.codecFor(req.items.filter((i) => i.type === 'file').map((i) => i.rel));
    const channel = await this.shell.execStream(
      shCommand(
        UPLOAD_SCRIPT,
        [req.root, req.rootType, req.chown ? '1' : '0', ...(codec === 'none' ? [] : [codec])],
        this.sudo,
      ),
    );
    let stderr = '';
    channel.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
    channel.resume();
    const exited = exitOf(channel);
    const pack = tar.pack();
    const squeeze = codec === 'none' ? undefined : encoder(codec);
    const sent = new Promise<void>((done, fail) => {
      (pack as unknown as Readable).on('error', fail);
      squeeze?.on('error', fail);
      channel.on('error', fail);
      channel.on('finish', () => done());
    });
    // Awaited once the archive is written; a failure before then (the connection lost) also fails the
    // entry being written, which is what reports it, so this one must not count as unhandled meanwhile.
    sent.catch(() => undefined);
    const out = new Coalescer(channel);
    if (squeeze) {
      // A failure anywhere down the line stops the archive too, as the channel's does without one.
      out.on('error', (err: Error) => squeeze.destroy(err));
      squeeze.on('error', (err: Error) => pack.destroy(err));
      (pack as unknown as Readable).pipe(squeeze).pipe(out);
    } else (pack as unknown as Readable).pipe(out);
    try {
      if (req.rootType === 'dir')
        await addEntry(pack, { name: '.rf-dirs.tar', type: 'file', mode: 0o600 }, await dirsArchive(req.items));
      await addItems(pack, req.items, req.progress);
      pack.finalize();
      await sent;
    } catch (err) {
      // The script may have stopped first (a folder we may not write): its reason beats the broken pipe.
      if ((await exited.catch(() => null)) !== 0) throw refusal(stderr) ?? writeDenied(stderr) ?? err;
      throw err;
    }
    const code = await exited;
    if (code !== 0)
      throw (
        refusal(stderr) ??
        writeDenied(stderr) ??
        new Error(`writing ${safeText(req.root)} on the server failed (exit ${code}): ${safeText(stderr.trim())}`)
      );
    return { ownerNotSet: [] };
  }

  async removeFiles(paths: string[]): Promise<void> {
    if (paths.length === 0) return;
    const r = await this.shell.exec(shCommand('xargs -0 rm -f --', [], this.sudo), { stdin: nulList(paths) });
    if (r.code !== 0) throw new Error(`rm on the server failed (exit ${r.code}): ${safeText(r.stderr.trim())}`);
  }

  async run(
    command: string,
    args: string[] = [],
    limitSecs?: number,
  ): Promise<{ code: number | null; output: string; timedOut?: boolean }> {
    // A dump may run silent for long (unwatched): `command-timeout` bounds it instead; output capped (session.ts).
    const r = limitSecs
      ? await this.shell.exec(shCommand(TIME_LIMIT_SCRIPT, [command, String(limitSecs), ...args], this.sudo), {
          maxStdout: 1 << 20,
          unwatched: true,
          // The server's `timeout` stops it first (and KILLs 10 s later); this is for a server without one.
          limitMs: (limitSecs + 30) * 1000,
          limitName: 'command-timeout',
        })
      : await this.shell.exec(shCommand(command, args, this.sudo), { maxStdout: 1 << 20, unwatched: true });
    return {
      code: r.code,
      output: (r.stdout.toString('utf8') + r.stderr).trim(),
      ...(limitSecs && r.code === TIMED_OUT && { timedOut: true }),
    };
  }
}

/**
 * The command's exit status. A connection lost before it arrives fails the channel instead (see
 * SshSession), and a channel closed without one gives null: either way this settles, where waiting
 * for 'exit' alone would wait forever (and Node would end the run with no message at all).
 */
function exitOf(channel: ShellChannel): Promise<number | null> {
  const exited = new Promise<number | null>((done, fail) => {
    channel.on('exit', (code: number | null) => done(code));
    const early = exitAlreadySent(channel);
    if (early) done(early.code);
    channel.on('error', fail);
    // The exit status may arrive just after the stream closed (see EXIT_GRACE_MS).
    channel.on('close', () => setTimeout(() => done(null), EXIT_GRACE_MS).unref());
  });
  // Awaited only once the stream is done; a loss before then is reported by the stream it broke.
  exited.catch(() => undefined);
  return exited;
}

/** Writes to the channel gather until this many bytes (or the end of the current turn). */
const GATHER = 64 << 10;

/**
 * Sits between the archive and the channel and joins its small writes. tar-stream emits every member
 * as header, content and padding, and each channel write costs ssh2 a packet of its own: 9 MB sent in
 * 4.6 KB writes took 280 ms, in 64 KB writes 120 ms.
 */
class Coalescer extends Writable {
  private parts: Buffer[] = [];
  private size = 0;
  private scheduled = false;

  constructor(private readonly channel: Writable) {
    super({ highWaterMark: 1 << 20 });
    // The channel's failure is reported by the upload (see `sent`); here it only stops the writes.
    channel.on('error', (err: Error) => this.destroy(err));
    this.on('error', () => undefined);
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, done: (err?: Error | null) => void): void {
    this.parts.push(chunk);
    this.size += chunk.length;
    if (this.size >= GATHER) return this.flush(done);
    // What is left at the end of this turn goes out then, so a slow source is not held back.
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => {
        this.scheduled = false;
        if (this.size > 0 && !this.destroyed) this.flush(() => undefined);
      });
    }
    done();
  }

  override _final(done: (err?: Error | null) => void): void {
    if (this.size > 0) this.flush(() => undefined);
    this.channel.end();
    done();
  }

  /** Sends what gathered; `done` waits for the channel to drain when it says it is full. */
  private flush(done: () => void): void {
    const data = this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts);
    this.parts = [];
    this.size = 0;
    if (this.channel.write(data)) done();
    else this.channel.once('drain', done);
  }
}

/**
 * What the restore scripts refuse (a link they will not follow, a folder where a file goes) is said
 * on a line of its own; it is the user's to fix, so it is reported alone.
 */
function refusal(stderr: string): UserError | undefined {
  const m = /^remote-files refused: (.*)$/m.exec(stderr);
  return m ? new UserError(safeText(m[1]!)) : undefined;
}

/** A permission the server refused (mktemp or mkdir beside the destination, a rename): the entry is denied. */
function writeDenied(stderr: string): WriteDeniedError | undefined {
  const line = deniedLine(stderr);
  return line === undefined ? undefined : new WriteDeniedError(safeText(line));
}

function nulList(paths: string[]): Buffer {
  return Buffer.from(paths.map((p) => p + '\0').join(''), 'utf8');
}

/** Member name of an item inside the upload archive: the root is "r". */
function memberName(rel: string): string {
  return rel === '' ? 'r' : `r/${rel}`;
}

/** Bytes of small files handed to the archive ahead of the network. */
const AHEAD = 16 << 20;

/**
 * Hands members to the archive without waiting for each to be sent: tar-stream queues them in order,
 * and waiting member by member cost a turn of the event loop each (2,000 small files: ~0.9 s of the
 * upload spent idle). Small files are read ahead up to AHEAD bytes; a large one streams alone.
 */
/** Stored files are read without following a link in their place (restore checked the folders above). */
const NO_FOLLOW = constants.O_RDONLY | constants.O_NOFOLLOW;

function readStored(path: string): Buffer {
  const fd = openSync(path, NO_FOLLOW);
  try {
    return readFileSync(fd);
  } finally {
    closeSync(fd);
  }
}

function storedFileSize(path: string): number {
  const st = lstatSync(path);
  if (!st.isFile())
    throw new UserError(
      `${path} is not a regular file in the data folder (a link or something else was put in its place); nothing more is uploaded`,
    );
  return st.size;
}

async function addItems(pack: tar.Pack, items: OutgoingItem[], progress?: UploadRequest['progress']): Promise<void> {
  const ahead: Array<{ added: Promise<void>; bytes: number }> = [];
  let bytes = 0;
  const settle = async (limit: number) => {
    while (ahead.length > 0 && bytes > limit) {
      const first = ahead.shift()!;
      bytes -= first.bytes;
      await first.added;
    }
  };
  for (const item of items) {
    const size = item.type === 'file' ? storedFileSize(item.source!) : 0;
    if (size > SMALL_FILE) {
      await settle(-1);
      await addItem(pack, item, size, progress?.bytes);
      progress?.fileDone();
      continue;
    }
    const added = addItem(pack, item, size).then(
      progress &&
        (() => {
          progress.bytes(size);
          if (item.type !== 'dir') progress.fileDone();
        }),
    );
    // Awaited in order by settle(); a failure meanwhile must not count as unhandled.
    added.catch(() => undefined);
    ahead.push({ added, bytes: size + 512 });
    bytes += size + 512;
    await settle(AHEAD);
  }
  await settle(-1);
}

async function addItem(pack: tar.Pack, item: OutgoingItem, size: number, onBytes?: (n: number) => void): Promise<void> {
  const name = memberName(item.rel);
  if (item.type === 'dir') return addEntry(pack, { ...memberHeader(item, name), type: 'directory' });
  if (item.type === 'symlink')
    return addEntry(pack, { ...memberHeader(item, name), type: 'symlink', linkname: item.target ?? '' });
  // `size` is the stored file's real size, not the manifest's: tar needs the exact byte count it reads.
  // Small files in one read: a stream per file costs more than the file (2,000 files: 550 → 100 ms).
  if (size <= SMALL_FILE)
    return addEntry(pack, { ...memberHeader(item, name), type: 'file' }, readStored(item.source!));
  await new Promise<void>((done, fail) => {
    const sink = pack.entry({ ...memberHeader(item, name), type: 'file', size } as tar.Header, (err) =>
      err ? fail(err) : done(),
    );
    const source = createReadStream('', { fd: openSync(item.source!, NO_FOLLOW) });
    source.on('error', fail);
    // The pack destroyed (the channel failed) destroys this entry with the error: the callback above
    // reports it; without a listener the 'error' event would kill the process.
    sink.on('error', (err: Error) => {
      source.destroy();
      fail(err);
    });
    source.pipe(sink as unknown as Writable);
    // Counted beside the pipe, which already makes the stream flow (and pauses it for back-pressure).
    if (onBytes) source.on('data', (chunk: Buffer | string) => onBytes(chunk.length));
  });
}

function addEntry(pack: tar.Pack, h: MemberHeader, content?: Buffer): Promise<void> {
  return new Promise((done, fail) => {
    const cb = (err?: Error | null) => (err ? fail(err) : done());
    const sink =
      content === undefined
        ? pack.entry(h as tar.Header, cb)
        : pack.entry({ ...h, size: content.length } as tar.Header, content, cb);
    // Destroyed with the pack (the channel failed): the callback reports it, the event must not crash.
    sink.on('error', fail);
  });
}

/** A small archive of the folders alone, unpacked over the destination last to set their metadata. */
async function dirsArchive(items: OutgoingItem[]): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  (pack as unknown as Readable).on('data', (c: Buffer) => chunks.push(c));
  const ended = new Promise((done) => (pack as unknown as Readable).on('end', done));
  for (const item of items.filter((i) => i.type === 'dir')) {
    await addEntry(pack, { ...memberHeader(item, item.rel === '' ? '.' : item.rel), type: 'directory' });
  }
  pack.finalize();
  await ended;
  return Buffer.concat(chunks);
}
