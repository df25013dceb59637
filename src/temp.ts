import { mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';

/** Where reports, snapshots and plaintext mirrors go: the runner's temp folder (emptied after each job). */
export function tempRoot(): string {
  const root = process.env.RUNNER_TEMP || tmpdir();
  mkdirSync(root, { recursive: true });
  return root;
}
