import { once } from 'node:events';
import { PassThrough, type Readable } from 'node:stream';
import { HostileServerError } from '../errors.js';
import { safeText } from '../report/reporter.js';
import { excludeRel, nestedIn, remotePathOf, type Entry } from './entries.js';
import { applyExcludes, makeExcludeTest } from './local/excludes.js';
import { PortableNames } from './manifest/portable-names.js';
import { LocalTree, TEMP_MARK, type StoredItem } from './local/tree.js';
import {
  entryPaths,
  recordOf,
  sameManifest,
  storedPath,
  stampSalvage,
  toManifestFile,
  writeManifest,
  type Manifest,
  type ManifestFile,
  type ServerRecord,
} from './manifest/manifest.js';
import { newOutcome, type EntryOutcome } from '../model/outcome.js';
import { mostlyCompressed } from './compression.js';
import { collectIfGrown } from '../memory.js';
import { DELTA_MIN, fetchByDelta } from './delta/delta.js';
import { NO_PROGRESS, type Progress } from '../report/progress.js';
import type { EntryListing, Transport } from './types.js';
import type { EntryPlan, FetchTarget } from './entry-plan.js';
import { nextManifest, nothingChanged, withNames, withStored } from './backup-manifest.js';
import { byteShrinkProblem, shrinkError, shrinkProblems, type MaxDelete, type ShrinkCounts } from './shrink-guard.js';
import { describeMember, judgeMemberSize, memberSizeError } from './member-size.js';
import { assertNoRecordBelowLink, linkAbove, parentOf, refuseInconsistentNesting } from './nesting.js';

export interface BackupOptions {
  /** The byte half of the shrink guard; off when the workflow backs up a new server on purpose. */
  byteGuard?: boolean;
  /** The server this salvage comes from, recorded in the manifest (absent: the old record is kept). */
  server?: ServerRecord;
  checksum: boolean;
  delete: boolean;
  dryRun: boolean;
  /** The shrink guard (input `max-delete`); none: no guard. */
  maxDelete?: MaxDelete;
  /** Contents are stored encrypted with this tag (see store/encryption.ts): stored sizes are not plaintext sizes. */
  encryption?: string;
  /** Lines for the log (what the delta transfer did). */
  log?: (line: string) => void;
  /** Told what is about to be fetched, then of the bytes and files as they arrive. */
  progress?: Progress;
}

export interface BackupResult {
  outcomes: EntryOutcome[];
  manifest: Manifest;
  /** Did the stored copy change (files or manifest)? */
  changed: boolean;
}

/**
 * Salvages every entry into the domain folder: list → decide → fetch changed files (one archive for
 * all entries) → mirror deletions → write the manifest last. A missing or unreadable entry (or
 * folder, or file) keeps what was stored for it.
 */
