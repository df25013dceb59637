import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Settings } from '../inputs.js';
import { totals, type EntryOutcome, type RunTotals } from '../model/outcome.js';
import { formatBytes, outcomeLine, outcomesMarkdown } from '../report/outcome-report.js';
import { safeText, type Reporter } from '../report/reporter.js';
import { privateTempDir } from '../temp.js';
import { judged, judgeEntries } from '../transfer/judge.js';

/** What a backup or restore hands to the store and report steps. */
export interface ModeResult {
  outcomes: EntryOutcome[];
  changed: boolean;
  extra: string[];
  /** A backup that did not run (`new-server: skip`): nothing is stored. */
  skipped?: boolean;
  /** What fails the run once it is reported (an after-restore command that failed). */
  failed?: string[];
  /** Lines of `extra` already in the log, inside the group they belong to: the summary has them, the log not twice. */
  inLog?: string[];
}

/** Outputs, log lines, step summary and the JSON report of a backup or restore. */
export async function report(s: Settings, r: ModeResult, out: Reporter): Promise<void> {
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
  out.info(
    `${s.mode}${s.dryRun ? ' (dry run)' : ''}: ${t.files} file(s), ${formatBytes(t.bytes)} moved, ${t.unchanged} unchanged, ${t.missing} missing, ${t.denied} denied`,
  );
  const inLog = new Set(r.inLog);
  for (const line of r.extra) if (!inLog.has(line)) out.info(line);
  writeReport(
    s,
    { mode: s.mode, domain: s.domain, dryRun: s.dryRun, totals: t, entries: r.outcomes, notes: r.extra },
    out,
  );
  for (const [name, value] of Object.entries(t)) out.setOutput(name, value);
  const title = `remote-files ${s.mode}${s.dryRun ? ' (dry run)' : ''} of \`${s.domain}\``;
  await out.summary(outcomesMarkdown(title, r.outcomes, t, r.extra));
}

/**
 * The JSON report of the run, in a private folder of the temp folder (see privateTempDir), created
 * exclusively (`wx`: never through a link, never over a file) and readable by us alone; its path is the
 * `report` output.
 */
export function writeReport(s: Settings, data: object, out: Reporter): void {
  const path = join(privateTempDir('remote-files-report-'), `remote-files-${s.domain}-${s.mode}-report.json`);
  writeFileSync(path, JSON.stringify(data, null, 2) + '\n', { flag: 'wx', mode: 0o600 });
  out.setOutput('report', path);
}

/** What makes the run fail (missing with if-missing: error, denied without allow-denied); warns the rest. */
export function judge(s: Settings, r: ModeResult, out: Reporter): string[] {
  const backup = s.mode === 'backup';
  const { problems, warnings } = judgeEntries(
    r.outcomes.map(judged),
    { ifMissing: s.ifMissing, allowDenied: s.allowDenied, username: s.ssh.username },
    {
      missing: backup ? ' on the server; the stored copy is kept' : '',
      denied: backup ? 'not readable by' : 'not writable by',
      consequence: backup ? 'stored copy kept' : 'not restored',
    },
  );
  for (const w of warnings) out.warning(w);
  return problems;
}

/** The run's failure: one problem as it is, several counted and joined. */
export function problemsError(problems: string[]): string {
  return problems.length === 1 ? problems[0]! : `${problems.length} problems: ${problems.join('; ')}`;
}
