import { HostileServerError } from '../../errors.js';
import { safeText } from '../../report/reporter.js';
import type { EntryListing, RemoteFile } from '../types.js';

const TYPES: Record<string, RemoteFile['type']> = { f: 'file', d: 'dir', l: 'symlink' };

/**
 * Parses LIST_SCRIPT's output: NUL-terminated tokens, `E` opening each entry, then `M`, `D` or
 * records of 11 fields (flag, type, size, mtime, mode, uid, gid, user, group, rel, link target), and
 * last the `N` section naming owners and groups by id (the records leave names empty).
 * Throws on anything else: a listing we cannot read exactly is not one to act on.
 */
export function parseListing(out: Buffer, expected: number): EntryListing[] {
  const tokens = new Tokens(out);
  const result: EntryListing[] = [];
  let names: { users: Map<number, string>; groups: Map<number, string> } | undefined;
  while (!tokens.done()) {
    if (tokens.peekIs(N)) {
      tokens.skip();
      names = readNames(tokens);
      break;
    }
    if (!tokens.peekIs(E)) throw new Error(`unexpected server listing near token ${tokens.count}`);
    tokens.skip();
    if (tokens.peekIs(M) || tokens.peekIs(D)) {
      result.push(
        tokens.peekIs(M) ? { status: 'missing' } : { status: 'denied', reason: 'permission denied on a parent folder' },
      );
      tokens.skip();
      continue;
    }
    const files: RemoteFile[] = [];
    const seen = new Map<string, RemoteFile['type']>();
    while (!tokens.done() && !tokens.peekIs(E) && !tokens.peekIs(N)) files.push(checkShape(readRecord(tokens), seen));
    // The path existed, yet find printed nothing for it (gone in between, or an I/O error): nothing
    // is known, so nothing may be concluded, least of all that everything below it was deleted.
    if (files.length === 0)
      result.push({ status: 'denied', reason: 'the server listed nothing for it (it vanished, or find failed on it)' });
    else result.push(rootDenied(files) ?? { status: 'ok', files });
  }
  if (result.length !== expected) throw new Error(`server listing has ${result.length} entries, expected ${expected}`);
  // LIST_SCRIPT ends with the names section: a listing cut short at a record boundary would read as
  // files deleted on the server.
  if (!names) throw new Error('truncated server listing: its end (the owner names section) is missing');
  nameOwners(result, names);
  return result;
}

const [E, N, M, D, R, U] = ['E', 'N', 'M', 'D', 'R', 'U'].map((c) => c.charCodeAt(0)) as [
  number,
  number,
  number,
  number,
  number,
  number,
];

/**
 * One record of 11 tokens: flag, type, size, mtime, mode, uid, gid, user, group, rel, link
 * target. Numbers are read from the bytes and only the names become strings: a listing of 20,000
 * files made 220,000 strings where 20,000 will do.
 */
function readRecord(tokens: Tokens): RemoteFile {
  const at = tokens.count;
  const truncated = () => new Error(`truncated server listing near token ${at}`);
  const flag = tokens.peekIs(R) ? R : tokens.peekIs(U) ? U : -1;
  if (flag < 0) throw truncated();
  tokens.skip();
  const letter = tokens.next();
  const type = Object.hasOwn(TYPES, letter) ? TYPES[letter]! : 'other';
  const size = tokens.number(10);
  const mtime = tokens.number(10, true);
  const mode = tokens.number(8);
  const uid = tokens.number(10);
  const gid = tokens.number(10);
  const user = tokens.next(true);
  const group = tokens.next(true);
  const rel = tokens.next();
  const target = type === 'symlink' ? tokens.next() : (tokens.skip(), undefined);
  if (tokens.overrun) throw truncated();
  // Digits only, and few enough to be exact (400 digits would read as Infinity).
  if (!(
    Number.isSafeInteger(size) &&
    Number.isSafeInteger(mtime) &&
    Number.isSafeInteger(mode) &&
    Number.isSafeInteger(uid) &&
    Number.isSafeInteger(gid)
  ))
    throw new Error(`unexpected server listing near token ${at}`);
  return {
    rel,
    type,
    size,
    mtime,
    mode,
    uid,
    gid,
    user,
    group,
    ...(target !== undefined && { target }),
    readable: flag === R,
  };
}

/** The `N` section: `u` or `g`, an id, its name (empty when the server has none), to the end. */
function readNames(tokens: Tokens): { users: Map<number, string>; groups: Map<number, string> } {
  const users = new Map<number, string>();
  const groups = new Map<number, string>();
  while (!tokens.done()) {
    const at = tokens.count;
    const kind = tokens.next();
    const id = tokens.done() ? '' : tokens.next();
    if ((kind !== 'u' && kind !== 'g') || !/^\d+$/.test(id) || tokens.done())
      throw new Error(`truncated owner names in the server listing near token ${at}`);
    const name = tokens.next(true);
    if (name !== '') (kind === 'u' ? users : groups).set(Number(id), name);
  }
  return { users, groups };
}

