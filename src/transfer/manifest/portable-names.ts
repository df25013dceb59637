import type { Manifest } from './types.js';
import { escapePath, GIT_SAFE_NAMES, isGitSensitive, isUnescapedGitName, unescapeName } from './stored-names.js';

/**
 * `portable-1`: every name in the data folder can be checked out, as itself and beside its siblings, on
 * Linux, macOS (APFS: case-insensitive, normalization-insensitive, and git's `core.precomposeUnicode`)
 * and Windows (NTFS and git for Windows' `core.protectNTFS` rules), and gives back the server's exact name.
 * It extends `git-safe-1` (stored-names.ts), per path component:
 *
 * - A name that is safe everywhere is stored as it is. Safe: it does not start with `%`; holds none of
 *   `< > : " | ? * \`, no control character; does not end in `.` or a space; is no Windows device name
 *   (`CON`, `PRN`, `AUX`, `NUL`, `COM0`–`COM9`, `LPT0`–`LPT9`, the superscript `COM¹`…`LPT³`, `CONIN$`,
 *   `CONOUT$`, `CLOCK$`, with any extension or trailing spaces); is no name git interprets (git-safe-1);
 *   is in Unicode NFC; and is at most 255 bytes.
 * - Any other name is stored *escaped*: `%`, then the name with `%`, those characters, control
 *   characters and a last `.` or space percent-encoded (`%3A`, UTF-8 bytes, upper-case hex). A name not
 *   in NFC has every non-ASCII character encoded too, so what is stored is the same in every
 *   normalization. `aux.conf` → `%aux.conf`, `a:b` → `%a%3Ab`, `%20` → `%%2520`. Reading back drops
 *   the `%` and decodes: no record needed.
 * - Two names of one folder that a case-insensitive or normalizing file system would take for one (by
 *   their stored forms), and names whose stored form would be longer than 255 bytes, are the
 *   exceptions: all but the first (in byte order, the folder's older names first) are stored as
 *   `%<the name escaped, all non-ASCII encoded, cut to 240 bytes>%~<n>` (`Makefile` beside `makefile` →
 *   `%makefile%~1`), the smallest `n`
 *   free in that folder. Those forms cannot be read back from the name alone: the manifest's `stored`
 *   field records them (path → stored name), and a name keeps its stored form for as long as it is
 *   recorded.
 *
 * Whole paths are not shortened: a path over 260 characters needs `core.longpaths` on Windows.
 */
export const PORTABLE_NAMES = 'portable-1';

