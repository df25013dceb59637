// One established SSH connection (possibly through a jump host) and the operations the transports use.
import type { Readable } from 'node:stream';
import type { Client, ClientChannel, SFTPWrapper } from 'ssh2';
import { AckCounter } from './ack-counter.js';

/**
 * Most bytes of a server's messages kept: a command's stderr (always) and its stdout where the caller
 * asks (`maxStdout`: a remote_prepare command's output, the probe). What comes beyond is read and
 * dropped, so a server that floods cannot fill this process's memory; the text kept ends with
 * TRUNCATED_NOTE. Stdout that is data (a listing, checksums, an archive) is the caller's to bound.
 */
export const OUTPUT_CAP = 1 << 20;
export const TRUNCATED_NOTE = '\n…output truncated';

export interface ExecOptions {
  /** Fed to the command, then EOF (default: an immediate EOF). */
  stdin?: Buffer | string;
  /** Runs once the server has started the command and its input is sent. It must not throw. */
  started?: () => void;
  /** Keep at most this many bytes of stdout (then TRUNCATED_NOTE); default: all of it. */
  maxStdout?: number;
  /**
   * Sees each piece of stdout before it is kept, and throws to refuse the output: the command is then
   * closed and exec fails with that error (a listing that is not one, see listing-guard.ts). Returning
   * false drops the piece (read, not kept).
   */
  check?: (chunk: Buffer) => boolean | void;
  /**
   * Not ended by the idle watchdog: for a command that may rightly run silent for long (a
   * remote_prepare database dump). A server that dies meanwhile is still caught by the keepalive.
   */
  unwatched?: boolean;
  /**
   * The command's channel is closed, and exec fails with a CommandTimeLimitError naming `limitName`,
   * when it has not finished after this many ms (the `command-timeout` input's backstop: the server's
   * own `timeout` usually stops it first).
   */
  limitMs?: number;
  limitName?: string;
}

export interface SessionOptions {
  /** The target's host key as the connection verified it, `<type> SHA256:<base64>` (see transfer/identity/). */
  hostKey?: string;
  /**
   * The idle watchdog (the `timeout` input): an operation in progress — a command's channel open, SFTP
   * requests outstanding — that receives no byte and gets none of ours acknowledged for this long
   * ends the connection with an error naming the host and the input. So does one that moves fewer
   * than MIN_PROGRESS_BYTES in a stretch of that length: a server trickling one byte every 2 s would
   * otherwise hold a run for as long as it likes. The keepalive alone catches neither, as the server
   * answers it meanwhile. 0: off.
   */
  idleMs?: number;
}

export interface ExecResult {
  /** null when the command died from a signal, or the server sent no exit status. */
  code: number | null;
  /** As ssh2 names it, e.g. `SIGTERM`. */
  signal?: string;
  stdout: Buffer;
  stderr: string;
}

/**
 * A command ran past ExecOptions.limitMs. This side closed its channel and stopped waiting; sshd does
 * not end a command for that (nor deliver our signals to a forced command), so it may still run there.
 */
export class CommandTimeLimitError extends Error {
  override name = 'CommandTimeLimitError';
  constructor(
    label: string,
    readonly secs: number,
    limitName: string,
    /**
     * Set when the command did exit (its status came) and only its output stayed open: a process it
     * started in the background still holds it. Not a server without `timeout` then.
     */
    readonly exitedWith?: number | null,
  ) {
    super(
      `a command on ${label} did not finish within ${secs} s: this side stopped waiting and closed its channel (the command may still be running on the server); the \`${limitName}\` input bounds it`,
    );
  }

  /** Why the wait ended, for a message naming the command (restore-commands.ts, prepare.ts). */
  why(limitSecs: number): string {
    if (this.exitedWith !== undefined)
      return `it exited (${this.exitedWith === null ? 'no status' : `status ${this.exitedWith}`}), but a process it started still held its output open after ${this.secs} s (\`command-timeout\` is ${limitSecs} s): send a background process's output elsewhere, e.g. \`nohup svc >/dev/null 2>&1 &\``;
    return `still running after ${this.secs} s, \`command-timeout\` is ${limitSecs} s: the server has no \`timeout\` command to stop it, so this side stopped waiting; it may still be running there`;
  }
}

