import { randomBytes } from 'node:crypto';
import { lstatSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { isAbsolute, join, relative, sep } from 'node:path';
import { UserError } from '../errors.js';
import { META_DIR } from '../plan/paths.js';
import { TEMP_MARK } from '../transfer/local/tree.js';
import { MANIFEST_NAME } from '../transfer/manifest/manifest.js';

/**
 * The attributes file each domain folder carries. Salvaged files are bytes, not source: whatever the
 * repository's own attributes say (`* text=auto`, `*.sql filter=lfs`, `eol=crlf`), a runner's
 * `core.autocrlf=true`, or a salvaged `.gitattributes` (stored escaped, so never read) — none of them
 * may change what a commit stores or what a checkout writes. An attributes file deeper in the tree
 * overrides those above it, so this one wins for everything in the domain folder.
 */
export const DATA_ATTRIBUTES =
  '# Written by remote-files. These files are salvaged bytes and must come back exactly as they were:\n' +
  '# no line-ending conversion, no filters (LFS included), no $Id$ expansion, no re-encoding.\n' +
  '* -text -eol -crlf -ident -filter -working-tree-encoding -export-subst\n';

export const ATTRIBUTES_NAME = '.gitattributes';

/** Writes (atomically, only when it differs) the domain folder's own `.gitattributes`. */
export function writeDataAttributes(domainDir: string): void {
  const path = join(domainDir, ATTRIBUTES_NAME);
  const st = lstatSync(path, { throwIfNoEntry: false });
  if (st?.isFile() && readFileSync(path, 'utf8') === DATA_ATTRIBUTES) return;
  // Exclusive and unguessable, as every temp name in the data folder: a planted link is never written through.
  const tmp = `${path}${TEMP_MARK}${randomBytes(6).toString('hex')}`;
  writeFileSync(tmp, DATA_ATTRIBUTES, { flag: 'wx', mode: 0o644 });
  // rename replaces a link or file that was there; it never writes through it.
  renameSync(tmp, path);
}

/**
 * Refuses a data folder reached through a link: `<data-dir>` and `<data-dir>/<domain>` come from the
 * repository (anyone who can push writes them), and `data/example.com -> /proc/self` would make a
 * restore read the runner's own files, or a backup write outside the workspace. Every component below
 * the workspace must be a real folder, or not exist yet.
 */
export function checkDataFolder(workspace: string, dataDir: string, domain: string): void {
  const rel = relative(workspace, join(workspace, dataDir, domain));
  if (rel === '' || rel.startsWith('..') || isAbsolute(rel)) return; // validated with the inputs
  // The manifest's folder and file too: a link there would make a backup write the manifest (through
  // its temp name) wherever the link points.
  const parts = [...rel.split(sep), META_DIR, MANIFEST_NAME];
  let current = workspace;
  for (const [i, part] of parts.entries()) {
    current = join(current, part);
    const st = lstatSync(current, { throwIfNoEntry: false });
    if (!st) return;
    const last = i === parts.length - 1;
    if (last ? !st.isFile() : !st.isDirectory()) {
      const what = st.isSymbolicLink() ? 'a symbolic link' : last ? 'not a file' : 'not a folder';
      throw new UserError(
        `the data folder's ${relative(workspace, current)} is ${what}: remote-files reads and writes only real folders and files in the workspace. Replace it (the data-dir and domain inputs name the folder).`,
      );
    }
  }
}
