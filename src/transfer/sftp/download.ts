/** Fetching over SFTP: one file read with many requests in flight, streamed within its window. */

import { Readable } from 'node:stream';
import { safeText } from '../../report/reporter.js';
import type { IncomingFile } from '../types.js';
import { CHUNK, NO_SUCH_FILE, REQUESTS_PER_FILE, Sftp, StatusError, statusOf, STREAM_BUFFER } from './io.js';
import { sftpTime, typeOf } from './listing.js';

/**
 * One remote file read with up to REQUESTS_PER_FILE reads in flight, its bytes handed out in order
 * through `stream`. At most `window` bytes are asked for but not yet passed to the stream, so files
 * read ahead of their turn cost bounded memory. A failure before the file is handed over is the
 * file's own (`notSent`); after, it breaks the stream. A lost connection is never the file's own.
 */
export class Download {
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
      this.mtime = sftpTime(st.mtime);
    } catch (err) {
      this.fail(err);
    }
    this.pump();
  }

  private pump(): void {
    while (
      !this.stopped &&
      this.handle &&
      this.inFlight < REQUESTS_PER_FILE &&
      this.issued < this.end &&
      this.issued - this.delivered < this.window
    ) {
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

export function track(live: Set<Download>, d: Download): Download {
  live.add(d);
  void d.closed.then(() => live.delete(d));
  return d;
}
