import { UserError } from './errors.js';
import type { Settings } from './inputs.js';
import { backupMode } from './modes/backup.js';
import { makePlan, planMode, showPlan } from './modes/plan.js';
import { judge, problemsError, report, type ModeResult } from './modes/report.js';
import { restoreMode } from './modes/restore.js';
import { connectOptions, prepareJob } from './modes/server.js';
import { storeSalvage } from './modes/store.js';
import { verifyMode } from './modes/verify.js';
import type { Reporter } from './report/reporter.js';
import { connect } from './ssh/connect.js';

/**
 * Runs one mode end to end: inputs → plan → connect → mode → store → report. Each step is a call into
 * src/modes/: plan.ts, server.ts (what the server modes share), backup.ts, restore.ts, verify.ts,
 * store.ts, report.ts.
 */
export async function run(s: Settings, out: Reporter): Promise<void> {
  // Inputs → plan: all of `mode: plan`.
  const plan = await makePlan(s);
  await showPlan(s, plan, out);
  if (s.mode === 'plan') return planMode(plan, out);

  // Before connecting: the stores, the stored copy and the data folder, so a run that cannot finish fails first.
  const job = await prepareJob(s, plan, out);

  const session = await connect(connectOptions(s, out));
  let result: ModeResult;
  try {
    // Verify reports on its own: it has no outcome to store.
    if (s.mode === 'verify') return await verifyMode(job, session);
    result = s.mode === 'backup' ? await backupMode(job, session) : await restoreMode(job, session);
  } finally {
    session.close();
  }

  // Store (backup only, and only a backup that succeeded), then report.
  const problems = [...judge(s, result, out), ...(result.failed ?? [])];
  await storeSalvage(job, result, problems);
  await report(s, result, out);
  if (problems.length) throw new UserError(problemsError(problems));
}
