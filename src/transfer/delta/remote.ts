import type { Readable } from 'node:stream';
import { decoder, type Codec } from '../compression.js';
import { shCommand } from '../shell.js';
import type { ShellRunner } from '../shell.js';
import { FrameReader } from './frames.js';
import type { DeltaRun, DeltaSource, Requests } from './source.js';
import { BLOCKS_ARGS, BLOCKS_SCRIPT, DIGESTS_ARGS, DIGESTS_SCRIPT } from './scripts.js';
import type { Tool } from './plan.js';

export type { DeltaRun, DeltaSource } from './source.js';
export { FrameReader, ProtocolError } from './frames.js';

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
    // The idle watchdog counts the server's silence only while its answer is waited for, and only
    // once the last request is sent: before, the server may rightly be still (it has found no more
    // changes yet; a compressor holds a part block), and while this side hashes or copies, what the
    // server sent waits unread.
    let ended = false;
    const answer: { reader?: FrameReader } = {};
    const channel = await this.shell.execStream(command, {
      waitedOn: () => ended && (answer.reader?.waiting ?? false),
    });
    let stderr = '';
    channel.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
    // Once the command has exited or its channel closed, a failed write (a request after a script that
    // stopped early) is its answer ending, not the connection lost.
    let over = false;
    channel.once('exit', () => (over = true));
    channel.once('close', () => (over = true));
    let lost: Error | undefined;
    channel.on('error', (err: Error) => (lost ??= over ? undefined : err));
    let output: Readable = channel;
    if (codec !== 'none') {
      // A stream that does not decompress is a broken answer; the reader sees the error, nothing else must.
      const unpack = decoder(codec);
      unpack.on('error', () => undefined);
      channel.on('error', (err: Error) => unpack.destroy(err));
      output = channel.pipe(unpack);
    }
    const reader = (answer.reader = new FrameReader(output));
    return {
      output,
      reader,
      // Requests are small (a path and a list of runs): written as they come, never waited on.
      send: (request) => {
        if (!over && !channel.writableEnded && !channel.destroyed) channel.write(request);
      },
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
