import { lstatSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { writeManifest, type Manifest } from './manifest.js';
import { escapeName, GIT_SAFE_NAMES } from './stored-names.js';

/**
 * Moves a data folder an older version wrote (names as the server gave them) to git-safe names
 * (stored-names.ts), before a backup reads or writes it. Each stored path the manifest lists is renamed
 * to its escaped form, parents first; the manifest is then marked. Every step can be repeated: a run
 * cut off half-way leaves paths of which some are renamed, and the next run renames the rest (a path is
 * renamed only while its escaped form does not exist yet), so nothing is renamed twice.
 *
 * Returns the marked manifest and notes for the log saying what changed.
 */
export function migrateStoredNames(domainDir: string, m: Manifest): { manifest: Manifest; notes: string[] } {
  if (m.names === GIT_SAFE_NAMES) return { manifest: m, notes: [] };
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
  for (const path of paths) {
    const parts = path.split('/');
    let disk = '';
    let logical = '';
    for (const part of parts) {
      logical = logical === '' ? part : `${logical}/${part}`;
      const parent = disk;
      const escaped = escapeName(part);
      disk = disk === '' ? escaped : `${disk}/${escaped}`;
      if (escaped === part || done.has(logical)) continue;
      done.add(logical);
      if (!isRealDir(parent)) continue;
      const from = join(domainDir, parent, part);
      const to = join(domainDir, disk);
      if (lstatSync(to, { throwIfNoEntry: false }) || !lstatSync(from, { throwIfNoEntry: false })) continue;
      renameSync(from, to);
      renamed.push(`${logical} → ${disk}`);
    }
  }
  const manifest: Manifest = { ...m, names: GIT_SAFE_NAMES };
  writeManifest(domainDir, manifest);
  const notes: string[] = [];
  if (renamed.length > 0) {
    notes.push(
      `data folder moved to git-safe names (git would have read them as its own): renamed ${renamed.length} path(s): ` +
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
        !lstatSync(join(domainDir, ...p.split('/').map(escapeName)), { throwIfNoEntry: false }),
    );
    if (missing)
      notes.push(
        `${dir} holds a git checkout, which an earlier version's commit store kept as a gitlink without its files: they are salvaged again`,
      );
  }
  return { manifest, notes };
}
