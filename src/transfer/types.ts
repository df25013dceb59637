import type { Readable } from 'node:stream';
import type { DeltaSource } from './delta/source.js';

/** What a server says about one path below a planned entry (its root included, as rel ''). */
export interface RemoteFile {
  /** Path relative to the entry root, POSIX; '' is the root itself. */
  rel: string;
  type: 'file' | 'dir' | 'symlink' | 'other';
  size: number;
  /** Whole seconds: what both tar and SFTP can carry. */
  mtime: number;
  /** Permission bits, setuid/setgid/sticky included (0o7777). */
  mode: number;
  uid: number;
  gid: number;
  user: string;
  group: string;
  /** Symlink target, as stored in the link. */
  target?: string;
  /** False when the login user may not read it (for a folder: list and enter it). */
  readable: boolean;
}

export type EntryListing =
  { status: 'ok'; files: RemoteFile[] } | { status: 'missing' } | { status: 'denied'; reason: string };

/** One file's content as it arrives. `stream` must be consumed before the next file arrives. */
export interface IncomingFile {
  remote: string;
  size: number;
  /** Whole seconds as the transfer read them; undefined when it cannot tell (the listing's time stands). */
  mtime: number | undefined;
  stream: Readable;
}

export interface FetchResult {
  notSent: string[];
  /** What the server said about them (stderr), for the log. */
  message: string;
}

/** A file, folder or link to create on the server during a restore, with the metadata to apply. */
export interface OutgoingItem {
  rel: string;
  type: 'file' | 'dir' | 'symlink';
  size: number;
  mtime: number;
  mode: number;
  uid: number;
  gid: number;
  user: string;
  group: string;
  target?: string;
  /** Local file with the content (files only). */
  source?: string;
}

export interface UploadRequest {
  /** Server path of the entry root. */
  root: string;
  /**
   * Root's own type: a file entry uploads one item with rel ''. A link root is put back only where the
   * server has nothing, and never entered nor searched through (it may point anywhere on the server).
   */
  rootType: 'file' | 'dir' | 'symlink';
  items: OutgoingItem[];
  /** Rels whose current server content must be kept aside before being replaced. */
  keepPrevious: string[];
  /** Server folder where previous contents are kept (created as needed). */
  previousDir: string;
  /** Try to set owner and group (works as root or via sudo). */
  chown: boolean;
  /** Told of the content bytes as they leave, and of each file or link once sent. */
  progress?: { bytes(n: number): void; fileDone(): void };
}

export interface UploadResult {
  /** Rels whose owner/group could not be set. */
  ownerNotSet: string[];
}

/**
 * How bytes move. `tar` streams one archive over an exec channel; `sftp` works for accounts with no
 * shell. The engine (backup, restore, verify) only sees this interface.
 */
export interface Transport {
  readonly name: 'tar' | 'sftp';
  /** How the wire is compressed, and why (for the log). */
  readonly compression?: string;
  /** False when the account has no shell (prepare commands cannot run). */
  readonly canRunCommands: boolean;
  /** Changed blocks of big files, computed and read on the server (tar only; SFTP moves whole files). */
  readonly delta?: DeltaSource;
  /** Lists each entry recursively (symlinks not followed), in the order given. */
  list(remotes: string[]): Promise<EntryListing[]>;
  /** SHA-256 (hex) of each readable file; a file that cannot be read is absent from the map. */
  checksums(remotes: string[]): Promise<Map<string, string>>;
  /**
   * Streams the content of the given files; each arrives at most once, in any order. Files that could
   * not be sent (vanished, unreadable) are returned with the server's explanation.
   */
  fetch(remotes: string[], onFile: (file: IncomingFile) => Promise<void>): Promise<FetchResult>;
  /** Writes items below `root`, each to a temp name beside its place, then renamed. */
  upload(request: UploadRequest): Promise<UploadResult>;
  /** Removes these server files (never folders; a missing one is no error). */
  removeFiles(paths: string[]): Promise<void>;
  /**
   * Runs a shell command (as root with sudo), `args` as its $1…; never throws for a non-zero exit.
   * With `limitSecs` (the `command-timeout` input) the command is stopped when it runs longer: on the
   * server by its own `timeout` (exit 124, `timedOut`), and failing that from here.
   */
  run(
    command: string,
    args?: string[],
    limitSecs?: number,
  ): Promise<{ code: number | null; output: string; timedOut?: boolean }>;
}

/**
 * The server refused a restore's write for lack of permission (the login user may not write there):
 * the engine reports that entry as `denied` and goes on with the others.
 */
export class WriteDeniedError extends Error {
  override name = 'WriteDeniedError';
}

/** The line of a server's message that says permission was refused, if any. */
export function deniedLine(text: string): string | undefined {
  return text
    .split('\n')
    .find((l) => /Permission denied|Operation not permitted|Read-only file system/i.test(l))
    ?.trim();
}
