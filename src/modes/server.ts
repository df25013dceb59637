import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Settings } from '../inputs.js';
import type { Plan } from '../plan/plan.js';
import type { Reporter } from '../report/reporter.js';
import type { ConnectOptions } from '../ssh/connect.js';
import { checkDataFolder } from '../store/data-folder.js';
import { backupEncryption, type Encryption } from '../store/encryption.js';
import { checkStores, loadFromStores, makeStores, nothingStored, storeContext, type Loaded } from '../store/index.js';
import type { Store, StoreContext } from '../store/types.js';
import { chooseTransport, type Session } from '../transfer/choose.js';
import { planEntries, type Entry } from '../transfer/entries.js';
import { manifestPath, readManifest, type Manifest } from '../transfer/manifest/manifest.js';
import { migrateStoredNames } from '../transfer/manifest/migrate-names.js';
import type { Transport } from '../transfer/types.js';

/**
 * What every server mode (backup, restore, verify) shares: the stores and the stored copy, made ready
 * before connecting; the connection's options; the transport, chosen once connected.
 */
export interface ServerJob {
  s: Settings;
  out: Reporter;
  plan: Plan;
  entries: Entry[];
  /** `<workspace>/<data-dir>/<domain>`. */
  domainDir: string;
  stores: Store[];
  ctx: StoreContext;
  /** What loading the stored copy said (its summary lines are reported with the mode's). */
  loaded: Loaded;
  stored: StoredManifest;
  /** The paths listed together with the transport probe (see listedFirst). */
  prefetch: string[] | undefined;
  /** Set for backups only: the age recipients' encryption. */
  encryption: Encryption | undefined;
}

/**
 * Everything before connecting: a store that cannot work here, a stored copy that is not there, a data
 * folder that is not ours, bad age recipients or an unreadable manifest fail the run before the server
 * is reached.
 */
export async function prepareJob(s: Settings, plan: Plan, out: Reporter): Promise<ServerJob> {
  const entries = planEntries(plan, s.exclude);
  const domainDir = join(s.workspace, s.dataDir, s.domain);
  const stores = await makeStores({ names: s.store, commit: s.commit, artifact: s.artifact, cache: s.cache });
  const ctx = storeContext({ workspace: s.workspace, dataDir: s.dataDir, domain: s.domain }, domainDir, out);
  // Before connecting: a store that cannot work here would otherwise fail after the whole transfer.
  await checkStores(stores, ctx, s.mode === 'backup' && !s.dryRun);
  const encryption = s.mode === 'backup' ? await backupEncryption(s.age.recipients) : undefined;
  // A backup builds on the newest salvage, which a re-run's checkout may not hold (see CommitStore.baseline).
  // Before any store writes into the data folder: it must be a real folder of the workspace.
  checkDataFolder(s.workspace, s.dataDir, s.domain);
  const baselineNotes: string[] = [];
  if (s.mode === 'backup') for (const store of stores) baselineNotes.push(...((await store.baseline?.(ctx)) ?? []));
  for (const note of baselineNotes) out.info(note);
  // Restore needs the stored copy; a backup with an artifact or cache store starts from the last one
  // (incremental, and deletions mirrored) unless the checkout already holds it.
  const loaded =
    s.mode === 'restore' ||
    s.mode === 'verify' ||
    (s.mode === 'backup' && stores.some((x) => x.name !== 'commit') && !existsSync(manifestPath(domainDir)))
      ? await out.group('Load the stored copy', async () => {
          // Said here, inside its group and before what it describes (the restore, the comparison).
          const l = await loadFromStores(stores, ctx, s.mode !== 'backup');
          for (const line of l.summary) out.info(line);
          return l;
        })
      : { from: null, outputs: {}, summary: [] };
  loaded.summary.unshift(...baselineNotes);
  for (const [name, value] of Object.entries(loaded.outputs)) out.setOutput(name, value);
  checkDataFolder(s.workspace, s.dataDir, s.domain);
  // With `store: none` the workspace is the store: the same message as when a store holds nothing.
  if ((s.mode === 'restore' || s.mode === 'verify') && stores.length === 0 && !existsSync(manifestPath(domainDir)))
    throw nothingStored(s.domain, []);
  const stored = storedManifest(domainDir, s.domain, s.mode === 'backup' && !s.dryRun);
  const prefetch = listedFirst(s, plan, entries);
  // Without a listing to wait for, a manifest that cannot be read fails the run before it connects.
  if (!prefetch) stored.read();
  return { s, out, plan, entries, domainDir, stores, ctx, loaded, stored, prefetch, encryption };
}

