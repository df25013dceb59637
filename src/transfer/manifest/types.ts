import type { RemoteFile } from '../types.js';

/**
 * The manifest keeps what git and zip lose: type, size, mtime, mode, owner, group, link target and
 * SHA-256 of every stored file, keyed by its path in the domain's data folder. Restore and verify
 * work from it; backup compares the server against it to move only what changed.
 */
export interface ManifestFile {
  type: RemoteFile['type'];
  size: number;
  mtime: number;
  /** Octal, four digits ("0640"): readable in a diff. */
  mode: string;
  uid: number;
  gid: number;
  user: string;
  group: string;
  target?: string;
  sha256?: string;
}

export interface ManifestEntry {
  remote: string;
  recipe: string;
  type: RemoteFile['type'];
}

export interface Manifest {
  version: 1;
  domain: string;
  /** Set when file contents are encrypted at rest (`age:<recipients digest>`); sizes and hashes stay plaintext's. */
  encryption?: string;
  /**
   * `portable-1`: every name is stored so that it checks out on Linux, macOS and Windows
   * (portable-names.ts). `git-safe-1`: only names git would interpret are escaped (stored-names.ts).
   * Absent in a folder an older version wrote, whose names are as the server gave them. The next backup
   * migrates an older folder to portable-1.
   */
  names?: 'git-safe-1' | 'portable-1';
  /** The server instance this salvage came from (see transfer/identity/): absent before version 0.2. */
  server?: ServerRecord;
  /** This salvage: a new id and time whenever a backup changes what is stored; a restore leaves the id on the server. */
  salvage?: SalvageRecord;
  /**
   * portable-1's exceptions: path → the stored name of its last component, for the names a folder's
   * siblings or the length limit made stored under a `%…%~n` form. Absent when there are none.
   */
  stored?: Record<string, string>;
  entries: Record<string, ManifestEntry>;
  files: Record<string, ManifestFile>;
}

/**
 * What identifies a server instance, each as a value that changes when the server is rebuilt. Any may be
 * absent (an SFTP-only account runs no command; a server without /etc/machine-id).
 */
export interface ServerRecord {
  /** The host key the connection verified, `<type> SHA256:<base64>`. */
  hostKey?: string;
  /** SHA-256 of the domain and /etc/machine-id: the id itself is meant to stay on its machine. */
  machine?: string;
  /** The random id of the marker remote-files leaves on the server (32 hex digits). */
  instance?: string;
}

export interface SalvageRecord {
  /** 32 hex digits. */
  id: string;
  /** ISO 8601, UTC. */
  at: string;
}
