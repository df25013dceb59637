import type { Reporter } from '../report/reporter.js';
import { writeDataAttributes } from '../store/data-folder.js';
import { backup } from '../transfer/backup.js';
import type { Session } from '../transfer/choose.js';
import { LocalTree } from '../transfer/local/tree.js';
import type { Manifest } from '../transfer/manifest/manifest.js';
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
  const tree = new LocalTree(domainDir, encryption && { encrypt: encryption.encrypt });
  const { transport, manifest } = await openTransport(job, session, () => tree.prewalk(entries.map((e) => e.local)));
  await runPrepare(plan, transport, s, out);
  const baseline = baselineFor(manifest, encryption?.tag ?? '', out);
  for (const note of stored.notes) out.info(note);
  const r = await out.group('Salvage', () =>
    backup(entries, transport, tree, baseline, {
      checksum: s.checksum,
      delete: s.delete,
      maxDelete: s.maxDelete,
      dryRun: s.dryRun,
      ...(encryption && { encryption: encryption.tag }),
      log: (line) => out.info(line),
    }),
  );
  if (!s.dryRun) {
    for (const d of plan.recipes.flatMap((x) => x.datadirs)) tree.ensureDir(d);
    writeDataAttributes(domainDir);
  }
  return { outcomes: r.outcomes, changed: r.changed, extra: [...loaded.summary, ...stored.notes] };
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
