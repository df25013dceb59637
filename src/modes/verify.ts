import { UserError } from '../errors.js';
import { safeText } from '../report/reporter.js';
import { verifyLogLines, verifyMarkdown, verifyOutputs } from '../report/verify-report.js';
import type { Session } from '../transfer/choose.js';
import { judgeVerify, verify } from '../transfer/verify.js';
import { problemsError, writeReport } from './report.js';
import { openTransport, type ServerJob } from './server.js';

/**
 * `mode: verify`: compares the server with the stored copy and changes neither; reports on its own
 * (drift outputs, its own summary), and fails on what `if-missing`, `allow-denied` and `fail-on-drift`
 * make failures.
 */
export async function verifyMode(job: ServerJob, session: Session): Promise<void> {
  const { s, entries, loaded, out } = job;
  const extra = loaded.summary;
  const { transport, manifest } = await openTransport(job, session);
  // The comparison's lines inside its group; what loading the stored copy said is in that group already.
  const r = await out.group('Verify', async () => {
    const result = await verify(entries, transport, manifest, { checksum: s.checksum });
    for (const line of verifyLogLines(result)) out.info(line);
    return result;
  });
  for (const [name, value] of Object.entries(verifyOutputs(r))) out.setOutput(name, value);
  writeReport(s, { mode: 'verify', domain: s.domain, checksum: s.checksum, ...r, notes: extra }, out);
  const { problems, warnings } = judgeVerify(r, {
    ifMissing: s.ifMissing,
    allowDenied: s.allowDenied,
    failOnDrift: s.failOnDrift,
    username: s.ssh.username,
  });
  for (const w of warnings) out.warning(w);
  await out.summary(
    verifyMarkdown(`remote-files verify of \`${s.domain}\``, r) + extra.map((x) => `${safeText(x)}\n`).join(''),
  );
  if (problems.length) throw new UserError(problemsError(problems));
}
