import { UserError } from '../errors.js';
import { saveToStores } from '../store/index.js';
import { report, type ModeResult } from './report.js';
import type { ServerJob } from './server.js';

/**
 * A backup's store step. No partial salvage ever reaches a store: a backup that failed persists
 * nothing. A store that fails after a good transfer still gets the transfer reported.
 */
export async function storeSalvage(job: ServerJob, result: ModeResult, problems: string[]): Promise<void> {
  const { s, stores, ctx, out } = job;
  let saved: { outputs: Record<string, string>; summary: string[] } = { outputs: {}, summary: [] };
  if (s.mode === 'backup' && !s.dryRun && !result.skipped && problems.length === 0 && stores.length > 0) {
    try {
      saved = await out.group('Store', async () => {
        const done = await saveToStores(stores, ctx, result.changed);
        for (const line of done.summary) out.info(line);
        return done;
      });
      result.inLog = [...(result.inLog ?? []), ...saved.summary];
    } catch (err) {
      // The transfer succeeded: its summary and outputs are still written, and the message says where the salvage is.
      const where = `the salvage is in the workspace's ${s.dataDir}/${s.domain}, not stored (${stores.map((x) => x.name).join(', ')})`;
      result.extra.push(`The backup succeeded but storing it failed: ${where}`);
      await report(s, result, out);
      const message = err instanceof Error ? err.message : String(err);
      throw new UserError(`${message.replace(/\.$/, '')}. The backup itself succeeded: ${where}`);
    }
  }
  if (s.mode === 'backup' && problems.length > 0 && stores.length > 0)
    result.extra.push(`Nothing was stored (${stores.map((x) => x.name).join(', ')}): the backup failed`);
  result.extra.push(...saved.summary);
  for (const [name, value] of Object.entries(saved.outputs)) out.setOutput(name, value);
}