/** The connection the inputs describe: target, jump host, host keys, timeouts. */
export function connectOptions(s: Settings, out: Reporter): ConnectOptions {
  return {
    target: endpoint(s.ssh),
    ...(s.ssh.proxy && {
      proxy: {
        host: s.ssh.proxy.host,
        port: s.ssh.proxy.port,
        username: s.ssh.proxy.username,
        ...secrets(s.ssh.proxy.key, s.ssh.passphrase, s.ssh.proxy.password),
      },
    }),
    hostKeys: {
      knownHosts: s.ssh.knownHosts,
      fingerprints: s.ssh.fingerprints,
      proxyFingerprints: s.ssh.proxy?.fingerprints ?? '',
      insecure: s.ssh.insecure,
    },
    timeoutMs: s.ssh.timeoutMs,
    retries: s.ssh.retries,
    onWarning: (m) => out.warning(m),
    onInfo: (m) => out.info(m),
  };
}

/**
 * Once connected: the transport, and the stored manifest, read while the server lists (with the
 * mode's own `whileListing`, if any), or now.
 */
export async function openTransport(
  job: ServerJob,
  session: Session,
  whileListing?: () => void,
): Promise<{ transport: Transport; uid: number; manifest: Manifest }> {
  const { s, stored, out } = job;
  const { transport, uid } = await chooseTransport(
    session,
    {
      transport: s.transport,
      compression: s.compression,
      sudo: s.sudo,
      concurrency: s.concurrency,
      ssh: { username: s.ssh.username },
    },
    job.prefetch,
    () => {
      stored.read();
      whileListing?.();
    },
  );
  const manifest = stored.get();
  out.info(
    `Connected to ${s.ssh.username}@${s.ssh.host}:${s.ssh.port}; transport ${transport.name}${s.sudo ? ' (sudo)' : ''}${transport.compression ? ` (${transport.compression})` : ''}`,
  );
  return { transport, uid, manifest };
}

export interface StoredManifest {
  read: () => void;
  get: () => Manifest;
  /** What migrating the data folder to git-safe names did. */
  notes: string[];
}

/**
 * The stored manifest, read once, when asked: during the server's listing where there is one. A
 * manifest that cannot be read is reported by get(), so read() can run inside a callback that must
 * not throw. For a backup, a data folder an older version wrote is first moved to git-safe names.
 */
function storedManifest(domainDir: string, domain: string, migrate: boolean): StoredManifest {
  let result: { manifest: Manifest } | { error: unknown } | undefined;
  const notes: string[] = [];
  const read = () => {
    if (result) return;
    try {
      const m = readManifest(domainDir, domain);
      if (!migrate) result = { manifest: m };
      else {
        const migrated = migrateStoredNames(domainDir, m);
        notes.push(...migrated.notes);
        result = { manifest: migrated.manifest };
      }
    } catch (error) {
      result = { error };
    }
  };
  return {
    read,
    notes,
    get: () => {
      read();
      if ('error' in result!) throw result.error;
      return result!.manifest;
    },
  };
}

/**
 * The paths whose listing can be made together with the transport probe: what a backup or verify lists
 * first, unless `remote_prepare` commands must run before (they may write the files to salvage).
 */
function listedFirst(s: Settings, plan: Plan, entries: Entry[]): string[] | undefined {
  if (entries.length === 0) return undefined;
  const prepares = s.prepare && !s.dryRun && plan.recipes.some((r) => r.prepare.length > 0);
  return s.mode === 'verify' || (s.mode === 'backup' && !prepares) ? entries.map((e) => e.remote) : undefined;
}

function endpoint(ssh: Settings['ssh']) {
  return { host: ssh.host, port: ssh.port, username: ssh.username, ...secrets(ssh.key, ssh.passphrase, ssh.password) };
}

function secrets(key: string, passphrase: string, password: string) {
  return { ...(key.trim() && { privateKey: key }), ...(passphrase && { passphrase }), ...(password && { password }) };
}
