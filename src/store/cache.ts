import * as cache from '@actions/cache';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { UserError } from '../errors.js';
import { tempRoot } from '../temp.js';
import { readCacheArchive, tarShim } from './cache-archive.js';
import { sealHolds, sealOf, sealSecret, sha256File } from './cache-seal.js';
import { describeStats, packSnapshot, restoreSnapshot, withProcessEnv } from './snapshot.js';
import type { LoadResult, SaveResult, Store, StoreContext } from './types.js';

export interface CacheStoreOptions {
  /** Key to save under; '' = `remote-files-<domain>-<GITHUB_RUN_ID>-<GITHUB_RUN_ATTEMPT>` (unique per run). */
  key: string;
  /** The login credential (`key`, or `password` without one): what the entries' seals are keyed by (cache-seal.ts). */
  credential: string;
}

/**
 * What the cache holds: the snapshot file, alone, at this path relative to a private temp folder.
 * The toolkit derives the cache "version" from the path strings it is given, so the same relative
 * path must be used by every run; it archives relative to GITHUB_WORKSPACE and extracts there.
 */
const SNAPSHOT_FILE = 'remote-files.snapshot.tar';
/** Beside it, the snapshot's seal (cache-seal.ts): 64 hex digits. */
const SEAL_FILE = 'remote-files.seal';
/** What an entry holds, and the most bytes each may have (a seal is tiny). */
const ENTRY_FILES = [SNAPSHOT_FILE, SEAL_FILE];
const ENTRY_LIMITS = new Map([
  [SNAPSHOT_FILE, Number.MAX_SAFE_INTEGER],
  [SEAL_FILE, 256],
]);

/**
 * Keeps the domain folder in the Actions cache. The cache holds a snapshot tar rather than the folder
 * itself: GNU tar would restore the folder in place, merged with what is there and with the umask
 * applied to modes, and without the unpacker's checks. Restoring into a private temp folder and then
 * swapping the domain folder never leaves it half replaced.
 */
export class CacheStore implements Store {
  readonly name = 'cache' as const;

  constructor(private readonly opts: CacheStoreOptions) {}

  /** Every key this store writes for a domain starts with it: restores take the newest. */
  static prefix(domain: string): string {
    return `remote-files-${domain}-`;
  }

  key(domain: string): string {
    if (this.opts.key !== '') return checkKey(this.opts.key);
    const run = process.env.GITHUB_RUN_ID;
    const attempt = process.env.GITHUB_RUN_ATTEMPT || '1';
    if (!run)
      throw new UserError(
        'GITHUB_RUN_ID is not set: the cache store only works in a GitHub Actions job (or set `cache-key`)',
      );
    return checkKey(`${CacheStore.prefix(domain)}${run}-${attempt}`);
  }

