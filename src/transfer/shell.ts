import type { Readable, Writable } from 'node:stream';

/**
 * The part of an SSH session that runs commands on the server: what the tar transport, the delta
 * transfer and the identity probe need (SshSession is one). Below all of them, so none imports another.
 */
export interface ShellChannel extends Readable {
  stderr: Readable;
  end(data?: Buffer | string): this;
  on(event: 'exit', listener: (code: number | null, signal?: string) => void): this;
  on(event: string, listener: (...args: never[]) => void): this;
}
export interface ShellRunner {
  /** `started` is called once the server has started the command, while its output is still to come. */
  exec(
    command: string,
    opts?: {
      stdin?: Buffer | string;
      started?: () => void;
      maxStdout?: number;
      unwatched?: boolean;
      check?: (chunk: Buffer) => boolean | void;
      limitMs?: number;
      limitName?: string;
    },
  ): Promise<{ code: number | null; stdout: Buffer; stderr: string }>;
  /**
   * `waitedOn`: whether the channel is waited on now, for the idle watchdog (`timeout`); always when
   * not given. A channel fed requests as another one's answer shows them is not, until its last is sent.
   */
  execStream(command: string, opts?: { waitedOn?: () => boolean }): Promise<ShellChannel & Writable>;
}
