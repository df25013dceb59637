import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from './errors.js';
import { privateTempDir } from './temp.js';
import type { Settings } from './inputs.js';
import { buildPlan, type Plan } from './plan/plan.js';
import { loadRecipes } from './recipes/index.js';
import { templateValues } from './recipes/template.js';
import { formatBytes, outcomeLine, outcomesMarkdown } from './report/outcome-report.js';
import { planLogLines, planMarkdown } from './report/plan-report.js';
import { safeText, type Reporter } from './report/reporter.js';
import { connect } from './ssh/connect.js';
import { backupEncryption, restoreSource } from './store/encryption.js';
import { loadFromStores, makeStores, saveToStores, storeContext } from './store/index.js';
import { backup } from './transfer/backup.js';
import { chooseTransport } from './transfer/choose.js';
import { planEntries } from './transfer/entries.js';
import { LocalTree } from './transfer/local-tree.js';
import { manifestPath, readManifest, type Manifest } from './transfer/manifest.js';
import { migrateStoredNames } from './transfer/migrate-names.js';
import { GIT_SAFE_NAMES } from './transfer/stored-names.js';
import { checkDataFolder, writeDataAttributes } from './store/data-folder.js';
import type { Entry } from './transfer/entries.js';
import { judgeVerify, verify } from './transfer/verify.js';
import { verifyLogLines, verifyMarkdown, verifyOutputs } from './report/verify-report.js';
import { totals, type EntryOutcome, type RunTotals } from './transfer/outcome.js';
import { restore } from './transfer/restore.js';
import type { Transport } from './transfer/types.js';

/** Inputs → plan: the first step of every mode, and all of `mode: plan`. */
export async function makePlan(s: Settings): Promise<Plan> {
  const ctx = { installDir: s.installDir, domain: s.domain };
  const recipes = await loadRecipes(
    { sources: s.recipes, sourcesAreDefault: s.recipesAreDefault, workspace: s.workspace, distro: s.distro, only: s.only },
    ctx,
  );
  return buildPlan(recipes, {
    domain: s.domain,
    installDir: s.installDir,
    dataDir: s.dataDir,
    values: templateValues(s.domain, s.installDir, s.vars),
    dollarBraces: (file) => !file.endsWith('.pm'),
  });
}

/** Runs one mode end to end: inputs → plan → transfer → (store) → report. */
export async function run(s: Settings, out: Reporter): Promise<void> {
  const plan = await makePlan(s);
  out.setOutput('plan', JSON.stringify(plan));
  await out.group('Plan', async () => {
    for (const line of planLogLines(plan)) out.info(line);
  });
  if (s.mode === 'plan') {
    await out.summary(planMarkdown(plan));
    return;
  }
  await runServerMode(s, plan, out);
}

interface ModeResult {
  outcomes: EntryOutcome[];
  changed: boolean;
  extra: string[];
}

