import { manifestPaths, PORTABLE_NAMES, type PortableNames } from './manifest/portable-names.js';
import type { Manifest, ManifestEntry, ManifestFile } from './manifest/manifest.js';
import type { EntryPlan } from './entry-plan.js';

/**
 * The manifest a backup writes, built from the entries' plans: the next one after a whole run, the old
 * one with what was stored before a failure, and the portable names' exceptions recorded.
 */

/** The manifest with portable-1's exceptions for the paths it records (itself when they are unchanged). */
export function withNames(m: Manifest, names: PortableNames | undefined): Manifest {
  if (!names) return m;
  const table = names.table(manifestPaths(m));
  const keys = Object.keys(table);
  const had = m.stored ?? {};
  if (keys.length === Object.keys(had).length && keys.every((k) => had[k] === table[k])) return m;
  const { stored: _, ...rest } = m;
  return keys.length > 0 ? { ...rest, stored: table } : rest;
}

/**
 * True when the run changes nothing the manifest says: every listed entry kept exactly its old records
 * (the same objects, see recordOf), all of them, and its entry record. Then the old manifest is the
 * new one, and a run over 20,000 unchanged files neither rebuilds nor compares it.
 */
export function nothingChanged(old: Manifest, plans: EntryPlan[], encryption: string | undefined): boolean {
  if ((old.encryption ?? undefined) !== (encryption || undefined)) return false;
  for (const p of plans) {
    if (p.listing.status !== 'ok') continue;
    if (p.fetch.length + p.links.length + p.deletions.length > 0 || p.records.size !== p.oldCount) return false;
    for (const [path, record] of p.records) if (old.files[path] !== record) return false;
    const e = old.entries[p.entry.local];
    const want = entryRecord(p, p.records.get(p.entry.local));
    if (!e || e.remote !== want.remote || e.recipe !== want.recipe || e.type !== want.type) return false;
  }
  return true;
}

/** The manifest's record of a listed entry, from the record of its root (a folder when it has none). */
export function entryRecord(p: EntryPlan, root: ManifestFile | undefined): ManifestEntry {
  return { remote: p.entry.remote, recipe: p.entry.recipe, type: root?.type ?? 'dir' };
}

/** The manifest after this run: entries that were listed are replaced, the others kept as they were. */
export function nextManifest(old: Manifest, plans: EntryPlan[], encryption: string | undefined): Manifest {
  const listed = plans.filter((p) => p.listing.status === 'ok');
  // Built afresh rather than copied and pruned: deleting keys one by one from an object of 20,000
  // was a visible part of a run with nothing to do.
  const files: Record<string, ManifestFile> = {};
  // An old record stays unless a listed entry owns its path (a path it ceded stays its nested entry's).
  const owns = (p: EntryPlan, path: string) =>
    (path === p.entry.local || path.startsWith(p.entry.local + '/')) &&
    !p.ceded.some((c) => path === c || path.startsWith(c + '/'));
  for (const path in old.files) if (!listed.some((p) => owns(p, path))) files[path] = old.files[path]!;
  const entries = { ...old.entries };
  for (const p of listed) {
    for (const [path, record] of p.records) files[path] = record;
    entries[p.entry.local] = entryRecord(p, files[p.entry.local]);
  }
  return manifestAfter(old, encryption, entries, files);
}

/**
 * The old manifest with the records of files written before a failure (and nothing stale below them).
 * An entry that stored a file gets its entry record and its folders' records too (every folder of a
 * listed entry was made before the fetch): on a first backup the old manifest has no entries, and files
 * in no entry would make the manifest one every later backup and restore refuses.
 */
export function withStored(
  old: Manifest,
  stored: Map<string, ManifestFile>,
  plans: EntryPlan[],
  encryption: string | undefined,
): Manifest {
  // A file written where a folder was stored replaced that folder and everything in it.
  const replaced = [...stored.keys()].filter((p) => old.files[p]?.type === 'dir');
  const files = Object.fromEntries(
    Object.entries(old.files).filter(([p]) => !replaced.some((d) => p.startsWith(d + '/'))),
  );
  const entries = { ...old.entries };
  for (const p of plans) {
    const local = p.entry.local;
    if (![...stored.keys()].some((path) => path === local || path.startsWith(local + '/'))) continue;
    for (const [path, record] of p.records)
      if (record.type === 'dir' && files[path]?.type !== 'dir') files[path] = record;
    entries[local] ??= entryRecord(p, stored.get(local) ?? p.records.get(local));
  }
  for (const [path, record] of stored) files[path] = record;
  return manifestAfter(old, encryption, entries, files);
}

/** A manifest in this version's form, with `old`'s server and salvage records carried over as they are. */
function manifestAfter(
  old: Manifest,
  encryption: string | undefined,
  entries: Manifest['entries'],
  files: Manifest['files'],
): Manifest {
  return {
    version: 1,
    domain: old.domain,
    ...(encryption && { encryption }),
    names: PORTABLE_NAMES,
    ...(old.server && { server: old.server }),
    ...(old.salvage && { salvage: old.salvage }),
    entries,
    files,
  };
}