export async function backup(
  entries: Entry[],
  transport: Transport,
  tree: LocalTree,
  old: Manifest,
  opts: BackupOptions,
): Promise<BackupResult> {
  const listings = await transport.list(entries.map((e) => e.remote));
  const nesting = entries.map((e) => nestedIn(e, entries));
  const involved = new Set([...nesting.flat(), ...entries.filter((_, i) => nesting[i]!.length > 0)]);
  const plans = entries.map((entry, i) =>
    decideEntry(entry, listings[i]!, old, tree, opts, nesting[i]!, involved.has(entry)),
  );
  refuseInconsistentNesting(plans);
  if (opts.checksum) await confirmByChecksum(plans, transport, old);
  // The shrink guard decides on the plan alone, before anything is written (a dry run says so too).
  if (opts.maxDelete) {
    const counts = plans.filter((p) => p.listing.status === 'ok').map((p) => shrinkCounts(p, old));
    const problems = shrinkProblems(counts, opts.maxDelete);
    const bytes = opts.byteGuard === false ? undefined : byteShrinkProblem(counts, opts.maxDelete);
    if (bytes) problems.push(bytes);
    if (problems.length > 0) throw shrinkError(problems);
  }
  if (opts.dryRun)
    return {
      outcomes: plans.map(dryRunOutcome),
      manifest: old,
      changed: plans.some((p) => p.fetch.length + p.deletions.length > 0),
    };

  // Several entries may name one server file (two recipes salvaging /etc/app/app.conf, or a file inside
  // a folder another entry salvages): it arrives once and is stored at each of their local paths.
  const byRemote = new Map<string, FetchTarget[]>();
  for (const p of plans) {
    for (const f of p.fetch) {
      const remote = remotePathOf(p.entry.remote, f.file.rel);
      const targets = byRemote.get(remote);
      if (targets) targets.push({ plan: p, ...f });
      else byRemote.set(remote, [{ plan: p, ...f }]);
    }
  }
  // Stored names are decided for all paths at once, in byte order: which of two names that differ only
  // in case is stored under an exception form never depends on the order files arrive in.
  const names = tree.names instanceof PortableNames ? tree.names : undefined;
  names?.decide(
    plans.flatMap((p) => [
      ...p.records.keys(),
      ...p.fetch.map((f) => f.path),
      ...p.links.map((l) => l.path),
      ...p.dirs,
    ]),
  );
  const named = (m: Manifest) => withNames(m, names);
  for (const p of plans) for (const d of p.dirs) tree.ensureDir(d);
  const progress = opts.progress ?? NO_PROGRESS;
  progress.planned(
    byRemote.size,
    [...byRemote.values()].reduce((n, t) => n + t[0]!.file.size, 0),
  );
  const stored = new Map<string, ManifestFile>();
  /** Files that arrived smaller than listed: skipped, their stored copy kept (see member-size.ts). */
  const offSize: string[] = [];
  /** Records what was written for a server file at each of its stored paths (`written` in the order of `paths`). */
  const keep = (remote: string, paths: string[], written: Array<{ sha256: string; size: number }>, mtime: number) => {
    for (const t of byRemote.get(remote)!) {
      const w = written[paths.indexOf(t.path)]!;
      const record = toManifestFile({ ...t.file, size: w.size, mtime }, w.sha256);
      t.plan.records.set(t.path, record);
      stored.set(t.path, record);
      t.plan.outcome.files++;
      t.plan.outcome.bytes += w.size;
    }
    collectIfGrown();
  };
  const failed = (err: unknown): never => {
    // Cut off mid-archive (the connection lost): the files already renamed into place hold the
    // server's new content, and the old manifest would vouch for the old. Record them, so the manifest
    // always describes what the folder holds (a restore would pair new bytes with old metadata).
    if (stored.size > 0) writeManifest(tree.root, named(withStored(old, stored, plans, opts.encryption)));
    // Files still arriving when the transfer failed will never finish: drop their temp files now.
    tree.abandonWrites();
    throw err;
  };
  // What the listing and the plans left behind goes before the transfer piles more on it.
  collectIfGrown(true);
  // Big changed files with a stored copy first, as their changed blocks; the rest (and any they left) whole.
  const whole = await deltaFirst(byRemote, transport, tree, opts, keep, progress).catch(failed);
  const fetched = await transport
    .fetch(whole, async (incoming) => {
      const targets = byRemote.get(incoming.remote)!;
      const paths = [...new Set(targets.map((t) => t.path))];
      const first = targets[0]!.file;
      const size = judgeMemberSize(first.size, incoming.size);
      const member = describeMember(incoming.remote, first.size, incoming.size);
      if (size === 'larger') throw new HostileServerError(memberSizeError([member], true));
      if (size === 'smaller') {
        offSize.push(member);
        await drain(incoming.stream);
        return;
      }
      const mtime = incoming.mtime ?? first.mtime;
      // One stream, one or several writers (each stored path written once, its copy made as it arrives).
      const copies = paths.length === 1 ? [] : paths.map(() => new PassThrough());
      const streams = paths.length === 1 ? [incoming.stream] : copies;
      const [written] = await Promise.all([
        Promise.all(
          paths.map((path, i) =>
            tree.writeFile(path, streams[i]!, incoming.size, first.mode, mtime, i === 0 ? progress.bytes : undefined),
          ),
        ),
        tee(incoming.stream, copies),
      ]);
      progress.fileDone();
      keep(incoming.remote, paths, written, mtime);
    })
    .catch(failed);
  if (offSize.length > 0) {
    // The files that did arrive whole are in place: the manifest must vouch for them (as after a cut).
    if (stored.size > 0) writeManifest(tree.root, named(withStored(old, stored, plans, opts.encryption)));
    throw new HostileServerError(memberSizeError(offSize, false));
  }
  for (const remote of fetched.notSent)
    for (const target of byRemote.get(remote)!) keepNotSent(target, old, fetched.message);
  for (const p of plans) {
    for (const l of p.links) tree.writeSymlink(l.path, l.target);
    for (const d of p.deletions) tree.remove(d);
    finishOutcome(p);
  }
  // The transfer's garbage goes before the next manifest is built beside the records it copies.
  collectIfGrown(true);
  const content = named(
    (nothingChanged(old, plans, opts.encryption) ? old : undefined) ?? nextManifest(old, plans, opts.encryption),
  );
  const contentChanged =
    plans.some((p) => p.outcome.files > 0 || p.deletions.length > 0) || !sameManifest(content, old);
  // The server it came from, and a new salvage id when what is stored changed (see transfer/identity/).
  const stamped = stampSalvage(content, old, opts.server, contentChanged);
  const manifest = sameManifest(stamped, old) ? old : stamped;
  const changed = contentChanged || manifest !== old;
  if (changed) {
    assertNoRecordBelowLink(tree, manifest);
    writeManifest(tree.root, manifest);
  }
  return { outcomes: plans.map((p) => p.outcome), manifest, changed };
}