/** The connection dropped (or was closed) while something was using it. */
export class ConnectionLostError extends Error {
  override name = 'ConnectionLostError';
}

/**
 * Wraps a ready ssh2 Client. When the connection dies — the server goes away, or keepalive finds it
 * silent — every pending and later operation fails with "connection to host:port lost (cause)", and
 * channels handed out by `execStream` get that error too: without it ssh2 just ends them, which looks
 * like a command that finished without an exit status, and a caller awaiting `exit` would wait forever.
 */
export class SshSession {
  private lost: ConnectionLostError | undefined;
  private readonly lostSignal: Promise<never>;
  private rejectLost: (err: Error) => void = () => undefined;
  private readonly channels = new Set<ClientChannel>();
  private readonly closeListeners: Array<(err: Error | undefined) => void> = [];
  private sftpSession: Promise<SFTPWrapper> | undefined;
  private closing = false;
  private readonly idleMs: number;
  /** The target's verified host key, `<type> SHA256:<base64>`; undefined when unknown. */
  readonly hostKey: string | undefined;
  /** What the idle watchdog watches: per channel (or SFTP session), when it last moved, and whether it is waited on. */
  private readonly watched = new Map<object, Watch>();
  private watchdog: NodeJS.Timeout | undefined;
  private lastCheck = 0;

  constructor(
    private readonly client: Client,
    /** host:port of the target, for messages. */
    readonly label: string,
    private readonly proxy?: { client: Client; label: string },
    opts: SessionOptions = {},
  ) {
    this.idleMs = opts.idleMs ?? 0;
    this.hostKey = opts.hostKey;
    this.lostSignal = new Promise<never>((_, reject) => (this.rejectLost = reject));
    // Only ever observed through Promise.race in guard(); unobserved it must not count as unhandled.
    this.lostSignal.catch(() => undefined);
    client.on('error', (err: Error) => this.markLost(err.message));
    // ssh2 tears its protocol down on the socket's 'end' (the server's FIN), before 'close': from then
    // on a write throws ssh2's own error ("Invalid Zlib instance" with compression), so the loss counts
    // from 'end'.
    client.on('end', () => this.markLost('the server closed the connection'));
    client.on('close', () => this.markLost('the server closed the connection'));
    proxy?.client.on('error', (err: Error) => this.markLost(`jump host ${proxy.label}: ${err.message}`));
    proxy?.client.on('close', () => this.markLost(`jump host ${proxy.label} closed the connection`));
  }

