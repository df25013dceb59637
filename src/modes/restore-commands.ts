import { UserError } from '../errors.js';
import { CommandTimeLimitError } from '../ssh/session.js';
import type { Settings } from '../inputs.js';
import type { Plan } from '../plan/plan.js';
import { safeText, type Reporter } from '../report/reporter.js';
import type { Transport } from '../transfer/types.js';

export interface AroundCommand {
  who: string;
  command: string;
}

/**
 * The commands around a restore: the `before-restore` input, then each recipe's `before_restore`;
 * after it, each recipe's `after_restore`, then the `after-restore` input (the workflow's own wrap the
 * recipes'). An account without a shell cannot run them: refused before anything is written.
 */
export function commandsAroundRestore(
  s: Settings,
  plan: Plan,
  transport: Transport,
): { before: AroundCommand[]; after: AroundCommand[] } {
  const before = [
    ...s.beforeRestore.map((command) => ({ who: 'before-restore', command })),
    ...plan.recipes.flatMap((r) =>
      (r.beforeRestore ?? []).map((command) => ({ who: `${r.name}: before_restore`, command })),
    ),
  ];
  const after = [
    ...plan.recipes.flatMap((r) =>
      (r.afterRestore ?? []).map((command) => ({ who: `${r.name}: after_restore`, command })),
    ),
    ...s.afterRestore.map((command) => ({ who: 'after-restore', command })),
  ];
  if (before.length + after.length > 0 && !transport.canRunCommands) {
    const names = [...new Set([...before, ...after].map((c) => c.who))].join(', ');
    throw new UserError(
      `commands around the restore are configured (${names}), but this account only offers SFTP (no shell), so they cannot run; nothing was restored. Use an account with a shell, or remove them`,
    );
  }
  return { before, after };
}

/** Runs commands in order until one fails: how many ran (and succeeded), and the failure, if any. */
export async function runAround(
  title: string,
  commands: AroundCommand[],
  transport: Transport,
  s: Settings,
  out: Reporter,
): Promise<{ ran: number; failed?: string }> {
  if (commands.length === 0) return { ran: 0 };
  if (s.dryRun) {
    out.info(`dry run: ${commands.length} ${title.toLowerCase()} command(s) not run`);
    return { ran: 0 };
  }
  return out.group(title, async () => {
    for (const [i, { who, command }] of commands.entries()) {
      const r = await transport.run(command, [], s.commandTimeoutSecs).catch((err: unknown) => {
        // This side gave up waiting (no `timeout` on the server, or output held open): see CommandTimeLimitError.why.
        if (err instanceof CommandTimeLimitError) return { code: null, output: '', gaveUp: err };
        throw err;
      });
      const shown = r.output.trim();
      if (r.code === 0) {
        out.info(`${who}: ${safeText(command)} — ok${shown ? `\n${safeText(shown.slice(-2000))}` : ''}`);
        continue;
      }
      const rest = commands.slice(i + 1);
      return {
        ran: i,
        failed:
          `${who} command failed (${failure(r, s.commandTimeoutSecs)}): ${safeText(command)}${shown ? ` — ${safeText(shown.slice(-2000))}` : ''}` +
          (rest.length
            ? `; ${rest.length} later command(s) not run: ${rest.map((c) => safeText(c.command)).join(', ')}`
            : ''),
      };
    }
    return { ran: commands.length };
  });
}

/** How a command failed, for its message. */
function failure(
  r: { code: number | null; timedOut?: boolean; gaveUp?: CommandTimeLimitError },
  limitSecs: number,
): string {
  if (r.gaveUp) return r.gaveUp.why(limitSecs);
  if (r.timedOut) return `stopped after \`command-timeout\`, ${limitSecs} s`;
  return `exit ${r.code ?? 'unknown'}`;
}
