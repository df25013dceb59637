import { createHash, randomBytes } from 'node:crypto';
import {
  createWriteStream,
  openSync,
  chmodSync,
  lstatSync,
  mkdirSync,
  renameSync,
  rmSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
  readdirSync,
  type Stats,
} from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { HostileServerError } from '../../errors.js';
import { safeJoin } from '../../plan/paths.js';
import { PortableNames, type NameScheme } from '../manifest/portable-names.js';
import { PatchedFile, PatchMismatch } from './patched-file.js';

/** Files up to this size are collected in memory and written with one call: far fewer syscalls. */
const SMALL_FILE = 1 << 20;
export const TEMP_MARK = '.rf-tmp-';

export type LocalType = 'file' | 'dir' | 'symlink' | 'other';
/** A path in the data folder: its type, and for a file its size. */
export interface StoredItem {
  type: LocalType;
  size: number;
}

/**
 * The domain's data folder, written only through these methods: every path is checked to stay inside
 * it, no symlink already in it is ever followed, and every file is written to a temp name and renamed,
 * so a run cut off at any point leaves each file at its old or its new content.
 */
export class LocalTree {
  /** Temp files of writes in progress (see abandonWrites). */
  private readonly inFlight = new Set<string>();
  /**
   * Folders this run created or checked to be real folders (not links), so each is checked once and
   * not once per file written in it. Only this run writes the tree; whatever removes a folder drops it.
   */
  private readonly knownDirs = new Set<string>();
  /** Temp names: unguessable per run, then counted (a random name per file cost a syscall each). */
  private readonly tempPrefix = `${TEMP_MARK}${randomBytes(6).toString('hex')}-`;
  private tempCount = 0;

  /**
   * `encrypt` turns each file's content into what is stored (age ciphertext); the hash and size that
   * writeFile returns stay the plaintext's, so the manifest compares content, not ciphertext.
   */
  constructor(
    readonly root: string,
    private readonly options: {
      encrypt?: (plain: Readable) => Readable;
      /**
       * How names are stored (portable-names.ts): the manifest's scheme, or a function giving it once
       * the manifest is read. A tree an older version wrote (raw or git-safe-1 names) is only ever read.
       */
      names?: NameScheme | (() => NameScheme);
    } = {},
  ) {}

  private scheme: NameScheme | undefined;

  /** The scheme that maps server names to stored names; portable-1 for a new folder. */
  get names(): NameScheme {
    const given = this.options.names;
    return (this.scheme ??= typeof given === 'function' ? given() : (given ?? new PortableNames(undefined, [])));
  }

  /**
   * Absolute path of a domain-relative path (as the server names it), refused if it could leave the
   * folder. On disk, each name has its stored form (portable-names.ts).
   */
  resolve(rel: string): string {
    const abs = safeJoin(this.root, this.names.toDisk(rel));
    if (abs === null) throw new HostileServerError(`refusing to write "${rel}": it would land outside the data folder`);
    return abs;
  }

  /**
   * Creates a folder and its parents. A stored symlink or file where a folder must now be is stale
   * (the server changed it) and is removed rather than followed.
   */
  ensureDir(rel: string): void {
    if (this.knownDirs.has(rel)) return;
    this.resolve(rel); // refuses a path that would leave the folder, before anything is created
    if (!this.knownDirs.has('')) {
      mkdirSync(this.root, { recursive: true });
      this.knownDirs.add('');
    }
    let current = '';
    for (const part of rel.split('/').filter(Boolean)) {
      current = current === '' ? part : `${current}/${part}`;
      if (this.knownDirs.has(current)) continue;
      const abs = this.resolve(current);
      const st = lstatSync(abs, { throwIfNoEntry: false });
      if (st && !st.isDirectory()) rmSync(abs, { force: true });
      if (!st?.isDirectory()) mkdirSync(abs);
      this.knownDirs.add(current);
    }
  }

