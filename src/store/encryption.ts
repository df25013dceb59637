import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tempRoot } from '../temp.js';
import type { Readable } from 'node:stream';
import type { Manifest } from '../transfer/manifest/manifest.js';
import { namesOf } from '../transfer/manifest/portable-names.js';

/** How a backup encrypts: the transform for new content, and the tag the manifest records. */
export interface Encryption {
  encrypt: (plain: Readable) => Readable;
  /** `age:` + a digest of the recipients: a change of recipients re-encrypts everything once. */
  tag: string;
}

// age.js is imported only when encryption is in use: it is a large part of the bundle.
export async function backupEncryption(recipientsText: string): Promise<Encryption | undefined> {
  if (recipientsText.trim() === '') return undefined;
  const { encryptStream, parseRecipients } = await import('./age.js');
  const recipients = parseRecipients(recipientsText);
  const digest = createHash('sha256')
    .update([...recipients].sort().join('\n'))
    .digest('hex')
    .slice(0, 16);
  return { encrypt: (plain) => encryptStream(plain, recipients), tag: `age:${digest}` };
}

/**
 * The folder a restore uploads from: the domain folder itself, or for an encrypted copy a plaintext
 * mirror in a private temp folder (removed by `cleanup`), so the transports never see ciphertext.
 */
export async function restoreSource(
  domainDir: string,
  m: Manifest,
  identityText: string,
): Promise<{ root: string; cleanup: () => void }> {
  if (!m.encryption) return { root: domainDir, cleanup: () => undefined };
  const { decryptTree, parseIdentities, requireIdentity } = await import('./age.js');
  const identities = identityText.trim() === '' ? [] : parseIdentities(identityText);
  requireIdentity(identities, m.domain);
  const root = mkdtempSync(join(tempRoot(), 'remote-files-plain-'));
  const cleanup = () => rmSync(root, { recursive: true, force: true });
  try {
    const files = Object.entries(m.files)
      .filter(([, f]) => f.type === 'file')
      // Read and written under the stored (escaped) names: the restore reads the mirror as it would the folder.
      .map(([rel, f]) => ({
        rel: namesOf(m).toDisk(rel),
        mode: parseInt(f.mode, 8),
        mtime: f.mtime,
      }));
    await decryptTree(domainDir, files, identities, root);
  } catch (err) {
    cleanup();
    throw err;
  }
  return { root, cleanup };
}
