/**
 * What `mode: verify` found, entry by entry: computed by transfer/verify.ts, shown by report/. Paths
 * are server paths.
 */

export type VerifyStatus = 'same' | 'drift' | 'missing' | 'denied';

export interface VerifyEntry {
  recipe: string;
  remote: string;
  local: string;
  /**
   * `missing`/`denied`: the entry's root could not be listed (nothing is compared, nothing is drift).
   * Otherwise `drift` when anything differs, `denied` when nothing differs but some paths could not be
   * compared (unreadable), else `same`.
   */
  status: VerifyStatus;
  /** On the server, not in the stored copy. */
  added: string[];
  /** In the stored copy, gone from the server. */
  removed: string[];
  /** Both have it, but size or mtime (files), type, link target or (with checksum) content differ. */
  changed: string[];
  /** Paths the login user may not read: their content (for a folder: what is below) was not compared. */
  denied: string[];
  /** Why an entry is denied, and the like; plain text from the server, not yet made safe for a log. */
  notes: string[];
}

export interface VerifyCounts {
  added: number;
  removed: number;
  changed: number;
}

export interface VerifyResult {
  entries: VerifyEntry[];
  /** True when any entry drifted. Missing and denied entries are not drift: judge them apart (if-missing, allow-denied). */
  drift: boolean;
  counts: VerifyCounts;
}
