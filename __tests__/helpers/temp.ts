// Temp folders of a test file, removed when its process exits, whatever the test did with them. Each
// test file runs in its own process (node --test), so a folder outlives the tests that read it (a
// report path, a workspace shared by a describe block) but never the file.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const made = new Set<string>();
let hooked = false;

/** A new folder `<tmpdir>/<prefix>XXXXXX`, removed (with everything in it) when this process exits. */
export function testTempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  made.add(dir);
  if (!hooked) {
    hooked = true;
    process.once('exit', removeTestTempDirs);
  }
  return dir;
}

/** Removes every folder testTempDir made so far (also run at exit). */
export function removeTestTempDirs(): void {
  for (const dir of made) {
    try {
      rmSync(dir, { recursive: true, force: true });
    } catch {
      // A folder made undeletable by its test (immutable attributes): left, never fatal at exit.
    }
    made.delete(dir);
  }
}