  /**
   * Runs `command`, feeds it `stdin` (or an immediate EOF) and collects its output and exit status.
   * `started` runs once the server has started the command and its input is sent: work done there
   * overlaps the command's (its output waits in the socket meanwhile). It must not throw.
   */
  async exec(command: string, opts: ExecOptions = {}): Promise<ExecResult> {
    const channel = await this.execStream(command, opts);
    const result = this.guard(() => collect(channel, opts.stdin ?? '', opts.maxStdout ?? Infinity, opts.check));
    opts.started?.();
    if (!opts.limitMs) return result;
    let timer: NodeJS.Timeout | undefined;
    const limited = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        channel.close();
        const exited = EARLY_EXITS.get(channel);
        reject(
          new CommandTimeLimitError(
            this.label,
            opts.limitMs! / 1000,
            opts.limitName ?? 'command-timeout',
            exited?.code,
          ),
        );
      }, opts.limitMs);
      timer.unref();
    });
    return Promise.race([result, limited]).finally(() => clearTimeout(timer));
  }

  /**
   * The raw channel of `command`, for streaming; the caller writes, ends and reads it. Its stderr is
   * capped at OUTPUT_CAP; it is watched for progress unless `unwatched`.
   */
  async execStream(
    command: string,
    opts: { unwatched?: boolean; waitedOn?: () => boolean } = {},
  ): Promise<ClientChannel> {
    const channel = await this.guard(
      () =>
        new Promise<ClientChannel>((resolve, reject) =>
          this.client.exec(command, (err, ch) => {
            if (err) return reject(err);
            // Listening from the first moment: see exitAlreadySent().
            ch.once('exit', (code: number | null, signal?: string) =>
              EARLY_EXITS.set(ch, { code: code ?? null, ...(signal && { signal }) }),
            );
            resolve(ch);
          }),
        ),
    );
    this.track(channel);
    capStderr(channel.stderr);
    if (!opts.unwatched) this.watch(channel as unknown as Watchable, opts.waitedOn ?? (() => true));
    return channel;
  }

  /** One SFTP session per connection, opened on first use and reopened if the server ended it. */
  sftp(): Promise<SFTPWrapper> {
    if (!this.sftpSession) {
      const opening = this.guard(
        () =>
          new Promise<SFTPWrapper>((resolve, reject) => this.client.sftp((err, s) => (err ? reject(err) : resolve(s)))),
      );
      const forget = () => {
        if (this.sftpSession === opening) this.sftpSession = undefined;
      };
      opening.then((s) => {
        s.once('close', forget);
        // Waited on while requests are outstanding (ssh2 keeps them in `_requests`; if a later ssh2
        // renames it, the SFTP session is simply not watched).
        const requests = () => (s as unknown as { _requests?: object })._requests;
        this.watch(s as unknown as Watchable, () => Object.keys(requests() ?? {}).length > 0);
      }, forget);
      this.sftpSession = opening;
    }
    return this.sftpSession;
  }

  /**
   * The link's round trip in ms: the fastest of keepalive requests sent one after another, until
   * `until` settles (at least one; at most 8), or 3 without it. The server answers them from its main
   * loop (no process started), so this is the link's latency; one answer alone may wait for a delayed
   * ACK (40 ms on loopback) or a busy CPU, the fastest of several does not. Sent alongside other work
   * (the probe), they cost no wall time of their own. Undefined when it cannot be measured (a future
   * ssh2 without these internals) or the first takes over 5 s.
   */
  roundTrip(until?: Promise<unknown>): Promise<number | undefined> {
    return new Promise((resolve) => {
      let best: number | undefined;
      let settled = !until;
      let done = false;
      const finish = (): void => {
        if (done) return;
        done = true;
        resolve(best);
      };
      // Once `until` settles, the fastest so far is the answer: a ping still in flight is not waited for.
      const stop = (): void => {
        settled = true;
        if (best !== undefined) finish();
      };
      until?.then(stop, stop);
      void (async () => {
        for (let n = 1; n <= 8 && !done; n++) {
          const t = await this.ping();
          if (t === undefined) break;
          best = Math.min(best ?? t, t);
          if (until ? settled : n >= 3) break;
        }
        finish();
      })();
    });
  }

  /** One keepalive request's round trip in ms (see roundTrip). */
  private ping(): Promise<number | undefined> {
    const c = this.client as unknown as { _callbacks?: Array<() => void>; _protocol?: { ping?: () => void } };
    const ping = c._protocol?.ping;
    if (this.lost || !Array.isArray(c._callbacks) || typeof ping !== 'function') return Promise.resolve(undefined);
    return new Promise((resolve) => {
      const t0 = performance.now();
      const late = setTimeout(() => resolve(undefined), 5000).unref();
      // ssh2 answers global requests in order from `_callbacks`, as its own keepalive does.
      c._callbacks!.push(() => {
        clearTimeout(late);
        resolve(performance.now() - t0);
      });
      ping.call(c._protocol);
    });
  }

  /**
   * Turns on the SSH layer's compression (zlib@openssh.com, else zlib) by a key re-exchange offering
   * it, for what follows (SFTP: there is no shell to compress with). Everything but the compression
   * lists is offered as before (ciphers, host key types). False when ssh2's internals are not as
   * expected (nothing is changed then); whether the server agreed shows in `compression()`.
   */
  compressFromNowOn(): boolean {
    const p = (
      this.client as unknown as {
        _protocol?: {
          _offer?: { lists?: Record<string, unknown>; constructor: new (o: object) => object };
          rekey?: () => void;
        };
      }
    )._protocol;
    const lists = p?._offer?.lists as
      | {
          kex?: { array: string[] };
          serverHostKey?: { array: string[] };
          cs?: Record<string, { array: string[] }>;
          sc?: Record<string, { array: string[] }>;
        }
      | undefined;
    if (!p || typeof p.rekey !== 'function' || !lists?.kex || !lists.serverHostKey || !lists.cs || !lists.sc)
      return false;
    const side = (l: Record<string, { array: string[] }>) => ({
      cipher: l.cipher!.array,
      mac: l.mac!.array,
      compress: ['zlib@openssh.com', 'zlib', 'none'],
      lang: l.lang!.array,
    });
    try {
      p._offer = new p._offer!.constructor({
        kex: lists.kex.array,
        serverHostKey: lists.serverHostKey.array,
        cs: side(lists.cs),
        sc: side(lists.sc),
      }) as typeof p._offer;
    } catch {
      return false;
    }
    p.rekey();
    return true;
  }

  /** Why the connection is gone ("connection to host:port lost (cause)"), or undefined while it is up. */
  lostError(): Error | undefined {
    return this.lost;
  }

  /** Called once when the connection ends: with the error if it was lost, undefined after close(). */
  onClose(listener: (err: Error | undefined) => void): void {
    if (this.lost) queueMicrotask(() => listener(this.closing ? undefined : this.lost));
    else this.closeListeners.push(listener);
  }

  /** Ends the target connection, then the jump host's. */
  close(): void {
    this.closing = true;
    this.stopWatchdog();
    this.client.end();
    this.proxy?.client.end();
  }

  /**
   * Runs `op` unless the connection is already gone, and rejects with the loss as soon as it goes,
   * whatever `op` is waiting for. Once lost, the loss is the error reported, not ssh2's own
   * ("Not connected", "No response from server"), which names neither host nor cause.
   */
  private guard<T>(op: () => Promise<T>): Promise<T> {
    if (this.lost) return Promise.reject(this.lost);
    const running = op().catch((err: Error) => Promise.reject(this.lost ?? err));
    return Promise.race([running, this.lostSignal]);
  }

  private track(channel: ClientChannel): void {
    this.channels.add(channel);
    channel.once('close', () => this.channels.delete(channel));
    // The loss reaches callers through their own 'error' listeners and through the session; this one
    // only keeps a channel whose caller listens for nothing from crashing the process.
    channel.on('error', () => undefined);
  }

  private markLost(cause: string): void {
    if (this.lost) return;
    this.stopWatchdog();
    this.lost = new ConnectionLostError(
      this.closing ? `connection to ${this.label} closed` : `connection to ${this.label} lost (${cause})`,
    );
    this.rejectLost(this.lost);
    for (const channel of this.channels) channel.emit('error', this.lost);
    this.channels.clear();
    for (const listener of this.closeListeners.splice(0)) listener(this.closing ? undefined : this.lost);
  }

  /**
   * Watches a channel (or the SFTP session) for progress: a byte received (stdout, stderr, SFTP
   * replies), or bytes of ours the server acknowledged with a window adjustment (see AckCounter).
   * While `busy()` and not held up by us (a reader that stopped reading), a channel still for idleMs
   * ends the connection. Hooks ssh2's channel objects (`push`, `outgoing.window`,
   * `_waitChanDrain`), which ssh2 1.x has for exec channels and SFTP alike.
   */
  private watch(channel: Watchable, busy: () => boolean): void {
    if (this.idleMs <= 0 || this.lost) return;
    const now = Date.now();
    const w: Watch = {
      last: now,
      stretch: now,
      moved: 0,
      busy,
      heldByUs: () => channel._waitChanDrain === true,
    };
    const touch = (bytes: number) => {
      w.last = Date.now();
      w.moved += bytes;
    };
    onPush(channel, touch);
    if (channel.stderr) onPush(channel.stderr, touch);
    const outgoing = channel.outgoing;
    if (outgoing && typeof outgoing.window === 'number') {
      const acks = new AckCounter(outgoing.window);
      Object.defineProperty(outgoing, 'window', {
        configurable: true,
        enumerable: true,
        get: () => acks.window,
        set: (v: number) => {
          const acked = acks.update(v);
          if (acked > 0) touch(acked);
        },
      });
    }
    this.watched.set(channel, w);
    channel.once('close', () => this.watched.delete(channel));
    if (!this.watchdog) {
      this.lastCheck = Date.now();
      this.watchdog = setInterval(() => this.checkIdle(), this.checkPeriod());
      this.watchdog.unref();
    }
  }

  private checkIdle(): void {
    const now = Date.now();
    // This process was busy (a long synchronous step) and could not read what may be waiting in the
    // socket: not the server's stall. Count from now.
    const late = now - this.lastCheck > 2 * this.checkPeriod();
    this.lastCheck = now;
    for (const w of this.watched.values()) {
      if (late || !w.busy() || w.heldByUs()) {
        w.last = w.stretch = now;
        w.moved = 0;
      } else if (now - w.last >= this.idleMs) return this.stalled();
      else if (now - w.stretch >= this.idleMs) {
        if (w.moved < MIN_PROGRESS_BYTES) return this.trickled(w.moved);
        w.stretch = now;
        w.moved = 0;
      }
    }
  }

  private checkPeriod(): number {
    return Math.min(1000, Math.max(100, this.idleMs / 5));
  }

  /** A transfer stalled: fail everything waiting with one message, and drop the connection. */
  private stalled(): void {
    const secs = this.idleMs / 1000;
    this.markLost(
      `no progress for ${secs} s: the server sent nothing and acknowledged nothing of ours while an operation waited on it; the \`timeout\` input (${secs} s) bounds this`,
    );
    this.client.destroy();
    this.proxy?.client.destroy();
  }

  /** A transfer moved, but too little to ever end: the same failure, saying how little. */
  private trickled(moved: number): void {
    const secs = this.idleMs / 1000;
    this.markLost(
      `too little progress: ${moved} byte(s) moved in ${secs} s while an operation waited on the server (at least ${MIN_PROGRESS_BYTES / 1024} KiB per \`timeout\` is needed); the \`timeout\` input (${secs} s) bounds this`,
    );
    this.client.destroy();
    this.proxy?.client.destroy();
  }

  private stopWatchdog(): void {
    if (this.watchdog) clearInterval(this.watchdog);
    this.watchdog = undefined;
    this.watched.clear();
  }
}

