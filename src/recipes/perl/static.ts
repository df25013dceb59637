/**
 * Reads Perl recipe modules without running Perl.
 *
 * A tokenizer for the subset of Perl that recipes are written in (lexer.ts), a scan of the module's
 * structure (package, parents, pragmas, subs: scanner.ts, into the types of module.ts) and an evaluator
 * for hook bodies that are plain data: strings, interpolation, concatenation, lexicals, `return` lists
 * (evaluator.ts, applied to one hook by eval-hook.ts). Whatever it cannot evaluate exactly as Perl would
 * (a call, a conditional, an element access, ...) it reports with its line instead of guessing; the caller
 * then asks perl. Pure: it sees only the source text it is given.
 */
export { evalHook } from './eval-hook.js';
export { hashKeysRead } from './hash-keys.js';
export type { PerlModule, SubDef } from './module.js';
export { HOOKS, parsePerlModule } from './scanner.js';
export type { PerlValue, StaticOutcome } from './values.js';
