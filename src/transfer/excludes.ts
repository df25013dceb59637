import picomatch from 'picomatch';

/**
 * rsync's exclude rules, as recipes' `remote_skip` and the `exclude` input use them:
 * - no slash (a trailing one aside): matches that name at any depth;
 * - a slash anywhere else: anchored at the top of the transfer (the entry root), not the filesystem;
 * - a trailing slash: folders only;
 * - `*` stays within a name, `**` crosses folders, `?` and `[...]` as in shells.
 * An excluded folder excludes everything below it.
 */
export type ExcludeTest = (rel: string, isDir: boolean) => boolean;

export function makeExcludeTest(patterns: string[]): ExcludeTest {
  const rules = patterns.map((raw) => {
    const dirOnly = raw.endsWith('/');
    const body = raw.replace(/\/+$/, '');
    const anchored = body.includes('/');
    const match = picomatch(anchored ? body.replace(/^\/+/, '') : body, { dot: true, nobrace: true, noextglob: true });
    return { dirOnly, anchored, match };
  });
  return (rel, isDir) => {
    const name = rel.slice(rel.lastIndexOf('/') + 1);
    return rules.some((r) => (!r.dirOnly || isDir) && (r.anchored ? r.match(rel) : r.match(name)));
  };
}

/**
 * Drops excluded paths and everything below an excluded folder. `rel`s are relative to the
 * transfer's top; for a single-file entry the top is its parent, so its rel is its own name.
 */
export function applyExcludes<T extends { rel: string; type: string }>(files: T[], test: ExcludeTest, relOf: (f: T) => string = (f) => f.rel): T[] {
  const excludedDirs: string[] = [];
  const kept: T[] = [];
  // Parents come before children in every listing we make (find and our SFTP walk are pre-order).
  for (const f of files) {
    const rel = relOf(f);
    if (rel === '') {
      kept.push(f);
      continue;
    }
    if (excludedDirs.some((d) => rel.startsWith(d + '/'))) continue;
    if (test(rel, f.type === 'dir')) {
      if (f.type === 'dir') excludedDirs.push(rel);
      continue;
    }
    kept.push(f);
  }
  return kept;
}
