import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UserError } from './errors.js';
import type { Settings } from './inputs.js';
import { buildPlan, type Plan } from './plan/plan.js';
import { loadRecipes } from './recipes/index.js';
import { templateValues } from './recipes/template.js';
import { outcomeLine, outcomesMarkdown } from './report/outcome-report.js';
import { planLogLines, planMarkdown } from './report/plan-report.js';
import { safeText, type Reporter } from './report/reporter.js';
import { connect } from './ssh/connect.js';
import { backup } from './transfer/backup.js';
import { chooseTransport } from './transfer/choose.js';
import { planEntries } from './transfer/entries.js';
import { LocalTree } from './transfer/local-tree.js';
import { readManifest } from './transfer/manifest.js';
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
  if (s.mode === 'verify') throw new UserError('mode `verify` is not available in this version');
  await runServerMode(s, plan, out);
}

interface ModeResult {
  outcomes: EntryOutcome[];
  changed: boolean;
  extra: string[];
}

async function runServerMode(s: Settings, plan: Plan, out: Reporter): Promise<void> {
  const entries = planEntries(plan, s.exclude);
  const tree = new LocalTree(join(s.workspace, s.dataDir, s.domain));
  const manifest = readManifest(tree.root, s.domain);
  const session = await connect({
    target: endpoint(s.ssh),
    ...(s.ssh.proxy && { proxy: { host: s.ssh.proxy.host, port: s.ssh.proxy.port, username: s.ssh.proxy.username, ...secrets(s.ssh.proxy.key, s.ssh.passphrase, s.ssh.proxy.password) } }),
    hostKeys: { knownHosts: s.ssh.knownHosts, fingerprints: s.ssh.fingerprints, insecure: s.ssh.insecure },
    timeoutMs: s.ssh.timeoutMs,
    retries: s.ssh.retries,
    onWarning: (m) => out.warning(m),
    onInfo: (m) => out.info(m),
  });
  let result: ModeResult;
  try {
    const { transport, uid } = await chooseTransport(session, s);
    out.info(`Connected to ${s.ssh.username}@${s.ssh.host}:${s.ssh.port}; transport ${transport.name}${s.sudo ? ' (sudo)' : ''}`);
    if (s.mode === 'backup') {
      await runPrepare(plan, transport, s, out);
      const r = await out.group('Salvage', () => backup(entries, transport, tree, manifest, { checksum: s.checksum, delete: s.delete, dryRun: s.dryRun }));
      if (!s.dryRun) for (const d of plan.recipes.flatMap((x) => x.datadirs)) tree.ensureDir(d);
      result = { outcomes: r.outcomes, changed: r.changed, extra: [] };
    } else {
      const stamp = new Date().toISOString().replace(/[:.]/g, '-');
      const restores = plan.recipes.flatMap((r) => r.restores.map((x) => ({ ...x, recipe: r.name })));
      const r = await out.group('Restore', () =>
        restore(entries, restores, transport, tree, manifest, {
          conflict: s.conflict,
          dryRun: s.dryRun,
          chown: uid === 0,
          loginUid: uid,
          previousDir: `~/.remote-files/previous/${s.domain}/${stamp}`,
        }),
      );
      const extra: string[] = [];
      if (r.keptPrevious.paths.length) extra.push(`Previous content of ${r.keptPrevious.paths.length} replaced file(s) kept on the server in ${r.keptPrevious.dir}`);
      if (r.ownerNotSet.length) {
        const msg = `owner/group not set (log in as root or use sudo: true) for ${r.ownerNotSet.length} path(s): ${r.ownerNotSet.slice(0, 10).map(safeText).join(', ')}${r.ownerNotSet.length > 10 ? ', …' : ''}`;
        out.warning(msg);
        extra.push(msg);
      }
      for (const line of extra.slice(0, 1)) out.info(line);
      result = { outcomes: r.outcomes, changed: r.changed, extra };
    }
  } finally {
    session.close();
  }
  await report(s, result, out);
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

/** Outputs, log lines, step summary, JSON report; then fail if the outcomes say so. */
async function report(s: Settings, r: ModeResult, out: Reporter): Promise<void> {
  const t: RunTotals = totals(r.outcomes, r.changed);
  for (const o of r.outcomes) out.info(outcomeLine(o));
  const reportPath = join(process.env.RUNNER_TEMP || tmpdir(), `remote-files-${s.domain}-${s.mode}-report.json`);
  writeFileSync(reportPath, JSON.stringify({ mode: s.mode, domain: s.domain, dryRun: s.dryRun, totals: t, entries: r.outcomes, notes: r.extra }, null, 2) + '\n');
  for (const [name, value] of Object.entries(t)) out.setOutput(name, value);
  out.setOutput('report', reportPath);
  const title = `remote-files ${s.mode}${s.dryRun ? ' (dry run)' : ''} of \`${s.domain}\``;
  await out.summary(outcomesMarkdown(title, r.outcomes, t, r.extra));

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
  if (problems.length) throw new UserError(problems.length === 1 ? problems[0]! : `${problems.length} problems: ${problems.join('; ')}`);
}
