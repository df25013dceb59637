// The action's entry point (dist/index.js): GitHub runs it with inputs in INPUT_* variables.
// The work is in main.ts's run(), which has no side effect on import (so other runners, such as
// @github/local-action, can call it); what belongs to the process is here.
import './memory.js';
import * as core from '@actions/core';
import { run } from './main.js';

// A promise that never settles (a stalled stream the engine forgot to fail) would end the process
// with code 13 and no message at all; say so instead. Writes to a pipe are synchronous on Linux.
let finished = false;
process.once('exit', (code) => {
  if (finished) return;
  core.setFailed(
    `remote-files stopped before finishing (exit ${code}): an operation never completed. This is a bug; the stored copy was not changed past the last completed file.`,
  );
  process.exitCode = 1;
});
await run();
finished = true;
