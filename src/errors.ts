/**
 * An error the user can fix: bad input, a malformed recipe, a refused host key.
 * Its message is shown alone (no stack), so it must name the file, line or input at fault.
 */
export class UserError extends Error {
  override name = 'UserError';
}

/** A recipe that cannot be read; the message names the file (and line, where known). */
export class RecipeError extends UserError {
  override name = 'RecipeError';
  constructor(
    readonly file: string,
    readonly line: number | undefined,
    detail: string,
  ) {
    super(`${file}${line ? `:${line}` : ''}: ${detail}`);
  }
}

/** Something a server sent that we did not ask for or cannot store safely; refused, never written. */
export class HostileServerError extends Error {
  override name = 'HostileServerError';
}
