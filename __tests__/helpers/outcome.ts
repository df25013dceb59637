import assert from 'node:assert/strict';
import { RecipeError } from '../../src/errors.js';
import type { ActionResult } from './run-action.js';

/** A run that succeeded: exit 0 and no `::error::` line (the whole output in the message if not). */
export function ok(r: ActionResult, context = ''): ActionResult {
  const where = context ? `${context}: ` : '';
  assert.equal(r.code, 0, `${where}exit ${r.code}\n${r.stdout}\n${r.stderr}`);
  assert.ok(!r.stdout.includes('::error::'), `${where}an ::error:: line in a run that succeeded\n${r.stdout}`);
  return r;
}

/** Refused: exit 1, one `::error::` line matching `pattern`, no stack, no "undefined"; returns its message. */
export function refused(r: ActionResult, pattern: RegExp, context: string): string {
  assert.equal(r.code, 1, `${context}: exit ${r.code}\n${r.stdout}\n${r.stderr}`);
  const errors = r.stdout.split('\n').filter((l) => l.startsWith('::error::'));
  assert.equal(errors.length, 1, `${context}: one ::error:: line\n${r.stdout}\n${r.stderr}`);
  assert.match(errors[0]!, pattern, context);
  assert.doesNotMatch(errors[0]!, /undefined|\bat .*:\d+:\d+/, context);
  assert.doesNotMatch(r.stderr, /^\s+at /m, `${context}: no stack on stderr`);
  return errors[0]!.slice('::error::'.length);
}

/** What `promise` rejects with, which must be a RecipeError (a recipe refused, not a crash). */
export async function rejection(promise: Promise<unknown>): Promise<RecipeError> {
  try {
    await promise;
  } catch (e) {
    assert.ok(e instanceof RecipeError, String(e));
    return e;
  }
  assert.fail('expected a RecipeError');
}
