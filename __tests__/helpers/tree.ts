import { createHash } from 'node:crypto';
import { existsSync, lstatSync, readdirSync, readFileSync, readlinkSync, type Stats } from 'node:fs';
import { join } from 'node:path';

/** What a picture shows beyond each path's type, a file's content hash and a link's target. */
export interface TreeShow {
  /** Folders' and files' modes. */
  modes?: boolean;
  /** Files' mtimes. */
  fileTimes?: boolean;
  /** Folders' mtimes too: they change whenever something is made in them, so only where a test fixed them. */
  dirTimes?: boolean;
  /** Times in whole seconds, as tar and a restore keep them, rather than the file system's milliseconds. */
  seconds?: boolean;
}

/**
 * Every path below `root` (relative, not `root` itself) with its type, a file's content hash and a
 * link's target, and what `show` adds. A before/after picture: two equal pictures mean nothing below
 * `root` changed in what they show. Paths in sorted order; empty when `root` is missing. Links are never
 * followed.
 */
export function treePicture(root: string, show: TreeShow = {}): Map<string, string> {
  const out = new Map<string, string>();
  if (!existsSync(root)) return out;
  const mode = (m: number) => (show.modes ? ` ${m}` : '');
  const time = (st: Stats, shown: boolean | undefined) =>
    shown ? ` ${show.seconds ? Math.floor(st.mtimeMs / 1000) : st.mtimeMs}` : '';
  const visit = (rel: string) => {
    for (const name of readdirSync(join(root, rel)).sort()) {
      const r = rel ? `${rel}/${name}` : name;
      const path = join(root, r);
      const st = lstatSync(path);
      if (st.isDirectory()) {
        out.set(r, `dir${mode(st.mode)}${time(st, show.dirTimes)}`);
        visit(r);
      } else if (st.isFile()) {
        const sha = createHash('sha256').update(readFileSync(path)).digest('hex');
        out.set(r, `file ${sha}${mode(st.mode)}${time(st, show.fileTimes)}`);
      } else out.set(r, st.isSymbolicLink() ? `link ${readlinkSync(path)}` : 'other');
    }
  };
  visit('');
  return out;
}
