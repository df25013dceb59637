import { mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Where reports, snapshots and plaintext mirrors go: the runner's temp folder (emptied after each job). */
export function tempRoot(): string {
  const root = process.env.RUNNER_TEMP || tmpdir();
  mkdirSync(root, { recursive: true });
  return root;
}

/**
 * A new folder of our own below tempRoot(): a fresh random name made by mkdtemp (mode 0700), never one
 * that exists. Outside Actions the root is a shared /tmp, where a predictable name could be a symlink
 * planted by another user; inside the folder nothing was planted.
 */
export function privateTempDir(prefix: string): string {
  return mkdtempSync(join(tempRoot(), prefix));
}
