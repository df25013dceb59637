// Reading a delta script's answer: text lines and runs of raw bytes.
import type { Readable } from 'node:stream';

/** The server's answer broke the protocol (or ended early): nothing more of it can be read. */
export class ProtocolError extends Error {
  override name = 'ProtocolError';
}

/**
 * Reads a delta script's answer: short text lines and runs of raw bytes, from a stream, holding no
 * more than what the caller asks for at once.
 */
export class FrameReader {
  private buf: Buffer = Buffer.alloc(0);
  private readonly source: AsyncIterator<Buffer>;
  private ended = false;
  /**
   * Waiting for the server's next bytes. Only then is its silence the server's: while this side hashes
   * or copies, what the server sent waits unread, and the idle watchdog must not count that time.
   */
  waiting = false;

  constructor(stream: Readable) {
    this.source = (stream as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
  }

  private async more(): Promise<boolean> {
    if (this.ended) return false;
    this.waiting = true;
    const r = await this.source.next().finally(() => (this.waiting = false));
    if (r.done) {
      this.ended = true;
      return false;
    }
    this.buf = this.buf.length === 0 ? r.value : Buffer.concat([this.buf, r.value]);
    return true;
  }

  /** The next line (without its newline), at most `max` bytes; null at the end of the stream. */
  async line(max = 256): Promise<string | null> {
    for (;;) {
      const nl = this.buf.indexOf(10);
      if (nl >= 0 && nl <= max) {
        const text = this.buf.toString('latin1', 0, nl);
        this.buf = this.buf.subarray(nl + 1);
        return text;
      }
      if (nl > max || this.buf.length > max) throw new ProtocolError('a line longer than the protocol allows');
      if (!(await this.more())) {
        if (this.buf.length === 0) return null;
        throw new ProtocolError('the answer ends inside a line');
      }
    }
  }

  /** Exactly `n` bytes (the caller bounds n). */
  async exact(n: number): Promise<Buffer> {
    const parts: Buffer[] = [];
    for await (const piece of this.take(n)) parts.push(piece);
    return parts.length === 1 ? parts[0]! : Buffer.concat(parts, n);
  }

  /** `n` bytes as they come, in pieces (never gathered whole). */
  async *take(n: number): AsyncGenerator<Buffer> {
    while (n > 0) {
      if (this.buf.length === 0 && !(await this.more())) throw new ProtocolError('the answer ends early');
      const piece = this.buf.subarray(0, Math.min(n, this.buf.length));
      this.buf = this.buf.subarray(piece.length);
      n -= piece.length;
      yield piece;
    }
  }
}