  async save(ctx: StoreContext, _changed: boolean): Promise<SaveResult> {
    // Saved even when nothing changed: an entry nobody writes is evicted after a week unused, and
    // keys are per run anyway.
    requireService();
    const key = this.key(ctx.domain);
    const work = mkdtempSync(join(tempRoot(), 'remote-files-cache-'));
    try {
      const stats = await packSnapshot(ctx.domainDir, join(work, SNAPSHOT_FILE), (rel, why) =>
        ctx.warning(`not stored in the cache: ${JSON.stringify(rel)} (${why})`),
      );
      const snapshotSha = await sha256File(join(work, SNAPSHOT_FILE));
      writeFileSync(join(work, SEAL_FILE), sealOf(this.secret(), ctx.domain, snapshotSha), { flag: 'wx', mode: 0o600 });
      const id = await inFolder(work, () => cache.saveCache(ENTRY_FILES, key));
      // The toolkit returns -1 on failure, an entry id > 0 otherwise; the local-action stand-in returns
      // -1 on failure too, but its ids can be -Infinity (one more than the largest of no entries).
      if (standIn() ? id === -1 : id <= 0) {
        // saveCache reports its failures as log lines and returns -1; say which one it was.
        const taken =
          (await inFolder(work, () => cache.restoreCache(ENTRY_FILES, key, [], { lookupOnly: true }))) === key;
        if (taken) {
          throw new UserError(
            `cache key "${key}" already exists and cache entries cannot be overwritten: make \`cache-key\` unique per run (e.g. with \${{ github.run_id }}) or leave it empty`,
          );
        }
        throw new Error(`saving the cache under "${key}" failed (the messages above say why)`);
      }
      return { outputs: { 'cache-key': key }, summary: `saved cache ${key} (${describeStats(stats)})` };
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  }

  async check(ctx: StoreContext, _saving: boolean): Promise<void> {
    requireService();
    this.key(ctx.domain);
    this.secret();
  }

  private secret(): Buffer {
    if (this.opts.credential.trim() === '')
      throw new UserError(
        'store: cache seals its entries with the login credential, and neither `key` nor `password` is set',
      );
    return sealSecret(this.opts.credential);
  }

  async load(ctx: StoreContext): Promise<LoadResult> {
    requireService();
    const key = this.key(ctx.domain);
    const prefix = CacheStore.prefix(ctx.domain);
    const secret = this.secret();
    const work = mkdtempSync(join(tempRoot(), 'remote-files-cache-'));
    try {
      // The toolkit downloads into `work`; its `tar` is our shim, which only keeps the archive here.
      const shim = tarShim(mkdirPrivate(join(work, 'shim')), join(work, 'entry.archive'));
      const files = mkdirPrivate(join(work, 'files'));
      // The exact key first (this run's own save), then the newest entry of this domain.
      const matched = await inFolder(
        files,
        () => cache.restoreCache(ENTRY_FILES, key, [prefix]),
        `${shim}${delimiter}${process.env.PATH ?? ''}`,
      );
      if (matched === undefined) {
        // restoreCache turns a failed download into a miss with a warning: a miss must really be one.
        const present = await inFolder(files, () =>
          cache.restoreCache(ENTRY_FILES, key, [prefix], { lookupOnly: true }),
        );
        if (present !== undefined)
          throw new Error(`cache entry "${present}" exists but could not be restored (the warning above says why)`);
        return { found: false, outputs: { 'cache-hit': 'false' }, summary: `no cache entry ${key} or ${prefix}*` };
      }
      // The toolkit (and local-action's stand-in, which extracts with tar too) went through the shim.
      const archive = join(work, 'entry.archive');
      if (existsSync(archive)) await readCacheArchive(archive, files, ENTRY_LIMITS, matched);
      else if (!standIn()) throw new Error(`cache entry "${matched}" was not downloaded`);
      const file = join(files, SNAPSHOT_FILE);
      if (!existsSync(file)) throw new Error(`cache entry "${matched}" holds no remote-files snapshot`);
      const seal = existsSync(join(files, SEAL_FILE)) ? readFileSync(join(files, SEAL_FILE), 'utf8') : '';
      if (!sealHolds(secret, ctx.domain, await sha256File(file), seal))
        throw new UserError(
          `cache entry "${matched}" was not written by this workflow for ${ctx.domain}: its seal does not match the login credential, so nothing of it was used. ` +
            'A backup seals its entry with the `key` (or `password`) it logs in with: restore with the same one. An entry another job saved under this prefix is refused for good; a backup writes a newer one',
        );
      const stats = await restoreSnapshot(file, ctx.domainDir);
      const exact = matched === key;
      return {
        found: true,
        outputs: { 'cache-key': matched, 'cache-hit': String(exact) },
        summary: `restored cache ${matched}${exact ? '' : ` (newest for ${prefix}*)`} (${describeStats(stats)})`,
      };
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  }
}

/** A new folder only we may enter (inside our private temp folder). */
function mkdirPrivate(path: string): string {
  mkdirSync(path, { mode: 0o700 });
  return path;
}

/**
 * Runs a toolkit call with `dir` as both GITHUB_WORKSPACE and working directory: the toolkit resolves
 * the relative snapshot path against the working directory and archives/extracts relative to
 * GITHUB_WORKSPACE, so the archive holds exactly one relative member and restores only into `dir`.
 */
function inFolder<T>(dir: string, fn: () => Promise<T>, path?: string): Promise<T> {
  return withProcessEnv({ GITHUB_WORKSPACE: dir, ...(path !== undefined && { PATH: path }) }, dir, fn);
}

/** The toolkit's own rules, checked up front so the message names the input. */
function checkKey(key: string): string {
  if (key.length > 512) throw new UserError(`input \`cache-key\`: longer than 512 characters`);
  if (key.includes(',')) throw new UserError(`input \`cache-key\`: "${key}" contains a comma, which cache keys cannot`);
  return key;
}

/**
 * Whether @actions/cache is @github/local-action's stand-in, which keeps entries as files in
 * LOCAL_ACTION_CACHE_PATH: it exports only saveCache and restoreCache, so isFeatureAvailable is missing.
 */
function standIn(): boolean {
  return typeof (cache as Partial<typeof cache>).isFeatureAvailable !== 'function';
}

function requireService(): void {
  if (standIn()) {
    if (!process.env.LOCAL_ACTION_CACHE_PATH || !process.env.LOCAL_ACTION_WORKSPACE) {
      throw new UserError(
        'store: cache under @github/local-action needs LOCAL_ACTION_CACHE_PATH and LOCAL_ACTION_WORKSPACE (existing folders) in its .env file',
      );
    }
    return;
  }
  if (!cache.isFeatureAvailable() || !process.env.ACTIONS_RUNTIME_TOKEN) {
    throw new UserError(
      'store: cache needs the Actions cache service (ACTIONS_RESULTS_URL or ACTIONS_CACHE_URL and ACTIONS_RUNTIME_TOKEN are not set): it only works in a GitHub Actions job',
    );
  }
}
