import type { Plan } from '../plan/plan.js';
import { entryPaths, type Manifest } from './manifest/manifest.js';

/** One planned entry to move, with the recipe it came from and the skip rules of that recipe. */
export interface Entry {
  recipe: string;
  remote: string;
  local: string;
  skip: string[];
}

/**
 * Our own leftovers on a server (an SFTP upload's temp file, a tar restore's staging folder, both cut
 * off mid-run) are never salvaged as data, nor reported as drift.
 */
export const OWN_TEMP_PATTERNS = ['.remote-files-*.tmp', '.remote-files-??????/'];
/** The name of the temp file an SFTP upload writes beside its place (see sftp/transport.ts). */
export const UPLOAD_TEMP_NAME = /^\.remote-files-[0-9a-f]{12}\.tmp$/;

/** The plan's entries, each (remote, local) pair once: two recipes may name the same path. */
export function planEntries(plan: Plan, extraExcludes: string[]): Entry[] {
  const seen = new Set<string>();
  const entries: Entry[] = [];
  for (const r of plan.recipes) {
    for (const f of r.files) {
      const key = `${f.remote}\0${f.local}`;
      if (seen.has(key)) continue;
      seen.add(key);
      entries.push({
        recipe: r.name,
        remote: f.remote,
        local: f.local,
        skip: [...r.skip, ...extraExcludes, ...OWN_TEMP_PATTERNS],
      });
    }
  }
  return entries;
}

/** Server path of a file of an entry. */
export function remotePathOf(root: string, rel: string): string {
  if (rel === '') return root;
  return root === '/' ? `/${rel}` : `${root}/${rel}`;
}

/** The rel that exclude rules see: a single-file entry is matched by its own name (rsync's view). */
export function excludeRel(root: string, rel: string, rootIsDir: boolean): string {
  return rel === '' && !rootIsDir ? root.slice(root.lastIndexOf('/') + 1) : rel;
}

/**
 * Entries whose local path lies strictly inside `outer`'s (the plan allows nesting when both sides
 * agree, see rejectOverlaps in plan.ts): the entries whose files may lie below `outer`'s paths.
 */
export function nestedIn(outer: Entry, entries: readonly Entry[]): Entry[] {
  return entries.filter((e) => e !== outer && e.local.startsWith(outer.local + '/'));
}

/**
 * The manifest paths an entry owns, for restore and verify. Below a link the entry itself recorded
 * there can only be a nested entry's files: the outer entry lists a Capistrano-style
 * `site/shared -> /srv/shared` as a link, the entry for `site/shared/uploads` lists the files reached
 * through it. Those paths are the nested entry's (it restores them, through whatever the server has at
 * the link's place); `shadowed` names such links: recorded, but a folder in the data folder (see
 * backup.ts) and not recreated by a restore over the nested entry's files.
 */
export function ownPaths(m: Manifest, local: string): { paths: string[]; shadowed: string[] } {
  const all = entryPaths(m, local);
  const links = new Set(all.filter((p) => m.files[p]!.type === 'symlink'));
  if (links.size === 0) return { paths: all, shadowed: [] };
  const shadowed = new Set<string>();
  const paths = all.filter((p) => {
    for (
      let q = p.slice(0, Math.max(0, p.lastIndexOf('/')));
      q.length >= local.length;
      q = q.slice(0, Math.max(0, q.lastIndexOf('/')))
    ) {
      if (links.has(q)) {
        shadowed.add(q);
        return false;
      }
      if (q === local) break;
    }
    return true;
  });
  return { paths, shadowed: [...shadowed].sort() };
}