async function runServerMode(s: Settings, plan: Plan, out: Reporter): Promise<void> {
  const entries = planEntries(plan, s.exclude);
  const domainDir = join(s.workspace, s.dataDir, s.domain);
  const stores = await makeStores(s);
  const ctx = storeContext(s, domainDir, out);
  const encryption = s.mode === 'backup' ? await backupEncryption(s.age.recipients) : undefined;
  // Restore needs the stored copy; a backup with an artifact or cache store starts from the last one
  // (incremental, and deletions mirrored) unless the checkout already holds it.
  const loaded =
    s.mode === 'restore' || s.mode === 'verify' || (s.mode === 'backup' && stores.some((x) => x.name !== 'commit') && !existsSync(manifestPath(domainDir)))
      ? await out.group('Load the stored copy', () => loadFromStores(stores, ctx, s.mode !== 'backup'))
      : { from: null, outputs: {}, summary: [] };
  for (const [name, value] of Object.entries(loaded.outputs)) out.setOutput(name, value);
  checkDataFolder(s.workspace, s.dataDir, s.domain);
  const stored = storedManifest(domainDir, s.domain, s.mode === 'backup' && !s.dryRun);
  const prefetch = listedFirst(s, plan, entries);
  // Without a listing to wait for, a manifest that cannot be read fails the run before it connects.
  if (!prefetch) stored.read();
  const session = await connect({
    target: endpoint(s.ssh),
    ...(s.ssh.proxy && { proxy: { host: s.ssh.proxy.host, port: s.ssh.proxy.port, username: s.ssh.proxy.username, ...secrets(s.ssh.proxy.key, s.ssh.passphrase, s.ssh.proxy.password) } }),
    hostKeys: { knownHosts: s.ssh.knownHosts, fingerprints: s.ssh.fingerprints, proxyFingerprints: s.ssh.proxy?.fingerprints ?? '', insecure: s.ssh.insecure },
    timeoutMs: s.ssh.timeoutMs,
    retries: s.ssh.retries,
    onWarning: (m) => out.warning(m),
    onInfo: (m) => out.info(m),
  });
  let result: ModeResult;
  try {
    // The backup's view of the data folder (encryption is set for backups only). It is walked while the
    // server lists too: one lstat per stored file.
    const tree = new LocalTree(domainDir, encryption && { encrypt: encryption.encrypt });
    const whileListing = () => {
      stored.read();
      if (s.mode === 'backup') tree.prewalk(entries.map((e) => e.local));
    };
    const { transport, uid } = await chooseTransport(session, s, prefetch, whileListing);
    const manifest = stored.get();
    out.info(`Connected to ${s.ssh.username}@${s.ssh.host}:${s.ssh.port}; transport ${transport.name}${s.sudo ? ' (sudo)' : ''}${transport.compression ? ` (${transport.compression})` : ''}`);
    if (s.mode === 'verify') return await runVerify(s, entries, transport, manifest, loaded.summary, out);
    if (s.mode === 'backup') {
      await runPrepare(plan, transport, s, out);
      const tag = encryption?.tag ?? '';
      let baseline = manifest;
      if ((manifest.encryption ?? '') !== tag && Object.keys(manifest.files).length > 0) {
        out.info(tag ? 'age-recipients changed or newly set: every file is salvaged and encrypted again' : 'age-recipients removed: every file is salvaged again, unencrypted');
        baseline = { ...manifest, files: {} };
      }
      for (const note of stored.notes) out.info(note);
      const r = await out.group('Salvage', () => backup(entries, transport, tree, baseline, { checksum: s.checksum, delete: s.delete, dryRun: s.dryRun, ...(encryption && { encryption: encryption.tag }) }));
      if (!s.dryRun) {
        for (const d of plan.recipes.flatMap((x) => x.datadirs)) tree.ensureDir(d);
        writeDataAttributes(domainDir);
      }
      result = { outcomes: r.outcomes, changed: r.changed, extra: [...loaded.summary, ...stored.notes] };
    } else {
      const source = await restoreSource(domainDir, manifest, s.age.identity);
      try {
        const storedTree = new LocalTree(source.root, { rawNames: manifest.names !== GIT_SAFE_NAMES });
        result = await runRestore(s, plan, entries, transport, storedTree, manifest, uid, out);
        result.extra.unshift(...loaded.summary);
      } finally {
        source.cleanup();
      }
    }
  } finally {
    session.close();
  }
  const problems = judge(s, result, out);
  // No partial salvage ever reaches a store: a backup that failed persists nothing.
  const saved = s.mode === 'backup' && !s.dryRun && problems.length === 0 && stores.length > 0 ? await out.group('Store', () => saveToStores(stores, ctx, result.changed)) : { outputs: {}, summary: [] };
  if (s.mode === 'backup' && problems.length > 0 && stores.length > 0) result.extra.push(`Nothing was stored (${stores.map((x) => x.name).join(', ')}): the backup failed`);
  result.extra.push(...saved.summary);
  for (const [name, value] of Object.entries(saved.outputs)) out.setOutput(name, value);
  await report(s, result, out);
  if (problems.length) throw new UserError(problems.length === 1 ? problems[0]! : `${problems.length} problems: ${problems.join('; ')}`);
}

