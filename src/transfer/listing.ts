import { HostileServerError } from '../errors.js';
import { safeText } from '../report/reporter.js';
import type { EntryListing, RemoteFile } from './types.js';

const TYPES: Record<string, RemoteFile['type']> = { f: 'file', d: 'dir', l: 'symlink' };
const FIELD_COUNT = 11;

/**
 * Parses LIST_SCRIPT's output: NUL-terminated tokens, `E` opening each entry, then `M`, `D` or
 * records of 11 fields (flag, type, size, mtime, mode, uid, gid, user, group, rel, link target), and
 * last the `N` section naming owners and groups by id (the records leave names empty).
 * Throws on anything else: a listing we cannot read exactly is not one to act on.
 */
export function parseListing(out: Buffer, expected: number): EntryListing[] {
  const tokens = new Tokens(out);
  const result: EntryListing[] = [];
  let names = { users: new Map<number, string>(), groups: new Map<number, string>() };
  while (!tokens.done()) {
    const head = tokens.next();
    if (head === 'N') {
      names = readNames(tokens);
      break;
    }
    if (head !== 'E') throw new Error(`unexpected server listing near token ${tokens.count}`);
    const kind = tokens.peek();
    if (kind === 'M' || kind === 'D') {
      tokens.next();
      result.push(kind === 'M' ? { status: 'missing' } : { status: 'denied', reason: 'permission denied on a parent folder' });
      continue;
    }
    const files: RemoteFile[] = [];
    const seen = new Map<string, RemoteFile['type']>();
    while (!tokens.done() && tokens.peek() !== 'E' && tokens.peek() !== 'N') {
      const at = tokens.count;
      const f: string[] = [];
      for (let k = 0; k < FIELD_COUNT && !tokens.done(); k++) f.push(tokens.next(k === 7 || k === 8));
      if (f.length < FIELD_COUNT || (f[0] !== 'R' && f[0] !== 'U')) throw new Error(`truncated server listing near token ${at}`);
      files.push(checkShape(toRemoteFile(f), seen));
    }
    result.push(rootDenied(files) ?? { status: 'ok', files });
  }
  if (result.length !== expected) throw new Error(`server listing has ${result.length} entries, expected ${expected}`);
  nameOwners(result, names);
  return result;
}

/** The `N` section: `u` or `g`, an id, its name (empty when the server has none), to the end. */
function readNames(tokens: Tokens): { users: Map<number, string>; groups: Map<number, string> } {
  const users = new Map<number, string>();
  const groups = new Map<number, string>();
  while (!tokens.done()) {
    const at = tokens.count;
    const kind = tokens.next();
    const id = tokens.done() ? '' : tokens.next();
    if ((kind !== 'u' && kind !== 'g') || !/^\d+$/.test(id) || tokens.done()) throw new Error(`truncated owner names in the server listing near token ${at}`);
    const name = tokens.next(true);
    if (name !== '') (kind === 'u' ? users : groups).set(Number(id), name);
  }
  return { users, groups };
}

/** Fills in owner and group names the records left empty; an id with no name keeps its number. */
function nameOwners(listings: EntryListing[], names: { users: Map<number, string>; groups: Map<number, string> }): void {
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
  constructor(private readonly buf: Buffer) {
    // A missing last NUL still ends the last token (as split did).
    this.end = buf.length;
  }
  done(): boolean {
    return this.at >= this.end;
  }
  peek(): string {
    const stop = this.stop();
    return this.buf.toString('utf8', this.at, stop);
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
  private stop(): number {
    const i = this.buf.indexOf(0, this.at);
    return i < 0 ? this.end : i;
  }
}

/**
 * What find prints, and nothing else: the root first (rel ''), then plain relative names, each once,
 * each inside a folder listed before it. Rels become paths in the data folder, so a crafted one ("..",
 * absolute, or below a link) could write outside it, or store a file that later reads through a link.
 */
function checkShape(f: RemoteFile, seen: Map<string, RemoteFile['type']>): RemoteFile {
  const refuse = (why: string) => {
    throw new HostileServerError(`the server listed "${safeText(f.rel)}", ${why}; refusing the listing`);
  };
  if (seen.size === 0 && f.rel !== '') refuse('where the entry itself was expected first');
  if (seen.size > 0) {
    const parts = f.rel.split('/');
    if (parts.some((p) => p === '' || p === '.' || p === '..')) refuse('which is not a plain relative path');
    if (seen.has(f.rel)) refuse('twice');
    if (seen.get(parts.slice(0, -1).join('/')) !== 'dir') refuse('which is not inside a folder listed before it');
  }
  seen.set(f.rel, f.type);
  return f;
}

function toRemoteFile(f: string[]): RemoteFile {
  const type = TYPES[f[1]!] ?? 'other';
  return {
    rel: f[9]!,
    type,
    size: Number(f[2]),
    mtime: Math.floor(Number(f[3])),
    mode: parseInt(f[4]!, 8),
    uid: Number(f[5]),
    gid: Number(f[6]),
    user: f[7]!,
    group: f[8]!,
    ...(type === 'symlink' && { target: f[10]! }),
    readable: f[0] === 'R',
  };
}

/** An entry whose root is an unreadable file is denied as a whole; an unreadable root folder too. */
function rootDenied(files: RemoteFile[]): EntryListing | null {
  const root = files.find((f) => f.rel === '');
  if (root && !root.readable) return { status: 'denied', reason: root.type === 'dir' ? 'folder not readable' : 'file not readable' };
  return null;
}
