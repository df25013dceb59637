/**
 * What Windows (NTFS and git for Windows with core.protectNTFS) and macOS (APFS, case-insensitive and
 * normalization-insensitive, git's core.precomposeUnicode) would refuse or confuse in a set of paths,
 * written from their rules, independently of src/ (which must satisfy them). Pure: no file system.
 */

/** Why Windows or git for Windows refuses this one name, or undefined. */
export function windowsProblem(name: string): string | undefined {
  if (/[<>:"|?*\\]/.test(name)) return 'a character Windows refuses';
  if (/[\x00-\x1f]/.test(name)) return 'a control character';
  if (/[. ]$/.test(name)) return 'a trailing dot or space';
  // Device names, also with an extension or spaces before it (git's is_valid_win32_path; Windows also
  // reserves COM0/LPT0 and the superscript digits).
  if (/^(con|prn|aux|nul|com[0-9¹²³]|lpt[0-9¹²³]|conin\$|conout\$|clock\$) *(\..*)?$/i.test(name))
    return 'a device name';
  if (Buffer.byteLength(name, 'utf8') > 255) return 'longer than 255 bytes';
  // git refuses these everywhere (verify_path with protectNTFS and protectHFS on).
  const bare = name
    .replace(/[\u200c-\u200f\u202a-\u202e\u206a-\u206f\ufeff]/g, '')
    .toLowerCase()
    .replace(/[ .]+$/, '');
  if (bare === '.git' || /^git~\d+$/.test(bare)) return 'a name git reads as .git';
  return undefined;
}

/** Why macOS (git with core.precomposeUnicode) cannot keep this one name as it is, or undefined. */
export function macProblem(name: string): string | undefined {
  if (name !== name.normalize('NFC')) return 'not NFC (git on macOS reads it back precomposed)';
  if (Buffer.byteLength(name, 'utf8') > 255) return 'longer than 255 bytes';
  return undefined;
}

/** What a case-insensitive, normalization-insensitive file system compares. */
export function foldedName(name: string): string {
  return name.normalize('NFD').toUpperCase().toLowerCase().normalize('NFC');
}

/**
 * Every problem of a set of `/`-separated paths (as `git ls-tree -r --name-only` prints them, with the
 * folders they imply): names Windows or macOS refuse, and two paths of one folder that a
 * case-insensitive, normalizing file system takes for one.
 */
export function portabilityProblems(paths: Iterable<string>): string[] {
  const problems: string[] = [];
  const byFolder = new Map<string, Map<string, string>>();
  const seen = new Set<string>();
  for (const path of paths) {
    const parts = path.split('/');
    for (let i = 0; i < parts.length; i++) {
      const full = parts.slice(0, i + 1).join('/');
      if (seen.has(full)) continue;
      seen.add(full);
      const name = parts[i]!;
      const folder = parts.slice(0, i).join('/');
      const why = windowsProblem(name) ?? macProblem(name);
      if (why) problems.push(`${JSON.stringify(full)}: ${why}`);
      let names = byFolder.get(folder);
      if (!names) byFolder.set(folder, (names = new Map()));
      const key = foldedName(name);
      const other = names.get(key);
      if (other !== undefined && other !== name)
        problems.push(`${JSON.stringify(full)}: one file with ${JSON.stringify(other)} on macOS and Windows`);
      else names.set(key, name);
    }
  }
  return problems;
}

/**
 * A case-insensitive, normalization-insensitive file system with Windows' name rules, in memory:
 * what the path logic is run against in unit tests (only Linux runs here).
 */
export class SimulatedFs {
  private readonly files = new Map<string, { path: string; content: string }>();

  private key(path: string): string {
    return path.split('/').map(foldedName).join('/');
  }

  write(path: string, content: string): void {
    for (const name of path.split('/')) {
      const why = windowsProblem(name) ?? macProblem(name);
      if (why) throw new Error(`${JSON.stringify(path)}: ${why}`);
    }
    const k = this.key(path);
    const had = this.files.get(k);
    if (had && had.path !== path) throw new Error(`${JSON.stringify(path)} is ${JSON.stringify(had.path)} here`);
    this.files.set(k, { path, content });
  }

  read(path: string): string | undefined {
    return this.files.get(this.key(path))?.content;
  }

  /** Names directly in a folder, as stored. */
  list(folder: string): string[] {
    const prefix = folder === '' ? '' : `${folder}/`;
    const out = new Set<string>();
    for (const { path } of this.files.values())
      if (path.startsWith(prefix)) out.add(path.slice(prefix.length).split('/')[0]!);
    return [...out].sort();
  }
}
