import { UserError } from '../../errors.js';
import { checkLocalPath, checkRemotePath, isWithin } from '../../plan/paths.js';
import type { Manifest } from './types.js';
import { exceptionForm, foldKey, PORTABLE_NAMES } from './portable-names.js';
import { GIT_SAFE_NAMES } from './stored-names.js';

/**
 * The manifest is input: whoever can push to the repository, or a poisoned artifact or cache entry,
 * writes it. Before anything acts on it, every field is checked for type and range, every path for
 * staying inside its entry, so a crafted manifest can neither point a restore outside the data folder
 * nor smuggle text into a command. The first problem fails with one message naming the field.
 */

const TYPES = new Set(['file', 'dir', 'symlink', 'other']);
const MODE = /^[0-7]{4}$/;
const SHA256 = /^[0-9a-f]{64}$/;
const ENCRYPTION = /^age:[0-9a-f]{16}$/;
/**
 * An account name as the server reports it (or its number when it has none). Names only ever reach tar
 * headers and SFTP calls, never a shell, and directory services allow `user@domain` or `DOMAIN\\user`:
 * anything printable of a sane length.
 */
const ACCOUNT = /^[^\x00-\x1f\x7f]{0,256}$/;
const MAX_ID = 0xffffffff;

export function checkManifest(data: unknown, path: string): Manifest {
  const fail = (where: string, what: string): never => {
    throw new UserError(
      `${path}: ${where} ${what}. The manifest may have been edited by hand or by someone else; take it from the store's history, or run a backup from the old server.`,
    );
  };
  if (!isObject(data) || data.version !== 1 || !isObject(data.files) || !isObject(data.entries)) {
    throw new UserError(`${path}: not a remote-files manifest of version 1`);
  }
  if (typeof data.domain !== 'string') fail('"domain"', 'is not a string');
  if (data.encryption !== undefined && (typeof data.encryption !== 'string' || !ENCRYPTION.test(data.encryption)))
    fail('"encryption"', 'is not age:<16 hex digits>');
  if (data.names !== undefined && data.names !== GIT_SAFE_NAMES && data.names !== PORTABLE_NAMES)
    fail(
      '"names"',
      `is ${JSON.stringify(data.names)}, not "${PORTABLE_NAMES}" or "${GIT_SAFE_NAMES}" (written by a newer version?)`,
    );

  checkServer(data.server, data.salvage, fail);

  const locals: string[] = [];
  for (const [local, e] of Object.entries(data.entries)) {
    const where = `entries[${JSON.stringify(local)}]`;
    checkKey(local, where, fail);
    if (!isObject(e)) fail(where, 'is not an object');
    const entry = e as Record<string, unknown>;
    if (typeof entry.remote !== 'string' || !isCanonicalRemote(entry.remote))
      fail(`${where}.remote`, 'is not an absolute, normalised server path');
    if (typeof entry.recipe !== 'string') fail(`${where}.recipe`, 'is not a string');
    if (typeof entry.type !== 'string' || !TYPES.has(entry.type))
      fail(`${where}.type`, 'is not file, dir, symlink or other');
    locals.push(local);
  }

  for (const [key, f] of Object.entries(data.files)) {
    const where = `files[${JSON.stringify(key)}]`;
    checkKey(key, where, fail);
    if (!locals.some((l) => isWithin(l, key))) fail(where, 'lies in no entry the manifest lists');
    if (!isObject(f)) fail(where, 'is not an object');
    const r = f as Record<string, unknown>;
    if (typeof r.type !== 'string' || !TYPES.has(r.type)) fail(`${where}.type`, 'is not file, dir, symlink or other');
    if (!isCount(r.size, Number.MAX_SAFE_INTEGER) || (r.type !== 'file' && r.size !== 0))
      fail(`${where}.size`, 'is not a byte count (0 for anything but a file)');
    if (typeof r.mtime !== 'number' || !Number.isInteger(r.mtime) || Math.abs(r.mtime) > 1e13)
      fail(`${where}.mtime`, 'is not whole seconds');
    if (typeof r.mode !== 'string' || !MODE.test(r.mode)) fail(`${where}.mode`, 'is not four octal digits');
    if (!isCount(r.uid, MAX_ID)) fail(`${where}.uid`, 'is not a user id');
    if (!isCount(r.gid, MAX_ID)) fail(`${where}.gid`, 'is not a group id');
    if (typeof r.user !== 'string' || !ACCOUNT.test(r.user)) fail(`${where}.user`, 'is not an account name');
    if (typeof r.group !== 'string' || !ACCOUNT.test(r.group)) fail(`${where}.group`, 'is not a group name');
    if (r.target !== undefined && (typeof r.target !== 'string' || r.target.includes('\0') || r.target === ''))
      fail(`${where}.target`, 'is not a link target');
    if (r.type === 'symlink' && r.target === undefined) fail(`${where}.target`, 'is missing (the record is a symlink)');
    if (r.type !== 'symlink' && r.target !== undefined)
      fail(`${where}.target`, 'is set on a record that is not a symlink');
    if (r.sha256 !== undefined && (typeof r.sha256 !== 'string' || !SHA256.test(r.sha256)))
      fail(`${where}.sha256`, 'is not 64 hex digits');
  }
  if (data.stored !== undefined) checkStored(data.stored, data, fail);
  return data as unknown as Manifest;
}