  /**
   * Writes a file atomically with mode and mtime; returns its SHA-256 and size. With `expect`, content
   * whose SHA-256 differs is refused (ContentMismatch) and nothing is renamed into place.
   */
  async writeFile(
    rel: string,
    content: Readable,
    size: number,
    mode: number,
    mtime: number,
    /** Told of each chunk's bytes as it arrives: the transfer's progress. */
    onBytes?: (n: number) => void,
    expect?: { sha256: string },
  ): Promise<{ sha256: string; size: number }> {
    const abs = this.resolve(rel);
    this.ensureDir(parentOf(rel));
    const tmp = this.tempName(abs);
    const hash = createHash('sha256');
    let written = 0;
    let sha256 = '';
    this.inFlight.add(tmp);
    try {
      if (size <= SMALL_FILE) {
        const chunks: Buffer[] = [];
        for await (const chunk of content) {
          chunks.push(chunk as Buffer);
          written += (chunk as Buffer).length;
          onBytes?.((chunk as Buffer).length);
        }
        const data = Buffer.concat(chunks);
        hash.update(data);
        // "wx": a name that exists (even as a link) fails rather than being written through.
        writeFileSync(
          tmp,
          this.options.encrypt ? Buffer.concat(await this.options.encrypt(Readable.from([data])).toArray()) : data,
          { mode: localMode(mode), flag: 'wx' },
        );
      } else {
        // Opened now, not lazily: abandonWrites() must find the file to remove it, not race its creation.
        // A deep buffer: chunks that pile up while one write is in flight go out in one writev, so a
        // large file is written in a few big calls instead of one per 32 KB packet.
        const out = createWriteStream(tmp, { fd: openSync(tmp, 'wx', localMode(mode)), highWaterMark: 1 << 20 });
        // Hashed and counted before the transform: what is checked and returned is the plaintext.
        const counted = async function* (source: AsyncIterable<Buffer>) {
          for await (const chunk of source) {
            hash.update(chunk);
            written += chunk.length;
            onBytes?.(chunk.length);
            yield chunk;
          }
        };
        const encrypt = this.options.encrypt;
        if (encrypt)
          await pipeline(content, counted, (plain: AsyncIterable<Buffer>) => encrypt(Readable.from(plain)), out);
        else await pipeline(content, counted, out);
      }
      if (written !== size) throw new Error(`"${rel}": received ${written} bytes, the archive announced ${size}`);
      sha256 = hash.digest('hex');
      if (expect && sha256 !== expect.sha256)
        throw new ContentMismatch(`"${rel}": its SHA-256 is not the expected one`);
      chmodSync(tmp, localMode(mode));
      utimesSync(tmp, mtime, mtime);
      this.renameOver(tmp, rel, abs);
    } catch (err) {
      rmSync(tmp, { force: true });
      throw err;
    } finally {
      this.inFlight.delete(tmp);
    }
    return { sha256, size: written };
  }

  /**
   * Removes the temp files of writes still in progress. A transfer that failed may leave a write
   * waiting forever on a stream that will neither end nor fail; its temp file must not outlive the run.
   */
  abandonWrites(): void {
    for (const tmp of this.inFlight) rmSync(tmp, { force: true });
    this.inFlight.clear();
  }

  /**
   * A temp copy of the stored file at `rel`, made from `stored` (opened without following a link), for a
   * delta transfer to change in place: `store` checks the result's SHA-256 and renames it over the old
   * file, `drop` removes it. Either way the temp file never outlives the run (see abandonWrites).
   */
  async patchFile(rel: string, stored: FileHandle): Promise<Patch> {
    const abs = this.resolve(rel);
    const tmp = this.tempName(abs);
    this.inFlight.add(tmp);
    let file: PatchedFile | undefined;
    const drop = async (): Promise<void> => {
      await file?.close();
      rmSync(tmp, { force: true });
      this.inFlight.delete(tmp);
    };
    try {
      file = await PatchedFile.copyOf(stored, tmp);
    } catch (err) {
      await drop();
      throw err;
    }
    const opened = file;
    return {
      prefix: (offset) => opened.prefix(offset),
      put: (offset, data) => opened.put(offset, data),
      store: async (size, sha256, mode, mtime) => {
        try {
          await opened.finish(size, sha256, localMode(mode), mtime);
          this.renameOver(tmp, rel, abs);
        } catch (err) {
          await drop();
          throw err instanceof PatchMismatch ? new ContentMismatch(err.message) : err;
        }
        this.inFlight.delete(tmp);
        return { sha256, size };
      },
      drop,
    };
  }

  /** Stores a symlink as a symlink (never followed), atomically replacing what was there. */
  writeSymlink(rel: string, target: string): void {
    const abs = this.resolve(rel);
    this.ensureDir(parentOf(rel));
    const tmp = this.tempName(abs);
    symlinkSync(target, tmp);
    this.renameOver(tmp, rel, abs);
  }

  /** Removes a stored path (a folder with everything in it); symlinks are removed, not followed. */
  remove(rel: string): void {
    try {
      rmSync(this.resolve(rel), { recursive: true, force: true });
    } catch (err) {
      // Below a file (a folder the server turned into a file, already written): gone with the folder.
      if ((err as NodeJS.ErrnoException).code !== 'ENOTDIR') throw err;
    }
    this.forgetDirs(rel);
  }

  exists(rel: string): StoredItem | null {
    let st: Stats | undefined;
    try {
      st = lstatSync(this.resolve(rel), { throwIfNoEntry: false });
    } catch (err) {
      // A file stored where the server now has a folder: nothing below it exists here yet.
      if ((err as NodeJS.ErrnoException).code === 'ENOTDIR') return null;
      throw err;
    }
    if (!st) return null;
    return {
      type: st.isFile() ? 'file' : st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : 'other',
      size: st.size,
    };
  }

