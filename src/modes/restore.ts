import { UserError } from '../errors.js';
import type { Settings } from '../inputs.js';
import type { Plan } from '../plan/plan.js';
import { withProgress } from '../report/progress.js';
import { safeText, type Reporter } from '../report/reporter.js';
import { restoreSource } from '../store/encryption.js';
import type { Session } from '../transfer/choose.js';
import type { Entry } from '../transfer/entries.js';
import { leaveMarker, newId, type MarkerShell } from '../transfer/identity/probe.js';
import { LocalTree } from '../transfer/local/tree.js';
import type { Manifest } from '../transfer/manifest/manifest.js';
import { restore, type RestoreResult } from '../transfer/restore.js';
import { namesOf } from '../transfer/manifest/portable-names.js';
import type { Transport } from '../transfer/types.js';
import type { ModeResult } from './report.js';
import { commandsAroundRestore, runAround } from './restore-commands.js';
import { openTransport, type ServerJob } from './server.js';

/**
 * `mode: restore`: the stored copy (decrypted first, if encrypted) back onto the server, wrapped in the
 * before- and after-restore commands.
 */
export async function restoreMode(job: ServerJob, session: Session): Promise<ModeResult> {
  const { s, plan, entries, domainDir, loaded, out } = job;
  const { transport, uid, manifest } = await openTransport(job, session);
  const which = salvageLine(manifest, loaded.outputs['salvage-commit'], loaded.outputs['salvage-date'], out);
  const source = await restoreSource(domainDir, manifest, s.age.identity);
  try {
    const storedTree = new LocalTree(source.root, { names: namesOf(manifest) });
    const result = await runRestore(s, plan, entries, transport, storedTree, manifest, uid, out);
    result.extra.unshift(which, ...loaded.summary);
    result.inLog = [which, ...loaded.summary];
    if (!s.dryRun)
      await markRestored(s.domain, { shell: session, canRunCommands: transport.canRunCommands }, manifest, out);
    return result;
  } finally {
    source.cleanup();
  }
}

/**
 * Says which salvage is put back, before anything is written: its date (the manifest's, else its
 * commit's) and its commit; also as the `salvage-date` output.
 */
function salvageLine(
  manifest: Manifest,
  commit: string | undefined,
  loadedDate: string | undefined,
  out: Reporter,
): string {
  const date = manifest.salvage?.at ?? loadedDate ?? '';
  if (date) out.setOutput('salvage-date', date);
  const line = `Restoring the salvage${date ? ` made ${date}` : ''}${commit ? ` (commit ${commit.slice(0, 7)})` : ''}`;
  out.info(line);
  return line;
}

/**
 * Leaves the marker that tells the next backup this server holds this salvage (transfer/identity/):
 * without it, a backup of the restored server would look like one of a rebuilt, empty server.
 */
async function markRestored(domain: string, on: MarkerShell, manifest: Manifest, out: Reporter): Promise<void> {
  // An SFTP-only account is told by its host key alone (see probeServer): no marker to leave.
  if (!on.canRunCommands) return;
  const why = await leaveMarker(on, domain, newId(), manifest.salvage?.id);
  if (why !== undefined)
    out.warning(
      `could not leave the remote-files marker on the server (${safeText(why)}): the next backup of it may be refused as one of a new server (\`new-server\`)`,
    );
}

/** The before-restore commands, the restore, the after-restore commands: a failure before the restore writes nothing. */
async function runRestore(
  s: Settings,
  plan: Plan,
  entries: Entry[],
  transport: Transport,
  tree: LocalTree,
  manifest: Manifest,
  uid: number,
  out: Reporter,
): Promise<ModeResult> {
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const restores = plan.recipes.flatMap((r) => r.restores.map((x) => ({ ...x, recipe: r.name })));
  const around = commandsAroundRestore(s, plan, transport);
  const ranBefore = await runAround('Before restore', around.before, transport, s, out);
  if (ranBefore.failed)
    throw new UserError(
      `${ranBefore.failed}; nothing was restored (nothing was written)${ranBefore.ran ? `, after ${ranBefore.ran} earlier command(s) had run` : ''}`,
    );
  const r = await out
    .group('Restore', () =>
      withProgress(out, 'sent', (progress) =>
        restore(entries, restores, transport, tree, manifest, {
          conflict: s.conflict,
          dryRun: s.dryRun,
          chown: uid === 0,
          loginUid: uid,
          previousDir: `~/.remote-files/previous/${s.domain}/${stamp}`,
          specialBits: s.specialBits,
          progress,
        }),
      ),
    )
    .catch((err: unknown) => {
      if (ranBefore.ran > 0 && err instanceof Error)
        err.message += `; the ${ranBefore.ran} before-restore command(s) had run, the after-restore commands were not run`;
      throw err;
    });
  const ranAfter = await runAround('After restore', around.after, transport, s, out);
  const extra = restoreNotes(r, ranAfter.failed, out);
  return {
    outcomes: r.outcomes,
    changed: r.changed,
    extra,
    ...(ranAfter.failed && { failed: [`${ranAfter.failed}. The data is in place: the restore itself finished`] }),
  };
}

/** What the restore leaves to say: a failed after-restore command, kept previous files, bits and owners not set. */
function restoreNotes(r: RestoreResult, afterFailed: string | undefined, out: Reporter): string[] {
  const extra: string[] = [];
  if (afterFailed) extra.push(`${afterFailed}. The data is in place: the restore itself finished`);
  if (r.keptPrevious.paths.length)
    extra.push(
      `Previous content of ${r.keptPrevious.paths.length} replaced file(s) kept on the server in ${r.keptPrevious.dir}`,
    );
  if (r.specialBitsDropped.length) {
    const n = r.specialBitsDropped.length;
    const msg = `setuid, setgid or sticky bit not restored on ${n} path(s) (set special-bits: true to restore them as recorded): ${r.specialBitsDropped.slice(0, 10).map(safeText).join(', ')}${n > 10 ? ', …' : ''}`;
    out.warning(msg);
    extra.push(msg);
  }
  for (const w of r.warnings) {
    out.warning(w);
    extra.push(w);
  }
  if (r.ownerNotSet.length) {
    const msg = `owner/group not set (log in as root or use sudo: true) for ${r.ownerNotSet.length} path(s): ${r.ownerNotSet.slice(0, 10).map(safeText).join(', ')}${r.ownerNotSet.length > 10 ? ', …' : ''}`;
    out.warning(msg);
    extra.push(msg);
  }
  return extra;
}
