/** ssh2's SFTP calls as promises, SFTP status codes and the limits the transport works within. */

import type { FileEntryWithStats, InputAttributes, OpenMode, SFTPWrapper, Stats } from 'ssh2';
import { HostileServerError } from '../../errors.js';
import { safeText } from '../../report/reporter.js';

/** Empty READDIR answers in a row that end a folder's listing as hostile (see Sftp.readdir). */
const MAX_EMPTY_BATCHES = 16;

/** Bytes per READ/WRITE request: what OpenSSH's own sftp client and ssh2's fastGet use. */
export const CHUNK = 32 * 1024;
/** Requests in flight per file: enough to keep a long link busy (2 MiB per round trip). */
export const REQUESTS_PER_FILE = 64;
/** Content read ahead by `fetch` for all files together, so a 2 GB file is streamed, never held. */
export const FETCH_MEMORY = 64 * 1024 * 1024;
/** What each download's stream may hold beyond its window. */
export const STREAM_BUFFER = 2 * CHUNK;

// SFTP v3 status codes (draft-ietf-secsh-filexfer-02 §7).
export const EOF = 1;
export const NO_SUCH_FILE = 2;
export const PERMISSION_DENIED = 3;
export const OP_UNSUPPORTED = 8;

/** At most `size` tasks at once; the others wait their turn, first come first served. */
export class Limiter {
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
export async function forEachLimited<T>(
  items: readonly T[],
  limit: number,
  task: (item: T) => Promise<void>,
): Promise<void> {
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
export class StatusError extends Error {
  constructor(
    message: string,
    readonly code: number,
  ) {
    super(message);
  }
}

/** The SFTP status code of a server's refusal; undefined for anything else (the connection is gone). */
export function statusOf(err: unknown): number | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return err instanceof Error && typeof code === 'number' ? code : undefined;
}

export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

type Cb<T> = (err?: Error | null, value?: T) => void;

/**
 * ssh2's SFTP calls as promises. Once the channel has ended ssh2 would leave new requests unanswered
 * forever, so they fail at once instead; ssh2 itself fails the requests in flight at that moment.
 */
export class Sftp {
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
  readlink = (path: string) => this.call<string>((cb) => this.raw.readlink(path, cb));
  realpath = (path: string) => this.call<string>((cb) => this.raw.realpath(path, cb));
  open = (path: string, flags: OpenMode, attrs: InputAttributes = {}) =>
    this.call<Buffer>((cb) => this.raw.open(path, flags, attrs, cb));
  fstat = (handle: Buffer) => this.call<Stats>((cb) => this.raw.fstat(handle, cb));
  close = (handle: Buffer) => this.call<void>((cb) => this.raw.close(handle, cb));
  write = (handle: Buffer, data: Buffer, position: number) =>
    this.call<void>((cb) => this.raw.write(handle, data, 0, data.length, position, cb));
  fsetstat = (handle: Buffer, attrs: InputAttributes) => this.call<void>((cb) => this.raw.fsetstat(handle, attrs, cb));
  fchown = (handle: Buffer, uid: number, gid: number) => this.call<void>((cb) => this.raw.fchown(handle, uid, gid, cb));
  setstat = (path: string, attrs: InputAttributes) => this.call<void>((cb) => this.raw.setstat(path, attrs, cb));
  chown = (path: string, uid: number, gid: number) => this.call<void>((cb) => this.raw.chown(path, uid, gid, cb));
  mkdir = (path: string) => this.call<void>((cb) => this.raw.mkdir(path, cb));
  symlink = (target: string, path: string) => this.call<void>((cb) => this.raw.symlink(target, path, cb));
  unlink = (path: string) => this.call<void>((cb) => this.raw.unlink(path, cb));
  hardlink = (from: string, to: string) =>
    this.extension('hardlink@openssh.com', (cb) => this.raw.ext_openssh_hardlink(from, to, cb));
  lsetstat = (path: string, attrs: InputAttributes) =>
    this.extension('lsetstat@openssh.com', (cb) => this.raw.ext_openssh_lsetstat(path, attrs, cb));

  /**
   * A folder's entries, read batch by batch (ssh2's own readdir keeps asking until the server says it
   * is done: a server that never does would fill memory). `onBatch` sees each batch before it is kept,
   * and throws to stop: the folder is closed and its error thrown.
   */
  async readdir(path: string, onBatch: (batch: FileEntryWithStats[]) => void): Promise<FileEntryWithStats[]> {
    const handle = await this.call<Buffer>((cb) => this.raw.opendir(path, cb));
    const entries: FileEntryWithStats[] = [];
    let empty = 0;
    try {
      for (;;) {
        const batch = await this.call<FileEntryWithStats[]>((cb) => this.raw.readdir(handle, cb));
        // ssh2 drops "." and "..": an honest server's first batch may come out empty, never batch after
        // batch. One that answers with nothing and never ends would spin here past the listing caps.
        empty = batch.length === 0 ? empty + 1 : 0;
        if (empty > MAX_EMPTY_BATCHES)
          throw new HostileServerError(
            `the server listed ${safeText(path)} as batch after batch of nothing, never ending it; refusing it, nothing was written`,
          );
        onBatch(batch);
        for (const entry of batch) entries.push(entry);
      }
    } catch (err) {
      if (statusOf(err) !== EOF) {
        await this.close(handle).catch(() => undefined);
        throw err;
      }
    }
    await this.close(handle);
    return entries;
  }

  /** Bytes from `position` (fewer at the end of the file, none past it). */
  read(handle: Buffer, position: number, length: number): Promise<Buffer> {
    const buffer = Buffer.allocUnsafe(length);
    return this.call<number>((cb) => this.raw.read(handle, buffer, 0, length, position, (err, n) => cb(err, n))).then(
      (n) => buffer.subarray(0, n),
    );
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
    // Gone, as the channel or the session knows: nothing is sent (ssh2 would throw or never answer).
    const gone = this.connectionLost() ?? this.lost;
    if (gone) return Promise.reject(gone);
    // A request the dead connection left unanswered fails with ssh2's "No response from server",
    // which names neither host nor cause: report the loss instead. A server's status answer stays.
    const explain = (err: Error) => (statusOf(err) === undefined ? (this.connectionLost() ?? err) : err);
    return new Promise<T>((done, fail) => {
      this.pending.add(fail);
      try {
        start((err, value) => {
          this.pending.delete(fail);
          if (err) fail(explain(err));
          else done(value as T);
        });
      } catch (err) {
        // ssh2 throws at once when its connection is already torn down (a write through a closed zlib
        // stream). The session hears of the loss in the same turn: explain the throw once it has.
        this.pending.delete(fail);
        setImmediate(() => fail(explain(err instanceof Error ? err : new Error(String(err)))));
      }
    });
  }

  /**
   * ssh2 throws at once when the server lacks an extension; that is the server's "unsupported" answer.
   * Any other throw (a torn-down connection) is not: call() reports it as the loss.
   */
  private extension(name: string, start: (cb: Cb<void>) => void): Promise<void> {
    return this.call<void>((cb) => {
      try {
        start(cb);
      } catch (err) {
        if (!/does not support/i.test(err instanceof Error ? err.message : '')) throw err;
        cb(new StatusError(`the server does not support ${name}`, OP_UNSUPPORTED));
      }
    });
  }
}
