/** Listing over SFTP: attributes to records, names checked, owners named from OpenSSH's longname. */

import type { Attributes, FileEntryWithStats } from 'ssh2';
import { HostileServerError } from '../../errors.js';
import { safeText } from '../../report/reporter.js';
import { ListingBudget } from '../listing-cap.js';
import type { RemoteFile } from '../types.js';
import { Limiter } from './io.js';

const TYPES: Record<number, RemoteFile['type']> = { 0o100000: 'file', 0o040000: 'dir', 0o120000: 'symlink' };

export interface ListContext {
  limit: Limiter;
  names: OwnerNames;
  /** The listing caps, over every folder of every entry of one listing. */
  budget: ListingBudget;
}

/**
 * Counts a folder's batch against the listing caps before it is kept: a record each, and the bytes of
 * its names (a name and its `ls -l` line are what an entry holds beyond fixed-size attributes).
 */
export function countBatch(budget: ListingBudget, dir: string, batch: readonly FileEntryWithStats[]): void {
  let bytes = 0;
  for (const entry of batch) bytes += entry.filename.length + (entry.longname?.length ?? 0);
  budget.take(batch.length, bytes, () => dir);
}

/** Keeps a name from a folder listing: "." and ".." are skipped; anything but one plain name is refused. */
export function isChildName(name: string, dir: string): boolean {
  if (name === '.' || name === '..') return false;
  if (name === '' || name.includes('/') || name.includes('\0')) {
    throw new HostileServerError(
      `the server listed "${safeText(name)}" in ${safeText(dir)}, which is not a plain file name; refusing the listing`,
    );
  }
  return true;
}

export function typeOf(mode: number): RemoteFile['type'] {
  return TYPES[mode & 0o170000] ?? 'other';
}

/**
 * SFTP v3 carries a time as 32 unsigned bits: OpenSSH's server sends a time before 1970 as its low 32
 * bits (1969-12-31 23:59:59 as 4294967295, a date in 2106). Read as signed, the range is 1901–2038,
 * which holds every time a server can have now, and the pre-1970 ones tools leave behind; a time past
 * 2038 cannot be told from one before 1970 and reads as the latter (README, "What comes back").
 */
export function sftpTime(wire: number): number {
  return Math.floor(wire) | 0;
}

/**
 * A time as SFTP v3 can write it: 32 unsigned bits, which OpenSSH's server takes as they are. A time
 * before 1970 would land in 2038–2106, so it is written as 1970-01-01 00:00:00 instead (and one past
 * 2106 as the last second there is): the nearest the protocol can say (README, "What comes back").
 */
export function sftpWriteTime(time: number): number {
  return Math.min(Math.max(Math.floor(time), 0), 0xffffffff);
}

export function toRecord(rel: string, a: Attributes): RemoteFile {
  // A server may leave attributes out (their flag unset); ssh2 then leaves them undefined.
  const mode = a.mode ?? 0;
  const uid = a.uid ?? 0;
  const gid = a.gid ?? 0;
  return {
    rel,
    type: typeOf(mode),
    size: a.size ?? 0,
    mtime: sftpTime(a.mtime ?? 0),
    mode: mode & 0o7777,
    uid,
    gid,
    user: String(uid),
    group: String(gid),
    readable: true,
  };
}

// OpenSSH's longname: `drwxr-xr-x    2 user     group        4096 Jan  1 12:00 name`.
const LONGNAME = /^[-a-zA-Z]{10}\S?\s+\d+\s+(\S+)\s+(\S+)\s+(\d+)\s/;
const OWNER_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]*\$?$/;

/**
 * SFTP v3 carries ids only, but a listing's "longname" (an `ls -l` line) names owner and group as
 * the server resolves them. Names are learnt from lines that parse unambiguously (the size matches)
 * and applied to every record with that id, entry roots included; otherwise the id is the name.
 */
export class OwnerNames {
  private readonly users = new Map<number, string>();
  private readonly groups = new Map<number, string>();

  learn(entry: FileEntryWithStats): void {
    const m = LONGNAME.exec(entry.longname ?? '');
    if (!m || Number(m[3]) !== entry.attrs.size) return;
    if (OWNER_NAME.test(m[1]!)) this.users.set(entry.attrs.uid, m[1]!);
    if (OWNER_NAME.test(m[2]!)) this.groups.set(entry.attrs.gid, m[2]!);
  }

  apply(f: RemoteFile): void {
    f.user = this.users.get(f.uid) ?? f.user;
    f.group = this.groups.get(f.gid) ?? f.group;
  }
}
