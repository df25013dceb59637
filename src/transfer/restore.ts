import { UserError } from '../errors.js';
import type { PlanRestore } from '../plan/plan.js';
import { safeText } from '../report/reporter.js';
import { ownPaths, remotePathOf, UPLOAD_TEMP_NAME, type Entry } from './entries.js';
import { shQuote } from './shell.js';
import { treeOrder } from './tree-order.js';
import type { LocalTree } from './local/tree.js';
import { entryPaths, type Manifest, type ManifestFile, modeText } from './manifest/manifest.js';
import { newOutcome, type EntryOutcome } from '../model/outcome.js';
import type { Progress } from '../report/progress.js';
import { WriteDeniedError, type EntryListing, type OutgoingItem, type RemoteFile, type Transport } from './types.js';

export interface RestoreOptions {
  conflict: 'overwrite' | 'keep' | 'fail';
  dryRun: boolean;
  /** Owners can be set (the login is root, or sudo is on). */
  chown: boolean;
  loginUid: number;
  /** Where replaced files are kept on the server ("~/" = the login's home). */
  previousDir: string;
  /** Restore setuid, setgid and sticky bits as recorded (input `special-bits`); otherwise they are dropped. */
  specialBits: boolean;
  /** Told what is about to be uploaded, then of the bytes and files as they leave. */
  progress?: Progress;
}

export interface RestoreResult {
  outcomes: EntryOutcome[];
  changed: boolean;
  /** Server paths whose previous content was kept, and where. */
  keptPrevious: { dir: string; paths: string[] };
  /** Server paths whose owner/group could not be set. */
  ownerNotSet: string[];
  /** Stored paths whose setuid, setgid or sticky bit was not restored. */
  specialBitsDropped: string[];
  /** `restores` owners not applied (an account that does not exist yet, or no way to look it up): warnings. */
  warnings: string[];
}

export interface NamedRestore extends PlanRestore {
  recipe: string;
}

/**
 * Puts each stored entry back at its server path, then applies the recipes' `restores` with the
 * framework's rule: never over live state, never from an empty salvage.
 */
export async function restore(
  entries: Entry[],
  restores: NamedRestore[],
  transport: Transport,
  tree: LocalTree,
  stored: Manifest,
  opts: RestoreOptions,
): Promise<RestoreResult> {
  const { manifest: m, dropped } = opts.specialBits ? { manifest: stored, dropped: [] } : withoutSpecialBits(stored);
  const result: RestoreResult = {
    outcomes: [],
    changed: false,
    keptPrevious: { dir: opts.previousDir, paths: [] },
    ownerNotSet: [],
    specialBitsDropped: dropped,
    warnings: [],
  };
  // The framework's restore_state goes through the destinations in sorted order.
  restores = [...restores].sort((a, b) => (a.to < b.to ? -1 : a.to > b.to ? 1 : 0));
  const roots = [...entries.map((e) => e.remote), ...restores.map((r) => r.to)];
  const listed = await transport.list(roots);
  // Temp files an interrupted SFTP restore left beside their places: never state (neither a conflict
  // nor "live state" that would block a `restores` copy), so they are set aside here and removed.
  const stale = listed.map((l, i) => staleTemps(l, roots[i]!));
  const listings = listed.map(withoutStaleTemps);
  refuseDamagedCopy(entries, tree, m);
  const jobs = entries.map((e, i) => planEntryRestore(e, listings[i]!, tree, m, opts));
  restoreEachPathOnce(jobs);
  const conflicts = jobs.flatMap((j) => j.conflicts);
  if (opts.conflict === 'fail' && conflicts.length > 0) {
    throw new UserError(
      `conflict: fail — ${conflicts.length} file(s) on the server differ from the stored copy, nothing was restored: ${conflicts.slice(0, 10).map(safeText).join(', ')}${conflicts.length > 10 ? ', …' : ''}`,
    );
  }
  // A file written over a folder would land inside it (or fail half way): refused before anything moves.
  const folders = jobs.flatMap((j) => j.folderInTheWay);
  if (folders.length > 0) {
    throw new UserError(
      `the server has a folder where the stored copy has a file, nothing was restored: ${folders.slice(0, 10).map(safeText).join(', ')}${folders.length > 10 ? ', …' : ''}. Move the folder away, or restore with conflict: keep`,
    );
  }
  for (const job of jobs) planProgress(job, opts);
  for (const job of jobs) await runJob(job, transport, opts, result);
  const owners = await lookUpOwners(restores, transport);
  for (const [i, r] of restores.entries()) {
    // Each destination is judged as it is now: an entry or an earlier destination may have filled it.
    const now = result.changed
      ? (await transport.list([r.to])).map(withoutStaleTemps)[0]!
      : listings[entries.length + i]!;
    const job = planCopyRestore(r, now, tree, m, owners, opts, result.warnings);
    jobs.push(job);
    planProgress(job, opts);
    await runJob(job, transport, opts, result);
  }
  if (!opts.dryRun) await removeStaleTemps(stale, jobs, transport);
  result.outcomes = jobs.map((j) => j.outcome);
  return result;
}

