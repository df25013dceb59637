/**
 * Names in the data folder that git would interpret are stored escaped, so that a salvaged `.git`,
 * `.gitattributes` or `.gitmodules` is kept as plain data: git never takes a salvaged checkout for a
 * nested repository (a gitlink that stores none of its files, and whose config git may act on), and
 * never lets a salvaged attributes file rewrite the bytes of its neighbours.
 *
 * The rule, per path component: a name git gives meaning to, or one that starts with `%`, is stored
 * with one more `%` in front (`.git` → `%.git`, `%20` → `%%20`); every other name is stored as it is.
 * Reading back strips exactly one leading `%`. Because every real name that starts with `%` is escaped
 * too, the mapping is reversible. Manifests record paths as they are on the server; the manifest's
 * `names` field says the data folder uses this rule.
 *
 * New data folders use portable-1 (portable-names.ts), which keeps this rule's forms for git's names and
 * adds what other systems need; this module stays for reading and migrating git-safe-1 folders.
 */

/** The value of the manifest's `names` field for data folders written with this rule. */
export const GIT_SAFE_NAMES = 'git-safe-1';

const ESCAPE = '%';

/**
 * Characters macOS (HFS+) ignores in names, which git therefore ignores when it checks for `.git`:
 * `.g\u200cit` is `.git` there.
 */
const HFS_IGNORABLE = /[\u200c-\u200f\u202a-\u202e\u206a-\u206f\ufeff]/g;

/** Names git reads from a working tree (attributes, ignores, submodules) or treats as a repository. */
const GIT_NAMES = new Set(['.git', '.gitattributes', '.gitignore', '.gitmodules']);

/**
 * True for a name git gives meaning to or refuses: `.git`, `.gitattributes`, `.gitignore` and
 * `.gitmodules` in any letter case, with what Windows (trailing dots and spaces, `::$DATA` streams) or
 * macOS (ignorable characters) would still read as them, and the 8.3 short names git also guards
 * (`git~1`, `gitmod~1`, `gi7eba~1`).
 */
export function isGitSensitive(name: string): boolean {
  // git's NTFS protection (on by default everywhere) reads `\` as a folder separator: `a\.git` holds
  // a `.git` for it, and it refuses to stage the name at all.
  if (name.includes('\\')) return name.split('\\').some(isGitSensitive);
  const folded = name.replace(HFS_IGNORABLE, '').toLowerCase();
  const bare = folded.replace(/:.*$/, '').replace(/[ .]+$/, '');
  if (GIT_NAMES.has(bare)) return true;
  return /^git~\d+$/.test(bare) || /^gi[0-9a-z]{4}~\d+$/.test(bare);
}

export function escapeName(name: string): string {
  return name.startsWith(ESCAPE) || isGitSensitive(name) ? ESCAPE + name : name;
}

export function unescapeName(stored: string): string {
  return stored.startsWith(ESCAPE) ? stored.slice(ESCAPE.length) : stored;
}

/** True when a name on disk is one this rule never writes (a live `.git`, `.gitattributes`, …). */
export function isUnescapedGitName(stored: string): boolean {
  return !stored.startsWith(ESCAPE) && isGitSensitive(stored);
}

// Most paths hold no component that needs escaping: tested once per path, not once per component.
const MAY_NEED = /(^|\/|\\)(%|\.|git~|gi[0-9a-z]{4}~)|[\u200c-\u200f\u202a-\u202e\u206a-\u206f\ufeff]/i;

/** The on-disk form of a domain-relative path (`/`-separated). */
export function escapePath(rel: string): string {
  if (!MAY_NEED.test(rel)) return rel;
  return rel.split('/').map(escapeName).join('/');
}

/** The server-side form of an on-disk domain-relative path. */
export function unescapePath(stored: string): string {
  if (!stored.includes(ESCAPE)) return stored;
  return stored.split('/').map(unescapeName).join('/');
}
