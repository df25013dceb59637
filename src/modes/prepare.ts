import { UserError } from '../errors.js';
import { CommandTimeLimitError } from '../ssh/session.js';
import type { Settings } from '../inputs.js';
import type { Plan } from '../plan/plan.js';
import { safeText, type Reporter } from '../report/reporter.js';
import { NEWEST_SCRIPT, parseNewest, parsePrepare, PREPARE_SCRIPT } from '../transfer/tar/remote-scripts.js';
import type { Transport } from '../transfer/types.js';

/**
 * remote_prepare commands run before the fetch, each right after a reading of the newest times below
 * its recipe's server paths (PREPARE_SCRIPT, one round trip); a command that fails is followed by a
 * second reading. One that changed nothing is a warning: the salvage is as old as the last time, and
 * yesterday's dump beats none. One that changed something left a partial dump: the run stops before
 * anything is fetched, so the stored copy and the data folder stay as they were.
 */
export async function runPrepare(plan: Plan, transport: Transport, s: Settings, out: Reporter): Promise<void> {
  const commands = plan.recipes.flatMap((r) =>
    r.prepare.map((c) => ({ recipe: r.name, command: c, paths: [...new Set(r.files.map((f) => f.remote))] })),
  );
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
    for (const { recipe, command, paths } of commands) {
      const r = await transport.run(PREPARE_SCRIPT, [command, ...paths], s.commandTimeoutSecs).catch((err: unknown) => {
        // This side gave up waiting (see CommandTimeLimitError.why): the dump may be unfinished. Fail, naming it.
        if (!(err instanceof CommandTimeLimitError)) throw err;
        throw new UserError(
          `${recipe}: prepare command failed (${err.why(s.commandTimeoutSecs)}): ${safeText(command)}. Nothing was fetched: the stored copy and the data folder are as they were`,
        );
      });
      const answer = parsePrepare(r.output, paths);
      if (r.code === 0 && answer) {
        out.info(`${recipe}: ${safeText(command)} — ok`);
        continue;
      }
      const shown = (answer ? answer.output : r.output).trim();
      const status = r.timedOut
        ? `stopped after \`command-timeout\`, ${s.commandTimeoutSecs} s`
        : r.code === null
          ? 'no exit status'
          : `exit ${r.code}`;
      const after = answer ? parseNewest((await transport.run(NEWEST_SCRIPT, paths)).output, paths) : null;
      const changed = answer && after ? paths.filter((_, i) => answer.before[i] !== after[i]) : null;
      if (changed?.length === 0) {
        out.warning(
          `${recipe}: prepare command failed (${status}) and changed nothing under ${paths.map(safeText).join(', ') || 'its paths'}: the salvage is as old as the last time: ${safeText(command)}${shown ? `\n${safeText(shown)}` : ''}`,
        );
        continue;
      }
      const what = changed
        ? `after changing ${changed.map(safeText).join(', ')}`
        : `and whether it changed ${paths.map(safeText).join(', ')} could not be read`;
      throw new UserError(
        `${recipe}: prepare command failed (${status}) ${what}: ${safeText(command)}. That is a partial dump, not a stale one: nothing was fetched, the stored copy and the data folder are as they were${shown ? `. Its output: ${safeText(shown.slice(-2000))}` : ''}`,
      );
    }
  });
}