/**
 * The manifest with setuid, setgid and sticky bits cleared. The manifest is input (anyone who can push
 * edits it): `6755` with uid 0 would make a setuid-root file on the server. Those bits come back only
 * when the workflow asks for them.
 */
function withoutSpecialBits(m: Manifest): { manifest: Manifest; dropped: string[] } {
  const dropped: string[] = [];
  const files: Record<string, ManifestFile> = {};
  for (const [path, r] of Object.entries(m.files)) {
    const mode = parseInt(r.mode, 8);
    if ((mode & 0o7000) === 0) files[path] = r;
    else {
      dropped.push(path);
      files[path] = { ...r, mode: modeText(mode & 0o777) };
    }
  }
  return { manifest: dropped.length ? { ...m, files } : m, dropped };
}

/**
 * Every stored file must be there with the size its record gives, before anything is uploaded: a
 * stored copy damaged since its backup (emptied, half copied, an LFS pointer from a checkout without
 * LFS) would otherwise be put on the server as if it were the salvage.
 */
function refuseDamagedCopy(entries: Entry[], tree: LocalTree, m: Manifest): void {
  const damaged: string[] = [];
  const linked = new Set<string>();
  for (const e of entries) {
    for (const path of entryPaths(m, e.local)) {
      const r = m.files[path]!;
      if (r.type !== 'file' && r.type !== 'dir') continue;
      // Checked component by component: the data folder is input (anyone who can push writes it), and a
      // link in it (`www -> /proc/self`) would make the upload read the runner's own files.
      const { item: have, through } = tree.inspect(path);
      if (through !== undefined) linked.add(through);
      else if (have?.type === 'symlink') linked.add(path);
      else if (r.type === 'dir') continue;
      else if (have?.type !== 'file') damaged.push(`${path} (missing)`);
      else if (have.size !== r.size) damaged.push(`${path} (${have.size} bytes, the manifest records ${r.size})`);
    }
  }
  if (linked.size > 0) {
    const names = [...linked].sort();
    throw new UserError(
      `the stored copy holds symbolic links where its manifest records files or folders, nothing was restored: ${names.slice(0, 10).map(safeText).join(', ')}${names.length > 10 ? `, and ${names.length - 10} more` : ''}. ` +
        'remote-files never reads through a link in the data folder. Replace them with the stored files (a backup from the old server fetches them again), or take the data folder from the store’s history.',
    );
  }
  if (damaged.length === 0) return;
  throw new UserError(
    `the stored copy is damaged, nothing was restored: ${damaged.slice(0, 10).map(safeText).join(', ')}${damaged.length > 10 ? `, and ${damaged.length - 10} more` : ''}. ` +
      'A backup from the old server fetches these again; or take the data folder from the store’s history (with Git LFS, check out with `lfs: true`).',
  );
}

/** A file or link (SFTP writes both under a temp name) named as an upload's temp. */
function isUploadTemp(f: RemoteFile): boolean {
  return (f.type === 'file' || f.type === 'symlink') && UPLOAD_TEMP_NAME.test(f.rel.slice(f.rel.lastIndexOf('/') + 1));
}

function staleTemps(listing: EntryListing, root: string): string[] {
  return listing.status === 'ok' ? listing.files.filter(isUploadTemp).map((f) => remotePathOf(root, f.rel)) : [];
}