/**
 * Changed files that have a stored copy, one stored path and DELTA_MIN bytes or more move as their
 * changed blocks where the transport can (tar: see delta/), unencrypted (the stored ciphertext cannot
 * be compared: a backup holds the recipients, not the identity). Returns the server files left to fetch whole.
 */
async function deltaFirst(
  byRemote: Map<string, FetchTarget[]>,
  transport: Transport,
  tree: LocalTree,
  opts: BackupOptions,
  keep: (remote: string, paths: string[], written: Array<{ sha256: string; size: number }>, mtime: number) => void,
  progress: Progress,
): Promise<string[]> {
  const remotes = [...byRemote.keys()];
  if (!transport.delta || opts.encryption !== undefined) return remotes;
  const items = remotes.flatMap((remote) => {
    const targets = byRemote.get(remote)!;
    const { path, file, stored } = targets[0]!;
    const fits = stored && file.size >= DELTA_MIN && targets.every((t) => t.path === path);
    return fits && !mostlyCompressed([remote])
      ? [{ remote, path, size: file.size, mtime: file.mtime, mode: file.mode, stored }]
      : [];
  });
  if (items.length === 0) return remotes;
  // Each file is recorded as it is renamed into place: a run cut off in a later batch still vouches for it.
  const r = await fetchByDelta(items, transport.delta, tree, opts.log ?? (() => undefined), (item, w) => {
    progress.bytes(w.size);
    progress.fileDone();
    keep(item.remote, [item.path], [w], item.mtime);
  });
  return remotes.filter((remote) => !r.done.has(remote));
}

/** Copies one stream into several, each at the pace of the slowest (nothing to do without copies). */
async function tee(source: Readable, copies: PassThrough[]): Promise<void> {
  if (copies.length === 0) return;
  try {
    for await (const chunk of source)
      await Promise.all(copies.map((c) => (c.write(chunk) ? undefined : once(c, 'drain'))));
    for (const c of copies) c.end();
  } catch (err) {
    for (const c of copies) c.destroy(err as Error);
  }
}