  /**
   * What is stored at `rel`, checked component by component from the tree's root, for a restore that
   * is about to read it: `through` names the first folder on the way that is a link or not a folder
   * (the stored item is then not read at all), so a data folder that someone crafted with
   * `www -> /proc/self` can never make us read outside the tree.
   */
  inspect(rel: string): { item: StoredItem | null; through?: string } {
    const parts = rel.split('/');
    let current = '';
    for (const part of parts.slice(0, -1)) {
      current = current === '' ? part : `${current}/${part}`;
      if (this.checkedDirs.has(current)) continue;
      const st = lstatSync(this.resolve(current), { throwIfNoEntry: false });
      if (!st) return { item: null };
      if (!st.isDirectory()) return { item: null, through: current };
      this.checkedDirs.add(current);
    }
    return { item: this.exists(rel) };
  }

  /** Folders inspect() found to be real folders. */
  private readonly checkedDirs = new Set<string>();

  /**
   * What is stored at `rel` and below it: each path (pre-order, relative to the tree) with its type,
   * and for files their size (one readdir per folder, one lstat per file). A walk made ahead by
   * prewalk() is handed out once.
   */
  walk(rel: string): Map<string, StoredItem> {
    const ready = this.walked.get(rel);
    this.walked.delete(rel);
    return ready ?? this.walkNow(rel);
  }

  /**
   * Walks these now, to be handed out by walk(). The backup calls it while the server is still
   * listing (see run.ts): at 20,000 stored files the lstat calls take ~80 ms this side would otherwise
   * spend waiting. A folder that cannot be walked now is walked again, and reported, by walk().
   */
  prewalk(rels: string[]): void {
    for (const rel of rels) {
      try {
        if (!this.walked.has(rel)) this.walked.set(rel, this.walkNow(rel));
      } catch {
        // walk() tries again and throws.
      }
    }
  }

  private readonly walked = new Map<string, Map<string, StoredItem>>();

  private walkNow(rel: string): Map<string, StoredItem> {
    const out = new Map<string, StoredItem>();
    const root = this.exists(rel);
    if (!root) return out;
    out.set(rel, root);
    const names = this.names;
    const visit = (r: string) => {
      const abs = this.resolve(r);
      for (const e of readdirSync(abs, { withFileTypes: true })) {
        // A name this scheme never writes (a live `.git`, a stale form) is not part of the copy.
        const name = names.fromDisk(r, e.name);
        if (name === undefined) continue;
        const child = `${r}/${name}`;
        if (e.isFile())
          out.set(child, { type: 'file', size: lstatSync(`${abs}/${e.name}`, { throwIfNoEntry: false })?.size ?? -1 });
        else out.set(child, { type: e.isDirectory() ? 'dir' : e.isSymbolicLink() ? 'symlink' : 'other', size: 0 });
        if (e.isDirectory()) visit(child);
      }
    };
    if (root.type === 'dir') visit(rel);
    return out;
  }

  /**
   * Renames a finished temp file or link into place. A folder there is stale (the server turned it
   * into a file): rename cannot replace a folder with a file, so the folder goes and the rename is
   * retried. Trying first costs nothing in the usual case, where a check first would cost a syscall.
   */
  private renameOver(tmp: string, rel: string, abs: string): void {
    try {
      renameSync(tmp, abs);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'EISDIR' && code !== 'ENOTEMPTY' && code !== 'EEXIST') throw err;
      rmSync(abs, { recursive: true, force: true });
      this.forgetDirs(rel);
      renameSync(tmp, abs);
    }
  }

  private forgetDirs(rel: string): void {
    if (!this.knownDirs.has(rel)) return;
    for (const d of this.knownDirs) if (d === rel || d.startsWith(rel + '/')) this.knownDirs.delete(d);
  }

  private tempName(abs: string): string {
    return `${abs.slice(0, abs.lastIndexOf('/') + 1)}${this.tempPrefix}${++this.tempCount}`;
  }
}

/** A stored file's new version in the making (see LocalTree.patchFile and PatchedFile). */
export interface Patch {
  /** Hashes the first `offset` bytes ahead (see PatchedFile.prefix). */
  prefix(offset: number): void;
  put(offset: number, data: Buffer): Promise<void>;
  /** Finishes, checks and renames into place; ContentMismatch when the SHA-256 differs (nothing stored). */
  store(size: number, sha256: string, mode: number, mtime: number): Promise<{ sha256: string; size: number }>;
  drop(): Promise<void>;
}

/** Content whose SHA-256 is not the one expected (see writeFile): nothing was stored. */
export class ContentMismatch extends Error {
  override name = 'ContentMismatch';
}

function parentOf(rel: string): string {
  const i = rel.lastIndexOf('/');
  return i < 0 ? '' : rel.slice(0, i);
}

/** Stored files keep the server's permission bits, and stay readable and writable by us. */
function localMode(mode: number): number {
  return (mode & 0o777) | 0o600;
}
