import { judged, judgeEntries } from './judge.js';
import { excludeRel, ownPaths, remotePathOf, type Entry } from './entries.js';
import { applyExcludes, makeExcludeTest, type ExcludeTest } from './local/excludes.js';
import { storedPath, type Manifest, type ManifestFile } from './manifest/manifest.js';
import type { EntryListing, RemoteFile, Transport } from './types.js';
import type { VerifyCounts, VerifyEntry, VerifyResult } from '../model/verify-result.js';

/**
 * `mode: verify`: compares the server with the stored copy (its manifest) and changes neither. The
 * only server calls are `list` and, with `checksum`, `checksums`; the stored files are not read at
 * all: the manifest holds their size, mtime, type, link target and SHA-256 (plaintext's, also when
 * the copy is encrypted), which is everything the comparison needs.
 *
 * Paths in the result are server paths: verify is about what the server holds, and a server path
 * names the same file whatever entry or data-dir it is stored under.
 */

export type { VerifyCounts, VerifyEntry, VerifyResult, VerifyStatus } from '../model/verify-result.js';

export interface VerifyOptions {
  /** Also compare SHA-256 of files whose size and mtime match (catches same-size, same-time edits). */
  checksum: boolean;
}

/** A file that matched by size and mtime and whose content `checksums` must still confirm. */
export interface ChecksumCandidate {
  /** Server path: the key of `Transport.checksums`' answer. */
  remote: string;
  sha256: string;
}

/** One entry compared from its listing, before checksums (if any) are in. */
export interface EntryComparison {
  result: VerifyEntry;
  confirm: ChecksumCandidate[];
}

/** Lists (and with `checksum` hashes) every entry on the server and compares it with the manifest. Read-only. */
export async function verify(
  entries: Entry[],
  transport: Transport,
  manifest: Manifest,
  opts: VerifyOptions,
): Promise<VerifyResult> {
  const listings = entries.length ? await transport.list(entries.map((e) => e.remote)) : [];
  const compared = entries.map((e, i) => compareEntry(e, listings[i]!, manifest, opts));
  const wanted = compared.flatMap((c) => c.confirm.map((x) => x.remote));
  const sums = wanted.length ? await transport.checksums(wanted) : new Map<string, string>();
  return verifyResult(compared.map((c) => finishEntry(c, sums)));
}

/**
 * Compares one entry's listing with the manifest, as backup would decide what to fetch and delete:
 * the same excludes on both sides, and what is below an unreadable folder is neither added nor removed.
 * Pure.
 */
export function compareEntry(
  entry: Entry,
  listing: EntryListing,
  manifest: Manifest,
  opts: VerifyOptions,
): EntryComparison {
  const result: VerifyEntry = {
    recipe: entry.recipe,
    remote: entry.remote,
    local: entry.local,
    status: 'same',
    added: [],
    removed: [],
    changed: [],
    denied: [],
    notes: [],
  };
  const cmp: EntryComparison = { result, confirm: [] };
  if (listing.status === 'missing') {
    result.status = 'missing';
    return cmp;
  }
  if (listing.status === 'denied') {
    result.status = 'denied';
    result.denied.push(entry.remote);
    result.notes.push(listing.reason);
    return cmp;
  }
  const rootIsDir = listing.files.find((f) => f.rel === '')?.type === 'dir';
  const skip = makeExcludeTest(entry.skip);
  const files = applyExcludes(listing.files, skip, (f) => excludeRel(entry.remote, f.rel, rootIsDir));
  const server = new Map(files.map((f) => [storedPath(entry.local, f.rel), f] as const));
  // Stored paths below an unreadable folder: the server did not show them, so they cannot be "removed".
  const hidden = files.filter((f) => !f.readable && f.type === 'dir').map((f) => storedPath(entry.local, f.rel));
  const isHidden = (p: string) => hidden.some((h) => p.startsWith(h + '/'));
  const remoteOf = (p: string) => remotePathOf(entry.remote, relOf(entry, p));

  const added: string[] = [];
  const removed: string[] = [];
  for (const [path, f] of server) {
    if (!f.readable) result.denied.push(remoteOf(path));
    const prev = manifest.files[path];
    if (!prev) {
      added.push(path);
      continue;
    }
    if (differs(f, prev)) {
      result.changed.push(remoteOf(path));
      continue;
    }
    if (opts.checksum && f.type === 'file' && prev.sha256) {
      // An unreadable file cannot be hashed; it is already listed as denied, and stays uncompared.
      if (f.readable) cmp.confirm.push({ remote: remoteOf(path), sha256: prev.sha256 });
    }
  }
  const storedExcluded = storedExcludeTest(entry, manifest, skip);
  // Its own paths: a nested entry's files below a link it recorded are that entry's to compare.
  for (const path of ownPaths(manifest, entry.local).paths) {
    if (server.has(path) || isHidden(path) || storedExcluded(path)) continue;
    removed.push(path);
  }
  result.added = collapse(added).map(remoteOf);
  result.removed = collapse(removed).map(remoteOf);
  return cmp;
}