/**
 * The least an operation in progress must move (receive, or have acknowledged) in every stretch of
 * `timeout`: ~2 KiB/s at the default 30 s. Far below any real link or disk; a server compressing a
 * file of zeros still sends more.
 */
export const MIN_PROGRESS_BYTES = 64 * 1024;

interface Watch {
  last: number;
  /** When the current stretch of `timeout` began, and the bytes moved since. */
  stretch: number;
  moved: number;
  busy: () => boolean;
  heldByUs: () => boolean;
}

/** The parts of ssh2's Channel and SFTP objects the watchdog hooks. */
interface Watchable {
  push(chunk: unknown, encoding?: BufferEncoding): boolean;
  stderr?: Readable;
  outgoing?: { window: number };
  _waitChanDrain?: boolean;
  once(event: 'close', listener: () => void): unknown;
}

/** Calls `seen` with its size whenever ssh2 hands the stream a chunk (or its end: 0 bytes). */
function onPush(
  stream: { push(chunk: unknown, encoding?: BufferEncoding): boolean },
  seen: (bytes: number) => void,
): void {
  const push = stream.push;
  stream.push = function (this: unknown, chunk: unknown, encoding?: BufferEncoding) {
    seen(Buffer.isBuffer(chunk) ? chunk.length : typeof chunk === 'string' ? chunk.length : 0);
    return push.call(this, chunk, encoding);
  };
}