function decideEntry(
  entry: Entry,
  listing: EntryListing,
  old: Manifest,
  tree: LocalTree,
  opts: BackupOptions,
  nested: Entry[],
  involved: boolean,
): EntryPlan {
  const outcome = newOutcome(entry.recipe, entry.remote, entry.local);
  const plan: EntryPlan = {
    entry,
    outcome,
    listing,
    rootIsDir: false,
    records: new Map(),
    fetch: [],
    links: [],
    dirs: [],
    deletions: [],
    oldCount: 0,
    nested,
    ceded: [],
    types: undefined,
  };
  if (listing.status === 'missing') {
    outcome.status = 'missing';
    return plan;
  }
  if (listing.status === 'denied') {
    outcome.status = 'denied';
    outcome.notes.push(listing.reason);
    return plan;
  }
  const root = listing.files.find((f) => f.rel === '');
  plan.rootIsDir = root?.type === 'dir';
  const skip = makeExcludeTest(entry.skip);
  const files = applyExcludes(listing.files, skip, (f) => excludeRel(entry.remote, f.rel, plan.rootIsDir));
  const protectedPaths: string[] = [];
  if (involved) plan.types = new Map(files.map((f) => [storedPath(entry.local, f.rel), f.type] as const));
  plan.ceded = nested.map((n) => n.local).filter((l) => !plan.types!.has(l));
  // A link above a nested entry's local path (the honest Capistrano case: `site/shared` a link here,
  // the nested entry's files listed through it) is recorded but never written: in the data folder that
  // path is a real folder holding the nested entry's files. Written, the link would replace the folder
  // and its files (their records left describing nothing), and a later restore would read through it.
  const shadows = (path: string) => nested.some((n) => n.local.startsWith(path + '/'));
  // What the data folder holds for this entry, read once (usually ahead, while the server listed). A
  // file is unchanged when its record matches the server and the stored file has the recorded size:
  // a stored copy that is gone, or damaged (emptied, an LFS pointer), is fetched again.
  // Read through a link above the entry (a data folder an older version left with a nested entry's
  // folder replaced by the outer one's link), the walk would describe another place: nothing is
  // stored here then, and the folder is made real again before anything is written (ensureDir).
  const walked = tree.walk(entry.local);
  const stored = linkAbove(tree, entry.local) ? new Map<string, StoredItem>() : walked;
  for (const f of files) {
    const path = storedPath(entry.local, f.rel);
    if (!f.readable) {
      // Unreadable: keep whatever we stored for it (and, for a folder, for everything below it).
      outcome.denied.push(path);
      protectedPaths.push(path);
      if (f.type === 'dir') {
        plan.records.set(path, recordOf(f, old.files[path]));
        plan.dirs.push(path);
      }
      continue;
    }
    if (f.type === 'dir') {
      plan.dirs.push(path);
      plan.records.set(path, recordOf(f, old.files[path]));
    } else if (f.type === 'symlink') {
      const prev = old.files[path];
      if (
        !shadows(path) &&
        !(prev?.type === 'symlink' && prev.target === f.target && stored.get(path)?.type === 'symlink')
      )
        plan.links.push({ path, target: f.target ?? '' });
      plan.records.set(path, recordOf(f, old.files[path]));
    } else if (f.type === 'file') {
      const prev = old.files[path];
      const have = stored.get(path);
      // Encrypted, the stored size is the ciphertext's and cannot be compared.
      const same =
        prev?.type === 'file' &&
        prev.size === f.size &&
        (opts.checksum || prev.mtime === f.mtime) &&
        have?.type === 'file' &&
        (opts.encryption !== undefined || have.size === f.size);
      if (same) {
        plan.records.set(path, recordOf(f, prev, prev.sha256));
        outcome.unchanged++;
      } else
        plan.fetch.push({
          path,
          file: f,
          stored:
            prev?.type === 'file' && have?.type === 'file' && have.size > 0
              ? { size: prev.size, sha256: prev.sha256 }
              : undefined,
        });
    } else {
      outcome.notes.push(`${f.rel || entry.remote}: a ${f.type} (device, fifo or socket) is recorded, not copied`);
      plan.records.set(path, recordOf(f, old.files[path]));
    }
  }
  decideDeletions(plan, old, stored, opts, protectedPaths, skip);
  return plan;
}