/**
 * portable-1's exceptions: each names a path the manifest records (or a folder above one), and is the
 * exception form of that path's own name, unique in its folder: a crafted record can neither point a
 * path at another name nor at a place outside its folder.
 */
function checkStored(
  stored: unknown,
  data: Record<string, unknown>,
  fail: (where: string, what: string) => never,
): void {
  if (data.names !== PORTABLE_NAMES) fail('"stored"', `is set, but "names" is not "${PORTABLE_NAMES}"`);
  if (!isObject(stored)) fail('"stored"', 'is not an object');
  const known = new Set<string>();
  for (const p of [...Object.keys(data.files as object), ...Object.keys(data.entries as object)])
    for (let q = p; q !== '' && !known.has(q); q = q.includes('/') ? q.slice(0, q.lastIndexOf('/')) : '') known.add(q);
  const used = new Set<string>();
  for (const [key, value] of Object.entries(stored as Record<string, unknown>)) {
    const where = `stored[${JSON.stringify(key)}]`;
    checkKey(key, where, fail);
    if (!known.has(key)) fail(where, 'names no path the manifest records');
    const slash = key.lastIndexOf('/');
    const n = typeof value === 'string' ? /%~([1-9][0-9]{0,5})$/.exec(value)?.[1] : undefined;
    if (n === undefined || value !== exceptionForm(key.slice(slash + 1), Number(n)))
      fail(where, "is not the stored form portable-1 gives this path's name");
    const inFolder = `${key.slice(0, slash + 1)}${foldKey(value as string)}`;
    if (used.has(inFolder)) fail(where, 'is the stored form of another path in its folder too');
    used.add(inFolder);
  }
}

function checkKey(key: string, where: string, fail: (where: string, what: string) => never): void {
  const c = checkLocalPath(key);
  if (!c.ok) fail(where, `is not a path inside the data folder: it ${c.why}`);
  else if (c.path !== key) fail(where, 'is not a normalised path');
}

function isCanonicalRemote(remote: string): boolean {
  const c = checkRemotePath(remote);
  return c.ok && c.path === remote;
}

const HEX32 = /^[0-9a-f]{32}$/;
const HOST_KEY = /^[a-z0-9@.-]{1,64} SHA256:[A-Za-z0-9+/]{43}$/;

/** The server and salvage records only ever reach comparisons and messages: still, exact forms only. */
function checkServer(server: unknown, salvage: unknown, fail: (where: string, what: string) => never): void {
  if (server !== undefined) {
    if (!isObject(server)) fail('"server"', 'is not an object');
    const r = server as Record<string, unknown>;
    for (const k of Object.keys(r))
      if (!['hostKey', 'machine', 'instance'].includes(k)) fail(`"server".${k}`, 'is unknown');
    if (r.hostKey !== undefined && (typeof r.hostKey !== 'string' || !HOST_KEY.test(r.hostKey)))
      fail('"server".hostKey', 'is not "<key type> SHA256:<43 base64 digits>"');
    if (r.machine !== undefined && (typeof r.machine !== 'string' || !SHA256.test(r.machine)))
      fail('"server".machine', 'is not 64 hex digits');
    if (r.instance !== undefined && (typeof r.instance !== 'string' || !HEX32.test(r.instance)))
      fail('"server".instance', 'is not 32 hex digits');
  }
  if (salvage !== undefined) {
    if (!isObject(salvage)) fail('"salvage"', 'is not an object');
    const r = salvage as Record<string, unknown>;
    if (typeof r.id !== 'string' || !HEX32.test(r.id)) fail('"salvage".id', 'is not 32 hex digits');
    if (typeof r.at !== 'string' || !/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/.test(r.at))
      fail('"salvage".at', 'is not an ISO 8601 UTC time');
    if (Object.keys(r).length !== 2) fail('"salvage"', 'holds fields other than id and at');
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isCount(v: unknown, max: number): boolean {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= max;
}
