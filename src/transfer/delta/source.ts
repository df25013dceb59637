import type { Readable } from 'node:stream';
import type { Codec } from '../compression.js';
import type { FrameReader } from './frames.js';
import type { Tool } from './plan.js';

/**
 * One run of a delta script on the server: its output (decompressed). Its exit status is not waited
 * for: the answer is complete when every file's part has been read, and anything else is refused.
 */
export interface DeltaRun {
  output: Readable;
  /** Its answer, read (see FrameReader; `waiting` tells the idle watchdog when the server's silence counts). */
  reader: FrameReader;
  /** Stops the command (its answer is no longer wanted). */
  stop(): void;
  /** The channel's failure (the connection lost), if it failed: that fails the backup, as a fetch's would. */
  lost(): Error | undefined;
  /** What the command said on stderr so far. */
  stderr(): string;
}

/** A command's stdin, written as the requests are known. */
export interface Requests {
  send(request: Buffer): void;
  /** No more requests: the command ends once it has answered them. */
  end(): void;
}

/** What a transport offers the delta transfer: the two scripts, run on the server. */
export interface DeltaSource {
  /**
   * Block digests, or an appended tail compressed as the wire is for `names`, of the NUL-separated
   * requests in `stdin` (see DIGESTS_SCRIPT). `codec` is the tail's codec the script was asked for.
   */
  digests(stdin: Buffer, names: string[]): Promise<DeltaRun & { codec: Codec }>;
  /**
   * The blocks script, read with `tool` (see BLOCKS_SCRIPT), compressed as the wire is for `names`:
   * its requests are sent one by one as they are known, its answers follow in their order.
   */
  blocks(tool: Tool, names: string[]): Promise<DeltaRun & Requests>;
}