/**
 * Stored paths the server no longer has are deleted (with `delete`), except those below something
 * unreadable or excluded, which keep their stored copy and record.
 */
function decideDeletions(
  plan: EntryPlan,
  old: Manifest,
  stored: Map<string, StoredItem>,
  opts: BackupOptions,
  protectedPaths: string[],
  skip: ReturnType<typeof makeExcludeTest>,
): void {
  const { entry } = plan;
  // In the new plan: a record, a fetch or a link (records are by far the most: no combined copy).
  const fetched = new Set(plan.fetch.map((f) => f.path));
  const linked = new Set(plan.links.map((l) => l.path));
  const live = { has: (p: string) => plan.records.has(p) || fetched.has(p) || linked.has(p) };
  const isProtected = (p: string) => protectedPaths.some((q) => p === q || p.startsWith(q + '/'));
  const relOf = (p: string) => (p === entry.local ? '' : p.slice(entry.local.length + 1));
  const excluded = (p: string) =>
    relOf(p)
      .split('/')
      .some((_, i, parts) =>
        skip(parts.slice(0, i + 1).join('/'), i < parts.length - 1 || old.files[p]?.type === 'dir'),
      );
  // A root that turned from folder into file cannot keep children, whatever `delete` says.
  const rootBecameFile = !plan.rootIsDir;
  const deleted = new Set<string>();
  // Ceded paths are a nested entry's; the folders above them hold its files, whatever this entry lists.
  const ceded = (p: string) => plan.ceded.some((c) => p === c || p.startsWith(c + '/'));
  const holdsCeded = (p: string) => plan.ceded.some((c) => c.startsWith(p + '/'));
  const oldPaths =
    plan.ceded.length === 0 ? entryPaths(old, entry.local) : entryPaths(old, entry.local).filter((p) => !ceded(p));
  plan.oldCount = oldPaths.length;
  for (const p of oldPaths) {
    if (live.has(p)) continue;
    if (isProtected(p)) {
      // Unreadable now: the stored copy stays, and so must its record, or a restore would skip it.
      if (old.files[p] && !plan.records.has(p)) plan.records.set(p, old.files[p]);
      continue;
    }
    if (!rootBecameFile && (!opts.delete || excluded(p))) {
      plan.records.set(p, old.files[p]!);
      continue;
    }
    if (holdsCeded(p)) continue; // its record goes, the folder stays
    if (!below(p, deleted)) {
      plan.deletions.push(p);
      deleted.add(p);
    }
  }
  if (!opts.delete) return;
  // Leftovers not in the manifest (an interrupted run's temp files, files put there by hand).
  const liveFolders = new Set<string>();
  for (const paths of [plan.records.keys(), fetched, linked]) {
    for (const p of paths)
      for (let q = parentOf(p); q !== '' && !liveFolders.has(q); q = parentOf(q)) liveFolders.add(q);
  }
  for (const p of stored.keys()) {
    if (p === entry.local || live.has(p) || liveFolders.has(p) || isProtected(p) || deleted.has(p) || below(p, deleted))
      continue;
    if (plan.ceded.length > 0 && (ceded(p) || holdsCeded(p))) continue;
    const name = p.slice(p.lastIndexOf('/') + 1);
    if (!name.startsWith(TEMP_MARK) && excluded(p)) continue;
    plan.deletions.push(p);
    deleted.add(p);
  }
}

