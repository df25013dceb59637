/**
 * Reads Perl recipe modules without running Perl.
 *
 * A tokenizer for the subset of Perl that recipes are written in, a scan of the module's structure
 * (package, parents, pragmas, subs) and an evaluator for hook bodies that are plain data: strings,
 * interpolation, concatenation, lexicals, `return` lists. Whatever it cannot evaluate exactly as Perl
 * would (a call, a conditional, an element access, ...) it reports with its line instead of guessing;
 * the caller then asks perl. Pure: it sees only the source text it is given.
 */

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

// ---------------------------------------------------------------------------------------------------
// Tokens

type Sigil = '$' | '@' | '%' | '&' | '*' | '$#';

/** A piece of a double-quoted string. `var` with `why` is an interpolation that is not followable. */
type StrPart =
  | { k: 'lit'; v: string }
  | { k: 'var'; sigil: Sigil; name: string; line: number; why?: string }
  | { k: 'dyn'; line: number; why: string };

type Tok = { line: number; pos: number } & (
  | { k: 'op'; v: string }
  | { k: 'ident'; v: string }
  /** `name` is '' for an anonymous signature parameter (`$`, `@`, `%`). */
  | { k: 'var'; sigil: Sigil; name: string }
  /** A sigil applied to an expression: `$$ref`, `@{...}`. */
  | { k: 'cast'; sigil: Sigil }
  /** `value` is null when the reader does not follow the literal (floats, huge or malformed numbers). */
  | { k: 'num'; text: string; value: number | null }
  | { k: 'vstr'; text: string }
  | { k: 'str'; v: string }
  | { k: 'istr'; parts: StrPart[] }
  | { k: 'qw'; words: string[] }
  /** Heredocs, patterns, substitutions, commands: read past, never followed. */
  | { k: 'opaque'; what: string }
);

type TokOf<K extends Tok['k']> = Extract<Tok, { k: K }>;
type TokBody = Tok extends infer T ? (T extends Tok ? Omit<T, 'line' | 'pos'> : never) : never;

const isOp = (t: Tok | undefined, v: string): boolean => t?.k === 'op' && t.v === v;
const isIdent = (t: Tok | undefined, v: string): boolean => t?.k === 'ident' && t.v === v;
const isVar = (t: Tok | undefined, sigil: Sigil, name: string): boolean => t?.k === 'var' && t.sigil === sigil && t.name === name;

const PAIRS: Record<string, string> = { '(': ')', '[': ']', '{': '}', '<': '>' };
const QUOTE_OPS = new Set(['q', 'qq', 'qw', 'm', 'qr', 's', 'tr', 'y', 'qx']);
const OPERATORS = [
  '<=>', '**=', '||=', '&&=', '//=', '<<=', '>>=', '...',
  '->', '++', '--', '**', '=~', '!~', '==', '!=', '<=', '>=', '&&', '||', '//', '..', '::', '<<', '>>', '=>',
  '+=', '-=', '*=', '/=', '.=', '%=', '&=', '|=', '^=',
];
const SINGLE_OPS = new Set('+-*/%.<>=!~\\?:,;()[]{}&|^');
/** Words after which Perl expects a term, so `/` starts a pattern and `%x` is a hash. */
const TERM_AFTER = new Set([
  'return', 'and', 'or', 'not', 'xor', 'if', 'unless', 'while', 'until', 'elsif', 'for', 'foreach', 'x',
  'lt', 'gt', 'le', 'ge', 'eq', 'ne', 'cmp', 'split', 'grep', 'map', 'join', 'push', 'unshift', 'print', 'say',
  'die', 'warn', 'defined', 'ref', 'scalar', 'lc', 'uc', 'lcfirst', 'ucfirst', 'length', 'exists', 'delete',
  'sort', 'reverse', 'keys', 'values', 'each', 'my', 'our', 'local', 'state', 'when', 'sprintf', 'unlink', 'chomp',
]);
/** Words that take no argument, so what follows is an operator. */
const OPERATOR_AFTER = new Set(['shift', 'pop', 'time', 'wantarray', '__PACKAGE__', '__FILE__', '__LINE__', '__SUB__']);

class LexStop {
  constructor(
    readonly pos: number,
    readonly what: string,
  ) {}
}

/** Line numbers (1-based) by source offset. */
function lineIndex(src: string): (pos: number) => number {
  const starts = [0];
  for (let i = src.indexOf('\n'); i >= 0; i = src.indexOf('\n', i + 1)) starts.push(i + 1);
  return (pos) => {
    let lo = 0;
    let hi = starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (starts[mid]! <= pos) lo = mid;
      else hi = mid - 1;
    }
    return lo + 1;
  };
}

function sticky(re: RegExp, src: string, at: number): RegExpExecArray | null {
  const y = new RegExp(re.source, 'y');
  y.lastIndex = at;
  return y.exec(src);
}

const IDENT_START = /[A-Za-z_]/;

/** Numeric literal forms and their values; null for those not followed (floats, bad octal: `089`). */
const NUMBER_FORMS: Array<[RegExp, (m: string) => number | null]> = [
  [/0[xX][0-9a-fA-F_]*/, (m) => parseInt(m.slice(2).replace(/_/g, ''), 16)],
  [/0[bB][01_]*/, (m) => parseInt(m.slice(2).replace(/_/g, ''), 2)],
  [/0[oO][0-7_]*/, (m) => parseInt(m.slice(2).replace(/_/g, ''), 8)],
  [/(?:\d[\d_]*)?\.(?!\.)[\d_]*(?:[eE][+-]?\d+)?|\d[\d_]*[eE][+-]?\d+/, () => null],
  [/0[\d_]+/, (m) => (/[89]/.test(m) ? null : parseInt(m.replace(/_/g, ''), 8))],
  [/\d[\d_]*/, (m) => parseInt(m.replace(/_/g, ''), 10)],
];

/**
 * Splits source into tokens. Stops (recording where and why) at what it cannot tokenize without
 * understanding more Perl than recipes use, e.g. a `/` after an unknown word (division or pattern?).
 * Everything before the stop is reliable; nothing after it is read.
 */
class Lexer {
  private i = 0;
  readonly toks: Tok[] = [];
  stopped: { line: number; construct: string } | null = null;
  /** A heredoc started on this line: at `lineEnd`, skip its body and continue at `resume`. */
  private heredoc: { lineEnd: number; resume: number } | null = null;
  /** Paren depth inside a signature `sub name (...)`, where `$,` and `$)` are anonymous parameters. */
  private sigDepth = 0;

  constructor(
    private readonly src: string,
    readonly lineAt: (pos: number) => number,
  ) {}

  run(): void {
    try {
      this.skipPod();
      for (;;) {
        this.skipSpace();
        if (this.i >= this.src.length || !this.token()) return;
      }
    } catch (e) {
      if (!(e instanceof LexStop)) throw e;
      this.stopped = { line: this.lineAt(e.pos), construct: e.what };
    }
  }

  private push(tok: TokBody, start: number): void {
    this.toks.push({ ...tok, line: this.lineAt(start), pos: start } as Tok);
  }

  private skipSpace(): void {
    for (;;) {
      const c = this.src[this.i];
      if (c === '\n') {
        if (this.heredoc && this.i === this.heredoc.lineEnd) {
          this.i = this.heredoc.resume;
          this.heredoc = null;
        } else this.i++;
        this.skipPod();
      } else if (c === ' ' || c === '\t' || c === '\r' || c === '\f') this.i++;
      else if (c === '#') {
        const nl = this.src.indexOf('\n', this.i);
        this.i = nl < 0 ? this.src.length : nl;
      } else return;
    }
  }

  /** POD: a line starting `=word` where a statement could start, up to and including the `=cut` line. */
  private skipPod(): void {
    if ((this.i > 0 && this.src[this.i - 1] !== '\n') || !sticky(/=[A-Za-z]/, this.src, this.i)) return;
    const cut = /^=cut\b[^\n]*/gm;
    cut.lastIndex = this.i;
    const m = cut.exec(this.src);
    this.i = m ? m.index + m[0].length : this.src.length;
  }

