import { createHash } from 'node:crypto';
import { existsSync, lstatSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Every path below `root` (relative, not `root` itself) with its type, a file's content hash and a
 * link's target; with `modes`, folders' and files' modes; with `fileTimes`, files' mtimes. A before/after
 * picture: two equal pictures mean nothing below `root` changed in what they show. Empty when `root` is
 * missing. Links are never followed.
 */
export function treePicture(root: string, show: { modes?: boolean; fileTimes?: boolean } = {}): Map<string, string> {
  const out = new Map<string, string>();
  if (!existsSync(root)) return out;
  const mode = (m: number) => (show.modes ? ` ${m}` : '');
  const visit = (rel: string) => {
    for (const name of readdirSync(join(root, rel))) {
      const r = rel ? `${rel}/${name}` : name;
      const path = join(root, r);
      const st = lstatSync(path);
      if (st.isDirectory()) {
        out.set(r, `dir${mode(st.mode)}`);
        visit(r);
      } else if (st.isFile()) {
        const sha = createHash('sha256').update(readFileSync(path)).digest('hex');
        out.set(r, `file ${sha}${mode(st.mode)}${show.fileTimes ? ` ${st.mtimeMs}` : ''}`);
      } else out.set(r, st.isSymbolicLink() ? `link ${readlinkSync(path)}` : 'other');
    }
  };
  visit('');
  return out;
}