function withoutStaleTemps(listing: EntryListing): EntryListing {
  return listing.status === 'ok' ? { status: 'ok', files: listing.files.filter((f) => !isUploadTemp(f)) } : listing;
}

/** After the uploads, so a cut now costs nothing new; a refusal is reported, not fatal (they hold no state). */
async function removeStaleTemps(stale: string[][], jobs: Job[], transport: Transport): Promise<void> {
  for (const [i, paths] of stale.entries()) {
    if (paths.length === 0) continue;
    const notes = jobs[i]!.outcome.notes;
    await transport.removeFiles(paths).then(
      () => notes.push(`removed ${paths.length} temp file(s) an interrupted restore left`),
      (err: unknown) =>
        notes.push(
          `could not remove ${paths.length} temp file(s) an interrupted restore left: ${safeText((err as Error).message)}`,
        ),
    );
  }
}

interface Job {
  outcome: EntryOutcome;
  root: string;
  rootType: OutgoingItem['type'];
  items: OutgoingItem[];
  keepPrevious: string[];
  conflicts: string[];
  /** Server paths of stored files (or links) where the server now has a folder. */
  folderInTheWay: string[];
  /** Stored folders the server lacks (an emptied server): made even when no file needs writing. */
  makesDirs: boolean;
}

/** Is there anything to upload: a file or link, or a folder the server lacks? Else the job does nothing. */
function worthUploading(job: Job, items: OutgoingItem[]): OutgoingItem[] {
  return job.makesDirs || items.some((i) => i.type !== 'dir') ? items : [];
}

/**
 * What an entry puts back: its own records (see ownPaths: a nested entry's files below a link this
 * entry recorded are that entry's to restore), without such a link, which would stand where they go.
 */
function storedItems(local: string, m: Manifest, tree: LocalTree, notes?: string[]): OutgoingItem[] {
  const own = ownPaths(m, local);
  for (const link of own.shadowed)
    notes?.push(
      `${safeText(link)} was stored as a link to ${safeText(m.files[link]!.target ?? '')} holding another entry's files; not recreated: that entry restores them through whatever the server has there`,
    );
  const shadowed = new Set(own.shadowed);
  return own.paths
    .filter((p) => !shadowed.has(p))
    .sort(treeOrder)
    .map((path) => {
      const r = m.files[path]!;
      const rel = path === local ? '' : path.slice(local.length + 1);
      return toItem(rel, r, r.type === 'file' ? tree.resolve(path) : undefined);
    })
    .filter((i): i is OutgoingItem => i !== null);
}

function toItem(rel: string, r: ManifestFile, source: string | undefined): OutgoingItem | null {
  if (r.type === 'other') return null;
  return {
    rel,
    type: r.type,
    size: r.size,
    mtime: r.mtime,
    mode: parseInt(r.mode, 8),
    uid: r.uid,
    gid: r.gid,
    user: r.user,
    group: r.group,
    ...(r.target !== undefined && { target: r.target }),
    ...(source && { source }),
  };
}

function planEntryRestore(e: Entry, listing: EntryListing, tree: LocalTree, m: Manifest, opts: RestoreOptions): Job {
  const outcome = newOutcome(e.recipe, e.remote, e.local);
  const stored = storedItems(e.local, m, tree, outcome.notes);
  const root = stored.find((i) => i.rel === '');
  const job: Job = {
    outcome,
    root: e.remote,
    rootType: root?.type ?? 'dir',
    items: [],
    keepPrevious: [],
    conflicts: [],
    folderInTheWay: [],
    makesDirs: false,
  };
  if (!root) {
    outcome.status = 'missing';
    outcome.notes.push('nothing stored for this entry');
    return job;
  }
  if (listing.status === 'denied') {
    outcome.status = 'denied';
    outcome.denied.push(e.remote);
    return job;
  }
  const onServer = new Map<string, RemoteFile>(listing.status === 'ok' ? listing.files.map((f) => [f.rel, f]) : []);
  if (root.type === 'symlink') return planLinkRoot(job, root, onServer.get(''));
  for (const item of stored) {
    const there = onServer.get(item.rel);
    if (item.type === 'dir') {
      job.items.push(item);
      continue;
    }
    if (!there) {
      job.items.push(item);
      continue;
    }
    if (sameContent(item, there)) {
      outcome.unchanged++;
      continue;
    }
    job.conflicts.push(remotePathOf(e.remote, item.rel));
    if (opts.conflict === 'keep') {
      outcome.notes.push(
        `kept the server's ${remotePathOf(e.remote, item.rel)} (differs from the stored copy; conflict: keep)`,
      );
      continue;
    }
    if (there.type === 'dir') job.folderInTheWay.push(remotePathOf(e.remote, item.rel));
    job.items.push(item);
    if (there.type === 'file' || there.type === 'symlink') job.keepPrevious.push(item.rel);
  }
  job.makesDirs = job.items.some((i) => i.type === 'dir' && !onServer.has(i.rel));
  job.items = worthUploading(job, job.items);
  return job;
}

