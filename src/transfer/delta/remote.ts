import type { Readable } from 'node:stream';
import { decoder, type Codec } from '../compression.js';
import { shCommand } from '../tar/remote-scripts.js';
import type { ShellRunner } from '../shell.js';
import type { DeltaRun, DeltaSource, Requests } from './source.js';
import { BLOCKS_ARGS, BLOCKS_SCRIPT, DIGESTS_ARGS, DIGESTS_SCRIPT } from './scripts.js';
import type { Tool } from './plan.js';

export type { DeltaRun, DeltaSource } from './source.js';

/** The delta scripts over the tar transport's exec channel (`sudo -n` as it uses it). */
export class ShellDelta implements DeltaSource {
  constructor(
    private readonly shell: ShellRunner,
    private readonly sudo: boolean,
    private readonly codecFor: (names: string[]) => Codec,
  ) {}

  async digests(stdin: Buffer, names: string[]): Promise<DeltaRun & { codec: Codec }> {
    // The answer itself is not compressed (digests do not shrink); an appended tail is, inside it.
    const codec = this.codecFor(names);
    const args = [codec === 'none' ? '' : codec, ...DIGESTS_ARGS];
    const run = await this.start(shCommand(DIGESTS_SCRIPT, args, this.sudo), 'none');
    run.send(stdin);
    run.end();
    return { ...run, codec };
  }

  blocks(tool: Tool, names: string[]): Promise<DeltaRun & Requests> {
    const codec = this.codecFor(names);
    const args = [tool, codec === 'none' ? '' : codec, ...BLOCKS_ARGS];
    return this.start(shCommand(BLOCKS_SCRIPT, args, this.sudo), codec);
  }

  private async start(command: string, codec: Codec): Promise<DeltaRun & Requests> {
    // Until its last request is sent, the channel may rightly be still (the server has found no more
    // changes yet; a compressor holds a part block): the digests channel is the one waited on then.
    let ended = false;
    const channel = await this.shell.execStream(command, { waitedOn: () => ended });
    let stderr = '';
    channel.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
    let lost: Error | undefined;
    channel.on('error', (err: Error) => (lost ??= err));
    let output: Readable = channel;
    if (codec !== 'none') {
      // A stream that does not decompress is a broken answer; the reader sees the error, nothing else must.
      const unpack = decoder(codec);
      unpack.on('error', () => undefined);
      channel.on('error', (err: Error) => unpack.destroy(err));
      output = channel.pipe(unpack);
    }
    return {
      output,
      // Requests are small (a path and a list of runs): written as they come, never waited on.
      send: (request) => void channel.write(request),
      end: () => {
        if (ended) return;
        ended = true;
        channel.end();
      },
      stop: () => {
        output.destroy();
        channel.destroy();
      },
      lost: () => lost,
      stderr: () => stderr.trim(),
    };
  }
}

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

  constructor(stream: Readable) {
    this.source = (stream as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
  }

  private async more(): Promise<boolean> {
    if (this.ended) return false;
    const r = await this.source.next();
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
