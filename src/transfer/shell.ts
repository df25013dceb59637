import type { Readable, Writable } from 'node:stream';

/**
 * The part of an SSH session that runs commands on the server, and how a command line and a script's
 * clean-up are written for its POSIX sh: what the tar transport, the delta transfer and the identity
 * probe need (SshSession is one). Below all of them, so none imports another.
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

/** Quotes one word for POSIX sh. */
export function shQuote(word: string): string {
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

/** `sh -c SCRIPT sh ARGS...`, optionally as root through `sudo -n` (never prompts: fails instead). */
export function shCommand(script: string, args: string[], sudo: boolean): string {
  const words = ['sh', '-c', script, 'sh', ...args].map(shQuote).join(' ');
  return sudo ? `sudo -n ${words}` : words;
}

/**
 * Ends the shell through its EXIT trap on the signals that end a script whose run was cut off: a killed
 * action closes its connection, sshd then closes the command's pipes, and the next write raises SIGPIPE;
 * `timeout` sends TERM; a terminal, HUP or INT. dash (Debian's and Ubuntu's /bin/sh) runs no EXIT trap
 * when a signal ends it, so a script's `trap '<cleanup>' EXIT` alone leaks its temp files on exactly
 * those ends. Put after the EXIT trap; the status is the usual 128 + the signal's number.
 */
export const EXIT_ON_SIGNALS = `trap 'exit 129' HUP; trap 'exit 130' INT; trap 'exit 141' PIPE; trap 'exit 143' TERM`;
