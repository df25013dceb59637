/**
 * The evaluator of the static Perl reader (see static.ts): hook bodies that are plain data, exactly as
 * Perl would evaluate them, or not at all (what stopped it, with its line). Pure.
 */
import { isIdent, isOp, isVar, type Sigil, type StrPart, type Tok, type TokOf } from './lexer.js';
import type { PerlModule, SubDef, Tri } from './module.js';
import type { PerlValue } from './values.js';

export class Unfollowable {
  constructor(
    readonly line: number,
    readonly construct: string,
  ) {}
}

export class Fault {
  constructor(
    readonly line: number,
    readonly detail: string,
  ) {}
}

type Binding = { known: true; value: PerlValue } | { known: false; why: string };

const UNDEF: PerlValue = { t: 'undef' };
export const str = (v: string): PerlValue => ({ t: 'str', v });

/** Names that strict never complains about: punctuation and digit variables, %ENV, @ARGV, $a/$b, Pkg::names. */
function isGlobalName(name: string): boolean {
  return (
    name.includes('::') ||
    !/^[A-Za-z]/.test(name) ||
    ['ENV', 'INC', 'ARGV', 'ARGVOUT', 'STDIN', 'STDOUT', 'STDERR', 'SIG', 'a', 'b'].includes(name)
  );
}

const WORD_OPERATORS = new Set(['eq', 'ne', 'lt', 'gt', 'le', 'ge', 'cmp', 'and', 'or', 'not', 'xor', 'x', 'isa']);
const CONTROL = new Set([
  'if',
  'unless',
  'while',
  'until',
  'for',
  'foreach',
  'do',
  'eval',
  'map',
  'grep',
  'sort',
  'local',
  'our',
  'state',
  'no',
  'use',
]);
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
export class Evaluator {
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
      what = CONTROL.has(t.v)
        ? `"${t.v}"`
        : WORD_OPERATORS.has(t.v)
          ? `the operator "${t.v}"`
          : `a call to ${t.v}${isOp(next, '(') ? '(...)' : ''}`;
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
    for (let j = from; j < to;) {
      const t = this.mod.toks[j]!;
      if (t.k !== 'var' || !'$@%'.includes(t.sigil))
        throw new Unfollowable(t.line, 'a signature the reader cannot follow');
      let dflt: [number, number] | null = null;
      j++;
      if (isOp(this.mod.toks[j], '=')) {
        let k = j + 1;
        while (k < to && !isOp(this.mod.toks[k], ',')) k++;
        dflt = [j + 1, k];
        j = k;
      }
      if (j < to && !isOp(this.mod.toks[j], ','))
        throw new Unfollowable(this.mod.toks[j]!.line, 'a signature the reader cannot follow');
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
      throw new Fault(
        sub.line,
        `Too many arguments for subroutine ${name} (got ${got}; expected ${required === max ? '' : 'at most '}${max})`,
      );
    }
    if (got < required) {
      throw new Fault(
        sub.line,
        `Too few arguments for subroutine ${name} (got ${got}; expected ${required === max ? '' : 'at least '}${required})`,
      );
    }
  }

  private bindParam(sub: SubDef, p: { sigil: Sigil; name: string; dflt: [number, number] | null }, k: number): void {
    if (p.sigil !== '$') {
      if (p.sigil === '%' && (this.args.length - k) % 2 !== 0)
        throw new Fault(sub.line, `Odd name/value argument for subroutine '${this.ctx.pkg}::${sub.name}'`);
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
    if (result === null)
      throw new Unfollowable(this.resultLine, 'a last statement that is not a plain value (no explicit return)');
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
    else if (this.peek()?.k === 'var' || this.peek()?.k === 'cast')
      throw new Unfollowable(this.line(), 'shift of an array other than @_');
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
      this.env.set(t.sigil + t.name, {
        known: false,
        why: `the ${t.sigil === '@' ? 'array' : 'hash'} ${t.sigil}${t.name}`,
      });
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
        this.env.set(target.sigil + target.name, {
          known: false,
          why: `the ${target.sigil === '@' ? 'array' : 'hash'} ${target.sigil}${target.name}`,
        });
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
    const joined =
      op === '.='
        ? str(this.stringify(this.lookup(t.name, t.line), t.line, `$${t.name}`) + this.stringify(value, t.line))
        : value;
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
    if (v.t === 'undef')
      throw new Fault(line, `Use of uninitialized value${name ? ` ${name}` : ''} in concatenation (.) or string`);
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
    if (this.ctx.strict === 'on')
      throw new Fault(
        line,
        `Global symbol "${full}" requires explicit package name (did you forget to declare "my ${full}"?)`,
      );
    throw new Unfollowable(line, `the global variable ${full}`);
  }
}

/** A constant list (`use parent -norequire, 'X'`, `qw(a b)`), or null when it is not one. */
export function constantList(mod: PerlModule, pkg: string, from: number, end: number): string[] | null {
  try {
    const values = new Evaluator(mod, { pkg, strict: 'off' }, from, end, []).list();
    return values.every((v) => v.t === 'str' || v.t === 'num')
      ? values.map((v) => (v.t === 'str' ? v.v : (v as { s: string }).s))
      : null;
  } catch (e) {
    if (e instanceof Unfollowable || e instanceof Fault) return null;
    throw e;
  }
}