/**
 * The stored manifest, read once, when asked: during the server's listing where there is one. A
 * manifest that cannot be read is reported by get(), so read() can run inside a callback that must
 * not throw. For a backup, a data folder an older version wrote is first moved to git-safe names.
 */
function storedManifest(domainDir: string, domain: string, migrate: boolean): { read: () => void; get: () => Manifest; notes: string[] } {
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

async function runVerify(s: Settings, entries: Entry[], transport: Transport, manifest: Manifest, extra: string[], out: Reporter): Promise<void> {
  const r = await out.group('Verify', () => verify(entries, transport, manifest, { checksum: s.checksum }));
  for (const line of verifyLogLines(r)) out.info(line);
  for (const line of extra) out.info(line);
  for (const [name, value] of Object.entries(verifyOutputs(r))) out.setOutput(name, value);
  writeReport(s, { mode: 'verify', domain: s.domain, checksum: s.checksum, ...r, notes: extra }, out);
  const { problems, warnings } = judgeVerify(r, { ifMissing: s.ifMissing, allowDenied: s.allowDenied, failOnDrift: s.failOnDrift, username: s.ssh.username });
  for (const w of warnings) out.warning(w);
  await out.summary(verifyMarkdown(`remote-files verify of \`${s.domain}\``, r) + extra.map((x) => `${safeText(x)}\n`).join(''));
  if (problems.length) throw new UserError(problems.length === 1 ? problems[0]! : `${problems.length} problems: ${problems.join('; ')}`);
}

async function runRestore(s: Settings, plan: Plan, entries: Entry[], transport: Transport, tree: LocalTree, manifest: Manifest, uid: number, out: Reporter): Promise<ModeResult> {
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const restores = plan.recipes.flatMap((r) => r.restores.map((x) => ({ ...x, recipe: r.name })));
  const r = await out.group('Restore', () =>
    restore(entries, restores, transport, tree, manifest, {
      conflict: s.conflict,
      dryRun: s.dryRun,
      chown: uid === 0,
      loginUid: uid,
      previousDir: `~/.remote-files/previous/${s.domain}/${stamp}`,
      specialBits: s.specialBits,
    }),
  );
  const extra: string[] = [];
  if (r.keptPrevious.paths.length) extra.push(`Previous content of ${r.keptPrevious.paths.length} replaced file(s) kept on the server in ${r.keptPrevious.dir}`);
  if (r.specialBitsDropped.length) {
    const n = r.specialBitsDropped.length;
    const msg = `setuid, setgid or sticky bit not restored on ${n} path(s) (set special-bits: true to restore them as recorded): ${r.specialBitsDropped.slice(0, 10).map(safeText).join(', ')}${n > 10 ? ', …' : ''}`;
    out.warning(msg);
    extra.push(msg);
  }
  if (r.ownerNotSet.length) {
    const msg = `owner/group not set (log in as root or use sudo: true) for ${r.ownerNotSet.length} path(s): ${r.ownerNotSet.slice(0, 10).map(safeText).join(', ')}${r.ownerNotSet.length > 10 ? ', …' : ''}`;
    out.warning(msg);
    extra.push(msg);
  }
  return { outcomes: r.outcomes, changed: r.changed, extra };
}

function endpoint(ssh: Settings['ssh']) {
  return { host: ssh.host, port: ssh.port, username: ssh.username, ...secrets(ssh.key, ssh.passphrase, ssh.password) };
}

function secrets(key: string, passphrase: string, password: string) {
  return { ...(key.trim() && { privateKey: key }), ...(passphrase && { passphrase }), ...(password && { password }) };
}

/** remote_prepare commands run before the fetch; a failure is a warning: yesterday's dump beats none. */
async function runPrepare(plan: Plan, transport: Transport, s: Settings, out: Reporter): Promise<void> {
  const commands = plan.recipes.flatMap((r) => r.prepare.map((c) => ({ recipe: r.name, command: c })));
  if (commands.length === 0 || !s.prepare) return;
  if (!transport.canRunCommands) {
    out.warning(`${commands.length} remote_prepare command(s) skipped: the account has no shell (SFTP only)`);
    return;
  }
  if (s.dryRun) {
    out.info(`dry run: ${commands.length} remote_prepare command(s) not run`);
    return;
  }
  await out.group('Prepare', async () => {
    for (const { recipe, command } of commands) {
      const r = await transport.run(command);
      if (r.code === 0) out.info(`${recipe}: ${safeText(command)} — ok`);
      else out.warning(`${recipe}: prepare command failed (exit ${r.code}): ${safeText(command)}\n${safeText(r.output)}`);
    }
  });
}

/** Outputs, log lines, step summary and the JSON report of a backup or restore. */
async function report(s: Settings, r: ModeResult, out: Reporter): Promise<void> {
  const t: RunTotals = totals(r.outcomes, r.changed);
  // One log group per recipe, one line per entry; the totals and notes stay visible outside the groups.
  for (const recipe of new Set(r.outcomes.map((o) => o.recipe))) {
    await out.group(recipe, async () => {
      for (const o of r.outcomes.filter((x) => x.recipe === recipe)) {
        out.info(outcomeLine(o));
        for (const note of o.notes) out.info(`  note: ${safeText(note)}`);
      }
    });
  }
  out.info(`${s.mode}${s.dryRun ? ' (dry run)' : ''}: ${t.files} file(s), ${formatBytes(t.bytes)} moved, ${t.unchanged} unchanged, ${t.missing} missing, ${t.denied} denied`);
  for (const line of r.extra) out.info(line);
  writeReport(s, { mode: s.mode, domain: s.domain, dryRun: s.dryRun, totals: t, entries: r.outcomes, notes: r.extra }, out);
  for (const [name, value] of Object.entries(t)) out.setOutput(name, value);
  const title = `remote-files ${s.mode}${s.dryRun ? ' (dry run)' : ''} of \`${s.domain}\``;
  await out.summary(outcomesMarkdown(title, r.outcomes, t, r.extra));
}

/**
 * The JSON report of the run, in a private folder of the temp folder (see privateTempDir), created
 * exclusively (`wx`: never through a link, never over a file) and readable by us alone; its path is the
 * `report` output.
 */
function writeReport(s: Settings, data: object, out: Reporter): void {
  const path = join(privateTempDir('remote-files-report-'), `remote-files-${s.domain}-${s.mode}-report.json`);
  writeFileSync(path, JSON.stringify(data, null, 2) + '\n', { flag: 'wx', mode: 0o600 });
  out.setOutput('report', path);
}

/** What makes the run fail (missing with if-missing: error, denied without allow-denied); warns the rest. */
function judge(s: Settings, r: ModeResult, out: Reporter): string[] {
  const problems: string[] = [];
  for (const o of r.outcomes.filter((x) => x.status === 'missing')) {
    const msg = `${o.recipe}: ${safeText(o.remote)} is missing${s.mode === 'backup' ? ' on the server; the stored copy is kept' : ''}`;
    if (s.ifMissing === 'error') problems.push(msg);
    else if (s.ifMissing === 'warn') out.warning(msg);
  }
  const denied = r.outcomes.filter((o) => o.status === 'denied' || o.denied.length > 0);
  for (const o of denied) {
    const msg = `${o.recipe}: ${o.status === 'denied' ? safeText(o.remote) : `${o.denied.length} path(s) in ${safeText(o.remote)}`} not readable by ${s.ssh.username}${o.denied.length ? ` (${o.denied.slice(0, 5).map(safeText).join(', ')})` : ''}; stored copy kept. Use sudo: true or allow-denied: true`;
    if (s.allowDenied) out.warning(msg);
    else problems.push(msg);
  }
  return problems;
}