/** Fills in owner and group names the records left empty; an id with no name keeps its number. */
function nameOwners(
  listings: EntryListing[],
  names: { users: Map<number, string>; groups: Map<number, string> },
): void {
  for (const l of listings) {
    if (l.status !== 'ok') continue;
    for (const f of l.files) {
      if (f.user === '') f.user = names.users.get(f.uid) ?? String(f.uid);
      if (f.group === '') f.group = names.groups.get(f.gid) ?? String(f.gid);
    }
  }
}

/**
 * NUL-terminated tokens read one at a time from the buffer: splitting 50,000 files' listing at once
 * made 550,000 strings live together. Owner and group names repeat on every line: one string each.
 */
class Tokens {
  count = 0;
  private at = 0;
  private readonly end: number;
  private readonly names = new Map<string, string>();
  /** Set once a token was asked for past the end: a record cut short. */
  overrun = false;
  constructor(private readonly buf: Buffer) {
    // A missing last NUL still ends the last token (as split did).
    this.end = buf.length;
  }
  done(): boolean {
    return this.at >= this.end;
  }
  /** Is the next token exactly the one character `code`? */
  peekIs(code: number): boolean {
    return this.buf[this.at] === code && (this.at + 1 >= this.end || this.buf[this.at + 1] === 0);
  }
  skip(): void {
    this.at = this.stop() + 1;
    this.count++;
  }
  next(shared = false): string {
    const stop = this.stop();
    const token = this.buf.toString('utf8', this.at, stop);
    this.at = stop + 1;
    this.count++;
    if (!shared) return token;
    const known = this.names.get(token);
    if (known !== undefined) return known;
    this.names.set(token, token);
    return token;
  }
  /**
   * The next token as a whole number in `base`, read from its bytes; NaN unless it is digits only (with
   * `seconds`: an optional sign and fraction, rounded down, as %T@ prints times).
   */
  number(base: 8 | 10, seconds = false): number {
    const stop = this.stop();
    let i = this.at;
    const negative = seconds && this.buf[i] === 0x2d;
    if (negative) i++;
    let value = i < stop ? 0 : NaN;
    for (; i < stop; i++) {
      const digit = this.buf[i]! - 0x30;
      if (digit < 0 || digit >= base) break;
      value = value * base + digit;
    }
    let fraction = false;
    if (seconds && i < stop && this.buf[i] === 0x2e) {
      for (i++; i < stop; i++) {
        const digit = this.buf[i]! - 0x30;
        if (digit < 0 || digit > 9) break;
        if (digit > 0) fraction = true;
      }
    }
    if (i !== stop) value = NaN;
    this.at = stop + 1;
    this.count++;
    return negative ? -value - (fraction ? 1 : 0) : value;
  }
  private stop(): number {
    if (this.at >= this.end) this.overrun = true;
    const i = this.buf.indexOf(0, this.at);
    return i < 0 ? this.end : i;
  }
}

/**
 * What find prints, and nothing else: the root first (rel ''), then plain relative names, each once,
 * each inside a folder listed before it. Rels become paths in the data folder, so a crafted one ("..",
 * absolute, or below a link) could write outside it, or store a file that later reads through a link.
 */
/** Names separated by single slashes, none of them "." or "..": no empty, current or parent part. */
const PLAIN_REL = /^(?!\.\.?(?:\/|$))[^/]+(?:\/(?!\.\.?(?:\/|$))[^/]+)*$/;

function checkShape(f: RemoteFile, seen: Map<string, RemoteFile['type']>): RemoteFile {
  const refuse = (why: string) => {
    throw new HostileServerError(`the server listed "${safeText(f.rel)}", ${why}; refusing the listing`);
  };
  if (seen.size === 0 && f.rel !== '') refuse('where the entry itself was expected first');
  if (seen.size > 0) {
    if (!PLAIN_REL.test(f.rel)) refuse('which is not a plain relative path');
    if (seen.has(f.rel)) refuse('twice');
    const slash = f.rel.lastIndexOf('/');
    if (seen.get(slash < 0 ? '' : f.rel.slice(0, slash)) !== 'dir')
      refuse('which is not inside a folder listed before it');
  }
  seen.set(f.rel, f.type);
  return f;
}

/** An entry whose root is an unreadable file is denied as a whole; an unreadable root folder too. */
function rootDenied(files: RemoteFile[]): EntryListing | null {
  const root = files.find((f) => f.rel === '');
  if (root && !root.readable)
    return { status: 'denied', reason: root.type === 'dir' ? 'folder not readable' : 'file not readable' };
  return null;
}