/** Keeps the first OUTPUT_CAP bytes of a stderr stream, then TRUNCATED_NOTE; the rest is read and dropped. */
function capStderr(stream: Readable): void {
  const push = stream.push;
  let kept = 0;
  let truncated = false;
  stream.push = function (this: Readable, chunk: unknown, encoding?: BufferEncoding) {
    if (!Buffer.isBuffer(chunk)) return push.call(this, chunk, encoding);
    if (truncated) return true;
    if (kept + chunk.length <= OUTPUT_CAP) {
      kept += chunk.length;
      return push.call(this, chunk, encoding);
    }
    truncated = true;
    const part = chunk.subarray(0, OUTPUT_CAP - kept);
    kept = OUTPUT_CAP;
    return push.call(this, Buffer.concat([part, Buffer.from(TRUNCATED_NOTE)]), encoding);
  };
}

const EARLY_EXITS = new WeakMap<object, { code: number | null; signal?: string }>();

/**
 * The exit status of an `execStream` channel if it has come already. ssh2 can parse the reply to the
 * exec request and the exit status from one read of the socket: the status event then fires before
 * the caller awaiting the channel resumes and listens, and without this it is lost (a command that
 * fails at once, or `kill -TERM $$`, looked like one that sent no status, after a wait of
 * EXIT_GRACE_MS). Callers attach their 'exit' listener, then ask this.
 */
