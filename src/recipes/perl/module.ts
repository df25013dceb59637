/**
 * What the static Perl reader (see static.ts) knows of a module once scanner.ts has read it: the types
 * the scanner fills and the evaluator reads. Types only.
 */
import type { Tok } from './lexer.js';

export type Tri = 'on' | 'off' | 'maybe';

/** A pragma in effect from token `at` on: `use strict`, `use VERSION`, `use feature 'signatures'`, ... */
interface Pragma {
  at: number;
  strict?: Tri;
  signatures?: Tri;
}

export interface SubDef {
  name: string;
  line: number;
  /** Token index of `sub`. */
  at: number;
  /** Token range of a parameter list `(...)`, and its source text. */
  params: { range: [number, number]; text: string } | null;
  /** Token range of the body; null when the tokenizer stopped inside it. */
  body: [number, number] | null;
}

export interface PerlModule {
  /** The module's text, as given. */
  readonly source: string;
  readonly toks: Tok[];
  /** The first `package` statement: the class the framework calls hooks on. */
  pkg: { name: string; line: number } | null;
  /** @ISA once the module is loaded; null when it is built in a way the reader cannot follow. */
  parents: string[] | null;
  parentsLine: number;
  /** The package's own subs by name; a later definition replaces an earlier one, as in Perl. */
  subs: Map<string, SubDef>;
  /** Code that may define subs at run time (glob assignment, string eval, AUTOLOAD, unreadable imports). */
  runtimeSubs: { line: number; construct: string } | null;
  /** Hook names imported from other modules. */
  imports: Map<string, { line: number; from: string }>;
  /** Where the tokenizer gave up; nothing after it was read. */
  stopped: { line: number; construct: string } | null;
  /** Every `my`/`our`/`state`/`use vars` declaration: sigil + name, and token index. */
  decls: Array<{ name: string; at: number }>;
  pragmas: Pragma[];
}
