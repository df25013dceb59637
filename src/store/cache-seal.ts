import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { createReadStream } from 'node:fs';

/**
 * Which cache entries a restore trusts. The Actions cache is shared by every job that can write the
 * default branch's scope: another workflow, or a `pull_request_target` job running a pull request's
 * code, can save an entry under our key prefix, and a restore would put its files on the production
 * server. The cache service says nothing about who wrote an entry, and the run id in a key can be
 * picked by anyone. So each entry carries a seal: an HMAC of the domain and the snapshot's SHA-256,
 * keyed by a secret derived from the login credential (`key`, or `password` without one), which only
 * a workflow that can log in to the server holds. An entry whose seal does not verify, or that has
 * none, is refused. Pure, apart from hashing a file.
 */

const SEAL_CONTEXT = 'remote-files cache seal v1';

/** The seal key: the credential as text, its line endings and surrounding blanks made canonical. */
export function sealSecret(credential: string): Buffer {
  const canonical = credential
    .replace(/\r\n?/g, '\n')
    .split('\n')
    .map((l) => l.trim())
    .join('\n')
    .trim();
  return createHmac('sha256', canonical).update(SEAL_CONTEXT).digest();
}

/** The seal of one snapshot for one domain: 64 hex digits. */
export function sealOf(secret: Buffer, domain: string, snapshotSha256: string): string {
  return createHmac('sha256', secret).update(`${SEAL_CONTEXT}\0${domain}\0${snapshotSha256}`).digest('hex');
}

/** Whether `seal` (as read from an entry: untrusted text) is this domain's seal of the snapshot. */
export function sealHolds(secret: Buffer, domain: string, snapshotSha256: string, seal: string): boolean {
  const want = Buffer.from(sealOf(secret, domain, snapshotSha256), 'hex');
  const got = Buffer.from(/^[0-9a-f]{64}$/.test(seal.trim()) ? seal.trim() : '', 'hex');
  return got.length === want.length && timingSafeEqual(got, want);
}

export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}
