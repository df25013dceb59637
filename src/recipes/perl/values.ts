/** The values the Perl reader (static and through perl) gives for a hook. */

/** A Perl value as a hook returns it. */
export type PerlValue =
  | { t: 'str'; v: string }
  /** A number Perl has not used as a string; `s` is how Perl prints it. */
  | { t: 'num'; v: number; s: string }
  | { t: 'undef' }
  /** A hash reference; keys as Perl stringified them. */
  | { t: 'hash'; pairs: Array<[string, PerlValue]> }
  /** Any other reference (only perl reports these). */
  | { t: 'ref'; kind: string };

/** What reading one hook statically gave. */
export type StaticOutcome =
  | { kind: 'absent' }
  | { kind: 'list'; line: number; values: PerlValue[] }
  /** Not followable without running it: `construct` says what stopped the reader. */
  | { kind: 'dynamic'; line: number; construct: string }
  /** Perl would refuse this too (compile error, bad arguments, undefined value). */
  | { kind: 'error'; line: number; detail: string };
