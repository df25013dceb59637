import type tar from 'tar-stream';
import type { OutgoingItem } from '../types.js';

export type MemberHeader = Partial<tar.Header> & { name: string };

/**
 * What tar-stream's ustar header can hold exactly: it writes the mtime through a 32-bit integer and
 * uid and gid in six octal digits. Beyond that a value comes out wrapped (2100 as 1901), capped
 * (uid 300000 as 262143) or as text GNU tar rejects (`000000000-2`).
 */
const USTAR_MAX_TIME = 2 ** 31 - 1;
const USTAR_MAX_ID = 0o777777;

/** File type bits: tar-stream takes a mode of 0 for "unset" (and writes 0644); these make 0000 a mode it keeps. */
const TYPE_BITS: Record<OutgoingItem['type'], number> = { file: 0o100000, dir: 0o040000, symlink: 0o120000 };

/**
 * The tar header of one item of a restore. Times outside 1970–2038 and ids above 262143 travel as pax
 * extended header records (`mtime=`, `uid=`, `gid=`, which GNU tar reads, negative times included),
 * with in-range stand-ins in the ustar fields, which GNU tar then ignores.
 */
export function memberHeader(item: OutgoingItem, name: string): MemberHeader {
  const pax: Record<string, string> = {};
  const timeFits = Number.isInteger(item.mtime) && item.mtime >= 0 && item.mtime <= USTAR_MAX_TIME;
  if (!timeFits) pax.mtime = String(item.mtime);
  if (item.uid > USTAR_MAX_ID) pax.uid = String(item.uid);
  if (item.gid > USTAR_MAX_ID) pax.gid = String(item.gid);
  const extended = Object.keys(pax).length > 0;
  return {
    name,
    // Masked to 07777 by tar-stream: the type bits only keep a mode of 0000 from reading as unset.
    mode: (item.mode & 0o7777) | TYPE_BITS[item.type],
    mtime: new Date((timeFits ? item.mtime : 0) * 1000),
    uid: Math.min(item.uid, USTAR_MAX_ID),
    gid: Math.min(item.gid, USTAR_MAX_ID),
    uname: item.user,
    gname: item.group,
    ...(extended && { pax }),
  };
}

/** A pax time as GNU tar writes it; twelve digits at most, within what a manifest may hold (check.ts). */
const PAX_TIME = /^-?\d{1,12}(\.\d+)?$/;

/**
 * A fetched member's mtime in whole seconds (rounded down), or undefined where the archive cannot be
 * read exactly: GNU tar writes a time before 1970 as a base-256 number, which tar-stream reads one
 * second too late (-1 comes out as 0, -100 as -99). Such a time, and 0, are left to the listing's
 * reading (find's, exact); a positive one is exact, and the archive's is the one that matches the
 * bytes should the file change between the listing and the fetch.
 */
export function archiveTime(h: Pick<tar.Header, 'mtime' | 'pax'>): number | undefined {
  const pax = (h.pax as Record<string, string> | null | undefined)?.mtime;
  if (pax !== undefined && PAX_TIME.test(pax)) return Math.floor(Number(pax));
  const seconds = Math.floor((h.mtime?.getTime() ?? 0) / 1000);
  return seconds > 0 ? seconds : undefined;
}
