// Entries whose paths nest (`/srv/app` and `/srv/app/www`) reach some paths twice, and a data folder may
// hold links: the checks that keep what the manifest records consistent with both, before it vouches.
import { HostileServerError } from '../errors.js';
import { safeText } from '../report/reporter.js';
import type { Entry } from './entries.js';
import type { EntryPlan } from './entry-plan.js';
import type { LocalTree } from './local/tree.js';
import type { Manifest } from './manifest/manifest.js';
import type { RemoteFile } from './types.js';

/**
 * Entries that nest must agree on every path both of them reach, before anything is written: a path
 * one lists as a link (or a file) and the other as a folder, or one that holds a nested entry's files
 * yet is a file in the outer one's listing, cannot be stored as both. Written in turn, the second
 * would replace the first with its records left behind: files the manifest vouches for, gone, or a
 * link planted where the manifest says files are, which a later restore would read through. The one
 * honest difference, a link above a nested entry's path, is not refused: see `shadows` in decideEntry.
 */
export function refuseInconsistentNesting(plans: EntryPlan[]): void {
  const byEntry = new Map(plans.map((p) => [p.entry, p] as const));
  const name = (e: Entry) => `recipe ${e.recipe} (${e.remote} => ${e.local})`;
  const kind = (t: RemoteFile['type']) =>
    t === 'dir' ? 'a folder' : t === 'symlink' ? 'a symlink' : t === 'file' ? 'a file' : 'a device, fifo or socket';
  const refuse = (path: string, outer: Entry, outerSays: string, inner: Entry, innerSays: string) => {
    throw new HostileServerError(
      `entries that nest disagree about "${safeText(path)}": ${outerSays} for ${safeText(name(outer))}, ${innerSays} for ${safeText(name(inner))}; ` +
        'the server changed meanwhile, or is not honest. Nothing was written',
    );
  };
  for (const outer of plans) {
    if (!outer.types) continue;
    for (const entry of outer.nested) {
      // Folders above the nested entry: a folder or a link (which it reaches through) will do; a file cannot hold it.
      for (let q = entry.local.slice(0, entry.local.lastIndexOf('/')); ; q = q.slice(0, q.lastIndexOf('/'))) {
        const t = outer.types.get(q);
        if (t === 'symlink') break;
        if (t !== undefined && t !== 'dir') refuse(q, outer.entry, kind(t), entry, `a folder holding its files`);
        if (q === outer.entry.local) break;
      }
      const inner = byEntry.get(entry)!;
      if (!inner.types || outer.ceded.includes(entry.local)) continue;
      // Both reach the nested entry's paths: each path the same kind of thing for both.
      for (const [path, t] of inner.types) {
        const u = outer.types.get(path);
        if (u !== undefined && u !== t) refuse(path, outer.entry, kind(u), entry, kind(t));
      }
    }
  }
}

/**
 * The invariant the steps above keep, checked before the manifest vouches for it: no recorded path
 * lies below a symlink in the data folder. A restore reads stored files by their paths, and one read
 * through a link would upload whatever the link points at. Fails the run rather than store that.
 */
export function assertNoRecordBelowLink(tree: LocalTree, m: Manifest): void {
  const linkFree = new Map<string, boolean>([['', true]]);
  const check = (dir: string): boolean => {
    let known = linkFree.get(dir);
    if (known === undefined) {
      known = check(parentOf(dir)) && tree.exists(dir)?.type !== 'symlink';
      linkFree.set(dir, known);
    }
    return known;
  };
  const bad = Object.keys(m.files).filter((path) => !check(parentOf(path)));
  if (bad.length === 0) return;
  const link = (path: string) => {
    let q = parentOf(path);
    while (!check(parentOf(q))) q = parentOf(q);
    return q;
  };
  throw new Error(
    `refusing to write the manifest: ${bad.length} recorded path(s) lie below a symlink in the data folder (${bad
      .slice(0, 5)
      .map((p) => `${safeText(p)} below ${safeText(link(p))}`)
      .join(', ')}${bad.length > 5 ? ', …' : ''}); ` +
      'this is a bug, please report it. The previous manifest was kept',
  );
}

/** Is a folder above `path` a symlink in the data folder? */
export function linkAbove(tree: LocalTree, path: string): boolean {
  for (let q = parentOf(path); q !== ''; q = parentOf(q)) if (tree.exists(q)?.type === 'symlink') return true;
  return false;
}

/** "a/b/c" → "a/b"; "a" → "". */
export function parentOf(path: string): string {
  const i = path.lastIndexOf('/');
  return i < 0 ? '' : path.slice(0, i);
}