export function exitAlreadySent(channel: object): { code: number | null; signal?: string } | undefined {
  return EARLY_EXITS.get(channel);
}

/**
 * How long to wait for an exit status that arrives after the channel closed. Statuses that seemed
 * never to come (through the fault tests' proxy, and `kill -TERM $$` under load) had come before
 * anyone listened; exitAlreadySent() keeps them now. Short all the same: a server that really sends
 * none costs each command this long (5 s pushed a frozen-server failure to 8.3 s of its 10 s bound).
 */
export const EXIT_GRACE_MS = 2000;

/** Collects a command's output; resolves on 'close', after the last byte and the exit status. */

function collect(
  channel: ClientChannel,
  stdin: Buffer | string,
  maxStdout: number,
  check?: (chunk: Buffer) => boolean | void,
): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    let exit: { code: number | null; signal?: string } | undefined;
    let room = maxStdout;
    let truncated = false;
    let refused = false;
    channel.on('data', (d: Buffer) => {
      // Beyond the cap the output is still read (the server must not block on it), not kept.
      if (truncated || refused) return;
      if (check) {
        try {
          if (check(d) === false) return;
        } catch (err) {
          refused = true;
          stdout.length = 0;
          reject(err as Error);
          channel.close();
          return;
        }
      }
      if (d.length <= room) {
        room -= d.length;
        stdout.push(d);
        return;
      }
      truncated = true;
      stdout.push(d.subarray(0, room), Buffer.from(TRUNCATED_NOTE));
    });
    channel.stderr.on('data', (d: Buffer) => stderr.push(d));
    channel.on(
      'exit',
      (code: number | null, signal?: string) => (exit = { code: code ?? null, ...(signal && { signal }) }),
    );
    exit ??= exitAlreadySent(channel);
    channel.once('error', reject);
    let closed = false;
    const finish = () =>
      resolve({ code: null, ...exit, stdout: Buffer.concat(stdout), stderr: Buffer.concat(stderr).toString('utf8') });
    channel.on('exit', () => closed && finish());
    // OpenSSH sends EOF before the exit status, and the stream may close on EOF: give the status a
    // moment to arrive rather than report a failing command's exit as unknown.
    channel.once('close', () => {
      closed = true;
      if (exit) finish();
      else setTimeout(finish, EXIT_GRACE_MS).unref();
    });
    channel.end(stdin);
  });
}
