import { mkdirSync } from 'node:fs';
import { UserError } from '../errors.js';
import { withProgress } from '../report/progress.js';
import { safeText, type Reporter } from '../report/reporter.js';
import { writeDataAttributes } from '../store/data-folder.js';
import { backup } from '../transfer/backup.js';
import type { Session } from '../transfer/choose.js';
import { LocalTree } from '../transfer/local/tree.js';
import { judgeServer, newServerMessage, serverRecord } from '../transfer/identity/identity.js';
import { leaveMarker, newId, probeServer, readMarker, type MarkerRead } from '../transfer/identity/probe.js';
import type { Manifest, ServerRecord } from '../transfer/manifest/manifest.js';
import { namesOf } from '../transfer/manifest/portable-names.js';
import type { Transport } from '../transfer/types.js';
import { runPrepare } from './prepare.js';
import type { ModeResult } from './report.js';
import { openTransport, type ServerJob } from './server.js';

/**
 * `mode: backup`: the server's files into the data folder, incrementally against the stored manifest.
 * Storing the data folder is the next step (storeSalvage), once the outcome is judged.
 */
export async function backupMode(job: ServerJob, session: Session): Promise<ModeResult> {
  const { s, plan, entries, domainDir, encryption, stored, loaded, out } = job;
  // The backup's view of the data folder (encryption is set for backups only). It is walked while the
  // server lists too: one lstat per stored file.
  // Its names are the stored manifest's (read during the listing, migrated to portable-1 first).
  const tree = new LocalTree(domainDir, {
    ...(encryption && { encrypt: encryption.encrypt }),
    names: () => namesOf(stored.get()),
  });
  // The server's identity is read while the transport is chosen (one round trip less). An SFTP-only
  // account runs no command: its answer is not used (told by its host key alone), and with
  // `transport: sftp` it is not asked.
  const marker = s.transport === 'sftp' ? undefined : readMarker(session, s.domain);
  const { transport, manifest } = await openTransport(job, session, () => tree.prewalk(entries.map((e) => e.local)));
  const server = await checkServer(job, session, transport, manifest, marker);
  if (server.skip) return server.skip;
  await runPrepare(plan, transport, s, out);
  const baseline = baselineFor(manifest, encryption?.tag ?? '', out);
  for (const note of stored.notes) out.info(note);
  const r = await out.group('Salvage', () =>
    withProgress(out, 'received', (progress) =>
      backup(entries, transport, tree, baseline, {
        checksum: s.checksum,
        delete: s.delete,
        maxDelete: s.maxDelete,
        dryRun: s.dryRun,
        progress,
        server: server.record,
        // A new server let in by `new-server: allow` is expected to differ from the salvage: smaller is no
        // alarm then. The salvage's own server keeps the guard, even with the input left set.
        byteGuard: !server.newAllowed,
        ...(encryption && { encryption: encryption.tag }),
        log: (line) => out.info(line),
      }),
    ),
  );
  if (!s.dryRun) {
    for (const d of plan.recipes.flatMap((x) => x.datadirs)) tree.ensureDir(d);
    // Every entry missing on a first backup wrote nothing: the folder the attributes go in is made here.
    mkdirSync(domainDir, { recursive: true });
    writeDataAttributes(domainDir);
  }
  const extra = [...loaded.summary, ...stored.notes];
  return { outcomes: r.outcomes, changed: r.changed, extra, inLog: extra };
}

/**
 * Is this the server the stored salvage came from? Refuses (or skips, with `new-server: skip`) a backup
 * of a server that is not — rebuilt, or restored from another salvage — before anything is written, and
 * leaves the marker that lets the next backup tell (see transfer/identity/).
 */
async function checkServer(
  job: ServerJob,
  session: Session,
  transport: Transport,
  manifest: Manifest,
  marker: MarkerRead | undefined,
): Promise<{ record: ServerRecord; newAllowed?: boolean; skip?: ModeResult }> {
  const { s, out } = job;
  const on = { shell: session, canRunCommands: transport.canRunCommands };
  const seen = await probeServer(on, s.domain, session.hostKey, marker);
  if (seen.unreadable !== undefined)
    out.warning(
      `could not read the server's identity (${safeText(seen.unreadable)}): this time it is told by its host key alone`,
    );
  const verdict = judgeServer(manifest.server, manifest.salvage, seen);
  let check: string = verdict.kind;
  if (verdict.kind === 'different') {
    const message = newServerMessage(verdict.changes, manifest.salvage);
    if (s.newServer === 'fail') throw new UserError(message);
    if (s.newServer === 'skip') {
      out.warning(`${message.replace(/^refusing the backup/, 'backup skipped (new-server: skip)')}`);
      out.setOutput('server-check', 'skipped');
      return {
        record: manifest.server ?? {},
        skip: {
          outcomes: [],
          changed: false,
          skipped: true,
          extra: [
            'Backup skipped (new-server: skip): this is not the server the stored salvage came from; the stored salvage is kept',
          ],
        },
      };
    }
    out.warning(`backing up a new server, as \`new-server: allow\` says: ${verdict.changes.join('; ')}`);
    check = 'new';
  } else if (verdict.kind === 'restored') {
    out.info(
      "This server was restored from the stored salvage since the last backup: recording it as the salvage's server",
    );
  }
  out.setOutput('server-check', check);
  let instance = seen.instance;
  if (seen.probed && !instance && !s.dryRun) {
    instance = newId();
    const why = await leaveMarker(on, s.domain, instance, undefined);
    if (why !== undefined) {
      out.warning(
        `could not leave the remote-files marker on the server (${safeText(why)}): the next backup tells this server by its host key and machine id alone`,
      );
      instance = undefined;
    }
  }
  return { record: serverRecord(manifest.server, seen, instance), newAllowed: check === 'new' };
}

/** The manifest to compare with: none (everything salvaged again) when the encryption changed. */
function baselineFor(manifest: Manifest, tag: string, out: Reporter): Manifest {
  let baseline = manifest;
  if ((manifest.encryption ?? '') !== tag && Object.keys(manifest.files).length > 0) {
    out.info(
      tag
        ? 'age-recipients changed or newly set: every file is salvaged and encrypted again'
        : 'age-recipients removed: every file is salvaged again, unencrypted',
    );
    baseline = { ...manifest, files: {} };
  }
  return baseline;
}
