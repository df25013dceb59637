import type { Entry } from './entries.js';
import type { EntryOutcome } from '../model/outcome.js';
import type { ManifestFile } from './manifest/manifest.js';
import type { EntryListing, RemoteFile } from './types.js';

/** A file to fetch for one entry: several entries may want the same server file. */
export interface FetchTarget {
  plan: EntryPlan;
  path: string;
  file: RemoteFile;
  /**
   * A stored copy of it is in the data folder, as the manifest records it (a delta transfer compares
   * with it; an appended file is told by its SHA-256 as a prefix).
   */
  stored?: StoredCopy;
}

/** A file's stored copy, by the manifest's record of it. */
export interface StoredCopy {
  size: number;
  sha256?: string;
}

/** What to do for one entry, decided from the listing and the manifest before any byte moves. */
export interface EntryPlan {
  entry: Entry;
  outcome: EntryOutcome;
  listing: EntryListing;
  rootIsDir: boolean;
  /** Records for the new manifest that need no transfer (folders, links, unchanged files, kept ones). */
  records: Map<string, ManifestFile>;
  fetch: Array<{ path: string; file: RemoteFile; stored?: StoredCopy }>;
  links: Array<{ path: string; target: string }>;
  dirs: string[];
  deletions: string[];
  /** How many paths the old manifest has for this entry (its own: ceded ones aside). */
  oldCount: number;
  /** Entries whose local path lies strictly inside this one's. */
  nested: Entry[];
  /**
   * Local paths of nested entries this entry's listing does not reach (below one of its links, or not
   * there at all): theirs alone. This entry neither records, deletes nor drops anything at or below them.
   */
  ceded: string[];
  /** The type of every path it listed (excludes applied), kept only for an entry that nests or is nested. */
  types: Map<string, RemoteFile['type']> | undefined;
}
