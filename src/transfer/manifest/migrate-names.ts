import { lstatSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { writeManifest, type Manifest } from './manifest.js';
import { manifestPaths, PORTABLE_NAMES, PortableNames } from './portable-names.js';
import { escapeName, GIT_SAFE_NAMES } from './stored-names.js';

/**
 * Moves a data folder an older version wrote (names as the server gave them, or git-safe-1's) to
 * portable-1 names (portable-names.ts), before a backup reads or writes it. Each stored path the
 * manifest lists is renamed to its new form, parents first; the manifest is then marked. Every step can
 * be repeated: a run cut off half-way leaves paths of which some are renamed, and the next run renames
 * the rest (a path is renamed only while its new form does not exist yet), so nothing is renamed twice;
 * the new forms are a function of the manifest's paths alone, so the next run decides the same ones.
 *
 * Returns the marked manifest and notes for the log saying what changed.
 */
export function migrateStoredNames(domainDir: string, m: Manifest): { manifest: Manifest; notes: string[] } {
  if (m.names === PORTABLE_NAMES) return { manifest: m, notes: [] };
  const oldName = m.names === GIT_SAFE_NAMES ? escapeName : (name: string) => name;
  const names = new PortableNames(undefined, manifestPaths(m));
  const paths = Object.keys(m.files).sort();
  const renamed: string[] = [];
  const done = new Set<string>();
  // Folders on the way are checked to be real ones, never followed: the data folder is input, and a
  // link in it (`x -> /home/runner/work/repo`) would otherwise make us rename files outside it.
  const realDirs = new Set<string>(['']);
  const isRealDir = (disk: string): boolean => {
    if (realDirs.has(disk)) return true;
    const slash = disk.lastIndexOf('/');
    if (!isRealDir(slash < 0 ? '' : disk.slice(0, slash))) return false;
    if (!lstatSync(join(domainDir, disk), { throwIfNoEntry: false })?.isDirectory()) return false;
    realDirs.add(disk);
    return true;
  };
  // Old forms that move, by folder and name (`<folder>/<old form>` → the path): see below.
  const leaving = new Map<string, string>();
  for (const p of names.decidedPaths()) {
    const before = oldName(p.slice(p.lastIndexOf('/') + 1));
    if (before !== names.component(p)) leaving.set(`${parentOf(p)}/${before}`, p);
  }
  // A path whose new form is another's old form (` ` is stored `%%20`, which was git-safe-1's form of
  // `%20`) waits for that one to move: passes repeat while one renames something.
  for (let moved = true; moved;) {
    moved = false;
    for (const path of paths) {
      const parts = path.split('/');
      let disk = '';
      let logical = '';
      for (const part of parts) {
        logical = logical === '' ? part : `${logical}/${part}`;
        const parent = disk;
        const before = oldName(part);
        const after = names.component(logical);
        disk = disk === '' ? after : `${disk}/${after}`;
        if (before === after || done.has(logical)) continue;
        if (!isRealDir(parent)) continue;
        const from = join(domainDir, parent, before);
        const to = join(domainDir, disk);
        if (lstatSync(to, { throwIfNoEntry: false })) {
          // Taken by a sibling's old form, that sibling still to move: wait for it. Else moved already.
          const other = leaving.get(`${parentOf(logical)}/${after}`);
          if (other === undefined || other === logical || done.has(other)) done.add(logical);
          continue;
        }
        if (!lstatSync(from, { throwIfNoEntry: false })) continue;
        renameSync(from, to);
        done.add(logical);
        moved = true;
        renamed.push(`${logical} → ${disk}`);
      }
    }
  }
  const table = names.table(manifestPaths(m));
  const { stored: _, ...rest } = m;
  const manifest: Manifest = {
    ...rest,
    names: PORTABLE_NAMES,
    ...(Object.keys(table).length > 0 && { stored: table }),
  };
  writeManifest(domainDir, manifest);
  const notes: string[] = [];
  if (renamed.length > 0) {
    notes.push(
      `data folder moved to portable names (git, Windows or macOS would have misread them): renamed ${renamed.length} path(s): ` +
        `${renamed.slice(0, 5).join(', ')}${renamed.length > 5 ? ', …' : ''}`,
    );
  }
  // A salvaged checkout an older version's commit store kept as a gitlink: its files never reached the
  // store, so a fresh checkout lacks them and this backup fetches them again.
  const checkouts = paths.filter((p) => /(^|\/)\.git$/i.test(p)).map((p) => p.replace(/\/?\.git$/i, '') || '.');
  for (const dir of checkouts.slice(0, 5)) {
    const missing = paths.some(
      (p) =>
        p.startsWith(`${dir}/`) &&
        m.files[p]!.type === 'file' &&
        !lstatSync(join(domainDir, names.toDisk(p)), { throwIfNoEntry: false }),
    );
    if (missing)
      notes.push(
        `${dir} holds a git checkout, which an earlier version's commit store kept as a gitlink without its files: they are salvaged again`,
      );
  }
  return { manifest, notes };
}

function parentOf(path: string): string {
  const i = path.lastIndexOf('/');
  return i < 0 ? '' : path.slice(0, i);
}
