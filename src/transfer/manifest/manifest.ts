import { randomBytes } from 'node:crypto';
import { closeSync, constants, mkdirSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { UserError } from '../../errors.js';
import { META_DIR } from '../../plan/paths.js';
import { checkManifest } from './check.js';
import type { Manifest, ManifestFile, SalvageRecord, ServerRecord } from './types.js';
import { PORTABLE_NAMES } from './portable-names.js';
import type { RemoteFile } from '../types.js';
import { TEMP_MARK } from '../local/tree.js';

export type { Manifest, ManifestEntry, ManifestFile, SalvageRecord, ServerRecord } from './types.js';

export const MANIFEST_NAME = 'manifest.json';

export function manifestPath(domainDir: string): string {
  return join(domainDir, META_DIR, MANIFEST_NAME);
}

export function emptyManifest(domain: string): Manifest {
  return { version: 1, domain, names: PORTABLE_NAMES, entries: {}, files: {} };
}

/** Reads the manifest of a domain folder; none yet is an empty one, a corrupt one is an error. */
export function readManifest(domainDir: string, domain: string): Manifest {
  const path = manifestPath(domainDir);
  let text: string;
  try {
    // Not through a link: a manifest that is one (to /proc/self/environ, say) is refused, never read.
    const fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW);
    try {
      text = readFileSync(fd, 'utf8');
    } finally {
      closeSync(fd);
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return emptyManifest(domain);
    if ((err as NodeJS.ErrnoException).code === 'ELOOP')
      throw new UserError(
        `${path} is a symbolic link: replace it with the manifest (take it from the store's history)`,
      );
    throw err;
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw new UserError(
      `${path}: the manifest is not valid JSON (${(err as Error).message}); restore it from the store's history`,
    );
  }
  return checkManifest(data, path);
}

/**
 * Serialises with sorted keys and one line per file, so a commit of the data folder shows a
 * readable, minimal diff of the manifest. Handed out in pieces of about 1 MB: at 50,000 files the
 * whole text (and the array of lines behind it) would be the run's largest allocation.
 */
export function* manifestChunks(m: Manifest): Generator<string> {
  const encryption = m.encryption ? `  "encryption": ${JSON.stringify(m.encryption)},\n` : '';
  const names = m.names ? `  "names": ${JSON.stringify(m.names)},\n` : '';
  const server = m.server ? `  "server": ${JSON.stringify(m.server)},\n` : '';
  const salvage = m.salvage ? `  "salvage": ${JSON.stringify(m.salvage)},\n` : '';
  const stored =
    m.stored && Object.keys(m.stored).length > 0
      ? `  "stored": {\n${Object.keys(m.stored)
          .sort()
          .map((k) => `    ${JSON.stringify(k)}: ${JSON.stringify(m.stored![k])}`)
          .join(',\n')}\n  },\n`
      : '';
  yield `{\n  "version": 1,\n  "domain": ${JSON.stringify(m.domain)},\n${encryption}${names}${stored}${server}${salvage}  "entries": {\n`;
  yield* block(m.entries);
  yield '\n  },\n  "files": {\n';
  yield* block(m.files);
  yield '\n  }\n}\n';
}

function* block(rec: Record<string, object>): Generator<string> {
  let chunk = '';
  let first = true;
  for (const k of Object.keys(rec).sort()) {
    chunk += `${first ? '' : ',\n'}    ${JSON.stringify(k)}: ${JSON.stringify(rec[k])}`;
    first = false;
    if (chunk.length >= 1 << 20) {
      yield chunk;
      chunk = '';
    }
  }
  if (chunk) yield chunk;
}

export function serializeManifest(m: Manifest): string {
  return [...manifestChunks(m)].join('');
}

/** Same content (property order aside), compared without serialising either. */
export function sameManifest(a: Manifest, b: Manifest): boolean {
  return (
    a === b ||
    (a.domain === b.domain &&
      a.encryption === b.encryption &&
      a.names === b.names &&
      sameFields(a.server, b.server) &&
      sameFields(a.salvage, b.salvage) &&
      sameRecords({ s: a.stored ?? {} }, { s: b.stored ?? {} }) &&
      sameRecords(a.entries, b.entries) &&
      sameRecords(a.files, b.files))
  );
}

function sameFields(a: object | undefined, b: object | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return sameRecords({ x: a }, { x: b });
}

function sameRecords(a: Record<string, object>, b: Record<string, object>): boolean {
  const keys = Object.keys(a);
  if (keys.length !== Object.keys(b).length) return false;
  for (const k of keys) {
    const x = a[k] as Record<string, unknown>;
    const y = b[k] as Record<string, unknown> | undefined;
    if (x === y) continue;
    if (!y) return false;
    const fields = Object.keys(x);
    if (fields.length !== Object.keys(y).length || fields.some((f) => x[f] !== y[f])) return false;
  }
  return true;
}

export function toManifestFile(f: RemoteFile, sha256?: string): ManifestFile {
  return {
    type: f.type,
    size: f.type === 'file' ? f.size : 0,
    mtime: f.mtime,
    mode: modeText(f.mode),
    uid: f.uid,
    gid: f.gid,
    user: f.user,
    group: f.group,
    ...(f.target !== undefined && { target: f.target }),
    ...(sha256 !== undefined && { sha256 }),
  };
}

/**
 * The record of `f`: the previous one itself when it already says exactly this, so a run where nothing
 * changed builds no new records and compares them by identity (sameManifest).
 */
export function recordOf(f: RemoteFile, prev: ManifestFile | undefined, sha256?: string): ManifestFile {
  if (
    prev !== undefined &&
    prev.type === f.type &&
    prev.size === (f.type === 'file' ? f.size : 0) &&
    prev.mtime === f.mtime &&
    prev.uid === f.uid &&
    prev.gid === f.gid &&
    prev.user === f.user &&
    prev.group === f.group &&
    prev.target === f.target &&
    prev.sha256 === sha256 &&
    // As modeText() writes it (four octal digits), compared without making the text.
    prev.mode.length === 4 &&
    parseInt(prev.mode, 8) === f.mode
  ) {
    return prev;
  }
  return toManifestFile(f, sha256);
}

/** A mode as the manifest writes it: four octal digits. */
export function modeText(mode: number): string {
  return mode.toString(8).padStart(4, '0');
}

/** Domain-relative path of a file of an entry: the entry's local path, then its rel below the root. */
export function storedPath(local: string, rel: string): string {
  return rel === '' ? local : `${local}/${rel}`;
}

/** Every manifest path of one entry (its root and everything below). */
export function entryPaths(m: Manifest, local: string): string[] {
  return Object.keys(m.files).filter((p) => p === local || p.startsWith(local + '/'));
}

/**
 * The manifest with the server it came from (kept as it was when not given) and, when the stored content
 * changed or no salvage id exists yet, a new salvage id and time: what a restore leaves on the server.
 */
export function stampSalvage(
  m: Manifest,
  old: Manifest,
  server: ServerRecord | undefined,
  contentChanged: boolean,
): Manifest {
  const salvage: SalvageRecord =
    contentChanged || !old.salvage
      ? { id: randomBytes(16).toString('hex'), at: new Date().toISOString() }
      : old.salvage;
  const record = server ?? old.server;
  return { ...m, ...(record && { server: record }), salvage };
}

/** Writes the manifest atomically: a temp file beside it, then a rename. */
export function writeManifest(domainDir: string, m: Manifest): void {
  const path = manifestPath(domainDir);
  mkdirSync(dirname(path), { recursive: true });
  // Created exclusively under an unguessable name: a link planted at a temp name is never written through.
  const tmp = `${path}.${TEMP_MARK}${randomBytes(6).toString('hex')}`;
  const fd = openSync(tmp, 'wx', 0o644);
  try {
    for (const chunk of manifestChunks(m)) writeSync(fd, chunk);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}