/** Longest name in bytes: Linux and APFS count UTF-8 bytes, NTFS UTF-16 units (never more). */
const MAX_NAME_BYTES = 255;
const EXCEPTION_BODY_BYTES = 240;
const EXCEPTION_MARK = '%~';
/** Characters Windows or git for Windows refuse in a name (git also reads `\` as a separator). */
const BAD_CHAR = /[<>:"|?*\\\x00-\x1f\x7f]/;
/** Windows device names, whatever follows after spaces and a dot (`aux.conf`, `COM1 .txt`). */
const DEVICE =
  /^(con|prn|aux|nul|com[0-9\u00b9\u00b2\u00b3]|lpt[0-9\u00b9\u00b2\u00b3]|conin\$|conout\$|clock\$) *(\..*)?$/i;

function byteLength(s: string): number {
  return Buffer.byteLength(s, 'utf8');
}

const ASCII = /^[\x00-\x7f]*$/;

function isNFC(s: string): boolean {
  return ASCII.test(s) || s === s.normalize('NFC');
}

/** True when a name can be stored as it is (see above). */
export function isPortableName(name: string): boolean {
  return (
    name !== '' &&
    !name.startsWith('%') &&
    !BAD_CHAR.test(name) &&
    !/[. ]$/.test(name) &&
    !DEVICE.test(name) &&
    !isGitSensitive(name) &&
    isNFC(name) &&
    byteLength(name) <= MAX_NAME_BYTES
  );
}

function percent(c: string): string {
  let out = '';
  for (const b of Buffer.from(c, 'utf8')) out += `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  return out;
}

/** The name with `%`, refused characters and a last dot or space encoded; with `ascii`, all non-ASCII too. */
function encode(name: string, ascii: boolean): string {
  const chars = [...name];
  let out = '';
  chars.forEach((c, i) => {
    const code = c.codePointAt(0)!;
    const encodeIt =
      c === '%' || BAD_CHAR.test(c) || (i === chars.length - 1 && (c === '.' || c === ' ')) || (ascii && code > 0x7e);
    out += encodeIt ? percent(c) : c;
  });
  return out;
}

/** The escaped form of a name (it may be longer than a name can be: see storedForm). */
function escaped(name: string): string {
  const form = `%${encode(name, !isNFC(name))}`;
  return isNFC(form) ? form : `%${encode(name, true)}`;
}

/** The stored form of a name on its own: as it is when portable, else escaped (perhaps too long). */
export function baseForm(name: string): string {
  return isPortableName(name) ? name : escaped(name);
}

/** The `n`-th exception form of a name: ASCII, at most 255 bytes (the folder checks that it is free). */
export function exceptionForm(name: string, n: number): string {
  let body = encode(name, true);
  if (body.length > EXCEPTION_BODY_BYTES) {
    let cut = EXCEPTION_BODY_BYTES;
    // Never in the middle of a `%XX`.
    const pct = body.lastIndexOf('%', cut - 1);
    if (pct >= 0 && pct > cut - 3) cut = pct;
    body = body.slice(0, cut);
  }
  return `%${body}${EXCEPTION_MARK}${n}`;
}

/**
 * An exception form: `%`, the name escaped to printable ASCII, then the mark `%~<n>` at the end. Outside
 * the mark, every `%` but the first starts a `%XX`, so an escaped name that starts with `~` (`~|a` →
 * `%~%7Ca`) is never taken for one.
 */
const EXCEPTION_FORM = /^%(?:[\x20-\x24\x26-\x7e]|%[0-9A-F]{2})+%~[1-9][0-9]*$/;

/** True for a form only a record can read back. */
export function isExceptionForm(stored: string): boolean {
  return EXCEPTION_FORM.test(stored);
}

/** The name a stored name that is not an exception stands for; undefined for any name we never write. */
export function nameOfStored(stored: string): string | undefined {
  if (!stored.startsWith('%')) return isPortableName(stored) ? stored : undefined;
  if (isExceptionForm(stored) || !/^%(?:[^%]|%[0-9A-F]{2})*$/.test(stored)) return undefined;
  const bytes: number[] = [];
  const body = stored.slice(1);
  for (let i = 0; i < body.length;) {
    if (body[i] === '%') {
      bytes.push(parseInt(body.slice(i + 1, i + 3), 16));
      i += 3;
    } else {
      const c = String.fromCodePoint(body.codePointAt(i)!);
      bytes.push(...Buffer.from(c, 'utf8'));
      i += c.length;
    }
  }
  const name = Buffer.from(bytes).toString('utf8');
  // Only the one form we write for it (never a crafted alias of a name).
  return baseForm(name) === stored ? name : undefined;
}

/**
 * What a case-insensitive, normalization-insensitive file system compares: two stored names with one
 * key are one file there. Errs towards more collisions (full case folding on both sides).
 */
export function foldKey(stored: string): string {
  if (ASCII.test(stored)) return stored.toLowerCase();
  return stored.normalize('NFD').toUpperCase().toLowerCase().normalize('NFC');
}

/** How a tree's names map between the server (paths as the manifest keys them) and the disk. */
export interface NameScheme {
  /** The on-disk form of a domain-relative path. */
  toDisk(rel: string): string;
  /** The server name of `diskName`, found in the folder `parent` names; undefined for a name that is not ours. */
  fromDisk(parent: string, diskName: string): string | undefined;
}

/** Names as the server gave them: a data folder written before git-safe-1, only ever read. */
export const RAW_NAMES: NameScheme = { toDisk: (rel) => rel, fromDisk: (_, name) => name };

/** git-safe-1 (stored-names.ts): a data folder written before portable-1, only ever read. */
export const GIT_SAFE_SCHEME: NameScheme = {
  toDisk: escapePath,
  fromDisk: (_, name) => (isUnescapedGitName(name) ? undefined : unescapeName(name)),
};

function parentOf(path: string): string {
  const i = path.lastIndexOf('/');
  return i < 0 ? '' : path.slice(0, i);
}

function nameOf(path: string, parent: string): string {
  return parent === '' ? path : path.slice(parent.length + 1);
}

function byBytes(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/**
 * The portable-1 names of one data folder: each path's stored name, decided once, in byte order (the
 * paths already recorded first), and the record of the exceptions for the manifest.
 */
export class PortableNames implements NameScheme {
  /** Path → stored name of its last component. */
  private readonly disk = new Map<string, string>();
  /** Folder → fold key of a stored name in it → the path stored under it. */
  private readonly taken = new Map<string, Map<string, string>>();
  /** How many exception forms were assigned (none: the manifest records none, found at once). */
  private exceptionCount = 0;
  /** Folder → exception stored name → server name. */
  private readonly exceptions = new Map<string, Map<string, string>>();

  /**
   * `recorded`: the manifest's `stored` field; `paths`: the paths the manifest records (with their
   * folders), decided now so that their order, not the order of later calls, decides.
   */
  constructor(recorded: Record<string, string> | undefined, paths: Iterable<string>) {
    for (const [path, stored] of Object.entries(recorded ?? {})) this.assign(path, stored);
    this.decide(paths);
  }

  /** Decides the stored names of these paths and the folders above them, in byte order. */
  decide(paths: Iterable<string>): void {
    const fresh: string[] = [];
    const seen = new Set<string>();
    for (const p of paths) {
      for (let q = p; q !== '' && !seen.has(q); q = parentOf(q)) {
        seen.add(q);
        if (!this.disk.has(q)) fresh.push(q);
      }
    }
    // Only names one folder would hold twice on macOS or Windows need an order: the rest (nearly all)
    // take their base form as they come, and no sort of every path is needed.
    const groups = new Map<string, Array<{ path: string; stored: string }>>();
    const exceptional: string[] = [];
    for (const path of fresh) {
      const parent = parentOf(path);
      const stored = baseForm(nameOf(path, parent));
      if (byteLength(stored) > MAX_NAME_BYTES || this.isTaken(parent, stored, path)) {
        exceptional.push(path);
        continue;
      }
      const key = `${parent}\0${foldKey(stored)}`;
      const group = groups.get(key);
      if (group) group.push({ path, stored });
      else groups.set(key, [{ path, stored }]);
    }
    for (const group of groups.values()) {
      if (group.length > 1) {
        group.sort((a, b) => byBytes(a.path, b.path));
        exceptional.push(...group.slice(1).map((g) => g.path));
      }
      this.assign(group[0]!.path, group[0]!.stored);
    }
    for (const path of exceptional.sort(byBytes)) this.component(path);
  }

  /** The stored name of a path's last component. */
  component(path: string): string {
    const known = this.disk.get(path);
    if (known !== undefined) return known;
    const parent = parentOf(path);
    const name = nameOf(path, parent);
    let stored = baseForm(name);
    if (byteLength(stored) > MAX_NAME_BYTES || this.isTaken(parent, stored, path)) {
      for (let n = 1; ; n++) {
        stored = exceptionForm(name, n);
        if (!this.isTaken(parent, stored, path)) break;
      }
    }
    this.assign(path, stored);
    return stored;
  }

  /** Every path decided so far, with the folders above it. */
  decidedPaths(): string[] {
    return [...this.disk.keys()];
  }

  /** Whole paths already mapped: a backup resolves each path several times. */
  private readonly paths = new Map<string, string>();

  toDisk(rel: string): string {
    if (rel === '') return rel;
    const known = this.paths.get(rel);
    if (known !== undefined) return known;
    const parent = parentOf(rel);
    const disk = parent === '' ? this.component(rel) : `${this.toDisk(parent)}/${this.component(rel)}`;
    this.paths.set(rel, disk);
    return disk;
  }

  fromDisk(parent: string, diskName: string): string | undefined {
    const exception = this.exceptions.get(parent)?.get(diskName);
    if (exception !== undefined) return exception;
    const name = nameOfStored(diskName);
    if (name === undefined) return undefined;
    // A name now stored under an exception form: what is left under its plain form is not ours.
    const decided = this.disk.get(parent === '' ? name : `${parent}/${name}`);
    return decided === undefined || decided === diskName ? name : undefined;
  }

  /** The exceptions among these paths and the folders above them: the manifest's `stored` field. */
  table(paths: Iterable<string>): Record<string, string> {
    const out: Record<string, string> = {};
    if (this.exceptionCount === 0) return out;
    const seen = new Set<string>();
    for (const p of paths) {
      for (let q = p; q !== '' && !seen.has(q); q = parentOf(q)) {
        seen.add(q);
        const stored = this.disk.get(q);
        if (stored !== undefined && isExceptionForm(stored)) out[q] = stored;
      }
    }
    return Object.fromEntries(
      Object.keys(out)
        .sort()
        .map((k) => [k, out[k]!]),
    );
  }

  private isTaken(parent: string, stored: string, path: string): boolean {
    const holder = this.taken.get(parent)?.get(foldKey(stored));
    return holder !== undefined && holder !== path;
  }

  private assign(path: string, stored: string): void {
    const parent = parentOf(path);
    this.disk.set(path, stored);
    let keys = this.taken.get(parent);
    if (!keys) this.taken.set(parent, (keys = new Map()));
    keys.set(foldKey(stored), path);
    if (isExceptionForm(stored)) {
      this.exceptionCount++;
      let ex = this.exceptions.get(parent);
      if (!ex) this.exceptions.set(parent, (ex = new Map()));
      ex.set(stored, path.slice(parent === '' ? 0 : parent.length + 1));
    }
  }
}

/** Every path a manifest names: its files and its entries. */
export function manifestPaths(m: Manifest): string[] {
  return [...Object.keys(m.files), ...Object.keys(m.entries)];
}

const schemes = new WeakMap<Manifest, NameScheme>();

/** How the data folder a manifest describes names its paths (one scheme per manifest object). */
export function namesOf(m: Manifest): NameScheme {
  let scheme = schemes.get(m);
  if (!scheme) {
    scheme =
      m.names === PORTABLE_NAMES
        ? new PortableNames(m.stored, manifestPaths(m))
        : m.names === GIT_SAFE_NAMES
          ? GIT_SAFE_SCHEME
          : RAW_NAMES;
    schemes.set(m, scheme);
  }
  return scheme;
}