/**
 * An entry whose root was stored as a link (a crafted manifest can say so of any entry) is put back
 * only where the server has nothing: the link may point anywhere on the server (`/etc`), so it is never
 * entered, searched through, or made to replace what is there. The transports refuse it too, should
 * something appear there before the upload (an outer entry's folder restored first).
 */
function planLinkRoot(job: Job, root: OutgoingItem, there: RemoteFile | undefined): Job {
  if (!there) {
    job.items = [root];
    return job;
  }
  if (sameContent(root, there)) {
    job.outcome.unchanged++;
    return job;
  }
  job.conflicts.push(job.root);
  job.outcome.notes.push(
    `kept the server's ${safeText(job.root)}: it was stored as a link to ${safeText(root.target ?? '')}, and a link is put back only where the server has nothing`,
  );
  return job;
}

/**
 * Entries that name one server path (two recipes salvaging /etc/app/app.conf, a file inside a folder
 * another entry salvages) each stored a copy; it goes back once, by the first entry that puts it, and
 * is neither written again nor a conflict for the later ones (whose listing, made before, would show
 * the first one's write as a difference). A later entry whose stored copy differs says so.
 */
function restoreEachPathOnce(jobs: Job[]): void {
  const claimed = new Map<string, { item: OutgoingItem; by: Job }>();
  for (const job of jobs) {
    const place = (rel: string) => remotePathOf(job.root, rel);
    const kept: OutgoingItem[] = [];
    for (const item of job.items) {
      const first = item.type === 'dir' ? undefined : claimed.get(place(item.rel));
      if (!first) {
        if (item.type !== 'dir') claimed.set(place(item.rel), { item, by: job });
        kept.push(item);
        continue;
      }
      job.conflicts = job.conflicts.filter((c) => c !== place(item.rel));
      job.keepPrevious = job.keepPrevious.filter((rel) => rel !== item.rel);
      const same =
        first.item.type === item.type &&
        first.item.size === item.size &&
        first.item.mtime === item.mtime &&
        first.item.target === item.target;
      if (same) job.outcome.unchanged++;
      job.outcome.notes.push(
        `${safeText(place(item.rel))} is restored once, from ${safeText(first.by.outcome.local)} (recipe ${first.by.outcome.recipe})${same ? '' : '; the copy stored here differs from it and was not used'}`,
      );
    }
    job.items = worthUploading(job, kept);
  }
}

/** Unchanged means same type and size and mtime (files) or target (links); folders are always refreshed. */
function sameContent(item: OutgoingItem, there: RemoteFile): boolean {
  if (item.type !== there.type) return false;
  if (item.type === 'symlink') return item.target === there.target;
  return item.size === there.size && item.mtime === there.mtime;
}

/** Ids of the owner and group names `restores` use, as the server knows them; null: it cannot be asked. */
type OwnerIds = { users: Map<string, number | null>; groups: Map<string, number | null> } | null;

