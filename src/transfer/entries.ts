import type { Plan } from '../plan/plan.js';

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
/** The name of the temp file an SFTP upload writes beside its place (see sftp-transport.ts). */
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
      entries.push({ recipe: r.name, remote: f.remote, local: f.local, skip: [...r.skip, ...extraExcludes, ...OWN_TEMP_PATTERNS] });
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