  /** Whether the parser would expect a term (operand) next, judging by the previous token. */
  private expect(): 'term' | 'op' | 'ambiguous' {
    const t = this.toks.at(-1);
    if (!t) return 'term';
    switch (t.k) {
      case 'op':
        return t.v === ')' || t.v === ']' || t.v === '}' ? 'op' : 'term';
      case 'cast':
        return 'term';
      case 'ident':
        if (isOp(this.toks.at(-2), '->') || OPERATOR_AFTER.has(t.v)) return 'op';
        return TERM_AFTER.has(t.v) ? 'term' : 'ambiguous';
      default:
        return 'op';
    }
  }

  /** Reads one token; false at `__END__`/`__DATA__`, where the code ends. */
  private token(): boolean {
    const start = this.i;
    const c = this.src[start]!;
    const next = this.src[start + 1] ?? '';
    if (IDENT_START.test(c)) return this.word(start);
    if (/[0-9]/.test(c) || (c === '.' && /[0-9]/.test(next) && this.expect() !== 'op')) this.number(start);
    else if (c === '$') this.scalarVar(start);
    else if ('@%&*'.includes(c) && this.sigilHere(c, next)) this.sigilVar(c as Sigil, start);
    else if (c === '"' || c === "'" || c === '`') this.quoteLike(c === '"' ? 'qq' : c === "'" ? 'q' : 'qx', start, start);
    else if (c === '/' && this.expect() !== 'op') {
      if (this.expect() === 'ambiguous') throw new LexStop(start, `a "/" after "${this.lastWord()}" (pattern or division?)`);
      this.quoteLike('m', start, start);
    } else if (c === '<' && sticky(/<<~?(?:[ \t]*["']|[A-Za-z_])/, this.src, start) && this.expect() !== 'op') {
      if (this.expect() === 'ambiguous') throw new LexStop(start, `a "<<" after "${this.lastWord()}" (heredoc or shift?)`);
      this.heredocStart(start);
    } else this.operator(start);
    return true;
  }

  private lastWord(): string {
    const t = this.toks.at(-1);
    return t?.k === 'ident' ? t.v : '';
  }

  private word(start: number): boolean {
    const word = sticky(/[A-Za-z_]\w*(?:::\w+)*(?:::)?/, this.src, start)![0];
    this.i = start + word.length;
    if (word === '__END__' || word === '__DATA__') return false;
    const vstring = /^v\d+$/.test(word) ? sticky(/(?:\.\d+)+/, this.src, this.i) : null;
    if (vstring) {
      this.i += vstring[0].length;
      this.push({ k: 'vstr', text: word + vstring[0] }, start);
    } else if (QUOTE_OPS.has(word) && this.quoteOpHere(start)) this.quoteLike(word, start, this.i);
    else this.push({ k: 'ident', v: word }, start);
    return true;
  }

  /** `s`, `q`, `y`... are plain words as a method name, a sub name, a hash key or a filetest (`-s`). */
  private quoteOpHere(start: number): boolean {
    const prev = this.toks.at(-1);
    if (isOp(prev, '->') || isIdent(prev, 'sub')) return false;
    if (isOp(prev, '-') && prev!.pos === start - 1) return false;
    if (sticky(/\s*=>/, this.src, this.i)) return false;
    return !(isOp(prev, '{') && sticky(/\s*\}/, this.src, this.i));
  }

  private number(start: number): void {
    const vstring = sticky(/\d[\d_]*(?:\.\d[\d_]*){2,}/, this.src, start);
    if (vstring) {
      this.i = start + vstring[0].length;
      return this.push({ k: 'vstr', text: vstring[0] }, start);
    }
    for (const [re, value] of NUMBER_FORMS) {
      const m = sticky(re, this.src, start);
      if (!m) continue;
      this.i = start + m[0].length;
      const v = value(m[0]);
      return this.push({ k: 'num', text: m[0], value: v !== null && Number.isSafeInteger(v) ? v : null }, start);
    }
  }

  private scalarVar(start: number): void {
    const src = this.src;
    const n1 = src[start + 1] ?? '';
    const n2 = src[start + 2] ?? '';
    if (this.sigDepth > 0 && !/[A-Za-z_]/.test(n1)) {
      this.i = start + 1;
      return this.push({ k: 'var', sigil: '$', name: '' }, start);
    }
    if (n1 === '#') {
      if (n2 === '{' || n2 === '$') return this.cast('$#', start, start + 2);
      const name = sticky(/[A-Za-z_]\w*(?:::\w+)*/, src, start + 2);
      this.i = start + 2 + (name?.[0].length ?? 0);
      return this.push({ k: 'var', sigil: name ? '$#' : '$', name: name ? name[0] : '#' }, start);
    }
    if (n1 === '$' && /[A-Za-z_{$:]/.test(n2)) return this.cast('$', start, start + 1);
    if (n1 === '{') {
      const braced = sticky(/\{\s*(\^?\w+)\s*\}/, src, start + 1);
      if (!braced) return this.cast('$', start, start + 1);
      this.i = start + 1 + braced[0].length;
      return this.push({ k: 'var', sigil: '$', name: braced[1]! }, start);
    }
    const name =
      sticky(/(?:::)?[A-Za-z_]\w*(?:::\w*)*/, src, start + 1) ?? sticky(/\^[A-Z\[\]^_?\\]|\d+|[^\s\w{]/, src, start + 1);
    if (!name) throw new LexStop(start, 'a "$" that starts no variable');
    this.i = start + 1 + name[0].length;
    this.push({ k: 'var', sigil: '$', name: name[0] }, start);
  }

  private cast(sigil: Sigil, start: number, end: number): void {
    this.i = end;
    this.push({ k: 'cast', sigil }, start);
  }

  /** `@` is always a sigil; `%`, `&`, `*` only where a term is expected (else modulus, and, times). */
  private sigilHere(c: string, next: string): boolean {
    if (this.sigDepth > 0 && c !== '&' && c !== '*') return true;
    const termish = c === '@' || this.expect() === 'term' || isOp(this.toks.at(-1), '}');
    return termish && (/[A-Za-z_{$:]/.test(next) || ((c === '@' || c === '%') && /[+-]/.test(next)));
  }

  private sigilVar(sigil: Sigil, start: number): void {
    const next = this.src[start + 1] ?? '';
    if (next === '{' || next === '$') return this.cast(sigil, start, start + 1);
    const name = sticky(/(?:::)?[A-Za-z_]\w*(?:::\w*)*|[+-]|/, this.src, start + 1)![0];
    this.i = start + 1 + name.length;
    this.push({ k: 'var', sigil, name }, start);
  }

  private heredocStart(start: number): void {
    const m = sticky(/<<(~?)(?:[ \t]*"([^"\n]*)"|[ \t]*'([^'\n]*)'|([A-Za-z_]\w*))/, this.src, start)!;
    const tag = m[2] ?? m[3] ?? m[4]!;
    this.i = start + m[0].length;
    const lineEnd = this.heredoc?.lineEnd ?? this.src.indexOf('\n', this.i);
    let p = this.heredoc ? this.heredoc.resume : lineEnd + 1;
    for (;;) {
      if (lineEnd < 0 || p >= this.src.length) throw new LexStop(start, `an unterminated heredoc <<${tag}`);
      const nl = this.src.indexOf('\n', p);
      const end = nl < 0 ? this.src.length : nl;
      const text = this.src.slice(p, end).replace(/\r$/, '');
      p = end + 1;
      if ((m[1] ? text.replace(/^[ \t]+/, '') : text) === tag) break;
    }
    this.heredoc = { lineEnd, resume: Math.min(p, this.src.length) };
    this.push({ k: 'opaque', what: `a heredoc <<${tag}` }, start);
  }

  /** `q{...}`, `"..."`, `s/a/b/g`...: `at` is where the delimiter search starts. */
  private quoteLike(op: string, start: number, at: number): void {
    const j = at === start ? start : this.skipToDelimiter(at, start, op);
    const open = this.src[j]!;
    const close = PAIRS[open] ?? open;
    const [body, end] = this.delimited(j, start, op);
    let k = end;
    if (op === 's' || op === 'tr' || op === 'y') {
      const second = PAIRS[open] ? this.skipToDelimiter(end, start, op) : end - 1;
      k = this.delimited(second, start, op)[1];
    }
    this.i = k + sticky(/[a-zA-Z]*/, this.src, k)![0].length;
    const line = this.lineAt(start);
    if (op === 'q') this.push({ k: 'str', v: unescapeSingle(body, open, close) }, start);
    else if (op === 'qq') this.push({ k: 'istr', parts: parseInterpolation(body, open, close, line) }, start);
    else if (op === 'qw') this.push({ k: 'qw', words: unescapeSingle(body, open, close).split(/\s+/).filter(Boolean) }, start);
    else this.push({ k: 'opaque', what: `a ${op === 'qx' ? 'command' : op === 'm' || op === 'qr' ? 'pattern' : 'substitution'} ${op}${open}...${close}` }, start);
  }

  /** After a quote operator: `#` right after it is a delimiter; after whitespace it starts a comment. */
  private skipToDelimiter(at: number, start: number, op: string): number {
    let j = at;
    let spaced = false;
    for (;;) {
      const c = this.src[j];
      if (c === undefined) throw new LexStop(start, `an unterminated ${op} string`);
      if (/\s/.test(c)) {
        j++;
        spaced = true;
      } else if (c === '#' && spaced) {
        const nl = this.src.indexOf('\n', j);
        j = nl < 0 ? this.src.length : nl;
      } else return j;
    }
  }

  /** The text between a delimiter at `j` and its closing partner (bracket pairs nest), and the offset after it. */
  private delimited(j: number, start: number, op: string): [string, number] {
    const open = this.src[j]!;
    const close = PAIRS[open] ?? open;
    let depth = 1;
    for (let k = j + 1; k < this.src.length; k++) {
      const c = this.src[k];
      if (c === '\\') k++;
      else if (c === close && --depth === 0) return [this.src.slice(j + 1, k), k + 1];
      else if (c === open && open !== close) depth++;
    }
    throw new LexStop(start, `an unterminated ${op === 'q' || op === 'qq' ? 'string' : op + open + '...' + close}`);
  }

  private operator(start: number): void {
    const op = OPERATORS.find((o) => this.src.startsWith(o, start)) ?? this.src[start]!;
    if (!OPERATORS.includes(op) && !SINGLE_OPS.has(op)) throw new LexStop(start, `the character "${op}"`);
    this.trackSignature(op);
    this.i = start + op.length;
    this.push({ k: 'op', v: op }, start);
  }

  /** A `(` right after `sub name` (or `sub`) opens a parameter list. */
  private trackSignature(op: string): void {
    if (op === '(') {
      const [a, b] = [this.toks.at(-2), this.toks.at(-1)];
      if (this.sigDepth > 0 || isIdent(b, 'sub') || (isIdent(a, 'sub') && b?.k === 'ident')) this.sigDepth++;
    } else if (op === ')' && this.sigDepth > 0) this.sigDepth--;
  }
}

function unescapeSingle(body: string, open: string, close: string): string {
  let out = '';
  for (let k = 0; k < body.length; k++) {
    const next = body[k + 1];
    if (body[k] === '\\' && (next === '\\' || next === open || next === close)) {
      out += next;
      k++;
    } else out += body[k];
  }
  return out;
}

const SIMPLE_ESCAPES: Record<string, string> = { n: '\n', t: '\t', r: '\r', f: '\f', b: '\b', a: '\x07', e: '\x1b' };

/** One backslash escape in a double-quoted string: the text it stands for, or why it is not followed. */
function escapeAt(body: string, k: number, open: string, close: string): { text: string; next: number } | { why: string } {
  const e = body[k + 1] ?? '';
  if (e === open || e === close) return { text: e, next: k + 2 };
  const simple = SIMPLE_ESCAPES[e];
  if (simple !== undefined) return { text: simple, next: k + 2 };
  if (e !== '' && 'lLuUQEF'.includes(e)) return { why: `a case-changing escape \\${e}` };
  const coded: Array<[RegExp, number]> = [
    [/[0-7]{1,3}/, 8],
    [/o\{([0-7]+)\}/, 8],
    [/x\{\s*([0-9A-Fa-f_]*)\s*\}/, 16],
    [/x([0-9A-Fa-f]{0,2})/, 16],
    [/N\{U\+([0-9A-Fa-f]+)\}/, 16],
  ];
  for (const [re, radix] of coded) {
    const m = sticky(re, body, k + 1);
    if (!m) continue;
    const code = parseInt((m[1] ?? m[0]).replace(/_/g, '') || '0', radix);
    // Perl keeps 0x80-0xFF as one byte, which is not text; the caller would see something else.
    if (code >= 0x80 && code <= 0xff) return { why: `the non-ASCII escape \\${m[0]}` };
    return { text: String.fromCodePoint(code), next: k + 1 + m[0].length };
  }
  if (e === 'N') return { why: 'a named character escape \\N{...}' };
  if (e === 'c') return { text: String.fromCharCode((body[k + 2] ?? '').toUpperCase().charCodeAt(0) ^ 64), next: k + 3 };
  return { text: e, next: k + 2 };
}

/** Splits the body of a double-quoted string into literal text and interpolations, by Perl's rules. */
function parseInterpolation(body: string, open: string, close: string, line: number): StrPart[] {
  const parts: StrPart[] = [];
  let lit = '';
  let ln = line;
  const flush = (): void => {
    if (lit) parts.push({ k: 'lit', v: lit });
    lit = '';
  };
  for (let k = 0; k < body.length; ) {
    const c = body[k]!;
    if (c === '\n') ln++;
    if (c === '\\') {
      const r = escapeAt(body, k, open, close);
      if ('why' in r) {
        flush();
        parts.push({ k: 'dyn', line: ln, why: r.why });
        return parts;
      }
      lit += r.text;
      k = r.next;
    } else if (c === '$' || (c === '@' && /[\w:'{$+-]/.test(body[k + 1] ?? ''))) {
      flush();
      const [part, next] = c === '$' ? scalarInString(body, k, ln) : arrayInString(body, k, ln);
      parts.push(part);
      if (part.k !== 'var' || part.why) return parts;
      k = next;
    } else {
      lit += c;
      k++;
    }
  }
  flush();
  return parts;
}

/** `$name`, `${name}` and what follows them: subscripts and `->[`/`->{` make it an element access. */
function scalarInString(body: string, k: number, line: number): [StrPart, number] {
  const braced = sticky(/\{\s*(\^?\w+)\s*\}/, body, k + 1);
  const plain = braced ? null : sticky(/(?:::)?[A-Za-z_]\w*(?:::\w*)*/, body, k + 1);
  const m = braced ?? plain;
  if (!m) {
    const what = body[k + 1] === '{' ? 'an expression ${...}' : /\d/.test(body[k + 1] ?? '') ? 'a capture variable' : 'a special variable';
    return [{ k: 'dyn', line, why: `${what} interpolated into a string` }, k];
  }
  const name = braced ? m[1]! : m[0];
  const after = k + 1 + m[0].length;
  const part = (sigil: Sigil, why?: string): [StrPart, number] => [{ k: 'var', sigil, name, line, ...(why && { why }) }, after];
  if (/^(\^|\d)/.test(name) || name.includes('::')) return part('$', `the ${name.includes('::') ? 'package' : 'special'} variable $${name} in a string`);
  if (body.startsWith('->', after) && /[[{@$]/.test(body[after + 2] ?? '')) return part('$', `a dereference "$${name}->..." in a string`);
  if (braced) return part('$');
  if (body[after] === "'" && IDENT_START.test(body[after + 1] ?? '')) return part('$', `"$${name}'..." (an old-style package separator)`);
  if (body[after] === '[') return part('@', `an element access "$${name}[...]" in a string`);
  if (body[after] === '{') return part('%', `an element access "$${name}{...}" in a string`);
  return part('$');
}

function arrayInString(body: string, k: number, line: number): [StrPart, number] {
  const name = sticky(/[A-Za-z_]\w*/, body, k + 1)?.[0];
  const why = `an array interpolated into a string ("@${name ?? body[k + 1]}...")`;
  return [name ? { k: 'var', sigil: '@', name, line, why } : { k: 'dyn', line, why }, k + 1];
}

// ---------------------------------------------------------------------------------------------------
// Module structure

type Tri = 'on' | 'off' | 'maybe';

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

/** Modules known not to change strictness or enable signatures when imported. */
const PLAIN_MODULES = new Set([
  'warnings', 'utf8', 'lib', 'constant', 'integer', 'bytes', 'open', 'overload', 'Carp', 'POSIX', 'Cwd', 'English',
  'Exporter', 'File::Spec', 'File::Spec::Functions', 'File::Basename', 'File::Path', 'File::Temp', 'File::Copy',
  'File::Find', 'Data::Dumper', 'Scalar::Util', 'List::Util', 'JSON::PP', 'Storable', 'Time::Local', 'Encode',
  'Getopt::Long', 'IO::File', 'IO::Handle', 'Sys::Hostname', 'FindBin',
]);

/** The hooks the framework calls, in the order they are read. */
export const HOOKS = ['remote_files', 'datadirs', 'remote_skip', 'remote_prepare', 'restores', 'before_restore', 'after_restore'] as const;
const HOOK_NAMES = new Set<string>(HOOKS);

/** Tokenizes and scans a module. Never throws: what it cannot read is recorded in `stopped`. */
export function parsePerlModule(source: string): PerlModule {
  const lexer = new Lexer(source, lineIndex(source));
  lexer.run();
  const mod: PerlModule = {
    source,
    toks: lexer.toks,
    pkg: null,
    parents: [],
    parentsLine: 0,
    subs: new Map(),
    runtimeSubs: null,
    imports: new Map(),
    stopped: lexer.stopped,
    decls: [],
    pragmas: [],
  };
  new Scanner(mod, source).run();
  return mod;
}

/** One pass over the tokens collecting what the evaluator and the caller need to know. */
class Scanner {
  private depth = 0;
  private packages: Array<{ depth: number; name: string }> = [];
  private usedParents: string[] = [];
  private isaAssigned: string[] | null = null;
  private isaUnknown = false;
  private subs: Array<SubDef & { pkg: string }> = [];

  constructor(
    private readonly mod: PerlModule,
    private readonly source: string,
  ) {}

  run(): void {
    const toks = this.mod.toks;
    for (let i = 0; i < toks.length; i++) {
      const t = toks[i]!;
      const prev = toks[i - 1];
      const statementStart = !prev || isOp(prev, ';') || isOp(prev, '{') || isOp(prev, '}');
      if (isOp(t, '{')) this.depth++;
      else if (isOp(t, '}')) this.closeBlock();
      else if (t.k === 'ident') this.ident(i, t, statementStart);
      else if (t.k === 'var' && (t.name === 'ISA' || t.name.endsWith('::ISA')) && t.sigil === '@') this.isa(i);
      else if ((t.k === 'var' && t.sigil === '*' && isOp(toks[i + 1], '=')) || (t.k === 'cast' && t.sigil === '*')) {
        this.runtime(t.line, 'a glob assignment');
      }
    }
    this.finish();
  }

  private closeBlock(): void {
    this.depth--;
    while (this.packages.length > 0 && this.packages.at(-1)!.depth > this.depth) this.packages.pop();
  }

  private ident(i: number, t: TokOf<'ident'>, statementStart: boolean): void {
    const toks = this.mod.toks;
    if (statementStart && t.v === 'package' && toks[i + 1]?.k === 'ident') this.packageStatement(i);
    else if (statementStart && (t.v === 'use' || t.v === 'no')) this.useStatement(i);
    else if (statementStart && (t.v === 'extends' || t.v === 'with')) this.classBuilder(t);
    else if (t.v === 'sub' && toks[i + 1]?.k === 'ident' && !isOp(toks[i + 2], '=>')) this.subDefinition(i);
    else if (t.v === 'my' || t.v === 'our' || t.v === 'state') this.declaration(i);
    else if (t.v === 'eval' && !isOp(toks[i + 1], '{') && !isOp(toks[i + 1], '=>')) this.runtime(t.line, 'a string eval');
  }

  /** Moose/Moo-style `extends 'Parent'` and `with 'Role'` set up inheritance when the module runs. */
  private classBuilder(t: TokOf<'ident'>): void {
    this.mod.parentsLine ||= t.line;
    this.isaUnknown = true;
  }

  private runtime(line: number, construct: string): void {
    this.mod.runtimeSubs ??= { line, construct };
  }

  private packageStatement(i: number): void {
    const name = (this.mod.toks[i + 1] as TokOf<'ident'>).v;
    let j = i + 2;
    if (this.mod.toks[j]?.k === 'num' || this.mod.toks[j]?.k === 'vstr') j++;
    if (isOp(this.mod.toks[j], '{')) this.packages.push({ depth: this.depth + 1, name });
    else {
      while (this.packages.length > 0 && this.packages.at(-1)!.depth >= this.depth) this.packages.pop();
      this.packages.push({ depth: this.depth, name });
    }
    this.mod.pkg ??= { name, line: this.mod.toks[i]!.line };
  }

  private currentPackage(): string {
    return this.packages.at(-1)?.name ?? 'main';
  }

  private statementEnd(from: number): number {
    const toks = this.mod.toks;
    let depth = 0;
    for (let j = from; j < toks.length; j++) {
      if (isOp(toks[j], '{') || isOp(toks[j], '(') || isOp(toks[j], '[')) depth++;
      else if (isOp(toks[j], '}') || isOp(toks[j], ')') || isOp(toks[j], ']')) depth--;
      else if (depth === 0 && isOp(toks[j], ';')) return j;
    }
    return toks.length;
  }

  private useStatement(i: number): void {
    const toks = this.mod.toks;
    const use = (toks[i] as TokOf<'ident'>).v === 'use';
    const end = this.statementEnd(i + 1);
    const first = toks[i + 1];
    if (first?.k === 'num' || first?.k === 'vstr') {
      if (use) this.versionPragma(i, first.text);
      return;
    }
    if (first?.k !== 'ident') return;
    let from = i + 2;
    if (toks[from]?.k === 'num' || toks[from]?.k === 'vstr') from++;
    const module = first.v;
    if (module === 'strict') this.strictPragma(i, use, from, end);
    else if (module === 'feature' || module === 'experimental') this.featurePragma(i, use, from, end);
    else if (module === 'parent' || module === 'base') this.parentPragma(i, from, end);
    else if (module === 'vars') this.varsPragma(i, from, end);
    else if (!PLAIN_MODULES.has(module)) this.otherModule(i, module, from, end);
  }

  private list(from: number, end: number): string[] | null {
    return constantList(this.mod, this.currentPackage(), from, end);
  }

  private versionPragma(i: number, text: string): void {
    const minor = perlMinor(text);
    if (minor === null || this.depth > 0) return;
    this.mod.pragmas.push({ at: i, ...(minor >= 11 && { strict: 'on' }), signatures: minor >= 36 ? 'on' : 'off' });
  }

  private strictPragma(i: number, use: boolean, from: number, end: number): void {
    const list = this.list(from, end);
    if (this.depth > 0 || (list && list.length > 0 && !list.includes('vars'))) return;
    this.mod.pragmas.push({ at: i, strict: list === null ? 'maybe' : use ? 'on' : 'off' });
  }

  private featurePragma(i: number, use: boolean, from: number, end: number): void {
    const list = this.list(from, end);
    if (this.depth > 0) return;
    const bundle = list?.map((f) => /^:5\.(\d+)/.exec(f)).find(Boolean);
    if (list === null) this.mod.pragmas.push({ at: i, signatures: 'maybe' });
    else if (list.includes('signatures') || list.includes(':all')) this.mod.pragmas.push({ at: i, signatures: use ? 'on' : 'off' });
    else if (bundle && use) this.mod.pragmas.push({ at: i, signatures: Number(bundle[1]) >= 36 ? 'on' : 'off' });
  }

  /** `use parent`/`use base` push onto @ISA when the module is compiled. */
  private parentPragma(i: number, from: number, end: number): void {
    const list = this.list(from, end);
    this.mod.parentsLine ||= this.mod.toks[i]!.line;
    if (list === null) this.isaUnknown = true;
    else this.usedParents.push(...list.filter((p) => p !== '-norequire'));
  }

  private varsPragma(i: number, from: number, end: number): void {
    for (const name of this.list(from, end) ?? []) this.mod.decls.push({ name, at: i });
  }

  private otherModule(i: number, module: string, from: number, end: number): void {
    const line = this.mod.toks[i]!.line;
    // It may turn on strict or signatures for the code that follows (Moose, Mojo::Base, Modern::Perl...).
    if (this.depth === 0) this.mod.pragmas.push({ at: i, strict: 'maybe', signatures: 'maybe' });
    const list = from < end ? this.list(from, end) : [];
    if (list === null) return this.runtime(line, `the imports of ${module}`);
    for (const name of list) if (HOOK_NAMES.has(name)) this.mod.imports.set(name, { line, from: module });
  }

  /** `our @ISA = (...)` runs after every `use parent`, so it decides; anything else is not followed. */
  private isa(i: number): void {
    const toks = this.mod.toks;
    this.mod.parentsLine ||= toks[i]!.line;
    if (isOp(toks[i + 1], '=')) {
      const list = this.list(i + 2, this.statementEnd(i + 2));
      if (list === null) this.isaUnknown = true;
      else this.isaAssigned = list;
    } else if (!(isOp(toks[i + 1], ';') && isIdent(toks[i - 1], 'our'))) this.isaUnknown = true;
  }

  private declaration(i: number): void {
    const toks = this.mod.toks;
    const t = toks[i + 1];
    if (t?.k === 'var') this.mod.decls.push({ name: t.sigil + t.name, at: i });
    if (!isOp(t, '(')) return;
    for (let j = i + 2; j < toks.length && !isOp(toks[j], ')'); j++) {
      const v = toks[j]!;
      if (v.k === 'var') this.mod.decls.push({ name: v.sigil + v.name, at: i });
    }
  }

  private subDefinition(i: number): void {
    const toks = this.mod.toks;
    const nameTok = toks[i + 1] as TokOf<'ident'>;
    let j = i + 2;
    let params: SubDef['params'] = null;
    if (isOp(toks[j], '(')) {
      const close = matching(toks, j);
      if (close < 0) return this.addSub(i, nameTok, null, null);
      params = { range: [j + 1, close], text: this.source.slice(toks[j]!.pos + 1, toks[close]!.pos) };
      j = close + 1;
    }
    while (isOp(toks[j], ':')) {
      j += toks[j + 1]?.k === 'ident' ? 2 : 1;
      if (isOp(toks[j], '(')) j = matching(toks, j) + 1;
      if (j <= 0) return;
    }
    if (!isOp(toks[j], '{')) return;
    const close = matching(toks, j);
    this.addSub(i, nameTok, params, close < 0 ? null : [j + 1, close]);
  }

  private addSub(i: number, nameTok: TokOf<'ident'>, params: SubDef['params'], body: SubDef['body']): void {
    const full = nameTok.v;
    const cut = full.lastIndexOf('::');
    const name = cut < 0 ? full : full.slice(cut + 2);
    if (name === 'AUTOLOAD') this.runtime(nameTok.line, 'an AUTOLOAD sub');
    this.subs.push({ name, line: nameTok.line, at: i, params, body, pkg: cut < 0 ? this.currentPackage() : full.slice(0, cut) });
  }

  private finish(): void {
    const own = this.mod.pkg?.name;
    for (const sub of this.subs) if (sub.pkg === own) this.mod.subs.set(sub.name, sub);
    this.mod.parents = this.isaUnknown ? null : (this.isaAssigned ?? this.usedParents);
  }
}

/** Index of the bracket closing the one at `open`, or -1. Strings are tokens, so counting suffices. */
function matching(toks: Tok[], open: number): number {
  const o = (toks[open] as TokOf<'op'>).v;
  const c = PAIRS[o]!;
  let depth = 0;
  for (let j = open; j < toks.length; j++) {
    if (isOp(toks[j], o)) depth++;
    else if (isOp(toks[j], c) && --depth === 0) return j;
  }
  return -1;
}

/** The minor version a `use VERSION` asks for: 5.041 -> 41, v5.36 -> 36, 5.36.0 -> 36. */
function perlMinor(text: string): number | null {
  const parts = text.replace(/^v/, '').replace(/_/g, '').split('.');
  if (parts[0] !== '5') return null;
  if (text.startsWith('v') || parts.length > 2) return Number(parts[1] ?? 0);
  const fraction = parts[1] ?? '';
  return Number(fraction.padEnd(Math.ceil(fraction.length / 3) * 3 || 3, '0').slice(0, 3));
}

/** The effect of the pragmas before token `at`. */
function pragmasAt(mod: PerlModule, at: number): { strict: Tri; signatures: Tri } {
  const state: { strict: Tri; signatures: Tri } = { strict: 'off', signatures: 'off' };
  const apply = (was: Tri, now: Tri | undefined): Tri => (now === 'maybe' ? (was === 'on' ? 'on' : 'maybe') : (now ?? was));
  for (const p of mod.pragmas) {
    if (p.at >= at) break;
    state.strict = apply(state.strict, p.strict);
    state.signatures = apply(state.signatures, p.signatures);
  }
  return state;
}

// ---------------------------------------------------------------------------------------------------
// Evaluation

class Unfollowable {
  constructor(
    readonly line: number,
    readonly construct: string,
  ) {}
}

class Fault {
  constructor(
    readonly line: number,
    readonly detail: string,
  ) {}
}

type Binding = { known: true; value: PerlValue } | { known: false; why: string };

const UNDEF: PerlValue = { t: 'undef' };
const str = (v: string): PerlValue => ({ t: 'str', v });

/** Names that strict never complains about: punctuation and digit variables, %ENV, @ARGV, $a/$b, Pkg::names. */
function isGlobalName(name: string): boolean {
  return name.includes('::') || !/^[A-Za-z]/.test(name) || ['ENV', 'INC', 'ARGV', 'ARGVOUT', 'STDIN', 'STDOUT', 'STDERR', 'SIG', 'a', 'b'].includes(name);
}

const WORD_OPERATORS = new Set(['eq', 'ne', 'lt', 'gt', 'le', 'ge', 'cmp', 'and', 'or', 'not', 'xor', 'x', 'isa']);
const CONTROL = new Set(['if', 'unless', 'while', 'until', 'for', 'foreach', 'do', 'eval', 'map', 'grep', 'sort', 'local', 'our', 'state', 'no', 'use']);
const OP_NAMES: Record<string, string> = {
  '?': 'a conditional (?:)',
  '||': 'a logical or (||)',
  '//': 'a defined-or (//)',
  '&&': 'a logical and (&&)',
  '->': 'a method call or dereference (->)',
  '=~': 'a pattern match (=~)',
  '[': 'an element access [...]',
  '{': 'a block or element access {...}',
  '\\': 'a reference (\\)',
};

interface EvalContext {
  /** The package the sub is compiled in (`__PACKAGE__`). */
  pkg: string;
  strict: Tri;
}

/** Evaluates a token range as a sub body (or a constant list) in list context, exactly or not at all. */
class Evaluator {
  private i: number;
  private readonly env = new Map<string, Binding>();
  resultLine: number;

  constructor(
    private readonly mod: PerlModule,
    private readonly ctx: EvalContext,
    start: number,
    private end: number,
    /** The sub's @_: the invocant, then the arguments. */
    private readonly args: PerlValue[],
  ) {
    this.i = start;
    this.resultLine = this.line();
  }

  private peek(o = 0): Tok | undefined {
    return this.i + o < this.end ? this.mod.toks[this.i + o] : undefined;
  }

  private line(): number {
    return (this.mod.toks[Math.min(this.i, this.mod.toks.length - 1)] ?? { line: 0 }).line;
  }

  private isOp(v: string): boolean {
    return isOp(this.peek(), v);
  }

  private atStatementEnd(): boolean {
    return this.i >= this.end || this.isOp(';');
  }

  private statementEnd(): void {
    if (!this.atStatementEnd()) throw this.unfollowable();
  }

  /** Names the construct at the current token for the report. */
  private unfollowable(): Unfollowable {
    const t = this.peek();
    const next = this.peek(1);
    let what = 'the end of the sub';
    if (t?.k === 'ident') {
      what = CONTROL.has(t.v) ? `"${t.v}"` : WORD_OPERATORS.has(t.v) ? `the operator "${t.v}"` : `a call to ${t.v}${isOp(next, '(') ? '(...)' : ''}`;
    } else if (t?.k === 'op') what = OP_NAMES[t.v] ?? `the operator "${t.v}"`;
    else if (t?.k === 'opaque') what = t.what;
    else if (t?.k === 'cast') what = `a dereference ${t.sigil}{...}`;
    else if (t) what = 'a value where an operator or "," was expected';
    return new Unfollowable(t?.line ?? this.line(), what);
  }

  /** Binds the parameter list of a sub with a signature; Perl checks the argument count at call time. */
  bindSignature(sub: SubDef): void {
    const [from, to] = sub.params!.range;
    const params: Array<{ sigil: Sigil; name: string; dflt: [number, number] | null }> = [];
    for (let j = from; j < to; ) {
      const t = this.mod.toks[j]!;
      if (t.k !== 'var' || !'$@%'.includes(t.sigil)) throw new Unfollowable(t.line, 'a signature the reader cannot follow');
      let dflt: [number, number] | null = null;
      j++;
      if (isOp(this.mod.toks[j], '=')) {
        let k = j + 1;
        while (k < to && !isOp(this.mod.toks[k], ',')) k++;
        dflt = [j + 1, k];
        j = k;
      }
      if (j < to && !isOp(this.mod.toks[j], ',')) throw new Unfollowable(this.mod.toks[j]!.line, 'a signature the reader cannot follow');
      j++;
      params.push({ sigil: t.sigil, name: t.name, dflt });
    }
    this.checkArity(sub, params);
    params.forEach((p, k) => this.bindParam(sub, p, k));
  }

  private checkArity(sub: SubDef, params: Array<{ sigil: Sigil; dflt: unknown }>): void {
    const scalars = params.filter((p) => p.sigil === '$');
    const required = scalars.filter((p) => !p.dflt).length;
    const max = params.some((p) => p.sigil !== '$') ? Infinity : scalars.length;
    const got = this.args.length;
    const name = `'${this.ctx.pkg}::${sub.name}'`;
    if (got > max) {
      throw new Fault(sub.line, `Too many arguments for subroutine ${name} (got ${got}; expected ${required === max ? '' : 'at most '}${max})`);
    }
    if (got < required) {
      throw new Fault(sub.line, `Too few arguments for subroutine ${name} (got ${got}; expected ${required === max ? '' : 'at least '}${required})`);
    }
  }

  private bindParam(sub: SubDef, p: { sigil: Sigil; name: string; dflt: [number, number] | null }, k: number): void {
    if (p.sigil !== '$') {
      if (p.sigil === '%' && (this.args.length - k) % 2 !== 0) throw new Fault(sub.line, `Odd name/value argument for subroutine '${this.ctx.pkg}::${sub.name}'`);
      if (p.name) this.env.set(p.sigil + p.name, { known: false, why: `the slurpy parameter ${p.sigil}${p.name}` });
      return;
    }
    const value = k < this.args.length ? this.args[k]! : p.dflt ? this.defaultValue(p.dflt) : UNDEF;
    if (p.name) this.env.set('$' + p.name, { known: true, value });
  }

  private defaultValue([from, to]: [number, number]): PerlValue {
    if (from === to) return UNDEF;
    const [i, end] = [this.i, this.end];
    [this.i, this.end] = [from, to];
    const v = this.scalar();
    if (this.i < this.end) throw this.unfollowable();
    [this.i, this.end] = [i, end];
    return v;
  }

  /** Runs the body's statements; the value is the `return` list or the last statement's value. */
  run(): PerlValue[] {
    let result: PerlValue[] | null = [];
    while (this.i < this.end) {
      if (this.isOp(';')) {
        this.i++;
        continue;
      }
      this.resultLine = this.line();
      const t = this.peek()!;
      if (isIdent(t, 'return')) {
        this.i++;
        const values = this.atStatementEnd() ? [] : this.list();
        this.statementEnd();
        return values;
      }
      result = this.statement(t);
    }
    if (result === null) throw new Unfollowable(this.resultLine, 'a last statement that is not a plain value (no explicit return)');
    return result;
  }

  /** One statement; its value if it is an expression, null if it is a declaration or assignment. */
  private statement(t: Tok): PerlValue[] | null {
    if (isIdent(t, 'my')) {
      this.declaration();
      return null;
    }
    if (isIdent(t, 'shift') && this.shiftStatement()) return null;
    if (t.k === 'var' && t.sigil === '$' && (isOp(this.peek(1), '=') || isOp(this.peek(1), '.='))) {
      this.assignment();
      return null;
    }
    if (isOp(t, '{')) throw new Unfollowable(t.line, 'a block or hash at the start of a statement');
    const values = this.list();
    this.statementEnd();
    return values;
  }

  /** `shift;`, `shift @_;`, `shift(@_);` on their own drop the first argument. */
  private shiftStatement(): boolean {
    const start = this.i;
    this.i++;
    this.shiftOperand();
    if (this.atStatementEnd()) {
      this.args.shift();
      return true;
    }
    this.i = start;
    return false;
  }

  /** After `shift`: `@_`, `(@_)` or `()`; another array is not followed. */
  private shiftOperand(): void {
    if (isVar(this.peek(), '@', '_')) this.i++;
    else if (this.isOp('(') && isVar(this.peek(1), '@', '_') && isOp(this.peek(2), ')')) this.i += 3;
    else if (this.isOp('(') && isOp(this.peek(1), ')')) this.i += 2;
    else if (this.peek()?.k === 'var' || this.peek()?.k === 'cast') throw new Unfollowable(this.line(), 'shift of an array other than @_');
  }

  private declaration(): void {
    this.i++;
    const t = this.peek();
    if (t?.k === 'var' && t.sigil === '$') {
      this.i++;
      let value = UNDEF;
      if (this.isOp('=')) {
        this.i++;
        value = this.scalar();
      }
      this.statementEnd();
      this.env.set('$' + t.name, { known: true, value });
    } else if (t?.k === 'var' && (t.sigil === '@' || t.sigil === '%')) {
      this.i++;
      if (this.isOp('=')) {
        this.i++;
        if (isVar(this.peek(), '@', '_')) this.i++;
        else this.list();
      }
      this.statementEnd();
      this.env.set(t.sigil + t.name, { known: false, why: `the ${t.sigil === '@' ? 'array' : 'hash'} ${t.sigil}${t.name}` });
    } else if (isOp(t, '(')) this.listDeclaration();
    else throw this.unfollowable();
  }

  /** `my ($self, $dir, undef, %rest) = @_;` or `= (LIST)`: Perl's list assignment. */
  private listDeclaration(): void {
    this.i++;
    const targets: Array<{ sigil: Sigil; name: string } | null> = [];
    while (!this.isOp(')')) {
      const t = this.peek();
      if (t?.k === 'var' && '$@%'.includes(t.sigil)) targets.push({ sigil: t.sigil, name: t.name });
      else if (isIdent(t, 'undef')) targets.push(null);
      else if (!isOp(t, ',')) throw this.unfollowable();
      this.i++;
    }
    this.i++;
    let source: PerlValue[] = [];
    if (this.isOp('=')) {
      this.i++;
      if (isVar(this.peek(), '@', '_') && (this.i + 1 >= this.end || isOp(this.peek(1), ';'))) {
        this.i++;
        source = [...this.args];
      } else source = this.list();
    }
    this.statementEnd();
    for (const target of targets) {
      if (target?.sigil === '$') this.env.set('$' + target.name, { known: true, value: source.shift() ?? UNDEF });
      else if (target) {
        source = [];
        this.env.set(target.sigil + target.name, { known: false, why: `the ${target.sigil === '@' ? 'array' : 'hash'} ${target.sigil}${target.name}` });
      } else source.shift();
    }
  }

  /** `$x = EXPR;` and `$x .= EXPR;` on a lexical of this sub. */
  private assignment(): void {
    const t = this.peek() as TokOf<'var'>;
    const op = (this.peek(1) as TokOf<'op'>).v;
    const key = '$' + t.name;
    if (!this.env.has(key)) {
      this.requireDeclared('$', t.name, t.line);
      throw new Unfollowable(t.line, `an assignment to $${t.name}, which is not a lexical of this sub`);
    }
    this.i += 2;
    const value = this.scalar();
    this.statementEnd();
    const joined = op === '.=' ? str(this.stringify(this.lookup(t.name, t.line), t.line, `$${t.name}`) + this.stringify(value, t.line)) : value;
    this.env.set(key, { known: true, value: joined });
  }

  /** A comma-separated list up to `close` (or the end of the statement); nested lists flatten. */
  list(close?: string): PerlValue[] {
    const out: PerlValue[] = [];
    const atEnd = (): boolean => (close ? this.isOp(close) || this.i >= this.end : this.atStatementEnd());
    while (!atEnd()) {
      if (this.isOp(',') || this.isOp('=>')) {
        this.i++;
        continue;
      }
      out.push(...this.concatenation());
      if (!atEnd() && !this.isOp(',') && !this.isOp('=>')) throw this.unfollowable();
    }
    return out;
  }

  private scalar(): PerlValue {
    const line = this.line();
    const values = this.concatenation();
    if (values.length !== 1) throw new Unfollowable(line, 'a list where one value is expected');
    return values[0]!;
  }

  /** `a . b . c`: binds tighter than `,`, looser than terms. */
  private concatenation(): PerlValue[] {
    const first = this.term();
    if (!this.isOp('.')) return first;
    const line = this.line();
    if (first.length !== 1) throw new Unfollowable(line, 'a list where one value is expected');
    let acc = this.stringify(first[0]!, line);
    while (this.isOp('.')) {
      this.i++;
      const rhs = this.term();
      if (rhs.length !== 1) throw new Unfollowable(line, 'a list where one value is expected');
      acc += this.stringify(rhs[0]!, line);
    }
    return [str(acc)];
  }

  private term(): PerlValue[] {
    const t = this.peek();
    if (!t) throw this.unfollowable();
    this.i++;
    switch (t.k) {
      case 'str':
        return [str(t.v)];
      case 'istr':
        return [this.interpolate(t.parts)];
      case 'qw':
        return t.words.map(str);
      case 'num':
        if (t.value === null) throw new Unfollowable(t.line, `the numeric literal ${t.text}`);
        return [{ t: 'num', v: t.value, s: String(t.value) }];
      case 'ident':
        return this.identTerm(t);
      case 'var':
        return this.varTerm(t);
      case 'op':
        return this.opTerm(t);
      default:
        this.i--;
        throw this.unfollowable();
    }
  }

  private identTerm(t: TokOf<'ident'>): PerlValue[] {
    if (this.isOp('=>')) return [str(t.v)];
    if (t.v === 'undef' && !this.isOp('(') && this.peek()?.k !== 'var') return [UNDEF];
    if (t.v === '__PACKAGE__') return [str(this.ctx.pkg)];
    if (t.v === 'shift') {
      this.shiftOperand();
      return [this.args.shift() ?? UNDEF];
    }
    this.i--;
    throw this.unfollowable();
  }

  private varTerm(t: TokOf<'var'>): PerlValue[] {
    const name = `${t.sigil}${t.name}`;
    if (t.sigil === '$' && this.isOp('[')) {
      this.requireDeclared('@', t.name, t.line);
      throw new Unfollowable(t.line, `an element access ${name}[...]`);
    }
    if (t.sigil === '$' && this.isOp('{')) {
      this.requireDeclared('%', t.name, t.line);
      throw new Unfollowable(t.line, `an element access ${name}{...}`);
    }
    if (t.sigil === '$' && this.isOp('->')) {
      this.requireDeclared('$', t.name, t.line);
      const m = this.peek(1);
      throw new Unfollowable(t.line, m?.k === 'ident' ? `a method call ${name}->${m.v}` : `a dereference ${name}->...`);
    }
    if (t.sigil === '$') return [this.lookup(t.name, t.line)];
    if (t.sigil === '@' || t.sigil === '%') this.requireDeclared(t.sigil, t.name, t.line);
    throw new Unfollowable(t.line, `the ${t.sigil === '@' ? 'array' : t.sigil === '%' ? 'hash' : 'symbol'} ${name}`);
  }

  private opTerm(t: TokOf<'op'>): PerlValue[] {
    if (t.v === '(') {
      const values = this.list(')');
      this.expectOp(')');
      if (this.isOp('[')) throw new Unfollowable(t.line, 'a list slice (...)[...]');
      return values;
    }
    if (t.v === '{') return [this.anonymousHash(t.line)];
    if (t.v === '+') return this.term();
    if (t.v === '-') return this.negation(t);
    this.i--;
    throw this.unfollowable();
  }

  private expectOp(v: string): void {
    if (!this.isOp(v)) throw this.unfollowable();
    this.i++;
  }

  /** `-5` and `-bareword` (the string "-bareword"). */
  private negation(t: TokOf<'op'>): PerlValue[] {
    const next = this.peek();
    if (next?.k === 'num' && next.value !== null) {
      this.i++;
      return [{ t: 'num', v: -next.value, s: String(-next.value) }];
    }
    if (next?.k === 'ident' && !isOp(this.peek(1), '(')) {
      this.i++;
      return [str(`-${next.v}`)];
    }
    this.i--;
    throw new Unfollowable(t.line, 'a negation');
  }

  /** `{ k => v, ... }`: keys stringified, a missing last value is undef, a repeated key keeps its last value. */
  private anonymousHash(line: number): PerlValue {
    const values = this.list('}');
    this.expectOp('}');
    if (this.isOp('->') || this.isOp('{') || this.isOp('[')) throw this.unfollowable();
    const pairs: Array<[string, PerlValue]> = [];
    for (let k = 0; k < values.length; k += 2) {
      const key = values[k]!;
      if (key.t === 'undef') throw new Fault(line, 'Use of uninitialized value in anonymous hash ({})');
      pairs.push([this.stringify(key, line), values[k + 1] ?? UNDEF]);
    }
    return { t: 'hash', pairs };
  }

  private interpolate(parts: StrPart[]): PerlValue {
    let s = '';
    for (const p of parts) {
      if (p.k === 'lit') s += p.v;
      else if (p.k === 'dyn') throw new Unfollowable(p.line, p.why);
      else if (p.why) {
        this.requireDeclared(p.sigil, p.name, p.line);
        throw new Unfollowable(p.line, p.why);
      } else s += this.stringify(this.lookup(p.name, p.line), p.line, `$${p.name}`);
    }
    return str(s);
  }

  /** How Perl prints a value in a string; undef is refused (Perl warns and prints nothing). */
  private stringify(v: PerlValue, line: number, name?: string): string {
    if (v.t === 'str') return v.v;
    if (v.t === 'num') return v.s;
    if (v.t === 'undef') throw new Fault(line, `Use of uninitialized value${name ? ` ${name}` : ''} in concatenation (.) or string`);
    throw new Unfollowable(line, 'a reference used as a string');
  }

  private lookup(name: string, line: number): PerlValue {
    const b = this.env.get('$' + name);
    if (b) {
      if (!b.known) throw new Unfollowable(line, b.why);
      return b.value;
    }
    this.requireDeclared('$', name, line);
    if (isGlobalName(name)) throw new Unfollowable(line, `the global variable $${name}`);
    throw new Unfollowable(line, `the variable $${name}, declared outside the hook`);
  }

  /** Under `use strict`, an undeclared variable is a compile error; without it, a global of unknown value. */
  private requireDeclared(sigil: Sigil, name: string, line: number): void {
    if (isGlobalName(name) || this.env.has(sigil + name)) return;
    if (this.mod.decls.some((d) => d.name === sigil + name && d.at < this.i)) return;
    const full = sigil + name;
    if (this.ctx.strict === 'on') throw new Fault(line, `Global symbol "${full}" requires explicit package name (did you forget to declare "my ${full}"?)`);
    throw new Unfollowable(line, `the global variable ${full}`);
  }
}

/** A constant list (`use parent -norequire, 'X'`, `qw(a b)`), or null when it is not one. */
function constantList(mod: PerlModule, pkg: string, from: number, end: number): string[] | null {
  try {
    const values = new Evaluator(mod, { pkg, strict: 'off' }, from, end, []).list();
    return values.every((v) => v.t === 'str' || v.t === 'num') ? values.map((v) => (v.t === 'str' ? v.v : (v as { s: string }).s)) : null;
  } catch (e) {
    if (e instanceof Unfollowable || e instanceof Fault) return null;
    throw e;
  }
}

/** A parameter list that is a valid prototype when signatures are off. */
const PROTOTYPE = /^[\s$@%&*;\\[\]+_]*$/;

/**
 * Reads hook `hook` of `mod` called as a method: `invocant` is the class name, `args` the arguments.
 * 'absent' means the module itself does not define it (inheritance is the caller's business).
 */
export function evalHook(mod: PerlModule, hook: string, invocant: string, args: string[]): StaticOutcome {
  const sub = mod.subs.get(hook);
  if (!sub) return absentHook(mod, hook);
  if (!sub.body) return { kind: 'dynamic', line: mod.stopped?.line ?? sub.line, construct: mod.stopped?.construct ?? 'an unterminated sub' };
  const state = pragmasAt(mod, sub.at);
  const ev = new Evaluator(mod, { pkg: mod.pkg!.name, strict: state.strict }, sub.body[0], sub.body[1], [str(invocant), ...args.map(str)]);
  try {
    if (sub.params) bindParams(ev, sub, state.signatures);
    const values = ev.run();
    return { kind: 'list', line: ev.resultLine, values };
  } catch (e) {
    if (e instanceof Unfollowable) return { kind: 'dynamic', line: e.line, construct: e.construct };
    if (e instanceof Fault) return { kind: 'error', line: e.line, detail: e.detail };
    throw e;
  }
}

/** `sub f (...)` is a signature or a prototype depending on the signatures feature at that point. */
function bindParams(ev: Evaluator, sub: SubDef, signatures: Tri): void {
  const prototype = PROTOTYPE.test(sub.params!.text);
  if (signatures === 'on') return ev.bindSignature(sub);
  if (signatures === 'off' && prototype) return;
  throw new Unfollowable(
    sub.line,
    signatures === 'maybe' ? 'a parameter list (signature or prototype? the signatures feature cannot be confirmed)' : 'a parameter list while the signatures feature is off',
  );
}

function absentHook(mod: PerlModule, hook: string): StaticOutcome {
  if (mod.stopped) return { kind: 'dynamic', line: mod.stopped.line, construct: `${mod.stopped.construct}, past which the reader cannot see` };
  if (mod.runtimeSubs) return { kind: 'dynamic', line: mod.runtimeSubs.line, construct: `${mod.runtimeSubs.construct}, which may define ${hook}` };
  const imported = mod.imports.get(hook);
  if (imported) return { kind: 'dynamic', line: imported.line, construct: `${hook} imported from ${imported.from}` };
  return { kind: 'absent' };
}

/**
 * The keys a sub reads from the hash it fills from its arguments (`my ($self, %opts) = @_;`, `my %o =
 * @_;`, a signature `($class, %opts)`): every `$opts{key}`, `$opts{'key'}` or `$opts{"key"}` in its
 * text, strings included, in order of appearance. Used to name a key nobody set when a hook's value
 * turns out undefined; never to decide what the hook returns (perl does that).
 */
export function hashKeysRead(mod: PerlModule, hook: string): Array<{ hash: string; key: string; handled: boolean }> {
  const sub = mod.subs.get(hook);
  if (!sub?.body) return [];
  const from = mod.toks[sub.body[0]]?.pos ?? 0;
  const to = mod.toks[sub.body[1]]?.pos ?? mod.source.length;
  const text = mod.source.slice(from, to);
  const hashes = new Set<string>();
  for (const m of text.matchAll(/\bmy\s*\(([^)]*)\)\s*=\s*@_/g)) for (const h of m[1]!.matchAll(/%(\w+)/g)) hashes.add(h[1]!);
  for (const m of text.matchAll(/\bmy\s+%(\w+)\s*=\s*@_/g)) hashes.add(m[1]!);
  for (const h of (sub.params?.text ?? '').matchAll(/%(\w+)/g)) hashes.add(h[1]!);
  const out: Array<{ hash: string; key: string; handled: boolean }> = [];
  const seen = new Set<string>();
  for (const m of text.matchAll(/\$(\w+)\s*\{\s*(?:(-?[A-Za-z_]\w*)|'([^'\\]*)'|"([^"\\$@]*)")\s*\}/g)) {
    const hash = m[1]!;
    const key = (m[2] ?? m[3] ?? m[4])!;
    if (hashes.size > 0 && !hashes.has(hash)) continue;
    if (seen.has(`${hash}\0${key}`)) continue;
    seen.add(`${hash}\0${key}`);
    out.push({ hash, key, handled: false });
  }
  // A key tested or given a fallback somewhere (`exists`, `defined`, `//`, `||`, `?:`, `if`/`unless`)
  // is one the recipe handles when missing.
  for (const k of out) {
    const el = `\\$${k.hash}\\s*\\{\\s*(?:${escapeRe(k.key)}|'${escapeRe(k.key)}'|"${escapeRe(k.key)}")\\s*\\}`;
    const tested = new RegExp(`(?:\\b(?:exists|defined|if|unless)\\s*\\(?\\s*!?\\s*${el})|(?:${el}\\s*(?:\\/\\/|\\|\\||\\?|&&|\\bor\\b|\\band\\b))|(?:!\\s*${el})`);
    k.handled = tested.test(text);
  }
  return out;
}

function escapeRe(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