/** One look-up on the server (getent, as prepare commands run) for every name the restores give. */
async function lookUpOwners(restores: NamedRestore[], transport: Transport): Promise<OwnerIds> {
  const users = new Set<string>();
  const groups = new Set<string>();
  for (const r of restores) {
    if (!r.owner) continue;
    const [user, group] = r.owner.split(':');
    if (user && !NUMERIC.test(user)) users.add(user);
    if (group && !NUMERIC.test(group)) groups.add(group);
  }
  if (users.size + groups.size === 0) return { users: new Map(), groups: new Map() };
  if (!transport.canRunCommands) return null;
  // Names are user or user:group of [A-Za-z0-9_.-] (checked by the plan), quoted all the same.
  const words = [...[...users].map((u) => `u:${u}`), ...[...groups].map((g) => `g:${g}`)].map(shQuote).join(' ');
  const script = `for x in ${words}; do n=\${x#?:}; case $x in u:*) db=passwd;; *) db=group;; esac; printf '%s %s\\n' "$x" "$(getent "$db" "$n" | cut -d: -f3)"; done`;
  const { code, output } = await transport.run(script);
  if (code !== 0) return null;
  const ids: NonNullable<OwnerIds> = { users: new Map(), groups: new Map() };
  for (const line of output.split('\n')) {
    const m = /^([ug]):(\S+) ?(\d*)$/.exec(line.trim());
    if (m) (m[1] === 'u' ? ids.users : ids.groups).set(m[2]!, m[3] ? Number(m[3]) : null);
  }
  return ids;
}

const NUMERIC = /^\d+$/;

/** What `owner` gives a restored item: a name with its id, a bare id, or null (left as salvaged). */
function ownerPart(
  name: string | undefined,
  known: Map<string, number | null> | undefined,
): { name: string; id: number } | null | undefined {
  if (!name) return undefined;
  if (NUMERIC.test(name)) return { name, id: Number(name) };
  const id = known?.get(name);
  return id === undefined || id === null ? null : { name, id };
}

/**
 * A `restores` entry puts the salvage of `local` (a stored entry or a folder inside one) at `to` the
 * way the framework's restore_state does, in sorted order of destinations:
 * - nothing happens when nothing was salvaged there, or the salvage is an empty folder or a 0-byte
 *   file (what an unreadable path looks like), or when `to` already holds anything (a re-provision
 *   never overwrites live state with a partial copy);
 * - a folder goes into the (missing or empty) folder `to`, which keeps its own top mode and owner
 *   when it exists (cp -a salvage/. to/); a file replaces a missing or 0-byte `to` (mv);
 * - `owner` is applied to everything (chown -R; `user` alone leaves the group as salvaged): an
 *   account the server does not know yet is a warning and leaves the salvaged owner;
 * - `mode` is applied to everything but links (chmod -R); setuid, setgid and sticky bits in it are
 *   given to folders, and to files only with `special-bits: true`.
 * Nothing below `to` is followed: the transports' rules for every upload.
 */
