import assert from 'node:assert/strict';
import type { ActionResult } from './run-action.js';

/** A run that succeeded: exit 0 and no `::error::` line (the whole output in the message if not). */
export function ok(r: ActionResult, context = ''): ActionResult {
  const where = context ? `${context}: ` : '';
  assert.equal(r.code, 0, `${where}exit ${r.code}\n${r.stdout}\n${r.stderr}`);
  assert.ok(!r.stdout.includes('::error::'), `${where}an ::error:: line in a run that succeeded\n${r.stdout}`);
  return r;
}