/** Settles an entry: files whose SHA-256 on the server is not the stored one become changed, unhashable ones denied; then its status. Pure. */
export function finishEntry(cmp: EntryComparison, sums: ReadonlyMap<string, string>): VerifyEntry {
  const r = {
    ...cmp.result,
    changed: [...cmp.result.changed],
    denied: [...cmp.result.denied],
    notes: [...cmp.result.notes],
  };
  const unhashed: string[] = [];
  for (const c of cmp.confirm) {
    const sum = sums.get(c.remote);
    if (sum === undefined) unhashed.push(c.remote);
    else if (sum !== c.sha256) r.changed.push(c.remote);
  }
  if (unhashed.length) {
    // Listed as readable a moment ago, yet not hashed: it vanished or its permissions changed since.
    r.denied.push(...unhashed);
    r.notes.push(`${unhashed.length} file(s) could not be hashed on the server; their content was not compared`);
  }
  r.changed.sort();
  r.denied.sort();
  r.added.sort();
  r.removed.sort();
  if (r.status === 'missing' || r.status === 'denied') return r;
  r.status =
    r.added.length + r.removed.length + r.changed.length > 0 ? 'drift' : r.denied.length > 0 ? 'denied' : 'same';
  return r;
}

/** Totals over the entries. Pure. */
export function verifyResult(entries: VerifyEntry[]): VerifyResult {
  const sum = (k: keyof VerifyCounts) => entries.reduce((n, e) => n + e[k].length, 0);
  return {
    entries,
    drift: entries.some((e) => e.status === 'drift'),
    counts: { added: sum('added'), removed: sum('removed'), changed: sum('changed') },
  };
}

/** What a run should fail on or warn about, by the same rules as backup (if-missing, allow-denied) plus fail-on-drift. Pure. */
export function judgeVerify(
  r: VerifyResult,
  s: { ifMissing: 'warn' | 'error' | 'ignore'; allowDenied: boolean; failOnDrift: boolean; username: string },
): { problems: string[]; warnings: string[] } {
  const { problems, warnings } = judgeEntries(r.entries.map(judged), s, {
    missing: ' on the server',
    denied: 'not readable by',
    consequence: 'not compared',
  });
  if (r.drift && s.failOnDrift) {
    problems.push(
      `the server and the stored copy differ: ${r.counts.added} added, ${r.counts.removed} removed, ${r.counts.changed} changed (fail-on-drift: true)`,
    );
  }
  return { problems, warnings };
}

/**
 * Only what a backup would store differently counts: size and mtime of files (folders' mtimes move
 * with every change inside them), the type, and a link's target. Owner and mode are not compared:
 * `changed-files` is documented as content, size, time, type or link target.
 */
function differs(f: RemoteFile, prev: ManifestFile): boolean {
  if (f.type !== prev.type) return true;
  if (f.type === 'file') return f.size !== prev.size || f.mtime !== prev.mtime;
  if (f.type === 'symlink') return (f.target ?? '') !== (prev.target ?? '');
  return false;
}

function relOf(entry: Entry, path: string): string {
  return path === entry.local ? '' : path.slice(entry.local.length + 1);
}

/**
 * A stored path that today's excludes would skip is ignored, as backup keeps it without comparing
 * (a pattern added after the file was stored must not make it "removed").
 */
function storedExcludeTest(entry: Entry, manifest: Manifest, skip: ExcludeTest): (path: string) => boolean {
  const rootIsDir = manifest.files[entry.local]?.type === 'dir';
  return (path) => {
    const rel = relOf(entry, path);
    if (rel === '') return !rootIsDir && skip(excludeRel(entry.remote, '', false), false);
    const parts = rel.split('/');
    return parts.some((_, i) =>
      skip(parts.slice(0, i + 1).join('/'), i < parts.length - 1 || manifest.files[path]?.type === 'dir'),
    );
  };
}

/** Drops a folder whose own contents are also listed: "new dir/a, new dir/b", not "new dir, new dir/a, new dir/b". */
function collapse(paths: string[]): string[] {
  const parents = new Set<string>();
  for (const p of paths) for (let i = p.indexOf('/'); i > 0; i = p.indexOf('/', i + 1)) parents.add(p.slice(0, i));
  return paths.filter((p) => !parents.has(p));
}