/** With `checksum`, a file is unchanged only when its SHA-256 on the server equals the stored one. */
async function confirmByChecksum(plans: EntryPlan[], transport: Transport, old: Manifest): Promise<void> {
  const candidates = plans.flatMap((p) =>
    [...p.records.entries()]
      .filter(([path, r]) => r.type === 'file' && old.files[path]?.sha256 && p.listing.status === 'ok')
      .map(([path]) => ({ p, path })),
  );
  const remoteOf = (p: EntryPlan, path: string) =>
    remotePathOf(p.entry.remote, path === p.entry.local ? '' : path.slice(p.entry.local.length + 1));
  const sums = await transport.checksums(candidates.map((c) => remoteOf(c.p, c.path)));
  for (const { p, path } of candidates) {
    if (sums.get(remoteOf(p, path)) === old.files[path]!.sha256) continue;
    const rel = path === p.entry.local ? '' : path.slice(p.entry.local.length + 1);
    const file = p.listing.status === 'ok' ? p.listing.files.find((f) => f.rel === rel) : undefined;
    if (!file) continue;
    p.records.delete(path);
    p.outcome.unchanged--;
    // It was judged unchanged but for its content: a stored copy of the same size is there to compare with.
    p.fetch.push({ path, file, stored: { size: old.files[path]!.size, sha256: old.files[path]!.sha256 } });
  }
}

/** What the plan would do to the entry's stored regular files (see shrink-guard.ts). */
function shrinkCounts(p: EntryPlan, old: Manifest): ShrinkCounts {
  const ceded = (q: string) => p.ceded.some((c) => q === c || q.startsWith(c + '/'));
  const fetched = new Map(p.fetch.map((f) => [f.path, f.file] as const));
  const counts: ShrinkCounts = {
    entry: `recipe ${safeText(p.entry.recipe)} (${safeText(p.entry.remote)} => ${safeText(p.entry.local)})`,
    stored: 0,
    deleted: 0,
    emptied: 0,
    left: 0,
    storedBytes: 0,
    lostBytes: 0,
  };
  for (const path of entryPaths(old, p.entry.local)) {
    const r = old.files[path]!;
    if (r.type !== 'file' || ceded(path)) continue;
    counts.stored++;
    counts.storedBytes += r.size;
    const incoming = fetched.get(path);
    if (incoming) {
      if (incoming.size === 0 && r.size > 0) counts.emptied++;
      counts.lostBytes += Math.max(0, r.size - incoming.size);
    } else if (p.records.get(path)?.type !== 'file') {
      counts.deleted++;
      counts.lostBytes += r.size;
    }
  }
  for (const r of p.records.values()) if (r.type === 'file' && r.size > 0) counts.left++;
  for (const f of p.fetch) if (f.file.size > 0) counts.left++;
  return counts;
}

/** Reads a stream to its end, keeping nothing: a skipped member must still be read past. */
async function drain(stream: Readable): Promise<void> {
  for await (const chunk of stream) void chunk;
}

function keepNotSent(target: { plan: EntryPlan; path: string }, old: Manifest, message: string): void {
  const prev = old.files[target.path];
  if (prev) target.plan.records.set(target.path, prev);
  const denied = /Permission denied/.test(message);
  if (denied) target.plan.outcome.denied.push(target.path);
  else
    target.plan.outcome.notes.push(
      `${target.path}: not sent by the server (${safeText(message.split('\n')[0] ?? 'no reason given')}); stored copy kept`,
    );
}

/** Is some folder above `path` in `folders`? (A walk up the path: a scan of the set would be quadratic.) */
function below(path: string, folders: Set<string>): boolean {
  if (folders.size === 0) return false;
  for (let q = parentOf(path); q !== ''; q = parentOf(q)) if (folders.has(q)) return true;
  return false;
}

function finishOutcome(p: EntryPlan): void {
  const o = p.outcome;
  o.deleted = p.deletions.length;
  if (o.status === 'missing' || o.status === 'denied') return;
  if (o.denied.length > 0) o.status = 'partial';
  else o.status = o.files > 0 || p.deletions.length > 0 || p.links.length > 0 ? 'changed' : 'unchanged';
}

function dryRunOutcome(p: EntryPlan): EntryOutcome {
  const o = p.outcome;
  if (o.status === 'missing' || o.status === 'denied') return o;
  o.files = p.fetch.length;
  o.bytes = p.fetch.reduce((n, f) => n + f.file.size, 0);
  o.deleted = p.deletions.length;
  o.status = o.denied.length > 0 ? 'partial' : o.files + o.deleted + p.links.length > 0 ? 'changed' : 'unchanged';
  o.notes.push('dry run: nothing was written');
  return o;
}
