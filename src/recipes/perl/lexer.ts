/**
 * The tokenizer of the static Perl reader (see static.ts): the subset of Perl recipes are written in,
 * strings and their interpolation included. Pure.
 */

export type Sigil = '$' | '@' | '%' | '&' | '*' | '$#';

/** A piece of a double-quoted string. `var` with `why` is an interpolation that is not followable. */
export type StrPart =
  | { k: 'lit'; v: string }
  | { k: 'var'; sigil: Sigil; name: string; line: number; why?: string }
  | { k: 'dyn'; line: number; why: string };

export type Tok = { line: number; pos: number } & (
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

export type TokOf<K extends Tok['k']> = Extract<Tok, { k: K }>;
type TokBody = Tok extends infer T ? (T extends Tok ? Omit<T, 'line' | 'pos'> : never) : never;

export const isOp = (t: Tok | undefined, v: string): boolean => t?.k === 'op' && t.v === v;
export const isIdent = (t: Tok | undefined, v: string): boolean => t?.k === 'ident' && t.v === v;
export const isVar = (t: Tok | undefined, sigil: Sigil, name: string): boolean =>
  t?.k === 'var' && t.sigil === sigil && t.name === name;

export const PAIRS: Record<string, string> = { '(': ')', '[': ']', '{': '}', '<': '>' };
const QUOTE_OPS = new Set(['q', 'qq', 'qw', 'm', 'qr', 's', 'tr', 'y', 'qx']);
const OPERATORS = [
  '<=>',
  '**=',
  '||=',
  '&&=',
  '//=',
  '<<=',
  '>>=',
  '...',
  '->',
  '++',
  '--',
  '**',
  '=~',
  '!~',
  '==',
  '!=',
  '<=',
  '>=',
  '&&',
  '||',
  '//',
  '..',
  '::',
  '<<',
  '>>',
  '=>',
  '+=',
  '-=',
  '*=',
  '/=',
  '.=',
  '%=',
  '&=',
  '|=',
  '^=',
];
const SINGLE_OPS = new Set('+-*/%.<>=!~\\?:,;()[]{}&|^');
/** Words after which Perl expects a term, so `/` starts a pattern and `%x` is a hash. */
const TERM_AFTER = new Set([
  'return',
  'and',
  'or',
  'not',
  'xor',
  'if',
  'unless',
  'while',
  'until',
  'elsif',
  'for',
  'foreach',
  'x',
  'lt',
  'gt',
  'le',
  'ge',
  'eq',
  'ne',
  'cmp',
  'split',
  'grep',
  'map',
  'join',
  'push',
  'unshift',
  'print',
  'say',
  'die',
  'warn',
  'defined',
  'ref',
  'scalar',
  'lc',
  'uc',
  'lcfirst',
  'ucfirst',
  'length',
  'exists',
  'delete',
  'sort',
  'reverse',
  'keys',
  'values',
  'each',
  'my',
  'our',
  'local',
  'state',
  'when',
  'sprintf',
  'unlink',
  'chomp',
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
export function lineIndex(src: string): (pos: number) => number {
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
export class Lexer {
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
    else if (c === '"' || c === "'" || c === '`')
      this.quoteLike(c === '"' ? 'qq' : c === "'" ? 'q' : 'qx', start, start);
    else if (c === '/' && this.expect() !== 'op') {
      if (this.expect() === 'ambiguous')
        throw new LexStop(start, `a "/" after "${this.lastWord()}" (pattern or division?)`);
      this.quoteLike('m', start, start);
    } else if (c === '<' && sticky(/<<~?(?:[ \t]*["']|[A-Za-z_])/, this.src, start) && this.expect() !== 'op') {
      if (this.expect() === 'ambiguous')
        throw new LexStop(start, `a "<<" after "${this.lastWord()}" (heredoc or shift?)`);
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
      sticky(/(?:::)?[A-Za-z_]\w*(?:::\w*)*/, src, start + 1) ??
      sticky(/\^[A-Z\[\]^_?\\]|\d+|[^\s\w{]/, src, start + 1);
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
    else if (op === 'qw')
      this.push({ k: 'qw', words: unescapeSingle(body, open, close).split(/\s+/).filter(Boolean) }, start);
    else
      this.push(
        {
          k: 'opaque',
          what: `a ${op === 'qx' ? 'command' : op === 'm' || op === 'qr' ? 'pattern' : 'substitution'} ${op}${open}...${close}`,
        },
        start,
      );
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
function escapeAt(
  body: string,
  k: number,
  open: string,
  close: string,
): { text: string; next: number } | { why: string } {
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
  if (e === 'c')
    return { text: String.fromCharCode((body[k + 2] ?? '').toUpperCase().charCodeAt(0) ^ 64), next: k + 3 };
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
  for (let k = 0; k < body.length;) {
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
    const what =
      body[k + 1] === '{'
        ? 'an expression ${...}'
        : /\d/.test(body[k + 1] ?? '')
          ? 'a capture variable'
          : 'a special variable';
    return [{ k: 'dyn', line, why: `${what} interpolated into a string` }, k];
  }
  const name = braced ? m[1]! : m[0];
  const after = k + 1 + m[0].length;
  const part = (sigil: Sigil, why?: string): [StrPart, number] => [
    { k: 'var', sigil, name, line, ...(why && { why }) },
    after,
  ];
  if (/^(\^|\d)/.test(name) || name.includes('::'))
    return part('$', `the ${name.includes('::') ? 'package' : 'special'} variable $${name} in a string`);
  if (body.startsWith('->', after) && /[[{@$]/.test(body[after + 2] ?? ''))
    return part('$', `a dereference "$${name}->..." in a string`);
  if (braced) return part('$');
  if (body[after] === "'" && IDENT_START.test(body[after + 1] ?? ''))
    return part('$', `"$${name}'..." (an old-style package separator)`);
  if (body[after] === '[') return part('@', `an element access "$${name}[...]" in a string`);
  if (body[after] === '{') return part('%', `an element access "$${name}{...}" in a string`);
  return part('$');
}

function arrayInString(body: string, k: number, line: number): [StrPart, number] {
  const name = sticky(/[A-Za-z_]\w*/, body, k + 1)?.[0];
  const why = `an array interpolated into a string ("@${name ?? body[k + 1]}...")`;
  return [name ? { k: 'var', sigil: '@', name, line, why } : { k: 'dyn', line, why }, k + 1];
}
