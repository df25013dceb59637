// One established SSH connection (possibly through a jump host) and the operations the transports use.
import type { Client, ClientChannel, SFTPWrapper } from 'ssh2';

export interface ExecResult {
  /** null when the command died from a signal, or the server sent no exit status. */
  code: number | null;
  /** As ssh2 names it, e.g. `SIGTERM`. */
  signal?: string;
  stdout: Buffer;
  stderr: string;
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

  constructor(
    private readonly client: Client,
    /** host:port of the target, for messages. */
    readonly label: string,
    private readonly proxy?: { client: Client; label: string },
  ) {
    this.lostSignal = new Promise<never>((_, reject) => (this.rejectLost = reject));
    // Only ever observed through Promise.race in guard(); unobserved it must not count as unhandled.
    this.lostSignal.catch(() => undefined);
    client.on('error', (err: Error) => this.markLost(err.message));
    client.on('close', () => this.markLost('the server closed the connection'));
    proxy?.client.on('error', (err: Error) => this.markLost(`jump host ${proxy.label}: ${err.message}`));
    proxy?.client.on('close', () => this.markLost(`jump host ${proxy.label} closed the connection`));
  }

  /**
   * Runs `command`, feeds it `stdin` (or an immediate EOF) and collects its output and exit status.
   * `started` runs once the server has started the command and its input is sent: work done there
   * overlaps the command's (its output waits in the socket meanwhile). It must not throw.
   */
  async exec(command: string, opts: { stdin?: Buffer | string; started?: () => void } = {}): Promise<ExecResult> {
    const channel = await this.execStream(command);
    const result = this.guard(() => collect(channel, opts.stdin ?? ''));
    opts.started?.();
    return result;
  }

  /** The raw channel of `command`, for streaming; the caller writes, ends and reads it. */
  async execStream(command: string): Promise<ClientChannel> {
    const channel = await this.guard(
      () =>
        new Promise<ClientChannel>((resolve, reject) =>
          this.client.exec(command, (err, ch) => {
            if (err) return reject(err);
            // Listening from the first moment: see exitAlreadySent().
            ch.once('exit', (code: number | null, signal?: string) => EARLY_EXITS.set(ch, { code: code ?? null, ...(signal && { signal }) }));
            resolve(ch);
          }),
        ),
    );
    this.track(channel);
    return channel;
  }

  /** One SFTP session per connection, opened on first use and reopened if the server ended it. */
  sftp(): Promise<SFTPWrapper> {
    if (!this.sftpSession) {
      const opening = this.guard(() => new Promise<SFTPWrapper>((resolve, reject) => this.client.sftp((err, s) => (err ? reject(err) : resolve(s)))));
      const forget = () => {
        if (this.sftpSession === opening) this.sftpSession = undefined;
      };
      opening.then((s) => s.once('close', forget), forget);
      this.sftpSession = opening;
    }
    return this.sftpSession;
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
    this.lost = new ConnectionLostError(this.closing ? `connection to ${this.label} closed` : `connection to ${this.label} lost (${cause})`);
    this.rejectLost(this.lost);
    for (const channel of this.channels) channel.emit('error', this.lost);
    this.channels.clear();
    for (const listener of this.closeListeners.splice(0)) listener(this.closing ? undefined : this.lost);
  }
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

function collect(channel: ClientChannel, stdin: Buffer | string): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    let exit: { code: number | null; signal?: string } | undefined;
    channel.on('data', (d: Buffer) => stdout.push(d));
    channel.stderr.on('data', (d: Buffer) => stderr.push(d));
    channel.on('exit', (code: number | null, signal?: string) => (exit = { code: code ?? null, ...(signal && { signal }) }));
    exit ??= exitAlreadySent(channel);
    channel.once('error', reject);
    let closed = false;
    const finish = () => resolve({ code: null, ...exit, stdout: Buffer.concat(stdout), stderr: Buffer.concat(stderr).toString('utf8') });
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