function planCopyRestore(
  r: NamedRestore,
  listing: EntryListing,
  tree: LocalTree,
  m: Manifest,
  owners: OwnerIds,
  opts: RestoreOptions,
  warnings: string[],
): Job {
  const outcome = newOutcome(r.recipe, r.to, r.local);
  const stored = storedItems(r.local, m, tree);
  const root = stored.find((i) => i.rel === '');
  const job: Job = {
    outcome,
    root: r.to,
    rootType: root?.type ?? 'dir',
    items: [],
    keepPrevious: [],
    conflicts: [],
    folderInTheWay: [],
    makesDirs: false,
  };
  if (!root || root.type === 'symlink') {
    outcome.notes.push(`restores: nothing salvaged in ${r.local}; ${r.to} left as it is`);
    return job;
  }
  if (root.type === 'dir' && stored.length === 1) {
    outcome.notes.push(`restores: the salvage ${r.local} is an empty folder; ${r.to} left as it is`);
    return job;
  }
  if (root.type === 'file' && root.size === 0) {
    outcome.notes.push(`restores: the salvage ${r.local} is an empty file; ${r.to} left as it is`);
    return job;
  }
  const there = listing.status === 'ok' ? listing.files.find((f) => f.rel === '') : undefined;
  const empty =
    listing.status === 'missing' ||
    (listing.status === 'ok' &&
      listing.files.length === 1 &&
      (there?.type === 'dir' || (there?.type === 'file' && there.size === 0)));
  if (listing.status === 'denied') {
    outcome.notes.push(`restores: ${r.to} cannot be read by the login, so it may hold state; left as it is`);
    return job;
  }
  if (!empty) {
    outcome.notes.push(`restores: ${r.to} already holds state; left as it is`);
    return job;
  }
  if (there && there.type !== root.type) {
    outcome.notes.push(
      `restores: ${r.to} is an empty ${there.type === 'dir' ? 'folder' : 'file'} where the salvage ${r.local} is a ${root.type === 'dir' ? 'folder' : 'file'}; left as it is`,
    );
    return job;
  }
  const [userName, groupName] = (r.owner ?? '').split(':');
  const user = ownerPart(userName, owners?.users);
  const group = ownerPart(groupName, owners?.groups);
  for (const [name, part, kind] of [
    [userName, user, 'account'],
    [groupName, group, 'group'],
  ] as const) {
    if (part !== null) continue;
    warnings.push(
      owners === null
        ? `${r.recipe}: restores ${safeText(r.to)}: owner ${kind} "${name}" cannot be looked up (the login has no shell); left as salvaged. Give it as ids ("33:33") to have it set over SFTP`
        : `${r.recipe}: restores ${safeText(r.to)}: the ${kind} "${name}" does not exist on the server yet; left as salvaged`,
    );
  }
  const mode = r.mode ? parseInt(r.mode, 8) : null;
  job.items = stored.map((i) => {
    // An existing empty folder keeps its own top mode and owner, as `cp -a salvage/. to/` leaves them.
    const base =
      i.rel === '' && there?.type === 'dir'
        ? { ...i, mode: there.mode, uid: there.uid, gid: there.gid, user: there.user, group: there.group }
        : i;
    return {
      ...base,
      ...(user && { user: user.name, uid: user.id }),
      ...(group && { group: group.name, gid: group.id }),
      ...(mode !== null &&
        i.type !== 'symlink' && { mode: i.type === 'dir' || opts.specialBits ? mode : mode & 0o777 }),
    };
  });
  return job;
}

/** What a job will upload (the same test as runJob's), told to the progress before anything moves. */
function planProgress(job: Job, opts: RestoreOptions): void {
  const files = job.items.filter((i) => i.type !== 'dir');
  if (opts.dryRun || !opts.progress || job.outcome.status !== 'unchanged' || files.length === 0) return;
  opts.progress.planned(
    files.length,
    files.reduce((n, i) => n + (i.type === 'file' ? i.size : 0), 0),
  );
}

async function runJob(job: Job, transport: Transport, opts: RestoreOptions, result: RestoreResult): Promise<void> {
  const files = job.items.filter((i) => i.type !== 'dir');
  if (job.outcome.status !== 'unchanged' || job.items.length === 0) return;
  job.outcome.files = files.length;
  job.outcome.bytes = files.reduce((n, i) => n + (i.type === 'file' ? i.size : 0), 0);
  job.outcome.status = 'changed';
  if (opts.dryRun) {
    job.outcome.notes.push('dry run: nothing was written');
    return;
  }
  // With an unknown login uid (SFTP) owners are attempted and the server says which it refused.
  const tryChown = opts.chown || opts.loginUid < 0;
  let uploaded: Awaited<ReturnType<Transport['upload']>>;
  try {
    uploaded = await transport.upload({
      root: job.root,
      rootType: job.rootType,
      items: job.items,
      keepPrevious: job.keepPrevious,
      previousDir: opts.previousDir,
      chown: tryChown,
      ...(opts.progress && { progress: opts.progress }),
    });
  } catch (err) {
    if (!(err instanceof WriteDeniedError)) throw err;
    // The login user may not write there: this entry is denied (judged with allow-denied), the others go on.
    job.outcome.status = 'denied';
    job.outcome.files = 0;
    job.outcome.bytes = 0;
    job.outcome.denied.push(job.root);
    job.outcome.notes.push(`not written: ${err.message} (sudo: true writes as root)`);
    return;
  }
  result.changed = true;
  result.keptPrevious.paths.push(...job.keepPrevious.map((rel) => remotePathOf(job.root, rel)));
  const refused = tryChown ? uploaded.ownerNotSet : job.items.filter((i) => i.uid !== opts.loginUid).map((i) => i.rel);
  result.ownerNotSet.push(...refused.map((rel) => remotePathOf(job.root, rel)));
}
